"""The sandbox's lifecycle, run by the controller: ``up`` (choose ports, start every process, wait
until each answers, write DIR/outputs.json in the outputs contract) and ``down``. The front
(``sandbox.control``) calls it; a region's loss and return are in ``sandbox.regions``.
(Over 500 lines: ``up`` is one sequence, the ``_UpRun`` and its checks, that reads best whole.)"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contract.active_endpoints import CONFIGMAP_NAME as CONFIGMAP, initial_data
from sandbox import clusters, dns_records, flows, kafka_cluster, kafka_replication, param_store, proc
from sandbox.backups import Backups
from sandbox.buckets import bucket_name
from sandbox.errors import SandboxError
from sandbox.flows import KAFKA_DEADLINE_S
from sandbox.host import check_traversable, pick_port, port_free, server_identity
from sandbox.layout import (
    ADMIN_USER,
    APP_USER,
    DB_NAME,
    DEFAULT_ADDRESSES,
    DNS_ADDRESS,
    EAST,
    REGIONS,
    REPLICATION_USER,
    WEST,
    ZONE,
    DatabaseState,
    Layout,
    State,
    database_names,
    fqdn,
    write_json_atomic,
)
from sandbox.postgres import Node, find_pg_bin
from sandbox.probes import deadline_loop, dns_problem, link_problem, s3_problem

log = logging.getLogger(__name__)

READY_DEADLINE_S = 30.0
DEFAULT_RTO_S = 30
DEFAULT_RPO_S = 5
SYSTEMS = ("postgres", "kafka", "s3")
"""postgres always; kafka = an Apache Kafka cluster per region and MirrorMaker 2 between them;
s3 = the replication worker (each region's moto S3 runs always)."""


# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------


def _prepare_dir(layout: Layout) -> None:
    root = layout.root
    if layout.state_file.exists():
        alive = [r.component for r in proc.all_pids(layout.run_dir) if proc.is_alive(r.pid, r.start_time)]
        if alive:
            raise SandboxError(f"{root} is already up ({', '.join(alive)} running); run "
                               f"`python -m sandbox down --dir {root}` first, or use another --dir",
                               component="sandbox")
        for name in ("pg", "run", "dns", "secrets", "logs", "kafka", "s3", "params", "restores", "k8s"):
            shutil.rmtree(root / name, ignore_errors=True)
        for name in ("link.json", "outputs.json", "state.json"):
            (root / name).unlink(missing_ok=True)
        if (root / "runbooks").is_dir():
            # the runbooks' journals and audit log belong to the sandbox that was here: a new one must
            # not resume them, and an audit trail is never deleted, so it is kept beside
            (root / "runbooks").rename(root / f"runbooks-before-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    elif root.exists() and any(root.iterdir()):
        raise SandboxError(f"{root} is not empty and is not a sandbox directory; give `up` a new or empty --dir",
                           component="sandbox")
    root.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(root.stat().st_mode) & 0o011 == 0 and os.geteuid() == 0:
        root.chmod(stat.S_IMODE(root.stat().st_mode) | 0o011)  # the server user must traverse DIR itself
    for sub in (layout.run_dir, layout.logs_dir, layout.dns_dir, layout.secrets_dir, layout.pg_dir):
        sub.mkdir(parents=True, exist_ok=True)
    layout.secrets_dir.chmod(0o711)


def _write_pgpass(layout: Layout, identity: proc.Identity) -> dict[str, str]:
    passwords = {user: secrets.token_urlsafe(24) for user in (ADMIN_USER, APP_USER, REPLICATION_USER)}
    text = "".join(f"*:*:*:{user}:{pw}\n" for user, pw in passwords.items())
    fd = os.open(layout.pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if identity.switch:  # the standby's walreceiver and pg_rewind read it as the server user
        os.chown(layout.pgpass, identity.uid, identity.gid)
    return passwords


def helper_argv(kind: str, layout: Layout, *extra: str) -> list[str]:
    """A helper's command line (sandbox/workers/serve.py): dns, link, moto REGION, replicator, s3-replication."""
    return proc.worker_argv("sandbox.workers.serve", kind, *extra, "--dir", str(layout.root))


class _UpRun:
    """One `up`: what it started, so that any failure (or Ctrl-C) stops exactly that."""

    def __init__(self, layout: Layout, state: State, identity: proc.Identity, passwords: dict[str, str],
                 base_backup: bool = False):
        self.base_backup = base_backup
        self.backup_threads: list = []
        self.layout = layout
        self.state = state
        self.identity = identity
        self.passwords = passwords
        self.cancel = threading.Event()
        self.t0 = time.monotonic()
        self.t0_epoch = time.time()
        self.marks: dict[str, float] = {}
        self._marks_lock = threading.Lock()

    def mark(self, what: str) -> None:
        with self._marks_lock:
            self.marks[what] = round(time.monotonic() - self.t0, 3)

    def node(self, database: str, region: str) -> Node:
        return Node(self.layout, self.state, self.identity, database, region)

    def start_helpers(self) -> None:
        env = proc.worker_env()
        proc.spawn(self.layout.run_dir, "dns", helper_argv("dns", self.layout), self.layout.log("dns"), env=env)
        proc.spawn(self.layout.run_dir, "link", helper_argv("link", self.layout), self.layout.log("link"), env=env)
        for region in REGIONS:
            comp = f"moto-{region}"
            # niced: moto's start-up costs more CPU than the rest together and would starve the
            # PostgreSQL chain (initdb → start → clone), which is the critical path on 2 cores
            proc.spawn(self.layout.run_dir, comp, ["nice", "-n", "10", *helper_argv("moto", self.layout, region)],
                        self.layout.log(comp), env=env)
        systems = self.state.extra.get("systems", [])
        if "kafka" in systems:
            # both regions' clusters formatted and started side by side (a JVM each, ~1.5 s to format),
            # beside the PostgreSQL chain rather than before it; start_flows waits for this thread
            def kafka() -> None:
                with ThreadPoolExecutor(len(REGIONS)) as pool:
                    list(pool.map(lambda r: kafka_cluster.start_cluster(self.layout, self.state, r, env,
                                                                 cancelled=self.cancel.is_set), REGIONS))
                self.mark("kafka nodes spawned")

            self.kafka_thread = _start_thread(kafka)
            proc.spawn(self.layout.run_dir, "replicator", helper_argv("replicator", self.layout),
                        self.layout.log("replicator"), env=env)
        if "s3" in systems:
            proc.spawn(self.layout.run_dir, "s3-replication",
                        ["nice", "-n", "10", *helper_argv("s3-replication", self.layout)],
                        self.layout.log("s3-replication"), env=env)

    def settle(self, deadline_s: float = 90.0) -> None:
        """After a failure or Ctrl-C (``cancel`` set): wait for the threads that still start
        processes (the Kafka clusters' format-then-spawn), so that stopping everything afterwards
        finds every pid file they write. They start nothing once ``cancel`` is set."""
        t = getattr(self, "kafka_thread", None)
        if t is not None:
            t.join(deadline_s)

    def wait_link(self) -> None:
        deadline_loop(READY_DEADLINE_S, "the link", lambda: link_problem(self.layout, self.state), "link",
                       self.layout.log("link"), "link", self.layout.run_dir)
        self.mark("link ready")

    def wait_helpers(self) -> None:
        self.wait_link()
        first = fqdn(self.state.databases[0].name)
        deadline_loop(READY_DEADLINE_S, "the DNS responder",
                       lambda: dns_problem(self.state, first, self.state.addresses[EAST]), "dns",
                       self.layout.log("dns"), "dns", self.layout.run_dir)
        self.mark("dns ready")
        for region in REGIONS:
            comp = f"moto-{region}"
            deadline_loop(READY_DEADLINE_S, "S3 (moto)", lambda r=region: s3_problem(self.state, r), comp,
                           self.layout.log(comp), comp, self.layout.run_dir)
            self.mark(f"{comp} ready")
        self.start_flows()

    def start_flows(self) -> None:
        """Kafka clusters ready, the replicator and the S3 replication worker running east → west,
        and the clients' parameters pointing at the primary region."""
        systems = self.state.extra.get("systems", [])
        if "kafka" in systems:
            self.kafka_thread.join()
            if self.kafka_thread.error is not None:
                raise self.kafka_thread.error
            for region in REGIONS:
                kafka_cluster.wait_cluster(self.layout, self.state, region, kafka_replication.TOPICS,
                                   deadline_s=KAFKA_DEADLINE_S)
                self.mark(f"kafka-{region} ready")
            boot = kafka_replication.cluster_bootstraps(self.layout)[EAST]
            for app in (param_store.PRODUCER_APP, param_store.CONSUMER_APP):
                param_store.put_param(self.layout, param_store.bootstrap_parameter(app), boot)
            flows.set_flow(self.layout, self.state, "kafka", EAST, WEST, running=True, deadline_s=KAFKA_DEADLINE_S)
            self.mark("kafka and MirrorMaker 2 started")
        if "s3" in systems:
            param_store.put_param(self.layout, param_store.bucket_parameter(), bucket_name(EAST))
            flows.set_flow(self.layout, self.state, "s3", EAST, WEST, running=True)
            self.mark("s3 replication ready")

    def prepare_primaries(self) -> None:
        pwfile = Path(self.state.socket_root) / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.passwords[ADMIN_USER] + "\n")
        if self.identity.switch:
            os.chown(pwfile, self.identity.uid, self.identity.gid)
        try:
            names = [db.name for db in self.state.databases]
            first = self.node(names[0], EAST)
            first.initdb(pwfile)
            self.mark("initdb")
        finally:
            pwfile.unlink(missing_ok=True)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: self.node(n, EAST).copy_from_template(first.data), names[1:]))
        self.mark("primaries' data directories")

    def bring_up_pair(self, database: str) -> None:
        primary, standby = self.node(database, EAST), self.node(database, WEST)
        if self.cancel.is_set():
            return
        primary.start()
        self.mark(f"{database}: primary started")
        primary.bootstrap_primary(self.passwords)
        primary.ensure_slot_for(WEST)
        self.mark(f"{database}: primary bootstrapped")
        if self.base_backup:  # beside the standby's clone: it waits on the link more than it uses the CPU
            self.backup_threads.append(_start_thread(lambda: self._base_backup(primary)))
        if not self.link_ready.wait(READY_DEADLINE_S) or self.cancel.is_set():
            return  # the link's own wait raises the error that names it
        standby.clone_from_link()
        self.mark(f"{database}: standby cloned")
        if self.cancel.is_set():
            return
        standby.start()
        standby.wait_streaming_from(primary)
        self.mark(f"{database}: standby streaming")
        if self.state.replication == "sync":
            primary.set_sync(WEST)  # only now: a standby cloned with it would hang every commit once promoted

    def _base_backup(self, primary: Node) -> None:
        Backups(self.layout, self.state, self.identity).take(primary)
        self.mark(f"{primary.database}: base backup")

    def wait_base_backups(self) -> None:
        for t in self.backup_threads:
            t.join(READY_DEADLINE_S * 4)
            if t.is_alive():
                raise SandboxError("the base backup did not finish in time", component="sandbox")
            if t.error is not None:
                raise t.error

    def run(self) -> None:
        self.link_ready = threading.Event()
        self.start_helpers()
        self.mark("helpers spawned")
        self.prepare_primaries()
        names = [db.name for db in self.state.databases]
        def link_then_flag() -> None:
            try:
                self.wait_link()
            except BaseException:
                self.cancel.set()
                raise
            finally:
                self.link_ready.set()

        with ThreadPoolExecutor(max_workers=min(len(names), 4) + 1) as pool:
            # the link's wait first: pair workers block on it, it must never queue behind them
            link_future = pool.submit(link_then_flag)
            futures = [pool.submit(self.bring_up_pair, n) for n in names]
            try:
                link_future.result()
                for f in futures:
                    f.result()
            except BaseException:
                self.cancel.set()
                raise
        self.wait_helpers()


