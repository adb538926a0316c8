"""The sandbox's Python API: bring a local region pair up and down, and drive it.

This is what the runbooks' sandbox adapter and the tests use; the CLI (``python -m sandbox``) is
a thin layer over it. Stable surface::

    up(dir, ...) -> Sandbox              start everything, write DIR/outputs.json
    down(dir) -> list[str]               stop everything (idempotent, also after a crash)
    Sandbox.open(dir) -> Sandbox         attach to a running sandbox
      .outputs .regions .databases .dsn(region, database, admin) .status()
      .set_record(name, region) .record(name)
      .fence(region, database) .unfence(region, database) .is_fenced(region, database)
      .promote(region, database) .rebuild_as_replica(region, source_region, database)
      .start_database(region, database) .stop_database(region, database)
      .kill_database(region, database) .kill_region(region)
      .partition() .heal() .slow_link(ms) .link()
      .configmaps(region) .patch_configmap(region, ns, name, data, annotations) .start_cluster(region)

Methods that act return a sentence saying what they did; they raise ``SandboxError`` (naming
the component and its log) when they cannot. ``database=None`` means every database of the
sandbox. Every wait has a deadline.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import random
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from sandbox import _clusters, _kafka, _proc
from sandbox._layout import (ADMIN_USER, APP_USER, DB_NAME, DEFAULT_ADDRESSES, DNS_ADDRESS, EAST, REGIONS,
                             REPLICATION_USER, WEST, ZONE, DatabaseState, Layout, State, check_region,
                             database_names, file_lock, fqdn, write_json_atomic)
from sandbox._pg import Node, find_pg_bin
from sandbox._serve import bucket_name
from sandbox.errors import SandboxError
from contract.active_endpoints import CONFIGMAP_NAME as CONFIGMAP, initial_data

log = logging.getLogger(__name__)

SERVER_USER = "regionpair-sandbox"
PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, so client sockets never take them
READY_DEADLINE_S = 30.0
KAFKA_DEADLINE_S = 60.0
"""A JVM's start-up on a loaded 2-core machine: several seconds each, several JVMs per sandbox."""
DEFAULT_RTO_S = 30
DEFAULT_RPO_S = 5
SYSTEMS = ("postgres", "kafka", "s3")
"""postgres always; kafka = an Apache Kafka cluster per region and MirrorMaker 2 between them;
s3 = the replication worker (each region's moto S3 runs always)."""


# ---------------------------------------------------------------------------------------------
# Who runs the servers
# ---------------------------------------------------------------------------------------------


