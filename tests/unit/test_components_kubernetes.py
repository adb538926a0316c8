"""The Kubernetes component under Pulumi mocks: the ConfigMap contract, the CronJobs' schedule and
hardening, RBAC scope, where the password comes from, and refusal of bad args before any object."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.common import ComponentArgsError
from components.kubernetes import ClusterDr
from components.kubernetes_access import backup_role_policy, export_role_policy
from components.kubernetes_args import ClusterDrArgs, DatabaseEndpoint, DumpTarget, SecretRef, image_problem
from components.kubernetes_scripts import CLEAN, EXPORT
from contract.active_endpoints import CONFIGMAP_NAME, endpoint_keys
from tests import harness
from tests.harness import of_type, one
from tests.helpers.component_kubernetes import (
    BACKUP_ROLE,
    CRONJOB,
    EXPORT_ROLE,
    HOST,
    KEY,
    LOCAL,
    SECRET,
    args,
    containers_of,
    cronjob,
    pod_of,
    render,
)

CONFIGMAP = "kubernetes:core/v1:ConfigMap"


# ---- the active-endpoints ConfigMap ------------------------------------------------------------

def test_configmap_holds_exactly_the_contract_keys_in_every_app_namespace():
    resources = render()
    maps = of_type(resources, CONFIGMAP)
    assert sorted(m["inputs"]["metadata"]["namespace"] for m in maps) == ["checkout", "payments"]
    for m in maps:
        meta, data = m["inputs"]["metadata"], m["inputs"]["data"]
        assert meta["name"] == CONFIGMAP_NAME
        assert meta["labels"]["regionpair.io/contract"] == "active-endpoints"
        assert sorted(data) == sorted(endpoint_keys(["payments", "market-data"]))
        assert data == {
            "REGIONPAIR_CONTRACT_VERSION": "1", "ACTIVE_REGION": "us-east-1",
            "KAFKA_BOOTSTRAP_SERVERS": "b-1.kafka:9098,b-2.kafka:9098", "DATA_BUCKET": "regionpair-prod-data",
            "DB_PAYMENTS_HOST": HOST, "DB_PAYMENTS_PORT": "5432",
            "DB_MARKET_DATA_HOST": "md.example", "DB_MARKET_DATA_PORT": "6543"}
        assert m["inputs"]["immutable"] is False


def test_configmap_data_is_left_to_the_runbooks_after_creation():
    render()
    regs = [r for r in harness.LAST["registrations"] if r["type"] == CONFIGMAP]
    assert regs and all(r["ignore_changes"] == ["data"] for r in regs)
    others = [r for r in harness.LAST["registrations"] if r["type"].startswith("kubernetes:") and r["type"] != CONFIGMAP]
    assert others and all(r["ignore_changes"] == [] for r in others), "only the endpoints' data is left alone"


def test_endpoint_keys_are_a_stable_contract():
    # renaming a key breaks every application that reads it: this list changes only with a new version
    assert endpoint_keys(["payments", "market-data"]) == [
        "REGIONPAIR_CONTRACT_VERSION", "ACTIVE_REGION", "KAFKA_BOOTSTRAP_SERVERS", "DATA_BUCKET",
        "DB_PAYMENTS_HOST", "DB_PAYMENTS_PORT", "DB_MARKET_DATA_HOST", "DB_MARKET_DATA_PORT"]


def test_endpoints_default_to_the_jobs_namespace():
    maps = of_type(render(app_namespaces=()), CONFIGMAP)
    assert [m["inputs"]["metadata"]["namespace"] for m in maps] == ["regionpair"]


# ---- the CronJobs ----------------------------------------------------------------------------------

def test_pgdump_runs_daily_at_0200_utc_one_at_a_time_with_bounded_history_and_deadlines():
    job = cronjob(render(), "regionpair-pgdump-payments")
    spec = job["spec"]
    assert spec["schedule"] == "0 2 * * *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 5)
    assert spec["startingDeadlineSeconds"] == 3600
    job_spec = spec["jobTemplate"]["spec"]
    assert job_spec["backoffLimit"] == 2 and job_spec["activeDeadlineSeconds"] == 4 * 3600
    assert pod_of(job)["restartPolicy"] == "Never"


def test_export_runs_daily_with_the_same_guard_rails():
    spec = cronjob(render(), "regionpair-config-export")["spec"]
    minute, hour, *rest = spec["schedule"].split()
    assert rest == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()  # once a day
    assert spec["timeZone"] == "Etc/UTC" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] and spec["successfulJobsHistoryLimit"] and spec["failedJobsHistoryLimit"]
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 1800
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 2


@pytest.mark.parametrize("k8s_name", ["regionpair-pgdump-payments", "regionpair-config-export"])
def test_every_pod_and_container_is_hardened_and_bounded(k8s_name):
    job = cronjob(render(), k8s_name)
    pod = pod_of(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for c in containers_of(job):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        assert set(c["resources"]["requests"]) == {"cpu", "memory"}, c["name"]
        assert set(c["resources"]["limits"]) == {"cpu", "memory"}, c["name"]
        assert image_problem(c["image"]) is None, c["image"]
    for v in pod["volumes"]:
        assert set(v) == {"name", "emptyDir"} and v["emptyDir"]["sizeLimit"], v  # no hostPath, all bounded


def test_pgdump_reads_the_password_from_secrets_manager_at_run_time_into_memory_only():
    job = cronjob(render(), "regionpair-pgdump-payments")
    pod = pod_of(job)
    assert pod["serviceAccountName"] == "regionpair-backup" and pod["automountServiceAccountToken"] is False
    init = {c["name"]: c for c in pod["initContainers"]}
    assert list(init) == ["password", "pg-dump"]  # fetch, then dump; the upload runs last
    fetch = init["password"]
    assert {e["name"]: e.get("value") for e in fetch["env"]}["SECRET_ARN"] == SECRET
    assert "secretsmanager get-secret-value" in fetch["command"][-1] and "/run/pg/password" in fetch["command"][-1]
    credentials = [v for v in pod["volumes"] if v["name"] == "credentials"]
    assert credentials == [{"name": "credentials", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    dump_env = {e["name"]: e for e in init["pg-dump"]["env"]}
    assert "PGPASSWORD" not in dump_env
    assert {k: dump_env[k]["value"] for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE")} == \
        {"PGHOST": LOCAL, "PGPORT": "5432", "PGDATABASE": "app", "PGUSER": "app_admin", "PGSSLMODE": "require"}
    upload = pod["containers"][0]
    env = {e["name"]: e["value"] for e in upload["env"]}
    assert (env["BUCKET"], env["KMS_KEY_ARN"], env["PREFIX"]) == ("regionpair-dr-backups", KEY, "pgdump")
    assert "--sse aws:kms --sse-kms-key-id \"$KMS_KEY_ARN\"" in upload["command"][-1]


def test_pgdump_can_reference_a_kubernetes_secret_instead():
    dump = DumpTarget(database="payments", host=LOCAL, port=5432, db_name="app", username="app_admin",
                      engine_version="16.4", password_secret=SecretRef(name="payments-db", key="password"))
    pod = pod_of(cronjob(render(dumps=[dump]), "regionpair-pgdump-payments"))
    assert [c["name"] for c in pod["initContainers"]] == ["pg-dump"]
    env = {e["name"]: e for e in pod["initContainers"][0]["env"]}
    assert env["PGPASSWORD"] == {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
        "name": "payments-db", "key": "password", "optional": False}}}
    assert "credentials" not in {v["name"] for v in pod["volumes"]}


def test_no_password_or_secret_value_anywhere_in_the_manifests():
    resources = render()
    for r in resources:
        for c in (containers_of(r["inputs"]) if r["type"] == CRONJOB else []):
            for e in c.get("env", []):
                assert "PASSWORD" not in e["name"] or "valueFrom" in e, (r["name"], e)
            assert "set -x" not in c["command"][-1]
    text = json.dumps(resources)
    # the only assignment of a password is from the in-memory file the init container wrote
    assignments = re.findall(r"PGPASSWORD=(\S+)", text)
    assert assignments and set(assignments) == {"$(cat"}, assignments
    assert '"password":' not in text.lower()
    fields = {f for cls in (ClusterDrArgs, DumpTarget, DatabaseEndpoint) for f in cls.__dataclass_fields__}
    assert not {f for f in fields if "password" in f} - {"password_secret"}, "no argument can carry a password"
    for r in of_type(resources, "kubernetes:core/v1:Secret"):
        pytest.fail(f"the component must not create a Secret ({r['name']})")


def test_export_encrypts_with_the_region_key_and_prints_nothing_of_the_secrets():
    job = cronjob(render(), "regionpair-config-export")
    (c,) = pod_of(job)["containers"]
    script = c["command"][-1]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["EXPORT_NAMESPACES"] == "payments checkout" and env["KMS_KEY_ARN"] == KEY
    assert env["BUCKET"] == "regionpair-dr-backups" and env["PREFIX"] == "k8s-config"
    assert script == EXPORT and env["CLEAN"] == CLEAN  # its behaviour: tests/unit/test_kubernetes_scripts.py
    assert "set -x" not in script
    staging = {v["name"]: v for v in pod_of(job)["volumes"]}["export"]
    assert staging["emptyDir"]["medium"] == "Memory"  # Secrets never touch the node's disk
    assert pod_of(job)["serviceAccountName"] == "regionpair-config-export"


def test_service_accounts_carry_the_irsa_roles():
    sas = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in of_type(render(), "kubernetes:core/v1:ServiceAccount")}
    assert sas["regionpair-backup"]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": BACKUP_ROLE}
    assert sas["regionpair-config-export"]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": EXPORT_ROLE}
    assert all(sa["automountServiceAccountToken"] is False for sa in sas.values())


ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"


def named(resources, typ, k8s_name):
    return [r for r in of_type(resources, typ) if r["inputs"]["metadata"]["name"] == k8s_name]


def test_rbac_reads_configmaps_and_secrets_in_the_named_namespaces_only():
    resources = render()
    roles = named(resources, ROLE, "regionpair-config-export")
    assert sorted(r["inputs"]["metadata"]["namespace"] for r in roles) == ["checkout", "payments"]
    for r in roles:
        assert r["inputs"]["rules"] == [{"apiGroups": [""], "resources": ["configmaps", "secrets"],
                                         "verbs": ["get", "list"]}]
    bindings = named(resources, BINDING, "regionpair-config-export")
    for b in bindings:
        assert b["inputs"]["subjects"] == [{"kind": "ServiceAccount", "name": "regionpair-config-export",
                                            "namespace": "regionpair"}]
        assert b["inputs"]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": "regionpair-config-export"}
    assert len(bindings) == 2
    assert not named(resources, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "regionpair-config-export")
    assert not named(resources, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                     "regionpair-config-export")


def test_cluster_wide_export_only_when_asked():
    resources = render(export_all_namespaces=True)
    (role,) = named(resources, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "regionpair-config-export")
    assert role["inputs"]["rules"] == [{"apiGroups": [""], "resources": ["configmaps", "secrets"],
                                        "verbs": ["get", "list"]}]
    assert not named(resources, ROLE, "regionpair-config-export")
    env = {e["name"]: e["value"] for e in pod_of(cronjob(resources, "regionpair-config-export"))["containers"][0]["env"]}
    assert env["EXPORT_NAMESPACES"] == "*"


def test_the_runbooks_group_may_list_and_patch_the_endpoints_configmap_of_each_app_namespace_and_nothing_else():
    resources = render()
    roles = named(resources, ROLE, "regionpair-runbooks")
    assert sorted(r["inputs"]["metadata"]["namespace"] for r in roles) == ["checkout", "payments"]
    for r in roles:
        assert r["inputs"]["rules"] == [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONFIGMAP_NAME],
             "verbs": ["get", "patch"]}]
    bindings = named(resources, BINDING, "regionpair-runbooks")
    assert sorted(b["inputs"]["metadata"]["namespace"] for b in bindings) == ["checkout", "payments"]
    for b in bindings:
        assert b["inputs"]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                            "name": "regionpair-runbooks"}]
        assert b["inputs"]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": "regionpair-runbooks"}
    # export_all_namespaces widens the export job's reach, never the runbooks'
    wide = render(export_all_namespaces=True, runbook_group="payments-dr-operators")
    assert sorted(r["inputs"]["metadata"]["namespace"] for r in named(wide, ROLE, "regionpair-runbooks")) == [
        "checkout", "payments"]
    assert {b["inputs"]["subjects"][0]["name"] for b in named(wide, BINDING, "regionpair-runbooks")} == {
        "payments-dr-operators"}


def test_listed_deployments_add_get_and_patch_on_exactly_those_names_in_their_namespace_only():
    resources = render(restart_deployments={"payments": ["payments-api", "payments-worker"]})
    rules = {r["inputs"]["metadata"]["namespace"]: r["inputs"]["rules"]
             for r in named(resources, ROLE, "regionpair-runbooks")}
    configmap_rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONFIGMAP_NAME], "verbs": ["get", "patch"]}]
    assert rules["payments"] == configmap_rules + [
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["payments-api", "payments-worker"],
         "verbs": ["get", "patch"]}]
    assert rules["checkout"] == configmap_rules, "a namespace that lists no Deployment gets no Deployment rule"
    for ns_rules in rules.values():
        for rule in ns_rules:
            assert "*" not in json.dumps(rule) and not {"create", "delete", "update", "list", "watch"} & set(
                rule["verbs"]) - ({"list"} if rule["resources"] == ["configmaps"] else set()), rule
    # the Role keeps its logical name: listing a Deployment updates it in place
    assert sorted(r["name"] for r in named(resources, ROLE, "regionpair-runbooks")) == [
        "k8s-runbooks-role-checkout", "k8s-runbooks-role-payments"]


def test_without_restart_deployments_no_role_mentions_deployments():
    for r in named(render(), ROLE, "regionpair-runbooks"):  # the restore's own Role restarts what reads its objects
        assert "deployments" not in json.dumps(r["inputs"]["rules"]) and "apps" not in json.dumps(r["inputs"]["rules"])


def test_runbook_rules_are_the_roles_rules():
    from components.kubernetes_access import runbook_rules
    resources = render(restart_deployments={"checkout": ["checkout-web"]})
    by_ns = {r["inputs"]["metadata"]["namespace"]: r["inputs"]["rules"]
             for r in named(resources, ROLE, "regionpair-runbooks")}
    assert by_ns == {"checkout": runbook_rules(["checkout-web"]), "payments": runbook_rules()}


def test_the_restore_group_may_write_configmaps_of_the_exported_namespaces_restart_workloads_and_read_them():
    from components.kubernetes_access import restore_namespace_rules, restore_rules
    resources = render(export_namespaces=["payments", "ledger"])
    roles = {r["inputs"]["metadata"]["namespace"]: r["inputs"]["rules"]
             for r in named(resources, ROLE, "regionpair-config-restore")}
    assert roles == {"payments": restore_rules(), "ledger": restore_rules()}
    assert roles["payments"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
         "verbs": ["get", "list", "patch"]}]
    assert "secrets" not in json.dumps(roles) and "delete" not in json.dumps(roles) and '"*"' not in json.dumps(roles)
    for b in named(resources, BINDING, "regionpair-config-restore"):
        assert b["inputs"]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                            "name": "regionpair-config-restore"}]
    (cluster_role,) = named(resources, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "regionpair-config-restore")
    assert cluster_role["inputs"]["rules"] == restore_namespace_rules(["ledger", "payments"]) == [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["ledger", "payments"], "verbs": ["get"]}]
    # Secrets only when asked; never cluster-wide write, also when every namespace is exported
    secrets = named(render(restore_secrets=True), ROLE, "regionpair-config-restore")[0]["inputs"]["rules"]
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "patch"]} in secrets
    wide = render(export_all_namespaces=True)
    assert sorted(r["inputs"]["metadata"]["namespace"] for r in named(wide, ROLE, "regionpair-config-restore")) == [
        "checkout", "payments"]
    off = render(restore_group=None)
    assert not named(off, ROLE, "regionpair-config-restore") and not of_type(
        off, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")


def test_namespace_enforces_the_restricted_pod_security_standard():
    ns = one(render(), "kubernetes:core/v1:Namespace")["inputs"]["metadata"]
    assert ns["name"] == "regionpair" and ns["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert not of_type(render(create_namespace=False), "kubernetes:core/v1:Namespace")


def test_children_follow_the_convention():
    for r in render():
        if r["type"].startswith("kubernetes:"):
            assert r["name"].startswith("k8s-") and r["parent"] == "k8s", r["name"]
            assert r["provider"] == "k8s-us-west-2", r["name"]


@pulumi.runtime.test
def test_component_outputs_name_every_configmap():
    harness.use_mocks()
    component = ClusterDr("k8s", args(), opts=pulumi.ResourceOptions(
        provider=k8s.Provider("k8s-us-west-2", context="dr")))
    assert component.configmap_names == [f"payments/{CONFIGMAP_NAME}", f"checkout/{CONFIGMAP_NAME}"]
    assert component.namespace == "regionpair"

    def check(urn: str) -> None:
        assert "regionpair:kubernetes:ClusterDr::k8s" in urn, urn
    return component.urn.apply(check)


# ---- the IAM the roles need (documents; the component creates none) -------------------------------

def test_role_policies_are_least_privilege():
    doc = json.loads(backup_role_policy("aws", "regionpair-dr-backups", KEY, [SECRET]))
    actions = sorted(a for s in doc["Statement"] for a in s["Action"])
    assert actions == ["kms:Decrypt", "kms:GenerateDataKey", "s3:PutObject", "secretsmanager:GetSecretValue"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["WriteDumps"]["Resource"] == ["arn:aws:s3:::regionpair-dr-backups/pgdump/*"]
    assert by_sid["EncryptDumps"]["Resource"] == [KEY]
    assert by_sid["ReadDatabasePassword"]["Resource"] == [SECRET]
    export = json.loads(export_role_policy("aws", "regionpair-dr-backups", KEY))
    assert [s["Resource"] for s in export["Statement"]] == [["arn:aws:s3:::regionpair-dr-backups/k8s-config/*"], [KEY]]
    assert "*" not in json.dumps(doc).replace("/*", "")
    assert "ReadDatabasePassword" not in backup_role_policy("aws", "b", KEY, [])


# ---- bad args ---------------------------------------------------------------------------------

BAD = [
    ({"databases": {}}, "databases", "at least one"),
    ({"databases": {"Payments": DatabaseEndpoint(host="h", port=1)}}, "databases", "lowercase"),
    ({"namespace": "Regionpair"}, "namespace", "namespace name"),
    ({"app_namespaces": ["a", "a"]}, "app_namespaces", "once"),
    ({"export_namespaces": ["kube_system"]}, "export_namespaces", "namespace names"),
    ({"export_all_namespaces": True, "export_namespaces": ["payments"]}, "export_namespaces", "one or the other"),
    ({"backup_role_arn": "regionpair-backup"}, "backup_role_arn", "IAM role ARN"),
    ({"backup_schedule": "daily"}, "backup_schedule", "five-field cron"),
    ({"export_schedule": "CRON_TZ=UTC 0 2 * * *"}, "export_schedule", "five-field cron"),
    ({"postgres_image": "postgres"}, "postgres_image", "explicit tag"),
    ({"tools_image": "alpine/k8s:latest"}, "tools_image", "latest"),
    ({"postgres_image": "postgres:15.8"}, "postgres_image", "cannot dump a PostgreSQL 16"),
    ({"dump_size_limit": "lots"}, "dump_size_limit", "quantity"),
    ({"runbook_group": "system:masters"}, "runbook_group", "reserved system: prefix"),
    ({"restore_group": "system:masters"}, "restore_group", "reserved system: prefix"),
    ({"restore_group": None, "restore_secrets": True}, "restore_secrets", "name the restore_group"),
    ({"dump_deadline_seconds": 10}, "dump_deadline_seconds", "60 to 86400"),
    ({"restart_deployments": {"billing": ["api"]}}, "restart_deployments", "one of the app namespaces"),
    ({"restart_deployments": {"payments": []}}, "restart_deployments.payments", "non-empty list"),
    ({"restart_deployments": {"payments": ["Payments_API"]}}, "restart_deployments.payments", "DNS-1123"),
    ({"restart_deployments": {"payments": ["*"]}}, "restart_deployments.payments", "DNS-1123"),
    ({"restart_deployments": {"payments": ["api", "api"]}}, "restart_deployments.payments", "once"),
    ({"dumps": [DumpTarget(database="ledger", host="h", port=5432, db_name="app", username="u",
                           engine_version="16", secret_arn=SECRET)]}, "dumps[0].database", "one of the databases"),
    ({"dumps": [DumpTarget(database="payments", host="h", port=5432, db_name="app", username="u",
                           engine_version="16")]}, "dumps[0].password", "exactly one"),
    ({"dumps": [DumpTarget(database="payments", host="h", port=5432, db_name="app", username="u",
                           engine_version="16", secret_arn=SECRET, password_secret=SecretRef("s"))]},
     "dumps[0].password", "never a literal"),
]


@pytest.mark.parametrize("kw, arg, fix", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_args_are_refused_before_any_object(kw, arg, fix):
    with pytest.raises(ComponentArgsError) as err:
        render(**kw)
    assert err.value.arg == arg and fix in str(err.value), str(err.value)
    assert not [r for r in harness.LAST["registrations"] if r["type"].startswith(("kubernetes:core", "kubernetes:batch",
                                                                                    "kubernetes:rbac"))]


@pytest.mark.parametrize("image, ok", [
    ("postgres:16.4", True), ("registry.example:5000/team/pg:16.4", True),
    ("registry.example:5000/team/pg", False), ("pg@sha256:" + "a" * 64, True), ("pg@sha256:abc", False),
    ("pg:latest", False), ("pg:16 .4", False)])
def test_image_pinning(image, ok):
    assert (image_problem(image) is None) is ok
