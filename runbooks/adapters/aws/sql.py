"""The SQL port over the network: psycopg to the RDS endpoints, the password from Secrets Manager,
replica lag from ``pg_stat_wal_receiver`` or else RDS's ReplicaLag metric in CloudWatch.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Protocol

from botocore.exceptions import ClientError

from contract.outputs import Database, Outputs, secret_replica_arn
from runbooks.adapters.aws.clients import (
    AwsCallFailed,
    Clients,
    database_of,
    describe_instance,
    error_code,
    fail,
    region_of_arn,
)
from runbooks.core.clock import Clock, iso
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import ReplicationState
from runbooks.core.redact import scrub


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
        home = region_of_arn(db.secret_arn) or ""
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
        _, db = database_of(self.outputs, region, database)
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
        _, db = database_of(self.outputs, region, database)
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
        inst = describe_instance(self.clients, region, db.identifier) or {}
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
