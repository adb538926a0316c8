"""The run journal: every step's start, end and result, appended and synced, one JSON line each.

A rerun reads it to continue a crashed run under the same run id (the steps' own checks decide
what is still to do; the journal keeps the history, the timing and the gate results)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from runbooks.core.clock import Clock, iso
from runbooks.core.redact import scrub


class Journal:
    def __init__(self, path: Path, run_id: str, clock: Clock):
        self.path = path
        self.run_id = run_id
        self.clock = clock

    # ---- finding runs ----------------------------------------------------------------------

    @staticmethod
    def runs_dir(state_dir: Path) -> Path:
        return Path(state_dir) / "runs"

    @classmethod
    def create(cls, state_dir: Path, runbook: str, clock: Clock, run_id: str | None = None) -> "Journal":
        runs = cls.runs_dir(state_dir)
        runs.mkdir(parents=True, exist_ok=True)
        if run_id is None:
            stamp = iso(clock.time()).replace(":", "").replace("-", "").split(".")[0]
            run_id = f"{runbook}-{stamp}-{secrets.token_hex(2)}"
        journal = cls(runs / f"{run_id}.jsonl", run_id, clock)
        if journal.path.exists():
            return journal
        journal.append("run-start", runbook=runbook)
        return journal

    @classmethod
    def open(cls, state_dir: Path, run_id: str, clock: Clock) -> "Journal":
        path = cls.runs_dir(state_dir) / f"{run_id}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"no journal for run {run_id} in {cls.runs_dir(state_dir)}")
        return cls(path, run_id, clock)

    @classmethod
    def unfinished(cls, state_dir: Path, runbook: str, clock: Clock) -> "Journal | None":
        """The newest run of this runbook that never wrote a successful end, if any."""
        runs = cls.runs_dir(state_dir)
        if not runs.is_dir():
            return None
        candidates = sorted(runs.glob(f"{runbook}-*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in candidates:
            journal = cls(path, path.stem, clock)
            return journal if journal.resumable else None  # only the newest run can be resumed
        return None

    # ---- writing and reading ---------------------------------------------------------------

    def append(self, event: str, **fields: Any) -> dict:
        entry = {"t": self.clock.time(), "at": iso(self.clock.time()), "run_id": self.run_id, "event": event}
        entry.update(scrub(fields))
        line = json.dumps(entry, sort_keys=True, default=str)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                # a crash in the middle of a write leaves at most one torn last line
                continue
        return out

    @property
    def started_at(self) -> float | None:
        events = self.events()
        return events[0]["t"] if events else None

    @property
    def finished_ok(self) -> bool:
        return any(e["event"] == "run-end" and e.get("result") == "ok" for e in self.events())

    @property
    def resumable(self) -> bool:
        """Started changing things and never ended well: crashed (no end) or failed half-way.
        A run refused by its gates, or declined at the prompt, changed nothing: not resumable."""
        ends = [e for e in self.events() if e["event"] == "run-end"]
        if not ends:
            return True
        return ends[-1].get("result") == "failed"

    @property
    def runbook(self) -> str | None:
        for e in self.events():
            if e["event"] == "run-start":
                return e.get("runbook")
        return None

    def gates_passed(self) -> bool:
        return any(e["event"] == "gates" and e.get("passed") for e in self.events())

    def step_history(self) -> dict[str, dict]:
        """Per step: its first start, last end and result (steps of resumed runs included)."""
        steps: dict[str, dict] = {}
        for e in self.events():
            if e["event"] == "step-start":
                steps.setdefault(e["step"], {"name": e["step"], "start": e["t"], "end": None,
                                             "status": "started", "result": None})
            elif e["event"] == "step-end":
                s = steps.setdefault(e["step"], {"name": e["step"], "start": e["t"]})
                s.update(end=e["t"], status=e.get("status"), result=e.get("result"))
        return steps

    def values(self, event: str) -> list[dict]:
        return [e for e in self.events() if e["event"] == event]

    # ---- intent ----------------------------------------------------------------------------

    def record_intent(self, intent: dict[str, Any]) -> None:
        """What this run was started to do (the arguments that decide its effect), so that a rerun
        that would resume it can be held to the same intent."""
        self.append("intent", intent=intent)

    def intent_differences(self, intent: dict[str, Any]) -> list[str]:
        """How ``intent`` differs from the one this run was started with, one phrase per argument
        (empty when they agree, or when the run predates recorded intents)."""
        recorded = [e["intent"] for e in self.values("intent") if isinstance(e.get("intent"), dict)]
        if not recorded:
            return []
        old, new = recorded[0], json.loads(json.dumps(intent, sort_keys=True, default=str))
        return [f"{key}: the run has {_shown(old.get(key))}, this invocation {_shown(new.get(key))}"
                for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _shown(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def intent_refusal(journal: "Journal", intent: dict[str, Any], runbook: str) -> str | None:
    """The sentence that refuses to resume ``journal`` with a different ``intent`` (None: same)."""
    differs = journal.intent_differences(intent)
    if not differs:
        return None
    return (f"{runbook} run {journal.run_id} is unfinished and was started with other arguments ("
            + "; ".join(differs) + "). A run is never resumed with a different intent, and nothing was "
            f"changed: rerun with that run's arguments to finish it, or pass --new-run to start afresh "
            f"(what run {journal.run_id} already made stays; its journal is {journal.path})")
