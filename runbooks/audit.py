"""The audit log: one append-only JSON line per action (who, what, target, result)."""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

from runbooks.clock import Clock, iso
from runbooks.redact import scrub


def operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry
