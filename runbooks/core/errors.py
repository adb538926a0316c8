"""The runbooks' errors: a small hierarchy, each carrying the exit code the CLI returns."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_DECLINED = 4
EXIT_INTERRUPTED = 130


class RunbookError(Exception):
    """Base class: a runbook stopped for a reason it can state."""

    exit_code = EXIT_FAILED


class BadInput(RunbookError):
    """Arguments, config or stack outputs are wrong; nothing was changed."""

    exit_code = EXIT_BAD_INPUT


class GateFailed(RunbookError):
    """A safety gate refused the run before any change."""

    exit_code = EXIT_REFUSED

    def __init__(self, results):
        self.results = results
        failed = [r for r in results if not r.passed]
        lines = "; ".join(f"{r.name}: {r.sentence}" for r in failed)
        super().__init__(f"{len(failed)} gate(s) refused the run, nothing was changed: {lines}. "
                         "Fix the cause, or override with --force if you accept the risk")


class LockHeld(RunbookError):
    """Another failover or failback holds the pair's lock."""

    exit_code = EXIT_REFUSED

    def __init__(self, holder: dict):
        self.holder = holder
        super().__init__(
            f"another run holds the lock for this region pair: run {holder.get('run_id')} "
            f"({holder.get('runbook')}) by {holder.get('who')} since {holder.get('since')}. "
            "Wait for it to finish; if it crashed, rerun with --resume (same machine) or --break-lock")


class Declined(RunbookError):
    """The operator answered no at the confirmation prompt."""

    exit_code = EXIT_DECLINED


class StepFailed(RunbookError):
    """A step's apply or verify failed; the journal lets a rerun continue."""


class StepBlocked(StepFailed):
    """A step's check found a state it cannot act on."""


class StepTimeout(StepFailed):
    """A wait reached its deadline."""


class Unreachable(RunbookError):
    """A port could not reach what it talks to (region down, connection refused)."""
