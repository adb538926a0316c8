"""The stacks with the optional `kubernetes` section: what each region's cluster gets, that it is
the ACTIVE side's endpoints, that nothing else of the stack changes, and committed snapshots.

Without the section, the prod/dr snapshots of test_stacks.py hold no Kubernetes object at all
(asserted here too): the section is optional and absent from most users' stacks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from contract.active_endpoints import CONFIGMAP_NAME, endpoint_keys
from stacks.config_reader import ConfigError
from tests import harness
from tests.harness import of_type, one
from tests.helpers.stack_kubernetes import CRONJOB, cronjob, env_of, pod, section

SNAPSHOTS = Path(__file__).parent / "snapshots"
STACKS = ("prod", "dr")
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
KUBECONFIG = ("apiVersion: v1\nkind: Config\nclusters:\n- name: dr\n  cluster:\n    server: https://k8s.example\n"
              "users:\n- name: ci\n  user:\n    token: kubeconfig-token-that-must-stay-secret\n")


_RENDERS: dict[str, harness.Rendered] = {}


def with_k8s(stack: str) -> harness.Rendered:
    if stack not in _RENDERS:
        _RENDERS[stack] = harness.render(stack, overrides={"kubernetes": section(stack)})
    return _RENDERS[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_without_the_section_no_kubernetes_object_or_provider_is_declared(stack):
    assert not [r for r in harness.render_stack(stack) if r["type"].startswith(("kubernetes:", "pulumi:providers:kubernetes"))]


@pytest.mark.parametrize("stack", STACKS)
def test_the_section_adds_kubernetes_objects_only(stack):
    plain = {r["urn"]: r for r in harness.render_stack(stack)}
    rendered = with_k8s(stack)
    added = {r["urn"]: r for r in rendered.resources if r["urn"] not in plain}
    assert {r["urn"] for r in rendered.resources} >= set(plain), "nothing of the stack goes away"
    for r in rendered.resources:
        if r["urn"] in plain:
            assert r == plain[r["urn"]], f"{r['name']} changed when the kubernetes section was added"
    assert added and all(r["type"].startswith(("kubernetes:", "pulumi:providers:kubernetes", "regionpair:kubernetes"))
                         for r in added.values()), sorted(r["type"] for r in added.values())
    # the outputs gain only how the runbooks reach the cluster (never the kubeconfig)
    region = "us-east-1" if stack == "prod" else "us-west-2"
    exports = copy.deepcopy(rendered.exports)
    assert exports["regions"][region].pop("kubernetes") == {
        "context": section(stack)["context"], "namespaces": ["payments"], "configmap": CONFIGMAP_NAME,
        "restart_deployments": {"payments": ["payments-api"]}}
    plain_exports = copy.deepcopy(harness.stack_exports(stack))
    assert plain_exports["regions"][region].pop("kubernetes") is None
    assert exports == plain_exports, "nothing else of the outputs contract changes"


@pytest.mark.parametrize("stack", STACKS)
def test_listed_deployments_reach_the_role_and_the_outputs_and_without_them_neither_does(stack):
    region = "us-east-1" if stack == "prod" else "us-west-2"
    (role,) = [r for r in of_type(with_k8s(stack).resources, ROLE) if r["inputs"]["metadata"]["name"] == "regionpair-runbooks"]
    assert role["inputs"]["rules"][-1] == {"apiGroups": ["apps"], "resources": ["deployments"],
                                           "resourceNames": ["payments-api"], "verbs": ["get", "patch"]}
    plain = harness.render(stack, overrides={"kubernetes": section(stack, restart_deployments=...)})
    (role,) = [r for r in of_type(plain.resources, ROLE) if r["inputs"]["metadata"]["name"] == "regionpair-runbooks"]
    assert "deployments" not in json.dumps(role["inputs"]["rules"])
    assert plain.exports["regions"][region]["kubernetes"] == {
        "context": section(stack)["context"], "namespaces": ["payments"], "configmap": CONFIGMAP_NAME}
    # only the Role differs: every other object is the same with or without the list
    listed = {r["urn"]: r for r in with_k8s(stack).resources}
    assert [u for u, r in {r["urn"]: r for r in plain.resources}.items() if listed[u] != r] == [role["urn"]]


def test_a_deployment_outside_the_app_namespaces_is_refused_before_any_resource():
    with pytest.raises(ConfigError) as err:
        harness.render("dr", overrides={"kubernetes": section("dr", restart_deployments={"checkout": ["web"]})})
    assert err.value.key == "kubernetes.restart_deployments.checkout" and "app_namespaces" in str(err.value)
    assert not [r for r in harness.LAST["registrations"] if r["type"].startswith("kubernetes:")]


@pytest.mark.parametrize("stack, region", [("prod", "us-east-1"), ("dr", "us-west-2")])
def test_every_kubernetes_object_goes_to_the_regions_cluster_through_one_explicit_provider(stack, region):
    resources = with_k8s(stack).resources
    (provider,) = of_type(resources, "pulumi:providers:kubernetes")
    assert provider["name"] == f"k8s-{region}"
    assert provider["inputs"]["context"] == section(stack)["context"]
    # provider inputs reach the engine JSON-encoded
    assert (provider["inputs"]["enableConfigMapMutable"], provider["inputs"]["enablePatchForce"],
            provider["inputs"]["enableServerSideApply"]) == ("true", "false", "true")
    for r in resources:
        if r["type"].startswith("kubernetes:"):
            assert r["provider"] == f"k8s-{region}", r["name"]
            assert r["parent"] == "k8s" and r["name"].startswith("k8s-"), r["name"]


def test_prod_cluster_reads_prods_own_endpoints():
    resources = with_k8s("prod").resources
    exports = harness.stack_exports("prod")["regions"]["us-east-1"]
    (cm,) = of_type(resources, CONFIGMAP)
    assert cm["inputs"]["metadata"] == {**cm["inputs"]["metadata"], "name": CONFIGMAP_NAME, "namespace": "payments"}
    data = cm["inputs"]["data"]
    assert sorted(data) == sorted(endpoint_keys(["payments"]))
    assert data["ACTIVE_REGION"] == "us-east-1"
    assert data["DB_PAYMENTS_HOST"] == exports["databases"]["payments"]["endpoint"]
    assert data["DB_PAYMENTS_PORT"] == "5432"
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == exports["streaming"]["bootstrap_brokers"]
    assert data["DATA_BUCKET"] == exports["storage"]["data_bucket"]
    dump = cronjob(resources, "regionpair-pgdump-payments")
    assert dump["spec"]["schedule"] == "0 2 * * *" and dump["spec"]["timeZone"] == "Etc/UTC"
    init = {c["name"]: c for c in pod(dump)["initContainers"]}
    assert env_of(init["pg-dump"])["PGHOST"] == exports["databases"]["payments"]["endpoint"]
    assert env_of(init["password"])["SECRET_ARN"] == exports["databases"]["payments"]["secret_arn"]
    upload = env_of(pod(dump)["containers"][0])
    assert upload["BUCKET"] == exports["storage"]["backups_bucket"] and upload["KMS_KEY_ARN"] == exports["kms_key_arn"]


def test_dr_cluster_points_at_prod_until_the_failover_is_recorded():
    resources = with_k8s("dr").resources
    prod = harness.stack_exports("prod")["regions"]["us-east-1"]
    dr = harness.stack_exports("dr")["regions"]["us-west-2"]
    data = one(resources, CONFIGMAP)["inputs"]["data"]
    assert data["ACTIVE_REGION"] == "us-east-1"
    assert data["DB_PAYMENTS_HOST"] == prod["databases"]["payments"]["endpoint"]
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == prod["streaming"]["bootstrap_brokers"]
    assert data["DATA_BUCKET"] == prod["storage"]["data_bucket"]
    # the dump reads the local replica (no cross-region dump traffic) and writes the DR bucket and key
    dump = pod(cronjob(resources, "regionpair-pgdump-payments"))
    init = {c["name"]: c for c in dump["initContainers"]}
    assert env_of(init["pg-dump"])["PGHOST"] == dr["databases"]["payments"]["endpoint"]
    # a replica has no secret of its own: its password is the primary's, read from the replica of prod's
    # secret in this region (the job reads in the ARN's region: it works with prod's region down)
    assert env_of(init["password"])["SECRET_ARN"] == \
        prod["databases"]["payments"]["secret_arn"].replace(":us-east-1:", ":us-west-2:")
    upload = env_of(dump["containers"][0])
    assert upload["BUCKET"] == dr["storage"]["backups_bucket"] and upload["KMS_KEY_ARN"] == dr["kms_key_arn"]


def test_promotion_keeps_the_configmap_and_moves_the_dump_to_the_promoted_secret():
    before = {r["urn"]: r for r in with_k8s("dr").resources}
    promoted = harness.render("dr", overrides={"promoted": True, "kubernetes": section("dr")})
    after = {r["urn"]: r for r in promoted.resources}
    regs = [r for r in harness.LAST["registrations"] if r["type"] == CONFIGMAP]
    assert [r["ignore_changes"] for r in regs] == [["data"]]
    (urn,) = [u for u, r in before.items() if r["type"] == CONFIGMAP]
    assert urn in after, "the ConfigMap keeps its URN (never re-created under the applications)"
    own = harness.render("dr", overrides={"promoted": True}).exports["regions"]["us-west-2"]
    # what Pulumi would write now is this region's; the live data is the runbooks' (ignore_changes)
    assert after[urn]["inputs"]["data"]["ACTIVE_REGION"] == "us-west-2"
    assert after[urn]["inputs"]["data"]["DB_PAYMENTS_HOST"] == own["databases"]["payments"]["endpoint"]
    init = {c["name"]: c for c in pod(cronjob(promoted.resources, "regionpair-pgdump-payments"))["initContainers"]}
    assert env_of(init["password"])["SECRET_ARN"] == own["databases"]["payments"]["secret_arn"]
    assert own["databases"]["payments"]["secret_arn"].startswith("arn:aws:secretsmanager:us-west-2:")
    kube_before = {u for u, r in before.items() if r["type"].startswith("kubernetes:")}
    kube_after = {u for u, r in after.items() if r["type"].startswith("kubernetes:")}
    assert kube_before == kube_after


def test_kubeconfig_is_a_secret_end_to_end():
    overrides = {"kubernetes": section("dr", context=None, kubeconfig=KUBECONFIG,
                                       runbook_context="arn:aws:eks:us-west-2:123456789012:cluster/regionpair-dr")}
    rendered = harness.render("dr", overrides=overrides, secret_keys=["kubernetes"])
    (provider,) = of_type(rendered.resources, "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == {"secret": KUBECONFIG}
    text = json.dumps(rendered.resources) + json.dumps(rendered.exports)
    assert text.count("kubeconfig-token-that-must-stay-secret") == 1  # only inside the secret-marked input
    with pytest.raises(ConfigError) as err:
        harness.render("dr", overrides=overrides)  # the same kubeconfig stored in plain text
    assert err.value.key == "kubernetes.kubeconfig" and "--secret" in str(err.value)
    assert "kubeconfig-token" not in str(err.value)


def test_a_kubernetes_secret_can_replace_secrets_manager_per_database():
    overrides = {"kubernetes": section("prod", password_secrets={"payments": {"name": "payments-db"}})}
    resources = harness.render("prod", overrides=overrides).resources
    dump = pod(cronjob(resources, "regionpair-pgdump-payments"))
    assert [c["name"] for c in dump["initContainers"]] == ["pg-dump"]
    assert env_of(dump["initContainers"][0])["PGPASSWORD"] == {"secretKeyRef": {"name": "payments-db", "key": "password",
                                                                                "optional": False}}


def test_logical_backups_can_be_turned_off_and_the_export_stays():
    resources = harness.render("prod", overrides={"kubernetes": section("prod", logical_backups=False)}).resources
    assert [r["inputs"]["metadata"]["name"] for r in of_type(resources, CRONJOB)] == ["regionpair-config-export"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_policy_pack_passes_on_the_stack_with_its_cluster(stack):
    from tests.helpers.policy import findings, with_prod_reference
    graph = copy.deepcopy(with_k8s(stack).resources)
    graph = with_prod_reference(graph) if stack == "dr" else graph
    assert [(f.policy, f.message) for f in findings(stack, graph, {"kubernetes": section(stack)})] == []


@pytest.mark.parametrize("stack", STACKS)
def test_resource_graph_with_kubernetes_matches_the_committed_snapshot(stack):
    harness.check_snapshot(SNAPSHOTS / f"{stack}-kubernetes.json", with_k8s(stack).resources,
                           f"the {stack} stack with the kubernetes section")
