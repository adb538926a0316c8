"""The AWS adapters of the runbook ports: boto3 for the control planes, psycopg for SQL.

The only module of the project that imports boto3. Nothing here runs at import time: clients are
built on first use, one per (service, region), from the session given to ``aws_ports`` (or a
default one). botocore reads ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself, so
moto in server mode stands in for AWS in tests without any code here knowing.

In an incident a region's API may not answer at all; connect and read timeouts are short and
retries few, so a call to a dead region fails in seconds with ``runbooks.errors.Unreachable``
(the engine then records a best-effort failure or a blocked step) instead of hanging a minute.
There are no boto3 waiters: the engine polls through the ports with its own clock.

Every AWS call made here is listed in docs/aws-adapters.md (it feeds the runbook role's policy).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from runbooks.clock import Clock, SystemClock, iso, wait_until
from runbooks.errors import BadInput, LockHeld, RunbookError, StepFailed, Unreachable
from runbooks.lock import may_take_over
from runbooks.ports import DbInstance, Health, Ports, ReplicationState
from runbooks.redact import scrub
from contract.outputs import Database, Outputs, Region, secret_replica_arn

log = logging.getLogger(__name__)

FENCED_TAG = "regionpair:fenced"
"""On the database's security group while its client ingress is revoked by the runbooks."""
RULES_TAG = "regionpair:fenced-rules"
"""Prefix of the tags (``…:0``, ``…:1`` …) that remember the revoked ingress rules, as JSON."""
KEEP_PREFIX = "regionpair:runbook-access"
"""An ingress rule whose description starts with this is the runbooks' own way in (SQL probes,
draining a fenced primary); fencing keeps it. Clients never get a rule described so."""
TAG_VALUE_MAX = 256
MAX_RULE_TAGS = 40
"""EC2 allows 50 tags per resource; keep room for the stack's own."""


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


# --------------------------------------------------------------------------------------------
# Clients and error mapping
# --------------------------------------------------------------------------------------------


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


def _region_of_arn(arn: str | None) -> str | None:
    if arn and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _database(outputs: Outputs, region: str, database: str) -> tuple[Region, Database]:
    try:
        r = outputs.regions[region]
    except KeyError:
        raise BadInput(f"region {region!r} is not in the stack outputs ({', '.join(outputs.regions)})") from None
    try:
        return r, r.databases[database]
    except KeyError:
        raise BadInput(f"database {database!r} is not in region {region} of the stack outputs "
                       f"({', '.join(r.databases)})") from None


def _describe_instance(clients: Clients, region: str, identifier: str) -> dict | None:
    """The DB instance as RDS describes it, or None when there is no instance of that name."""
    try:
        found = clients.call("rds", region, "describe_db_instances", DBInstanceIdentifier=identifier)
    except ClientError as exc:
        if error_code(exc) == "DBInstanceNotFound":
            return None
        raise fail(exc, f"describe {region}/{identifier}") from exc
    instances = found.get("DBInstances") or []
    return instances[0] if instances else None


# --------------------------------------------------------------------------------------------
# Security group rules: flatten, remember in tags, restore
# --------------------------------------------------------------------------------------------

_SOURCE_KEYS = (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("PrefixListIds", "PrefixListId"),
                ("UserIdGroupPairs", "GroupId"))


def flatten_rules(permissions: Iterable[dict]) -> list[dict]:
    """One entry per (protocol, ports, source): the unit EC2 revokes and authorizes, and what is
    remembered to restore exactly. Each entry is a valid IpPermissions item."""
    flat = []
    for perm in permissions:
        base = {"IpProtocol": perm["IpProtocol"]}
        for k in ("FromPort", "ToPort"):
            if k in perm:
                base[k] = perm[k]
        for list_key, id_key in _SOURCE_KEYS:
            for source in perm.get(list_key) or []:
                entry = {k: v for k, v in source.items() if k in (id_key, "Description", "UserId", "VpcId",
                                                                   "VpcPeeringConnectionId")}
                if list_key == "UserIdGroupPairs":
                    entry.pop("VpcId", None)
                flat.append({**base, list_key: [entry]})
    return flat


def _rule_key(rule: dict) -> str:
    """Identity of a rule regardless of its description (EC2 treats those as the same rule)."""
    stripped = json.loads(json.dumps(rule))
    for list_key, _ in _SOURCE_KEYS:
        for source in stripped.get(list_key, []):
            source.pop("Description", None)
            source.pop("UserId", None)
    return json.dumps(stripped, sort_keys=True)


def _kept(rule: dict) -> bool:
    return any((s.get("Description") or "").startswith(KEEP_PREFIX)
               for list_key, _ in _SOURCE_KEYS for s in rule.get(list_key, []))


def _encode_rules(rules: list[dict]) -> list[dict]:
    text = json.dumps(rules, separators=(",", ":"), sort_keys=True)
    chunks = [text[i:i + TAG_VALUE_MAX] for i in range(0, len(text), TAG_VALUE_MAX)] or ["[]"]
    if len(chunks) > MAX_RULE_TAGS:
        raise StepFailed(f"{len(rules)} ingress rules are too many to remember in {MAX_RULE_TAGS} tags; nothing was "
                         "revoked. Consolidate the security group's rules (e.g. a prefix list) and rerun")
    return [{"Key": f"{RULES_TAG}:{i}", "Value": c} for i, c in enumerate(chunks)]


def _decode_rules(tags: dict[str, str]) -> list[dict] | None:
    parts = sorted(((int(k.rsplit(":", 1)[1]), v) for k, v in tags.items()
                    if k.startswith(RULES_TAG + ":") and k.rsplit(":", 1)[1].isdigit()))
    if not parts:
        return None
    try:
        return json.loads("".join(v for _, v in parts))
    except json.JSONDecodeError:
        raise StepFailed(f"the tags {RULES_TAG}:* that remember the revoked ingress rules are corrupt; restore the "
                         "rules from the stack (`pulumi up` on that region's stack) and delete those tags") from None


# --------------------------------------------------------------------------------------------
# DatabaseControl on RDS (+ EC2 security groups for fencing)
# --------------------------------------------------------------------------------------------