def server_identity(create: bool = True, name: str = SERVER_USER) -> _proc.Identity:
    """As root: the dedicated system user (created once with useradd). Otherwise: ourselves."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return _proc.Identity(pw.pw_name, pw.pw_uid, pw.pw_gid, switch=False)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        if not create:
            raise SandboxError(f"the sandbox's server user {name!r} does not exist; `up` creates it") from None
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        proc = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               "--user-group", name], capture_output=True, text=True, timeout=30)
        if proc.returncode not in (0, 9):  # 9: created meanwhile by a parallel `up`
            raise SandboxError(f"cannot create the system user {name!r} that runs PostgreSQL (which refuses "
                               f"root): useradd said {proc.stderr.strip()!r}") from None
        pw = pwd.getpwnam(name)
    return _proc.Identity(name, pw.pw_uid, pw.pw_gid, switch=True)


def check_traversable(path: Path, identity: _proc.Identity) -> None:
    """The server user must reach DIR; name the first directory on the way that stops it."""
    if not identity.switch:
        return
    groups = {identity.gid} | {g.gr_gid for g in __import__("grp").getgrall() if identity.name in g.gr_mem}
    for p in [*reversed(path.parents), path]:
        st = p.stat()
        if st.st_uid == identity.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise SandboxError(
                f"the PostgreSQL server runs as {identity.name!r} (it refuses root) and cannot enter {p} "
                f"(mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}); use a DIR whose parents are all "
                f"traversable (e.g. under /var/tmp), or `chmod o+x {p}`", component="sandbox")


# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------


def port_free(address: str, port: int, udp: bool = False) -> bool:
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def _pick_port(addresses: list[str], taken: set[int], udp: bool = False, rng: random.Random | None = None) -> int:
    rng = rng or random.Random()
    for _ in range(500):
        port = rng.randrange(*PORT_RANGE)
        if port in taken:
            continue
        if all(port_free(a, port) and (not udp or port_free(a, port, udp=True)) for a in addresses):
            taken.add(port)
            return port
    raise SandboxError(f"no free port found in {PORT_RANGE[0]}-{PORT_RANGE[1]} on {', '.join(addresses)}")


# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------


def _prepare_dir(layout: Layout) -> None:
    root = layout.root
    if layout.state_file.exists():
        alive = [r.component for r in _proc.all_pids(layout.run_dir) if _proc.is_alive(r.pid, r.start_time)]
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


def _write_pgpass(layout: Layout, identity: _proc.Identity) -> dict[str, str]:
    passwords = {user: secrets.token_urlsafe(24) for user in (ADMIN_USER, APP_USER, REPLICATION_USER)}
    text = "".join(f"*:*:*:{user}:{pw}\n" for user, pw in passwords.items())
    fd = os.open(layout.pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if identity.switch:  # the standby's walreceiver and pg_rewind read it as the server user
        os.chown(layout.pgpass, identity.uid, identity.gid)
    return passwords


def _write_records(layout: Layout, state: State, records: dict[str, str]) -> None:
    write_json_atomic(layout.records_file, {"ttl_seconds": state.dns_ttl, "records": records})


def _serve_argv(kind: str, layout: Layout, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sandbox._serve", kind, *extra, "--dir", str(layout.root)]


def _serve_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _deadline_loop(deadline_s: float, what: str, check: Callable[[], str | None], component: str,
                   log_path: Path, pid_component: str | None = None, run_dir: Path | None = None) -> None:
    """Call ``check`` until it returns None (ready) or the deadline passes; it returns the last problem."""
    deadline = time.monotonic() + deadline_s
    problem = "not checked"
    while time.monotonic() < deadline:
        if pid_component and run_dir and _proc.running(run_dir, pid_component) is None:
            raise SandboxError(f"exited while starting: {_proc.tail(log_path)}", component=component, log=log_path)
        problem = check()
        if problem is None:
            return
        time.sleep(0.03)
    raise SandboxError(f"{what} not ready after {deadline_s:.0f} s ({problem})", component=component, log=log_path)


class _UpRun:
    """One `up`: what it started, so that any failure (or Ctrl-C) stops exactly that."""

    def __init__(self, layout: Layout, state: State, identity: _proc.Identity, passwords: dict[str, str],
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
        env = _serve_env()
        _proc.spawn(self.layout.run_dir, "dns", _serve_argv("dns", self.layout), self.layout.log("dns"), env=env)
        _proc.spawn(self.layout.run_dir, "link", _serve_argv("link", self.layout), self.layout.log("link"), env=env)
        for region in REGIONS:
            comp = f"moto-{region}"
            # niced: moto's start-up costs more CPU than the rest together and would starve the
            # PostgreSQL chain (initdb → start → clone), which is the critical path on 2 cores
            _proc.spawn(self.layout.run_dir, comp, ["nice", "-n", "10", *_serve_argv("moto", self.layout, region)],
                        self.layout.log(comp), env=env)
        systems = self.state.extra.get("systems", [])
        if "kafka" in systems:
            # both regions' clusters formatted and started side by side (a JVM each, ~1.5 s to format),
            # beside the PostgreSQL chain rather than before it; start_flows waits for this thread
            def kafka() -> None:
                with ThreadPoolExecutor(len(REGIONS)) as pool:
                    list(pool.map(lambda r: _kafka.start_cluster(self.layout, self.state, r, env,
                                                                 cancelled=self.cancel.is_set), REGIONS))
                self.mark("kafka nodes spawned")

            self.kafka_thread = _start_thread(kafka)
            _proc.spawn(self.layout.run_dir, "replicator", _serve_argv("replicator", self.layout),
                        self.layout.log("replicator"), env=env)
        if "s3" in systems:
            _proc.spawn(self.layout.run_dir, "s3-replication",
                        ["nice", "-n", "10", *_serve_argv("s3-replication", self.layout)],
                        self.layout.log("s3-replication"), env=env)

    def settle(self, deadline_s: float = 90.0) -> None:
        """After a failure or Ctrl-C (``cancel`` set): wait for the threads that still start
        processes (the Kafka clusters' format-then-spawn), so that stopping everything afterwards
        finds every pid file they write. They start nothing once ``cancel`` is set."""
        t = getattr(self, "kafka_thread", None)
        if t is not None:
            t.join(deadline_s)

    def wait_link(self) -> None:
        _deadline_loop(READY_DEADLINE_S, "the link", lambda: _link_problem(self.layout, self.state), "link",
                       self.layout.log("link"), "link", self.layout.run_dir)
        self.mark("link ready")

    def wait_helpers(self) -> None:
        self.wait_link()
        first = fqdn(self.state.databases[0].name)
        _deadline_loop(READY_DEADLINE_S, "the DNS responder",
                       lambda: _dns_problem(self.state, first, self.state.addresses[EAST]), "dns",
                       self.layout.log("dns"), "dns", self.layout.run_dir)
        self.mark("dns ready")
        for region in REGIONS:
            comp = f"moto-{region}"
            _deadline_loop(READY_DEADLINE_S, "S3 (moto)", lambda r=region: _s3_problem(self.state, r), comp,
                           self.layout.log(comp), comp, self.layout.run_dir)
            self.mark(f"{comp} ready")
        self.start_flows()

    def start_flows(self) -> None:
        """Kafka clusters ready, the replicator and the S3 replication worker running east → west,
        and the clients' parameters pointing at the primary region."""
        from sandbox import _streams

        systems = self.state.extra.get("systems", [])
        sb = Sandbox(self.layout, self.state, self.identity)
        if "kafka" in systems:
            self.kafka_thread.join()
            if self.kafka_thread.error is not None:
                raise self.kafka_thread.error
            for region in REGIONS:
                _kafka.wait_cluster(self.layout, self.state, region, _streams.TOPICS, deadline_s=KAFKA_DEADLINE_S)
                self.mark(f"kafka-{region} ready")
            boot = _streams.cluster_bootstraps(self.layout)[EAST]
            for app in (_streams.PRODUCER_APP, _streams.CONSUMER_APP):
                _streams.put_param(self.layout, _streams.bootstrap_parameter(app), boot)
            sb.set_flow("kafka", EAST, WEST, running=True, deadline_s=KAFKA_DEADLINE_S)
            self.mark("kafka and MirrorMaker 2 started")
        if "s3" in systems:
            _streams.put_param(self.layout, _streams.bucket_parameter(), bucket_name(EAST))
            sb.set_flow("s3", EAST, WEST, running=True)
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
        from sandbox._backups import Backups
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


def _link_problem(layout: Layout, state: State) -> str | None:
    try:
        _link_request(state, {"op": "get"}, timeout_s=1.0)
    except SandboxError as exc:
        return str(exc)
    return None


def _dns_problem(state: State, name: str, expect: str | None) -> str | None:
    import dns.exception
    try:
        got = _dns_query(state, name, timeout_s=0.5)
    except (dns.exception.DNSException, OSError, LookupError) as exc:  # not ready yet; reported at the deadline
        return f"{type(exc).__name__}: {exc}"
    if expect is not None and got[0] != expect:
        return f"{name} answers {got[0]}, expected {expect}"
    return None


def _s3_problem(state: State, region: str) -> str | None:
    """Why the region's bucket is not ready yet (None once it answers with versioning on: moto's
    host enables versioning just after it creates the bucket, and an object put in between would
    have no version id)."""
    url = f"http://{state.addresses[region]}:{state.moto_port}/{bucket_name(region)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=1.0) as resp:
            if resp.status != 200:
                return f"HTTP {resp.status}"
        with urllib.request.urlopen(url + "?versioning", timeout=1.0) as resp:
            if b"<Status>Enabled</Status>" not in resp.read():
                return f"bucket {bucket_name(region)}: versioning not enabled yet"
        return None
    except urllib.error.HTTPError as exc:
        return f"bucket {bucket_name(region)}: HTTP {exc.code}"
    except OSError as exc:
        return str(exc)


def _dns_query(state: State, name: str, timeout_s: float = 1.0) -> tuple[str, int]:
    """Ask the responder directly (no cache): (address, ttl)."""
    import dns.message
    import dns.query
    import dns.rdatatype

    q = dns.message.make_query(name, dns.rdatatype.A)
    resp = dns.query.udp(q, DNS_ADDRESS, port=state.dns_port, timeout=timeout_s)
    for rrset in resp.answer:
        for rr in rrset:
            return rr.address, rrset.ttl
    raise LookupError(f"{name}: no A record (rcode {resp.rcode()})")


def _link_request(state: State, request: dict, timeout_s: float = 5.0) -> dict:
    path = Layout.link_socket(state)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(path))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise SandboxError(f"the link's control socket {path} does not answer ({exc}); is the link running? "
                           "(`python -m sandbox status`)", component="link") from None
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise SandboxError(f"the link refused {request}: {reply.get('error')}", component="link")
    return reply


