"""Failover of N databases through the AWS adapters, with AWS's own waits and limits modelled.

    .venv/bin/python -m benchmarks.aws_scale [--sizes 1,10,50] [--promotion-seconds 300]

The sandbox's N-database figure measures two cores hosting 2N PostgreSQL servers. In AWS the
servers are not ours: what the runbook adds is its own parallelism, its polling and the API
quotas it shares with everything else in the account. This benchmark runs the real failover
runbook (gates, fence, unfence, promote, DNS, verify; its engine, plans and AWS adapters
unchanged) against:

- moto, in-process, for the AWS APIs (RDS, EC2 security groups, Route53, S3 lock, SNS, Secrets
  Manager): the pair has the stacks' shape, N primaries in us-east-1 behind one database security
  group, N cross-region replicas in us-west-2 behind another, a failover pair of records per
  database, every PRIMARY guarded by the one pin check the runbook inverts;
- a model of what moto does not do, each figure from AWS's documentation:
  - promotion of a read replica takes `--promotion-seconds` (default 300, the stacks'
    `expected_promotion_seconds`; the RDS User Guide says promotion takes "a few minutes"): until
    then DescribeDBInstances shows the instance `modifying`, still a replica, and SQL shows it in
    recovery;
  - RDS API throttling per account and region: a token bucket of 300 requests, refilled at 12 per
    second (RDS User Guide, "Request throttling for the Amazon RDS API");
  - Route 53 API throttling per account: a bucket of 50 requests refilled at 10 per second, shared by
    every operation (Route 53 Developer Guide, "Throttling for Amazon Route 53 API requests");
  - a throttled request is retried the way the adapters' botocore client would (standard retry
    mode, `AwsSettings.max_attempts` attempts in all, jittered exponential back-off), then fails
    with `ThrottlingException` / `Throttling` as AWS would answer it;
  - every control-plane call costs `--api-latency` seconds (0.1 s: an assumption, not a documented
    figure) and every SQL connection `--sql-latency` (0.05 s, likewise); EC2's throttling is not
    modelled (its quotas per action are not all published).
- a stand-in for PostgreSQL at the SQL port's boundary (the adapter's `connect`), which answers
  the adapter's queries from the modelled promotion state; database endpoints resolve to loopback
  listeners, so the health probe's TCP connect is real.

Time is a virtual clock injected into the runbook: it moves only when every thread that uses it
waits on it, so five minutes of promotion cost no five minutes here, and the runbook's own work
costs no virtual time. The figure is the runbook's duration in virtual seconds (its journal's
first event to its last step); the target is N=50 within 1.1x of N=1. Beside it: the runbook's
own CPU per database (process CPU minus what moto and the stand-ins spent), and the throttled
requests.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import random
import selectors
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

P, S = "us-east-1", "us-west-2"


# --------------------------------------------------------------------------------------------
# The virtual clock
# --------------------------------------------------------------------------------------------


class VirtualClock:
    """A Clock (runbooks.clock) whose time moves only when nothing that uses it is running.

    A thread that sleeps registers its wake-up time and waits. A driver thread advances time to
    the earliest wake-up once every registered sleeper is still asleep, no modelled call is in
    progress (``busy``), and no thread has touched the clock for ``settle`` real seconds (so a
    thread between two calls is not overtaken). Wake-ups within ``quantum`` of each other are
    released together."""

    def __init__(self, start: float = 1_800_000_000.0, settle: float = 0.004, quantum: float = 0.02):
        self._now = start
        self._settle = settle
        self._quantum = quantum
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        """Sleepers wait on it; the driver wakes them."""
        self._nudge = threading.Condition(self._lock)
        """The driver waits on it; sleepers and calls that end wake it."""
        self._wakes: list[float] = []
        self._asleep: dict[int, float] = {}
        self._busy = 0
        self._touched = time.monotonic()
        self._stopped = False
        self.cpu = 0.0
        """CPU seconds the driver thread spent (set when it stops): the benchmark's, not the runbook's."""
        self._driver = threading.Thread(target=self._drive, name="virtual-clock", daemon=True)
        self._driver.start()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cv:
            wake = self._now + max(seconds, 0.0)
            heapq.heappush(self._wakes, wake)
            self._asleep[me] = wake
            self._touched = time.monotonic()
            self._nudge.notify()
            while self._now < wake and not self._stopped:
                self._cv.wait()
            del self._asleep[me]
            self._touched = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Real work that stands for no time (a moto call): time waits for it to end."""
        with self._cv:
            self._busy += 1
        try:
            yield
        finally:
            with self._cv:
                self._busy -= 1
                self._touched = time.monotonic()
                self._nudge.notify()

    def _drive(self) -> None:
        started = time.thread_time()
        with self._cv:
            while not self._stopped:
                while self._wakes and self._wakes[0] <= self._now:
                    heapq.heappop(self._wakes)
                released_not_resumed = any(w <= self._now for w in self._asleep.values())
                quiet = time.monotonic() - self._touched
                if not self._wakes:
                    self._nudge.wait()
                    continue
                if self._busy or released_not_resumed or quiet < self._settle:
                    self._nudge.wait(timeout=self._settle)
                    continue
                now = heapq.heappop(self._wakes)
                while self._wakes and self._wakes[0] <= now + self._quantum:
                    now = heapq.heappop(self._wakes)
                self._now = max(self._now, now)
                self._cv.notify_all()
        self.cpu = time.thread_time() - started

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._cv.notify_all()
            self._nudge.notify()
        self._driver.join(timeout=5)


