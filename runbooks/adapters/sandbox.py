"""Runbook ports on the sandbox: the local region pair of real servers (``sandbox/``).

Control-plane calls go through ``sandbox.control.Sandbox`` (the only module that starts local
processes); SQL goes straight to PostgreSQL with psycopg over the admin's unix socket, which
stays open while a server is fenced (as a DBA's own access would)."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from pathlib import Path
from typing import Callable, TypeVar

import psycopg

from contract.outputs import Outputs
from runbooks.core.errors import StepFailed, Unreachable
from runbooks.core.ports import (
    ClusterEndpoints,
    DbInstance,
    EndpointsCopy,
    FlowState,
    GroupOffsets,
    Health,
    ReplicationState,
    Seeding,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_REPLICA_SQL = """
SELECT pg_is_in_recovery(),
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END, '0/0')::bigint,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1),
       extract(epoch FROM now() - (SELECT last_msg_receipt_time FROM pg_stat_wal_receiver LIMIT 1))::float8,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
"""

_PRIMARY_SQL = """
SELECT application_name, state, sync_state,
       coalesce(extract(epoch FROM replay_lag), 0)::float8,
       coalesce(extract(epoch FROM write_lag), 0)::float8
FROM pg_stat_replication
"""


def api_down_marker(sandbox_dir, region: str) -> Path:
    """Present while the region's control plane is down (a drill's ``--api-down``): the sandbox's
    fence, a control-plane change as in AWS (security group, stop), then cannot be applied."""
    return Path(sandbox_dir) / "runbooks" / f"api-down-{region}"


def _sandbox_errors(fn):
    """SandboxError → StepFailed (a RunbookError the engine journals); the message keeps the log path."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from sandbox.errors import SandboxError
        try:
            return fn(*args, **kwargs)
        except SandboxError as exc:
            raise StepFailed(str(exc)) from exc
    return wrapper


class Connections:
    """One admin connection per server, kept open: a new one costs ~10 ms of CPU (SCRAM and a
    backend fork), a query on an open one ~0.05 ms, and a failover of ten databases on two cores
    polls a lot. A connection that breaks (the server was killed, or fencing terminated it) is
    replaced once; if that fails too, the server is Unreachable."""

    def __init__(self, sb):
        self.sb = sb
        self._conns: dict[tuple[str, str], psycopg.Connection] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _open(self, region: str, database: str) -> psycopg.Connection:
        node = self.sb.node(region, database)
        if not node.is_running():
            raise Unreachable(f"{region}/{database} is not running")
        try:
            return psycopg.connect(node.dsn(admin=True, local=True, connect_timeout=2), autocommit=True)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"{region}/{database} does not answer: {str(exc).strip().splitlines()[0]}") from None

    def run(self, region: str, database: str, fn: Callable[[psycopg.Connection], T]) -> T:
        key = (region, database)
        with self._lock(key):
            for attempt in (1, 2):
                conn = self._conns.get(key)
                if conn is None or conn.closed or conn.broken:
                    conn = self._conns[key] = self._open(region, database)
                try:
                    return fn(conn)
                except psycopg.OperationalError as exc:
                    self._conns.pop(key, None)
                    conn.close()
                    if attempt == 2:
                        raise Unreachable(f"{region}/{database} does not answer: "
                                          f"{str(exc).strip().splitlines()[0]}") from None
            raise AssertionError("unreachable")

    def close(self) -> None:
        with self._guard:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()


class _Base:
    def __init__(self, sb, conns: Connections):
        self.sb = sb
        self.conns = conns

    def other(self, region: str) -> str:
        return next(r for r in self.sb.regions if r != region)

    def close(self) -> None:
        self.conns.close()