class RdsControl:
    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, sql: "PsycopgSql | None" = None):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.sql = sql

    # ---- reading ---------------------------------------------------------------------------

    def describe(self, region: str, database: str) -> DbInstance:
        _, db = _database(self.outputs, region, database)
        try:
            inst = _describe_instance(self.clients, region, db.identifier)
        except Unreachable:
            return DbInstance(region, database, db.identifier, "unreachable", "unknown", False)
        if inst is None:
            return DbInstance(region, database, db.identifier, "not-found", "unknown", False)
        source = inst.get("ReadReplicaSourceDBInstanceIdentifier")
        role = "replica" if source else "primary"
        source_region = (_region_of_arn(source) or region) if source else None
        try:
            fenced = self._fence_state(region, db, inst)[0]
        except Unreachable:
            fenced = False
        return DbInstance(region, database, db.identifier, inst.get("DBInstanceStatus", "unknown"), role, fenced,
                          source_region)

    def _group_ids(self, db: Database, inst: dict) -> list[str]:
        attached = [g["VpcSecurityGroupId"] for g in inst.get("VpcSecurityGroups") or []]
        declared = db.security_group_id or (attached[0] if len(attached) == 1 else None)
        if declared is None:
            raise BadInput(f"stack outputs: database {db.name} ({db.identifier}) names no security_group_id and "
                           f"has {len(attached)} attached; export the database's security group to fence it")
        return [declared] + [g for g in attached if g != declared]

    def _groups(self, region: str, group_ids: list[str]) -> dict[str, dict]:
        try:
            found = self.clients.call("ec2", region, "describe_security_groups", GroupIds=group_ids)
        except ClientError as exc:
            raise fail(exc, f"read security groups {', '.join(group_ids)} in {region}") from exc
        return {g["GroupId"]: g for g in found["SecurityGroups"]}

    def _fence_state(self, region: str, db: Database, inst: dict) -> tuple[bool, str, dict, list[str]]:
        """(fenced, declared group id, groups by id, groups other than the declared one that still let
        clients in)."""
        ids = self._group_ids(db, inst)
        groups = self._groups(region, ids)
        declared = groups[ids[0]]
        tags = {t["Key"]: t["Value"] for t in declared.get("Tags") or []}
        open_groups = [gid for gid in ids
                       if any(not _kept(r) for r in flatten_rules((groups.get(gid) or {}).get("IpPermissions") or []))]
        return tags.get(FENCED_TAG) == "true" and not open_groups, ids[0], groups, open_groups

    # ---- fencing ---------------------------------------------------------------------------

    def fence(self, region: str, database: str) -> str:
        """Revoke client ingress on the database's security group, remembering the rules in tags of
        that group first (so a crash never loses them), then end established client sessions (a
        security group change does not cut tracked connections)."""
        _, db = _database(self.outputs, region, database)
        inst = _describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{region}/{database}: no DB instance {db.identifier}; nothing to fence")
        fenced, gid, groups, _ = self._fence_state(region, db, inst)
        if fenced:
            return f"{region}/{database} was already fenced (security group {gid} lets no client in)"
        group = groups[gid]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
        current = flatten_rules(group.get("IpPermissions") or [])
        to_revoke = [r for r in current if not _kept(r)]
        remembered = _decode_rules(tags) or []
        known = {_rule_key(r) for r in remembered}
        merged = remembered + [r for r in to_revoke if _rule_key(r) not in known]
        new_tags = _encode_rules(merged)
        stale = [k for k in tags if k.startswith(RULES_TAG + ":") and k not in {t["Key"] for t in new_tags}]
        try:
            self.clients.call("ec2", region, "create_tags", Resources=[gid],
                              Tags=new_tags + [{"Key": FENCED_TAG, "Value": "true"}])
            if stale:
                self.clients.call("ec2", region, "delete_tags", Resources=[gid], Tags=[{"Key": k} for k in stale])
            if to_revoke:
                self.clients.call("ec2", region, "revoke_security_group_ingress", GroupId=gid, IpPermissions=to_revoke)
        except ClientError as exc:
            raise fail(exc, f"fence {region}/{database} (security group {gid})") from exc
        _, _, _, still_open = self._fence_state(region, db, inst)
        if still_open:
            raise StepFailed(f"{region}/{database}: revoked {len(to_revoke)} ingress rule(s) of {gid}, but security "
                             f"group(s) {', '.join(still_open)} attached to {db.identifier} still let clients in; "
                             "detach them from the instance (or move their rules into the database's own group) "
                             "and rerun")
        sessions = self._end_sessions(region, database)
        return (f"fenced {region}/{database}: revoked {len(to_revoke)} ingress rule(s) of {gid} "
                f"(remembered in its tags for unfence); {sessions}")

    def _end_sessions(self, region: str, database: str) -> str:
        if self.sql is None:
            return "established sessions were left alone (no SQL access configured)"
        try:
            n = self.sql.terminate_client_sessions(region, database)
        except Unreachable as exc:
            return f"could not end established client sessions ({exc}); they end when the instance restarts"
        return f"ended {n} established client session(s)"

    def unfence(self, region: str, database: str) -> str:
        _, db = _database(self.outputs, region, database)
        inst = _describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{region}/{database}: no DB instance {db.identifier}; nothing to unfence")
        gid = self._group_ids(db, inst)[0]
        group = self._groups(region, [gid])[gid]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags") or []}
        remembered = _decode_rules(tags)
        if remembered is None and FENCED_TAG not in tags:
            return f"{region}/{database} was not fenced by the runbooks (no {FENCED_TAG} tag on {gid})"
        present = {_rule_key(r) for r in flatten_rules(group.get("IpPermissions") or [])}
        missing = [r for r in remembered or [] if _rule_key(r) not in present]
        try:
            if missing:
                self.clients.call("ec2", region, "authorize_security_group_ingress", GroupId=gid,
                                  IpPermissions=missing)
            ours = [k for k in tags if k == FENCED_TAG or k.startswith(RULES_TAG + ":")]
            self.clients.call("ec2", region, "delete_tags", Resources=[gid], Tags=[{"Key": k} for k in ours])
        except ClientError as exc:
            raise fail(exc, f"unfence {region}/{database} (security group {gid})") from exc
        return f"unfenced {region}/{database}: restored {len(missing)} ingress rule(s) of {gid}"

    # ---- promotion and rebuild ---------------------------------------------------------------

    def promote(self, region: str, database: str) -> str:
        _, db = _database(self.outputs, region, database)
        where = f"{region}/{database} ({db.identifier})"
        inst = _describe_instance(self.clients, region, db.identifier)
        if inst is None:
            raise StepFailed(f"{where}: no such DB instance; check the stack outputs")
        if not inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            return f"{where} is already standalone (promoted earlier)"
        try:
            self.clients.call("rds", region, "promote_read_replica", DBInstanceIdentifier=db.identifier)
        except ClientError as exc:
            if error_code(exc) == "InvalidDBInstanceState":
                status = (_describe_instance(self.clients, region, db.identifier) or {}).get("DBInstanceStatus")
                if status in ("modifying", "rebooting", "renaming", "upgrading"):
                    return f"promotion of {where} already under way (status {status})"
                raise StepFailed(f"{where} cannot be promoted while {status}; wait until it is available, "
                                 "then rerun") from exc
            raise fail(exc, f"promote {where}") from exc
        return f"promotion of {where} started"

    def rebuild_replica(self, region: str, database: str, source_region: str) -> str:
        """RDS cannot demote a primary in place: rename the old instance aside (kept, never deleted
        here), then create a cross-region read replica of the current primary under the identifier
        the outputs name, encrypted with this region's KMS key."""
        r, db = _database(self.outputs, region, database)
        _, src = _database(self.outputs, source_region, database)
        where = f"{region}/{database}"
        inst = _describe_instance(self.clients, region, db.identifier)
        source_inst = _describe_instance(self.clients, source_region, src.identifier)
        if source_inst is None:
            raise StepFailed(f"{source_region}/{database}: no DB instance {src.identifier} to replicate from")
        source_arn = source_inst.get("DBInstanceArn") or src.arn
        if inst is not None and inst.get("ReadReplicaSourceDBInstanceIdentifier") in (source_arn, src.identifier):
            return f"{where} ({db.identifier}) already replicates {source_arn}"
        template = inst or {}
        kept = ""
        if inst is not None:
            if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
                raise StepFailed(f"{where} ({db.identifier}) replicates {inst['ReadReplicaSourceDBInstanceIdentifier']}, "
                                 f"not {source_arn}; resolve by hand, the runbook does not rename a replica")
            aside = f"{db.identifier}-old-{datetime.fromtimestamp(self.clock.time(), timezone.utc):%Y%m%d%H%M%S}"
            aside = aside[:63]
            try:
                self.clients.call("rds", region, "modify_db_instance", DBInstanceIdentifier=db.identifier,
                                  NewDBInstanceIdentifier=aside, ApplyImmediately=True)
            except ClientError as exc:
                raise fail(exc, f"rename {where} ({db.identifier}) aside to {aside}") from exc
            wait_until(lambda: _describe_instance(self.clients, region, db.identifier) is None,
                       what=f"RDS to rename {db.identifier} to {aside}", timeout=self.clients.settings.rename_timeout,
                       clock=self.clock, interval=1.0, max_interval=10.0)
            kept = (f"; the former instance is kept as {aside} (renamed, so its endpoint changed; the runbook never "
                    "deletes it: delete it yourself once the new replica has caught up)")
        params: dict[str, Any] = {
            "DBInstanceIdentifier": db.identifier,
            "SourceDBInstanceIdentifier": source_arn,
            "SourceRegion": source_region,
            "PubliclyAccessible": False,
            "CopyTagsToSnapshot": True,
            "DeletionProtection": True,
            "Tags": [{"Key": "regionpair:rebuilt-from", "Value": source_arn[:TAG_VALUE_MAX]}],
        }
        if r.kms_key_arn:
            params["KmsKeyId"] = r.kms_key_arn
        if db.security_group_id:
            params["VpcSecurityGroupIds"] = [db.security_group_id]
        for key in ("DBInstanceClass", "MultiAZ", "StorageType"):
            if template.get(key) is not None:
                params[key] = template[key]
        if template.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
            params["DBSubnetGroupName"] = template["DBSubnetGroup"]["DBSubnetGroupName"]
        if template.get("Endpoint", {}).get("Port"):
            params["Port"] = template["Endpoint"]["Port"]
        try:
            self.clients.call("rds", region, "create_db_instance_read_replica", **params)
        except ClientError as exc:
            raise fail(exc, f"create {db.identifier} in {region} as a replica of {source_arn}") from exc
        key = f", encrypted with {r.kms_key_arn}" if r.kms_key_arn else ""
        return f"creating {db.identifier} in {region} as a read replica of {source_arn}{key}{kept}"


