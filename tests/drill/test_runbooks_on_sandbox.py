"""The runbooks' CLIs against a real sandbox: crash anywhere and rerun, concurrent runs, a
restarted old primary that stays fenced, bad input that changes nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers.sandbox import app_write, wait_for

EAST, WEST = "local-east", "local-west"
ROOT = Path(__file__).resolve().parents[2]


def runbook(name: str, outputs: Path, *extra: str, timeout: float = 120) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", f"runbooks.{name}", "--outputs", str(outputs), "--yes",
                           "--output", "json", *extra], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {"stderr": proc.stderr}


def failed_over(sb) -> bool:
    st = sb.status()
    return (st[WEST]["database"]["role"] == "primary" and not st[WEST]["database"]["fenced"]
            and st[EAST]["database"]["fenced"] and sb.record("payments") == WEST)


def journal_lines(sb) -> int:
    runs = sb.dir / "runbooks" / "runs"
    return sum(len(p.read_text().splitlines()) for p in runs.glob("*.jsonl")) if runs.is_dir() else 0


@pytest.mark.parametrize("kill_after_lines", [1, 3, 5, 7, 9, 11])
def test_sigkill_of_failover_at_any_point_then_rerun_finishes(fresh, kill_after_lines):
    sb = fresh
    outputs = sb.dir / "outputs.json"
    proc = subprocess.Popen([sys.executable, "-m", "runbooks.failover", "--outputs", str(outputs), "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 60
    while journal_lines(sb) < kill_after_lines and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert proc.poll() is None, "the failover finished before the test could kill it"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    runs = list((sb.dir / "runbooks" / "runs").glob("failover-*.jsonl"))
    assert '"run-end"' not in runs[0].read_text(), "killed after the run had ended"
    code, out = runbook("failover", outputs)
    assert code == 0, out
    assert out["run_id"] == runs[0].stem, "the rerun continued the killed run"
    assert failed_over(sb)
    assert app_write(sb, WEST, f"after-{kill_after_lines}") == WEST
    code, out = runbook("failover", outputs)  # and once more: nothing left to do
    assert code == 0 and out["result"] == "nothing-to-do"


def active(sb, region: str) -> set[str]:
    """ACTIVE_REGION of every copy in the region's (stand-in) cluster."""
    return {c["regionpair-active-endpoints"]["data"]["ACTIVE_REGION"] for c in sb.configmaps(region).values()}


def restarted_for(sb, region: str) -> dict[str, str | None]:
    """ns/name → the run id each Deployment of the region's cluster was last restarted for."""
    return {f"{ns}/{name}": d["spec"]["template"]["metadata"]["annotations"].get("regionpair.io/restarted-for")
            for ns, held in sb.deployments(region).items() for name, d in held.items()}


def test_old_primary_restarted_after_failover_accepts_no_write_and_the_failback_fixes_its_cluster(fresh):
    sb = fresh
    sb.kill_region(EAST)
    code, out = runbook("failover", sb.dir / "outputs.json")
    assert code == 0, out
    fence = next(s for s in out["steps"] if s["name"] == "fence:payments")
    assert "stopped" in fence["result"]  # recorded while the region was down
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[f"endpoints:{WEST}"]["status"] == "done" and active(sb, WEST) == {WEST}
    assert steps[f"endpoints:{EAST}"]["status"] == "best-effort-failed"
    assert "correct them before any failback" in steps[f"endpoints:{EAST}"]["result"]
    assert steps[f"restart-deployments:{WEST}"]["status"] == "done"
    assert set(restarted_for(sb, WEST).values()) == {out["run_id"]}
    assert steps[f"restart-deployments:{EAST}"]["status"] == "best-effort-failed"
    sb.start_database(EAST)
    with pytest.raises(psycopg.OperationalError, match="rejects|no pg_hba"):
        app_write(sb, EAST, "split-brain")
    with psycopg.connect(sb.dsn(EAST, "payments", local=True), autocommit=True) as admin:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            admin.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES ('x', now(), 'x')")
    assert sb.record("payments") == WEST
    # the region's cluster returns with its copies stale: they still send its applications to the fence
    sb.start_cluster(EAST)
    assert active(sb, EAST) == {EAST}
    code, out = runbook("failback", sb.dir / "outputs.json")
    assert code == 0, out
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[f"endpoints-current:{EAST}"]["status"] == "done"  # corrected to DR before anything moved
    assert steps[f"endpoints-current:{EAST}"]["end"] <= steps["promote:payments"]["start"]
    assert active(sb, EAST) == active(sb, WEST) == {EAST}
    # home's Deployments, never restarted during the outage, are restarted once its copies point home
    assert set(restarted_for(sb, EAST).values()) == set(restarted_for(sb, WEST).values()) == {out["run_id"]}
    assert steps[f"restart-deployments:{EAST}"]["start"] >= steps[f"endpoints:{EAST}"]["end"]