class SandboxDatabases(_Base):
    def describe(self, region: str, database: str) -> DbInstance:
        node = self.sb.node(region, database)
        fenced = node.is_fenced()
        if not node.is_running():
            return DbInstance(region, database, node.component, "stopped", "unknown", fenced)
        try:
            in_recovery = self.conns.run(region, database, lambda c: c.execute("SELECT pg_is_in_recovery()").fetchone()[0])
            role = "replica" if in_recovery else "primary"
        except Unreachable:
            role = None
        if role is None:
            return DbInstance(region, database, node.component, "unreachable", "unknown", fenced)
        return DbInstance(region, database, node.component, "available", role, fenced,
                          self.other(region) if role == "replica" else None)

    def _through_session(self, region: str, database: str, act: Callable[..., str]) -> str:
        """Act through the kept admin session when the server answers (no new session to
        authenticate, and the fence does not terminate our own); otherwise without one, which
        for a stopped server records the fence for its next start."""
        if self.sb.node(region, database).is_running():
            try:
                return self.conns.run(region, database, lambda c: act(conn=c))
            except Unreachable:
                pass
        return act()

    @_sandbox_errors
    def fence(self, region: str, database: str) -> str:
        if api_down_marker(self.sb.layout.root, region).exists():
            raise Unreachable(f"{region}: the control plane does not answer; the fence of {database} is not applied")
        return self._through_session(region, database,
                                     lambda conn=None: self.sb.fence(region, database, conn=conn))

    @_sandbox_errors
    def unfence(self, region: str, database: str) -> str:
        return self._through_session(region, database,
                                     lambda conn=None: self.sb.unfence(region, database, conn=conn))

    @_sandbox_errors
    def promote(self, region: str, database: str) -> str:
        if not self.sb.node(region, database).is_running():
            raise Unreachable(f"{region}/{database} is not running; cannot promote it")
        return self.conns.run(region, database, lambda c: self.sb.promote(region, database, conn=c))

    @_sandbox_errors
    def rebuild_replica(self, region: str, database: str, source_region: str) -> str:
        node = self.sb.node(region, database)
        if node.is_running() and node.role() == "primary" and not node.is_fenced():
            # never turn an unfenced writer into a replica: that is how split brain loses writes
            raise StepFailed(f"{region}/{database} is an unfenced primary; fence it before rebuilding it")
        return self.sb.rebuild_as_replica(region, source_region, database)


class SandboxSql(_Base):
    def replication(self, region: str, database: str) -> ReplicationState:
        def read(conn):
            row = conn.execute(_REPLICA_SQL).fetchone()
            return row, (None if row[0] else conn.execute(_PRIMARY_SQL).fetchall())
        (in_rec, lsn, receive, status, contact_age, replay_age), rows = self.conns.run(region, database, read)
        if not in_rec:
            replicas = tuple({"name": r[0], "state": r[1], "sync_state": r[2], "replay_lag_seconds": r[3],
                              "write_lag_seconds": r[4]} for r in rows)
            return ReplicationState(in_recovery=False, lsn=int(lsn), replicas=replicas)
        streaming = status == "streaming"
        lag = self._lag_from_source(region, database)
        if lag is None:
            # the source does not answer: what was received and not yet replayed is the lag
            lag = 0.0 if receive is not None and receive <= lsn else (replay_age or 0.0)
        return ReplicationState(in_recovery=True, lsn=int(lsn), receive_lsn=None if receive is None else int(receive),
                                streaming=streaming, lag_seconds=lag, last_contact_age_seconds=contact_age)

    def _lag_from_source(self, region: str, database: str) -> float | None:
        """The primary's view (pg_stat_replication.replay_lag): includes what is still in flight."""
        try:
            rows = self.conns.run(self.other(region), database, lambda c: c.execute(_PRIMARY_SQL).fetchall())
        except Unreachable:
            return None
        for name, _state, _sync, replay_lag, _write_lag in rows:
            if name == region:
                return replay_lag
        return None

    def canary_write(self, region: str, database: str) -> str:
        def write(conn):
            conn.execute("CREATE TABLE IF NOT EXISTS regionpair_canary (id text PRIMARY KEY, "
                         "at timestamptz NOT NULL DEFAULT now(), region text)")
            (cid,) = conn.execute("INSERT INTO regionpair_canary (id, region) VALUES "
                                  "(gen_random_uuid()::text, current_setting('cluster_name')) RETURNING id").fetchone()
            (n,) = conn.execute("SELECT count(*) FROM regionpair_canary WHERE id = %s", (cid,)).fetchone()
            return cid, n
        try:
            cid, n = self.conns.run(region, database, write)
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StepFailed(f"{region}/{database} refused the canary write: {exc}") from None
        if n != 1:
            raise StepFailed(f"canary {cid} written to {region}/{database} but not read back")
        return f"canary {cid[:8]} written to and read back from {region}/{database}"


