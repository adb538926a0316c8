"""The failover's Endpoints adapter (runbooks/adapters/kubectl.py) against a REAL API server
(pytest -m k8s; the control plane of tests/e2e/k8s_cluster.py): the active-endpoints ConfigMap as
Pulumi and another team's tool leave it, moved by the runbooks with server-side apply as their own
field manager, Pulumi's next non-forced apply then conflicting on the real server, the restart of a
listed Deployment seen by the real controller, and RBAC refusing a Deployment the Role does not
name. As the runbooks' identity: a user bound only to components.kubernetes_access.runbook_rules."""

from __future__ import annotations

import json

import pytest

from components.kubernetes_access import runbook_rules
from components.kubernetes_args import RUNBOOK_GROUP
from contract import active_endpoints as contract, outputs as outputs_contract
from runbooks.adapters.kubectl import KubectlEndpoints, KubectlSettings
from runbooks.core.errors import StepFailed
from tests.e2e.k8s_cluster import BIN, Cluster, missing_binaries, role, workload
from tests.samples import pair_document

pytestmark = pytest.mark.k8s

P, S = "us-east-1", "us-west-2"
CTX = "arn:aws:eks:us-west-2:123456789012:cluster/payments-dr"
NAMESPACES = ["shop", "billing"]
PULUMI = "pulumi-kubernetes-4"
TEAM = "team-flags"
LISTED = {"shop": ["shop-api"], "billing": ["billing-web"]}


@pytest.fixture(scope="module")
def k8s(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} not in {BIN}: run scripts/setup-k8s.sh first")
    c = Cluster(tmp_path_factory.mktemp("k8s-endpoints"))
    c.add_user(CTX, "runbooks", [RUNBOOK_GROUP])
    doc = pair_document(n_databases=2)
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": CTX if name == S else f"ctx-{name}", "namespaces": NAMESPACES,
                                "restart_deployments": LISTED}
    outputs = outputs_contract.from_dict(doc)
    try:
        c.start()
        docs: list[dict] = []
        for ns in NAMESPACES:
            docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            docs += role(ns, RUNBOOK_GROUP, runbook_rules(LISTED[ns]))
        c.apply(*docs)
        for ns in NAMESPACES:
            # what Pulumi writes (its field manager), then a key another team's tool adds and owns
            pulumi_apply(c, ns, contract.initial_data(outputs.primary))
            c.kubectl("-n", ns, "apply", "--server-side", f"--field-manager={TEAM}", "-f", "-", stdin=json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": contract.CONFIGMAP_NAME, "namespace": ns},
                 "data": {"FEATURE_FLAGS": "beta=on"}}))
            objs = [workload("Deployment", ns, name, {"containers": [{"name": "app", "image": "registry.example/a:1",
                    "envFrom": [{"configMapRef": {"name": contract.CONFIGMAP_NAME}}]}]}) for name in LISTED[ns]]
            objs.append(workload("Deployment", ns, "unlisted", {"containers": [{"name": "a", "image": "r.example/a:1"}]}))
            c.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        c.outputs = outputs  # type: ignore[attr-defined]
        yield c
    finally:
        c.stop()


def pulumi_apply(c: Cluster, ns: str, data: dict, check: bool = True):
    manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": contract.CONFIGMAP_NAME, "namespace": ns,
                             "labels": {contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE},
                             "annotations": {contract.VERSION_ANNOTATION: contract.CONTRACT_VERSION}},
                "data": data}
    return c.kubectl("-n", ns, "apply", "--server-side", f"--field-manager={PULUMI}", "-f", "-",
                     stdin=json.dumps(manifest), check=check)


@pytest.fixture
def port(k8s, monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}:{__import__('os').environ['PATH']}")
    for name, value in k8s.env().items():
        monkeypatch.setenv(name, value)
    return KubectlEndpoints(k8s.outputs, KubectlSettings(process_timeout_s=30))


def owners(c: Cluster, ns: str) -> dict[str, str]:
    """data key → field manager, from the real server's managedFields."""
    obj = c.get("configmap", ns, contract.CONFIGMAP_NAME, "--show-managed-fields")
    out = {}
    for m in obj["metadata"]["managedFields"]:
        for key in (m.get("fieldsV1") or {}).get("f:data", {}):
            out[key.removeprefix("f:")] = m["manager"]
    return out


