"""The sandbox's front: the one object the runbooks' sandbox adapter, the drills, the tests and the
CLI drive a local region pair with. Each method names its system's module and calls it there
(lifecycle, regions, status, host, postgres, dns_records, link, clusters, flows, kafka_replication,
buckets, param_store, backups, cache, cdc). Stable surface::

    up(dir, ...) -> Sandbox              start everything, write DIR/outputs.json (sandbox.lifecycle)
    down(dir) -> list[str]               stop everything (idempotent, also after a crash)
    Sandbox.open(dir) -> Sandbox         attach to a running sandbox
      .outputs .regions .databases .dsn(region, database, admin) .status()
      .set_record(name, region) .record(name)
      .fence(region, database) .unfence(region, database) .is_fenced(region, database)
      .promote(region, database) .rebuild_as_replica(region, source_region, database)
      .start_database(region, database) .stop_database(region, database)
      .kill_database(region, database) .kill_region(region) .start_region(region)
      .partition() .heal() .slow_link(ms) .link()
      .configmaps(region) .patch_configmap(region, ns, name, data, annotations) .start_cluster(region)

Methods that act return a sentence saying what they did; they raise ``SandboxError`` (naming
the component and its log) when they cannot. ``database=None`` means every database of the
sandbox. Every wait has a deadline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from sandbox import (
    buckets,
    clusters,
    dns_records,
    flows,
    host,
    kafka_cluster,
    kafka_replication,
    lifecycle,
    link,
    param_store,
    proc,
    regions,
    status,
)
from sandbox.backups import Backups
from sandbox.errors import SandboxError
from sandbox.layout import EAST, REGIONS, Layout, State, check_region
from sandbox.postgres import Node, rebuild_as_replica


def up(directory: str | Path, replication: str = "async", link_latency_ms: int = 0, dns_ttl: int = 1,
       databases: int = 1, port: int | None = None, rto_seconds: int = lifecycle.DEFAULT_RTO_S,
       rpo_seconds: int = lifecycle.DEFAULT_RPO_S, addresses: dict[str, str] | None = None,
       pg_bin: str | Path | None = None, base_backup: bool = True,
       systems: tuple[str, ...] | list[str] = ("postgres",), kafka_brokers: int = 1) -> "Sandbox":
    """Start a sandbox in ``directory`` and return it once everything is ready (``lifecycle.up``).

    On any failure (Ctrl-C included) everything started so far is stopped and the error names
    the component that failed and its log. ``pg_bin`` picks the PostgreSQL bin directory (default:
    the newest under /usr/lib/postgresql); ``addresses`` the regions' loopback addresses."""
    return Sandbox(*lifecycle.up(directory, replication=replication, link_latency_ms=link_latency_ms,
                                 dns_ttl=dns_ttl, databases=databases, port=port, rto_seconds=rto_seconds,
                                 rpo_seconds=rpo_seconds, addresses=addresses, pg_bin=pg_bin,
                                 base_backup=base_backup, systems=systems, kafka_brokers=kafka_brokers))


def down(directory: str | Path) -> list[str]:
    """Stop everything the sandbox in ``directory`` started. Safe to run twice, and after a crash."""
    return lifecycle.down(directory)