# --------------------------------------------------------------------------------------------
# What moto does not model: durations, quotas, latency
# --------------------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    capacity: float
    refill_per_second: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill_per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Model:
    clock: VirtualClock
    promotion_seconds: float
    api_latency: float
    sql_latency: float
    max_attempts: int
    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    promotions: dict[str, tuple[float, str]] = field(default_factory=dict)
    """identifier → (virtual time the promotion ends, the source ARN it replicated)."""
    buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    service_cpu: float = 0.0

    def bucket(self, service: str, region: str) -> TokenBucket | None:
        if service == "rds":
            key = ("rds", region)
            return self.buckets.setdefault(key, TokenBucket(300, 12))
        if service == "route53":
            return self.buckets.setdefault(("route53", "account"), TokenBucket(50, 10))
        return None

    def admit(self, service: str, region: str, op: str) -> bool:
        """One request through the quota, retried as botocore's standard mode retries a throttled
        one; False when every attempt was throttled."""
        for attempt in range(1, self.max_attempts + 1):
            with self.lock:
                self.calls[service] = self.calls.get(service, 0) + 1
                bucket = self.bucket(service, region)
                if bucket is None or bucket.take(self.clock.monotonic()):
                    return True
                self.throttled[service] = self.throttled.get(service, 0) + 1
            if attempt < self.max_attempts:
                self.clock.sleep(self.rng.random() * min(20.0, 2.0 ** (attempt - 1)))
        with self.lock:
            self.failed[f"{service}.{op}"] = self.failed.get(f"{service}.{op}", 0) + 1
        return False

    def promoting(self, identifier: str) -> tuple[float, str] | None:
        found = self.promotions.get(identifier)
        if found is None or self.clock.monotonic() >= found[0]:
            return None
        return found


class ModelledClient:
    """A boto3 client of moto, with the model's quota, latency and promotion in front of it."""

    THROTTLE = {"rds": ("ThrottlingException", "Rate exceeded"), "route53": ("Throttling", "Rate exceeded")}

    def __init__(self, client: Any, service: str, region: str, model: Model):
        self._client, self._service, self._region, self._model = client, service, region, model

    def __getattr__(self, op: str) -> Any:
        target = getattr(self._client, op)
        if not callable(target):
            return target

        def call(**params: Any) -> Any:
            m = self._model
            if not m.admit(self._service, self._region, op):
                from botocore.exceptions import ClientError
                code, message = self.THROTTLE[self._service]
                raise ClientError({"Error": {"Code": code, "Message": message},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, op)
            with m.clock.busy():
                started = time.thread_time()
                if self._service == "rds" and op == "promote_read_replica":
                    before = target.__self__.describe_db_instances(
                        DBInstanceIdentifier=params["DBInstanceIdentifier"])["DBInstances"][0]
                    result = target(**params)
                    with m.lock:
                        m.promotions[params["DBInstanceIdentifier"]] = (
                            m.clock.monotonic() + m.api_latency + m.promotion_seconds,
                            before.get("ReadReplicaSourceDBInstanceIdentifier"))
                else:
                    result = target(**params)
                if self._service == "rds" and op == "describe_db_instances":
                    for inst in result.get("DBInstances") or []:
                        under_way = m.promoting(inst["DBInstanceIdentifier"])
                        if under_way:
                            inst["DBInstanceStatus"] = "modifying"
                            inst["ReadReplicaSourceDBInstanceIdentifier"] = under_way[1]
                with m.lock:
                    m.service_cpu += time.thread_time() - started
            m.clock.sleep(m.api_latency)
            return result

        return call


class ModelledClients:
    """Built lazily like the adapters' Clients; the benchmark hands it to ``aws_ports``."""

    def __new__(cls, session: Any, model: Model):
        from runbooks.adapters.aws import Clients

        class _Clients(Clients):
            def client(self, service: str, region: str) -> Any:
                with self._lock:
                    key = (service, region)
                    if key not in self._clients:
                        self._clients[key] = ModelledClient(session.client(service, region_name=region),
                                                            service, region, model)
                    return self._clients[key]

        return _Clients(session)


# --------------------------------------------------------------------------------------------
# PostgreSQL at the SQL port's boundary, and loopback listeners for the health probe
# --------------------------------------------------------------------------------------------


class _Rows:
    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)