def test_publish_restart_and_rbac_on_a_real_api_server(k8s, port):
    c = k8s
    dr = c.outputs.regions[S]
    read = port.read(S)
    assert [(x.namespace, x.name) for x in read.copies] == [(ns, contract.CONFIGMAP_NAME) for ns in NAMESPACES]
    assert read.missing == ()

    values = contract.active_values(dr, ["payments", "payments-1"])
    result = port.publish(S, values, "failover-e2e-1")
    assert "shop/regionpair-active-endpoints, billing/regionpair-active-endpoints in us-west-2" in result
    for ns in NAMESPACES:
        obj = c.get("configmap", ns, contract.CONFIGMAP_NAME)
        assert {k: obj["data"][k] for k in values} == values
        assert obj["data"][contract.VERSION_KEY] == contract.CONTRACT_VERSION and obj["data"]["FEATURE_FLAGS"] == "beta=on"
        assert obj["metadata"]["annotations"][contract.UPDATED_BY] == "failover-e2e-1"
        own = owners(c, ns)
        assert {own[k] for k in values} == {contract.FIELD_MANAGER}, own
        assert own[contract.VERSION_KEY] == PULUMI and own["FEATURE_FLAGS"] == TEAM, own

    # a later run that moves one database back keeps every key the runbooks own (a server-side apply
    # would drop what it left out); Pulumi's next non-forced apply of its old data then conflicts
    home = contract.active_values(c.outputs.regions[P], ["payments"])
    port.publish(S, home, "failback-e2e-2")
    data = c.get("configmap", "shop", contract.CONFIGMAP_NAME)["data"]
    assert data["DB_PAYMENTS_HOST"] == home["DB_PAYMENTS_HOST"]
    assert data["DB_PAYMENTS_1_HOST"] == dr.databases["payments-1"].endpoint, "a key the runbooks own was dropped"
    r = pulumi_apply(c, "shop", contract.initial_data(c.outputs.primary), check=False)
    assert r.returncode != 0 and "conflict" in r.stderr.lower() and contract.FIELD_MANAGER in r.stderr, r.stderr
    assert c.get("configmap", "shop", contract.CONFIGMAP_NAME)["data"]["DB_PAYMENTS_1_HOST"] == \
        dr.databases["payments-1"].endpoint

    # the restart of a listed Deployment: the pod template's annotations, seen by the real controller
    port.restart(S, "shop", "shop-api", "failover-e2e-1", "2026-12-03T13:00:00Z")
    api = c.get("deployment", "shop", "shop-api")
    assert api["spec"]["template"]["metadata"]["annotations"] == {
        contract.RESTARTED_AT: "2026-12-03T13:00:00Z", contract.RESTARTED_FOR: "failover-e2e-1"}
    assert api["metadata"]["generation"] == 2
    states = {d.name: d for d in port.deployments(S)}
    assert states["shop-api"].restarted_for == "failover-e2e-1" and states["billing-web"].restarted_for is None


def test_rbac_refuses_a_deployment_the_role_does_not_name(k8s, port):
    # the outputs list a Deployment the cluster's Role was not updated for (no `pulumi up` yet)
    doc = pair_document(n_databases=2)
    doc["regions"][S]["kubernetes"] = {"context": CTX, "namespaces": NAMESPACES,
                                       "restart_deployments": {"shop": ["shop-api", "unlisted"]}}
    stale = KubectlEndpoints(outputs_contract.from_dict(doc), KubectlSettings(process_timeout_s=30))
    before = k8s.get("deployment", "shop", "unlisted")["metadata"]["resourceVersion"]
    with pytest.raises(StepFailed) as err:
        stale.restart(S, "shop", "unlisted", "failover-e2e-3", "2026-12-03T13:00:00Z")
    message = str(err.value)
    assert "refused the restart of Deployment unlisted" in message and "get and patch on the Deployment" in message
    assert "forbidden" in message.lower()
    assert k8s.get("deployment", "shop", "unlisted")["metadata"]["resourceVersion"] == before
