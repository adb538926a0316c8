"""Telling people: every runbook notifies when it starts, when its gates refuse, on each failed
step, and when it ends (with the measured RTO and RPO), through the ``Notifier`` port (AWS: the
alarm topics of the outputs, runbooks/adapters/aws/sns.py ``SnsNotifier``; the sandbox: a JSON-lines
sink in its directory that drills read back).

A notification that cannot be delivered never stops a runbook: the failure is kept (the report's
``notifications``, a note, the audit log) and the run goes on. Nothing secret is sent: subjects
and messages are scrubbed, and they carry names, regions, run ids and measurements only."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from runbooks.core.clock import Clock, iso
from runbooks.core.redact import scrub

log = logging.getLogger(__name__)

SINK_NAME = "notifications.jsonl"


class JsonlNotifier:
    """The sandbox's topic: one JSON line per notification, appended to ``path``."""

    def __init__(self, path: Path, clock: Clock | None = None):
        self.path = Path(path)
        self.clock = clock

    def notify(self, subject: str, message: str) -> None:
        import time
        now = self.clock.time() if self.clock is not None else time.time()
        entry = {"at": iso(now), "t": now, "subject": scrub(subject), "message": scrub(message)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)


def read_sink(path: Path) -> list[dict]:
    """What a JsonlNotifier wrote (for drills and tests)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class Notifications:
    """One run's notifications: sends through the port, never raises, remembers every outcome."""

    def __init__(self, notifier, runbook: str, run_id: str | None = None,
                 audit: Callable[[str, str, str, str], Any] | None = None):
        self.notifier = notifier
        self.runbook = runbook
        self.run_id = run_id
        self.audit = audit
        """``AuditLog.record`` once the run has one: undelivered notifications are audited."""
        self.sent: list[dict[str, Any]] = []

    def send(self, event: str, headline: str, details: list[str] | None = None) -> bool:
        subject = scrub(f"regionpair {self.runbook}: {headline}")
        message = scrub("\n".join([f"{self.runbook} run {self.run_id or '(no run id)'}: {headline}", *(details or [])]))
        entry: dict[str, Any] = {"event": event, "subject": subject, "delivered": True}
        try:
            self.notifier.notify(subject, message)
        except Exception as exc:  # noqa: BLE001 - a notification never stops a failover; recorded below
            log.warning("notification %r not delivered", subject, exc_info=True)
            entry.update(delivered=False, error=scrub(f"{type(exc).__name__}: {exc}"))
            if self.audit is not None:
                self.audit("notify", event, "failed", f"{subject}: {entry['error']}")
        self.sent.append(entry)
        return entry["delivered"]

    def undelivered_notes(self) -> list[str]:
        return [f"notification not delivered ({n['event']}: {n['subject']}): {n['error']}"
                for n in self.sent if not n["delivered"]]


def measured(rto_seconds: float | None, rpo_seconds: float | None, objectives: dict | None = None) -> str:
    o = objectives or {}
    rto = "not measured" if rto_seconds is None else f"{rto_seconds:.2f} s"
    rpo = "not measured" if rpo_seconds is None else f"{rpo_seconds:.2f} s"
    return (f"RTO {rto}" + (f" (objective {o['rto_seconds']} s)" if o.get("rto_seconds") is not None else "")
            + f"; RPO {rpo}" + (f" (objective {o['rpo_seconds']} s)" if o.get("rpo_seconds") is not None else ""))
