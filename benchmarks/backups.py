"""Backups on the sandbox, measured: base backup, point-in-time restore and its exactness,
verify_backup, at a chosen database size.

    .venv/bin/python benchmarks/backups.py [--mb 200] [--runs 5]

Brings a sandbox up, loads about ``--mb`` MB into a table, takes a base backup (timed), then
``--runs`` times: writes rows, notes a time T, writes more rows, and restores to T with the
restore runbook (timed), counting whether the restored rows are exactly those committed by T.
Then one verify_backup (timed). Prints the figures and the load average; asserts nothing.
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
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from runbooks import restore, verify_backup  # noqa: E402
from sandbox import control  # noqa: E402

EAST = "local-east"


def _ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM drill_writes").fetchall()}


def _write(dsn: str, prefix: str, n: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(n):
            conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES (%s, now(), 'b')", (f"{prefix}-{i}",))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=200, help="approximate data size to load (default 200)")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="regionpair-bench-backups-", dir="/var/tmp"))
    tmp.chmod(0o755)
    d = tmp / "sandbox"
    try:
        t0 = time.monotonic()
        sb = control.up(d)
        print(f"up (with its base backup): {time.monotonic() - t0:.2f} s")
        admin = sb.dsn(EAST, "payments")
        with psycopg.connect(admin, autocommit=True) as conn:
            t0 = time.monotonic()
            conn.execute("CREATE TABLE bulk (id bigint PRIMARY KEY, pad text)")
            conn.execute("INSERT INTO bulk SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, %s) g",
                         (a.mb * 1024 * 1024 // 330,))
            (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            print(f"loaded {size / 2**20:.0f} MB in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        meta = sb.backups.take(sb.node(EAST, "payments"))
        print(f"base backup: {time.monotonic() - t0:.2f} s, {meta['size_bytes'] / 2**20:.1f} MB compressed")
        out_file = str(sb.dir / "outputs.json")
        app = sb.dsn(EAST, "payments", admin=False)
        seconds, exact = [], 0
        for run in range(a.runs):
            _write(app, f"r{run}-before", 50)
            time.sleep(0.05)
            t, expected = time.time(), _ids(admin)
            time.sleep(0.05)
            _write(app, f"r{run}-after", 50)
            buf = io.StringIO()
            t0 = time.monotonic()
            code = restore.main(["--outputs", out_file, "--yes", "--output", "json", "--database", "payments",
                                 "--to-time", datetime.fromtimestamp(t, timezone.utc).isoformat()], stdout=buf)
            elapsed = time.monotonic() - t0
            out = json.loads(buf.getvalue())
            if code != 0:
                print(f"run {run + 1}: restore failed: {out.get('error')}")
                continue
            got = _ids(out["instance"]["dsn"])
            exact += got == expected
            seconds.append(elapsed)
            print(f"run {run + 1}: restore to T in {elapsed:.2f} s (runbook wall time), "
                  f"{'exact' if got == expected else f'NOT exact: {len(got)} vs {len(expected)} rows'}")
            sb.drop_restore(out["instance"]["name"])
        if seconds:
            print(f"restore: median {statistics.median(seconds):.2f} s, worst {max(seconds):.2f} s, "
                  f"exact to the committed row in {exact}/{a.runs} runs")
        buf = io.StringIO()
        t0 = time.monotonic()
        code = verify_backup.main(["--outputs", out_file, "--yes", "--output", "json"], stdout=buf)
        out = json.loads(buf.getvalue())
        print(f"verify_backup: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - t0:.2f} s "
              f"({'; '.join(out.get('details', []))})")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 CPUs, shared)")
    finally:
        control.down(d)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
