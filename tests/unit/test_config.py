"""Stack config: every required key missing, wrong types, out-of-range values → ConfigError naming
the key, the value and what is allowed. And the committed stack files are valid."""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi
import pytest
import yaml

from components import aws_limits
from stacks import config
from stacks.config_reader import ConfigError
from tests import harness
from tests.helpers.stack_config import dr_values, prod_values


def test_committed_stack_configs_are_valid():
    prod = config.read(prod_values(), stack="prod")
    dr = config.read(dr_values(), stack="dr")
    assert (prod.role, prod.region, dr.role, dr.region) == ("primary", "us-east-1", "secondary", "us-west-2")
    assert dr.prod_stack == "organization/regionpair/prod" and dr.primary_region == "us-east-1"
    assert dr.promoted is False
    db = prod.databases[0]
    # the user's planning documents: 30 days, 03:00-04:00 UTC
    assert (db.backup_retention_days, db.backup_window, db.multi_az) == (30, "03:00-04:00", True)


def test_defaults_when_optional_keys_are_omitted():
    values = prod_values()
    for key in ("backup_retention_days", "backup_window", "maintenance_window", "multi_az", "max_allocated_storage_gb"):
        values["databases"][0].pop(key, None)
    values.pop("backups")
    values.pop("expected_promotion_seconds")
    cfg = config.read(values, stack="prod")
    db = cfg.databases[0]
    assert (db.backup_retention_days, db.backup_window, db.maintenance_window, db.multi_az) == \
        (30, "03:00-04:00", "sun:04:30-sun:05:30", True)
    assert db.max_allocated_storage_gb == 2 * db.allocated_storage_gb
    assert cfg.backups.object_lock_days == 30
    assert (cfg.backups.snapshot_retention_days, cfg.backups.snapshot_keep_newest) == (90, 3)
    assert cfg.expected_promotion_seconds == 300
    assert cfg.network.runbook_cidrs == ()  # no runbook ingress unless asked for


def _drop(path: str):
    def mutate(values: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = values
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[last]
    return mutate


REQUIRED_PROD = ["role", "region", "databases", "databases.0.name", "databases.0.instance_class",
                 "databases.0.engine_version", "databases.0.allocated_storage_gb", "network", "dns", "dns.zone_name",
                 "dns.zone_id", "dns.health_check", "dns.health_check.fqdn", "objectives", "objectives.rto_seconds",
                 "objectives.rpo_seconds"]


def _key(path: str) -> str:
    parts = path.split(".")
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


@pytest.mark.parametrize("path", REQUIRED_PROD)
def test_every_required_key_missing_is_named(path):
    values = prod_values()
    _drop(path)(values)
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == _key(path), str(err.value)
    assert "(missing)" in str(err.value) and "required" in str(err.value)


@pytest.mark.parametrize("key", ["prod_stack", "primary_region"])
def test_dr_requires_the_prod_reference(key):
    values = dr_values()
    del values[key]
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="dr")
    assert err.value.key == key
    assert "(missing)" in str(err.value)


@pytest.mark.parametrize("principals, key, allowed", [
    (None, "runbook_principals", "no longer trust the whole account"),
    ([], "runbook_principals", "no longer trust the whole account"),
    (["arn:aws:iam::123456789012:root"], "runbook_principals[0]", "a whole account"),
    (["123456789012"], "runbook_principals[0]", "a whole account"),
    (["arn:aws:iam::123456789012:group/sre"], "runbook_principals[0]", "role or user ARN"),
])
def test_dr_runbook_principals_are_named_roles_never_a_whole_account(principals, key, allowed):
    """IAM User Guide, "AWS JSON policy elements: Principal": an account principal lets in every
    identity its own policies allow; the runbook role is assumed only by the roles config names."""
    values = dr_values()
    if principals is None:
        del values["runbook_principals"]
    else:
        values["runbook_principals"] = principals
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="dr")
    assert err.value.key == key and allowed in str(err.value), str(err.value)
    # and the committed one is accepted
    assert config.read(dr_values(), stack="dr").runbook_principals == ("arn:aws:iam::123456789012:role/oncall-sre",)


