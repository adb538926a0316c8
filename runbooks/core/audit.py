"""The audit log: one append-only JSON line per action (who, what, target, result), and the
durable copy of every entry in the adapter's audit sink.

Where the trail lives (planning document 001, "Compliance and Audit": audit logs of backup,
restore and configuration actions, 7 years, "CloudWatch Logs + S3"):

- locally, ``STATE_DIR/audit.jsonl`` (what the operator's machine saw, always written first);
- in AWS, the DR region's object-locked backups bucket (``S3AuditSink`` in
  runbooks/adapters/aws/s3_audit.py): one object per entry, written only if absent, under a 7-year
  COMPLIANCE retention of its own;
- on the sandbox, ``JsonlAuditSink``: a hash-chained, fsynced JSON-lines file in the sandbox's
  directory that drills read back (``read_sink``) and check (``verify_chain``).

A sink that cannot be written never stops a DR action (a failover must not wait on its own
paperwork): the entry stays in the local log, is queued in ``audit-undelivered.jsonl`` next to
it, and is delivered first by the next entry that reaches the sink, in this run or a later one.
The report says how many entries are still waiting.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Protocol

from runbooks.core.clock import Clock, iso
from runbooks.core.errors import RunbookError
from runbooks.core.redact import scrub

log = logging.getLogger(__name__)

UNDELIVERED = "audit-undelivered.jsonl"
SINK_NAME = "audit-sink.jsonl"


def operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditSink(Protocol):
    def write(self, entry: dict) -> str:
        """Store one audit entry where it cannot be changed (AWS: the object-locked backups bucket);
        returns where (raises RunbookError)."""


class NoAuditSink:
    def write(self, entry: dict) -> str:
        return "local audit log only"


class AuditLog:
    def __init__(self, path: Path, clock: Clock, runbook: str, run_id: str, who: str | None = None):
        self.path = Path(path)
        self.clock = clock
        self.runbook = runbook
        self.run_id = run_id
        self.who = who or operator()

    def record(self, action: str, target: str, result: str, detail: str = "") -> dict:
        entry = {"at": iso(self.clock.time()), "who": self.who, "runbook": self.runbook, "run_id": self.run_id,
                 "action": action, "target": target, "result": result, "detail": scrub(detail)}
        _append(self.path, json.dumps(entry, sort_keys=True))
        return entry


class DurableAudit(AuditLog):
    """The local log, and every entry also to ``sink`` (None: local only). Undeliverable entries
    are queued beside the local log and delivered, oldest first, before the next one."""

    def __init__(self, *args, sink: AuditSink | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.sink = sink
        self.queue = self.path.with_name(UNDELIVERED)
        self.failures: list[str] = []
        self.delivered: list[str] = []
        self._lock = threading.Lock()

    def record(self, action: str, target: str, result: str, detail: str = "") -> dict:
        # parallel lanes audit at once: one entry at a time, so the sink holds the local log's order
        with self._lock:
            entry = super().record(action, target, result, detail)
            if self.sink is not None:
                self._deliver(entry)
        return entry

    def pending(self) -> list[dict]:
        if not self.queue.exists():
            return []
        return [json.loads(line) for line in self.queue.read_text().splitlines() if line.strip()]

    def _deliver(self, entry: dict) -> None:
        waiting = self.pending() + [entry]
        for i, e in enumerate(waiting):
            try:
                self.delivered.append(self.sink.write(e))
            except RunbookError as exc:
                why = f"audit sink: {exc}"
                log.warning("%s; %d entr%s kept in %s", why, len(waiting) - i, "y" if len(waiting) - i == 1 else "ies",
                            self.queue)
                if not self.failures or self.failures[-1] != why:
                    self.failures.append(why)
                self._rewrite(waiting[i:])
                return
        if self.queue.exists():
            self.queue.unlink()

    def _rewrite(self, entries: list[dict]) -> None:
        tmp = self.queue.with_name(f".{self.queue.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.queue)

    def notes(self) -> list[str]:
        """For the report: what did not reach the sink (nothing when all did)."""
        if self.sink is None:
            return []
        left = len(self.pending())
        if not left:
            return []
        return [f"audit: {left} entr{'y' if left == 1 else 'ies'} not yet in the durable audit sink ("
                f"{'; '.join(self.failures) or 'an earlier run could not deliver them'}); they are in {self.path} and "
                f"queued in {self.queue}: the next runbook run delivers them first"]


class JsonlAuditSink:
    """A durable local sink (the sandbox's): JSON lines appended and fsynced, each carrying the
    SHA-256 of the line before it (``prev``), so an edited or removed line breaks the chain."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _last_hash(self) -> str:
        if not self.path.exists():
            return ""
        lines = [line for line in self.path.read_bytes().splitlines() if line.strip()]
        return hashlib.sha256(lines[-1]).hexdigest() if lines else ""

    def write(self, entry: dict) -> str:
        line = json.dumps({**scrub(entry), "prev": self._last_hash()}, sort_keys=True)
        try:
            _append(self.path, line)
        except OSError as exc:
            raise RunbookError(f"cannot append to the audit sink {self.path}: {exc.strerror}") from None
        return str(self.path)


def read_sink(path: Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def verify_chain(path: Path) -> str | None:
    """None when every line of a JsonlAuditSink names the hash of the line before it; else where not."""
    prev = ""
    for n, raw in enumerate((l for l in Path(path).read_bytes().splitlines() if l.strip()), start=1):
        if json.loads(raw).get("prev") != prev:
            return f"{path}: line {n} does not follow line {n - 1} (edited, removed or reordered)"
        prev = hashlib.sha256(raw).hexdigest()
    return None


def sandbox_audit(sandbox_dir: Path, clock: Clock, runbook: str, run_id: str) -> DurableAudit:
    """The audit log of what is done to a sandbox outside the runbooks (its faults, a drill's
    steps): the same local log and durable sink the runbooks use there."""
    d = Path(sandbox_dir)
    return DurableAudit(d / "runbooks" / "audit.jsonl", clock, runbook, run_id, sink=JsonlAuditSink(d / SINK_NAME))