# --------------------------------------------------------------------------------------------
# SqlProbe on psycopg
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnInfo:
    host: str
    port: int
    dbname: str
    user: str
    password: str
    connect_timeout: int
    sslmode: str = "require"

    def __repr__(self) -> str:  # never the password, also not in a traceback's locals
        return f"ConnInfo({self.user}@{self.host}:{self.port}/{self.dbname}, sslmode={self.sslmode})"


class SqlConnection(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...

    def close(self) -> None: ...


Connect = Callable[[ConnInfo], SqlConnection]


def psycopg_connect(info: ConnInfo) -> SqlConnection:
    import psycopg
    return psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=info.user,
                           password=info.password, sslmode=info.sslmode, connect_timeout=info.connect_timeout,
                           autocommit=True, application_name="regionpair-runbooks")


def parse_lsn(text: str | None) -> int | None:
    """'16/B374D848' → 0x16B374D848 (PostgreSQL's pg_lsn as an integer)."""
    if text is None:
        return None
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True)
class AwsReplicationState(ReplicationState):
    lag_source: str = ""
    """Where lag_seconds and streaming came from: ``pg_stat_wal_receiver`` or ``cloudwatch:ReplicaLag``."""


class PsycopgSql:
    """SQL on the databases, with the master password from Secrets Manager (never logged,
    never returned). One short-lived connection per call: a promotion or a failed region breaks
    long-lived ones, and a call costs one TLS handshake."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, connect: Connect = psycopg_connect):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.connect = connect
        self._passwords: dict[str, str] = {}
        self._lock = threading.Lock()

    def _password(self, db: Database, refresh: bool = False) -> str:
        if not db.secret_arn:
            raise BadInput(f"stack outputs: database {db.name} ({db.identifier}) has no secret_arn; the runbooks "
                           "read the master password from the stack-owned Secrets Manager secret (`pulumi up` the "
                           "stacks of this version, which export it)")
        with self._lock:
            if refresh or db.secret_arn not in self._passwords:
                value = self._read_secret(db)
                try:
                    self._passwords[db.secret_arn] = json.loads(value["SecretString"])["password"]
                except (KeyError, TypeError, json.JSONDecodeError):
                    raise AwsCallFailed(f"secret {db.secret_arn} is not an RDS master user secret (JSON with a "
                                        "'password' key)") from None
            return self._passwords[db.secret_arn]

    def _read_secret(self, db: Database) -> dict:
        """The secret in its own region; when that region does not answer (the primary's, in the
        outage a failover is for), its replica in another region of the pair: same ARN, other region
        (Secrets Manager's replicas; the prod stack declares the DR replica of each database's
        secret, regionpair:dr_region)."""
        home = _region_of_arn(db.secret_arn) or ""
        try:
            return self.clients.call("secretsmanager", home, "get_secret_value", SecretId=db.secret_arn)
        except ClientError as exc:
            raise fail(exc, f"read the password of {db.identifier} from {db.secret_arn}") from exc
        except Unreachable as exc:
            lost = exc
        tried = []
        for other in self.outputs.regions:
            if other == home:
                continue
            replica = secret_replica_arn(db.secret_arn, other)
            try:
                return self.clients.call("secretsmanager", other, "get_secret_value", SecretId=replica)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise fail(exc, f"read the password of {db.identifier} from its replica {replica}") from exc
                tried.append(f"{other} has no replica of it")
            except Unreachable as exc:
                tried.append(f"{other} does not answer either ({exc})")
        raise Unreachable(f"cannot read the password of {db.identifier}: {lost}; " + "; ".join(tried) +
                          f". The prod stack declares the secret's replica in the DR region (regionpair:dr_region): "
                          f"run `pulumi up -s prod` while prod's region is up; or replicate it yourself: aws "
                          f"secretsmanager replicate-secret-to-regions --secret-id {db.secret_arn} "
                          f"--add-replica-regions Region=<DR region>") from None

    def _open(self, region: str, database: str) -> SqlConnection:
        _, db = _database(self.outputs, region, database)
        import psycopg  # only the error classes; the connection comes from self.connect
        for attempt in (0, 1):
            info = ConnInfo(db.endpoint, db.port, db.db_name, db.username, self._password(db, refresh=attempt == 1),
                            self.clients.settings.sql_connect_timeout)
            try:
                return self.connect(info)
            except psycopg.OperationalError as exc:
                if getattr(exc, "sqlstate", None) == "28P01" and attempt == 0:
                    continue  # password rotated since we read it: read it again, once
                raise Unreachable(f"{region}/{database} ({db.endpoint}:{db.port}) does not accept connections: "
                                  f"{scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, region: str, database: str, fn: Callable[[SqlConnection], Any]) -> Any:
        import psycopg
        conn = self._open(region, database)
        try:
            return fn(conn)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"{region}/{database}: connection lost: {scrub(str(exc).strip())}") from None
        finally:
            conn.close()

    def replication(self, region: str, database: str) -> ReplicationState:
        return self._run(region, database, lambda conn: self._replication(conn, region, database))

    def _replication(self, conn: SqlConnection, region: str, database: str) -> ReplicationState:
        (in_recovery,) = conn.execute("select pg_is_in_recovery()").fetchone()
        if not in_recovery:
            (lsn,) = conn.execute("select pg_current_wal_lsn()::text").fetchone()
            rows = conn.execute(
                "select application_name, state, sync_state, extract(epoch from replay_lag)::float8 "
                "from pg_stat_replication").fetchall()
            replicas = tuple({"application_name": a, "state": s, "sync_state": y, "replay_lag_seconds": lag}
                             for a, s, y, lag in rows)
            return AwsReplicationState(in_recovery=False, lsn=parse_lsn(lsn), replicas=replicas, lag_source="primary")
        replay, receive, replay_age = conn.execute(
            "select pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text, "
            "extract(epoch from now() - pg_last_xact_replay_timestamp())::float8").fetchone()
        receiver = conn.execute(
            "select status, extract(epoch from now() - last_msg_receipt_time)::float8 "
            "from pg_stat_wal_receiver").fetchone()
        replay_lsn, receive_lsn = parse_lsn(replay), parse_lsn(receive)
        if receiver is not None:
            status, contact_age = receiver
            caught_up = receive_lsn is not None and replay_lsn is not None and replay_lsn >= receive_lsn
            lag = 0.0 if caught_up else replay_age
            return AwsReplicationState(in_recovery=True, lsn=replay_lsn or 0, receive_lsn=receive_lsn,
                                       streaming=status == "streaming", lag_seconds=lag,
                                       last_contact_age_seconds=contact_age, lag_source="pg_stat_wal_receiver")
        lag, replicating = self._lag_from_cloudwatch(region, database)
        return AwsReplicationState(in_recovery=True, lsn=replay_lsn or 0, receive_lsn=receive_lsn,
                                   streaming=replicating, lag_seconds=lag, last_contact_age_seconds=None,
                                   lag_source="cloudwatch:ReplicaLag")

    def _lag_from_cloudwatch(self, region: str, database: str) -> tuple[float | None, bool]:
        """RDS cross-region replicas may show no WAL receiver: then the ReplicaLag metric (and
        RDS's read-replication status) say how far behind it is and whether it replicates."""
        _, db = _database(self.outputs, region, database)
        now = datetime.fromtimestamp(self.clock.time(), timezone.utc)
        try:
            stats = self.clients.call("cloudwatch", region, "get_metric_statistics", Namespace="AWS/RDS",
                                      MetricName="ReplicaLag",
                                      Dimensions=[{"Name": "DBInstanceIdentifier", "Value": db.identifier}],
                                      StartTime=now - timedelta(minutes=5), EndTime=now, Period=60,
                                      Statistics=["Maximum"])
        except ClientError as exc:
            raise fail(exc, f"read ReplicaLag of {db.identifier} in {region}") from exc
        points = sorted(stats.get("Datapoints") or [], key=lambda p: p["Timestamp"])
        inst = _describe_instance(self.clients, region, db.identifier) or {}
        infos = [i for i in inst.get("StatusInfos") or [] if i.get("StatusType") == "read replication"]
        replicating = bool(infos) and all(i.get("Status") == "replicating" and i.get("Normal", True) for i in infos)
        if not points:
            return None, False
        latest = points[-1]
        fresh = (now - latest["Timestamp"]).total_seconds() <= self.clients.settings.replica_lag_metric_max_age
        return float(latest["Maximum"]), replicating and fresh

    def canary_write(self, region: str, database: str) -> str:
        import psycopg
        canary = f"{iso(self.clock.time())}-{uuid.uuid4().hex[:12]}"

        def write(conn: SqlConnection) -> str:
            try:
                conn.execute("create table if not exists regionpair_canary(id text primary key, at timestamptz not null)")
                conn.execute("insert into regionpair_canary(id, at) values (%s, now())", (canary,))
            except psycopg.errors.ReadOnlySqlTransaction:
                raise StepFailed(f"{region}/{database} takes no write: it is read-only (still in recovery?)") from None
            row = conn.execute("select at from regionpair_canary where id = %s", (canary,)).fetchone()
            if row is None:
                raise StepFailed(f"{region}/{database} accepted canary {canary} but does not return it")
            return f"canary {canary} written to and read back from {region}/{database}"
        return self._run(region, database, write)

    def terminate_client_sessions(self, region: str, database: str) -> int:
        """End the sessions of clients (not replication, not RDS's own, not ours): a revoked security
        group rule does not cut connections that are already established."""
        def kill(conn: SqlConnection) -> int:
            rows = conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'client backend' "
                "and pid <> pg_backend_pid() and usename not in ('rdsadmin', current_user)").fetchall()
            return sum(1 for (ok,) in rows if ok)
        return self._run(region, database, kill)


# --------------------------------------------------------------------------------------------
# DnsControl on Route53
# --------------------------------------------------------------------------------------------


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower()


class Route53Dns:
    """``health-check-inversion``: the PRIMARY failover record is guarded by the stacks' pin check
    (components/dns.py): a CALCULATED check with threshold 0, declared ``Disabled``, which Route53
    always considers healthy, so nothing but this runbook moves the name. Sending clients to the
    secondary inverts it (``Disabled`` and ``Inverted``: "always unhealthy" whatever anything does,
    also after the primary comes back); sending them to the primary clears the inversion and keeps
    it ``Disabled`` (always healthy again). The runbook never enables a check: an enabled check
    would move the name on its own. A check of an older stack that probes the endpoint is left
    disabled by the restore too, which is what makes it safe.

    ``record-upsert``: the service's record is a simple CNAME; pointing UPSERTs it to the target
    region's database endpoint with the declared TTL."""

    control_region = "us-east-1"
    """Route53 is global; its control plane answers through us-east-1."""

    read_max_age = 1.0
    """Seconds a read of the pin check is shared between the lanes. Route 53's API quota is per
    account (50 requests burst, 10 per second, all operations together): fifty databases each polling
    the one check that guards them all would spend it several times over (benchmarks/aws_scale.py)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self._zone_id = outputs.dns.zone_id
        self._reads: dict[tuple, tuple[float, dict]] = {}
        self._reads_lock = threading.Lock()
        self._pin_lock = threading.Lock()
        """One lane at a time reads and moves the pin check, so the others find it moved."""

    def _call(self, op: str, what: str, **params) -> dict:
        try:
            result = self.clients.call("route53", self.control_region, op, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc
        if not op.startswith(("get_", "list_")):
            with self._reads_lock:
                self._reads.clear()  # a change: no read from before it is shared after it
        return result

    def _read(self, op: str, what: str, **params) -> dict:
        """A read shared by every lane for ``read_max_age`` seconds (cleared by any change made here)."""
        clock = self.clients.clock or SystemClock()
        key = (op, tuple(sorted(params.items())))
        with self._reads_lock:
            found = self._reads.get(key)
            if found is not None and clock.monotonic() - found[0] < self.read_max_age:
                return found[1]
        result = self._call(op, what, **params)
        with self._reads_lock:
            self._reads[key] = (clock.monotonic(), result)
        return result

    def _record(self, service: str) -> str:
        try:
            return self.outputs.dns.records[service]
        except KeyError:
            raise BadInput(f"service {service!r} has no record in the stack outputs' dns.records "
                           f"({', '.join(self.outputs.dns.records)})") from None

    def zone_id(self) -> str:
        if self._zone_id is None:
            zones = self._call("list_hosted_zones_by_name", f"find hosted zone {self.outputs.dns.zone_name}",
                               DNSName=self.outputs.dns.zone_name)["HostedZones"]
            matches = [z for z in zones if _fqdn(z["Name"]) == _fqdn(self.outputs.dns.zone_name)]
            if len(matches) != 1:
                raise BadInput(f"stack outputs: dns.zone_id is not set and {len(matches)} hosted zones are named "
                               f"{self.outputs.dns.zone_name}; export the zone id")
            self._zone_id = matches[0]["Id"].rsplit("/", 1)[-1]
        return self._zone_id

    def _record_sets(self, name: str) -> list[dict]:
        found = self._call("list_resource_record_sets", f"read record {name}", HostedZoneId=self.zone_id(),
                           StartRecordName=name, StartRecordType="CNAME", MaxItems="10")
        return [r for r in found["ResourceRecordSets"] if _fqdn(r["Name"]) == _fqdn(name) and r["Type"] == "CNAME"]

    def _health_check_id(self) -> str:
        hc = self.outputs.primary.dns.health_check_id
        if not hc:
            raise BadInput(f"stack outputs: regions.{self.outputs.primary.name}.dns.health_check_id is missing; "
                           "the health-check-inversion strategy flips the check guarding the PRIMARY record")
        return hc

    # ---- answer ------------------------------------------------------------------------------

    def answer(self, service: str) -> str | None:
        record = self._record(service)
        if self.outputs.dns.strategy == "record-upsert":
            return self._answer_upsert(service, record)
        return self._answer_inversion()

    def _answer_inversion(self) -> str | None:
        hc_id = self._health_check_id()
        config = self._read("get_health_check", f"read health check {hc_id}",
                            HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
        inverted = bool(config.get("Inverted"))
        if config.get("Disabled"):
            healthy = not inverted  # Route53: a disabled check is healthy; inverted, unhealthy
        else:
            observations = self._read("get_health_check_status", f"read status of health check {hc_id}",
                                      HealthCheckId=hc_id)["HealthCheckObservations"]
            if not observations:
                return None
            ok = sum(1 for o in observations if o.get("StatusReport", {}).get("Status", "").startswith("Success"))
            # Route53 considers an endpoint healthy when more than 18% of its checkers do
            healthy = (ok / len(observations) > 0.18) != inverted
        return self.outputs.primary.name if healthy else self.outputs.secondary.name

    def _answer_upsert(self, service: str, record: str) -> str | None:
        sets = [r for r in self._record_sets(record) if "SetIdentifier" not in r]
        if not sets:
            return None
        values = {_fqdn(v["Value"]) for v in sets[0].get("ResourceRecords") or []}
        for region in self.outputs.regions.values():
            db = region.databases.get(service)
            if db is not None and _fqdn(db.endpoint) in values:
                return region.name
        log.warning("record %s points at %s, which is no database endpoint of the outputs", record, sorted(values))
        return None

    # ---- point -------------------------------------------------------------------------------

    def point(self, service: str, region: str) -> str:
        record = self._record(service)
        if region not in self.outputs.regions:
            raise BadInput(f"region {region!r} is not in the stack outputs")
        if self.outputs.dns.strategy == "record-upsert":
            return self._point_upsert(service, record, region)
        return self._point_inversion(service, record, region)

    def _point_inversion(self, service: str, record: str, region: str) -> str:
        hc_id = self._health_check_id()
        primary = [r for r in self._record_sets(record) if r.get("Failover") == "PRIMARY"]
        if not primary or primary[0].get("HealthCheckId") != hc_id:
            raise StepFailed(f"the PRIMARY failover record {record} is not guarded by health check {hc_id}, so "
                             "flipping that check would not move it; fix the dns component's records")
        to_secondary = region == self.outputs.secondary.name
        with self._pin_lock:
            config = self._read("get_health_check", f"read health check {hc_id}",
                                HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
            if config.get("Disabled") and bool(config.get("Inverted")) == to_secondary:
                # another database's lane moved it already: the check guards every PRIMARY record
                return (f"health check {hc_id} is already {'pinned unhealthy' if to_secondary else 'restored'} "
                        f"(disabled{', inverted' if to_secondary else ', not inverted'}): {record} answers "
                        f"{'the SECONDARY' if to_secondary else 'PRIMARY'} record ({region})")
            # Disabled always: a disabled check is healthy, and inverted unhealthy, whatever the endpoint does
            self._call("update_health_check", f"{'pin' if to_secondary else 'restore'} health check {hc_id}",
                       HealthCheckId=hc_id, Disabled=True, Inverted=to_secondary)
        if to_secondary:
            return (f"health check {hc_id} pinned unhealthy (disabled + inverted): {record} answers the SECONDARY "
                    f"record ({region}), also after the primary comes back; every record guarded by this check moves")
        return (f"health check {hc_id} restored (disabled, not inverted: always healthy): {record} answers PRIMARY "
                f"({region}) until a runbook pins it again; no health check moves it on its own")

    def _point_upsert(self, service: str, record: str, region: str) -> str:
        db = self.outputs.regions[region].databases.get(service)
        if db is None:
            raise BadInput(f"record-upsert moves database records only; {service!r} is no database of {region}")
        if any("SetIdentifier" in r for r in self._record_sets(record)):
            raise StepFailed(f"{record} is a failover/routing-policy record; the record-upsert strategy needs a simple "
                             "CNAME (or use the health-check-inversion strategy)")
        change = {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": record, "Type": "CNAME", "TTL": self.outputs.dns.ttl_seconds,
            "ResourceRecords": [{"Value": db.endpoint}]}}
        info = self._call("change_resource_record_sets", f"point {record} at {db.endpoint}",
                          HostedZoneId=self.zone_id(),
                          ChangeBatch={"Comment": f"regionpair: {service} to {region}", "Changes": [change]})
        return (f"{record} CNAME → {db.endpoint} ({region}), TTL {self.outputs.dns.ttl_seconds} s "
                f"(change {info['ChangeInfo']['Id'].rsplit('/', 1)[-1]})")


# --------------------------------------------------------------------------------------------
# HealthProbe, Notifier
# --------------------------------------------------------------------------------------------


class AwsHealth:
    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def region(self, region: str) -> Health:
        r = self.outputs.regions.get(region)
        if r is None:
            raise BadInput(f"region {region!r} is not in the stack outputs")
        db = next(iter(r.databases.values()))
        try:
            inst = _describe_instance(self.clients, region, db.identifier)
        except Unreachable as exc:
            return Health(False, f"{region}: RDS API does not answer ({exc})")
        if inst is None:
            return Health(False, f"{region}: RDS API answers, but {db.identifier} does not exist")
        return Health(True, f"{region}: RDS API answers ({db.identifier} is {inst.get('DBInstanceStatus')})")

    def database(self, region: str, database: str) -> Health:
        _, db = _database(self.outputs, region, database)
        try:
            with socket.create_connection((db.endpoint, db.port), timeout=self.clients.settings.tcp_timeout):
                pass
        except OSError as exc:
            return Health(False, f"{region}/{database} ({db.endpoint}:{db.port}) refuses connections: "
                                 f"{exc.strerror or type(exc).__name__}")
        return Health(True, f"{region}/{database} ({db.endpoint}:{db.port}) accepts connections")


class SnsNotifier:
    """Publishes to every region's alarm topic, the DR region's first (the one most likely up)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def topics(self) -> list[tuple[str, str]]:
        ordered = [self.outputs.secondary] + [r for r in self.outputs.regions.values() if r.role != "secondary"]
        return [(r.name, r.alarm_topic_arn) for r in ordered if r.alarm_topic_arn]

    def notify(self, subject: str, message: str) -> None:
        topics = self.topics()
        if not topics:
            log.info("%s: %s (no alarm topic in the outputs)", subject, scrub(message))
            return
        clean_subject = re.sub(r"[^\x20-\x7e]", " ", scrub(subject))[:99] or "regionpair"
        failed = []
        for region, arn in topics:
            try:
                self.clients.call("sns", _region_of_arn(arn) or region, "publish", TopicArn=arn,
                                  Subject=clean_subject, Message=scrub(message))
            except Unreachable as exc:
                failed.append(f"{arn}: {exc}")
            except ClientError as exc:
                failed.append(str(fail(exc, f"notify {arn}")))
        if len(failed) == len(topics):
            raise Unreachable("no alarm topic took the notification: " + "; ".join(failed))
        for f in failed:
            log.warning("notification not delivered to %s", f)


