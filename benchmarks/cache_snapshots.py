"""Redis snapshots on the sandbox, measured: the write pause of a snapshot, the export, a restore into
a new server, and whether it holds exactly the snapshot's keys.

    .venv/bin/python benchmarks/cache_snapshots.py [--keys 200000] [--runs 3]

Brings a sandbox up with one cache, loads ``--keys`` string keys (pipelined), then ``--runs`` times:
``cache_backup`` (snapshot → export → verified restore → teardown), timing each step from its report.
Prints the figures and the load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runbooks import cache_backup  # noqa: E402
from sandbox import control  # noqa: E402


def load(info: dict, n: int) -> None:
    with socket.create_connection((info["address"], info["port"])) as s:
        batch = []
        for i in range(n):
            k, v = f"k:{i}".encode(), (f"value-{i}-" * 4).encode()
            batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
            if len(batch) == 5000 or i == n - 1:
                s.sendall(b"".join(batch))
                want, got = len(batch) * 5, b""
                while len(got) < want:
                    got += s.recv(65536)
                batch = []


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-cache-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        sb = control.up(base / "sandbox")
        info = sb.caches.start("sessions", "local-east")
        t = time.monotonic()
        load(info, a.keys)
        print(f"loaded {a.keys} keys in {time.monotonic() - t:.2f} s")
        for n in range(a.runs):
            out = io.StringIO()
            t = time.monotonic()
            code = cache_backup.main(["--outputs", str(sb.dir / "outputs.json"), "--cache", "sessions", "--yes",
                                      "--output", "json"], stdout=out)
            wall = time.monotonic() - t
            r = json.loads(out.getvalue())
            steps = {s["name"].split(":")[0]: s["end"] - s["start"] for s in r["steps"]}
            snap = sb.caches.snapshot_info("local-east", r["snapshot"])
            print(f"run {n}: exit {code}, {r['keys']} keys, exact {r['verified']}; snapshot {steps['snapshot']:.2f} s "
                  f"(writes paused {snap['seconds']:.2f} s, RDB {snap['bytes'] / 1e6:.1f} MB), export "
                  f"{steps['export']:.2f} s, restore+compare {steps['restore']:.2f} s (restore "
                  f"{r['restore_seconds']:.2f} s); runbook wall time {wall:.2f} s")
        print(f"load average {os.getloadavg()[0]:.1f}")
        control.down(sb.dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
