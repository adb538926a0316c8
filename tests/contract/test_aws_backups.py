"""The backup ports' AWS adapter: on moto in server mode where moto emulates the calls
(snapshots, cross-region copy with a KMS key, same-region point-in-time restore, instance
deletion, S3 versions, CloudWatch PutMetricData, conditional S3 writes), on botocore's Stubber
where it does not (the restorable window of automated backups, restoring from the automated
backups replicated to DR, AccessDenied). docs/backups.md has the table."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.stub import ANY

from contract import outputs as contract
from runbooks import undelete
from runbooks.adapters import aws
from runbooks.backups.ports import MANAGED_TAG, MANAGED_VALUE
from runbooks.core.errors import BadInput, StepFailed
from runbooks.core.metrics import Sample
from tests.contract.aws_helpers import BackupStubs as Stubs, with_dr_key
from tests.helpers.moto import P, S


def backup_ports(pair, outputs=None):
    return aws.aws_backup_ports(outputs or pair.outputs, pair.clock, pair.session)


def test_snapshot_copy_to_dr_with_its_key_and_tags_and_delete(moto_pair):
    outputs = with_dr_key(moto_pair)
    b = backup_ports(moto_pair, outputs).backups
    tags = {MANAGED_TAG: MANAGED_VALUE, "ticket": "OPS-1"}
    snap = b.create_snapshot(P, "payments", "regionpair-payments-1", tags)
    assert snap.id == "regionpair-payments-1" and snap.tags == tags
    again = b.create_snapshot(P, "payments", "regionpair-payments-1", tags)  # AlreadyExists → the same one
    assert again.id == snap.id and again.arn == snap.arn
    (listed,) = [s for s in b.snapshots(P, "payments") if s.id == snap.id]
    assert listed.kind == "manual" and listed.status == "available"
    copy = b.copy_snapshot(listed, S, {"regionpair:run-id": "r1"})
    assert copy.region == S and copy.kms_key_id == outputs.regions[S].kms_key_arn
    # a copy in DR keeps the source instance's identifier: listing DR finds it under prod's name
    assert [s.id for s in b.snapshots(S, "payments")] == [snap.id]
    assert b.copy_snapshot(listed, S, {}).id == snap.id  # idempotent
    assert "deleted" in b.delete_snapshot(copy)
    assert b.snapshots(S, "payments") == []
    assert "already gone" in b.delete_snapshot(copy)


def test_copy_without_a_dr_key_is_bad_input(moto_pair):
    doc = json.loads(json.dumps(moto_pair.doc))
    doc["regions"][S]["kms_key_arn"] = None
    b = backup_ports(moto_pair, contract.from_dict(doc)).backups
    snap = b.create_snapshot(P, "payments", "regionpair-payments-2", {})
    with pytest.raises(BadInput, match="kms_key_arn"):
        b.copy_snapshot(snap, S, {})


def test_restore_to_a_new_instance_and_only_a_temporary_one_is_ever_deleted(moto_pair):
    b = backup_ports(moto_pair).backups
    t = datetime.now(timezone.utc).timestamp() - 60
    inst = b.restore(P, "payments", "verify-payments-x", t)
    assert inst.name == "verify-payments-x" and inst.status == "available"  # moto restores at once
    assert b.instance(P, "verify-payments-x").status == "available"
    rds = moto_pair.client("rds", P)
    tags = {t["Key"]: t["Value"] for t in rds.describe_db_instances(
        DBInstanceIdentifier="verify-payments-x")["DBInstances"][0]["TagList"]}
    assert tags == {"regionpair:restored-by": "verify-payments-x", "regionpair:temporary": "true",
                    "regionpair:database": "payments"}
    assert b.instance(P, "verify-payments-x").database == "payments"  # whose credentials the checks use
    kept = b.restore(P, "payments", "restore-payments-x", None)  # a restore the operator keeps
    assert kept.status == "available"
    with pytest.raises(StepFailed, match="not a temporary instance"):
        b.delete_instance(P, "restore-payments-x")
    with pytest.raises(StepFailed, match="not a temporary instance"):
        b.delete_instance(P, "prod-payments")  # the source: never
    assert "deleting the temporary instance" in b.delete_instance(P, "verify-payments-x")
    assert b.instance(P, "verify-payments-x").status == "absent"
    assert b.instance(P, "prod-payments").status == "available"


def test_s3_versions_undelete_on_moto(moto_pair):
    bucket = moto_pair.doc["regions"][S]["storage"]["data_bucket"]
    s3 = moto_pair.client("s3", S)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="x/a", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket, Key="x/a", Body=b"two")
    s3.delete_object(Bucket=bucket, Key="x/a")
    o = backup_ports(moto_pair).objects
    assert o.versioning(bucket) == "Enabled"
    vs = o.versions(bucket, "x/")
    assert sorted((v.delete_marker, v.is_latest) for v in vs) == [(False, False), (False, False), (True, True)]
    marker = next(v for v in vs if v.delete_marker)
    o.delete_version(bucket, "x/a", marker.version_id)
    assert s3.get_object(Bucket=bucket, Key="x/a")["Body"].read() == b"two"
    new = o.restore_version(bucket, "x/a", first)
    assert new != first and s3.get_object(Bucket=bucket, Key="x/a")["Body"].read() == b"one"
    backups_bucket = moto_pair.doc["regions"][S]["storage"]["backups_bucket"]  # created unversioned
    assert o.versioning(backups_bucket) is None
    with pytest.raises(BadInput, match="not a bucket of the stack outputs"):
        o.versioning("someone-elses-bucket")


def test_cloudwatch_metrics_and_audit_entries_in_the_backups_bucket(moto_pair):
    ports = backup_ports(moto_pair)
    said = ports.metrics.put([Sample("regionpair_backup_verification_success", 1.0,
                                     {"database": "payments", "region": P}, "h", "Count")])
    assert "1 metric(s)" in said
    metrics = moto_pair.client("cloudwatch", S).list_metrics(Namespace="RegionPair/Backups")["Metrics"]
    assert metrics == [{"Namespace": "RegionPair/Backups", "MetricName": "regionpair_backup_verification_success",
                        "Dimensions": [{"Name": "database", "Value": "payments"}, {"Name": "region", "Value": P}]}]
    entry = {"at": "2026-11-22T05:00:00.000Z", "run_id": "verify_backup-1", "action": "verification",
             "result": "passed", "detail": "password=hunter2"}
    where = ports.audit_sink.write(entry)
    bucket, key = where[len("s3://"):].split("/", 1)
    assert key.startswith("regionpair/audit/2026/11/22/")
    body = json.loads(moto_pair.client("s3", S).get_object(Bucket=bucket, Key=key)["Body"].read())
    assert body["action"] == "verification" and "hunter2" not in json.dumps(body)


# ---- Stubber: what moto does not emulate ---------------------------------------------------------


AUTO_ARN = "arn:aws:rds:us-west-2:123456789012:auto-backup:ab-xyz"


def _automated(earliest, latest):
    return {"DBInstanceAutomatedBackups": [{
        "DBInstanceIdentifier": "prod-payments", "DBInstanceAutomatedBackupsArn": AUTO_ARN, "Status": "replicating",
        "RestoreWindow": {"EarliestTime": earliest, "LatestTime": latest}}]}


def test_window_of_the_automated_backups_replicated_to_dr():
    st = Stubs()
    rds = st.stub("rds", S)
    now = datetime(2026, 11, 22, 5, 0, tzinfo=timezone.utc)
    # DR's own instance first (none replicated under it), then the primary's identifier
    rds.add_client_error("describe_db_instance_automated_backups", "DBInstanceAutomatedBackupNotFound",
                         expected_params={"DBInstanceIdentifier": "dr-payments"})
    rds.add_response("describe_db_instance_automated_backups", _automated(now - timedelta(days=7), now),
                     expected_params={"DBInstanceIdentifier": "prod-payments"})
    w = st.ports().backups.window(S, "payments")
    assert (w.earliest, w.latest, w.source) == ((now - timedelta(days=7)).timestamp(), now.timestamp(), AUTO_ARN)
    st.done()


def test_restore_in_dr_uses_the_replicated_automated_backups_in_the_dr_network():
    st = Stubs()
    rds = st.stub("rds", S)
    now = datetime(2026, 11, 22, 5, 0, tzinfo=timezone.utc)
    rds.add_response("describe_db_instances", {"DBInstances": [{
        "DBInstanceIdentifier": "dr-payments", "DBInstanceClass": "db.r6g.large",
        "ReadReplicaSourceDBInstanceIdentifier": "arn:aws:rds:us-east-1:123456789012:db:prod-payments",
        "DBSubnetGroup": {"DBSubnetGroupName": "dr-db"}, "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-dr"}]}]},
        expected_params={"DBInstanceIdentifier": "dr-payments"})
    rds.add_client_error("describe_db_instance_automated_backups", "DBInstanceAutomatedBackupNotFound")
    rds.add_response("describe_db_instance_automated_backups", _automated(now - timedelta(days=7), now))
    rds.add_response("restore_db_instance_to_point_in_time", {"DBInstance": {
        "DBInstanceIdentifier": "restore-payments-1", "DBInstanceStatus": "creating"}}, expected_params={
        "TargetDBInstanceIdentifier": "restore-payments-1", "SourceDBInstanceAutomatedBackupsArn": AUTO_ARN,
        "RestoreTime": ANY,
        "DBSubnetGroupName": "dr-db", "VpcSecurityGroupIds": ["sg-dr"], "DBInstanceClass": "db.r6g.large",
        "MultiAZ": False, "PubliclyAccessible": False, "CopyTagsToSnapshot": True, "DeletionProtection": False,
        "EnableIAMDatabaseAuthentication": True, "Tags": [{"Key": "regionpair:restored-by", "Value": "restore-payments-1"},
                                                          {"Key": "regionpair:temporary", "Value": "false"},
                                                          {"Key": "regionpair:database", "Value": "payments"}]})
    inst = st.ports().backups.restore(S, "payments", "restore-payments-1", (now - timedelta(hours=1)).timestamp())
    assert inst.status == "creating" and inst.region == S
    st.done()


def test_temporary_instance_is_deleted_without_a_final_snapshot_and_access_denied_names_the_fix():
    st = Stubs()
    rds = st.stub("rds", P)
    rds.add_response("describe_db_instances", {"DBInstances": [{
        "DBInstanceIdentifier": "verify-payments-1", "DBInstanceStatus": "available",
        "TagList": [{"Key": "regionpair:restored-by", "Value": "verify-payments-1"},
                    {"Key": "regionpair:temporary", "Value": "true"}]}]})
    rds.add_response("delete_db_instance", {"DBInstance": {"DBInstanceIdentifier": "verify-payments-1"}},
                     expected_params={"DBInstanceIdentifier": "verify-payments-1", "SkipFinalSnapshot": True,
                                      "DeleteAutomatedBackups": True})
    b = st.ports().backups
    assert "no final snapshot" in b.delete_instance(P, "verify-payments-1")
    rds.add_client_error("create_db_snapshot", "AccessDenied", http_status_code=403)
    with pytest.raises(aws.AwsCallFailed, match="add it to the runbook role"):
        b.create_snapshot(P, "payments", "regionpair-payments-3", {})
    st.done()


def test_undelete_plan_on_moto_versions_is_exact(moto_pair):
    """plan_keys on what S3 really returns (second-resolution LastModified, IsLatest)."""
    bucket = moto_pair.doc["regions"][S]["storage"]["data_bucket"]
    s3 = moto_pair.client("s3", S)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    o = backup_ports(moto_pair).objects
    t = max(v.last_modified for v in o.versions(bucket, "")) + 0.5
    plans = undelete.plan_keys(o.versions(bucket, ""), t)
    assert [(p.key, p.action) for p in plans] == [("k", "leave")]
