"""Drill figures: RTO and loss over repeated sandbox drills, and how good the RPO estimate is.

    .venv/bin/python -m benchmarks.drills region-outage-sync   [--runs 10]   # RTO <= 2 s median, 0 lost
    .venv/bin/python -m benchmarks.drills switchover           [--runs 10]   # write pause <= 0.5 s, 0 lost
    .venv/bin/python -m benchmarks.drills async-estimate       [--runs 10]   # estimate within +-20% of loss

Each run is a whole `python -m runbooks.drill` (its own sandbox, up and down), PostgreSQL only:
these are the database's figures (benchmarks/streams.py has Kafka's and S3's). Figures printed,
nothing asserted: a benchmark reports, the tests decide. The loss figures depend on the fault
landing at one instant; on a loaded 2-core machine its timing spreads, and so does the loss.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
from pathlib import Path

from runbooks import drill

CASES = {
    "region-outage-sync": ["--scenario", "region-outage", "--replication", "sync", "--rate", "200",
                           "--systems", "postgres"],
    # a planned switchover lowers the TTL first, as one does before a planned DNS change
    "switchover": ["--scenario", "switchover", "--replication", "sync", "--rate", "200", "--dns-ttl", "0",
                   "--systems", "postgres"],
    "async-estimate": ["--scenario", "region-outage", "--replication", "async", "--link-latency-ms", "25",
                       "--rate", "1000", "--systems", "postgres"],
}


def run(case: str, i: int, base: Path) -> dict:
    out = io.StringIO()
    drill.main(["--output", "json", "--report-dir", str(base / f"{case}-{i}"), "--warmup", "3", *CASES[case]],
               stdout=out)
    return json.loads(out.getvalue())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=sorted(CASES))
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-drills-"))
    rows = []
    print(f"{a.case}: {' '.join(CASES[a.case])}")
    print(f"{'run':>3}  {'RTO/pause s':>11}  {'acked':>6}  {'lost':>5}  {'estimate':>8}  {'error':>7}  passed")
    for i in range(a.runs):
        r = run(a.case, i, base)
        if "rpo" not in r:
            print(f"{i:>3}  drill failed: {r.get('error')}")
            continue
        lost, est = r["rpo"]["acked_writes_lost"], r["rpo"]["estimate"].get("writes")
        err = (est - lost) / lost if lost and est is not None else None
        rows.append((r["rto_seconds"], lost, est, err, r["passed"]))
        print(f"{i:>3}  {r['rto_seconds']:11.3f}  {r['writes']['acknowledged']:>6}  {lost:>5}  "
              f"{est if est is None else round(est, 1):>8}  {'' if err is None else f'{err:+.0%}':>7}  {r['passed']}",
              flush=True)
    if not rows:
        return
    rtos = [r[0] for r in rows]
    print(f"RTO/pause: median {statistics.median(rtos):.3f} s, min {min(rtos):.3f}, max {max(rtos):.3f} "
          f"over {len(rows)} runs; acked writes lost: {[r[1] for r in rows]}")
    errs = [r[3] for r in rows if r[3] is not None]
    if errs:
        within = sum(1 for e in errs if abs(e) <= 0.20)
        print(f"estimate vs measured loss: {within}/{len(errs)} within +-20%, median error "
              f"{statistics.median(errs):+.0%}")
    print(f"reports under {base}")


if __name__ == "__main__":
    main()