class StandInPostgres:
    """Answers the AWS adapter's SQL (runbooks/adapters/aws.py PsycopgSql) for one database,
    from the model: a replica is in recovery until its modelled promotion has ended."""

    def __init__(self, model: Model, identifier: str, replica: bool):
        self.model, self.identifier, self.replica = model, identifier, replica
        self.canaries: dict[str, float] = {}

    def in_recovery(self) -> bool:
        if not self.replica:
            return False
        started = self.identifier in self.model.promotions
        return not started or self.model.promoting(self.identifier) is not None

    def execute(self, query: str, params: Any = None) -> _Rows:
        q = " ".join(query.split())
        self.model.clock.sleep(0.002)
        if q == "select pg_is_in_recovery()":
            return _Rows([(self.in_recovery(),)])
        if q.startswith("select pg_current_wal_lsn()"):
            return _Rows([("0/3000060",)])
        if "from pg_stat_replication" in q:
            return _Rows([] if self.replica else [("dr", "streaming", "async", 0.1)])
        if q.startswith("select pg_last_wal_replay_lsn()"):
            return _Rows([("0/3000060", "0/3000060", 0.2)])
        if "from pg_stat_wal_receiver" in q:
            return _Rows([("streaming", 0.1)] if self.in_recovery() else [])
        if q.startswith("create table if not exists regionpair_canary"):
            return _Rows([])
        if q.startswith("insert into regionpair_canary"):
            if self.in_recovery():
                import psycopg
                raise psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
            self.canaries[params[0]] = self.model.clock.time()
            return _Rows([])
        if q.startswith("select at from regionpair_canary"):
            return _Rows([(self.canaries[params[0]],)] if params[0] in self.canaries else [])
        if "pg_terminate_backend" in q:
            return _Rows([(True,)] * 3)
        raise AssertionError(f"the PostgreSQL stand-in does not know this query; teach it: {q}")


class _Session:
    def __init__(self, server: StandInPostgres):
        self.execute = server.execute

    def close(self) -> None:
        pass


@contextlib.contextmanager
def loopback_listeners(count: int) -> Iterator[list[int]]:
    """``count`` TCP listeners on 127.0.0.1 that accept and close every connection."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                with contextlib.suppress(OSError):
                    conn, _ = key.fileobj.accept()
                    conn.close()

    t = threading.Thread(target=serve, name="listeners", daemon=True)
    t.start()
    try:
        yield [s.getsockname()[1] for s in socks]
    finally:
        stop.set()
        t.join(timeout=2)
        for s in socks:
            s.close()
        sel.close()


@contextlib.contextmanager
def resolve_to_loopback(suffix: str) -> Iterator[None]:
    """Names ending in ``suffix`` (the RDS endpoints) resolve to 127.0.0.1: the health probe's
    TCP connect reaches the loopback listeners."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(suffix):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


# --------------------------------------------------------------------------------------------
# The pair, in moto
# --------------------------------------------------------------------------------------------