def _set(path: str, value: Any):
    def mutate(values: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = values
        for p in parents:
            target = target[int(p)] if p.isdigit() else target.setdefault(p, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


BAD = [
    # wrong types
    ("role", 5, "role", "primary | secondary"),
    ("role", "tertiary", "role", "primary | secondary"),
    ("region", "mars-1", "region", "AWS region"),
    ("databases", "payments", "databases", "non-empty list"),
    ("databases", [], "databases", "non-empty list"),
    ("databases.0", "payments", "databases[0]", "expected an object"),
    ("databases.0.allocated_storage_gb", "200", "databases[0].allocated_storage_gb", "whole number"),
    ("databases.0.multi_az", "yes", "databases[0].multi_az", "true or false"),
    ("databases.0.logical_replication", 1, "databases[0].logical_replication", "true or false"),
    ("cache", {"name": "sessions", "node_type": "cache.r7g.large", "snapshot_retention_days": 0},
     "cache.snapshot_retention_days", "0 turns them off"),
    ("cache", {"name": "sessions", "node_type": "cache.r7g.large", "snapshot_retention_days": 36},
     "cache.snapshot_retention_days", "at most 35 days"),
    ("cache", {"name": "sessions", "node_type": "cache.r7g.large", "snapshot_window": "hourly"},
     "cache.snapshot_window", "one automatic snapshot a day"),
    ("cache", {"name": "sessions", "node_type": "r7g.large"}, "cache.node_type", "cache.r7g.large"),
    ("databases.0.instance_class", "r6g.large", "databases[0].instance_class", "db.r6g.large"),
    ("databases.0.name", "Payments_DB", "databases[0].name", "lowercase"),
    ("dns.ttl_seconds", "60", "dns.ttl_seconds", "whole number"),
    ("dns", "payments.example.com", "dns", "expected an object"),
    ("objectives.rto_seconds", 900.5, "objectives.rto_seconds", "whole number"),
    ("promoted", "no", "promoted", "true or false"),
    ("tags", {"team": 7}, "tags", "string value"),
    ("network.allowed_cidrs", "10.0.0.0/8", "network.allowed_cidrs", "list of strings"),
    # out of range
    ("databases.0.backup_retention_days", 6, "databases[0].backup_retention_days", "minimum is 7"),
    ("databases.0.backup_retention_days", 36, "databases[0].backup_retention_days", "maximum is 35"),
    ("databases.0.allocated_storage_gb", 10, "databases[0].allocated_storage_gb", "minimum is 20"),
    ("databases.0.max_allocated_storage_gb", 100, "databases[0].max_allocated_storage_gb", "minimum is 200"),
    ("databases.0.backup_window", "3am", "databases[0].backup_window", "HH:MM-HH:MM"),
    ("databases.0.backup_window", "03:00-03:15", "databases[0].backup_window", "at least 30 minutes"),
    ("databases.0.maintenance_window", "sun:03:30-sun:04:30", "databases[0].maintenance_window", "overlaps"),
    ("databases.0.username", "postgres", "databases[0].username", "reserved"),
    ("dns.health_check.interval_seconds", 15, "dns.health_check.interval_seconds", "10 or 30"),
    ("dns.health_check.failure_threshold", 11, "dns.health_check.failure_threshold", "maximum is 10"),
    ("dns.health_check.type", "ICMP", "dns.health_check.type", "HTTPS | HTTP | TCP"),
    ("dns.strategy", "round-robin", "dns.strategy", "health-check-inversion | record-upsert"),
    # the stacks' failover records cannot be moved by record-upsert (the runbook refuses them)
    ("dns.strategy", "record-upsert", "dns.strategy", "use health-check-inversion"),
    ("dns.ttl_seconds", 0, "dns.ttl_seconds", "minimum is 1"),
    ("dns.zone_id", "zone-1", "dns.zone_id", "hosted zone id"),
    ("objectives.rpo_seconds", 0, "objectives.rpo_seconds", "cannot promise zero loss"),
    ("expected_promotion_seconds", 0, "expected_promotion_seconds", "minimum is 1"),
    ("backups.object_lock_days", 0, "backups.object_lock_days", "minimum is 1"),
    ("backups.snapshot_retention_days", 0, "backups.snapshot_retention_days", "minimum is 1"),
    ("backups.snapshot_retention_days", "35d", "backups.snapshot_retention_days", "whole number"),
    ("backups.snapshot_keep_newest", 0, "backups.snapshot_keep_newest", "never deletes the last snapshot"),
    ("backups.snapshot_keep_newest", 101, "backups.snapshot_keep_newest", "maximum is 100"),
    ("backups.keep_newest", 3, "backups.keep_newest", "unknown key"),
    # the compliance tier (document 001: 7 years; S3 minimum storage durations)
    ("backups.compliance_retention_days", 365, "backups.compliance_retention_days", "7 years"),
    ("backups.compliance_retention_days", 36501, "backups.compliance_retention_days", "maximum is 36500"),
    ("backups.compliance_deep_archive_after_days", 100, "backups.compliance_deep_archive_after_days",
     "GLACIER its minimum of 90 days"),
    ("backups.compliance_deep_archive_after_days", 2500, "backups.compliance_retention_days",
     "DEEP_ARCHIVE's minimum of 180 days"),
    ("network.allowed_cidrs", ["0.0.0.0/0"], "network.allowed_cidrs[0]", "whole internet"),
    ("network.allowed_cidrs", ["10.0.0.300/8"], "network.allowed_cidrs[0]", "CIDR block"),
    ("network.allowed_cidrs", [], "network.allowed_cidrs", "at least one"),
    ("network.cidr", "10.10.0.0/24", "network.cidr", "/20 or larger"),
    ("network.vpc_id", "vpc-0123456789abcdef0", "network.subnet_ids", "exactly three"),
    ("network.allowed_security_group_ids", ["default"], "network.allowed_security_group_ids[0]", "sg-"),
    ("network.runbook_cidrs", "10.9.0.10/32", "network.runbook_cidrs", "list of strings"),
    ("network.runbook_cidrs", ["0.0.0.0/0"], "network.runbook_cidrs[0]", "whole internet"),
    ("network.runbook_cidrs", ["10.9.0.300/32"], "network.runbook_cidrs[0]", "CIDR block"),
    ("network.runbook_cidrs", ["10.9.0.10/32", "10.9.0.10/32"], "network.runbook_cidrs", "duplicates"),
    # a runbook rule survives fencing: it must not hold the clients fencing shuts out
    ("network.runbook_cidrs", ["10.0.0.0/8"], "network.runbook_cidrs[0]", "contains the client network 10.0.0.0/8"),
    ("network.runbook_cidrs", ["10.0.0.0/7"], "network.runbook_cidrs[0]", "fenced primary"),
    ("streaming.broker_volume_gb", 0, "streaming.broker_volume_gb", "minimum is 1"),
    ("alarm_email", "sre-at-example", "alarm_email", "e-mail"),
    # misplaced or unknown keys
    ("promoted", True, "promoted", "only the dr stack"),
    ("prod_stack", "organization/regionpair/prod", "prod_stack", "only the dr stack"),
    ("runbook_principals", ["arn:aws:iam::123456789012:role/oncall"], "runbook_principals", "only the dr stack"),
    ("backup_retention", 30, "backup_retention", "unknown key"),
    ("databases.0.backup_retention", 14, "databases[0].backup_retention", "unknown key"),
    ("dns.health_check.intervall", 10, "dns.health_check.intervall", "unknown key"),
]


@pytest.mark.parametrize("path, value, key, allowed", BAD, ids=[f"{b[0]}={b[1]!r}" for b in BAD])
def test_bad_values_name_key_value_and_what_is_allowed(path, value, key, allowed):
    values = prod_values()
    _set(path, value)(values)
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    message = str(err.value)
    assert err.value.key == key, message
    assert f"regionpair:{key}" in message
    assert allowed in message, message


def test_duplicate_database_names():
    values = prod_values()
    values["databases"].append(copy.deepcopy(values["databases"][0]))
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == "databases[1].name" and "unique" in str(err.value)


@pytest.mark.parametrize("project, stack, words", [
    ("regionpair", "prod-" + "x" * 30, "63"),            # the backups bucket name would be too long
    ("regionpair", "Prod", "lowercase"),                   # S3 bucket names are lowercase
    ("ssm-pair", "prod", "prefixed with aws or ssm"),      # /ssm-pair/… is not an SSM parameter name
    ("xn--pair", "prod", "reserves 'xn--'"),               # S3 reserves these bucket name prefixes
    ("sthree-pair", "prod", "reserves 'sthree-'"),
    ("amzn-s3-demo-pair", "prod", "reserves 'amzn-s3-demo-'"),
])
def test_names_derived_from_project_and_stack_must_be_names_aws_accepts(project, stack, words):
    with pytest.raises(ConfigError, match=words) as err:
        config.read(prod_values(), stack=stack, project=project)
    assert err.value.key == "(project and stack names)"


def test_reserved_bucket_name_suffixes_are_known():
    # the derived names end with the region, so only the prefixes can bite; the check knows both
    assert aws_limits.bucket_name_reserved("data--table-s3") == "--table-s3"
    assert aws_limits.bucket_name_reserved("regionpair-prod-backups-000000000000-us-east-1") is None


def test_the_longest_region_name_still_fits_a_bucket_name():
    values = prod_values()
    values["region"] = "ap-southeast-2"
    assert config.read(values, stack="prod").region == "ap-southeast-2"


def test_dr_primary_region_must_differ():
    values = dr_values()
    values["primary_region"] = values["region"]
    with pytest.raises(ConfigError, match="must differ") as err:
        config.read(values, stack="dr")
    assert err.value.key == "primary_region"


def test_existing_vpc_with_three_subnets():
    values = prod_values()
    values["network"].update(vpc_id="vpc-0123456789abcdef0",
                             subnet_ids=[f"subnet-0123456789abcdef{i}" for i in range(3)])
    cfg = config.read(values, stack="prod")
    assert cfg.network.vpc_id == "vpc-0123456789abcdef0" and len(cfg.network.subnet_ids) == 3


def test_config_is_frozen():
    cfg = config.read(prod_values(), stack="prod")
    with pytest.raises(Exception):
        cfg.role = "secondary"  # type: ignore[misc]


def test_pulumi_yaml_schema_documents_every_key():
    schema = yaml.safe_load((harness.ROOT / "Pulumi.yaml").read_text())
    assert schema["name"] == "regionpair"
    assert schema["runtime"]["name"] == "python"
    assert schema["runtime"]["options"]["virtualenv"] == ".venv"
    keys = schema["config"]
    assert set(keys) == {f"regionpair:{k}" for k in config.KEYS} | {"aws:region"}
    for key, spec in keys.items():
        assert spec.get("type") in ("string", "integer", "boolean", "array", "object"), key
        assert len(spec.get("description", "")) > 10, key
    # every key a stack file uses is in the schema
    for stack in ("prod", "dr"):
        assert set(harness.stack_config(stack)) <= set(keys), stack


@pulumi.runtime.test
def test_from_pulumi_reads_the_engine_config():
    from pulumi.runtime.config import set_all_config
    set_all_config(harness.stack_config("dr"))
    cfg = config.from_pulumi()
    assert (cfg.role, cfg.region, cfg.prod_stack) == ("secondary", "us-west-2", "organization/regionpair/prod")
    assert cfg.databases[0].backup_retention_days == 30
    assert cfg.tags == {"service": "payments", "owner": "sre"}
    json.dumps(cfg.tags)


@pulumi.runtime.test
def test_from_pulumi_reads_the_config_bag_the_engine_passes_in_the_environment(monkeypatch):
    from pulumi.runtime.config import set_all_config
    set_all_config({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(harness.stack_config("prod")))
    cfg = config.from_pulumi()
    assert (cfg.role, cfg.region, cfg.databases[0].name) == ("primary", "us-east-1", "payments")
    bag = {**harness.stack_config("prod"), "regionpair:backup_retention": "14"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(bag))
    with pytest.raises(ConfigError) as err:
        config.from_pulumi()
    assert err.value.key == "backup_retention" and "unknown key" in str(err.value)


def test_drill_settings_default_off_and_a_bad_record_prefix_is_named():
    cfg = config.read(prod_values(), stack="prod")
    assert cfg.ephemeral is False and cfg.dns.record_prefix == ""
    values = prod_values()
    values["ephemeral"] = True
    values["dns"]["record_prefix"] = "drill-7-"
    cfg = config.read(values, stack="prod")
    assert cfg.ephemeral is True and cfg.dns.record_name("payments") == "drill-7-payments.payments.example.com"
    values["dns"]["record_prefix"] = "Drill 7"
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.args and "dns.record_prefix" in str(err.value) and "Drill 7" in str(err.value)
    values["dns"]["record_prefix"] = ""
    values["ephemeral"] = "yes"
    with pytest.raises(ConfigError, match="ephemeral"):
        config.read(values, stack="prod")


# ---- the optional kubernetes section ------------------------------------------------------------

def k8s_values(**kw) -> dict[str, Any]:
    values = prod_values()
    values["kubernetes"] = {"context": "prod-cluster",
                            "backup_role_arn": "arn:aws:iam::123456789012:role/regionpair-prod-k8s-backup",
                            "export_role_arn": "arn:aws:iam::123456789012:role/regionpair-prod-k8s-export", **kw}
    return values


def test_kubernetes_section_is_optional_and_absent_from_the_committed_stacks():
    assert config.read(prod_values(), stack="prod").kubernetes is None
    assert config.read(dr_values(), stack="dr").kubernetes is None


def test_kubernetes_section_defaults():
    k = config.read(k8s_values(), stack="prod").kubernetes
    assert (k.runbook_context, k.runbook_group) == ("prod-cluster", "regionpair-runbooks")
    assert (k.namespace, k.create_namespace, k.app_namespaces, k.export_namespaces) == ("regionpair", True, (), ())
    assert (k.backup_schedule, k.export_schedule, k.logical_backups) == ("0 2 * * *", "30 2 * * *", True)
    assert k.export_all_namespaces is False and k.password_secrets == {}
    assert (k.postgres_image, k.tools_image, k.dump_size_limit) == (None, None, "20Gi")


def test_the_config_restore_group_defaults_to_its_own_without_secrets_and_can_be_turned_off():
    k = config.read(k8s_values(), stack="prod").kubernetes
    assert (k.restore_group, k.restore_secrets) == ("regionpair-config-restore", False)
    k = config.read(k8s_values(restore_group="payments-restorers", restore_secrets=True), stack="prod").kubernetes
    assert (k.restore_group, k.restore_secrets) == ("payments-restorers", True)
    assert config.read(k8s_values(restore_group=False), stack="prod").kubernetes.restore_group is None


def test_restart_deployments_name_deployments_of_the_app_namespaces():
    assert config.read(k8s_values(), stack="prod").kubernetes.restart_deployments == {}
    k = config.read(k8s_values(app_namespaces=["payments", "checkout"],
                               restart_deployments={"payments": ["payments-api", "payments.worker"]}),
                    stack="prod").kubernetes
    assert k.restart_deployments == {"payments": ("payments-api", "payments.worker")}
    with pytest.raises(ConfigError) as err:  # the jobs' namespace is not an app namespace once those are named
        config.read(k8s_values(app_namespaces=["payments"], restart_deployments={"regionpair": ["x"]}), stack="prod")
    assert err.value.key == "kubernetes.restart_deployments.regionpair"
    assert "add it to app_namespaces" in str(err.value)


def test_kubeconfig_is_never_shown_in_the_config_object_or_errors():
    kubeconfig = "apiVersion: v1\nclusters: []\nusers: [{name: x, user: {token: hunter2-token}}]\n"
    cfg = config.read(k8s_values(kubeconfig=kubeconfig, context=None, runbook_context="prod-cluster"), stack="prod",
                      secret_keys=frozenset({"kubernetes"}))
    assert cfg.kubernetes.kubeconfig == kubeconfig and "hunter2" not in repr(cfg)
    with pytest.raises(ConfigError) as err:
        config.read(k8s_values(kubeconfig=kubeconfig), stack="prod", secret_keys=frozenset())
    assert err.value.key == "kubernetes.kubeconfig" and "plain text" in str(err.value)
    with pytest.raises(ConfigError) as err:
        config.read(k8s_values(kubeconfig="token: hunter2-token"), stack="prod", secret_keys=frozenset({"kubernetes"}))
    assert err.value.key == "kubernetes.kubeconfig" and "kubeconfig file" in str(err.value)
    assert "hunter2" not in str(err.value) and "(secret, not shown)" in str(err.value)


def test_the_runbooks_context_defaults_to_context_and_is_required_with_a_kubeconfig_alone():
    kubeconfig = "apiVersion: v1\nclusters: []\n"
    with pytest.raises(ConfigError) as err:
        config.read(k8s_values(kubeconfig=kubeconfig, context=None), stack="prod", secret_keys=frozenset({"kubernetes"}))
    assert err.value.key == "kubernetes.runbook_context" and "aws eks update-kubeconfig" in str(err.value)
    arn = "arn:aws:eks:us-east-1:123456789012:cluster/payments"
    k = config.read(k8s_values(runbook_context=arn), stack="prod").kubernetes
    assert (k.context, k.runbook_context) == ("prod-cluster", arn)


K8S_BAD = [
    ({"context": None}, "kubernetes.context", "name the cluster explicitly"),
    ({"backup_role_arn": None}, "kubernetes.backup_role_arn", "required"),
    ({"export_role_arn": "regionpair-export"}, "kubernetes.export_role_arn", "IAM role ARN"),
    ({"namespace": "Payments"}, "kubernetes.namespace", "namespace name"),
    ({"app_namespaces": "payments"}, "kubernetes.app_namespaces", "list of strings"),
    ({"app_namespaces": ["payments", "payments"]}, "kubernetes.app_namespaces", "duplicates"),
    ({"export_namespaces": ["kube_system"]}, "kubernetes.export_namespaces[0]", "namespace names"),
    ({"export_all_namespaces": True, "export_namespaces": ["payments"]}, "kubernetes.export_namespaces", "remove one"),
    ({"export_all_namespaces": "yes"}, "kubernetes.export_all_namespaces", "true or false"),
    ({"backup_schedule": "daily at 2"}, "kubernetes.backup_schedule", "five-field cron"),
    ({"export_schedule": "0 2 * *"}, "kubernetes.export_schedule", "five-field cron"),
    ({"postgres_image": "postgres"}, "kubernetes.postgres_image", "explicit tag"),
    ({"tools_image": "alpine/k8s:latest"}, "kubernetes.tools_image", "latest"),
    ({"dump_size_limit": "20GB"}, "kubernetes.dump_size_limit", "20Gi"),
    ({"password_secrets": {"ledger": {"name": "ledger-db"}}}, "kubernetes.password_secrets.ledger", "no database"),
    ({"password_secrets": {"payments": {"name": "Payments_DB"}}}, "kubernetes.password_secrets.payments.name",
     "Secret name"),
    ({"password_secrets": {"payments": {"name": "p", "value": "x"}}}, "kubernetes.password_secrets.payments.value",
     "unknown key"),
    ({"cluster": "prod"}, "kubernetes.cluster", "unknown key"),
    ({"runbook_context": "prod cluster"}, "kubernetes.runbook_context", "context name"),
    ({"runbook_group": "system:masters"}, "kubernetes.runbook_group", "not system:"),
    ({"restore_group": "system:masters"}, "kubernetes.restore_group", "not system:"),
    ({"restore_group": False, "restore_secrets": True}, "kubernetes.restore_secrets", "nobody could use it"),
    ({"restore_secrets": "yes"}, "kubernetes.restore_secrets", "true or false"),
    ({"restart_deployments": ["payments-api"]}, "kubernetes.restart_deployments", "mapping of app namespace"),
    ({"restart_deployments": {"checkout": ["web"]}}, "kubernetes.restart_deployments.checkout",
     "not one of the app namespaces ['regionpair']"),
    ({"restart_deployments": {"regionpair": "web"}}, "kubernetes.restart_deployments.regionpair", "list of strings"),
    ({"restart_deployments": {"regionpair": []}}, "kubernetes.restart_deployments.regionpair", "name at least one"),
    ({"restart_deployments": {"regionpair": None}}, "kubernetes.restart_deployments.regionpair", "name at least one"),
    ({"restart_deployments": {"regionpair": ["web", "Web_2"]}}, "kubernetes.restart_deployments.regionpair[1]",
     "DNS-1123"),
    ({"restart_deployments": {"regionpair": ["web", "web"]}}, "kubernetes.restart_deployments.regionpair",
     "duplicates"),
]


@pytest.mark.parametrize("kw, key, allowed", K8S_BAD, ids=[b[1] + ":" + b[2] for b in K8S_BAD])
def test_bad_kubernetes_values_name_key_value_and_what_is_allowed(kw, key, allowed):
    values = k8s_values(**{k: v for k, v in kw.items() if v is not None})
    for k, v in kw.items():
        if v is None:
            del values["kubernetes"][k]
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == key, str(err.value)
    assert f"regionpair:{key}" in str(err.value) and allowed in str(err.value), str(err.value)


def test_kubernetes_section_must_be_an_object():
    values = prod_values()
    values["kubernetes"] = "prod-cluster"
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == "kubernetes" and "expected an object" in str(err.value)


@pulumi.runtime.test
def test_from_pulumi_tells_a_secret_kubeconfig_from_a_plain_one(monkeypatch):
    from pulumi.runtime.config import set_all_config
    kubeconfig = "apiVersion: v1\nclusters: []\n"
    bag = {**harness.stack_config("prod"), "regionpair:kubernetes": json.dumps(
        k8s_values(kubeconfig=kubeconfig, context=None, runbook_context="prod-cluster")["kubernetes"])}
    set_all_config(bag, [])
    with pytest.raises(ConfigError, match="plain text"):
        config.from_pulumi()
    set_all_config({}, [])
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(bag))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["regionpair:kubernetes"]))
    assert config.from_pulumi().kubernetes.kubeconfig == kubeconfig


