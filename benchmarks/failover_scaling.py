"""Failover of N databases takes about the time of one: the per-database steps run in parallel.

    .venv/bin/python -m benchmarks.failover_scaling [--repeat 3] [--sizes 1,5,10]

For each N, a fresh sandbox with N database pairs, then the failover runbook (in-process, the
primary region's databases still up, so the fence is live); the figure is the runbook's own
duration from its journal (first event to last step). Target: N=10 within 1.5x of N=1.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics

from benchmarks._common import sandbox
from runbooks import failover
from runbooks.adapters.sandbox import sandbox_ports


def one(n: int) -> float:
    with sandbox("--databases", str(n)) as d:
        out = io.StringIO()
        code = failover.main(["--outputs", str(d / "outputs.json"), "--yes", "--output", "json"],
                             ports_factory=sandbox_ports, stdout=out)
        result = json.loads(out.getvalue())
        if code != 0:
            raise SystemExit(f"failover of {n} databases failed: {result.get('error')}")
        return result["rto_seconds"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sizes", default="1,5,10")
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    medians = {}
    print(f"{'databases':>9}  {'median s':>8}  runs")
    for n in sizes:
        runs = [one(n) for _ in range(a.repeat)]
        medians[n] = statistics.median(runs)
        print(f"{n:>9}  {medians[n]:8.3f}  {', '.join(f'{r:.3f}' for r in runs)}", flush=True)
    base = medians[sizes[0]]
    for n in sizes[1:]:
        ratio = medians[n] / base
        print(f"N={n}: {ratio:.2f}x the time of N={sizes[0]} (target <= 1.5x): {'OK' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
