"""Kafka topic backup and time-range replay on the sandbox's real Apache Kafka: the backup worker
writes Parquet into the sandbox's backups store while records are produced; the replay runbook
(through its CLI, as an operator runs it) replays a time range into a new topic, and the test
counts for itself, from the source topic, which records have timestamps in the range, and checks
exactly those landed. One sandbox for the module (JVM start-up costs seconds)."""

from __future__ import annotations

import io
import json
import time

import pytest

from contract import kafka_backup as kb
from runbooks import kafka_replay
from runbooks.adapters.kafka_client import KafkaTopics
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_OK
from sandbox import control, kafka_backup as _kafka_backup, kafka_cluster, proc as _proc
from sandbox.layout import EAST
from tests.helpers.sandbox import wait_for

TOPIC = "orders"


@pytest.fixture(scope="module")
def kbsb(base_dir):
    sb = control.up(base_dir / "kafka-backup", systems=("postgres", "kafka"))
    yield sb
    control.down(sb.dir)


def produce_batch(bootstrap: str, prefix: str, n: int, ts_ms: int) -> None:
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "log_level": 0})
    for i in range(n):
        p.produce(TOPIC, json.dumps({"id": f"{prefix}-{i}"}).encode(), key=f"{prefix}-{i}".encode(),
                  timestamp=ts_ms + i, headers=[("batch", prefix.encode())])
    assert p.flush(15) == 0