def test_runbook_cidrs_are_read_and_may_sit_inside_a_client_network():
    values = prod_values()
    values["network"]["runbook_cidrs"] = ["10.9.0.10/32", "192.168.50.0/28"]
    cfg = config.read(values, stack="prod")
    assert cfg.network.runbook_cidrs == ("10.9.0.10/32", "192.168.50.0/28")


def test_failback_replication_is_for_a_promoted_dr_stack_only():
    values = dr_values()
    values["failback_replication"] = True
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="dr")
    assert err.value.key == "failback_replication" and "promoted: true first" in str(err.value)
    values["promoted"] = True
    assert config.read(values, stack="dr").failback_replication is True
    values = prod_values()
    values["failback_replication"] = True
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == "failback_replication" and "only the dr stack" in str(err.value)


@pytest.mark.parametrize("apps, problem", [(["Orders"], "lower-case"), (["orders", "orders"], "duplicates"),
                                           (["-x"], "lower-case")])
def test_streaming_applications_are_checked(apps, problem):
    values = prod_values()
    values.setdefault("streaming", {})["applications"] = apps
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key.startswith("streaming.applications") and problem in str(err.value)


@pytest.mark.parametrize("key, value, words", [
    ("kafka_version", "2.8.0", "2.8.1 or later"),
    ("kafka_version", "2.7.1", "2.8.1 or later"),
    ("broker_instance_type", "kafka.t3.small", "do not support kafka.t3.small"),
])
def test_streaming_refuses_what_msk_replicator_does_not_support(key, value, words):
    """MSK Developer Guide, "Supported cluster types and versions for MSK Replicator": both clusters are
    Replicator sources and targets, so the config refuses versions and broker types it cannot use."""
    values = prod_values()
    values.setdefault("streaming", {})[key] = value
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == f"streaming.{key}" and words in str(err.value) and "MSK Developer Guide" in str(err.value)


