"""Kafka topic backups: the Parquet layout read back exactly, the range selection and its
completeness checks, retention per topic class, and the replay runbook through its CLI on an
in-memory cluster: exact replay, a lost record caught, and every refusal changing nothing."""

from __future__ import annotations

import io
import json

import pytest

from contract import kafka_backup as kb, outputs as contract
from runbooks import kafka_replay
from runbooks.backups.ports import KafkaBackupPort
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.fakes import FakeWorld, backup_ports
from tests.helpers.kafka_backup import T0, FakeCluster, backup, rec, source_records
from tests.samples import pair_document

P = "us-east-1"


class MemStore:
    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put(self, key, data):
        self.objects[key] = data

    def get(self, key):
        return self.objects.get(key)

    def list(self, prefix):
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, key):
        self.objects.pop(key, None)

    def describe(self):
        return "memory"


# ---- layout and Parquet --------------------------------------------------------------------------


def test_parquet_round_trip_keeps_nulls_empties_and_headers_exactly():
    rs = [kb.Record(0, 0, 1, None, None), kb.Record(0, 1, 2, b"", b"", (("a", None), ("a", b""))),
          kb.Record(0, 2, 3, b"\x00\xff", b"x" * 1000, (("h", b"v"),))]
    assert kb.decode(kb.encode(rs)) == rs
    # a null and an empty key are different records
    assert rs[0].digest() != kb.Record(0, 0, 1, b"", None).digest()
    with pytest.raises(ValueError, match="one partition"):
        kb.encode([rec(0, 0, T0), rec(1, 0, T0)])


def test_keys_are_partitioned_by_topic_and_hour():
    key = kb.file_key("orders", 3, 42, 1_780_002_345_000)
    assert key == "kafka/topic=orders/year=2026/month=05/day=28/hour=21/orders+3+00000000000000000042.parquet"
    assert kb.parse_file_key(key) == ("orders", 3, 42)
    with pytest.raises(kb.BackupFormatError):
        kb.parse_file_key("kafka/topic=orders/x.parquet")
    with pytest.raises(ValueError, match="topic names"):
        kb.topic_prefix("bad/../topic")


def test_a_damaged_file_is_named():
    with pytest.raises(kb.BackupFormatError, match="kafka/x.parquet: not a readable Parquet"):
        kb.decode(b"not parquet", "kafka/x.parquet")


# ---- selection and what proves it complete ------------------------------------------------------------


def test_selection_keeps_exactly_the_records_in_the_range_across_hours():
    store = MemStore()
    records = source_records()
    backup(store, "orders", records, caught_up_at=T0 + 10)
    start, end = T0 - 2400, T0 - 600
    sel = kb.select(store, "orders", start, end)
    want = [r for r in records if start * 1000 <= r.timestamp_ms < end * 1000]
    assert sel.problems == []
    assert sel.count == len(want) == 30
    assert [r for p in sorted(sel.records) for r in sel.records[p]] == sorted(want, key=lambda r: (r.partition, r.offset))
    assert sel.files >= 4  # the range crosses an hour boundary in each partition


def test_a_missing_offset_is_a_problem_not_a_silent_gap():
    store = MemStore()
    records = [r for r in source_records() if not (r.partition == 1 and r.offset == 20)]
    backup(store, "orders", records, caught_up_at=T0 + 10)
    sel = kb.select(store, "orders", T0 - 3000, T0 - 600)
    assert sel.problems == ["partition 1: 1 offset(s) between 5 and 24 are not in the backup (compaction, "
                            "transactions, or files lost)"]


def test_a_backup_that_starts_late_or_has_not_reached_the_end_is_refused():
    store = MemStore()
    late = [r for r in source_records() if r.offset >= 10]  # offsets 0-9 expired or never backed up
    backup(store, "orders", late, caught_up_at=None)
    sel = kb.select(store, "orders", T0 - 3600, T0 - 600)
    assert any("nothing older is held" in p for p in sel.problems), sel.problems
    sel = kb.select(store, "orders", T0 - 1200, T0 + 3000)  # the newest record is T0 + 2280
    assert any("does not reach" in p for p in sel.problems), sel.problems
    # the watermark proves the end: caught up after the range
    backup(store, "orders", late, caught_up_at=T0 + 3100)
    assert not any("does not reach" in p for p in kb.select(store, "orders", T0 - 1200, T0 + 3000).problems)