class _Thread(threading.Thread):
    """A thread that keeps its exception for the joiner."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.fn()
        except BaseException as exc:  # handed to wait_base_backups, which raises it
            self.error = exc


def _start_thread(fn) -> _Thread:
    t = _Thread(fn)
    t.start()
    return t


def build_outputs(state: State, layout: Layout):
    """The outputs contract document for this sandbox, validated."""
    from contract import outputs

    systems = state.extra.get("systems", [])
    boots = kafka_replication.cluster_bootstraps(layout) if "kafka" in systems else {}

    names = [db.name for db in state.databases]
    regions = {}
    for region in REGIONS:
        role = "primary" if region == EAST else "secondary"
        dbs = {}
        for db in state.databases:
            identifier = f"sandbox-{region}-{db.name}"
            dbs[db.name] = {
                "identifier": identifier,
                "arn": f"arn:sandbox:rds:{region}:000000000000:db:{identifier}",
                "endpoint": state.addresses[region],
                "port": db.port,
                "role": "primary" if region == EAST else "replica",
                "db_name": DB_NAME,
                "username": ADMIN_USER,
                "secret_arn": str(layout.pgpass),
                "source_arn": None if region == EAST else
                f"arn:sandbox:rds:{EAST}:000000000000:db:sandbox-{EAST}-{db.name}",
            }
        regions[region] = {
            "role": role,
            "stack": "sandbox",
            "databases": dbs,
            "dns": {"failover": role.upper(), "set_identifier": f"sandbox-{region}",
                    "address": state.addresses[region]},
            "storage": {"data_bucket": bucket_name(region), "data_bucket_arn": f"arn:aws:s3:::{bucket_name(region)}",
                        "endpoint_url": f"http://{state.addresses[region]}:{state.moto_port}",
                        "writer_parameter": param_store.bucket_parameter() if "s3" in systems else None},
        }
        if "kafka" in systems:
            regions[region]["streaming"] = {
                "cluster_arn": f"arn:sandbox:kafka:{region}:000000000000:cluster/sandbox-{region}",
                "bootstrap_brokers": boots[region],
                "replicator_arn": None if region == EAST else
                f"arn:sandbox:kafka:{region}:000000000000:replicator/sandbox-{EAST}-to-{region}",
                "bootstrap_parameter": param_store.bootstrap_parameter(param_store.PRODUCER_APP),
                "client_parameters": [param_store.bootstrap_parameter(a)
                                      for a in (param_store.PRODUCER_APP, param_store.CONSUMER_APP)],
                "consumer_groups": list(kafka_replication.GROUPS), "topics": list(kafka_replication.TOPICS),
                "client_refresh_seconds": 1}
        regions[region]["kubernetes"] = {"context": clusters.context(region), "namespaces": list(clusters.NAMESPACES),
                                         "configmap": CONFIGMAP,
                                         "restart_deployments": {ns: list(names) for ns, names
                                                                 in clusters.DEPLOYMENTS.items()}}
    doc = {
        "schema_version": outputs.SCHEMA_VERSION,
        "project": "regionpair",
        "stack": "sandbox",
        "target": "sandbox",
        "sandbox_dir": str(layout.root),
        "objectives": {"rto_seconds": state.rto_seconds, "rpo_seconds": state.rpo_seconds},
        "rto_budget": None,
        "dns": {"zone_id": None, "zone_name": ZONE, "ttl_seconds": state.dns_ttl, "strategy": "record-upsert",
                "resolver": f"{DNS_ADDRESS}:{state.dns_port}", "records": {n: fqdn(n) for n in names}},
        "regions": regions,
    }
    return outputs.from_dict(doc).require_pair()


def up(directory: str | Path, replication: str = "async", link_latency_ms: int = 0, dns_ttl: int = 1,
       databases: int = 1, port: int | None = None, rto_seconds: int = DEFAULT_RTO_S,
       rpo_seconds: int = DEFAULT_RPO_S, addresses: dict[str, str] | None = None,
       pg_bin: str | Path | None = None, base_backup: bool = True,
       systems: tuple[str, ...] | list[str] = ("postgres",), kafka_brokers: int = 1
       ) -> tuple[Layout, State, proc.Identity]:
    """Start a sandbox in ``directory``; return what the front opens once everything is ready.

    On any failure (Ctrl-C included) everything started so far is stopped and the error names
    the component that failed and its log. ``pg_bin`` picks the PostgreSQL bin directory (default:
    the newest under /usr/lib/postgresql); ``addresses`` the regions' loopback addresses."""
    if replication not in ("async", "sync"):
        raise SandboxError(f"--replication {replication!r}: use async or sync")
    if not 1 <= databases <= 20:
        raise SandboxError(f"--databases {databases}: use 1 to 20")
    if link_latency_ms < 0 or dns_ttl < 0:
        raise SandboxError("--link-latency-ms and --dns-ttl must be 0 or more")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or "postgres" not in systems:
        raise SandboxError(f"--systems {','.join(systems)}: use postgres plus any of kafka, s3 "
                           f"(e.g. postgres,kafka,s3); {', '.join(unknown) or 'postgres is missing'}")
    if "kafka" in systems:  # before anything is started or written: Java and the pinned jars
        kafka_cluster.java_bin()
        kafka_cluster.classpath()
        kafka_cluster.pick_ports(kafka_brokers, lambda: 0)
    layout = Layout(directory)
    addresses = dict(addresses or DEFAULT_ADDRESSES)
    identity = server_identity()
    pg_bin = Path(pg_bin) if pg_bin is not None else find_pg_bin()
    _prepare_dir(layout)
    check_traversable(layout.root, identity)

    region_addrs = [addresses[r] for r in REGIONS]
    taken: set[int] = set()
    names = database_names(databases)
    db_ports: list[int] = []
    if port is not None:
        for i, name in enumerate(names):
            p = port + i
            for region in REGIONS:
                if not 1024 <= p <= 65535 or not port_free(addresses[region], p):
                    raise SandboxError(f"port {p} is taken on {addresses[region]} (database {name} in {region}); "
                                       "pass another --port or leave it out to pick free ports",
                                       component=f"postgres-{name}-{region}")
            db_ports.append(p)
            taken.add(p)
    else:
        db_ports = [pick_port(region_addrs, taken) for _ in names]
    state = State(
        dir=str(layout.root), instance=secrets.token_hex(8), addresses=addresses,
        databases=[DatabaseState(name=n, port=p, link_port=pick_port(region_addrs, taken))
                   for n, p in zip(names, db_ports)],
        dns_port=pick_port([DNS_ADDRESS], taken, udp=True), moto_port=pick_port(region_addrs, taken),
        replication=replication, dns_ttl=dns_ttl, link_latency_ms=link_latency_ms, server_user=identity.name,
        socket_root=str(layout.socket_root_default()), pg_bin=str(pg_bin), rto_seconds=rto_seconds,
        rpo_seconds=rpo_seconds, created=time.time(),
        extra={"systems": [s for s in SYSTEMS if s in systems]})
    if "kafka" in systems:
        state.extra["kafka"] = kafka_cluster.pick_ports(kafka_brokers, lambda: pick_port(region_addrs, taken))
    socket_root = Path(state.socket_root)
    shutil.rmtree(socket_root, ignore_errors=True)
    socket_root.mkdir(mode=0o755)
    layout.write_state(state)
    write_json_atomic(layout.link_file, {"partitioned": False, "latency_ms": link_latency_ms})
    dns_records.write(layout, state, {fqdn(n): addresses[EAST] for n in names})
    passwords = _write_pgpass(layout, identity)

    run = _UpRun(layout, state, identity, passwords, base_backup=base_backup)
    try:
        run.run()
        run.wait_base_backups()  # started beside each standby's clone (by default: restores need one)
        if base_backup:
            run.mark("base backups")
            backups = Backups(layout, state, identity)
            for db in state.databases:  # into DR at once, as RDS's automated-backup replication
                backups.replicate(db.name)  # (which the stacks configure) does from the start
        outputs = build_outputs(state, layout)
        for region in REGIONS:  # as Pulumi creates them: both clusters' applications use the primary
            clusters.create(layout, region, initial_data(outputs.primary))
        write_json_atomic(layout.outputs_file, outputs.to_dict())
        run.mark("outputs written")
        write_json_atomic(layout.logs_dir / "up-timings.json", run.marks)
        write_json_atomic(layout.logs_dir / "up-started.json", {"epoch": run.t0_epoch})  # the marks' zero
    except BaseException as exc:
        run.cancel.set()
        try:
            run.settle()
        finally:  # a second Ctrl-C during the wait still stops what is there
            _stop_all(layout, state)
        if isinstance(exc, SandboxError):
            raise SandboxError(f"up failed, everything it started is stopped: {exc}", component=exc.component,
                               log=exc.log) from None
        if isinstance(exc, Exception):
            raise SandboxError(f"up failed ({type(exc).__name__}: {exc}); everything it started is stopped; "
                               f"logs in {layout.logs_dir}", component="sandbox") from exc
        raise
    return layout, state, identity


