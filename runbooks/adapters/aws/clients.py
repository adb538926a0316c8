"""The AWS clients every service module calls through: one boto3 client per (service, region)
with short timeouts, throttled calls tried again, and AWS's errors mapped to the runbooks' errors
(plus the small lookups and conversions the service modules share).

The only module of the project that imports boto3. Nothing here runs at import time: clients are
built on first use from the session given to ``aws_ports`` (or a default one). botocore reads
``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself, so moto in server mode stands in
for AWS in tests without any code here knowing. In an incident a region's API may not answer at
all; connect and read timeouts are short and retries few, so a call to a dead region fails in
seconds with ``runbooks.core.errors.Unreachable`` instead of hanging a minute. There are no boto3
waiters: the engine polls through the ports with its own clock.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError, NoCredentialsError

from contract.outputs import Database, Outputs, Region
from runbooks.core.clock import Clock, SystemClock
from runbooks.core.errors import BadInput, RunbookError, Unreachable

TAG_VALUE_MAX = 256
"""The longest value an AWS resource tag takes (EC2, MSK and S3 alike)."""


class AwsCallFailed(RunbookError):
    """An AWS API refused a call (not a connectivity problem). The message names the call."""


@dataclass(frozen=True)
class AwsSettings:
    connect_timeout: float = 2.0
    """Seconds to open a connection to an AWS endpoint (a dead region fails fast)."""
    read_timeout: float = 10.0
    max_attempts: int = 2
    """botocore's total attempts (standard retry mode) per call."""
    tcp_timeout: float = 2.0
    """HealthProbe.database: seconds to open a TCP connection to the database."""
    sql_connect_timeout: int = 3
    """psycopg connect_timeout (whole seconds, libpq's unit)."""
    rename_timeout: float = 900.0
    """rebuild_replica: how long to wait for RDS to finish renaming the former primary aside."""
    replica_lag_metric_max_age: float = 180.0
    """A ReplicaLag datapoint older than this does not count as live replication."""
    throttle_deadline: float = 120.0
    """How long a throttled call is tried again (jittered back-off up to ``throttle_max_backoff``)
    before it fails. A throttle is the region answering, not a dead one: it is worth waiting for,
    where ``max_attempts`` keeps a dead endpoint's failure fast. AWS's quotas are per account and
    region (RDS: 300 requests burst, 12 per second; Route 53: 50 burst, 10 per second for the whole
    account), and a failover of many databases at once meets them."""
    throttle_max_backoff: float = 10.0

    def botocore_config(self) -> Config:
        return Config(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
                      retries={"mode": "standard", "total_max_attempts": self.max_attempts})


THROTTLING_CODES = frozenset(("Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
                              "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
                              "SlowDown", "PriorRequestNotComplete"))
"""Error codes with which AWS services say "not now, try again" (PriorRequestNotComplete: Route 53
is still applying an earlier change to the same records)."""


