"""The region-pair runbooks' AWS ports carry the durable audit sink (the DR backups bucket, 7-year
COMPLIANCE retention per entry), CloudWatch metrics in RegionPair/DR and the backups port of the
PITR-in-DR gate: on moto (server mode) where moto emulates the calls, on Stubber where it does
not (the replicated automated backups' restore window)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
from botocore.stub import Stubber

from contract import outputs as contract
from runbooks.adapters import aws
from runbooks.core.clock import FakeClock
from runbooks.core.metrics import Sample
from runbooks.plans.context import Context
from runbooks.plans.database_gates import gate_pitr_in_dr as _gate_pitr_in_dr
from tests.helpers.moto import P, S
from tests.samples import pair_document


def locked_bucket(pair) -> contract.Outputs:
    """The pair's outputs with a DR backups bucket under Object Lock, as the stacks create it."""
    s3 = pair.client("s3", S)
    s3.create_bucket(Bucket="dr-backups-locked", CreateBucketConfiguration={"LocationConstraint": S},
                     ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="dr-backups-locked", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}}})
    doc = json.loads(json.dumps(pair.doc))
    doc["regions"][S]["storage"]["backups_bucket"] = "dr-backups-locked"
    return contract.from_dict(doc)


def test_failover_ports_write_audit_entries_to_the_locked_bucket_for_seven_years(moto_pair):
    outputs = locked_bucket(moto_pair)
    ports = aws.aws_ports(outputs, moto_pair.clock, moto_pair.session)
    entry = {"at": "2026-11-22T05:00:00.000Z", "run_id": "failover-1", "runbook": "failover", "action": "promote",
             "result": "ok", "detail": "password=hunter2"}
    where = ports.audit_sink.write(entry)
    bucket, key = where[len("s3://"):].split("/", 1)
    assert bucket == "dr-backups-locked" and key.startswith("regionpair/audit/2026/11/22/")
    s3 = moto_pair.client("s3", S)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert json.loads(got["Body"].read())["action"] == "promote"
    head = s3.head_object(Bucket=bucket, Key=key)  # (moto's GetObjectRetention answers 500 here)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    at = datetime(2026, 11, 22, 5, 0, tzinfo=timezone.utc)
    assert at + timedelta(days=7 * 365) <= until <= at + timedelta(days=7 * 366)
    # an entry is never replaced: a second write of the same key is refused by If-None-Match
    again = ports.audit_sink.write(entry)
    assert again != where and len(s3.list_objects_v2(Bucket=bucket, Prefix="regionpair/audit/")["Contents"]) == 2


def test_an_unlocked_bucket_still_gets_the_entry_without_retention_headers(moto_pair):
    ports = aws.aws_ports(moto_pair.outputs, moto_pair.clock, moto_pair.session)
    where = ports.audit_sink.write({"at": "2026-11-22T05:00:00.000Z", "run_id": "failover-2", "action": "run"})
    bucket, key = where[len("s3://"):].split("/", 1)
    assert json.loads(moto_pair.client("s3", S).get_object(Bucket=bucket, Key=key)["Body"].read())["run_id"] == "failover-2"


def test_dr_metrics_go_to_cloudwatch_regionpair_dr_in_the_dr_region(moto_pair):
    ports = aws.aws_ports(moto_pair.outputs, moto_pair.clock, moto_pair.session)
    said = ports.metrics.put([Sample("regionpair_dr_failover_time_seconds", 42.0, {"runbook": "failover"}, "h",
                                     "Seconds")])
    assert "RegionPair/DR" in said
    metrics = moto_pair.client("cloudwatch", S).list_metrics(Namespace="RegionPair/DR")["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["regionpair_dr_failover_time_seconds"]


def _ctx_with_stubbed_rds(responses):
    outputs = contract.from_dict(pair_document())
    clock = FakeClock()
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
    clients = aws.Clients(session)
    client = session.client("rds", region_name=S)
    clients.use("rds", S, client)
    stub = Stubber(client)
    for method, kind, value in responses:
        (stub.add_response if kind == "ok" else stub.add_client_error)(method, value)
    stub.activate()
    ports = aws.aws_ports(outputs, clock, clients=clients)
    return Context(outputs, ports, P, S, ["payments"]), stub, clock


def test_pitr_gate_on_aws_refuses_without_replicated_backups_and_passes_with_a_window():
    ctx, stub, _ = _ctx_with_stubbed_rds([
        ("describe_db_instance_automated_backups", "error", "DBInstanceAutomatedBackupNotFound"),
        ("describe_db_instance_automated_backups", "error", "DBInstanceAutomatedBackupNotFound")])
    g = _gate_pitr_in_dr(ctx, "payments").evaluate()
    assert not g.passed and "holds no replicated automated backup of payments" in g.sentence
    stub.assert_no_pending_responses()

    clock_now = FakeClock().time()
    latest = datetime.fromtimestamp(clock_now - 30, timezone.utc)
    ctx, stub, _ = _ctx_with_stubbed_rds([
        ("describe_db_instance_automated_backups", "error", "DBInstanceAutomatedBackupNotFound"),
        ("describe_db_instance_automated_backups", "ok", {"DBInstanceAutomatedBackups": [{
            "DBInstanceIdentifier": "prod-payments", "Status": "replicating",
            "DBInstanceAutomatedBackupsArn": "arn:aws:rds:us-west-2:1:auto-backup:ab-1",
            "RestoreWindow": {"EarliestTime": latest - timedelta(days=7), "LatestTime": latest}}]})])
    g = _gate_pitr_in_dr(ctx, "payments").evaluate()
    assert g.passed and not g.sentence.startswith("WARNING") and f"{S} can restore payments from" in g.sentence
    stub.assert_no_pending_responses()
