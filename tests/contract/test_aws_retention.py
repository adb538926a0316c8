"""The retention runbook through the AWS adapter: on moto in server mode (manual and compliance snapshots in
both regions, DeleteDBSnapshot, the adapter's refusal to delete a compliance snapshot even when the caller's
copy lost its tag), and on botocore's Stubber for what moto does not emulate (BackupRetentionPeriod of the
automated backups, primary and replicated to DR)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest

from runbooks import retention
from runbooks.adapters import aws
from runbooks.backups.ports import COMPLIANCE, MANAGED_TAG, MANAGED_VALUE, TIER_TAG, ComplianceRefused
from runbooks.core.clock import SystemClock
from tests.contract.aws_helpers import BackupStubs as Stubs, with_dr_key
from tests.helpers.moto import P, S

DAY = 86400.0


class Later(SystemClock):
    def __init__(self, days: float):
        self.offset = days * DAY

    def time(self) -> float:
        return super().time() + self.offset


def test_retention_on_moto_deletes_past_the_manual_tier_in_both_regions_never_the_compliance_tier(moto_pair, tmp_path):
    outputs = with_dr_key(moto_pair)
    ports = aws.aws_backup_ports(outputs, moto_pair.clock, moto_pair.session)
    b = ports.backups
    managed = {MANAGED_TAG: MANAGED_VALUE}
    for sid, tags in (("rp-old", managed), ("rp-new", managed), ("rp-legal", {**managed, TIER_TAG: COMPLIANCE}),
                      ("by-hand", {"owner": "dba"})):
        snap = b.create_snapshot(P, "payments", sid, tags)
        b.copy_snapshot(snap, S, {})
    assert {s.id for s in b.snapshots(S, "payments")} == {"rp-old", "rp-new", "rp-legal", "by-hand"}
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(json.loads(json.dumps(moto_pair.doc)) | {
        "regions": {**moto_pair.doc["regions"], S: {**moto_pair.doc["regions"][S],
                                                    "kms_key_arn": outputs.regions[S].kms_key_arn}}}))

    def run(*extra):
        out = io.StringIO()
        code = retention.main(["--outputs", str(doc_path), "--state-dir", str(tmp_path / "state"), "--output", "json",
                               "--yes", "--tier", "manual", *extra],
                              ports_factory=lambda o, c: ports, clock=Later(100), stdout=out)
        return code, json.loads(out.getvalue())

    code, out = run("--keep-newest", "1")
    assert code == 0, out
    for region in (P, S):
        left = {s.id for s in b.snapshots(region, "payments")}
        assert "rp-legal" in left and "by-hand" in left, (region, left)
        assert len(left & {"rp-old", "rp-new"}) == 1, "the newest managed one is kept, the other deleted"
    assert len(out["deleted"]) == 2 and all("[manual" in line for line in out["deleted"])

    # the adapter refuses the compliance snapshot, also when the caller's copy lost the tag: it reads it again
    (legal,) = [s for s in b.snapshots(S, "payments") if s.id == "rp-legal"]
    with pytest.raises(ComplianceRefused):
        b.delete_snapshot(legal)
    with pytest.raises(ComplianceRefused):
        b.delete_snapshot(replace(legal, tags={}))
    assert "rp-legal" in {s.id for s in b.snapshots(S, "payments")}


def test_automated_retention_read_from_the_primary_and_the_replicated_backups():
    st = Stubs()
    rds_p, rds_s = st.stub("rds", P), st.stub("rds", S)
    rds_p.add_response("describe_db_instance_automated_backups", {"DBInstanceAutomatedBackups": [
        {"DBInstanceIdentifier": "prod-payments", "BackupRetentionPeriod": 30}]},
        expected_params={"DBInstanceIdentifier": "prod-payments"})
    rds_s.add_client_error("describe_db_instance_automated_backups", "DBInstanceAutomatedBackupNotFound",
                           expected_params={"DBInstanceIdentifier": "dr-payments"})
    rds_s.add_response("describe_db_instance_automated_backups", {"DBInstanceAutomatedBackups": [
        {"DBInstanceIdentifier": "prod-payments", "BackupRetentionPeriod": 7}]},
        expected_params={"DBInstanceIdentifier": "prod-payments"})
    b = st.ports().backups
    assert b.expires_automated is True
    assert (b.automated_retention_days(P, "payments"), b.automated_retention_days(S, "payments")) == (30, 7)
    st.done()


def test_the_adapter_refuses_a_compliance_snapshot_before_any_call():
    st = Stubs()
    st.stub("rds", P)  # no response queued: any call would fail the test
    from runbooks.backups.ports import Snapshot
    legal = Snapshot("rp-legal", P, "payments", "available", 0.0, "manual", {TIER_TAG: COMPLIANCE})
    with pytest.raises(ComplianceRefused, match="no runbook deletes it"):
        st.ports().backups.delete_snapshot(legal)
    st.done()


def test_archive_on_moto_exports_the_newest_compliance_snapshot_of_each_region_once(moto_pair, tmp_path):
    doc = json.loads(json.dumps(moto_pair.doc))
    key_s = moto_pair.client("kms", S).create_key(Description="dr")["KeyMetadata"]["Arn"]
    doc["regions"][S]["kms_key_arn"] = key_s
    for region, stack in ((P, "prod"), (S, "dr")):
        doc["regions"][region]["storage"]["archive"] = {
            "bucket": f"regionpair-{stack}-archive-123456789012-{region}",
            "export_role_arn": f"arn:aws:iam::123456789012:role/compliance-export-{stack}"}
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(doc))
    from contract import outputs as contract
    outputs = contract.from_dict(doc)
    ports = aws.aws_backup_ports(outputs, moto_pair.clock, moto_pair.session)
    b = ports.backups
    legal = b.create_snapshot(P, "payments", "rp-legal-1", {MANAGED_TAG: MANAGED_VALUE, TIER_TAG: COMPLIANCE})
    b.copy_snapshot(legal, S, {})

    def run(*extra):
        out = io.StringIO()
        code = retention.main(["--outputs", str(doc_path), "--state-dir", str(tmp_path / "state"), "--output", "json",
                               "--yes", "--archive", *extra], ports_factory=lambda o, c: ports, stdout=out)
        return code, json.loads(out.getvalue())

    code, out = run()
    assert code == 0, out
    rds_tasks = {region: moto_pair.client("rds", region).describe_export_tasks()["ExportTasks"] for region in (P, S)}
    for region, stack in ((P, "prod"), (S, "dr")):
        [task] = [t for t in rds_tasks[region] if t["ExportTaskIdentifier"] == "archive-rp-legal-1"]
        assert task["S3Bucket"] == f"regionpair-{stack}-archive-123456789012-{region}"
        assert task["IamRoleArn"] == f"arn:aws:iam::123456789012:role/compliance-export-{stack}"
        assert task["S3Prefix"] == "regionpair/payments" and task["SourceArn"].endswith(":snapshot:rp-legal-1")
        assert [a.id for a in b.archives(region, "payments")] == ["archive-rp-legal-1"]
    assert rds_tasks[S][0]["KmsKeyId"] == key_s
    assert len(out["archived"]) == 2
    code, again = run("--new-run")
    assert code == 0 and again["archived"] == []
    assert sum(line.startswith(f"{r}/archive-rp-legal-1 [archive of rp-legal-1") for r in (P, S)
               for line in again["kept"]) == 2
    assert "rp-legal-1" in {s.id for s in b.snapshots(S, "payments")}
