"""Failover of N databases takes about the time of one: the per-database steps run in parallel.

    .venv/bin/python -m benchmarks.failover_scaling [--repeat 3] [--sizes 1,5,10]

For each N, a fresh sandbox with N database pairs, then the failover runbook (in-process, the
primary region's databases still up, so the fence is live); the figure is the runbook's own
duration from its journal (first event to last step). Target: N=10 within 1.5x of N=1.

Alongside, the CPU the whole machine spent while the runbook ran (``/proc/stat``: every
PostgreSQL server, the link, the runbook itself): when "cores busy" approaches the machine's core
count, the figure measures the machine hosting 2N servers, not the runbook's parallelism.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time

from benchmarks._common import sandbox
from runbooks import failover
from runbooks.adapters.sandbox_wiring import sandbox_ports


def _cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            # user nice system idle iowait irq softirq steal; guest and guest_nice (after them)
            # are already counted in user and nice
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def one(n: int) -> tuple[float, tuple[float, float] | None]:
    """The runbook's duration, and the machine's busy CPU seconds during the call with the call's
    own wall time (the call also loads the outputs and plans, which the duration leaves out)."""
    with sandbox("--databases", str(n), "--systems", "postgres") as d:
        time.sleep(1.0)  # let the servers settle after start-up
        out = io.StringIO()
        before, t0 = _cpu(), time.monotonic()
        code = failover.main(["--outputs", str(d / "outputs.json"), "--yes", "--output", "json"],
                             ports_factory=sandbox_ports, stdout=out)
        after, wall = _cpu(), time.monotonic() - t0
        result = json.loads(out.getvalue())
        if code != 0:
            raise SystemExit(f"failover of {n} databases failed: {result.get('error')}")
        busy = None if before is None or after is None else (after[0] - before[0], wall)
        return result["rto_seconds"], busy


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sizes", default="1,5,10")
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    medians = {}
    cores = os.cpu_count() or 1
    print(f"{'databases':>9}  {'median s':>8}  {'CPU s/db':>8}  {'cores busy':>10}  runs   (machine: {cores} cores)")
    for n in sizes:
        runs = [one(n) for _ in range(a.repeat)]
        medians[n] = statistics.median(r for r, _ in runs)
        busy = [b for _, b in runs if b is not None]
        per_db = f"{statistics.median(cpu for cpu, _ in busy) / n:8.3f}" if busy else f"{'n/a':>8}"
        cores_busy = f"{statistics.median(cpu / wall for cpu, wall in busy):10.2f}" if busy else f"{'n/a':>10}"
        print(f"{n:>9}  {medians[n]:8.3f}  {per_db}  {cores_busy}  {', '.join(f'{r:.3f}' for r, _ in runs)}",
              flush=True)
    base = medians[sizes[0]]
    for n in sizes[1:]:
        ratio = medians[n] / base
        print(f"N={n}: {ratio:.2f}x the time of N={sizes[0]} (target <= 1.5x): {'OK' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