def test_a_record_filed_in_a_later_hour_is_found_and_held_once():
    store = MemStore()
    records = source_records(partitions=1)
    backup(store, "orders", records, caught_up_at=T0 + 10)
    # the same first records rewritten into the next hour's file (a connector files by its own clock)
    late = records[:3]
    store.put(f"{kb.hour_prefix('orders', T0)}orders+0+{0:020d}.parquet", kb.encode(late))
    sel = kb.select(store, "orders", T0 - 3600, T0 - 3000)
    assert sel.count == 5 and sel.duplicates == 3 and sel.problems == []


def test_retention_per_topic_class_and_for_offset_snapshots():
    store = MemStore()
    day = 86400
    now = T0 + 40 * day
    backup(store, "trades.executed", [rec(0, 0, now - 31 * day), rec(0, 1, now - 29 * day)])
    backup(store, "clicks", [rec(0, 0, now - 8 * day), rec(0, 1, now - 1 * day)])
    store.put(kb.offsets_key(now - 8 * day), b"{}")
    store.put(kb.offsets_key(now - 6 * day), b"{}")
    gone = kb.expired(store, {"trades.executed": "critical", "clicks": "standard"}, now,
                      classes={"critical": 30, "standard": 7})
    assert sorted(k.split("/")[1] for k in gone) == ["offsets", "topic=clicks", "topic=trades.executed"]
    assert len(gone) == 3


def test_retention_classes_refuse_a_critical_class_below_30_days():
    assert kb.check_classes({"critical": 30, "standard": 7}) == {"critical": 30, "standard": 7}
    with pytest.raises(ValueError, match="document 004 keeps critical topics 30 days"):
        kb.check_classes({"critical": 14})
    with pytest.raises(ValueError, match="not a whole number of days"):
        kb.check_classes({"standard": 0})


# ---- the replay runbook ---------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path):
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(pair_document()))
    world = FakeWorld(contract.load_file(doc_path))
    world.clock.now = T0 + 100
    state = tmp_path / "state"
    ports = backup_ports(world, state)
    store, cluster = MemStore(), FakeCluster()
    records = source_records()
    cluster.topics["orders"] = {p: list(rs) for p, rs in kb.group_records(records).items()}
    backup(store, "orders", records, caught_up_at=T0 + 10)
    ports.kafka_backups = KafkaBackupPort(store=store, cluster=lambda region: cluster, source_region=P)

    def run(*extra):
        out = io.StringIO()
        code = kafka_replay.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json", "--yes",
                                  *extra], ports_factory=lambda o, c: ports, clock=world.clock,
                                 stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())
    run.store, run.ports, run.clock = store, ports, world.clock
    return run, cluster, state, records


RANGE = ["--topic", "orders", "--from-time", str(T0 - 2400), "--to-time", str(T0 - 600)]


def test_replay_writes_exactly_the_range_and_says_so(env):
    run, cluster, state, records = env
    code, out = run(*RANGE, "--target-topic", "orders-restored")
    assert code == EXIT_OK, out
    assert (out["exact"], out["expected"], out["landed"], out["missing"], out["extra"]) == (True, 30, 30, 0, 0)
    want = [r.digest() for r in records if (T0 - 2400) * 1000 <= r.timestamp_ms < (T0 - 600) * 1000]
    got = [r.digest() for rs in cluster.topics["orders-restored"].values() for r in rs]
    assert sorted(got) == sorted(want)
    assert [a[0] for a in cluster.actions] == ["create", "produce"]
    report = json.loads(open(out["report"]["json"]).read())
    assert any(m["name"] == "regionpair_kafka_replay_exact" and m["value"] == 1.0 for m in report["metrics"])


def test_a_replay_that_loses_records_fails_its_verification(env):
    run, cluster, state, _ = env
    cluster.drop_every = 7
    code, out = run(*RANGE, "--target-topic", "orders-restored")
    assert code == EXIT_FAILED, out
    assert out["exact"] is False and out["missing"] == 5 and out["extra"] == 0, out
    assert "VERIFICATION FAILED" in json.dumps(out)


