"""How long `python -m sandbox up --systems postgres,kafka` takes, and the JVMs' share of it.

    .venv/bin/python benchmarks/kafka_up.py [--runs 3] [--kafka-brokers 1|3]

Runs the real CLI (`up`, then `down`) ``--runs`` times in a fresh directory under /var/tmp and
prints, per run: the wall time of `up`; when each region's Kafka cluster was ready and when
MirrorMaker 2's source task ran (seconds since `up` began, DIR/logs/up-timings.json); and the JVM
start-up share: for each broker and for MirrorMaker 2, the time from its process being started to
its first log line (the JVM loading itself and Kafka's classes: nothing of Kafka has run yet),
then to "Kafka Server started" / the source task running (Kafka's own start-up). Storage
formatting (a short JVM per node, both regions side by side) is printed too. A benchmark, not a
test: it asserts nothing (the issue's target is `up` <= 20 s with Kafka on this 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JAVA_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
PY_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _first(path: Path, pattern: str | None = None, rx=JAVA_TS, after: float = 0.0) -> float | None:
    """The time of the first log line (matching ``pattern``, if given, not before ``after``) in a
    component's log."""
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        m = rx.match(line)
        if m and (pattern is None or pattern in line) and _ts(m.group(1)) >= after - 0.001:
            return _ts(m.group(1))
    return None


def _run(argv: list[str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sandbox", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        sys.exit(f"`sandbox {' '.join(argv)}` failed: {proc.stderr.strip()}")
    return time.monotonic() - t0


def _jvm_share(target: Path, marks: dict, t0: float) -> list[str]:
    logs, out = target / "logs", []
    spawned = t0 + marks["kafka nodes spawned"]  # every node's JVM started right after its format
    out.append(f"format (both regions side by side, a JVM per node): {marks['kafka nodes spawned']:.2f} s")
    for log in sorted(logs.glob("kafka-local-*.log")):
        first = _first(log, after=spawned)  # the format's JVM logs too, before
        started = _first(log, "Kafka Server started", after=spawned)
        if first and started:
            out.append(f"{log.stem}: JVM start-up {first - spawned:5.2f} s, Kafka's start-up {started - first:5.2f} s")
    sup = _first(logs / "replicator.log", "MirrorMaker 2 local-east -> local-west started", rx=PY_TS)
    first = _first(logs / "mirrormaker2.log")
    running = _first(logs / "mirrormaker2.log", "WorkerSourceTask{id=MirrorSourceConnector-0} Source task finished")
    if sup and first and running:
        out.append(f"mirrormaker2: JVM start-up {first - sup:5.2f} s, MirrorMaker 2's start-up {running - first:5.2f} s "
                   f"(spawned at +{sup - t0:.2f} s)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kafka-brokers", type=int, choices=(1, 3), default=1)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-kafka-", dir="/var/tmp"))
    base.chmod(0o755)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; Kafka brokers per region "
          f"{args.kafka_brokers}; {args.runs} runs")
    ups = []
    try:
        for i in range(args.runs):
            target = base / f"run{i}"
            ups.append(_run(["up", "--dir", str(target), "--systems", "postgres,kafka",
                             "--kafka-brokers", str(args.kafka_brokers)]))
            marks = json.loads((target / "logs" / "up-timings.json").read_text())
            t0 = json.loads((target / "logs" / "up-started.json").read_text())["epoch"]
            share = _jvm_share(target, marks, t0)
            _run(["down", "--dir", str(target)])
            ready = "  ".join(f"{k}={marks[k]:.2f}" for k in ("kafka-local-east ready", "kafka-local-west ready",
                                                               "kafka and MirrorMaker 2 started",
                                                               "payments: standby streaming") if k in marks)
            print(f"  run {i + 1}: sandbox up {ups[-1]:.2f} s (CLI wall; load {os.getloadavg()[0]:.2f})\n"
                  f"         since up began: {ready}\n         " + "\n         ".join(share))
            shutil.rmtree(target, ignore_errors=True)
        print(f"sandbox up with Kafka: median {statistics.median(ups):.2f} s, worst {max(ups):.2f} s, "
              f"best {min(ups):.2f} s")
    finally:
        for child in base.iterdir():
            subprocess.run([sys.executable, "-m", "sandbox", "down", "--dir", str(child)], cwd=REPO,
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