@pytest.mark.parametrize("key, value", [("kafka_version", "2.8.1"), ("kafka_version", "3.6.0"),
                                        ("kafka_version", "2.8.2.tiered"),
                                        ("broker_instance_type", "kafka.m7g.large")])
def test_streaming_accepts_what_msk_replicator_supports(key, value):
    values = prod_values()
    values.setdefault("streaming", {})[key] = value
    assert getattr(config.read(values, stack="prod").streaming, key) == value


def test_a_pinned_minor_version_with_auto_minor_upgrades_is_refused():
    """pulumi-aws aws.rds.Instance engine_version: with auto_minor_version_upgrade RDS moves the minor
    version; a pinned "16.4" then drifts and the next `pulumi up` plans a downgrade (issue 10, point 4)."""
    values = prod_values()
    values["databases"][0]["engine_version"] = "16.4"
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="prod")
    assert err.value.key == "databases[0].engine_version" and err.value.value == "16.4"
    assert "pin the major version only, e.g. '16'" in str(err.value)
    assert "auto_minor_version_upgrade: false" in str(err.value)
    values["databases"][0]["auto_minor_version_upgrade"] = False
    db = config.read(values, stack="prod").databases[0]
    assert (db.engine_version, db.auto_minor_version_upgrade) == ("16.4", False)
    assert config.read(prod_values(), stack="prod").databases[0].engine_version == "16"


