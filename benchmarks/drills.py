"""Drill figures: RTO and loss over repeated sandbox drills, and how good the RPO estimate is.

    .venv/bin/python -m benchmarks.drills region-outage-sync   [--runs 10]   # RTO <= 2 s median, 0 lost
    .venv/bin/python -m benchmarks.drills switchover           [--runs 10]   # write pause <= 0.5 s, 0 lost
    .venv/bin/python -m benchmarks.drills async-estimate       [--runs 10]   # estimate within +-20% of loss
    .venv/bin/python -m benchmarks.drills region-outage-kafka  [--runs 10]   # Kafka writers <= 2 s, groups <= 3 s
    .venv/bin/python -m benchmarks.drills broker-loss          [--runs 10]   # 1 of 3 brokers killed: 0 lost

Each run is a whole `python -m runbooks.drill` (its own sandbox, up and down). The first three are
PostgreSQL only: the database's figures. ``region-outage-kafka`` is the README's drill (all three
systems, Apache Kafka with MirrorMaker 2): per run, when Kafka writers were first acknowledged in
DR and when the consumer group first processed there (seconds after the fault, the drill's
report.json ``rto.systems.kafka``), the Kafka records lost and processed twice, and the machine's
load average at the start of the run (2 shared cores: the figures move with it). Figures printed,
nothing asserted: a benchmark reports, the tests decide. The loss figures depend on the fault
landing at one instant; on a loaded 2-core machine its timing spreads, and so does the loss.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
from pathlib import Path

import drills as drill

CASES = {
    "region-outage-sync": ["--scenario", "region-outage", "--replication", "sync", "--rate", "200",
                           "--systems", "postgres"],
    # a planned switchover lowers the TTL first, as one does before a planned DNS change
    "switchover": ["--scenario", "switchover", "--replication", "sync", "--rate", "200", "--dns-ttl", "0",
                   "--systems", "postgres"],
    "async-estimate": ["--scenario", "region-outage", "--replication", "async", "--link-latency-ms", "25",
                       "--rate", "1000", "--systems", "postgres"],
    "region-outage-kafka": ["--scenario", "region-outage", "--systems", "postgres,kafka,s3"],
    "broker-loss": ["--scenario", "broker-loss", "--systems", "postgres,kafka", "--restart-broker"],
}


def broker_loss_rows(case: str, runs: int, base: Path) -> None:
    """The broker loss's figures (docs/drills.md): per run, the longest gap in Kafka
    acknowledgements, when every partition was acknowledged again, loss, timeouts and duplicates,
    whether MirrorMaker 2 kept copying and whether anything failed over."""
    print(f"{'run':>3}  {'load':>5}  {'ack gap s':>9}  {'acked again s':>13}  {'acked':>6}  {'lost':>4}  "
          f"{'timeouts':>8}  {'stored dups':>11}  {'rejoined s':>10}  mm2  failover  passed")
    gaps = []
    for i in range(runs):
        load = os.getloadavg()[0]
        r = run(case, i, base)
        k = (r.get("systems") or {}).get("kafka")
        if not k:
            print(f"{i:>3}  {load:5.1f}  drill failed: {r.get('error') or r.get('reasons')}", flush=True)
            continue
        gaps.append(k["longest_ack_gap_seconds"])
        again, back = k["acknowledged_again_seconds"], r.get("broker_rejoined_seconds")
        print(f"{i:>3}  {load:5.1f}  {k['longest_ack_gap_seconds']:9.2f}  "
              f"{'n/a' if again is None else f'{again:.2f}':>13}  {k['acknowledged']:>6}  {k['acked_lost']:>4}  "
              f"{k['errors_after_kill']:>8}  {k['stored_duplicates']:>11}  "
              f"{'n/a' if back is None else f'{back:.1f}':>10}  {'yes' if r['mirrormaker2']['kept_replicating'] else 'NO':>3}  "
              f"{'YES' if r['failover']['happened'] else 'none':>8}  {r['passed']}", flush=True)
    if gaps:
        print(f"longest Kafka acknowledgement gap: median {statistics.median(gaps):.2f} s (min {min(gaps):.2f}, "
              f"max {max(gaps):.2f}) over {len(gaps)} of {runs} runs")
    print(f"reports under {base}")


def kafka_rows(case: str, runs: int, base: Path) -> None:
    """The Kafka figures of the issue's bar: writers acknowledged in DR within 2 s of the fault,
    every consumer group processing there within 3 s; and where the writers' time went
    (docs/drills.md): from the fault until the runbook's Kafka lane starts (the fault landing,
    detection, the gates), its steps (stop MirrorMaker 2, the groups' offsets), and from the
    client parameters' move to the first acknowledgement / record processed in DR."""
    print(f"{'run':>3}  {'load':>5}  {'writers s':>9}  {'groups s':>8}  {'service s':>9}  {'acked':>6}  {'lost':>4}  "
          f"{'dups':>5}  to-lane s  kafka-stop s  kafka-offsets s  param→ack s  param→processed s  passed")
    rows = []
    for i in range(runs):
        load = os.getloadavg()[0]
        r = run(case, i, base)
        k = ((r.get("rto") or {}).get("systems") or {}).get("kafka")
        if not k:
            print(f"{i:>3}  {load:5.1f}  drill failed: {r.get('error') or r.get('reasons')}", flush=True)
            continue
        ks = r["systems"]["kafka"]
        timed = [s for s in r.get("steps", []) if s.get("end") and s.get("start")]
        steps = {s["name"]: s["end"] - s["start"] for s in timed}
        stop, offsets = steps.get("failover/kafka-stop:replication"), steps.get("failover/kafka-offsets:groups")
        lane = [s["start"] for s in timed if s["name"] == "failover/kafka-stop:replication"]
        to_lane = lane[0] - r["fault_at"] if lane and r.get("fault_at") else None
        moved = max((s["end"] for s in timed if s["name"].startswith("failover/kafka-clients:")), default=None)
        to_ack = k["writers"]["to"] - moved if moved else None
        to_done = k["consumers"]["to"] - moved if moved else None
        w, g = k["writers"]["seconds"], k["consumers"]["seconds"]
        rows.append((w, g))
        print(f"{i:>3}  {load:5.1f}  {w:9.2f}  {g:8.2f}  {r['rto_seconds']:9.2f}  {ks['acknowledged']:>6}  "
              f"{ks['acked_lost']:>4}  {ks.get('duplicates'):>5}  {'' if to_lane is None else f'{to_lane:9.2f}'}  "
              f"{'' if stop is None else f'{stop:12.2f}'}  {'' if offsets is None else f'{offsets:15.2f}'}  "
              f"{'' if to_ack is None else f'{to_ack:11.2f}'}  {'' if to_done is None else f'{to_done:17.2f}'}  "
              f"{r['passed']}", flush=True)
    if rows:
        ws, gs = [x[0] for x in rows], [x[1] for x in rows]
        print(f"Kafka writers in DR: median {statistics.median(ws):.2f} s (min {min(ws):.2f}, max {max(ws):.2f}); "
              f"consumer group in DR: median {statistics.median(gs):.2f} s (min {min(gs):.2f}, max {max(gs):.2f}); "
              f"{len(rows)} of {runs} runs; within the bar (2 s / 3 s): {sum(w <= 2 for w in ws)} / "
              f"{sum(g <= 3 for g in gs)}")
    print(f"reports under {base}")


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
    if a.case == "region-outage-kafka":
        return kafka_rows(a.case, a.runs, base)
    if a.case == "broker-loss":
        return broker_loss_rows(a.case, a.runs, base)
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