# --------------------------------------------------------------------------------------------
# Lock on S3 (conditional writes)
# --------------------------------------------------------------------------------------------


class S3Lock:
    """The pair's lock as one S3 object in the DR region's backups bucket (reachable when the
    primary region is down). Taken with ``If-None-Match: *``; taken over (crashed own run, or
    --break-lock) with ``If-Match`` on the ETag read, so two takers cannot both win; released
    with ``If-Match`` so a run only ever deletes its own lock."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self.key = f"regionpair/locks/{outputs.project}.json"

    def _where(self) -> tuple[str, str]:
        dr = self.outputs.secondary
        if dr.storage is None or not dr.storage.backups_bucket:
            raise BadInput(f"stack outputs: regions.{dr.name}.storage.backups_bucket is missing; the AWS lock lives "
                           "there (both regions can reach it when the primary region is down)")
        return dr.name, dr.storage.backups_bucket

    def _read(self) -> tuple[dict, str] | None:
        region, bucket = self._where()
        try:
            obj = self.clients.call("s3", region, "get_object", Bucket=bucket, Key=self.key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise fail(exc, f"read lock s3://{bucket}/{self.key}") from exc
        body = obj["Body"].read()
        try:
            holder = json.loads(body)
        except json.JSONDecodeError:
            holder = {"run_id": "?", "who": "?", "since": "?", "note": f"unreadable lock s3://{bucket}/{self.key}"}
        return holder, obj["ETag"]

    def holder(self) -> dict | None:
        found = self._read()
        return None if found is None else found[0]

    def _put(self, body: bytes, **condition) -> bool:
        """Write the lock under a condition; False when the condition did not hold."""
        region, bucket = self._where()
        try:
            self.clients.call("s3", region, "put_object", Bucket=bucket, Key=self.key, Body=body,
                              ContentType="application/json", **condition)
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise fail(exc, f"write lock s3://{bucket}/{self.key}") from exc
        return True

    def acquire(self, info: dict, break_lock: bool = False) -> str:
        info = dict(info, host=socket.gethostname(), pid=os.getpid())
        body = json.dumps(info, sort_keys=True).encode()
        for _ in range(3):  # the lock may vanish or change between our write and our read
            if self._put(body, IfNoneMatch="*"):
                return "lock taken"
            found = self._read()
            if found is None:
                continue
            holder, etag = found
            if holder.get("run_id") == info["run_id"] and holder.get("pid") == info["pid"] \
                    and holder.get("host") == info["host"]:
                return "lock already held by this run"
            if not (break_lock or may_take_over(holder, info)):
                raise LockHeld(holder)
            if self._put(body, IfMatch=etag):
                why = "broken by --break-lock" if break_lock else "taken over from the crashed run"
                return f"lock {why} (was {holder.get('run_id')} by {holder.get('who')} since {holder.get('since')})"
        raise LockHeld(self.holder() or {"run_id": "?", "note": "the lock kept changing under us"})

    def release(self, run_id: str) -> None:
        found = self._read()
        if found is None or found[0].get("run_id") != run_id:
            return
        region, bucket = self._where()
        try:
            self.clients.call("s3", region, "delete_object", Bucket=bucket, Key=self.key, IfMatch=found[1])
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "NoSuchKey"):
                return  # somebody broke our lock meanwhile: it is theirs now
            raise fail(exc, f"release lock s3://{bucket}/{self.key}") from exc


# --------------------------------------------------------------------------------------------
# The bundle
# --------------------------------------------------------------------------------------------


def aws_ports(outputs: Outputs, clock: Clock, session: Any = None, *, clients: Clients | None = None,
              connect: Connect | None = None, settings: AwsSettings | None = None) -> Ports:
    """The runbook ports for a region pair in AWS. Nothing is contacted until a port is used.
    Streaming (MSK) when every region declares streaming; objects (S3) when every region's storage
    names a writer parameter (runbooks/adapters/aws_streams.py); the clusters' endpoints (kubectl,
    runbooks/adapters/kubectl.py) when any region declares a cluster."""
    from runbooks.adapters.aws_mm2 import MirrorMaker2Streaming
    from runbooks.adapters.aws_streams import MskStreaming, S3Objects  # it builds on this module
    from runbooks.adapters.kubectl import KubectlEndpoints
    from runbooks.adapters.aws_slots import RdsSlots, S3SlotStore

    clients = clients or Clients(session, settings)
    clients.clock = clients.clock or clock
    sql = PsycopgSql(outputs, clients, clock, connect or psycopg_connect)
    regions = list(outputs.regions.values())
    kafka = all(r.streaming is not None for r in regions)
    mm2 = kafka and any(r.streaming.mirrormaker2 is not None for r in regions)  # MirrorMaker 2 on MSK Connect
    objects = all(r.storage is not None and r.storage.writer_parameter for r in regions)
    return Ports(db=RdsControl(outputs, clients, clock, sql), sql=sql, dns=Route53Dns(outputs, clients),
                 health=AwsHealth(outputs, clients), lock=S3Lock(outputs, clients),
                 notifier=SnsNotifier(outputs, clients), clock=clock,
                 extras={"adapter": "aws"},
                 streaming=(MirrorMaker2Streaming if mm2 else MskStreaming)(outputs, clients, clock) if kafka else None,
                 objects=S3Objects(outputs, clients, clock) if objects else None,
                 endpoints=KubectlEndpoints(outputs) if any(r.kubernetes for r in regions) else None,
                 audit_sink=S3AuditSink(outputs, clients),
                 metrics=CloudWatchMetrics(outputs, clients, namespace=CloudWatchMetrics.DR_NAMESPACE),
                 backups=RdsBackups(outputs, clients, clock, sql),
                 slots=RdsSlots(outputs, clients, sql), slot_store=S3SlotStore(outputs, clients))


# ============================================================================================
# Backups (snapshot, restore, verify_backup, undelete): RDS snapshots and point-in-time
# restores, S3 object versions, CloudWatch metrics, the audit log in the backups bucket.
# docs/backups.md lists the calls and which test proves each on moto or on Stubber.
# ============================================================================================

RESTORED_TAG = "regionpair:restored-by"
"""On every instance a backup runbook restores (value: the runbook and run id)."""
DATABASE_TAG = "regionpair:database"
"""The logical database a restored instance was restored from (its credentials are that database's)."""
TEMPORARY_TAG = "regionpair:temporary"
"""``true`` on verify_backup's temporary instances: the only instances the runbooks ever delete."""


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


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class S3Versions:
    """ObjectVersions on S3: list versions and delete markers, delete one version, copy one back."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def region_of(self, bucket: str) -> str:
        known = {}
        for r in self.outputs.regions.values():
            if r.storage:
                for b in (r.storage.data_bucket, r.storage.backups_bucket):
                    if b:
                        known[b] = r.name
        if bucket not in known:
            raise BadInput(f"--bucket {bucket}: not a bucket of the stack outputs; known: {', '.join(sorted(known))}")
        return known[bucket]

    def _call(self, bucket: str, op: str, what: str, **params) -> dict:
        try:
            return self.clients.call("s3", self.region_of(bucket), op, Bucket=bucket, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc

    def versioning(self, bucket: str) -> str | None:
        return self._call(bucket, "get_bucket_versioning", f"read versioning of {bucket}").get("Status")

    def versions(self, bucket: str, prefix: str, max_pages: int = 10_000) -> list:
        from runbooks.backups import ObjectVersion
        out: list[ObjectVersion] = []
        marker: dict = {}
        for _ in range(max_pages):
            page = self._call(bucket, "list_object_versions", f"list versions in s3://{bucket}/{prefix}",
                              Prefix=prefix, **marker)
            for v in page.get("Versions") or []:
                out.append(ObjectVersion(v["Key"], v["VersionId"], _ts(v["LastModified"]), bool(v.get("IsLatest")),
                                         False, v.get("Size"), v.get("ETag")))
            for m in page.get("DeleteMarkers") or []:
                out.append(ObjectVersion(m["Key"], m["VersionId"], _ts(m["LastModified"]), bool(m.get("IsLatest")),
                                         True))
            if not page.get("IsTruncated"):
                return out
            marker = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
        raise AwsCallFailed(f"s3://{bucket}/{prefix} has more than {max_pages} pages of versions; use a narrower --prefix")

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._call(bucket, "delete_object", f"delete version {version_id} of s3://{bucket}/{key}",
                   Key=key, VersionId=version_id)

    def restore_version(self, bucket: str, key: str, version_id: str) -> str:
        out = self._call(bucket, "copy_object", f"copy version {version_id} of s3://{bucket}/{key} over the key",
                         Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id},
                         MetadataDirective="COPY")
        return out.get("VersionId") or "?"


class RdsBackups:
    """BackupControl on RDS. Snapshots of a database are found by its instance identifier in the
    region (a copy in DR keeps the source instance's identifier, so both are looked up)."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, sql: PsycopgSql):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.sql = sql

    def _rds(self, region: str, op: str, what: str, **params) -> dict:
        try:
            return self.clients.call("rds", region, op, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc

    def _identifiers(self, region: str, database: str) -> list[str]:
        ids = []
        for r in self.outputs.regions.values():
            if database in r.databases and r.databases[database].identifier not in ids:
                ids.append(r.databases[database].identifier)
        own = _database(self.outputs, region, database)[1].identifier
        return [own] + [i for i in ids if i != own]

    def _snapshot(self, s: dict, region: str, database: str) -> "Snapshot":
        from runbooks.backups import Snapshot
        return Snapshot(id=s["DBSnapshotIdentifier"], region=region, database=database, status=s.get("Status", "?"),
                        created_at=_ts(s.get("SnapshotCreateTime")), kind=s.get("SnapshotType", "manual"),
                        tags={t["Key"]: t["Value"] for t in s.get("TagList") or []}, arn=s.get("DBSnapshotArn"),
                        kms_key_id=s.get("KmsKeyId"), copied_from=s.get("SourceDBSnapshotIdentifier"),
                        size_bytes=s["AllocatedStorage"] * 2**30 if s.get("AllocatedStorage") else None)

    def snapshots(self, region: str, database: str) -> list:
        out, seen = [], set()
        for ident in self._identifiers(region, database):
            marker: dict = {}
            for _ in range(1000):
                page = self._rds(region, "describe_db_snapshots", f"list snapshots of {ident} in {region}",
                                 DBInstanceIdentifier=ident, **marker)
                for s in page.get("DBSnapshots") or []:
                    if s["DBSnapshotIdentifier"] not in seen:
                        seen.add(s["DBSnapshotIdentifier"])
                        out.append(self._snapshot(s, region, database))
                if not page.get("Marker"):
                    break
                marker = {"Marker": page["Marker"]}
        return sorted(out, key=lambda s: s.created_at or 0.0)

    def _find(self, region: str, database: str, snapshot_id: str):
        try:
            found = self.clients.call("rds", region, "describe_db_snapshots", DBSnapshotIdentifier=snapshot_id)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotNotFound":
                return None
            raise fail(exc, f"describe snapshot {snapshot_id} in {region}") from exc
        snaps = found.get("DBSnapshots") or []
        return self._snapshot(snaps[0], region, database) if snaps else None

    def create_snapshot(self, region: str, database: str, snapshot_id: str, tags: dict[str, str]):
        _, db = _database(self.outputs, region, database)
        try:
            out = self.clients.call("rds", region, "create_db_snapshot", DBSnapshotIdentifier=snapshot_id,
                                    DBInstanceIdentifier=db.identifier,
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotAlreadyExists":
                return self._find(region, database, snapshot_id)
            raise fail(exc, f"snapshot {db.identifier} in {region}") from exc
        return self._snapshot(out["DBSnapshot"], region, database)

    def copy_snapshot(self, snapshot, target_region: str, tags: dict[str, str]):
        key = self.outputs.regions[target_region].kms_key_arn if target_region in self.outputs.regions else None
        if not key:
            raise BadInput(f"stack outputs: regions.{target_region}.kms_key_arn is missing; a cross-region copy of an "
                           "encrypted snapshot needs the DR region's key")
        try:
            out = self.clients.call("rds", target_region, "copy_db_snapshot", SourceDBSnapshotIdentifier=snapshot.arn,
                                    TargetDBSnapshotIdentifier=snapshot.id, KmsKeyId=key, CopyTags=True,
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                                    SourceRegion=snapshot.region)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotAlreadyExists":
                return self._find(target_region, snapshot.database, snapshot.id)
            raise fail(exc, f"copy snapshot {snapshot.id} to {target_region}") from exc
        return self._snapshot(out["DBSnapshot"], target_region, snapshot.database)

    expires_automated = True
    """RDS deletes automated backups itself after BackupRetentionPeriod; DeleteDBSnapshot takes manual ones only."""

    def automated_retention_days(self, region: str, database: str) -> int | None:
        """The period RDS holds the database's automated backups in ``region``: the instance's own in its
        region, the replicated backups' in DR (``BackupRetentionPeriod`` of DescribeDBInstanceAutomatedBackups)."""
        for backups in self._automated_backups_by_identifier(region, database):
            for b in backups:
                if b.get("BackupRetentionPeriod") is not None:
                    return int(b["BackupRetentionPeriod"])
        return None

    def delete_snapshot(self, snapshot) -> str:
        from runbooks.backups import refuse_compliance
        refuse_compliance(snapshot)  # before any call: a compliance snapshot is never deleted from here
        current = self._find(snapshot.region, snapshot.database, snapshot.id)  # its tags now, not as listed
        if current is not None:
            refuse_compliance(current)
        try:
            self.clients.call("rds", snapshot.region, "delete_db_snapshot", DBSnapshotIdentifier=snapshot.id)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotNotFound":
                return f"{snapshot.region}/{snapshot.id} was already gone"
            raise fail(exc, f"delete snapshot {snapshot.id} in {snapshot.region}") from exc
        return f"deleted {snapshot.region}/{snapshot.id}"

    # ---- the compliance archive: RDS snapshot exports (StartExportTask) -------------------------------

    def archive_target(self, region: str) -> str | None:
        r = self.outputs.regions.get(region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        return None if archive is None else f"s3://{archive.bucket}"

    @staticmethod
    def _archive_prefix(database: str) -> str:
        return f"regionpair/{database}"

    def _archive(self, t: dict, region: str, database: str):
        from runbooks.backups import Archive
        source = (t.get("SourceArn") or "").rsplit(":", 1)[-1]
        return Archive(id=t["ExportTaskIdentifier"], region=region, database=database, source=source,
                       status=str(t.get("Status", "?")).lower(), started_at=_ts(t.get("TaskStartTime")),
                       location=f"s3://{t.get('S3Bucket')}/{t.get('S3Prefix') or ''}/{t['ExportTaskIdentifier']}")

    def archives(self, region: str, database: str) -> list:
        r = self.outputs.regions.get(region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        if archive is None:
            return []
        out, marker = [], {}
        for _ in range(1000):
            page = self._rds(region, "describe_export_tasks", f"list snapshot exports in {region}", **marker)
            out += [self._archive(t, region, database) for t in page.get("ExportTasks") or []
                    if t.get("S3Bucket") == archive.bucket and t.get("S3Prefix") == self._archive_prefix(database)]
            if not page.get("Marker"):
                break
            marker = {"Marker": page["Marker"]}
        return sorted(out, key=lambda a: a.started_at or 0.0)

    def archive(self, snapshot, archive_id: str):
        r = self.outputs.regions.get(snapshot.region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        if archive is None or not r.kms_key_arn:
            raise BadInput(f"stack outputs: regions.{snapshot.region}.storage.archive or kms_key_arn is missing; an "
                           "export into the compliance archive needs the archive bucket, its export role and the "
                           "region's key (backups.compliance_archive in the stack config, then pulumi up)")
        if not snapshot.arn:
            raise BadInput(f"snapshot {snapshot.region}/{snapshot.id} has no ARN to export")
        try:
            t = self.clients.call("rds", snapshot.region, "start_export_task", ExportTaskIdentifier=archive_id,
                                  SourceArn=snapshot.arn, S3BucketName=archive.bucket,
                                  IamRoleArn=archive.export_role_arn, KmsKeyId=r.kms_key_arn,
                                  S3Prefix=self._archive_prefix(snapshot.database))
        except ClientError as exc:
            if error_code(exc) == "ExportTaskAlreadyExists":
                found = [a for a in self.archives(snapshot.region, snapshot.database) if a.id == archive_id]
                if found:
                    return found[0]
            raise fail(exc, f"export snapshot {snapshot.id} into {archive.bucket}") from exc
        return self._archive(t, snapshot.region, snapshot.database)

    def _automated_backups_by_identifier(self, region: str, database: str):
        """The automated backups (DescribeDBInstanceAutomatedBackups) of each of the database's
        identifiers in ``region``, in the order ``_identifiers`` gives them; read lazily, so a caller
        that stops at the first answer makes no further call."""
        for ident in self._identifiers(region, database):
            try:
                out = self.clients.call("rds", region, "describe_db_instance_automated_backups",
                                        DBInstanceIdentifier=ident)
            except ClientError as exc:
                if error_code(exc) == "DBInstanceAutomatedBackupNotFound":
                    continue
                raise fail(exc, f"describe automated backups of {ident} in {region}") from exc
            yield out.get("DBInstanceAutomatedBackups") or []

    def _automated_backup(self, region: str, database: str) -> dict | None:
        for backups in self._automated_backups_by_identifier(region, database):
            found = [b for b in backups if b.get("RestoreWindow")]
            if found:
                return found[0]
        return None

    def window(self, region: str, database: str, seal: bool = False):
        from runbooks.backups import Window
        backup = self._automated_backup(region, database)
        if backup is None:
            return None
        w = backup["RestoreWindow"]
        if not w.get("EarliestTime") or not w.get("LatestTime"):
            return None
        return Window(region, database, _ts(w["EarliestTime"]), _ts(w["LatestTime"]),
                      backup.get("DBInstanceAutomatedBackupsArn") or backup.get("DBInstanceIdentifier", "?"))

    def _own_instance(self, region: str, database: str) -> dict:
        _, db = _database(self.outputs, region, database)
        return _describe_instance(self.clients, region, db.identifier) or {}

    def restore(self, region: str, database: str, name: str, to_time: float | None):
        _, db = _database(self.outputs, region, database)
        own = self._own_instance(region, database)
        params: dict[str, Any] = {
            "TargetDBInstanceIdentifier": name, "MultiAZ": False, "PubliclyAccessible": False,
            "CopyTagsToSnapshot": True, "DeletionProtection": False, "EnableIAMDatabaseAuthentication": True,
            "Tags": [{"Key": RESTORED_TAG, "Value": name},
                     {"Key": TEMPORARY_TAG, "Value": str(name.startswith("verify-")).lower()},
                     {"Key": DATABASE_TAG, "Value": database}]}
        if to_time is None:
            params["UseLatestRestorableTime"] = True
        else:
            params["RestoreTime"] = datetime.fromtimestamp(to_time, timezone.utc)
        if own.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
            params["DBSubnetGroupName"] = own["DBSubnetGroup"]["DBSubnetGroupName"]
        groups = [g["VpcSecurityGroupId"] for g in own.get("VpcSecurityGroups") or []] or \
            ([db.security_group_id] if db.security_group_id else [])
        if groups:
            params["VpcSecurityGroupIds"] = groups
        if own.get("DBInstanceClass"):
            params["DBInstanceClass"] = own["DBInstanceClass"]
        if db.role == "primary" and own.get("ReadReplicaSourceDBInstanceIdentifier") is None and own:
            params["SourceDBInstanceIdentifier"] = db.identifier
        else:
            backup = self._automated_backup(region, database)
            if backup is None or not backup.get("DBInstanceAutomatedBackupsArn"):
                raise StepFailed(f"no replicated automated backups of {database} in {region} to restore from")
            # no key parameter: the instance is encrypted with the replicated backups' key, the DR
            # region's (the stacks' InstanceAutomatedBackupsReplication sets it)
            params["SourceDBInstanceAutomatedBackupsArn"] = backup["DBInstanceAutomatedBackupsArn"]
        try:
            out = self.clients.call("rds", region, "restore_db_instance_to_point_in_time", **params)
        except ClientError as exc:
            if error_code(exc) == "DBInstanceAlreadyExists":
                return self.instance(region, name)
            raise fail(exc, f"restore {database} in {region} to a new instance {name}") from exc
        return self._instance(out["DBInstance"], region, database)

    def _instance(self, inst: dict, region: str, database: str):
        from runbooks.backups import Instance
        ep = inst.get("Endpoint") or {}
        return Instance(inst["DBInstanceIdentifier"], region, database, inst.get("DBInstanceStatus", "?"),
                        ep.get("Address"), ep.get("Port"), None)

    def instance(self, region: str, name: str):
        from runbooks.backups import Instance
        inst = _describe_instance(self.clients, region, name)
        if inst is None:
            return Instance(name, region, "", "absent")
        tags = {t["Key"]: t["Value"] for t in inst.get("TagList") or []}
        return self._instance(inst, region, tags.get(DATABASE_TAG, ""))

    def delete_instance(self, region: str, name: str) -> str:
        inst = _describe_instance(self.clients, region, name)
        if inst is None:
            return f"{region}/{name} does not exist (nothing to delete)"
        tags = {t["Key"]: t["Value"] for t in inst.get("TagList") or []}
        if tags.get(TEMPORARY_TAG) != "true" or tags.get(RESTORED_TAG) != name:
            raise StepFailed(f"{region}/{name} is not a temporary instance of the backup runbooks "
                             f"(tags {TEMPORARY_TAG}=true and {RESTORED_TAG}={name}); it is not deleted")
        if inst.get("DBInstanceStatus") == "deleting":
            return f"{region}/{name} is already being deleted"
        self._rds(region, "delete_db_instance", f"delete the temporary instance {name}", DBInstanceIdentifier=name,
                  SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
        return f"deleting the temporary instance {region}/{name} (no final snapshot: it held a copy only)"

    def reference(self, region: str, database: str, tables: list[str], timeout: float):
        from runbooks import backup_sql
        from runbooks.backups import Reference
        # RDS restores to whole seconds: round up and hold the lock past it
        at, states = self.sql._run(region, database,
                                   lambda conn: backup_sql.reference(conn, tables, 1.0, timeout, self.clock.sleep))
        return Reference(region, database, at, states)

    def integrity(self, instance, tables: list[str]):
        from runbooks import backup_sql
        from runbooks.backups import Integrity
        import psycopg
        _, db = _database(self.outputs, instance.region, instance.database)
        info = ConnInfo(instance.endpoint or "", instance.port or db.port, db.db_name, db.username,
                        self.sql._password(db), self.clients.settings.sql_connect_timeout)
        try:
            conn = self.sql.connect(info)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"restored instance {instance.name} does not accept connections: "
                              f"{scrub(str(exc).strip().splitlines()[0])}") from None
        try:
            missing = backup_sql.missing_tables(conn, tables)
            states = {t: backup_sql.table_state(conn, t) for t in tables if t not in missing}
            problems, note = backup_sql.amcheck(conn, [t for t in tables if t not in missing])
        finally:
            conn.close()
        return Integrity(states, problems, note + (f"; missing table(s): {', '.join(missing)}" if missing else ""))


class CloudWatchMetrics:
    """Metrics port on CloudWatch (namespace ``RegionPair/Backups``), in the DR region: it is the one
    that is up when the primary is not."""

    NAMESPACE = "RegionPair/Backups"
    DR_NAMESPACE = "RegionPair/DR"
    """The DR runbooks' and drills' metrics (replication lag, failover time, drills)."""

    def __init__(self, outputs: Outputs, clients: Clients, namespace: str = NAMESPACE):
        self.outputs = outputs
        self.clients = clients
        self.namespace = namespace

    def put(self, samples: list) -> str:
        region = self.outputs.secondary.name
        data = [{"MetricName": s.name, "Value": float(s.value), "Unit": s.unit,
                 "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(s.labels.items())][:30]}
                for s in samples]
        for i in range(0, len(data), 500):  # PutMetricData takes at most 1000 datums per call
            try:
                self.clients.call("cloudwatch", region, "put_metric_data", Namespace=self.namespace,
                                  MetricData=data[i:i + 500])
            except ClientError as exc:
                raise fail(exc, f"publish {len(data)} metrics to CloudWatch {self.namespace} in {region}") from exc
        return f"{len(data)} metric(s) published to CloudWatch {self.namespace} in {region}"


class S3AuditSink:
    """The audit trail in the DR region's backups bucket (object lock, COMPLIANCE mode, from the
    stacks): one object per entry under ``regionpair/audit/``, written only if absent, so an entry
    can be added and never replaced. Every DR runbook (failover, failback, switchover) and every
    backup runbook writes here; the DR region is the one that answers when the primary does not.

    Retention: planning document 001 keeps audit logs 7 years, longer than the bucket's default
    retention (``object_lock_days``, 30 by default). So each entry carries its own retention,
    ``ObjectLockMode=COMPLIANCE`` and ``ObjectLockRetainUntilDate`` = its time + 7 years (S3 API
    Reference, "PutObject": x-amz-object-lock-mode / x-amz-object-lock-retain-until-date; S3 User
    Guide, "Locking objects with Object Lock": in compliance mode a retention period cannot be
    shortened and the version cannot be overwritten or deleted until it ends). A bucket without
    Object Lock cannot take those headers (S3 refuses them): the entry is still written, with a
    warning in the log that its retention is not enforced."""

    RETENTION_DAYS = 7 * 365 + 2  # 7 years, leap days included

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self._locked: bool | None = None

    def _bucket_locked(self, region: str, bucket: str) -> bool:
        if self._locked is None:
            try:
                out = self.clients.call("s3", region, "get_object_lock_configuration", Bucket=bucket)
                self._locked = (out.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                    raise fail(exc, f"read the object lock configuration of s3://{bucket}") from exc
                self._locked = False
        return self._locked

    def write(self, entry: dict) -> str:
        dr = self.outputs.secondary
        if dr.storage is None or not dr.storage.backups_bucket:
            raise BadInput(f"stack outputs: regions.{dr.name}.storage.backups_bucket is missing; the audit log of "
                           "the runbooks lives there (object-locked)")
        bucket = dr.storage.backups_bucket
        day = str(entry.get("at", ""))[:10].replace("-", "/")
        key = f"regionpair/audit/{day}/{entry.get('at')}-{entry.get('run_id')}-{uuid.uuid4().hex[:8]}.json"
        extra: dict[str, Any] = {}
        locked = self._bucket_locked(dr.name, bucket)
        if locked:
            try:
                at = datetime.fromisoformat(str(entry.get("at")).replace("Z", "+00:00"))
            except ValueError:
                at = datetime.now(timezone.utc)
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": at + timedelta(days=self.RETENTION_DAYS)}
        try:
            self.clients.call("s3", dr.name, "put_object", Bucket=bucket, Key=key, IfNoneMatch="*",
                              Body=json.dumps(scrub(entry), sort_keys=True).encode(), ContentType="application/json",
                              **extra)
        except ClientError as exc:
            raise fail(exc, f"write the audit entry s3://{bucket}/{key}") from exc
        if not locked:
            log.warning("s3://%s has no Object Lock: the audit entry %s is written, its retention is not enforced",
                        bucket, key)
        return f"s3://{bucket}/{key}"


def aws_backup_ports(outputs: Outputs, clock: Clock, session: Any = None, *, clients: Clients | None = None,
                     connect: Connect | None = None, settings: AwsSettings | None = None):
    """The backup runbooks' ports in AWS. Nothing is contacted until a port is used."""
    from runbooks.backups import BackupPorts
    from runbooks.adapters.aws_slots import RdsSlots, S3SlotStore
    from runbooks.adapters.aws_kafka_backup import aws_kafka_backups
    from runbooks.adapters.aws_config_exports import S3ConfigExports
    clients = clients or Clients(session, settings)
    clients.clock = clients.clock or clock
    sql = PsycopgSql(outputs, clients, clock, connect or psycopg_connect)
    return BackupPorts(backups=RdsBackups(outputs, clients, clock, sql), objects=S3Versions(outputs, clients),
                       metrics=CloudWatchMetrics(outputs, clients), audit_sink=S3AuditSink(outputs, clients),
                       sql=sql, clock=clock, extras={"adapter": "aws", "target": "aws"},
                       notifier=SnsNotifier(outputs, clients),
                       slots=RdsSlots(outputs, clients, sql), slot_store=S3SlotStore(outputs, clients),
                       kafka_backups=aws_kafka_backups(outputs, clients),
                       config_exports=S3ConfigExports(outputs, clients))