class SandboxDns(_Base):
    def __init__(self, sb, conns: Connections, outputs: Outputs):
        super().__init__(sb, conns)
        self.outputs = outputs

    def answer(self, service: str) -> str | None:
        return self.sb.record(self.outputs.dns.records[service])

    @_sandbox_errors
    def point(self, service: str, region: str) -> str:
        return self.sb.set_record(self.outputs.dns.records[service], region)


class SandboxHealth(_Base):
    def region(self, region: str) -> Health:
        down = [db for db in self.sb.databases if not self.sb.node(region, db).is_running()]
        if down:
            return Health(False, f"{region}: database server(s) not running: {', '.join(down)}")
        others = []
        if "kafka" in self.sb.systems and not self.sb.kafka_running(region):
            others.append("its Kafka cluster")
        if "s3" in self.sb.systems and not self.sb.s3_running(region):
            others.append("its S3")
        if others:
            return Health(False, f"{region}: {' and '.join(others)} not running ({_restart_hint(self.sb, region)} "
                          "brings the region back)")
        streams = [{"kafka": "Kafka", "s3": "S3"}[n] for n in ("kafka", "s3") if n in self.sb.systems]
        extra = f", its {' and '.join(streams)} too" if streams else ""
        return Health(True, f"{region}: all {len(self.sb.databases)} database server(s) running{extra}")

    def database(self, region: str, database: str) -> Health:
        node = self.sb.node(region, database)
        try:
            with socket.create_connection((node.address, node.db.port), timeout=0.3):
                return Health(True, f"{region}/{database} accepts connections on {node.address}:{node.db.port}")
        except OSError as exc:
            return Health(False, f"{region}/{database} refuses connections ({exc.strerror or exc})")


def _copies(st: dict, source: str, target: str) -> bool:
    """The replication worker whose status is ``st`` runs, copying source → target."""
    return bool(st.get("running")) and (st.get("source"), st.get("target")) == (source, target)


def _restart_hint(sb, region: str) -> str:
    """The command that brings a lost sandbox region back."""
    return f"`python -m sandbox fault --dir {sb.dir} restart-region {region}`"


def _require_running(sb, regions, running, what: str) -> None:
    """Refuse, naming the command that brings it back, when ``running(region)`` is false for one of
    ``regions``; ``what`` names the service, ``{}`` standing for the region."""
    for region in regions:
        if not running(region):
            raise StepFailed(f"{what.format(region)} is not running; bring the region back first "
                             f"({_restart_hint(sb, region)}), then rerun")


def _flow_state(st: dict | None, kind: str) -> FlowState:
    if not st:
        raise Unreachable(f"the sandbox's {kind} replication worker has written no status yet")
    if kind == "kafka":
        return FlowState(st.get("source"), st.get("target"), bool(st.get("running")), st.get("lag_records"),
                         st.get("lag_seconds"), st.get("source_reachable"),
                         detail=f"{st.get('replicated', 0)} records copied by MirrorMaker 2"
                         + (f"; started: {st['why']}" if st.get("why") else ""),
                         groups=st.get("groups"))
    return FlowState(st.get("source"), st.get("target"), bool(st.get("running")), st.get("backlog_objects"),
                     st.get("backlog_seconds"), st.get("source_reachable"),
                     tuple(f"{p['key']}@{p['version_id']}" for p in st.get("pending", [])),
                     detail=f"{st.get('replicated', 0)} versions copied")