def test_a_second_concurrent_run_is_refused_and_told_who_holds_the_lock(fresh):
    sb = fresh
    lock = sb.dir / "runbooks" / "lock.json"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = {"run_id": "failback-20261122T000000-abcd", "runbook": "failback", "who": "oncall@ops",
              "since": "2026-11-22T00:00:00.000Z", "host": socket.gethostname(), "pid": os.getpid()}
    lock.write_text(json.dumps(holder))
    code, out = runbook("failover", sb.dir / "outputs.json")
    assert code == 3
    assert "oncall@ops" in out["error"] and "2026-11-22T00:00:00.000Z" in out["error"]
    assert sb.status()[EAST]["database"]["role"] == "primary" and not sb.is_fenced(EAST)


def test_bad_input_is_refused_and_changes_nothing(fresh, tmp_path):
    sb = fresh
    doc = json.loads((sb.dir / "outputs.json").read_text())
    del doc["regions"][WEST]["databases"]["payments"]["endpoint"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, out = runbook("failover", bad)
    assert code == 2 and f"regions.{WEST}.databases.payments.endpoint" in out["error"]
    code, out = runbook("failover", sb.dir / "outputs.json", "--database", "ledger")
    assert code == 2 and "ledger" in out["error"]
    proc = subprocess.run([sys.executable, "-m", "runbooks.failover", "--stack", "staging", "--yes"],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PATH="/usr/bin:/bin"))
    assert proc.returncode == 2 and "pulumi CLI is not on PATH" in proc.stdout
    assert sb.status()[EAST]["database"]["role"] == "primary" and not sb.is_fenced(EAST)
    assert not (sb.dir / "runbooks" / "lock.json").exists()


def test_failback_on_a_pair_that_never_failed_over_changes_nothing_on_real_servers(fresh):
    sb = fresh
    code, out = runbook("failback", sb.dir / "outputs.json")
    assert code == 0, out
    assert out["result"] == "nothing-to-do" and "nothing to fail back" in out["note"]
    st = sb.status()
    assert st[EAST]["database"]["role"] == "primary" and not st[EAST]["database"]["fenced"]
    assert st[WEST]["database"]["role"] == "replica" and not st[WEST]["database"]["fenced"]
    assert sb.record("payments") == EAST and app_write(sb, EAST, "still-home") == EAST


def test_failover_then_failback_on_real_servers_loses_nothing(fresh):
    sb = fresh
    for i in range(20):
        app_write(sb, EAST, f"before-{i}")
    code, out = runbook("failover", sb.dir / "outputs.json")
    assert code == 0, out
    assert active(sb, EAST) == active(sb, WEST) == {WEST}  # both clusters reachable: both moved
    failover_run = out["run_id"]
    assert set(restarted_for(sb, EAST).values()) == set(restarted_for(sb, WEST).values()) == {failover_run}
    for i in range(20):
        app_write(sb, WEST, f"during-{i}")
    code, out = runbook("failback", sb.dir / "outputs.json")
    assert code == 0, out
    assert active(sb, EAST) == active(sb, WEST) == {EAST}
    data = sb.configmaps(WEST)["payments"]["regionpair-active-endpoints"]
    assert data["data"]["DB_PAYMENTS_HOST"] == sb.state.addresses[EAST]
    assert data["annotations"]["regionpair.io/updated-by"] == out["run_id"]
    st = sb.status()
    assert st[EAST]["database"]["role"] == "primary" and st[WEST]["database"]["role"] == "replica"
    assert sb.record("payments") == EAST
    with psycopg.connect(sb.dsn(EAST, "payments", local=True), autocommit=True) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM drill_writes")}
    assert {f"before-{i}" for i in range(20)} | {f"during-{i}" for i in range(20)} <= ids
    assert app_write(sb, EAST, "home-again") == EAST
    # both runs told people, through the sandbox's notification sink
    sink = [json.loads(line) for line in (sb.dir / "notifications.jsonl").read_text().splitlines()]
    assert [n["subject"].split(":")[0] for n in sink] == ["regionpair failover"] * 2 + ["regionpair failback"] * 2
    assert "complete, PASSED; RTO" in sink[1]["subject"] and failover_run in sink[1]["message"]
    wait_for(lambda: sb.status()[WEST]["database"]["replication"].get("receiver") == "streaming", 10,
             "DR streams from home again")