# ---------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------


def _stop_all(layout: Layout, state: State | None) -> list[str]:
    """Stop every process with a pid file: PostgreSQL with a fast shutdown, helpers with SIGTERM,
    all at once; anything still there after the grace period has its tree killed."""
    done = _stop_round(layout, proc.all_pids(layout.run_dir))
    # a pid file written while that round ran (MirrorMaker 2's, by its supervisor, while it was
    # being stopped; a Kafka node of an interrupted `up`) is stopped too, until none is left
    for _ in range(3):
        late = proc.all_pids(layout.run_dir)
        if not late:
            break
        done += _stop_round(layout, late)
    if state is not None:  # servers killed by a fault (or by `down` after its grace period)
        for db in state.databases:
            for region in REGIONS:
                Node(layout, state, proc.Identity("", 0, 0, False), db.name, region).release_shared_memory()
        shutil.rmtree(state.socket_root, ignore_errors=True)
    return done


def _stop_round(layout: Layout, records) -> list[str]:
    import signal as _signal

    records = list(records)
    done: list[str] = []
    alive = []
    for rec in records:
        if proc.is_alive(rec.pid, rec.start_time):
            sig = _signal.SIGINT if rec.component.startswith("postgres-") else _signal.SIGTERM
            try:
                os.kill(rec.pid, sig)
            except ProcessLookupError:
                continue
            alive.append(rec)
    deadline = time.monotonic() + 15.0
    pending = list(alive)
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if proc.is_alive(r.pid, r.start_time)]
        if pending:
            time.sleep(0.02)
    for rec in alive:
        if rec in pending:
            proc.kill_tree(rec.pid, rec.start_time, rec.component)
            done.append(f"killed {rec.component} (pid {rec.pid}): it did not stop within 15 s")
        else:
            done.append(f"stopped {rec.component} (pid {rec.pid})")
    for rec in records:
        proc.pid_path(layout.run_dir, rec.component).unlink(missing_ok=True)
    return done


def down(directory: str | Path) -> list[str]:
    """Stop everything the sandbox in ``directory`` started. Safe to run twice, and after a crash."""
    layout = Layout(directory)
    if not layout.root.exists():
        return [f"{layout.root} does not exist; nothing to stop"]
    try:
        state = layout.read_state()
    except SandboxError:
        state = None
        if not layout.run_dir.is_dir():
            return [f"{layout.root} has no sandbox state and no pid files; nothing to stop"]
    done = _stop_all(layout, state)
    return done or ["nothing was running"]