def test_refusals_change_nothing(env):
    run, cluster, state, _ = env
    cases = [
        ([*RANGE, "--target-topic", "orders"], "is the source topic"),
        ([*RANGE, "--target-topic", "orders", "--region", "us-west-2"], "is the source topic (in us-west-2)"),
        (["--topic", "nope", "--from-time", "0", "--to-time", "1", "--target-topic", "x"], "no backup of that topic"),
        (["--topic", "orders", "--from-time", str(T0), "--to-time", str(T0 - 1), "--target-topic", "x"],
         "is not before"),
        (["--topic", "orders", "--from-time", "2026-05-28T10:00:00", "--to-time", str(T0), "--target-topic", "x"],
         "has no timezone"),
        (["--topic", "orders", "--from-time", str(T0 - 600), "--to-time", str(T0 + 3600), "--target-topic", "x"],
         "does not reach"),
        (["--topic", "orders", "--from-time", str(T0 + 3600 * 5), "--to-time", str(T0 + 3600 * 6),
          "--target-topic", "x"], "does not reach"),
        ([*RANGE, "--target-topic", "bad/name"], "topic names"),
    ]
    for args, why in cases:
        code, out = run(*args)
        assert code == EXIT_BAD_INPUT and why in out["error"], (args, out)
    cluster.topics["busy"] = {0: [rec(0, 0, T0)], 1: []}
    code, out = run(*RANGE, "--target-topic", "busy")
    assert code == EXIT_BAD_INPUT and "already holds 1 record" in out["error"], out
    cluster.topics["narrow"] = {0: []}
    code, out = run(*RANGE, "--target-topic", "narrow")
    assert code == EXIT_BAD_INPUT and "has 1 partitions, the source 2" in out["error"], out
    assert cluster.actions == [] and not (state / "runs").exists()


def test_into_a_non_empty_target_only_what_this_run_appends_is_verified(env):
    run, cluster, state, _ = env
    cluster.topics["busy"] = {0: [rec(0, 0, T0)], 1: []}
    code, out = run(*RANGE, "--target-topic", "busy", "--allow-non-empty")
    assert code == EXIT_OK and out["exact"] is True and out["landed"] == 30, out
    assert len(cluster.topics["busy"][0]) == 16


def test_the_source_topic_needs_both_flags(env):
    run, cluster, state, _ = env
    code, out = run(*RANGE, "--target-topic", "orders", "--into-source-topic")
    assert code == EXIT_BAD_INPUT and "already holds" in out["error"], out
    code, out = run(*RANGE, "--target-topic", "orders", "--into-source-topic", "--allow-non-empty")
    assert code == EXIT_OK and out["exact"] is True, out


def test_dry_run_shows_the_counts_and_changes_nothing(env):
    run, cluster, state, _ = env
    code, out = run(*RANGE, "--target-topic", "orders-restored", "--dry-run")
    assert code == EXIT_OK and out["result"] == "dry-run"
    assert any("30 record(s)" in line for line in out["replay"]), out
    assert cluster.actions == []


