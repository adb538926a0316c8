"""CDC slots through a failover on the sandbox, measured: the slot backup, the failover's slot step,
and the gap a real consumer (pg_recvlogical, test_decoding) is left with, row by row.

    .venv/bin/python benchmarks/cdc_slots.py [--runs 3] [--behind 50]

Each run: a fresh sandbox; a logical slot and its consumer on the primary; 50 rows streamed and
confirmed; ``backup_slots`` (timed); the consumer stops and ``--behind`` rows are written that it
never streams (a CDC connector that is down or lagging); the primary's region is killed; the
failover runbook (its ``slots`` step timed); the consumer restarts on DR; 20 rows written there.
Prints per run: rows the consumer never saw (must equal --behind: they are on DR but before the
recreated slot), rows it saw that DR lacks, DR rows after the slot it missed (must be 0), the gap in
WAL bytes, and the durations. Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from runbooks import backup_slots  # noqa: E402
from sandbox import control  # noqa: E402

EAST, WEST = "local-east", "local-west"


def _write(sb, region: str, ids: list[str]) -> None:
    with psycopg.connect(sb.dsn(region, "payments", admin=False), autocommit=True) as conn:
        for i in ids:
            conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES (%s, now(), 'b')", (i,))


def _until(what: str, predicate, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"gave up waiting for {what}")


def one_run(base: Path, n: int, behind: int) -> dict:
    sb = control.up(base / f"run{n}")
    try:
        with psycopg.connect(sb.dsn(EAST), autocommit=True) as conn:
            conn.execute("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')")
        consumer = sb.cdc("cdc")
        consumer.start(EAST)
        first = [f"a{n}-{i}" for i in range(50)]
        _write(sb, EAST, first)
        _until("the consumer to stream the first rows", lambda: set(first) <= set(consumer.changes()))
        with psycopg.connect(sb.dsn(EAST), autocommit=True) as conn:
            _until("the consumer to confirm", lambda: conn.execute(
                "SELECT confirmed_flush_lsn >= pg_current_wal_insert_lsn() - 512 FROM pg_replication_slots "
                "WHERE slot_name = 'cdc'").fetchone()[0])
        t = time.monotonic()
        code = backup_slots.main(["--outputs", str(sb.dir / "outputs.json"), "--yes", "--output", "json"],
                                 stdout=io.StringIO())
        backup_s = time.monotonic() - t
        assert code == 0
        consumer.stop()
        missed = [f"b{n}-{i}" for i in range(behind)]
        _write(sb, EAST, missed)
        with psycopg.connect(sb.dsn(WEST, local=True), autocommit=True) as conn:
            _until("DR to replay them", lambda: conn.execute(
                "SELECT count(*) FROM drill_writes WHERE id = %s", (missed[-1],)).fetchone()[0] == 1)
        sb.kill_region(EAST)
        t = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "runbooks.failover", "--outputs", str(sb.dir / "outputs.json"),
                               "--yes", "--output", "json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
        failover_s = time.monotonic() - t
        result = json.loads(proc.stdout)
        step = next(s for s in result["steps"] if s["name"] == "slots:payments")
        consumer.start(WEST)
        after = [f"c{n}-{i}" for i in range(20)]
        _write(sb, WEST, after)
        _until("the consumer to stream DR's rows", lambda: set(after) <= set(consumer.changes()))
        consumer.stop()
        seen = set(consumer.changes())
        with psycopg.connect(sb.dsn(WEST, local=True), autocommit=True) as conn:
            on_dr = {r[0] for r in conn.execute("SELECT id FROM drill_writes").fetchall()}
        (gap,) = result["cdc_slots"]["payments"]["gaps"]
        return {"never_seen": len(on_dr - seen), "never_seen_is_the_behind_rows": (on_dr - seen) == set(missed),
                "phantoms": len(seen - on_dr), "missed_after_slot": len(set(after) - seen),
                "gap_bytes": gap["gap_bytes"], "backup_slots_s": backup_s, "failover_s": failover_s,
                "slot_step_s": step["end"] - step["start"], "exit": proc.returncode}
    finally:
        control.down(sb.dir)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--behind", type=int, default=50, help="rows written while the consumer is stopped")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="regionpair-bench-cdc-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        for n in range(a.runs):
            r = one_run(base, n, a.behind)
            print(f"run {n}: never seen {r['never_seen']} (= the {a.behind} rows written while it was stopped: "
                  f"{r['never_seen_is_the_behind_rows']}), phantoms {r['phantoms']}, missed after the slot "
                  f"{r['missed_after_slot']}; gap {r['gap_bytes']} bytes of WAL; backup_slots {r['backup_slots_s']:.2f} s, "
                  f"failover {r['failover_s']:.2f} s (exit {r['exit']}), its slots step {r['slot_step_s']:.3f} s")
        print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
