"""The benchmark's virtual clock: time moves only when every thread that uses it waits on it, so
modelled minutes of promotion cost no minutes of the run."""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from typing import Iterator


class VirtualClock:
    """A Clock (runbooks.core.clock) whose time moves only when nothing that uses it is running.

    A thread that sleeps registers its wake-up time and waits. A driver thread advances time to
    the earliest wake-up once every registered sleeper is still asleep, no modelled call is in
    progress (``busy``), and no thread has touched the clock for ``settle`` real seconds (so a
    thread between two calls is not overtaken). Wake-ups within ``quantum`` of each other are
    released together."""

    def __init__(self, start: float = 1_800_000_000.0, settle: float = 0.004, quantum: float = 0.02):
        self._now = start
        self._settle = settle
        self._quantum = quantum
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        """Sleepers wait on it; the driver wakes them."""
        self._nudge = threading.Condition(self._lock)
        """The driver waits on it; sleepers and calls that end wake it."""
        self._wakes: list[float] = []
        self._asleep: dict[int, float] = {}
        self._busy = 0
        self._touched = time.monotonic()
        self._stopped = False
        self.cpu = 0.0
        """CPU seconds the driver thread spent (set when it stops): the benchmark's, not the runbook's."""
        self._driver = threading.Thread(target=self._drive, name="virtual-clock", daemon=True)
        self._driver.start()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cv:
            wake = self._now + max(seconds, 0.0)
            heapq.heappush(self._wakes, wake)
            self._asleep[me] = wake
            self._touched = time.monotonic()
            self._nudge.notify()
            while self._now < wake and not self._stopped:
                self._cv.wait()
            del self._asleep[me]
            self._touched = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Real work that stands for no time (a moto call): time waits for it to end."""
        with self._cv:
            self._busy += 1
        try:
            yield
        finally:
            with self._cv:
                self._busy -= 1
                self._touched = time.monotonic()
                self._nudge.notify()

    def _drive(self) -> None:
        started = time.thread_time()
        with self._cv:
            while not self._stopped:
                while self._wakes and self._wakes[0] <= self._now:
                    heapq.heappop(self._wakes)
                released_not_resumed = any(w <= self._now for w in self._asleep.values())
                quiet = time.monotonic() - self._touched
                if not self._wakes:
                    self._nudge.wait()
                    continue
                if self._busy or released_not_resumed or quiet < self._settle:
                    self._nudge.wait(timeout=self._settle)
                    continue
                now = heapq.heappop(self._wakes)
                while self._wakes and self._wakes[0] <= now + self._quantum:
                    now = heapq.heappop(self._wakes)
                self._now = max(self._now, now)
                self._cv.notify_all()
        self.cpu = time.thread_time() - started

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._cv.notify_all()
            self._nudge.notify()
        self._driver.join(timeout=5)