def test_an_adapter_without_the_port_refuses(env, tmp_path):
    run, cluster, state, _ = env
    doc_path = tmp_path / "outputs2.json"
    doc_path.write_text(json.dumps(pair_document()))
    world = FakeWorld(contract.load_file(doc_path))
    ports = backup_ports(world, tmp_path / "s2")
    out = io.StringIO()
    code = kafka_replay.main(["--outputs", str(doc_path), "--output", "json", "--yes", *RANGE, "--target-topic", "x"],
                             ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
    assert code == EXIT_BAD_INPUT and "no Kafka backup port" in json.loads(out.getvalue())["error"]


def test_a_connector_shaped_file_is_read_with_the_partition_from_its_name():
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"offset": [7, 8], "timestamp": [1000, 2000], "key": [b"a", None], "value": [b"x", b"y"],
                      "headers": [[{"key": "h", "value": b"1"}], []]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    got = kb.decode(buf.getvalue(), "kafka/topic=t/.../t+3+00000000000000000007.parquet", partition=3)
    assert got == [kb.Record(3, 7, 1000, b"a", b"x", (("h", b"1"),)), kb.Record(3, 8, 2000, None, b"y", ())]
    no_offset = pa.table({"timestamp": [1], "key": [b"a"], "value": [b"x"]})
    buf = io.BytesIO()
    pq.write_table(no_offset, buf)
    with pytest.raises(kb.BackupFormatError, match="without column.s. offset"):
        kb.decode(buf.getvalue(), "k", partition=0)


def test_the_replay_names_where_the_groups_were_before_the_range(env):
    run, cluster, state, _ = env
    run.store.put(kb.offsets_key(T0 - 3000), json.dumps({"at": T0 - 3000, "groups": {
        "billing": {"orders": {"0": 5, "1": 7}}, "other": {"clicks": {"0": 1}}}}).encode())
    run.store.put(kb.offsets_key(T0 - 2000), json.dumps({"at": T0 - 2000, "groups": {
        "billing": {"orders": {"0": 99}}}}).encode())  # after --from-time: not the one
    code, out = run(*RANGE, "--target-topic", "orders-restored")
    assert code == EXIT_OK, out
    assert out["group_offsets_before"]["groups"] == {"billing": {"0": 5, "1": 7}}
    assert out["group_offsets_before"]["at"][:19] == kb._iso(T0 - 3000)[:19]


def test_the_sandbox_worker_refuses_a_topic_without_a_known_class_or_no_topic():
    from sandbox import kafka_backup as _kafka_backup
    from sandbox.errors import SandboxError
    assert _kafka_backup.parse_topics(["orders=critical", "clicks"]) == {"orders": "critical", "clicks": "standard"}
    with pytest.raises(SandboxError, match="give TOPIC=CLASS .critical or standard."):
        _kafka_backup.parse_topics(["orders=gold"])
    with pytest.raises(SandboxError, match="no --topic to back up"):
        _kafka_backup.parse_topics([])


def test_offsets_snapshot_runbook_keeps_the_groups_and_refuses_an_unknown_topic(env, tmp_path):
    from runbooks import kafka_offsets
    run, cluster, state, _ = env
    cluster.groups = {"billing": {"orders": {"0": 12, "1": 3}}, "clicks-app": {"clicks": {"0": 1}}}

    def offsets(*extra):
        out = io.StringIO()
        code = kafka_offsets.main(["--outputs", str(tmp_path / "outputs.json"), "--state-dir", str(state), "--output",
                                   "json", "--yes", *extra], ports_factory=lambda o, c: run.ports,
                                  clock=run.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())
    before = set(run.store.objects)
    code, out = offsets("--topic", "nope")
    assert code == EXIT_BAD_INPUT and "no such topic" in out["error"] and set(run.store.objects) == before
    code, out = offsets("--topic", "orders")
    assert code == EXIT_OK and out["groups"] == {"billing": {"orders": {"0": 12, "1": 3}}}, out
    doc = json.loads(run.store.objects[out["key"]])
    assert doc["groups"] == out["groups"] and out["key"].startswith("kafka/offsets/year=")
    assert kb.offsets_at(run.store, run.clock.time())["groups"] == out["groups"]


def test_a_crash_after_writing_resumes_to_the_verification_and_a_half_write_is_never_repeated(env):
    from tests.fakes import Crash
    run, cluster, state, _ = env
    real = cluster.produce

    def produce_then_crash(topic, records, progress=None):
        real(topic, records[:cut[0]] if cut[0] is not None else records)
        raise Crash()
    cluster.produce = produce_then_crash
    cut = [None]  # everything written, then the process dies before the verification
    with pytest.raises(Crash):
        run(*RANGE, "--target-topic", "restored", "--run-id", "r1")
    cluster.produce = real
    code, out = run(*RANGE, "--target-topic", "restored", "--run-id", "r1", "--resume")
    assert code == EXIT_OK and out["exact"] is True and out["landed"] == 30, out
    assert [a[0] for a in cluster.actions].count("produce") == 1  # written once, by the crashed run
    # half written, then a crash: the rerun refuses to write the range a second time
    cluster.produce = produce_then_crash
    cut[0] = 10
    with pytest.raises(Crash):
        run(*RANGE, "--target-topic", "half", "--run-id", "r2")
    cluster.produce = real
    code, out = run(*RANGE, "--target-topic", "half", "--run-id", "r2", "--resume")
    assert code != EXIT_OK and "writing again would duplicate" in json.dumps(out), out
    assert sum(len(rs) for rs in cluster.topics["half"].values()) == 10