class Sandbox:
    """A running sandbox. Get one with ``Sandbox.open(dir)`` (or from ``up``)."""

    def __init__(self, layout: Layout, state: State, identity: proc.Identity):
        self.layout = layout
        self.state = state
        self.identity = identity
        self._outputs = None

    @classmethod
    def open(cls, directory: str | Path) -> "Sandbox":
        layout = Layout(directory)
        state = layout.read_state()
        if not any(proc.is_alive(r.pid, r.start_time) for r in proc.all_pids(layout.run_dir)):
            raise SandboxError(f"the sandbox in {layout.root} is down (no process of it runs); start it with "
                               f"`python -m sandbox up --dir {layout.root}`", component="sandbox")
        identity = host.server_identity(create=False, name=state.server_user) if os.geteuid() == 0 \
            else host.server_identity()
        return cls(layout, state, identity)

    # ---- description --------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        return self.layout.root

    @property
    def outputs(self):
        if self._outputs is None:
            from contract import outputs
            self._outputs = outputs.load_file(self.layout.outputs_file)
        return self._outputs

    @property
    def regions(self) -> list[str]:
        return list(REGIONS)

    @property
    def databases(self) -> list[str]:
        return [db.name for db in self.state.databases]

    @property
    def systems(self) -> list[str]:
        return list(self.state.extra.get("systems", ["postgres"]))

    def _names(self, database: str | None) -> list[str]:
        if database is None:
            return self.databases
        self.state.database(database)
        return [database]

    def _require(self, system: str) -> None:
        if system not in self.systems:
            raise SandboxError(f"this sandbox runs without {system}; start it with "
                               f"`python -m sandbox up --systems postgres,kafka,s3`", component="sandbox")

    def node(self, region: str, database: str = "payments") -> Node:
        check_region(region)
        self.state.database(database)
        return Node(self.layout, self.state, self.identity, database, region)

    def dsn(self, region: str, database: str = "payments", admin: bool = True, local: bool = False) -> str:
        """libpq connection string to that region's server: TCP on the region's address (what a client
        uses), or with ``local=True`` the unix socket (admin only, still allowed while fenced)."""
        return self.node(region, database).dsn(admin=admin, local=local)

    def status(self) -> dict:
        """Every component, its process and state, asked from the processes themselves."""
        return status.status(self.layout, self.state, self.identity)

    # ---- DNS (sandbox/dns_records.py) ---------------------------------------------------------

    def set_record(self, name: str, region: str, deadline_s: float = 3.0) -> str:
        """Record UPSERT: point a service name (or its FQDN) at a region; returns once the responder answers it."""
        return dns_records.set_record(self.layout, self.state, name, check_region(region), deadline_s)

    def record(self, name: str) -> str:
        """The region a service name points at (its address if it is no region's)."""
        return dns_records.record(self.layout, self.state, name)

    # ---- databases (sandbox/postgres.py) ------------------------------------------------------

    def _each(self, region: str, database: str | None, fn: Callable[[Node], str]) -> str:
        check_region(region)
        return "; ".join(fn(self.node(region, name)) for name in self._names(database))

    def is_fenced(self, region: str, database: str = "payments") -> bool:
        return self.node(region, database).is_fenced()

    def fence(self, region: str, database: str | None = None, conn=None) -> str:
        """Persistent fence: clients are refused and the server is read-only, live or at its next start.

        ``conn`` (with one ``database``): the caller's open admin session to that server, reused
        rather than a new one, and spared when client sessions are terminated."""
        return self._each(region, database, lambda n: n.fence(conn=self._one(database, conn)))

    def unfence(self, region: str, database: str | None = None, conn=None) -> str:
        return self._each(region, database, lambda n: n.unfence(conn=self._one(database, conn)))

    def promote(self, region: str, database: str | None = None, deadline_s: float = 30.0, conn=None) -> str:
        """Promote the standby(s) in ``region``; returns once each is writable."""
        return self._each(region, database, lambda n: n.promote(deadline_s, conn=self._one(database, conn)))

    @staticmethod
    def _one(database: str | None, conn):
        if conn is not None and database is None:
            raise SandboxError("an admin session can be passed for one named database only")
        return conn

    def start_database(self, region: str, database: str | None = None) -> str:
        """Start a stopped or killed server; a fence recorded meanwhile is applied before it takes clients."""
        return self._each(region, database, Node.start)

    def stop_database(self, region: str, database: str | None = None) -> str:
        return self._each(region, database, Node.stop)

    def kill_database(self, region: str, database: str | None = None) -> str:
        """Fault: SIGKILL the server's whole process tree (postmaster and every backend, frozen first)."""
        return self._each(region, database, Node.kill)

    def rebuild_as_replica(self, region: str, source_region: str, database: str | None = None,
                           deadline_s: float = 60.0) -> str:
        """Make ``region``'s server(s) streaming standbys of ``source_region``'s through the link:
        pg_rewind, or a fresh pg_basebackup when rewind is impossible. Returns once streaming."""
        check_region(region)
        check_region(source_region)
        if region == source_region:
            raise SandboxError(f"rebuild_as_replica: source and target are both {region}")
        return "; ".join(rebuild_as_replica(self.node(region, name), self.node(source_region, name), deadline_s)
                         for name in self._names(database))

    def current_primary(self, database: str = "payments") -> str | None:
        """The region whose server of ``database`` answers as primary (None if none does)."""
        primaries = [r for r in REGIONS if self.node(r, database).role() == "primary"]
        return primaries[0] if len(primaries) == 1 else (None if not primaries else ",".join(primaries))

    # ---- a whole region (sandbox/regions.py) ---------------------------------------------------

    def kill_region(self, region: str, cut_link: bool = False) -> str:
        """Fault: every process of the region killed at once, frozen first; with ``cut_link`` the
        link is partitioned just before (``regions.kill_region``)."""
        return regions.kill_region(self.layout, self.state, self.identity, check_region(region), cut_link)

    def start_region(self, region: str, deadline_s: float = lifecycle.READY_DEADLINE_S) -> str:
        """Bring a region back after ``kill_region``: an empty S3 and Kafka cluster, its databases as
        they were on disk, its cluster's ConfigMaps (``regions.start_region``)."""
        done = regions.start_region(self.layout, self.state, self.identity, check_region(region), deadline_s)
        self._outputs = None  # a new Kafka cluster rewrote the outputs
        return done

    # ---- backups, point-in-time restores, caches, CDC (sandbox/backups.py, cache.py, cdc.py) ----

    @property
    def backups(self) -> Backups:
        return Backups(self.layout, self.state, self.identity)

    def replicate_backups(self, database: str, source: str = EAST) -> str:
        """Copy ``source``'s automated backups of ``database`` and its archived WAL into the other region."""
        return self.backups.replicate(database, source)

    def base_backup(self, region: str, database: str | None = None) -> str:
        """Take a base backup (tar, gzip) of the region's server(s) into DIR/pg/<db>/<region>/basebackups/;
        with the region's WAL archive it is what a point-in-time restore starts from."""
        return "; ".join(f"base backup of {name} in {region}: "
                         f"{self.backups.backups_dir(name, region) / self.backups.take(self.node(region, name))['id']}"
                         for name in self._names(database))

    def seal_archive(self, region: str, database: str = "payments") -> dict:
        """Make the region's WAL archive complete up to now (a commit, a WAL switch, archived)."""
        return self.backups.seal(self.node(region, database))

    def _taken_ports(self) -> set[int]:
        return {p for db in self.state.databases for p in (db.port, db.link_port)} | \
            {self.state.dns_port, self.state.moto_port} | {r["port"] for r in self.backups.restores()}

    def restore(self, name: str, database: str, source_region: str, to_time: float | None = None,
                backup_id: str | None = None, deadline_s: float = 120.0) -> dict:
        """Point-in-time restore to a NEW server ``name`` in ``source_region`` (see Backups.restore)."""
        check_region(source_region)
        taken = self._taken_ports()
        address = self.state.addresses[source_region]
        return self.backups.restore(self.node(source_region, database), name, source_region, to_time=to_time,
                                    backup_id=backup_id, deadline_s=deadline_s,
                                    pick_port=lambda: host.pick_port([address], taken))

    def drop_restore(self, name: str) -> str:
        return self.backups.drop_restore(name)

    @property
    def caches(self):
        """The sandbox's Redis servers and their snapshots (sandbox/cache.py); started on demand."""
        from sandbox.cache import Caches
        taken = self._taken_ports()
        return Caches(self, lambda address: host.pick_port([address], taken | {c["port"] for c in Caches(
            self, None).servers()}))

    def cdc(self, name: str, database: str = "payments"):
        """A CDC consumer (pg_recvlogical, test_decoding) of the slot ``name`` (sandbox/cdc.py);
        ``down`` stops it with everything else."""
        from sandbox.cdc import CdcConsumer
        return CdcConsumer(self, name, database)

    # ---- the link (sandbox/link.py) -----------------------------------------------------------

    def link(self) -> dict:
        return link.describe(self.layout, self.state)

    def partition(self) -> str:
        """Fault: the link drops every byte both ways (a blackhole: connections hang, they are not refused)."""
        return link.partition(self.state)

    def heal(self) -> str:
        return link.heal(self.state)

    def slow_link(self, ms: int) -> str:
        """Fault: add ``ms`` one-way latency to each direction of the link (0 removes it)."""
        return link.slow_link(self.state, ms)

    # ---- the regions' clusters: the active-endpoints ConfigMaps (sandbox/clusters.py) ----------

    def cluster_reachable(self, region: str) -> bool:
        return clusters.reachable(self.layout, region)

    def configmaps(self, region: str) -> dict[str, dict[str, dict]]:
        """Namespace → name → {labels, annotations, data} in the region's cluster (SandboxError while it is down)."""
        return clusters.configmaps(self.layout, region)

    def patch_configmap(self, region: str, namespace: str, name: str, data: dict[str, str],
                        annotations: dict[str, str] | None = None) -> str:
        return clusters.patch(self.layout, region, namespace, name, data, annotations or {})

    def deployments(self, region: str) -> dict[str, dict[str, dict]]:
        """Namespace → name → Deployment object in the region's cluster (SandboxError while it is down)."""
        return clusters.deployments(self.layout, region)

    def patch_deployment_template(self, region: str, namespace: str, name: str, annotations: dict[str, str]) -> str:
        return clusters.patch_template(self.layout, region, namespace, name, annotations)

    def start_cluster(self, region: str) -> str:
        """The region's cluster answers again (after kill_region), with the ConfigMaps it had."""
        clusters.set_down(self.layout, region, False)
        return f"the cluster of {region} ({clusters.context(region)}) answers again"

    # ---- Kafka (sandbox/kafka_replication.py), S3 (buckets.py), the flows (flows.py) ----------

    def kafka_bootstrap(self, region: str) -> str:
        self._require("kafka")
        return kafka_replication.bootstrap_of(self.layout, check_region(region))

    def kafka_running(self, region: str) -> bool:
        """Every node of the region's cluster runs (one lost node of three is not a lost region)."""
        return regions.kafka_running(self.state, self.layout, check_region(region))

    def kill_kafka_broker(self, region: str, broker: int) -> str:
        """Fault: SIGKILL broker ``broker`` (its node id, 1-based) of the region's cluster."""
        self._require("kafka")
        return kafka_cluster.kill_broker(self.layout, self.state, check_region(region), broker)

    def start_kafka_broker(self, region: str, broker: int) -> str:
        """Start a killed broker again on its own storage (it rejoins the same cluster)."""
        self._require("kafka")
        return kafka_cluster.restart_broker(self.layout, self.state, check_region(region), broker, proc.worker_env())

    def kafka_partitions(self, region: str) -> dict[str, dict]:
        """Per partition of the replicated topics: leader, replicas and in-sync replicas, asked now."""
        from sandbox.flows import TOPICS
        self._require("kafka")
        return kafka_cluster.partitions(self.state, check_region(region), TOPICS)

    def s3_running(self, region: str) -> bool:
        return proc.running(self.layout.run_dir, f"moto-{check_region(region)}") is not None

    def kafka_cluster(self, region: str) -> dict:
        """The region's cluster as its host recorded it: bootstrap, incarnation (new at every start:
        the cluster starts empty), started_at."""
        self._require("kafka")
        return kafka_replication.cluster_info(self.layout, check_region(region)) or {}

    def kafka_offsets(self, region: str) -> dict[str, tuple[int, int]]:
        """Per partition of the replicated topics: (earliest, end) offsets, asked now."""
        from confluent_kafka import KafkaException

        self._require("kafka")
        try:
            return kafka_replication.end_offsets(self.layout, check_region(region))
        except KafkaException as exc:
            raise SandboxError(f"the Kafka cluster of {region} does not answer: {exc}", component=f"kafka-{region}",
                               log=self.layout.log(f"kafka-{region}")) from None

    def kafka_start_position(self, source: str, target: str) -> tuple[dict | str | None, str]:
        """Where the replicator must start copying source → target (``kafka_replication.choose_start``)."""
        from confluent_kafka import KafkaException

        self._require("kafka")
        check_region(source)
        check_region(target)
        try:
            return kafka_replication.choose_start(self.layout, source, target)
        except KafkaException as exc:
            raise SandboxError(f"the Kafka cluster of {target} does not answer, so where to start copying into it "
                               f"cannot be decided: {exc}", component=f"kafka-{target}",
                               log=self.layout.log(f"kafka-{target}")) from None
        except ValueError as exc:
            raise SandboxError(str(exc), component="replicator", log=self.layout.log("replicator")) from None

    def bucket_versioning(self, region: str) -> str | None:
        """The data bucket's versioning status (``Enabled``, ``Suspended``, None = never enabled)."""
        return buckets.versioning(self.layout, self.state, check_region(region))

    def flow(self, kind: str) -> dict | None:
        """The replication worker's status: ``kind`` is ``kafka`` (the replicator) or ``s3``."""
        self._require(kind)
        return flows.status(self.layout, kind)

    def set_flow(self, kind: str, source: str, target: str, running: bool, start_offsets: dict | str | None = None,
                 deadline_s: float = 15.0, why: str | None = None) -> str:
        """Start, stop or reverse a replication flow; returns once its worker has taken the change
        (``flows.set_flow``)."""
        self._require(kind)
        return flows.set_flow(self.layout, self.state, kind, check_region(source), check_region(target), running,
                              start_offsets=start_offsets, deadline_s=deadline_s, why=why)

    def param(self, name: str) -> str | None:
        """A parameter clients read (the sandbox's SSM Parameter Store)."""
        return param_store.get_param(self.layout, name)

    def set_param(self, name: str, value: str) -> str:
        try:
            version = param_store.put_param(self.layout, name, value)
        except ValueError as exc:
            raise SandboxError(str(exc), component="params") from None
        return f"parameter {name} = {value!r} (version {version})"

    def translate_groups(self, source: str, target: str, groups: list[str] | None = None) -> dict:
        """Give every consumer group on ``target`` the offsets MirrorMaker 2 translated for it (its
        last checkpoint of the flow source → target), and say what that costs
        (``kafka_replication.translate_groups``)."""
        self._require("kafka")
        return kafka_replication.translate_groups(self.layout, source, target, groups)

    def kafka_checkpoints(self, source: str, target: str) -> dict[str, dict]:
        """MirrorMaker 2's last checkpoint per group of the flow source → target, read on the
        target (read only): ``{group: {"partitions": {tp: {upstream, downstream}}, "at": t}}``."""
        self._require("kafka")
        return kafka_replication.checkpoints(kafka_cluster.bootstrap(self.state, check_region(target)),
                                             check_region(source))

    def kafka_record_ids(self, region: str) -> set[str]:
        """The ids of every record in the region's cluster (the drill counts acked records lost)."""
        self._require("kafka")
        try:
            return kafka_replication.record_ids(self.layout, check_region(region))
        except TimeoutError as exc:
            raise SandboxError(str(exc), component=f"kafka-{region}", log=self.layout.log(f"kafka-{region}")) from None

    def object_keys(self, region: str) -> set[str]:
        """The current keys of the region's data bucket."""
        return buckets.object_keys(self.layout, self.state, check_region(region))