def build_outputs(state: State, layout: Layout):
    """The outputs contract document for this sandbox, validated."""
    from sandbox import _streams
    from contract import outputs

    systems = state.extra.get("systems", [])
    boots = _streams.cluster_bootstraps(layout) if "kafka" in systems else {}

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
                        "writer_parameter": _streams.bucket_parameter() if "s3" in systems else None},
        }
        if "kafka" in systems:
            regions[region]["streaming"] = {
                "cluster_arn": f"arn:sandbox:kafka:{region}:000000000000:cluster/sandbox-{region}",
                "bootstrap_brokers": boots[region],
                "replicator_arn": None if region == EAST else
                f"arn:sandbox:kafka:{region}:000000000000:replicator/sandbox-{EAST}-to-{region}",
                "bootstrap_parameter": _streams.bootstrap_parameter(_streams.PRODUCER_APP),
                "client_parameters": [_streams.bootstrap_parameter(a)
                                      for a in (_streams.PRODUCER_APP, _streams.CONSUMER_APP)],
                "consumer_groups": list(_streams.GROUPS), "topics": list(_streams.TOPICS),
                "client_refresh_seconds": 1}
        regions[region]["kubernetes"] = {"context": _clusters.context(region), "namespaces": list(_clusters.NAMESPACES),
                                         "configmap": CONFIGMAP,
                                         "restart_deployments": {ns: list(names) for ns, names
                                                                 in _clusters.DEPLOYMENTS.items()}}
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
       systems: tuple[str, ...] | list[str] = ("postgres",), kafka_brokers: int = 1) -> "Sandbox":
    """Start a sandbox in ``directory`` and return it once everything is ready.

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
        _kafka.java_bin()
        _kafka.classpath()
        _kafka.pick_ports(kafka_brokers, lambda: 0)
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
        db_ports = [_pick_port(region_addrs, taken) for _ in names]
    state = State(
        dir=str(layout.root), instance=secrets.token_hex(8), addresses=addresses,
        databases=[DatabaseState(name=n, port=p, link_port=_pick_port(region_addrs, taken))
                   for n, p in zip(names, db_ports)],
        dns_port=_pick_port([DNS_ADDRESS], taken, udp=True), moto_port=_pick_port(region_addrs, taken),
        replication=replication, dns_ttl=dns_ttl, link_latency_ms=link_latency_ms, server_user=identity.name,
        socket_root=str(layout.socket_root_default()), pg_bin=str(pg_bin), rto_seconds=rto_seconds,
        rpo_seconds=rpo_seconds, created=time.time(),
        extra={"systems": [s for s in SYSTEMS if s in systems]})
    if "kafka" in systems:
        state.extra["kafka"] = _kafka.pick_ports(kafka_brokers, lambda: _pick_port(region_addrs, taken))
    socket_root = Path(state.socket_root)
    shutil.rmtree(socket_root, ignore_errors=True)
    socket_root.mkdir(mode=0o755)
    layout.write_state(state)
    write_json_atomic(layout.link_file, {"partitioned": False, "latency_ms": link_latency_ms})
    _write_records(layout, state, {fqdn(n): addresses[EAST] for n in names})
    passwords = _write_pgpass(layout, identity)

    run = _UpRun(layout, state, identity, passwords, base_backup=base_backup)
    try:
        run.run()
        sandbox = Sandbox(layout, state, identity)
        run.wait_base_backups()  # started beside each standby's clone (by default: restores need one)
        if base_backup:
            run.mark("base backups")
            for name in sandbox.databases:  # into DR at once, as RDS's automated-backup replication
                sandbox.replicate_backups(name)  # (which the stacks configure) does from the start
        outputs = build_outputs(state, layout)
        for region in REGIONS:  # as Pulumi creates them: both clusters' applications use the primary
            _clusters.create(layout, region, initial_data(outputs.primary))
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
    return sandbox


# ---------------------------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------------------------


def _stop_all(layout: Layout, state: State | None) -> list[str]:
    """Stop every process with a pid file: PostgreSQL with a fast shutdown, helpers with SIGTERM,
    all at once; anything still there after the grace period has its tree killed."""
    done = _stop_round(layout, _proc.all_pids(layout.run_dir))
    # a pid file written while that round ran (MirrorMaker 2's, by its supervisor, while it was
    # being stopped; a Kafka node of an interrupted `up`) is stopped too, until none is left
    for _ in range(3):
        late = _proc.all_pids(layout.run_dir)
        if not late:
            break
        done += _stop_round(layout, late)
    if state is not None:  # servers killed by a fault (or by `down` after its grace period)
        for db in state.databases:
            for region in REGIONS:
                Node(layout, state, _proc.Identity("", 0, 0, False), db.name, region).release_shared_memory()
        shutil.rmtree(state.socket_root, ignore_errors=True)
    return done


def _stop_round(layout: Layout, records) -> list[str]:
    import signal as _signal

    records = list(records)
    done: list[str] = []
    alive = []
    for rec in records:
        if _proc.is_alive(rec.pid, rec.start_time):
            sig = _signal.SIGINT if rec.component.startswith("postgres-") else _signal.SIGTERM
            try:
                os.kill(rec.pid, sig)
            except ProcessLookupError:
                continue
            alive.append(rec)
    deadline = time.monotonic() + 15.0
    pending = list(alive)
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if _proc.is_alive(r.pid, r.start_time)]
        if pending:
            time.sleep(0.02)
    for rec in alive:
        if rec in pending:
            _proc.kill_tree(rec.pid, rec.start_time, rec.component)
            done.append(f"killed {rec.component} (pid {rec.pid}): it did not stop within 15 s")
        else:
            done.append(f"stopped {rec.component} (pid {rec.pid})")
    for rec in records:
        _proc.pid_path(layout.run_dir, rec.component).unlink(missing_ok=True)
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


# ---------------------------------------------------------------------------------------------
# The handle the runbooks use
# ---------------------------------------------------------------------------------------------


class Sandbox:
    """A running sandbox. Get one with ``Sandbox.open(dir)`` (or from ``up``)."""

    def __init__(self, layout: Layout, state: State, identity: _proc.Identity):
        self.layout = layout
        self.state = state
        self.identity = identity
        self._outputs = None

    @classmethod
    def open(cls, directory: str | Path) -> "Sandbox":
        layout = Layout(directory)
        state = layout.read_state()
        if not any(_proc.is_alive(r.pid, r.start_time) for r in _proc.all_pids(layout.run_dir)):
            raise SandboxError(f"the sandbox in {layout.root} is down (no process of it runs); start it with "
                               f"`python -m sandbox up --dir {layout.root}`", component="sandbox")
        identity = server_identity(create=False, name=state.server_user) if os.geteuid() == 0 else server_identity()
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

    def _names(self, database: str | None) -> list[str]:
        if database is None:
            return self.databases
        self.state.database(database)
        return [database]

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
        names_now = self._dns_names()
        out: dict = {}
        for region in REGIONS:
            dbs = {}
            for name in self.databases:
                node = self.node(region, name)
                rec = node.pid()
                fenced = node.is_fenced()
                role = node.role() if rec else None
                dbs[name] = {
                    "dsn": node.dsn(admin=True),
                    "role": role,
                    "state": "stopped" if rec is None else ("fenced" if fenced else "running"),
                    "fenced": fenced,
                    "pid": rec.pid if rec else None,
                    "address": node.address,
                    "port": node.db.port,
                    "data_role": "replica" if node.data_says_standby() else "primary",
                    "log": str(node.log_path),
                }
                if rec is not None and role is not None:
                    dbs[name]["replication"] = node.replication_info()
            moto = _proc.running(self.layout.run_dir, f"moto-{region}")
            out[region] = {
                "address": self.state.addresses[region],
                "database": dbs[self.databases[0]],
                "databases": dbs,
                "dns": {"server": f"{DNS_ADDRESS}:{self.state.dns_port}", "names": names_now},
                "s3": {"endpoint": f"http://{self.state.addresses[region]}:{self.state.moto_port}",
                       "bucket": bucket_name(region), "state": "running" if moto else "stopped",
                       "pid": moto.pid if moto else None},
            }
            if "kafka" in self.systems:
                nodes = [_proc.running(self.layout.run_dir, c) for c in _kafka.components(self.state, region)]
                out[region]["kafka"] = {"bootstrap": self.kafka_bootstrap(region),
                                        "incarnation": self.kafka_cluster(region).get("incarnation"),
                                        "state": "running" if all(nodes) else "stopped",
                                        "pid": nodes[0].pid if nodes[0] else None,
                                        "nodes": [n.pid if n else None for n in nodes]}
            try:
                active = {ns: copies.get(CONFIGMAP, {}).get("data", {}).get("ACTIVE_REGION")
                          for ns, copies in self.configmaps(region).items()}
                out[region]["cluster"] = {"state": "up", "context": _clusters.context(region), "active_region": active}
            except SandboxError:
                out[region]["cluster"] = {"state": "down" if _clusters.store(self.layout, region).exists() else "none",
                                          "context": _clusters.context(region)}
        out["link"] = self.link()
        dns_rec = _proc.running(self.layout.run_dir, "dns")
        out["sandbox"] = {"dir": str(self.dir), "replication": self.state.replication,
                          "dns": {"state": "running" if dns_rec else "stopped", "pid": dns_rec.pid if dns_rec else None,
                                  "ttl_seconds": self._records_doc().get("ttl_seconds")}}
        for kind, comp in (("kafka", "replicator"), ("s3", "s3-replication")):
            if kind in self.systems:
                rec = _proc.running(self.layout.run_dir, comp)
                st = self.flow(kind) or {}
                out["sandbox"][comp] = {"state": "running" if rec else "stopped", "pid": rec.pid if rec else None,
                                        **{k: st.get(k) for k in ("source", "target", "running", "lag_records",
                                                                  "lag_seconds", "backlog_objects",
                                                                  "backlog_seconds") if k in st}}
        return out

    # ---- DNS ----------------------------------------------------------------------------------

    def _records_doc(self) -> dict:
        return json.loads(self.layout.records_file.read_text())

    def _fqdn(self, name: str) -> str:
        name = name.rstrip(".").lower()
        records = self._records_doc()["records"]
        if name in records:
            return name
        if fqdn(name) in records:
            return fqdn(name)
        raise SandboxError(f"no DNS record {name!r}; the sandbox serves {', '.join(sorted(records))}", component="dns")

    def _dns_names(self) -> dict[str, str]:
        """What the responder answers now for each name (asked over DNS); the records file when it is down."""
        records = self._records_doc()["records"]
        if _proc.running(self.layout.run_dir, "dns") is None:
            return dict(records)
        import dns.exception
        answers = {}
        for name in records:
            try:
                answers[name] = _dns_query(self.state, name)[0]
            except (dns.exception.DNSException, OSError, LookupError) as exc:  # shown in the status
                answers[name] = f"no answer ({type(exc).__name__})"
        return answers

    def set_record(self, name: str, region: str, deadline_s: float = 3.0) -> str:
        """Record UPSERT: point a service name (or its FQDN) at a region; returns once the responder answers it."""
        check_region(region)
        target = self._fqdn(name)
        with file_lock(self.layout.records_file.with_name(".records.lock")):  # parallel steps update other names
            doc = self._records_doc()
            before = doc["records"][target]
            doc["records"][target] = self.state.addresses[region]
            write_json_atomic(self.layout.records_file, doc)
        if _proc.running(self.layout.run_dir, "dns") is None:
            return f"{target} → {region} written; the DNS responder is not running"
        _deadline_loop(deadline_s, "the DNS answer", lambda: _dns_problem(self.state, target, self.state.addresses[region]),
                       "dns", self.layout.log("dns"))
        return (f"{target} now answers {self.state.addresses[region]} ({region}); it answered {before} "
                f"({self.state.region_of(before) or 'unknown'}); clients may keep the old answer {doc['ttl_seconds']} s")

    def record(self, name: str) -> str:
        """The region a service name points at (its address if it is no region's)."""
        address = self._records_doc()["records"][self._fqdn(name)]
        return self.state.region_of(address) or address

    # ---- databases ----------------------------------------------------------------------------

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

    def kill_region(self, region: str, cut_link: bool = False) -> str:
        """Fault: every process of the region (its databases and its S3) killed at once. DNS and the link
        are global, as Route53 and the network between regions are.

        With ``cut_link`` the region's network goes dark with it: the link is partitioned, which drops
        what was still on the wire to the other region, the region is frozen a moment later (so it
        acknowledges nothing more), and then everything is killed. `heal` restores the link."""
        check_region(region)
        comps = [self.node(region, name).component for name in self.databases] + [f"moto-{region}"]
        if "kafka" in self.systems:
            comps += _kafka.components(self.state, region)
        recs = [r for r in (_proc.running(self.layout.run_dir, c) for c in comps) if r is not None]
        # Freeze the whole region first, so nothing in it outlives the rest. The process trees are
        # read beforehand and stopped in one tight loop: walking /proc while the servers run takes
        # long enough for their backends to acknowledge more writes and their WAL senders to ship
        # more WAL, which would make the outage less sudden than a region going dark.
        # With cut_link the link goes first (the relay answers once it drops everything, in flight
        # included), then the freeze follows within about a millisecond.
        trees = [[rec.pid, *sorted(_proc.descendants(rec.pid))] for rec in recs]
        cut = f"{self.partition()}; " if cut_link else ""
        for tree in trees:
            for pid in tree:
                _proc._signal(pid, 19)  # SIGSTOP
        killed = [f"{rec.component} ({len(_proc.kill_tree(rec.pid, None, rec.component))} processes)" for rec in recs]
        _clusters.set_down(self.layout, region, True)  # its Kubernetes API goes with it; its ConfigMaps stay
        for name in self.databases:
            self.node(region, name).release_shared_memory()
        return f"{cut}killed region {region}: " + (", ".join(killed) if killed else "nothing was running") + \
            f"; its cluster ({_clusters.context(region)}) no longer answers"

    def start_region(self, region: str, deadline_s: float = READY_DEADLINE_S) -> str:
        """Bring a region back after ``kill_region``: its S3 (moto), its Kafka cluster, then its
        databases (a fence recorded meanwhile applies before they take clients). What comes back
        is what such a restart gives here: the databases' data (it is on disk), but an **empty**
        Kafka cluster (a new incarnation, on new ports) and an **empty** versioned bucket: both
        lived in the killed processes' memory. The failback re-seeds them (docs/sandbox.md).
        Components already running are left alone."""
        check_region(region)
        env = _serve_env()
        done: list[str] = []
        moto_comp = f"moto-{region}"
        if _proc.running(self.layout.run_dir, moto_comp) is None:
            _proc.spawn(self.layout.run_dir, moto_comp, ["nice", "-n", "10", *_serve_argv("moto", self.layout, region)],
                        self.layout.log(moto_comp), env=env)
            done.append(f"S3 (moto) with an empty versioned bucket {bucket_name(region)}")
        new_kafka = "kafka" in self.systems and not self.kafka_running(region)
        if new_kafka:
            from sandbox import _streams
            for comp in _kafka.components(self.state, region):  # a node left of a partial loss goes too
                rec = _proc.running(self.layout.run_dir, comp)
                if rec is not None:
                    _proc.kill_tree(rec.pid, rec.start_time, comp)
            _kafka.start_cluster(self.layout, self.state, region, env)
            info = _kafka.wait_cluster(self.layout, self.state, region, _streams.TOPICS,
                                       deadline_s=max(deadline_s, KAFKA_DEADLINE_S))
            done.append(f"an empty Kafka cluster (incarnation {info.get('incarnation')}) at {info.get('bootstrap')}")
        _deadline_loop(deadline_s, "S3 (moto)", lambda: _s3_problem(self.state, region), moto_comp,
                       self.layout.log(moto_comp), moto_comp, self.layout.run_dir)
        if new_kafka:  # its bootstrap brokers changed: the outputs say where they are now
            write_json_atomic(self.layout.outputs_file, build_outputs(self.state, self.layout).to_dict())
            self._outputs = None
        if any(not self.node(region, n).is_running() for n in self.databases):
            done.append(self.start_database(region))
        if _clusters.store(self.layout, region).exists() and not _clusters.reachable(self.layout, region):
            done.append(self.start_cluster(region))  # its ConfigMaps are as they were: on disk
        return f"region {region} started: " + ("; ".join(done) if done else "everything was running")

    def rebuild_as_replica(self, region: str, source_region: str, database: str | None = None,
                           deadline_s: float = 60.0) -> str:
        """Make ``region``'s server(s) streaming standbys of ``source_region``'s through the link:
        pg_rewind, or a fresh pg_basebackup when rewind is impossible. Returns once streaming."""
        check_region(region)
        check_region(source_region)
        if region == source_region:
            raise SandboxError(f"rebuild_as_replica: source and target are both {region}")
        return "; ".join(self._rebuild_one(region, source_region, name, deadline_s) for name in self._names(database))

    def _rebuild_one(self, region: str, source_region: str, name: str, deadline_s: float) -> str:
        target, source = self.node(region, name), self.node(source_region, name)
        t0 = time.monotonic()
        if source.role() != "primary":
            raise SandboxError(f"cannot rebuild {name} in {region} from {source_region}: the source is not a running "
                               f"primary (role {source.role()})", component=source.component, log=source.log_path)
        if target.is_running() and target.role() == "replica":
            info = source.replication_info()
            if info.get("standbys", {}).get(region, {}).get("state") == "streaming":
                return f"{name} in {region} already streams from {source_region}"
        target.stop()
        source.ensure_slot_for(region)
        # A freshly promoted server records its new timeline in pg_control only at its next
        # checkpoint; without one, pg_rewind sees "the same timeline" and rewinds nothing.
        source.execute("CHECKPOINT")
        method = "pg_rewind"
        if not (target.data / "PG_VERSION").exists():
            method = "pg_basebackup (no data directory to rewind)"
            target.clone_from_link()
        else:
            try:
                target.rewind_from_link()
                target.start()
            except SandboxError as exc:
                # rewind failed, or the rewound server would not start: a fresh copy always works
                method = f"pg_basebackup (pg_rewind did not give a startable standby: {str(exc)[:160]})"
                log.warning("%s: pg_rewind did not work, taking a fresh base backup: %s", target.component, exc)
                target.stop()
                target.clone_from_link()
        target.start()
        try:
            target.wait_streaming_from(source, min(deadline_s, 15.0) if method == "pg_rewind" else deadline_s)
        except SandboxError as exc:
            if method != "pg_rewind":
                raise
            log.warning("%s: rewound but not streaming, taking a fresh base backup: %s", target.component, exc)
            method = "pg_basebackup (rewound server did not stream)"
            target.stop()
            target.clone_from_link()
            target.start()
            target.wait_streaming_from(source, deadline_s)
        if self.state.replication == "sync":
            source.set_sync(region)
        return f"rebuilt {name} in {region} as a streaming standby of {source_region} with {method} in " \
               f"{time.monotonic() - t0:.1f} s"

    def replicate_backups(self, database: str, source: str = EAST) -> str:
        """Copy ``source``'s automated backups of ``database`` and its archived WAL into the other
        region (the runbooks' PITR-in-DR gate reads DR's window; the backup adapter copies more
        whenever it reads a window while the source runs)."""
        target = next(r for r in REGIONS if r != source)
        ids = [m["id"] for m in self.backups.list(database, source)
               if m.get("kind") == "automated" and m.get("copied_from") is None]
        for backup_id in ids:
            self.backups.copy(database, backup_id, source, target)
        wal = self.backups.replicate_archive(database, source, target)
        return f"{database}: {len(ids)} backup(s) and {wal} WAL file(s) replicated {source} → {target}"

    def base_backup(self, region: str, database: str | None = None) -> str:
        """Take a base backup (tar, gzip) of the region's server(s) into DIR/pg/<db>/<region>/basebackups/;
        with the region's WAL archive it is what a point-in-time restore starts from."""
        return "; ".join(f"base backup of {name} in {region}: "
                         f"{self.backups.backups_dir(name, region) / self.backups.take(self.node(region, name))['id']}"
                         for name in self._names(database))

    # ---- backups and point-in-time restores (sandbox/_backups.py) ------------------------------

    @property
    def backups(self):
        from sandbox._backups import Backups
        return Backups(self.layout, self.state, self.identity)

    def seal_archive(self, region: str, database: str = "payments") -> dict:
        """Make the region's WAL archive complete up to now (a commit, a WAL switch, archived)."""
        return self.backups.seal(self.node(region, database))

    def restore(self, name: str, database: str, source_region: str, to_time: float | None = None,
                backup_id: str | None = None, deadline_s: float = 120.0) -> dict:
        """Point-in-time restore to a NEW server ``name`` in ``source_region`` (see Backups.restore)."""
        check_region(source_region)
        taken = {p for db in self.state.databases for p in (db.port, db.link_port)} | \
            {self.state.dns_port, self.state.moto_port} | {r["port"] for r in self.backups.restores()}
        address = self.state.addresses[source_region]
        return self.backups.restore(self.node(source_region, database), name, source_region, to_time=to_time,
                                    backup_id=backup_id, deadline_s=deadline_s,
                                    pick_port=lambda: _pick_port([address], taken))

    def drop_restore(self, name: str) -> str:
        return self.backups.drop_restore(name)

    @property
    def caches(self):
        """The sandbox's Redis servers and their snapshots (sandbox/_cache.py); started on demand."""
        from sandbox._cache import Caches
        taken = {p for db in self.state.databases for p in (db.port, db.link_port)} | \
            {self.state.dns_port, self.state.moto_port} | {r["port"] for r in self.backups.restores()}
        return Caches(self, lambda address: _pick_port([address], taken | {c["port"] for c in Caches(
            self, None).servers()}))

    def cdc(self, name: str, database: str = "payments"):
        """A CDC consumer (pg_recvlogical, test_decoding) of the slot ``name`` (sandbox/_cdc.py);
        ``down`` stops it with everything else."""
        from sandbox._cdc import CdcConsumer
        return CdcConsumer(self, name, database)

    def current_primary(self, database: str = "payments") -> str | None:
        """The region whose server of ``database`` answers as primary (None if none does)."""
        primaries = [r for r in REGIONS if self.node(r, database).role() == "primary"]
        return primaries[0] if len(primaries) == 1 else (None if not primaries else ",".join(primaries))

    # ---- the link -----------------------------------------------------------------------------

    def link(self) -> dict:
        rec = _proc.running(self.layout.run_dir, "link")
        if rec is None:
            return {"state": "stopped", "pid": None}
        reply = _link_request(self.state, {"op": "get"})
        return {"state": "partitioned" if reply["partitioned"] else "up", "pid": rec.pid,
                "latency_ms": reply["latency_ms"], "connections": reply["connections"]}

    def partition(self) -> str:
        """Fault: the link drops every byte both ways (a blackhole: connections hang, they are not refused)."""
        _link_request(self.state, {"op": "set", "partitioned": True})
        return "link partitioned: replication traffic between the regions is dropped"

    def heal(self) -> str:
        _link_request(self.state, {"op": "set", "partitioned": False})
        return "link healed: connections that lost bytes were reset and reconnect"

    def slow_link(self, ms: int) -> str:
        """Fault: add ``ms`` one-way latency to each direction of the link (0 removes it)."""
        reply = _link_request(self.state, {"op": "set", "latency_ms": int(ms)})
        return f"link latency now {reply['latency_ms']} ms one-way"

    # ---- the regions' clusters: the active-endpoints ConfigMaps (sandbox/_clusters.py) ---------

    def cluster_reachable(self, region: str) -> bool:
        return _clusters.reachable(self.layout, region)

    def configmaps(self, region: str) -> dict[str, dict[str, dict]]:
        """Namespace → name → {labels, annotations, data} in the region's cluster (SandboxError while it is down)."""
        return _clusters.configmaps(self.layout, region)

    def patch_configmap(self, region: str, namespace: str, name: str, data: dict[str, str],
                        annotations: dict[str, str] | None = None) -> str:
        return _clusters.patch(self.layout, region, namespace, name, data, annotations or {})

    def deployments(self, region: str) -> dict[str, dict[str, dict]]:
        """Namespace → name → Deployment object in the region's cluster (SandboxError while it is down)."""
        return _clusters.deployments(self.layout, region)

    def patch_deployment_template(self, region: str, namespace: str, name: str, annotations: dict[str, str]) -> str:
        return _clusters.patch_template(self.layout, region, namespace, name, annotations)

    def start_cluster(self, region: str) -> str:
        """The region's cluster answers again (after kill_region), with the ConfigMaps it had."""
        _clusters.set_down(self.layout, region, False)
        return f"the cluster of {region} ({_clusters.context(region)}) answers again"

    # ---- Kafka, S3 replication and the parameter store ----------------------------------------

    @property
    def systems(self) -> list[str]:
        return list(self.state.extra.get("systems", ["postgres"]))

    def _require(self, system: str) -> None:
        if system not in self.systems:
            raise SandboxError(f"this sandbox runs without {system}; start it with "
                               f"`python -m sandbox up --systems postgres,kafka,s3`", component="sandbox")

    def kafka_bootstrap(self, region: str) -> str:
        from sandbox import _streams
        self._require("kafka")
        check_region(region)
        boots = _streams.cluster_bootstraps(self.layout)
        if region not in boots:
            raise SandboxError(f"no Kafka cluster recorded for {region}", component=f"kafka-{region}")
        return boots[region]

    def kafka_running(self, region: str) -> bool:
        """Every node of the region's cluster runs (one lost node of three is not a lost region)."""
        check_region(region)
        return all(_proc.running(self.layout.run_dir, c) is not None for c in _kafka.components(self.state, region))

    def s3_running(self, region: str) -> bool:
        return _proc.running(self.layout.run_dir, f"moto-{check_region(region)}") is not None

    def kafka_cluster(self, region: str) -> dict:
        """The region's cluster as its host recorded it: bootstrap, incarnation (new at every start:
        the cluster starts empty), started_at."""
        from sandbox import _streams
        self._require("kafka")
        return _streams.cluster_info(self.layout, check_region(region)) or {}

    def kafka_offsets(self, region: str) -> dict[str, tuple[int, int]]:
        """Per partition of the replicated topics: (earliest, end) offsets, asked now."""
        from confluent_kafka import KafkaException

        from sandbox import _streams
        self._require("kafka")
        try:
            return _streams.end_offsets(self.layout, check_region(region))
        except KafkaException as exc:
            raise SandboxError(f"the Kafka cluster of {region} does not answer: {exc}", component=f"kafka-{region}",
                               log=self.layout.log(f"kafka-{region}")) from None

    def kafka_start_position(self, source: str, target: str) -> tuple[dict | str | None, str]:
        """Where the replicator must start copying source → target (``_streams.choose_start``)."""
        from confluent_kafka import KafkaException

        from sandbox import _streams
        self._require("kafka")
        check_region(source)
        check_region(target)
        try:
            return _streams.choose_start(self.layout, source, target)
        except KafkaException as exc:
            raise SandboxError(f"the Kafka cluster of {target} does not answer, so where to start copying into it "
                               f"cannot be decided: {exc}", component=f"kafka-{target}",
                               log=self.layout.log(f"kafka-{target}")) from None
        except ValueError as exc:
            raise SandboxError(str(exc), component="replicator", log=self.layout.log("replicator")) from None

    def bucket_versioning(self, region: str) -> str | None:
        """The data bucket's versioning status (``Enabled``, ``Suspended``, None = never enabled)."""
        from botocore.exceptions import BotoCoreError, ClientError

        from sandbox import _streams
        client = _streams.s3_client(f"http://{self.state.addresses[check_region(region)]}:{self.state.moto_port}")
        try:
            return client.get_bucket_versioning(Bucket=bucket_name(region)).get("Status")
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(f"S3 of {region} does not answer: {exc}", component=f"moto-{region}",
                               log=self.layout.log(f"moto-{region}")) from None

    def flow(self, kind: str) -> dict | None:
        """The replication worker's status: ``kind`` is ``kafka`` (the replicator) or ``s3``."""
        from sandbox import _streams
        self._require(kind)
        return _streams.status(self.layout, kind)

    def set_flow(self, kind: str, source: str, target: str, running: bool, start_offsets: dict | str | None = None,
                 deadline_s: float = 15.0, why: str | None = None) -> str:
        """Start, stop or reverse a replication flow; returns once its worker has taken the change.
        Kafka's ``start_offsets``: per partition, or ``"earliest"`` (every record the source holds);
        None resumes the flow's own positions."""
        from sandbox import _streams
        self._require(kind)
        check_region(source)
        check_region(target)
        comp = "replicator" if kind == "kafka" else "s3-replication"
        if _proc.running(self.layout.run_dir, comp) is None:
            raise SandboxError(f"the {comp} process is not running", component=comp, log=self.layout.log(comp))
        config = {"source": source, "target": target, "running": running}
        if kind == "kafka":
            from sandbox._streams import GROUPS, TOPICS
            config.update(topics=list(TOPICS), groups=list(GROUPS))
            if start_offsets:
                config["start_offsets"] = start_offsets
            config["why"] = why  # echoed in the status: a rerun that finds the flow running says why it started
        epoch = _streams.configure(self.layout, kind, **config)
        _deadline_loop(deadline_s, f"the {comp} to take epoch {epoch}",
                       lambda: None if (_streams.status(self.layout, kind) or {}).get("epoch") == epoch
                       else "not yet", comp, self.layout.log(comp), comp, self.layout.run_dir)
        if kind == "kafka" and running:  # started = MirrorMaker 2's source task runs (a JVM: seconds)
            mm2 = _kafka.MM2_COMPONENT

            def copying() -> str | None:
                st = _streams.status(self.layout, kind) or {}
                return None if st.get("epoch") == epoch and st.get("copying") else \
                    (f"MirrorMaker 2's tasks: {st.get('tasks') or 'none running yet'}; its log: "
                     f"{self.layout.log(mm2)}: {_proc.tail(self.layout.log(mm2), 2)}")
            # the supervisor's liveness and log (MirrorMaker 2 is its child; its log is in the problem)
            _deadline_loop(max(deadline_s, KAFKA_DEADLINE_S), "MirrorMaker 2's source task", copying, comp,
                           self.layout.log(comp), comp, self.layout.run_dir)
        what = "Kafka topics" if kind == "kafka" else "S3 object versions"
        return f"{what} {'replicate' if running else 'no longer replicate'} {source} → {target}"

    def param(self, name: str) -> str | None:
        """A parameter clients read (the sandbox's SSM Parameter Store)."""
        from sandbox import _streams
        return _streams.get_param(self.layout, name)

    def set_param(self, name: str, value: str) -> str:
        from sandbox import _streams
        try:
            version = _streams.put_param(self.layout, name, value)
        except ValueError as exc:
            raise SandboxError(str(exc), component="params") from None
        return f"parameter {name} = {value!r} (version {version})"

    def translate_groups(self, source: str, target: str, groups: list[str] | None = None) -> dict:
        """Give every consumer group on ``target`` the offsets MirrorMaker 2 translated for it (its
        last checkpoint of the flow source → target), and say what that costs
        (``_streams.translate_groups``)."""
        from sandbox import _streams
        self._require("kafka")
        return _streams.translate_groups(self.layout, source, target, groups)

    def kafka_checkpoints(self, source: str, target: str) -> dict[str, dict]:
        """MirrorMaker 2's last checkpoint per group of the flow source → target, read on the
        target (read only): ``{group: {"partitions": {tp: {upstream, downstream}}, "at": t}}``."""
        from sandbox import _streams
        self._require("kafka")
        return _streams.checkpoints(_kafka.bootstrap(self.state, check_region(target)), check_region(source))

    def kafka_record_ids(self, region: str) -> set[str]:
        """The ids of every record in the region's cluster (the drill counts acked records lost)."""
        from sandbox import _streams
        self._require("kafka")
        try:
            return _streams.record_ids(self.layout, check_region(region))
        except TimeoutError as exc:
            raise SandboxError(str(exc), component=f"kafka-{region}", log=self.layout.log(f"kafka-{region}")) from None

    def object_keys(self, region: str) -> set[str]:
        """The current keys of the region's data bucket."""
        from sandbox import _streams
        return _streams.object_keys(self.layout, self.state, check_region(region))
