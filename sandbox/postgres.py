"""One PostgreSQL server of the sandbox (a database in a region): config, start, stop, kill,
clone, rewind, promote, fence; and rebuilding one as the standby of another.
(Over 500 lines: one class, a server's whole life, that reads best in one place.)

The server runs as the unprivileged identity of ``proc.Identity`` (PostgreSQL refuses root). Its
configuration is PostgreSQL's own ``postgresql.conf`` plus three files the sandbox owns and
rewrites before every start, because ``pg_basebackup`` and ``pg_rewind`` copy the source's files
over the target's:

- ``sandbox.conf``: this node's address, port, socket directory, ``cluster_name`` (= region),
  WAL archive, and the standby settings (``primary_conninfo`` through the link);
- ``fence.conf``: ``default_transaction_read_only = on`` while the node is fenced, else empty;
- ``sync.conf``: ``synchronous_standby_names`` on a primary in synchronous mode, set only once
  its standby streams (a standby cloned with it would hang every commit after promotion).

``pg_hba.conf`` is written the same way: scram-sha-256 for every role over TCP, or, while
fenced, replication only (plus the admin role over the local socket, for the runbooks).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import ADMIN_USER, APP_USER, DB_NAME, REPLICATION_USER, Layout, State, slot_name

log = logging.getLogger(__name__)

PG_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}


def _conf_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def archive_command(archive: str) -> str:
    """The WAL archive command: copy to a hidden temporary name, then rename, so a segment appears in
    the archive only whole. A plain ``cp`` shows a growing file under the final name; the seal (which
    waits for the name) and the archive's replication to the other region then copied a truncated
    segment, and a restore from that region failed ("archive file ... has wrong size"). A segment
    already archived is never overwritten (PostgreSQL's documentation asks that of archive commands)."""
    return (f'test ! -f "{archive}/%f" && cp %p "{archive}/.%f.partial" && '
            f'mv "{archive}/.%f.partial" "{archive}/%f"')


def find_pg_bin() -> Path:
    """The newest Debian PostgreSQL server bin directory."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not candidates:
        raise SandboxError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run ./scripts/setup.sh "
                           "(it installs Debian's postgresql package)", component="postgres")
    return candidates[-1].parent


class Node:
    def __init__(self, layout: Layout, state: State, identity: proc.Identity, database: str, region: str):
        self.layout = layout
        self.state = state
        self.identity = identity
        self.database = database
        self.region = region
        self.db = state.database(database)
        self.address = state.addresses[region]
        self.component = f"postgres-{database}-{region}"
        self.data = layout.data_dir(database, region)
        self.archive = layout.archive_dir(database, region)
        self.socket_dir = Layout.socket_dir(state, region)
        self.log_path = layout.log(self.component)
        self.bin = Path(state.pg_bin)

    def __repr__(self) -> str:
        return f"<Node {self.database}@{self.region}>"

    # ---- connection strings -----------------------------------------------------------------

    def dsn(self, admin: bool = True, local: bool = False, dbname: str = DB_NAME, connect_timeout: int = 3) -> str:
        host = str(self.socket_dir) if local else self.address
        user = ADMIN_USER if admin else APP_USER
        return (f"host={host} port={self.db.port} dbname={dbname} user={user} "
                f"passfile={self.layout.pgpass} connect_timeout={connect_timeout}")

    def link_dsn(self, user: str, dbname: str = DB_NAME) -> str:
        """Reach the *other* region's server through the link end in this region."""
        return (f"host={self.address} port={self.db.link_port} user={user} dbname={dbname} "
                f"passfile={self.layout.pgpass} connect_timeout=5")

    def connect(self, dbname: str = DB_NAME, timeout: int = 3):
        import psycopg
        return psycopg.connect(self.dsn(admin=True, local=True, dbname=dbname, connect_timeout=timeout),
                               autocommit=True)

    def execute(self, sql: str, params: tuple = (), dbname: str = DB_NAME) -> None:
        with self.connect(dbname=dbname) as conn:
            conn.execute(sql, params)

    def query(self, sql: str, params: tuple = (), dbname: str = DB_NAME):
        with self.connect(dbname=dbname) as conn:
            return conn.execute(sql, params).fetchall()

    # ---- process ----------------------------------------------------------------------------

    def pid(self) -> proc.PidRecord | None:
        return proc.running(self.layout.run_dir, self.component)

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_fenced(self) -> bool:
        return self.layout.fence_marker(self.database, self.region).exists()

    def data_says_standby(self) -> bool:
        return (self.data / "standby.signal").exists()

    def _chown(self, path: Path) -> None:
        if self.identity.switch:
            os.chown(path, self.identity.uid, self.identity.gid)

    def _write(self, path: Path, text: str, mode: int = 0o600) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        self._chown(tmp)
        tmp.replace(path)

    def ensure_dirs(self) -> None:
        for d in (self.layout.node_dir(self.database, self.region), self.archive, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            self._chown(d)
        self.socket_dir.chmod(0o700)

    def write_config(self) -> None:
        """(Re)write the node's own files from the sandbox state and the fence marker."""
        self.ensure_dirs()
        archive = str(self.archive)
        lines = [
            "# written by the sandbox before every start; edits are overwritten",
            f"listen_addresses = {_conf_str(self.address)}",
            f"port = {self.db.port}",
            f"unix_socket_directories = {_conf_str(str(self.socket_dir))}",
            f"cluster_name = {_conf_str(self.region)}",
            "max_connections = 40",
            "shared_buffers = 16MB",
            # logical: CDC consumers decode the primary's WAL through logical slots (docs/backups.md,
            # "Logical replication slots"); every node, since any of them may be promoted
            "wal_level = logical",
            "wal_log_hints = on",  # pg_rewind needs it
            "max_wal_senders = 6",
            "max_replication_slots = 6",
            "wal_keep_size = 128MB",
            "max_wal_size = 256MB",
            "archive_mode = on",
            "archive_command = " + _conf_str(archive_command(archive)),
            "hot_standby = on",
            "wal_receiver_status_interval = 1s",
            "wal_receiver_timeout = 10s",
            "wal_sender_timeout = 10s",
            "wal_retrieve_retry_interval = 200ms",
            "recovery_target_timeline = 'latest'",
            "primary_conninfo = " + _conf_str(
                f"host={self.address} port={self.db.link_port} user={REPLICATION_USER} "
                f"passfile={self.layout.pgpass} application_name={self.region} connect_timeout=2 "
                "keepalives_idle=5 keepalives_interval=1 keepalives_count=3"),
            f"primary_slot_name = {_conf_str(slot_name(self.region))}",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "log_connections = off",
            "logging_collector = off",
            "fsync = on",
            "synchronous_commit = on",
            "",
        ]
        self._write(self.data / "sandbox.conf", "\n".join(lines))
        fenced = self.is_fenced()
        self._write(self.data / "fence.conf", "default_transaction_read_only = on\n" if fenced else "")
        if not (self.data / "sync.conf").exists():
            self._write(self.data / "sync.conf", "")
        self._write(self.data / "pg_hba.conf", self._hba(fenced))
        conf = self.data / "postgresql.conf"
        text = conf.read_text()
        if "include_if_exists = 'sandbox.conf'" not in text:
            text += ("\n# the sandbox's own settings (sandbox/postgres.py)\ninclude_if_exists = 'sandbox.conf'\n"
                     "include_if_exists = 'sync.conf'\ninclude_if_exists = 'fence.conf'\n")
            self._write(conf, text)

    @staticmethod
    def _hba(fenced: bool) -> str:
        if fenced:
            return ("# FENCED by the sandbox: no client connections; replication and the local admin stay\n"
                    f"local all {ADMIN_USER} scram-sha-256\n"
                    f"host replication {REPLICATION_USER} 127.0.0.0/8 scram-sha-256\n"
                    "local all all reject\n"
                    "host all all 0.0.0.0/0 reject\n")
        return ("# written by the sandbox\n"
                "local all all scram-sha-256\n"
                f"host replication {REPLICATION_USER} 127.0.0.0/8 scram-sha-256\n"
                "host all all 127.0.0.0/8 scram-sha-256\n")

    def set_sync(self, standby_region: str | None, deadline_s: float = 10.0) -> None:
        """Make ``standby_region`` this primary's synchronous standby (None: asynchronous), and
        return only once the primary reports it so: until then commits are acknowledged without it."""
        # the name is quoted: unquoted, a dash ("local-west") is a syntax error and the reload ignores the file
        text = f"synchronous_standby_names = {_conf_str(chr(34) + standby_region + chr(34))}\n" if standby_region else ""
        self._write(self.data / "sync.conf", text)
        if not self.is_running():
            return
        self.query("SELECT pg_reload_conf()")
        if standby_region is None:
            return
        deadline = time.monotonic() + deadline_s
        seen = None
        while time.monotonic() < deadline:
            rows = self.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                              (standby_region,))
            seen = rows[0][0] if rows else "not connected"
            if seen == "sync":
                return
            time.sleep(0.02)
        raise SandboxError(f"{standby_region} is not a synchronous standby {deadline_s:.0f} s after the reload "
                           f"(sync_state {seen})", component=self.component, log=self.log_path)

    def release_shared_memory(self) -> None:
        """Remove the System V segment of a dead postmaster (named in its postmaster.pid) when nothing
        is attached: a killed server leaves it behind, and a directory removed later would leak it."""
        try:
            fields = (self.data / "postmaster.pid").read_text().splitlines()[6].split()
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            shmid = int(fields[1])
        except (FileNotFoundError, IndexError, ValueError):
            return
        if proc.is_alive(pid):
            return
        try:
            rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        except FileNotFoundError:
            return
        for row in rows:
            cols = row.split()
            if len(cols) > 6 and cols[1] == str(shmid) and cols[6] == "0":  # shmid, nattch
                subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, timeout=10, check=False)

    def clear_stale_locks(self) -> None:
        """Remove the lock files of a postmaster that is dead but not yet reaped.

        A killed server whose parent is gone stays a zombie until init reaps it (measured here:
        1.3-1.7 s); PostgreSQL's own check (kill(pid, 0)) takes a zombie for a live postmaster
        and refuses to start. A zombie runs nothing, so its locks are safe to remove."""
        lockfile = self.data / "postmaster.pid"
        try:
            pid = int(lockfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        if proc.is_alive(pid):
            return
        lockfile.unlink(missing_ok=True)
        (self.socket_dir / f".s.PGSQL.{self.db.port}.lock").unlink(missing_ok=True)

    def start(self, deadline_s: float = 30.0) -> str:
        if self.is_running():
            return f"{self.component} already running"
        if not (self.data / "PG_VERSION").exists():
            raise SandboxError(f"no data directory at {self.data}; rebuild it with rebuild_as_replica",
                               component=self.component)
        self.write_config()
        self.clear_stale_locks()
        rec = proc.spawn(self.layout.run_dir, self.component, [str(self.bin / "postgres"), "-D", str(self.data)],
                          self.log_path, self.identity, env=PG_ENV)
        self.wait_ready(rec, deadline_s)
        return f"{self.component} started (pid {rec.pid})"

    def wait_ready(self, rec: proc.PidRecord, deadline_s: float) -> None:
        lockfile = self.data / "postmaster.pid"
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if not proc.is_alive(rec.pid, rec.start_time):
                raise SandboxError(f"the server exited while starting: {proc.tail(self.log_path)}",
                                   component=self.component, log=self.log_path)
            try:
                lines = lockfile.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(rec.pid) and lines[7].strip() in ("ready", "standby"):
                return
            time.sleep(0.02)
        raise SandboxError(f"not accepting connections after {deadline_s:.0f} s", component=self.component,
                           log=self.log_path)

    def stop(self, grace_s: float = 15.0) -> str:
        """Fast shutdown (SIGINT: sessions are disconnected, a shutdown checkpoint is written)."""
        rec = self.pid()
        if rec is None:
            return f"{self.component} was not running"
        how = proc.terminate(rec.pid, rec.start_time, self.component, sig=signal.SIGINT, grace_s=grace_s)
        return f"{self.component} {how}"

    def kill(self) -> str:
        rec = self.pid()
        if rec is None:
            return f"{self.component} was not running"
        pids = proc.kill_tree(rec.pid, rec.start_time, self.component)
        self.release_shared_memory()
        return f"killed {self.component}: {len(pids)} processes (postmaster {rec.pid} and its backends)"

    # ---- state asked from the server ------------------------------------------------------------

    def role(self) -> str | None:
        """`primary` or `replica` from pg_is_in_recovery(), or None when the server does not answer."""
        if not self.is_running():
            return None
        import psycopg
        try:
            (in_recovery,), = self.query("SELECT pg_is_in_recovery()")
        except psycopg.OperationalError:
            return None
        return "replica" if in_recovery else "primary"

    def replication_info(self) -> dict:
        import psycopg
        try:
            with self.connect() as conn:
                (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if in_recovery:
                    row = conn.execute(
                        "SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver").fetchone()
                    lsn = conn.execute("SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                                       "extract(epoch FROM pg_last_xact_replay_timestamp())::float8").fetchone()
                    return {"receiver": row[0] if row else "stopped", "receive_lsn": lsn[0], "replay_lsn": lsn[1],
                            "last_replay_ts": lsn[2]}
                rows = conn.execute("SELECT application_name, state, sync_state, replay_lag::text "
                                    "FROM pg_stat_replication").fetchall()
                lsn = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                return {"current_lsn": lsn,
                        "standbys": {r[0]: {"state": r[1], "sync_state": r[2], "replay_lag": r[3]} for r in rows}}
        except psycopg.OperationalError as exc:
            return {"error": str(exc).strip().splitlines()[0]}

    def wait_streaming_from(self, primary: "Node", deadline_s: float = 30.0) -> None:
        """Wait until ``primary`` reports this node's walreceiver as streaming."""
        import psycopg
        deadline = time.monotonic() + deadline_s
        last = "no connection yet"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise SandboxError(f"the standby exited: {proc.tail(self.log_path)}", component=self.component,
                                   log=self.log_path)
            try:
                rows = primary.query("SELECT state FROM pg_stat_replication WHERE application_name = %s",
                                     (self.region,))
                last = rows[0][0] if rows else "not connected"
                if last == "streaming":
                    return
            except psycopg.OperationalError as exc:
                last = str(exc).strip().splitlines()[0]
            time.sleep(0.05)
        raise SandboxError(f"not streaming from {primary.region} after {deadline_s:.0f} s (last seen: {last}); "
                           "is the link partitioned?", component=self.component, log=self.log_path)

    # ---- creation ---------------------------------------------------------------------------------

    def initdb(self, pwfile: Path) -> None:
        self.ensure_dirs()
        proc.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", ADMIN_USER, f"--pwfile={pwfile}",
                   "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C",
                   "--no-sync"], f"{self.component}: initdb", self.log_path, self.identity, env=PG_ENV)

    def copy_from_template(self, template: Path) -> None:
        self.ensure_dirs()
        proc.run(["cp", "-a", str(template), str(self.data)], f"{self.component}: copy of the initdb template",
                  self.log_path, self.identity, env=PG_ENV)

    def bootstrap_primary(self, passwords: dict[str, str]) -> None:
        """Create the app and replication roles, the database and the drill table."""
        from psycopg import sql
        with self.connect(dbname="postgres") as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_USER), sql.Literal(passwords[APP_USER])))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION PASSWORD {}").format(
                sql.Identifier(REPLICATION_USER), sql.Literal(passwords[REPLICATION_USER])))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DB_NAME),
                                                                      sql.Identifier(ADMIN_USER)))
        with self.connect() as conn:
            conn.execute("CREATE TABLE drill_writes (id text PRIMARY KEY, client_ts timestamptz NOT NULL, "
                         "region text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(DB_NAME),
                                                                             sql.Identifier(APP_USER)))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON drill_writes TO {}").format(sql.Identifier(APP_USER)))

    def ensure_slot_for(self, standby_region: str) -> None:
        self.query("SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
                   "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                   (slot_name(standby_region), slot_name(standby_region)))

    def clone_from_link(self, timeout_s: float = 120.0) -> None:
        """Fresh copy of the other region's server through the link (pg_basebackup)."""
        self.ensure_dirs()
        if self.data.exists():
            shutil.rmtree(self.data)
        proc.run([str(self.bin / "pg_basebackup"), "-D", str(self.data), "-d",
                   self.link_dsn(REPLICATION_USER, dbname="replication"), "-X", "stream", "-c", "fast",
                   "--no-sync", "-S", slot_name(self.region)],
                  f"{self.component}: pg_basebackup from {self.state.other(self.region)} through the link",
                  self.log_path, self.identity, timeout_s=timeout_s, env=PG_ENV)
        self.make_standby()

    def rewind_from_link(self, timeout_s: float = 120.0) -> None:
        self.clear_stale_locks()
        proc.run([str(self.bin / "pg_rewind"), f"--target-pgdata={self.data}",
                   f"--source-server={self.link_dsn(ADMIN_USER)}", "--no-sync"],
                  f"{self.component}: pg_rewind from {self.state.other(self.region)} through the link",
                  self.log_path, self.identity, timeout_s=timeout_s, env=PG_ENV)
        self.make_standby()

    def make_standby(self) -> None:
        """After a clone or a rewind: drop the source's node files and slots, mark as standby."""
        slots = self.data / "pg_replslot"
        if slots.is_dir():
            for child in slots.iterdir():
                shutil.rmtree(child, ignore_errors=True)
        for name in ("sync.conf", "postmaster.pid"):
            (self.data / name).unlink(missing_ok=True)
        self._write(self.data / "standby.signal", "")
        self.write_config()

    # ---- promotion and fencing ----------------------------------------------------------------------

    def promote(self, deadline_s: float = 30.0, conn=None) -> str:
        """Promote this standby and return once it takes a write.

        ``conn``: an open admin session to reuse (the runbook's own); ten promotions at once on two
        cores spend more CPU on authenticating and forking new sessions than on promoting."""
        import psycopg
        if self.is_fenced():
            raise SandboxError(f"{self.component} is fenced; a fenced server is never promoted. Unfence it first "
                               "if this is really the server to promote", component=self.component)
        if not self.is_running():
            raise SandboxError(f"{self.component} is not running; start it first (start_database)",
                               component=self.component)
        t0 = time.monotonic()
        deadline = t0 + deadline_s
        last = ""
        with self._session(conn) as c:
            (in_recovery,) = c.execute("SELECT pg_is_in_recovery()").fetchone()
            if not in_recovery:
                return f"{self.database} in {self.region} is already primary"
            # wait => false and our own polling: pg_promote's own wait checks ten times a second,
            # which would add up to 0.1 s to every failover's RTO
            c.execute("SELECT pg_promote(false)")
            while time.monotonic() < deadline:
                try:
                    c.execute("SELECT pg_current_xact_id()")  # fails while read-only / in recovery
                    return f"promoted {self.database} in {self.region} in {time.monotonic() - t0:.2f} s"
                except psycopg.errors.ReadOnlySqlTransaction as exc:
                    last = str(exc).strip().splitlines()[0]
                time.sleep(0.005)
        raise SandboxError(f"not writable {deadline_s:.0f} s after pg_promote (last: {last})",
                           component=self.component, log=self.log_path)

    def _session(self, conn=None):
        """The given open admin session (left open), or a new one closed on exit."""
        import contextlib
        return contextlib.nullcontext(conn) if conn is not None else self.connect()

    def fence(self, conn=None) -> str:
        """``conn``: an open admin session to do it through (it is not terminated with the clients')."""
        marker = self.layout.fence_marker(self.database, self.region)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"fenced at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        if not self.data.is_dir():
            return f"fenced {self.database} in {self.region}: it has no data directory; the fence applies when it exists"
        self.write_config()
        if not self.is_running():
            return (f"fenced {self.database} in {self.region} while it is stopped: the fence is applied before it "
                    "accepts any client at its next start")
        terminated = self._apply_live(read_only=True, conn=conn)
        return (f"fenced {self.database} in {self.region} live: pg_hba rejects every client connection, "
                f"default_transaction_read_only is on, {terminated} client sessions terminated")

    def unfence(self, conn=None) -> str:
        marker = self.layout.fence_marker(self.database, self.region)
        was = marker.exists()
        marker.unlink(missing_ok=True)
        if not self.data.is_dir():
            return f"unfenced {self.database} in {self.region} (no data directory)"
        self.write_config()
        if self.is_running():
            self._apply_live(read_only=False, conn=conn)
        return f"unfenced {self.database} in {self.region}" + ("" if was else " (it was not fenced)")

    def _apply_live(self, read_only: bool, deadline_s: float = 5.0, conn=None) -> int:
        import psycopg
        want = "on" if read_only else "off"
        deadline = time.monotonic() + deadline_s
        seen = None
        terminated: set[int] = set()
        with self._session(conn) as conn:  # one admin session for the reload, the wait and the terminations
            conn.execute("SELECT pg_reload_conf()")
            while time.monotonic() < deadline:
                (seen,) = conn.execute("SELECT current_setting('default_transaction_read_only')").fetchone()
                if seen == want:
                    break
                time.sleep(0.02)
            else:
                raise SandboxError(f"configuration reload not applied after {deadline_s:.0f} s "
                                   f"(default_transaction_read_only is {seen})", component=self.component,
                                   log=self.log_path)
            if not read_only:
                return 0
            # a second pass catches a session that authenticated during the reload; a backend signalled
            # in the first pass can still be listed in the second (it has not exited yet), so count
            # distinct pids, not signals
            for _ in range(2):
                # in the target list, not the WHERE: the planner may order a WHERE's conditions so
                # that pg_terminate_backend runs before the pid test, on our own session too
                terminated.update(pid for pid, ok in conn.execute(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") if ok)
        try:
            psycopg.connect(self.dsn(admin=False, connect_timeout=2)).close()
        except psycopg.OperationalError:
            return len(terminated)
        raise SandboxError("fence applied but the app user can still connect over TCP", component=self.component,
                           log=self.log_path)


def rebuild_as_replica(target: Node, source: Node, deadline_s: float = 60.0) -> str:
    """Make ``target`` a streaming standby of ``source`` (a running primary) through the link:
    pg_rewind, or a fresh pg_basebackup when rewind is impossible. Returns once streaming."""
    name, region, source_region = target.database, target.region, source.region
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
    if target.state.replication == "sync":
        source.set_sync(region)
    return f"rebuilt {name} in {region} as a streaming standby of {source_region} with {method} in " \
           f"{time.monotonic() - t0:.1f} s"
