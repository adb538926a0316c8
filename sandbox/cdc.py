"""A real CDC consumer for the sandbox: PostgreSQL's ``pg_recvlogical`` streaming a logical slot
(``test_decoding``) into a file, as a change-data-capture pipeline would.

It connects to one region's server as the replication role, through TCP like any client (so a
fenced server refuses it: its pg_hba lets only physical replication in), and confirms to the server
what it has written and fsynced (``-F 1``: every second; ``-s 1``: status every second). With
``-n`` it exits when the connection is lost; the drill then starts it again against the new
primary, with the same slot name — what a CDC connector reconfigured to the DNS name does.
Each start appends to the same file; ``changes`` reads back every decoded INSERT of a table.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import DB_NAME, REPLICATION_USER
from sandbox.postgres import PG_ENV

_INSERT = re.compile(r"^table (\S+): INSERT: id\[text\]:'((?:[^']|'')*)'")


def component(name: str) -> str:
    return f"cdc-{name}"


class CdcConsumer:
    def __init__(self, sb, name: str, database: str = "payments"):
        if not re.match(r"^[a-z0-9_]{1,40}$", name):
            raise SandboxError(f"CDC consumer name {name!r}: use lower-case letters, digits and _ (it is also the "
                               "slot name)", component="cdc")
        self.sb = sb
        self.name = name
        self.database = database
        self.home = sb.dir / "cdc" / name
        self.output = self.home / "changes.txt"

    @property
    def slot(self) -> str:
        return self.name

    def start(self, region: str) -> str:
        """Stream the slot from ``region``'s server (the slot must exist there)."""
        self.stop()
        node = self.sb.node(region, self.database)
        self.home.mkdir(parents=True, exist_ok=True)
        for path in (self.home, self.output):
            if not path.exists():
                path.touch()
            if self.sb.identity.switch:
                import os
                os.chown(path, self.sb.identity.uid, self.sb.identity.gid)
        dsn = (f"host={node.address} port={node.db.port} dbname={DB_NAME} user={REPLICATION_USER} "
               f"passfile={self.sb.layout.pgpass} connect_timeout=3")
        argv = [str(Path(self.sb.state.pg_bin) / "pg_recvlogical"), "-d", dsn, "--slot", self.slot, "--start",
                "-f", str(self.output), "-F", "1", "-s", "1", "-n", "-o", "include-xids=0",
                "-o", "skip-empty-xacts=1"]
        rec = proc.spawn(self.sb.layout.run_dir, component(self.name), argv,
                          self.sb.layout.log(component(self.name)), self.sb.identity, env=PG_ENV)
        return f"CDC consumer {self.name} streams slot {self.slot} from {region} (pid {rec.pid})"

    def running(self) -> bool:
        return proc.running(self.sb.layout.run_dir, component(self.name)) is not None

    def stop(self) -> str:
        """SIGINT: pg_recvlogical flushes, confirms what it wrote, and exits."""
        rec = proc.running(self.sb.layout.run_dir, component(self.name))
        if rec is None:
            return f"CDC consumer {self.name} is not running"
        how = proc.terminate(rec.pid, rec.start_time, component(self.name), sig=signal.SIGINT, grace_s=10.0)
        proc.pid_path(self.sb.layout.run_dir, component(self.name)).unlink(missing_ok=True)
        return f"CDC consumer {self.name} {how}"

    def changes(self, table: str = "public.drill_writes") -> list[str]:
        """The ids of every decoded INSERT into ``table``, in the order received (repeats kept)."""
        if not self.output.exists():
            return []
        out = []
        for line in self.output.read_text(errors="replace").splitlines():
            m = _INSERT.match(line)
            if m and m.group(1) == table:
                out.append(m.group(2).replace("''", "'"))
        return out