class Clients:
    """One boto3 client per (service, region), built on first use (thread-safe: the engine runs
    the steps of a phase in parallel)."""

    def __init__(self, session: Any = None, settings: AwsSettings | None = None, clock: Clock | None = None):
        self._session = session
        self.settings = settings or AwsSettings()
        self.clock = clock
        """Paces the retries of throttled calls (``aws_ports`` sets the runbook's clock)."""
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._random = random.Random()

    def use(self, service: str, region: str, client: Any) -> None:
        """Put a ready client in place (tests: a client wrapped in botocore's Stubber)."""
        with self._lock:
            self._clients[(service, region)] = client

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                if self._session is None:
                    self._session = boto3.session.Session()
                self._clients[key] = self._session.client(service, region_name=region,
                                                          config=self.settings.botocore_config())
            return self._clients[key]

    def call(self, service: str, region: str, operation: str, **params: Any) -> dict:
        """Call ``operation`` and map what goes wrong to the runbooks' errors:
        no answer (connection refused, timeout, 5xx after retries) → Unreachable;
        throttled → tried again with jittered back-off until ``settings.throttle_deadline``;
        missing permission → AwsCallFailed naming the IAM action; anything else → AwsCallFailed
        with AWS's code (callers catch the codes they expect with ``error_code``)."""
        clock = self.clock or SystemClock()
        deadline = clock.monotonic() + self.settings.throttle_deadline
        backoff = 0.5
        while True:
            try:
                return self._call_once(service, region, operation, params)
            except ClientError as exc:
                code = error_code(exc)
                if code not in THROTTLING_CODES:
                    raise
                if clock.monotonic() >= deadline:
                    raise AwsCallFailed(
                        f"{service} in {region} throttled {operation} ({code}) for "
                        f"{self.settings.throttle_deadline:g} s: the account's API quota there is used up (other "
                        "automation in the account shares it); rerun to continue, or ask AWS for a higher "
                        "quota") from exc
            with self._lock:
                pause = self._random.uniform(0.0, backoff)  # full jitter: throttled lanes do not retry in step
            clock.sleep(min(pause, max(deadline - clock.monotonic(), 0.0)))
            backoff = min(backoff * 2, self.settings.throttle_max_backoff)

    def _call_once(self, service: str, region: str, operation: str, params: dict) -> dict:
        client = self.client(service, region)
        try:
            return getattr(client, operation)(**params)
        except (HTTPClientError, BotoConnectionError) as exc:
            raise Unreachable(f"{service} in {region} did not answer {operation} ({type(exc).__name__}); "
                              "the region or the network path to its API is down") from exc
        except NoCredentialsError as exc:
            raise BadInput("no AWS credentials: run with the runbook role's credentials (AWS_PROFILE, "
                           "or an assumed role in the environment)") from exc
        except ClientError as exc:
            code = error_code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500 or code in ("ServiceUnavailable", "InternalFailure", "RequestTimeout"):
                raise Unreachable(f"{service} in {region} failed {operation} with {code} (HTTP {status}) "
                                  "after retries; the region's API is failing") from exc
            raise  # the caller decides: expected codes are handled there, others via fail()


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def fail(exc: ClientError, what: str) -> AwsCallFailed:
    """The error to raise for an AWS refusal that the adapter does not expect."""
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    op = exc.operation_name
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"):
        return AwsCallFailed(f"{what}: {op} was denied ({code}); add it to the runbook role's policy "
                             "(docs/aws-adapters.md lists every call the runbooks make)")
    return AwsCallFailed(f"{what}: {op} failed: {code}: {message}")


class EndpointClients(Clients):
    """Clients for S3-compatible endpoints per region (the sandbox's moto), with the sandbox's
    placeholder credentials (moto accepts any)."""

    def __init__(self, endpoints: dict[str, str], settings: AwsSettings | None = None):
        super().__init__(None, settings)
        self.endpoints = dict(endpoints)

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                if region not in self.endpoints:
                    raise BadInput(f"stack outputs: regions.{region}.storage.endpoint_url is missing")
                self._clients[key] = boto3.session.Session().client(
                    service, region_name="us-east-1", endpoint_url=self.endpoints[region],
                    aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
                    config=self.settings.botocore_config())
            return self._clients[key]


def endpoint_clients(endpoints: dict[str, str]) -> EndpointClients:
    return EndpointClients(endpoints)


def region_of_arn(arn: str | None) -> str | None:
    """The region an ARN names (None for no ARN or a global one)."""
    if arn and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def database_of(outputs: Outputs, region: str, database: str) -> tuple[Region, Database]:
    """The region and database the outputs describe, or BadInput naming the ones that exist."""
    try:
        r = outputs.regions[region]
    except KeyError:
        raise BadInput(f"region {region!r} is not in the stack outputs ({', '.join(outputs.regions)})") from None
    try:
        return r, r.databases[database]
    except KeyError:
        raise BadInput(f"database {database!r} is not in region {region} of the stack outputs "
                       f"({', '.join(r.databases)})") from None


def describe_instance(clients: Clients, region: str, identifier: str) -> dict | None:
    """The DB instance as RDS describes it, or None when there is no instance of that name."""
    try:
        found = clients.call("rds", region, "describe_db_instances", DBInstanceIdentifier=identifier)
    except ClientError as exc:
        if error_code(exc) == "DBInstanceNotFound":
            return None
        raise fail(exc, f"describe {region}/{identifier}") from exc
    instances = found.get("DBInstances") or []
    return instances[0] if instances else None


def epoch_seconds(value: Any) -> float | None:
    """Epoch seconds of a timestamp as boto3 returns it (datetime, or ISO 8601 text); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def utc_now(clients_clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime, to compare with AWS's timestamps."""
    return datetime.fromtimestamp(clients_clock.time(), timezone.utc)


def age_s(now: datetime, ts: datetime | None) -> float | None:
    """Seconds from ``ts`` to ``now`` (None when there is no timestamp)."""
    return None if ts is None else (now - ts).total_seconds()
