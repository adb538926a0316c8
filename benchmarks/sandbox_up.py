"""How long `python -m sandbox up` takes on this machine, and where the time goes.

    .venv/bin/python benchmarks/sandbox_up.py [--runs 5] [--databases 1 5 10] [--replication async]

Runs the real CLI (`up`, then `down`) ``--runs`` times per database count, in a fresh directory
under /var/tmp each time, and prints each run's wall time, the phases `up` recorded in
DIR/logs/up-timings.json, and the median and worst run. It is a benchmark, not a test: it
prints figures and asserts nothing (the issue's bar is `up` <= 5 s with one database).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("initdb", "payments: primary started", "payments: primary bootstrapped", "payments: standby cloned",
          "payments: standby streaming", "dns ready", "moto-local-east ready", "moto-local-west ready",
          "outputs written")


def _run(argv: list[str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sandbox", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        sys.exit(f"`sandbox {' '.join(argv)}` failed: {proc.stderr.strip()}")
    return elapsed


def _cycle(target: Path) -> None:
    """One failover cycle through the API, each step timed: what the runbooks will call."""
    sys.path.insert(0, str(REPO))
    from sandbox import control

    sb = control.up(target)
    print("\nfailover cycle (API, one database, async):")
    try:
        for label, step in (("kill_database(east)", lambda: sb.kill_database("local-east")),
                            ("fence(east) while down", lambda: sb.fence("local-east")),
                            ("promote(west)", lambda: sb.promote("local-west")),
                            ("set_record(payments, west)", lambda: sb.set_record("payments", "local-west")),
                            ("start_database(east), fenced", lambda: sb.start_database("local-east")),
                            ("rebuild_as_replica(east, west)", lambda: sb.rebuild_as_replica("local-east", "local-west")),
                            ("unfence(east)", lambda: sb.unfence("local-east")),
                            ("fence(east) live, as a standby", lambda: sb.fence("local-east"))):
            t0 = time.monotonic()
            step()
            print(f"  {label:<34} {time.monotonic() - t0:6.2f} s")
    finally:
        control.down(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--databases", type=int, nargs="+", default=[1])
    parser.add_argument("--replication", choices=("async", "sync"), default="async")
    parser.add_argument("--cycle", action="store_true", help="also time one failover cycle through the API")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"replication {args.replication}; {args.runs} runs each")
    try:
        for n in args.databases:
            ups, downs = [], []
            print(f"\n--databases {n}")
            for i in range(args.runs):
                target = base / f"n{n}-run{i}"
                ups.append(_run(["up", "--dir", str(target), "--databases", str(n),
                                 "--replication", args.replication]))
                marks = json.loads((target / "logs" / "up-timings.json").read_text())
                downs.append(_run(["down", "--dir", str(target)]))
                phases = "  ".join(f"{k.replace('payments: ', '')}={marks[k]:.2f}" for k in PHASES if k in marks)
                print(f"  run {i + 1}: up {ups[-1]:.2f} s (CLI wall, incl. interpreter start), down {downs[-1]:.2f} s"
                      f"\n         phases (s since up began): {phases}")
                shutil.rmtree(target, ignore_errors=True)
            print(f"  up:   median {statistics.median(ups):.2f} s, worst {max(ups):.2f} s, best {min(ups):.2f} s")
            print(f"  down: median {statistics.median(downs):.2f} s, worst {max(downs):.2f} s")
        if args.cycle:
            _cycle(base / "cycle")
    finally:
        for child in base.iterdir():
            subprocess.run([sys.executable, "-m", "sandbox", "down", "--dir", str(child)], cwd=REPO,
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