def test_prod_names_the_dr_region_its_password_secrets_are_replicated_to():
    assert config.read(prod_values(), stack="prod").dr_region == "us-west-2"
    for value, words in ((None, "(missing): the databases' password secrets are replicated"),
                         ("us-east-1", "must differ"), ("west", "the DR region, e.g. us-west-2")):
        values = prod_values()
        values["dr_region"] = value
        with pytest.raises(ConfigError) as err:
            config.read(values, stack="prod")
        assert err.value.key == "dr_region" and words in str(err.value), str(err.value)
    values = dr_values()
    values["dr_region"] = "us-west-2"
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="dr")
    assert err.value.key == "dr_region" and "only the prod stack" in str(err.value)


def test_logical_replication_is_read_per_database():
    values = prod_values()
    values["databases"][0]["logical_replication"] = True
    assert config.read(values, stack="prod").databases[0].logical_replication is True
    assert config.read(prod_values(), stack="prod").databases[0].logical_replication is False


def test_the_cache_is_declared_by_prod_only():
    values = dr_values()
    values["cache"] = {"name": "sessions", "node_type": "cache.r7g.large"}
    with pytest.raises(ConfigError) as err:
        config.read(values, stack="dr")
    assert err.value.key == "cache" and "only the prod stack" in str(err.value)
    values = prod_values()
    values["cache"] = {"name": "sessions", "node_type": "cache.r7g.large"}
    c = config.read(values, stack="prod").cache
    assert (c.snapshot_retention_days, c.snapshot_window, c.export) == (7, "04:00-05:00", True)