class SandboxStreaming:
    """The sandbox's Kafka pair and MirrorMaker 2 between them (sandbox/kafka_cluster.py, sandbox/workers/replicator.py)."""

    def __init__(self, sb):
        self.sb = sb

    def flow(self) -> FlowState:
        return _flow_state(self.sb.flow("kafka"), "kafka")

    @_sandbox_errors
    def stop_flow(self) -> str:
        st = self.sb.flow("kafka") or {}
        if not st.get("running"):
            return "the replicator is already stopped"
        return self.sb.set_flow("kafka", st["source"], st["target"], running=False)

    @_sandbox_errors
    def start_flow(self, source: str, target: str) -> str:
        st = self.sb.flow("kafka") or {}
        if _copies(st, source, target):
            return f"the replicator already copies {source} → {target}" + (f" (started: {st['why']})"
                                                                           if st.get("why") else "")
        _require_running(self.sb, (source, target), self.sb.kafka_running, "the Kafka cluster of {}")
        # the reverse of a cleanly stopped flow starts at the offsets recorded at its stop; a
        # target that came back empty (a new cluster) gets everything from the earliest offset
        start, why = self.sb.kafka_start_position(source, target)
        started = self.sb.set_flow("kafka", source, target, running=True, start_offsets=start, why=why)
        if start == "earliest":
            held = sum(hi - lo for lo, hi in self.sb.kafka_offsets(source).values())
            why += f" ({held} records to copy)"
        return f"{started}: {why}"

    def ensure_group_offsets(self, source: str, target: str, groups: list[str]) -> list[GroupOffsets]:
        out = self.sb.translate_groups(source, target, groups)
        return [GroupOffsets(g, r["translated"], r["method"], r["reprocess_records"],
                             r["consumed_not_replicated"])
                for g, r in out.items()]

    @_sandbox_errors
    def bootstrap(self, region: str) -> str:
        return self.sb.kafka_bootstrap(region)

    def published(self, parameter: str) -> str | None:
        return self.sb.param(parameter)

    @_sandbox_errors
    def publish(self, parameter: str, value: str) -> str:
        return self.sb.set_param(parameter, value)


class SandboxObjects:
    """The sandbox's buckets (moto, one per region) and the S3 replication worker."""

    def __init__(self, sb, outputs: Outputs):
        self.sb = sb
        self.outputs = outputs

    def flow(self) -> FlowState:
        return _flow_state(self.sb.flow("s3"), "s3")

    @_sandbox_errors
    def stop_flow(self) -> str:
        st = self.sb.flow("s3") or {}
        if not st.get("running"):
            return "S3 replication is already stopped"
        return self.sb.set_flow("s3", st["source"], st["target"], running=False)

    @_sandbox_errors
    def start_flow(self, source: str, target: str) -> str:
        st = self.sb.flow("s3") or {}
        if _copies(st, source, target):
            return f"S3 replication already copies {source} → {target}"
        _require_running(self.sb, (source, target), self.sb.s3_running, "S3 of {}")
        for region in (source, target):
            status = self.sb.bucket_versioning(region)
            if status != "Enabled":
                raise StepFailed(f"bucket {self.bucket(region)} ({region}) has versioning {status or 'never enabled'}; "
                                 "replication needs it on both buckets")
        return (f"{self.sb.set_flow('s3', source, target, running=True)}; every version {self.bucket(target)} lacks is "
                "copied, also those written while replication was off (the worker compares both buckets)")

    def seeding(self, source: str, target: str) -> Seeding:
        st = self.sb.flow("s3") or {}
        if not _copies(st, source, target):
            return Seeding(False, f"S3 replication does not copy {source} → {target}")
        seed = st.get("seed") or {}
        if seed.get("epoch") != st.get("epoch"):
            return Seeding(False, f"the replication worker has not compared {self.bucket(target)} with "
                           f"{self.bucket(source)} yet" + ("" if st.get("target_reachable") is not False else
                                                            f" ({target} does not answer)"))
        left, missing = seed.get("left", 0), seed.get("missing", 0)
        found = (f"{self.bucket(target)} held {seed.get('target_versions')} versions when the flow started and "
                 f"lacked {missing} that had been copied between the buckets before"
                 + (" (recreated empty)" if missing and not seed.get("target_versions") else ""))
        if left:
            return Seeding(False, f"{found}; {left} of them still to copy again")
        # what the source took while nothing copied it is the flow's ordinary backlog, oldest first:
        # the catch-up and the drain wait for it
        return Seeding(True, f"{found}; {'all copied again' if missing else 'nothing to copy again'} (versions "
                       f"written while replication was off are its ordinary backlog: "
                       f"{st.get('backlog_objects', 'unknown')} left now)")

    def bucket(self, region: str) -> str:
        return self.outputs.regions[region].storage.data_bucket

    def writers(self, parameter: str) -> str | None:
        return self.sb.param(parameter)

    @_sandbox_errors
    def point_writers(self, parameter: str, value: str) -> str:
        return self.sb.set_param(parameter, value)


class SandboxEndpoints:
    """The sandbox's stand-in clusters (sandbox/_clusters.py): the same contract as kubectl's
    adapter, on a file per region that does not answer while its region is down."""

    def __init__(self, sb, outputs: Outputs):
        self.sb = sb
        self.outputs = outputs

    def _cluster(self, region: str):
        from runbooks.core.errors import BadInput
        r = self.outputs.regions.get(region)
        if r is None or r.kubernetes is None:
            raise BadInput(f"stack outputs: regions.{region}.kubernetes is missing; this region declares no cluster")
        return r.kubernetes

    def _configmaps(self, region: str) -> dict:
        from sandbox.errors import SandboxError
        try:
            return self.sb.configmaps(region)
        except SandboxError as exc:
            raise Unreachable(str(exc)) from None

    def read(self, region: str) -> ClusterEndpoints:
        from contract.active_endpoints import CONTRACT_LABEL, CONTRACT_LABEL_VALUE, UPDATED_BY, contract_data
        k = self._cluster(region)
        held = self._configmaps(region)
        copies, missing = [], []
        for ns in k.namespaces:
            found = [EndpointsCopy(ns, name, contract_data(c.get("data")), c.get("annotations", {}).get(UPDATED_BY))
                     for name, c in sorted(held.get(ns, {}).items())
                     if name == k.configmap and c.get("labels", {}).get(CONTRACT_LABEL) == CONTRACT_LABEL_VALUE]
            copies += found
            if not found:
                missing.append(ns)
        return ClusterEndpoints(region, k.context, tuple(copies), tuple(missing))

    @_sandbox_errors
    def publish(self, region: str, values, run_id: str) -> str:
        from contract.active_endpoints import ACTIVE_REGION, UPDATED_BY, refusal
        from runbooks.core.errors import BadInput
        problem = refusal(values, run_id)
        if problem:
            raise BadInput(f"endpoints of {region}: {problem}")
        cluster = self.read(region)
        if not cluster.copies:
            raise StepFailed(f"{region}'s cluster ({cluster.context}) holds no active-endpoints ConfigMap; nothing "
                             "was written")
        for c in cluster.copies:
            self.sb.patch_configmap(region, c.namespace, c.name, dict(values), {UPDATED_BY: run_id})
        return (f"{', '.join(f'{c.namespace}/{c.name}' for c in cluster.copies)} in {region} (context "
                f"{cluster.context}) now send applications to {values.get(ACTIVE_REGION, '?')}"
                + (f"; no copy in {', '.join(cluster.missing)}" if cluster.missing else ""))

    def _deployments(self, region: str) -> dict:
        from sandbox.errors import SandboxError
        try:
            return self.sb.deployments(region)
        except SandboxError as exc:
            raise Unreachable(str(exc)) from None

    def deployments(self, region: str):
        from runbooks.adapters.kubectl import deployment_state  # the same reading of a Deployment object
        k = self._cluster(region)
        held = self._deployments(region)
        return tuple(deployment_state(ns, name, held.get(ns, {}).get(name)) for ns, name in k.listed_deployments)

    @_sandbox_errors
    def restart(self, region: str, namespace: str, name: str, restarted_for: str, at: str) -> str:
        from contract.active_endpoints import RESTARTED_AT, RESTARTED_FOR, restart_refusal
        from runbooks.core.errors import BadInput
        k = self._cluster(region)
        refusal = restart_refusal(k.restart_deployments, namespace, name, restarted_for, at)
        if refusal:
            raise BadInput(f"{region}'s cluster: {refusal}")
        if name not in self._deployments(region).get(namespace, {}):
            raise StepFailed(f"Deployment {namespace}/{name} does not exist in {region}'s cluster ({k.context}): "
                             "create it, or remove it from the stack's kubernetes.restart_deployments")
        self.sb.patch_deployment_template(region, namespace, name, {RESTARTED_AT: at, RESTARTED_FOR: restarted_for})
        return f"{namespace}/{name} in {region} restarted ({RESTARTED_AT}={at})"