def test_fence_and_promote_go_through_the_runbooks_own_sessions(fresh):
    """The adapter fences and promotes through its kept admin sessions: the fence terminates the
    clients' sessions but not the one it acts through, and no new session is opened for either."""
    from contract.outputs import load_file
    from runbooks.adapters.sandbox_wiring import sandbox_ports
    from runbooks.core.clock import SystemClock

    sb = fresh
    client = psycopg.connect(sb.dsn(EAST, "payments", admin=False), autocommit=True)
    ports = sandbox_ports(load_file(sb.dir / "outputs.json"), SystemClock())
    try:
        pid = {r: ports.sql.conns.run(r, "payments", lambda c: c.info.backend_pid) for r in (EAST, WEST)}
        said = ports.db.fence(EAST, "payments")
        # at least the client's; a session closed just before (the set-up's own) can still be
        # listed until its backend exits, and is counted if it was signalled
        terminated = re.search(r"(\d+) client sessions terminated", said)
        assert terminated and int(terminated.group(1)) >= 1, said
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")  # the client's session was terminated
        assert ports.db.promote(WEST, "payments").startswith("promoted payments in local-west")
        after = {r: ports.sql.conns.run(r, "payments", lambda c: c.info.backend_pid) for r in (EAST, WEST)}
        assert after == pid, "the runbook's sessions were replaced: fencing or promotion went through new ones"
        assert ports.db.describe(EAST, "payments").fenced
        assert ports.sql.canary_write(WEST, "payments").startswith("canary")
    finally:
        client.close()
        ports.db.close()