def build_pair(session: Any, n: int, ports: list[int], model: Model) -> tuple[dict, dict[str, StandInPostgres]]:
    from tests.samples import pair_document

    doc = pair_document(n)
    doc["dns"]["strategy"] = "health-check-inversion"
    servers: dict[str, StandInPostgres] = {}
    for region in doc["regions"].values():
        region.pop("streaming", None)
    sgs, topics = {}, {}
    for region, stack in ((P, "prod"), (S, "dr")):
        ec2 = session.client("ec2", region_name=region)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        sg = ec2.create_security_group(GroupName=f"{stack}-db", Description="databases", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "clients (config)"},
                          {"CidrIp": "10.9.0.0/24", "Description": "regionpair:runbook-access (runbook host)"}]}])
        sgs[region] = sg
        topics[region] = session.client("sns", region_name=region).create_topic(Name=f"{stack}-alarms")["TopicArn"]
    rds = {r: session.client("rds", region_name=r) for r in (P, S)}
    names = list(doc["regions"][P]["databases"])
    port = iter(ports)
    for name in names:
        primary = rds[P].create_db_instance(
            DBInstanceIdentifier=f"prod-{name}", Engine="postgres", DBName="app", DBInstanceClass="db.r6g.large",
            MasterUsername="app_admin", MasterUserPassword="bench-only-password", AllocatedStorage=100,
            VpcSecurityGroupIds=[sgs[P]], BackupRetentionPeriod=7)["DBInstance"]
        replica = rds[S].create_db_instance_read_replica(
            DBInstanceIdentifier=f"dr-{name}", SourceDBInstanceIdentifier=primary["DBInstanceArn"],
            DBInstanceClass="db.r6g.large", VpcSecurityGroupIds=[sgs[S]],
            KmsKeyId=doc["regions"][S]["kms_key_arn"])["DBInstance"]
        for region, inst, is_replica in ((P, primary, False), (S, replica, True)):
            secret = session.client("secretsmanager", region_name=region).create_secret(
                Name=f"{inst['DBInstanceIdentifier']}-master",
                SecretString=json.dumps({"username": "app_admin", "password": "bench-only-password"}))["ARN"]
            db = doc["regions"][region]["databases"][name]
            db.update(identifier=inst["DBInstanceIdentifier"], arn=inst["DBInstanceArn"],
                      endpoint=inst["Endpoint"]["Address"], port=next(port), security_group_id=sgs[region],
                      secret_arn=secret, source_arn=primary["DBInstanceArn"] if is_replica else None)
            servers[db["endpoint"]] = StandInPostgres(model, inst["DBInstanceIdentifier"], is_replica)
    for region in (P, S):
        doc["regions"][region]["alarm_topic_arn"] = topics[region]
    session.client("s3", region_name=S).create_bucket(
        Bucket=doc["regions"][S]["storage"]["backups_bucket"], CreateBucketConfiguration={"LocationConstraint": S})
    # the stacks' DNS (components/dns.py): a failover pair per database, every PRIMARY guarded by the
    # one pin check (CALCULATED, threshold 0, disabled: healthy until the runbook inverts it)
    r53 = session.client("route53", region_name=P)
    zone = r53.create_hosted_zone(Name=doc["dns"]["zone_name"], CallerReference="zone")["HostedZone"]["Id"]
    doc["dns"]["zone_id"] = zone.rsplit("/", 1)[-1]
    endpoint = r53.create_health_check(CallerReference="endpoint", HealthCheckConfig={
        "Type": "HTTPS", "FullyQualifiedDomainName": "api.example.internal", "Port": 443, "ResourcePath": "/health",
        "RequestInterval": 30, "FailureThreshold": 3})["HealthCheck"]["Id"]
    pin = r53.create_health_check(CallerReference="pin", HealthCheckConfig={
        "Type": "CALCULATED", "ChildHealthChecks": [endpoint], "HealthThreshold": 0, "Disabled": True,
        "Inverted": False})["HealthCheck"]["Id"]
    changes = []
    for name in names:
        for region, failover in ((P, "PRIMARY"), (S, "SECONDARY")):
            record = {"Name": doc["dns"]["records"][name], "Type": "CNAME", "TTL": doc["dns"]["ttl_seconds"],
                      "SetIdentifier": doc["regions"][region]["dns"]["set_identifier"], "Failover": failover,
                      "ResourceRecords": [{"Value": doc["regions"][region]["databases"][name]["endpoint"]}]}
            if failover == "PRIMARY":
                record["HealthCheckId"] = pin
            changes.append({"Action": "CREATE", "ResourceRecordSet": record})
    r53.change_resource_record_sets(HostedZoneId=doc["dns"]["zone_id"], ChangeBatch={"Changes": changes})
    doc["regions"][P]["dns"]["health_check_id"] = pin
    return doc, servers


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    n: int
    code: int
    seconds: float | None
    runbook_cpu: float
    calls: dict[str, int]
    throttled: dict[str, int]
    failed: dict[str, int]
    error: str | None
    steps: dict[str, float]


def one(n: int, args: argparse.Namespace, seed: int) -> Result:
    import boto3
    from moto import mock_aws

    from runbooks import failover
    from runbooks.adapters.aws import AwsSettings, aws_ports
    from contract import outputs as contract

    clock = VirtualClock()
    settings = AwsSettings()
    model = Model(clock, args.promotion_seconds, args.api_latency, args.sql_latency, settings.max_attempts,
                  random.Random(seed))
    try:
        with mock_aws(), loopback_listeners(2 * n) as ports, resolve_to_loopback(".rds.amazonaws.com"):
            session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                            region_name=P)
            doc, servers = build_pair(session, n, ports, model)
            outputs_file = io.StringIO(json.dumps(doc))
            path = args.workdir / f"outputs-{n}.json"
            path.write_text(outputs_file.getvalue())

            def connect(info):
                clock.sleep(model.sql_latency)
                return _Session(servers[info.host])

            def ports_factory(outputs: contract.Outputs, clk):
                return aws_ports(outputs, clk, clients=ModelledClients(session, model), connect=connect)

            out = io.StringIO()
            cpu0 = time.process_time()
            code = failover.main(["--outputs", str(path), "--yes", "--output", "json",
                                  "--state-dir", str(args.workdir / f"state-{n}-{seed}")],
                                 ports_factory=ports_factory, clock=clock, stdout=out)
            cpu = time.process_time() - cpu0
            result = json.loads(out.getvalue())
    finally:
        clock.stop()
    cpu -= clock.cpu  # the driver's, which slept through the set-up
    steps: dict[str, float] = {}
    for s in result.get("steps") or []:
        kind = str(s.get("step", s.get("name", "?"))).split(":")[0]
        if s.get("seconds") is not None:
            steps[kind] = max(steps.get(kind, 0.0), float(s["seconds"]))
    return Result(n, code, result.get("rto_seconds"), max(cpu - model.service_cpu, 0.0), dict(model.calls),
                  dict(model.throttled), dict(model.failed), result.get("error"), steps)


def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,10,50", help="database counts, comma-separated (default 1,10,50)")
    p.add_argument("--repeat", type=int, default=1, help="runs per size (default 1; the model is deterministic "
                   "but for the throttling back-off's jitter)")
    p.add_argument("--promotion-seconds", type=float, default=300.0,
                   help="how long RDS takes to promote a replica (default 300)")
    p.add_argument("--api-latency", type=float, default=0.1, help="seconds per control-plane call (default 0.1)")
    p.add_argument("--sql-latency", type=float, default=0.05, help="seconds per SQL connection (default 0.05)")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"failover through the AWS adapters; promotion {args.promotion_seconds:g} s, API call "
          f"{args.api_latency:g} s, SQL connection {args.sql_latency:g} s; RDS quota 300 burst / 12 per s per "
          "region, Route 53 quota 50 burst / 10 per s per account", flush=True)
    print(f"{'databases':>9}  {'virtual s':>9}  {'x N=' + str(sizes[0]):>7}  {'runbook CPU s/db':>16}  "
          f"{'real s':>6}  calls (throttled)", flush=True)
    base = None
    code = 0
    with tempfile.TemporaryDirectory(prefix="regionpair-aws-scale-") as tmp:
        args.workdir = Path(tmp)
        for n in sizes:
            runs = []
            for r in range(args.repeat):
                t0 = time.monotonic()
                res = one(n, args, seed=r)
                runs.append((res, time.monotonic() - t0))
            ok = [res for res, _ in runs if res.code == 0 and res.seconds is not None]
            res, real = runs[-1]
            calls = ", ".join(f"{svc} {c} ({res.throttled.get(svc, 0)})" for svc, c in sorted(res.calls.items()))
            if not ok:
                code = 1
                print(f"{n:>9}  FAILED (exit {res.code}): {res.error}", flush=True)
                if res.failed:
                    print(f"{'':>11}requests that failed after every retry: "
                          + ", ".join(f"{k} {v}" for k, v in sorted(res.failed.items())), flush=True)
                print(f"{'':>11}{calls}", flush=True)
                continue
            seconds = statistics.median(r.seconds for r in ok)
            base = base if base is not None else seconds
            per_db = statistics.median(r.runbook_cpu for r in ok) / n
            print(f"{n:>9}  {seconds:9.1f}  {seconds / base:7.2f}  {per_db:16.4f}  {real:6.1f}  {calls}", flush=True)
            if res.failed:
                print(f"{'':>11}throttled past botocore's own attempts (the adapter tried them again): "
                      + ", ".join(f"{k} {v}" for k, v in sorted(res.failed.items())), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
