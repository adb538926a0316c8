"""Kafka and S3 beside PostgreSQL: replication lag under load, and the failover of all three.

    .venv/bin/python -m benchmarks.streams [--seconds 8] [--rate 200] [--kafka-rate 100] [--s3-rate 30] [--runs 3]

For each run: a sandbox with PostgreSQL, Kafka and S3, the workload for --seconds while the
replicator's and the S3 worker's lag are sampled every 100 ms (the same flow() the runbooks'
gates read), then the failover runbook with every lane; the figures are printed per run and as
medians. The sandbox's Kafka replicator and S3 worker are stand-ins for MSK Replicator and S3
CRR: their lag says what the sandbox does, not what AWS does.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import statistics
import subprocess
import sys
import time

from benchmarks._common import sandbox
from runbooks import failover
from runbooks.adapters.sandbox_wiring import sandbox_ports
from runbooks.core.clock import SystemClock


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def one(a) -> dict:
    with sandbox("--systems", "postgres,kafka,s3") as d:
        from contract import outputs as contract
        ports = sandbox_ports(contract.load_file(d / "outputs.json"), SystemClock())
        log = d.parent / "workload.jsonl"
        work = subprocess.Popen([sys.executable, "-m", "sandbox", "workload", "--dir", str(d), "--seconds", "3600",
                                 "--rate", str(a.rate), "--kafka-rate", str(a.kafka_rate), "--s3-rate", str(a.s3_rate),
                                 "--log", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kafka, s3 = [], []
        try:
            time.sleep(1.0)  # clients connect, the consumer group joins
            end = time.time() + a.seconds
            while time.time() < end:
                k, s = ports.streaming.flow(), ports.objects.flow()
                if k.lag_seconds is not None:
                    kafka.append((k.lag_seconds, k.lag_records or 0))
                if s.lag_seconds is not None:
                    s3.append((s.lag_seconds, s.lag_records or 0))
                time.sleep(0.1)
            out = io.StringIO()
            t0 = time.time()
            code = failover.main(["--outputs", str(d / "outputs.json"), "--yes", "--output", "json"],
                                 ports_factory=sandbox_ports, stdout=out)
            wall = time.time() - t0
            result = json.loads(out.getvalue())
        finally:
            work.send_signal(signal.SIGINT)
            try:
                work.wait(timeout=30)
            except subprocess.TimeoutExpired:
                work.kill()
            ports.close()
    if code != 0:
        raise SystemExit(f"failover failed: {result.get('error')}")
    lanes = {}
    for s in result["steps"]:
        lane = s["name"].split(":", 1)[1] if ":" in s["name"] else s["name"]
        lanes.setdefault(lane, [s["start"], s["end"]])
        lanes[lane] = [min(lanes[lane][0], s["start"]), max(lanes[lane][1], s["end"])]
    return {"kafka_lag_s": [x for x, _ in kafka], "kafka_lag_records": [n for _, n in kafka],
            "s3_lag_s": [x for x, _ in s3], "s3_pending": [n for _, n in s3], "failover_s": wall,
            "runbook_s": result["rto_seconds"], "lanes": {k: v[1] - v[0] for k, v in lanes.items()}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--kafka-rate", type=int, default=100)
    p.add_argument("--s3-rate", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    runs = []
    for i in range(a.runs):
        r = one(a)
        runs.append(r)
        k, s = r["kafka_lag_s"] or [float("nan")], r["s3_lag_s"] or [float("nan")]
        print(f"run {i}: Kafka produce→replicate lag median {statistics.median(k) * 1000:.0f} ms, p95 "
              f"{pct(k, 0.95) * 1000:.0f} ms; S3 backlog age (oldest version not yet copied) median {statistics.median(s) * 1000:.0f} ms, p95 "
              f"{pct(s, 0.95) * 1000:.0f} ms, pending p95 {pct(r['s3_pending'] or [0], 0.95)}; failover of all "
              f"three {r['failover_s']:.2f} s (runbook {r['runbook_s']:.2f} s; lanes: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(r["lanes"].items())) + ")", flush=True)
    print(f"medians over {len(runs)} runs: Kafka lag {statistics.median(statistics.median(r['kafka_lag_s'] or [0]) for r in runs) * 1000:.0f} ms, "
          f"S3 backlog age {statistics.median(statistics.median(r['s3_lag_s'] or [0]) for r in runs) * 1000:.0f} ms, "
          f"failover {statistics.median(r['failover_s'] for r in runs):.2f} s")


if __name__ == "__main__":
    main()
