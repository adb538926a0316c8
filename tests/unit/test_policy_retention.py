"""The retention-tier policies (policy/retention.py), called through the pack's POLICIES as the CLI calls
them: each refuses its broken form and accepts the good one."""

from __future__ import annotations

import json

import pytest

from components.retention import EXPORT_PRINCIPAL, EXPORT_ROLE_TAG, export_role_policy
from policy import base, retention, rules
from tests.helpers.policy import check, stack_findings

ARCHIVE = "arn:aws:s3:::regionpair-prod-archive-123456789012-us-east-1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/k"


def test_the_policies_are_in_the_pack():
    assert {p.name for p in retention.POLICIES} <= {p.name for p in rules.POLICIES}
    assert len(retention.POLICIES) == 6


@pytest.mark.parametrize("days, refused", [(30, False), (35, False), (36, True), (3650, True)])
def test_automated_backups_are_kept_at_most_35_days(days, refused):
    messages = check("rds-backup-retention-at-most-35", base.RDS_INSTANCE, {"backupRetentionPeriod": days})
    assert bool(messages) is refused, messages
    if refused:
        assert "at most 35" in messages[0] and "Backup retention period" in messages[0] and "Fix:" in messages[0]


@pytest.mark.parametrize("props, words", [
    ({"backupVaultName": "v", "changeableForDays": 2}, "changeableForDays 2"),
    ({"backupVaultName": "v", "changeableForDays": 3, "minRetentionDays": 3000, "maxRetentionDays": 2555},
     "above maxRetentionDays"),
])
def test_a_vault_lock_without_its_cooling_off_or_with_min_above_max_is_refused(props, words):
    messages = check("backup-vault-lock-cooling-off", retention.BACKUP_VAULT_LOCK, props)
    assert len(messages) == 1 and words in messages[0] and "Fix:" in messages[0], messages
    good = {"backupVaultName": "v", "changeableForDays": 3, "minRetentionDays": 2555, "maxRetentionDays": 2600}
    assert check("backup-vault-lock-cooling-off", retention.BACKUP_VAULT_LOCK, good) == []


def test_a_backup_plan_deleting_within_90_days_of_cold_storage_is_refused_also_in_its_copies():
    rule = {"ruleName": "m", "targetVaultName": "v", "lifecycle": {"coldStorageAfter": 30, "deleteAfter": 120},
            "copyActions": [{"destinationVaultArn": "arn:v2", "lifecycle": {"coldStorageAfter": 30, "deleteAfter": 100}}]}
    messages = check("backup-plan-cold-storage-90-days", retention.BACKUP_PLAN, {"name": "p", "rules": [rule]})
    assert len(messages) == 1 and "rules[0].copyActions[0].lifecycle" in messages[0] and "delete_after >= 120" in messages[0]
    rule["copyActions"][0]["lifecycle"]["deleteAfter"] = 2557
    assert check("backup-plan-cold-storage-90-days", retention.BACKUP_PLAN, {"name": "p", "rules": [rule]}) == []


def export_graph(trust: str = EXPORT_PRINCIPAL, policy: str | None = None, tagged: bool = True) -> list[dict]:
    role_trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": trust}, "Action": "sts:AssumeRole"}]})
    return [
        {"type": retention.IAM_ROLE, "name": "compliance-export", "parent": None,
         "inputs": {"name": "export-role", "assumeRolePolicy": role_trust,
                    "tags": dict([EXPORT_ROLE_TAG]) if tagged else {}}},
        {"type": retention.IAM_ROLE_POLICY, "name": "compliance-export", "parent": None,
         "inputs": {"role": "export-role", "policy": policy or export_role_policy(ARCHIVE, KEY, "us-east-1")}},
    ]


def test_the_export_role_of_the_component_passes_and_a_broken_one_is_refused():
    assert stack_findings("rds-snapshot-export-role", export_graph()) == []
    [wrong_trust] = stack_findings("rds-snapshot-export-role", export_graph(trust="ec2.amazonaws.com"))
    assert EXPORT_PRINCIPAL in wrong_trust.message and "StartExportTask" in wrong_trust.message
    no_delete = json.loads(export_role_policy(ARCHIVE, KEY, "us-east-1"))
    no_delete["Statement"][0]["Action"] = ["s3:PutObject*", "s3:GetObject*", "s3:ListBucket"]
    [missing] = stack_findings("rds-snapshot-export-role", export_graph(policy=json.dumps(no_delete)))
    assert "s3:DeleteObject, s3:GetBucketLocation" in missing.message and "Fix:" in missing.message
    # an untagged role is not the export role: nothing to say
    assert stack_findings("rds-snapshot-export-role", export_graph(trust="ec2.amazonaws.com", tagged=False)) == []


def archive_graph(mode: str | None = "COMPLIANCE", days: int = 2557, lock: bool = True) -> list[dict]:
    nodes = [{"type": base.S3_BUCKETS[0], "name": "compliance-bucket", "parent": None,
              "inputs": {"bucket": "archive", "tags": {"regionpair:retention-tier": "compliance"}}}]
    if lock:
        nodes.append({"type": retention.S3_OBJECT_LOCK, "name": "compliance-lock", "parent": None,
                      "inputs": {"bucket": "archive", "objectLockEnabled": "Enabled",
                                 "rule": {"defaultRetention": {"mode": mode, "days": days}}}})
    return nodes


@pytest.mark.parametrize("kwargs, words", [
    ({"mode": "GOVERNANCE"}, "GOVERNANCE mode"),
    ({"days": 365}, "locked 365 days"),
    ({"lock": False}, "without an Object Lock configuration"),
])
def test_the_compliance_archive_must_be_locked_in_compliance_mode_for_7_years(kwargs, words):
    assert stack_findings("s3-compliance-archive-locked", archive_graph()) == []
    [finding] = stack_findings("s3-compliance-archive-locked", archive_graph(**kwargs))
    assert words in finding.message and "Fix:" in finding.message


def test_a_role_that_may_delete_snapshots_must_spare_the_compliance_tier():
    from components.access import runbook_policy
    good = runbook_policy(partition="aws", account="123456789012", prefix="regionpair", zone_id="Z1",
                          health_check_ids=[], regions=[{"region": "us-east-1", "db_security_group_ids": [],
                                                         "kafka_cluster_arns": [], "replicator_arns": [],
                                                         "bucket_arns": [], "kms_key_arns": [], "topic_arns": []}])
    assert check("iam-snapshot-delete-spares-compliance", retention.IAM_ROLE_POLICY, {"policy": good}) == []
    doc = json.loads(good)
    [delete] = [s for s in doc["Statement"] if "rds:DeleteDBSnapshot" in s["Action"]]
    del delete["Condition"]["StringNotEquals"]
    [message] = check("iam-snapshot-delete-spares-compliance", retention.IAM_ROLE_POLICY, {"policy": json.dumps(doc)})
    assert "DeleteOnlySnapshotRunbookSnapshots" in message and "compliance" in message and "Fix:" in message
    wildcard = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Delete*", "Resource": "*"}]}
    assert check("iam-snapshot-delete-spares-compliance", retention.IAM_ROLE_POLICY, {"policy": json.dumps(wildcard)})