def seen_committed(bootstrap: str, group: str) -> int:
    """The group's committed offsets on the topic, summed, read with a plain consumer."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(kafka_cluster.TOPIC_PARTITIONS)], timeout=10)
    finally:
        c.close()
    return sum(tp.offset for tp in tps if tp.offset >= 0)


def run_replay(sb, *args) -> tuple[int, dict]:
    out = io.StringIO()
    code = kafka_replay.main(["--outputs", str(sb.dir / "outputs.json"), "--output", "json", "--yes", *args],
                             stdout=out, stdin=io.StringIO())
    return code, json.loads(out.getvalue())


def test_backup_then_replay_of_a_time_range_is_exact(kbsb, capsys):
    from sandbox.__main__ import main as sandbox_cli
    sb = kbsb
    bootstrap = kafka_cluster.bootstrap(sb.state, EAST)
    assert sandbox_cli(["kafka-backup", "start", "--dir", str(sb.dir), "--topic", f"{TOPIC}=critical",
                        "--flush-s", "0.5", "--offsets-every-s", "2"]) == 0
    assert "Kafka backup of orders" in capsys.readouterr().out
    base = int(time.time() * 1000) - 60_000
    # three batches one "minute" apart by their own timestamps; the range takes the middle one
    produce_batch(bootstrap, "before", 40, base)
    produce_batch(bootstrap, "inside", 60, base + 20_000)
    produce_batch(bootstrap, "after", 30, base + 40_000)
    # what the source holds, read for ourselves: the records whose timestamp is in the range
    source = KafkaTopics(bootstrap)
    held = source.read(TOPIC, {}, source.end_offsets(TOPIC))
    start_s, end_s = (base + 20_000) / 1000, (base + 40_000) / 1000
    want = {r.digest() for rs in held.values() for r in rs if start_s * 1000 <= r.timestamp_ms < end_s * 1000}
    assert len(want) == 60

    store = kb.DirStore(_kafka_backup.store_dir(sb.layout))
    wait_for(lambda: (kb.read_watermark(store, TOPIC) or kb.Watermark(TOPIC, {}, None, 0)).caught_up_at
             and sum(kb.read_watermark(store, TOPIC).next_offsets.values()) >= 130, 60, "the backup caught up")
    keys = store.list(kb.topic_prefix(TOPIC))
    assert any("/year=" in k and "/hour=" in k and k.endswith(".parquet") for k in keys), keys
    assert sandbox_cli(["kafka-backup", "status", "--dir", str(sb.dir)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["records_total"] >= 130 and status["records_behind_head"] == 0, status

    # a dry run changes nothing and shows the count
    code, out = run_replay(sb, "--topic", TOPIC, "--from-time", str(start_s), "--to-time", str(end_s),
                           "--target-topic", "orders-replay", "--dry-run")
    assert code == EXIT_OK and "60 record(s)" in json.dumps(out), out
    assert KafkaTopics(bootstrap).partitions("orders-replay") is None

    code, out = run_replay(sb, "--topic", TOPIC, "--from-time", str(start_s), "--to-time", str(end_s),
                           "--target-topic", "orders-replay")
    assert code == EXIT_OK, out
    assert out["exact"] is True and out["expected"] == 60 and out["landed"] == 60, out
    assert out["missing"] == 0 and out["extra"] == 0
    # counted independently of the runbook: the target holds exactly the range's records
    target = KafkaTopics(bootstrap)
    landed = target.read("orders-replay", {}, target.end_offsets("orders-replay"))
    got = [r.digest() for rs in landed.values() for r in rs]
    assert len(got) == 60 and set(got) == want
    assert all(r.headers == (("batch", b"inside"),) for rs in landed.values() for r in rs)

    # consumer-group offsets are snapshotted: a group that consumed shows up in a snapshot
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "log_level": 0})
    c.subscribe([TOPIC])
    seen = 0
    deadline = time.monotonic() + 20
    while seen < 10 and time.monotonic() < deadline:
        m = c.poll(0.2)
        seen += m is not None and m.error() is None
    c.commit(asynchronous=False)
    c.close()

    def snapshot_with_billing():
        for key in store.list(kb.OFFSETS + "/"):
            doc = json.loads(store.get(key))
            if "billing" in doc["groups"]:
                return doc["groups"]["billing"]
        return None
    groups = wait_for(snapshot_with_billing, 30, "an offset snapshot with the group billing")
    assert sum(groups[TOPIC].values()) >= 10
    # and on demand, through the runbook (what a schedule runs where no worker snapshots them)
    from runbooks import kafka_offsets
    out = io.StringIO()
    assert kafka_offsets.main(["--outputs", str(sb.dir / "outputs.json"), "--topic", TOPIC, "--yes", "--output",
                               "json"], stdout=out, stdin=io.StringIO()) == EXIT_OK, out.getvalue()
    taken = json.loads(out.getvalue())
    assert sum(taken["groups"]["billing"][TOPIC].values()) == seen_committed(bootstrap, "billing")


def test_replay_refuses_the_source_a_non_empty_target_and_an_uncovered_range(kbsb):
    sb = kbsb
    bootstrap = kafka_cluster.bootstrap(sb.state, EAST)
    now = time.time()
    common = ["--topic", TOPIC, "--from-time", str(now - 3600), "--to-time", str(now - 1800)]
    code, out = run_replay(sb, *common, "--target-topic", TOPIC)
    assert code == EXIT_BAD_INPUT and "is the source topic" in out["error"], out
    # a range the backup has not reached yet: refused, naming the partition and the time
    code, out = run_replay(sb, "--topic", TOPIC, "--from-time", str(now - 10), "--to-time", str(now + 3600),
                           "--target-topic", "never-made")
    assert code == EXIT_BAD_INPUT and "does not reach" in out["error"], out
    # a non-empty target (the source topic's records exist in 'orders'; use the replay target of the first test or
    # make one): refused without --allow-non-empty
    KafkaTopics(bootstrap).create_topic("occupied", kafka_cluster.TOPIC_PARTITIONS)
    produce_to = __import__("confluent_kafka").Producer({"bootstrap.servers": bootstrap, "log_level": 0})
    produce_to.produce("occupied", b"x", partition=0)
    assert produce_to.flush(10) == 0
    store = kb.DirStore(_kafka_backup.store_dir(sb.layout))
    wm = kb.read_watermark(store, TOPIC)
    assert wm is not None
    code, out = run_replay(sb, "--topic", TOPIC, "--from-time", str(now - 3600), "--to-time", str(wm.caught_up_at - 1),
                           "--target-topic", "occupied")
    assert code == EXIT_BAD_INPUT and "already holds 1 record" in out["error"], out
    assert KafkaTopics(bootstrap).end_offsets("occupied") == {0: 1, 1: 0, 2: 0, 3: 0}
    assert KafkaTopics(bootstrap).partitions("never-made") is None
    assert _kafka_backup.stop(sb).startswith("Kafka backup ")
    assert _proc.running(sb.layout.run_dir, _kafka_backup.COMPONENT) is None
