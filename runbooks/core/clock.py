"""Time, injectable: every wait in the runbooks has a deadline and takes its clock from here."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable, Protocol, TypeVar

from runbooks.core.errors import StepTimeout

T = TypeVar("T")


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for journals and reports)."""

    def monotonic(self) -> float:
        """Seconds for deadlines."""

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that only moves when slept on (tests)."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_until(probe: Callable[[], T | None], *, what: str, timeout: float, clock: Clock,
               interval: float = 0.05, max_interval: float = 1.0) -> T:
    """Call ``probe`` until it returns something truthy, or raise StepTimeout after ``timeout`` s.

    The interval starts small (so a promotion that takes 0.3 s is seen at 0.3 s, not at an AWS
    waiter's 30 s) and backs off to ``max_interval``."""
    deadline = clock.monotonic() + timeout
    delay = interval
    result = probe()
    while not result:
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise StepTimeout(f"timed out after {timeout:g} s waiting for {what}")
        clock.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)
        result = probe()
    return result
