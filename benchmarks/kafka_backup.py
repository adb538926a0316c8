"""Kafka topic backup and replay on the sandbox's real Kafka, measured: how far the backup trails
the head, and how fast a replay writes and verifies.

    .venv/bin/python benchmarks/kafka_backup.py [--rate 500] [--seconds 20] [--flush-s 1.0]

Brings a sandbox up (PostgreSQL and Kafka), starts the backup worker on ``orders``, produces
``--rate`` records/s for ``--seconds`` (acks=all, each acknowledgement time kept), and samples the
backup's watermark every 50 ms: a record's **backup lag** is the time from its acknowledgement to
the first sample whose watermark holds its offset (so it includes up to 50 ms of sampling). Then
replays the whole produced range with ``runbooks.kafka_replay`` into a new topic and prints the
replay's rate (records written per second, until every one was acknowledged) and the time of the
whole runbook (plan, write, read back, compare). Prints the figures and the load average; asserts
nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract import kafka_backup as kb  # noqa: E402
from runbooks import kafka_replay  # noqa: E402
from sandbox import control, kafka_backup as _kafka_backup, kafka_cluster  # noqa: E402
from sandbox.layout import EAST  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=500, help="records per second produced")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to produce")
    p.add_argument("--flush-s", type=float, default=1.0, help="the backup worker's write interval")
    a = p.parse_args()
    from confluent_kafka import Producer

    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-kafka-backup-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        sb = control.up(base / "sandbox", systems=("postgres", "kafka"))
        bootstrap = kafka_cluster.bootstrap(sb.state, EAST)
        print(_kafka_backup.start(sb, {"orders": "critical"}, flush_s=a.flush_s))
        store = kb.DirStore(_kafka_backup.store_dir(sb.layout))
        acked: dict[tuple[int, int], float] = {}
        seen: dict[tuple[int, int], float] = {}
        stop = threading.Event()

        def sample() -> None:
            covered: dict[int, int] = {}
            while not stop.is_set() or len(seen) < len(acked):
                wm = kb.read_watermark(store, "orders")
                now = time.monotonic()
                if wm is not None:
                    for part, nxt in wm.next_offsets.items():
                        for off in range(covered.get(part, 0), nxt):
                            seen.setdefault((part, off), now)
                        covered[part] = max(covered.get(part, 0), nxt)
                if stop.is_set() and time.monotonic() > deadline:
                    return
                time.sleep(0.05)

        deadline = float("inf")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "log_level": 0})

        def done(err, msg):
            if err is None:
                acked[(msg.partition(), msg.offset())] = time.monotonic()

        t_start_wall = time.time()
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < a.seconds:
            due = int((time.monotonic() - t0) * a.rate)
            while n < due:
                producer.produce("orders", json.dumps({"id": n}).encode(), key=str(n).encode(), on_delivery=done)
                n += 1
            producer.poll(0.005)
        producer.flush(30)
        t_end_wall = time.time()
        deadline = time.monotonic() + 30
        stop.set()
        sampler.join(35)
        lags = [seen[k] - t for k, t in acked.items() if k in seen]
        print(f"produced {n} records in {a.seconds:.0f} s ({n / a.seconds:.0f}/s), {len(acked)} acknowledged; "
              f"backup worker flush interval {a.flush_s} s")
        if lags:
            print(f"backup lag behind the head (ack → in the backup), {len(lags)} records: p50 "
                  f"{statistics.median(lags):.2f} s, p95 {pct(lags, 0.95):.2f} s, max {max(lags):.2f} s")
        print(f"records never seen in the backup within 30 s: {len(acked) - len(lags)}")
        status = _kafka_backup.status(sb.layout) or {}
        print(f"backup status: {status.get('records_total')} records written, {status.get('records_behind_head')} "
              f"behind the head at the last flush")

        # the range ends a second after the last record: wait until the backup says it was caught up then
        wait_until = time.monotonic() + 15
        while time.monotonic() < wait_until:
            wm = kb.read_watermark(store, "orders")
            if wm is not None and wm.caught_up_at is not None and wm.caught_up_at >= t_end_wall + 1:
                break
            time.sleep(0.1)
        out = io.StringIO()
        t = time.monotonic()
        code = kafka_replay.main(["--outputs", str(sb.dir / "outputs.json"), "--topic", "orders",
                                  "--from-time", str(t_start_wall - 1), "--to-time", str(t_end_wall + 1),
                                  "--target-topic", "orders-bench-replay", "--yes", "--output", "json"],
                                 stdout=out)
        whole = time.monotonic() - t
        r = json.loads(out.getvalue())
        if code != 0:
            print(f"replay exit {code}: {r.get('error')}")
        else:
            print(f"replay of {r['expected']} records: written in {r['replay_seconds']:.2f} s "
                  f"({r['records_per_second']:.0f} records/s); whole runbook (plan, write, read back, compare) "
                  f"{whole:.2f} s; exact: {r['exact']} (landed {r['landed']}, missing {r['missing']}, extra {r['extra']})")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        return 0
    finally:
        control.down(base / "sandbox")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
