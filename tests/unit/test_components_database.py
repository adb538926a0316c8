"""The database component: primary, replica, and the promoted replica that must never be replaced."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.common import ComponentArgsError
from components.database import REPLACING_INPUTS, ReplicatedPostgres, ReplicatedPostgresArgs
from tests import harness
from tests.harness import of_type, one

KEY = "arn:aws:kms:us-west-2:123456789012:key/dr"
SOURCE = "arn:aws:rds:us-east-1:123456789012:db:regionpair-prod-payments"
INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def args(role: str, **kw) -> ReplicatedPostgresArgs:
    base = dict(identifier="regionpair-dr-payments", role=role, instance_class="db.r6g.large", engine_version="16",
                allocated_storage_gb=200, kms_key_arn=KEY, db_subnet_group_name="regionpair-dr-db",
                security_group_ids=["sg-0123456789abcdef0"],
                source_db_arn=None if role == "primary" else SOURCE,
                secret_replica_regions=("us-east-1",) if role == "primary" else ())
    base.update(kw)
    return ReplicatedPostgresArgs(**base)


def render(role: str, **kw):
    def program():
        provider = aws.Provider("aws-us-west-2", region="us-west-2")
        ReplicatedPostgres("payments", args(role, **kw), opts=pulumi.ResourceOptions(provider=provider))
    return harness.render_program(program).resources


def test_primary_has_every_protection():
    resources = render("primary")
    db = one(resources, INSTANCE)["inputs"]
    assert db["engine"] == "postgres" and db["engineVersion"] == "16" and db["autoMinorVersionUpgrade"] is True
    assert db["multiAz"] is True
    assert db["storageEncrypted"] is True and db["kmsKeyId"] == KEY
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"] == "regionpair-dr-payments-final"
    assert db["copyTagsToSnapshot"] is True
    assert "manageMasterUserPassword" not in db and "masterUserSecretKmsKeyId" not in db
    assert set(db["password"]) == {"secret"}, "the password reaches RDS only as a secret Output"
    assert db["iamDatabaseAuthenticationEnabled"] is True
    assert db["performanceInsightsEnabled"] is True and db["performanceInsightsKmsKeyId"] == KEY
    assert db["monitoringInterval"] == 60 and db["monitoringRoleArn"].startswith("arn:aws:iam::")
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert db["publiclyAccessible"] is False
    assert (db["backupRetentionPeriod"], db["backupWindow"]) == (30, "03:00-04:00")
    assert db["maintenanceWindow"] == "sun:04:30-sun:05:30"
    assert (db["dbName"], db["username"]) == ("app", "app_admin")
    assert "replicateSourceDb" not in db
    params = one(resources, "aws:rds/parameterGroup:ParameterGroup")["inputs"]
    assert params["family"] == "postgres16"
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"} in params["parameters"]
    assert db["parameterGroupName"] == params["name"]
    assert not of_type(resources, "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    trust = json.loads(one(resources, "aws:iam/role:Role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    for r in resources:
        if r["type"].startswith("aws:"):
            assert r["parent"] == "payments" and r["name"].startswith("payments-"), r["name"]


def test_replica_replicates_the_primary_arn_with_the_dr_key_and_replicates_backups():
    resources = render("replica")
    db = one(resources, INSTANCE)["inputs"]
    assert db["replicateSourceDb"] == SOURCE
    assert db["kmsKeyId"] == KEY and db["storageEncrypted"] is True
    assert "manageMasterUserPassword" not in db and "username" not in db and "dbName" not in db
    assert db["deletionProtection"] is True
    # RDS takes no final snapshot of a replica and refuses a delete that names one
    assert db["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in db
    assert "password" not in db, "a replica inherits the primary's password"
    assert not of_type(resources, SECRET)
    backups = one(resources, "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert backups["inputs"] == {"sourceDbInstanceArn": SOURCE, "kmsKeyId": KEY, "retentionPeriod": 30}
    assert backups["provider"] == "aws-us-west-2"


def test_promoted_keeps_the_logical_name_and_every_replacing_input():
    replica = {r["urn"]: r for r in render("replica")}
    promoted = {r["urn"]: r for r in render("promoted")}
    assert set(replica) == set(promoted), "promotion must neither add nor remove a resource"
    (urn,) = [u for u, r in replica.items() if r["type"] == INSTANCE]
    before, after = replica[urn]["inputs"], promoted[urn]["inputs"]
    assert "replicateSourceDb" in before and "replicateSourceDb" not in after
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    # a standalone instance keeps a final snapshot; the password is not touched (no RDS-managed one)
    assert changed == {"replicateSourceDb", "skipFinalSnapshot", "finalSnapshotIdentifier"}
    assert after["skipFinalSnapshot"] is False and after["finalSnapshotIdentifier"] == "regionpair-dr-payments-final"
    assert not {"password", "manageMasterUserPassword"} & (set(before) | set(after))
    assert not changed & set(REPLACING_INPUTS)
    for u in replica:
        if replica[u]["type"] != INSTANCE:
            assert replica[u]["inputs"] == promoted[u]["inputs"], replica[u]["name"]


def test_a_pinned_minor_version_is_accepted_without_auto_minor_upgrades():
    db = one(render("primary", engine_version="16.4", auto_minor_version_upgrade=False), INSTANCE)["inputs"]
    assert (db["engineVersion"], db["autoMinorVersionUpgrade"]) == ("16.4", False)


def test_primary_password_is_generated_stored_in_a_replicated_secret_and_written_once():
    resources = render("primary")
    db = one(resources, INSTANCE)["inputs"]
    secret = one(resources, SECRET)["inputs"]
    assert secret["name"] == "regionpair-dr-payments/master" and secret["kmsKeyId"] == KEY
    assert secret["replicas"] == [{"region": "us-east-1"}], "the DR copy is declared by the stack"
    value = one(resources, VERSION)["inputs"]["secretString"]
    assert set(value) == {"secret"}
    stored = json.loads(value["secret"])
    assert stored["username"] == "app_admin" and stored["password"] == db["password"]["secret"]
    assert [c["token"] for c in harness.LAST["calls"]] == ["aws:secretsmanager/getRandomPassword:getRandomPassword"]
    ignored = {r["type"]: r["ignore_changes"] for r in harness.LAST["registrations"]}
    # GetRandomPassword answers a new value on every run: written at creation, never rotated by an up
    assert ignored[VERSION] == ["secretString"] and ignored[SECRET] == []
    assert set(ignored[INSTANCE]) == {"replicateSourceDb", "password"}


def test_no_role_lets_pulumi_promote_or_rotate_the_password_of_a_live_instance():
    for role in ("primary", "replica", "promoted"):
        render(role)
        (inst,) = [r for r in harness.LAST["registrations"] if r["type"] == INSTANCE]
        assert set(inst["ignore_changes"]) == {"replicateSourceDb", "password"}, role


def test_a_fresh_primary_is_not_a_promoted_replica():
    # promoted must not declare db_name/username: the replica inherited them and they force a replacement
    primary = one(render("primary"), INSTANCE)["inputs"]
    promoted = one(render("promoted"), INSTANCE)["inputs"]
    assert "username" in primary and "username" not in promoted
    assert "dbName" in primary and "dbName" not in promoted


@pytest.mark.parametrize("role, kw, arg", [
    ("replica", {"source_db_arn": None}, "source_db_arn"),
    ("primary", {"source_db_arn": SOURCE}, "source_db_arn"),
    ("standby", {}, "role"),
    ("primary", {"backup_retention_days": 6}, "backup_retention_days"),
    ("primary", {"identifier": "Payments_DB"}, "identifier"),
    ("primary", {"max_allocated_storage_gb": 100}, "max_allocated_storage_gb"),
    ("primary", {"monitoring_interval_seconds": 7}, "monitoring_interval_seconds"),
    ("primary", {"engine_version": "16.4"}, "engine_version"),  # a pinned minor with auto minor upgrades
    ("replica", {"secret_replica_regions": ("us-east-1",)}, "secret_replica_regions"),
    ("primary", {"secret_recovery_days": 3}, "secret_recovery_days"),
    ("primary", {"secret_replica_regions": ("US West",)}, "secret_replica_regions"),
])
def test_bad_args_fail_before_any_resource(role, kw, arg):
    with pytest.raises(ComponentArgsError) as err:
        ReplicatedPostgres("payments", args(role, **kw))
    assert err.value.arg == arg and "regionpair:database:ReplicatedPostgres" in str(err.value)


@pulumi.runtime.test
def test_component_outputs_under_runtime_test():
    harness.use_mocks()
    db = ReplicatedPostgres("payments", args("primary"))

    def check(values):
        arn, address, port, secret = values
        assert arn == "arn:aws:rds:us-east-1:123456789012:db:regionpair-dr-payments"
        assert address.startswith("regionpair-dr-payments.") and port == 5432
        assert secret.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:regionpair-dr-payments/master-")
    return pulumi.Output.all(db.arn, db.address, db.port, db.secret_arn).apply(check)


def test_logical_replication_is_a_static_parameter_applied_at_reboot_and_off_by_default():
    params = one(render("primary"), "aws:rds/parameterGroup:ParameterGroup")["inputs"]["parameters"]
    assert not [p for p in params if p["name"] == "rds.logical_replication"]
    for role in ("primary", "replica", "promoted"):  # a promoted replica must be able to take the CDC slots
        params = one(render(role, logical_replication=True), "aws:rds/parameterGroup:ParameterGroup")["inputs"]
        assert {"name": "rds.logical_replication", "value": "1", "applyMethod": "pending-reboot"} in params["parameters"]
