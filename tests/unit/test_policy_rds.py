"""The RDS and Secrets Manager policies (policy/rds.py): each refuses the broken form and accepts the
good one, called the way the CLI calls them; and both stacks' real graphs pass them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policy import rds
from policy.graph import evaluate, policy_resources
from tests import harness

KEY = "arn:aws:kms:us-east-1:111122223333:key/0f0e0d0c-1111-2222-3333-444455556666"
DR_KEY = "arn:aws:kms:us-west-2:111122223333:key/0a0b0c0d-1111-2222-3333-444455556666"
PRIMARY_ARN = "arn:aws:rds:us-east-1:111122223333:db:prod-orders"
POLICY = {p.name: p for p in rds.POLICIES}
DELETE = object()

PRIMARY = {"engine": "postgres", "engineVersion": "16", "storageEncrypted": True, "kmsKeyId": KEY,
           "skipFinalSnapshot": False, "finalSnapshotIdentifier": "prod-orders-final", "password": "x",
           "parameterGroupName": "prod-orders-postgres16"}
REPLICA = {"engine": "postgres", "engineVersion": "16", "kmsKeyId": DR_KEY, "replicateSourceDb": PRIMARY_ARN,
           "skipFinalSnapshot": True}
BACKUPS = {"sourceDbInstanceArn": PRIMARY_ARN, "kmsKeyId": DR_KEY, "retentionPeriod": 30}
SECRET = {"name": "prod-orders/master", "kmsKeyId": KEY, "recoveryWindowInDays": 30, "replicas": [{"region": "us-west-2"}]}


@pytest.fixture(autouse=True)
def _keep_the_runtime_config():
    """A render sets the Pulumi runtime's config (promoted: true here); the policy tests that run
    later read their stack settings from it, so put back what was there."""
    from pulumi.runtime import config as runtime_config
    saved = dict(runtime_config.CONFIG.get())
    yield
    runtime_config.set_all_config(saved)


def findings(policy: str, type_: str, props: dict[str, Any]) -> list[str]:
    [resource] = policy_resources([{"type": type_, "name": "it", "parent": None, "inputs": copy.deepcopy(props)}],
                                  stack="test")
    return [f.message for f in evaluate([resource], [POLICY[policy]])]


def changed(props: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = copy.deepcopy(props)
    for k, v in kw.items():
        if v is DELETE:
            out.pop(k, None)
        else:
            out[k] = v
    return out


GOOD = [
    ("rds-password-not-rds-managed", rds.RDS_INSTANCE, PRIMARY),
    ("rds-password-not-rds-managed", rds.RDS_INSTANCE, REPLICA),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, PRIMARY),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, REPLICA),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, changed(PRIMARY, skipFinalSnapshot=True,
                                                             finalSnapshotIdentifier=DELETE)),  # a drill stack
    ("rds-major-version-with-auto-minor-upgrade", rds.RDS_INSTANCE, PRIMARY),
    ("rds-major-version-with-auto-minor-upgrade", rds.RDS_INSTANCE,
     changed(PRIMARY, engineVersion="16.4", autoMinorVersionUpgrade=False)),
    ("rds-cross-region-replica", rds.RDS_INSTANCE, REPLICA),
    ("rds-backup-replication", rds.RDS_BACKUP_REPLICATION, BACKUPS),
    ("secretsmanager-secret", rds.SECRET, SECRET),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, replicas=[{"region": "us-west-2", "kmsKeyId": DR_KEY}])),
]

BROKEN = [
    ("rds-password-not-rds-managed", rds.RDS_INSTANCE, changed(PRIMARY, password=DELETE, manageMasterUserPassword=True),
     "Limitations for Secrets Manager integration"),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, changed(REPLICA, finalSnapshotIdentifier="x-final"),
     "RDS refuses to delete a replica with a final snapshot"),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, changed(REPLICA, skipFinalSnapshot=False),
     "skip_final_snapshot=True"),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, changed(REPLICA, skipFinalSnapshot=DELETE),
     "skip_final_snapshot=True"),
    ("rds-final-snapshot-by-role", rds.RDS_INSTANCE, changed(PRIMARY, finalSnapshotIdentifier=DELETE),
     "no finalSnapshotIdentifier"),
    ("rds-major-version-with-auto-minor-upgrade", rds.RDS_INSTANCE, changed(PRIMARY, engineVersion="16.4"),
     "engine_version='16' (major only)"),
    ("rds-major-version-with-auto-minor-upgrade", rds.RDS_INSTANCE,
     changed(PRIMARY, engineVersion="16.4", autoMinorVersionUpgrade=True), "plans a downgrade"),
    ("rds-cross-region-replica", rds.RDS_INSTANCE, changed(REPLICA, replicateSourceDb="prod-orders"), "is not an ARN"),
    ("rds-cross-region-replica", rds.RDS_INSTANCE, changed(REPLICA, kmsKeyId=KEY), "a key of the source's region"),
    ("rds-backup-replication", rds.RDS_BACKUP_REPLICATION, changed(BACKUPS, kmsKeyId=KEY),
     "key of the destination region"),
    ("rds-backup-replication", rds.RDS_BACKUP_REPLICATION, changed(BACKUPS, kmsKeyId="alias/dr"), "not a key ARN"),
    ("rds-backup-replication", rds.RDS_BACKUP_REPLICATION, changed(BACKUPS, sourceDbInstanceArn="prod-orders"),
     "not an RDS instance ARN"),
    ("rds-backup-replication", rds.RDS_BACKUP_REPLICATION, changed(BACKUPS, retentionPeriod=36), "outside 1-35"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, name="prod-orders-master"), "a hyphen and six characters"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, name="prod orders"), "does not allow"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, recoveryWindowInDays=3), "0 or 7-30"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, kmsKeyId=DELETE), "no customer KMS key"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, replicas=[{"region": "us-west-2", "kmsKeyId": KEY}]),
     "a key of us-east-1"),
    ("secretsmanager-secret", rds.SECRET, changed(SECRET, replicas=[{"region": "us-west-2"}, {"region": "us-west-2"}]),
     "name a region twice"),
]


@pytest.mark.parametrize("policy, type_, props", GOOD)
def test_the_good_form_passes(policy, type_, props):
    assert findings(policy, type_, props) == []


@pytest.mark.parametrize("policy, type_, props, words", BROKEN)
def test_the_broken_form_is_refused_naming_the_fix(policy, type_, props, words):
    messages = findings(policy, type_, props)
    assert len(messages) == 1 and words in messages[0] and "it (" in messages[0], messages
    assert "Fix:" in messages[0] or "once per region" in messages[0] or "twice" in messages[0]


def test_every_policy_names_its_document_and_is_exercised():
    for p in rds.POLICIES:
        assert any(doc in p.description for doc in ("User Guide", "pulumi-aws", "API")), p.name
    exercised = {b[0] for b in BROKEN} | {"rds-parameter-group-family"}
    assert exercised == set(POLICY)


def _graph(instance_version: str, family: str) -> list:
    return policy_resources([
        {"type": rds.RDS_INSTANCE, "name": "db", "parent": None,
         "inputs": changed(PRIMARY, engineVersion=instance_version)},
        {"type": rds.RDS_PARAMETER_GROUP, "name": "params", "parent": None,
         "inputs": {"name": "prod-orders-postgres16", "family": family}}], stack="test")


def test_the_parameter_group_family_must_match_the_major_version():
    policy = [POLICY["rds-parameter-group-family"]]
    assert evaluate(_graph("16", "postgres16"), policy) == []
    [bad] = evaluate(_graph("17", "postgres16"), policy)
    assert "needs a parameter group of family postgres17" in bad.message and "'postgres16'" in bad.message


@pytest.mark.parametrize("stack, overrides", [("prod", {}), ("dr", {}), ("dr", {"promoted": True}),
                                              ("dr", {"promoted": True, "failback_replication": True})])
def test_both_stacks_pass_the_rds_policies(stack, overrides):
    graph = harness.render(stack, overrides=overrides or None).resources
    assert [f.message for f in evaluate(policy_resources(graph, stack), rds.POLICIES)] == []
    types = {r["type"] for r in graph}
    assert rds.RDS_INSTANCE in types and rds.RDS_PARAMETER_GROUP in types  # not vacuous
    assert (rds.SECRET in types) == (stack == "prod")
