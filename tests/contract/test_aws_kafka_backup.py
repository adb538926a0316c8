"""The Kafka topic backups of the AWS adapter on moto (server mode): Parquet files in the primary
region's backups bucket, listed across pages and read back by the replay runbook through its CLI;
the Kafka side there is the in-memory cluster of the unit tests (moto has no Kafka protocol; the
same Kafka client runs against real brokers in tests/sandbox/test_kafka_backup.py)."""

from __future__ import annotations

import io
import json

from runbooks import kafka_replay
from runbooks.adapters import aws
from runbooks.backups.ports import KafkaBackupPort
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.helpers.kafka_backup import T0, FakeCluster, backup, source_records
from tests.helpers.moto import P


def _ports(moto_pair):
    ports = aws.aws_backup_ports(moto_pair.outputs, moto_pair.clock, moto_pair.session)
    bucket = moto_pair.doc["regions"][P]["storage"]["backups_bucket"]
    moto_pair.client("s3", P).create_bucket(Bucket=bucket)
    return ports, bucket


def test_the_backups_bucket_is_the_store_and_lists_past_one_page(moto_pair):
    ports, bucket = _ports(moto_pair)
    store = ports.kafka_backups.store
    assert store.describe() == f"s3://{bucket}" and ports.kafka_backups.source_region == P
    for i in range(1005):  # list_objects_v2 returns at most 1000 keys a page
        store.put(f"kafka/topic=t/year=2026/month=01/day=01/hour=00/t+0+{i:020d}.parquet", b"x")
    assert len(store.list("kafka/topic=t/")) == 1005
    assert store.get("kafka/none") is None


def test_replay_reads_the_parquet_backup_from_s3(moto_pair, tmp_path):
    ports, bucket = _ports(moto_pair)
    records = source_records()
    backup(ports.kafka_backups.store, "orders", records, caught_up_at=T0 + 10)
    assert any(k.endswith(".parquet") for k in
               [o["Key"] for o in moto_pair.client("s3", P).list_objects_v2(Bucket=bucket)["Contents"]])
    cluster = FakeCluster()
    ports.kafka_backups = KafkaBackupPort(ports.kafka_backups.store, lambda region: cluster, P)
    doc = tmp_path / "outputs.json"
    doc.write_text(json.dumps(moto_pair.doc))

    def run(*extra):
        out = io.StringIO()
        code = kafka_replay.main(["--outputs", str(doc), "--state-dir", str(tmp_path / "state"), "--output", "json",
                                  "--yes", "--topic", "orders", *extra], ports_factory=lambda o, c: ports,
                                 clock=moto_pair.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())

    code, out = run("--from-time", str(T0 - 2400), "--to-time", str(T0 - 600), "--target-topic", "restored")
    assert code == EXIT_OK and out["exact"] is True and out["landed"] == 30, out
    code, out = run("--from-time", str(T0 - 2400), "--to-time", str(T0 + 7200), "--target-topic", "later")
    assert code == EXIT_BAD_INPUT and "does not reach" in out["error"]


def test_msk_is_reached_with_iam_over_tls_and_no_bucket_means_no_port(moto_pair):
    from runbooks.adapters.aws.kafka_backup import aws_kafka_backups
    port = aws_kafka_backups(moto_pair.outputs, aws.Clients(moto_pair.session), bootstrap=lambda r: f"b-1.{r}:9098")
    client = port.cluster(P)
    assert client.bootstrap == f"b-1.{P}:9098"
    assert client.config["security.protocol"] == "SASL_SSL" and client.config["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(client.config["oauth_cb"])
    doc = json.loads(json.dumps(moto_pair.doc))
    doc["regions"][P]["storage"].pop("backups_bucket")
    from contract import outputs as contract
    assert aws_kafka_backups(contract.from_dict(doc), aws.Clients(moto_pair.session)) is None
