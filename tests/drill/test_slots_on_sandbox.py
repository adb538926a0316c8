"""Logical replication slots through a failover and a restore, on a real sandbox: a real CDC
consumer (pg_recvlogical, test_decoding) streams the primary's slot, the slots are backed up, the
primary's region dies, the failover recreates the slots on DR, the consumer continues there, and
the gap is counted row by row. One sandbox for the module (the failover test runs last)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from runbooks import backup_slots, recreate_slots, restore
from sandbox import control
from tests.helpers.sandbox import app_write, has_row, wait_for

EAST, WEST = "local-east", "local-west"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb(base_dir):
    sandbox = control.up(base_dir / "slots")
    with psycopg.connect(sandbox.dsn(EAST), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')")
        conn.execute("SELECT pg_create_logical_replication_slot('cdc_pgoutput', 'pgoutput')")
        conn.execute("CREATE PUBLICATION cdc_pub FOR TABLE drill_writes")
    yield sandbox
    control.down(sandbox.dir)


def run(module, sb, *args) -> tuple[int, dict]:
    out = io.StringIO()
    code = module.main(["--outputs", str(sb.dir / "outputs.json"), "--output", "json", *args], stdout=out)
    return code, json.loads(out.getvalue())


def rows(dsn: str) -> dict[str, float]:
    """id → commit-side write time (written_at, the server's clock_timestamp())."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {i: t.timestamp() for i, t in conn.execute("SELECT id, written_at FROM drill_writes").fetchall()}


def slots(dsn: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {n: (p, c) for n, p, c in conn.execute(
            "SELECT slot_name, plugin, confirmed_flush_lsn::text FROM pg_replication_slots "
            "WHERE slot_type = 'logical'").fetchall()}


def confirmed_caught_up(sb, slot: str) -> bool:
    with psycopg.connect(sb.dsn(EAST), autocommit=True) as conn:
        return conn.execute("SELECT confirmed_flush_lsn >= pg_current_wal_insert_lsn() - 512 FROM "
                            "pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()[0]


def test_restore_gets_the_backed_up_slots_and_bad_input_changes_nothing(sb):
    code, out = run(backup_slots, sb, "--yes")
    assert code == 0, out
    assert out["captures"]["payments"]["slots"] == ["cdc", "cdc_pgoutput"]
    assert out["captures"]["payments"]["region"] == EAST
    code, out = run(restore, sb, "--yes", "--database", "payments", "--latest", "--name", "restore-slots")
    assert code == 0, out
    inst = out["instance"]
    assert slots(inst["dsn"]) == {}, "a point-in-time restore has no logical slot of its own"

    before = slots(inst["dsn"])
    code, bad = run(recreate_slots, sb, "--yes", "--database", "payments", "--instance", "no-such-restore")
    assert code == 2 and "no restored instance" in bad["error"], bad
    assert slots(inst["dsn"]) == before
    assert not list((sb.dir / "runbooks" / "runs").glob("recreate_slots-*")), "bad input wrote a journal"

    code, out = run(recreate_slots, sb, "--yes", "--database", "payments", "--instance", inst["name"])
    assert code == 0, out
    got = slots(inst["dsn"])
    assert {n: p for n, (p, _) in got.items()} == {"cdc": "test_decoding", "cdc_pgoutput": "pgoutput"}
    assert {g["slot"] for g in out["gaps"] if g["created"]} == {"cdc", "cdc_pgoutput"}
    with psycopg.connect(inst["dsn"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication WHERE pubname = 'cdc_pub'").fetchone()[0] == 1
        # the recreated slot decodes what is written on the restored server from now on
        conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES ('after-restore', now(), 'r')")
        changes = [r[0] for r in conn.execute("SELECT data FROM pg_logical_slot_peek_changes('cdc', NULL, NULL)")]
    assert any("after-restore" in c for c in changes), changes
    code, again = run(recreate_slots, sb, "--yes", "--database", "payments", "--instance", inst["name"])
    assert code == 0 and not any(g["created"] for g in again["gaps"]), again
    sb.drop_restore(inst["name"])


def test_the_aws_adapters_slot_port_on_real_postgresql(sb):
    """RdsSlots (runbooks/adapters/aws_slots.py) through PsycopgSql, its connection pointed at the
    sandbox's primary (no Secrets Manager, no TLS here): capture, list, create, the duplicate-create
    answer, publications — the SQL the AWS adapter runs, on a real server."""
    from contract import outputs as contract
    from contract.slot_backup import SlotDef, parse
    from runbooks.adapters import aws
    from runbooks.adapters.aws.slots import RdsSlots
    from runbooks.backups.slots import SlotTarget
    from runbooks.core.clock import FakeClock
    from tests.samples import pair_document

    outputs = contract.from_dict(pair_document())
    region = outputs.primary.name

    class LocalSql(aws.PsycopgSql):
        def _password(self, db, refresh=False):
            return "from-the-sandbox-passfile"

    sql = LocalSql(outputs, aws.Clients(), FakeClock(),
                   connect=lambda info: psycopg.connect(sb.dsn(EAST), autocommit=True))
    port = RdsSlots(outputs, sql.clients, sql)
    target = SlotTarget(region, "payments")
    captured = parse(port.capture(target))
    assert {s.name for s in captured.slots} >= {"cdc", "cdc_pgoutput"} and not captured.in_recovery
    assert "cdc_pub" in port.publications(target)
    try:
        at = port.create(target, SlotDef("aws_path", "test_decoding", None))
        assert port.existing(target)["aws_path"].plugin == "test_decoding"
        assert port.create(target, SlotDef("aws_path", "test_decoding", None)), "a second create answers, not fails"
        assert at
    finally:
        with psycopg.connect(sb.dsn(EAST), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot('aws_path') WHERE EXISTS "
                         "(SELECT 1 FROM pg_replication_slots WHERE slot_name = 'aws_path')")


def test_cdc_consumer_continues_on_dr_after_the_failover_and_the_gap_is_exact(sb):
    consumer = sb.cdc("cdc")
    consumer.start(EAST)
    a = [f"a-{i:03d}" for i in range(20)]
    for i in a:
        app_write(sb, EAST, i)
    wait_for(lambda: set(a) <= set(consumer.changes()), 20, "the consumer received the first rows")
    wait_for(lambda: confirmed_caught_up(sb, "cdc"), 20, "the consumer confirmed them")
    code, out = run(backup_slots, sb, "--yes")  # the scheduled backup: the consumer is caught up
    assert code == 0, out
    consumer.stop()  # the CDC connector is down for a while: the writes below are never streamed on EAST
    b = [f"b-{i:03d}" for i in range(15)]
    for i in b:
        app_write(sb, EAST, i)
    wait_for(lambda: has_row(sb, WEST, b[-1]), 20, "DR replayed the rows the consumer missed")
    sb.kill_region(EAST)

    proc = subprocess.run([sys.executable, "-m", "runbooks.failover", "--outputs", str(sb.dir / "outputs.json"),
                           "--yes", "--output", "json"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, result
    step = next(s for s in result["steps"] if s["name"] == "slots:payments")
    assert step["status"] == "done" and "re-read" in step["result"], step
    names = [s["name"] for s in result["steps"]]
    assert names.index("promote:payments") < names.index("slots:payments") < names.index("dns:payments")
    gaps = {g["slot"]: g for g in result["cdc_slots"]["payments"]["gaps"]}
    assert set(gaps) == {"cdc", "cdc_pgoutput"} and gaps["cdc"]["gap_bytes"] > 0

    consumer.start(WEST)  # the connector, reconfigured to the DNS name, now reaches DR
    c = [f"c-{i:03d}" for i in range(10)]
    for i in c:
        assert app_write(sb, WEST, i) == WEST
    wait_for(lambda: set(c) <= set(consumer.changes()), 20, "the consumer received DR's writes")
    consumer.stop()

    seen = set(consumer.changes())
    on_dr = rows(sb.dsn(WEST))
    never_seen = set(on_dr) - seen
    phantoms = seen - set(on_dr)
    assert set(a) <= seen and set(c) <= seen, "the consumer lost a row written while it streamed"
    assert never_seen == set(b), f"the gap is exactly the rows written while the consumer was behind: " \
                                 f"{sorted(never_seen)[:5]} vs {sorted(b)[:5]}"
    assert not phantoms, f"the consumer saw rows DR does not have: {sorted(phantoms)[:5]}"
    since = gaps["cdc"]["reread_since"]
    assert since is not None
    bound = time.mktime(time.strptime(since[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert all(on_dr[i] >= bound for i in never_seen), "a row to re-read was committed before the reported bound"
    print(f"\nCDC gap: {len(never_seen)} rows never streamed (re-read from the tables), {len(phantoms)} phantom; "
          f"{gaps['cdc']['gap_bytes']} bytes of WAL; slots step {step['end'] - step['start']:.3f} s")


def test_a_switchover_with_the_consumer_caught_up_loses_no_change(fresh):
    """Planned: the slot step reads the fenced source's live slot, so a consumer that confirmed all
    it was sent before the fence re-reads nothing: every row is streamed exactly once across regions."""
    sb = fresh
    with psycopg.connect(sb.dsn(EAST), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('cdc', 'test_decoding')")
    consumer = sb.cdc("cdc")
    consumer.start(EAST)
    before = [f"s-{i:03d}" for i in range(20)]
    for i in before:
        app_write(sb, EAST, i)
    wait_for(lambda: set(before) <= set(consumer.changes()), 20, "the consumer received the rows")
    wait_for(lambda: confirmed_caught_up(sb, "cdc"), 20, "the consumer confirmed them")
    consumer.stop()
    proc = subprocess.run([sys.executable, "-m", "runbooks.switchover", "--outputs", str(sb.dir / "outputs.json"),
                           "--yes", "--output", "json"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, result
    assert "live slots" in result["cdc_slots"]["payments"]["definitions_from"]
    consumer.start(WEST)
    after = [f"t-{i:03d}" for i in range(10)]
    for i in after:
        assert app_write(sb, WEST, i) == WEST
    wait_for(lambda: set(after) <= set(consumer.changes()), 20, "the consumer received DR's writes")
    consumer.stop()
    seen = consumer.changes()
    on_dr = rows(sb.dsn(WEST))
    assert set(on_dr) - set(seen) == set(), "a planned switchover left changes the consumer never saw"
    assert sorted(seen) == sorted(set(seen)), "a change was streamed twice"
    (gap,) = result["cdc_slots"]["payments"]["gaps"]
    print(f"\nswitchover CDC gap: 0 rows, {gap['gap_bytes']} bytes of WAL (checkpoint and end-of-recovery records)")