def test_failback_into_a_region_back_empty_killed_mid_reseed_then_rerun_brings_every_record_home(base_dir):
    """The home region is lost and restarted with an empty Kafka cluster and an empty bucket; the
    failback re-seeds both from DR; it is SIGKILLed once the reversed flows run, and the rerun
    finishes the job: home holds every record and object written before and during the outage."""
    import tempfile

    from confluent_kafka import Consumer, Producer, TopicPartition

    from sandbox import buckets, control, kafka_replication, param_store
    from sandbox.buckets import bucket_name

    sb = control.up(Path(tempfile.mkdtemp(prefix="failback-reseed-", dir=base_dir)),
                    systems=("postgres", "kafka", "s3"))
    try:
        outputs = sb.dir / "outputs.json"

        def write(region: str, prefix: str, records: int, objects: int) -> None:
            producer = Producer({"bootstrap.servers": sb.kafka_bootstrap(region), "acks": "all", "log_level": 0})
            for i in range(records):
                producer.produce("orders", json.dumps({"id": f"{prefix}-{i}"}).encode(), f"k{i % 8}".encode())
            assert producer.flush(10) == 0
            s3 = buckets.s3_client(f"http://{sb.state.addresses[region]}:{sb.state.moto_port}")
            for i in range(objects):
                s3.put_object(Bucket=bucket_name(region), Key=f"drill/{prefix}-{i}", Body=b"x")

        write(EAST, "before", 300, 40)
        # the consumer group has processed each partition (the failover gives it DR offsets from
        # MirrorMaker 2's checkpoints; a group behind the head may get none: docs/sandbox.md)
        group = Consumer({"bootstrap.servers": sb.kafka_bootstrap(EAST), "group.id": "ledger", "log_level": 0})
        group.commit(offsets=[TopicPartition("orders", int(tp.split(":")[1]), hi)
                              for tp, (_lo, hi) in sb.kafka_offsets(EAST).items()], asynchronous=False)
        group.close()
        wait_for(lambda: len(sb.kafka_record_ids(WEST)) == 300 and len(sb.object_keys(WEST)) == 40, 30,
                 "east's records and objects replicated to west")
        wait_for(lambda: len((sb.kafka_checkpoints(EAST, WEST).get("ledger") or {}).get("partitions", {})) == 4,
                 60, "MirrorMaker 2 to checkpoint the group on every partition", interval_s=0.5)
        sb.kill_region(EAST, cut_link=True)
        code, out = runbook("failover", outputs)
        assert code == 0, out
        write(WEST, "during", 100, 20)
        sb.heal()
        assert "an empty Kafka cluster" in sb.start_region(EAST)
        assert sb.kafka_record_ids(EAST) == set() and sb.object_keys(EAST) == set()

        proc = subprocess.Popen([sys.executable, "-m", "runbooks.failback", "--outputs", str(outputs), "--yes"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        runs = sb.dir / "runbooks" / "runs"
        # killed once the database is rebuilt (a kill inside pg_rewind/pg_basebackup is another
        # story: their processes outlive the runbook) and the reversed flows have started
        def started() -> bool:
            lines = [line for p in runs.glob("failback-*.jsonl") for line in p.read_text().splitlines()]
            return any('"step-end"' in line and '"rebuild:payments"' in line for line in lines) and \
                any('"objects-seed:replication"' in line for line in lines)
        wait_for(started, 60, "the failback to rebuild home's database and start the reversed flows")
        assert proc.poll() is None, "the failback finished before the test could kill it"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        [journal] = runs.glob("failback-*.jsonl")
        assert '"run-end"' not in journal.read_text()
        code, out = runbook("failback", outputs)
        assert code == 0, out
        assert out["run_id"] == journal.stem, "the rerun continued the killed run"
        kafka_lines = [x for x in journal.read_text().splitlines() if "kafka-replicate" in x]
        assert "it gets every record local-west holds, from the earliest offset" in journal.read_text(), kafka_lines

        want = {f"before-{i}" for i in range(300)} | {f"during-{i}" for i in range(100)}
        assert sb.kafka_record_ids(EAST) >= want
        # the re-seed copied each partition in one burst: MirrorMaker 2 still wrote each partition's
        # first offset sync (with offset.lag.max 10 one was replaced by a later one, and the group,
        # behind the head there, could never be translated home: contract/mirrormaker2.py)
        syncs = kafka_replication.offset_syncs(sb.kafka_bootstrap(EAST), WEST)
        assert {tp: min(up for up, _ in pairs) for tp, pairs in syncs.items() if tp.startswith("orders:")} == \
            {f"orders:{p}": 0 for p in range(4)}, syncs
        assert {f"drill/before-{i}" for i in range(40)} | {f"drill/during-{i}" for i in range(20)} \
            <= sb.object_keys(EAST)
        assert sb.param(param_store.bootstrap_parameter("checkout")) == sb.kafka_bootstrap(EAST)
        assert sb.param(param_store.bucket_parameter()) == bucket_name(EAST)
        for kind in ("kafka", "s3"):
            st = sb.flow(kind)
            assert (st["source"], st["target"], st["running"]) == (EAST, WEST, True), (kind, st)
    finally:
        control.down(sb.dir)


def _tools_of(sb) -> list[str]:
    """pg_rewind / pg_basebackup processes working on this sandbox."""
    found = []
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = status.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ("pg_rewind" in cmd or "pg_basebackup" in cmd) and str(sb.dir) in cmd:
            found.append(cmd)
    return found


def test_failback_sigkilled_while_it_rebuilds_home_leaves_no_orphan_and_a_rerun_finishes(fresh):
    sb = fresh
    outputs = sb.dir / "outputs.json"
    for i in range(10):
        app_write(sb, EAST, f"before-{i}")
    code, out = runbook("failover", outputs)
    assert code == 0, out
    for i in range(10):
        app_write(sb, WEST, f"during-{i}")
    proc = subprocess.Popen([sys.executable, "-m", "runbooks.failback", "--outputs", str(outputs), "--yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    runs = sb.dir / "runbooks" / "runs"

    def rebuilt() -> bool:
        return any('"step-end"' in line and '"rebuild:payments"' in line
                   for p in runs.glob("failback-*.jsonl") for line in p.read_text().splitlines())
    # kill it while pg_rewind (or pg_basebackup) is running for it
    deadline = time.monotonic() + 60
    while not _tools_of(sb) and not rebuilt() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _tools_of(sb), "the rebuild's pg_rewind/pg_basebackup was not caught running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # killed with it (parent-death signal), not finishing on its own: unguarded, the pg_rewind of
    # this small database went on for 0.4 s, a pg_basebackup for much longer
    wait_for(lambda: not _tools_of(sb), 0.2, "pg_rewind/pg_basebackup to die with the killed runbook")
    code, out = runbook("failback", outputs, timeout=180)
    assert code == 0, out
    assert sb.status()[EAST]["database"]["role"] == "primary" and sb.record("payments") == EAST
    with psycopg.connect(sb.dsn(EAST, "payments", local=True), autocommit=True) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM drill_writes")}
    assert {f"before-{i}" for i in range(10)} | {f"during-{i}" for i in range(10)} <= ids
