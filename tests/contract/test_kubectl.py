"""The Endpoints adapter for real clusters (runbooks/adapters/kubectl.py) against a stand-in
``kubectl`` first on PATH (tests/helpers/kubectl_standin.py): the exact command lines, server-side apply's
field ownership, what reaches an error message, and a whole failover through it."""

from __future__ import annotations

import json

import pytest

from contract import active_endpoints as contract, outputs as outputs_contract
from runbooks import failover
from runbooks.adapters.kubectl import KubectlEndpoints, KubectlSettings
from runbooks.core.errors import EXIT_OK, BadInput, StepFailed, Unreachable
from tests.fakes import RunbookEnv
from tests.helpers.kubectl import PULUMI, FakeKubectl
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"
NAMESPACES = ["payments", "checkout"]
TEAM = "team-flags"


def context(region: str) -> str:
    return f"arn:aws:eks:{region}:123456789012:cluster/payments"


def clusters_doc() -> dict:
    doc = pair_document(n_databases=2)
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": context(name), "namespaces": NAMESPACES}
    return doc


@pytest.fixture
def k8s(tmp_path, monkeypatch):
    fake = FakeKubectl.install(tmp_path, monkeypatch)
    out = outputs_contract.from_dict(clusters_doc())
    initial = contract.initial_data(out.primary)
    for region in (P, S):
        for ns in NAMESPACES:
            fake.seed(context(region), ns, initial)
            state = fake._read()  # a key another team's tool added and owns
            obj = state["contexts"][context(region)]["namespaces"][ns][contract.CONFIGMAP_NAME]
            obj["data"]["FEATURE_FLAGS"], obj["owners"]["data.FEATURE_FLAGS"] = "beta=on", TEAM
            fake._write(state)

    class K:
        pass
    k = K()
    k.fake, k.outputs, k.initial = fake, out, initial
    k.port = KubectlEndpoints(out, KubectlSettings(process_timeout_s=10))
    return k


def test_read_lists_each_namespaces_copies_by_label_with_the_contract_keys_only(k8s):
    cluster = k8s.port.read(S)
    assert (cluster.region, cluster.context, cluster.missing) == (S, context(S), ())
    assert [(c.namespace, c.name, c.updated_by) for c in cluster.copies] == [
        ("payments", contract.CONFIGMAP_NAME, None), ("checkout", contract.CONFIGMAP_NAME, None)]
    assert all(dict(c.data) == k8s.initial for c in cluster.copies)  # FEATURE_FLAGS is not the contract's
    assert [c["argv"] for c in k8s.fake.calls()] == [
        ["--context", context(S), "--request-timeout", "5s", "-n", ns, "get", "configmap", "-l",
         "regionpair.io/contract=active-endpoints", "-o", "json"] for ns in NAMESPACES]


def test_publish_applies_server_side_as_the_runbooks_and_takes_over_only_the_contract_keys(k8s):
    values = contract.active_values(k8s.outputs.regions[S], ["payments", "payments-1"])
    result = k8s.port.publish(S, values, "failover-20261122T040000-ab12")
    assert "payments/regionpair-active-endpoints, checkout/regionpair-active-endpoints in us-west-2" in result
    applies = [c for c in k8s.fake.calls() if "apply" in c["argv"]]
    assert [c["argv"] for c in applies] == [
        ["--context", context(S), "--request-timeout", "5s", "-n", ns, "apply", "--server-side",
         "--field-manager=regionpair-runbooks", "--force-conflicts", "-f", "-"] for ns in NAMESPACES]
    sent = json.loads(applies[0]["stdin"])
    assert sent["metadata"] == {"name": contract.CONFIGMAP_NAME, "namespace": "payments",
                                "annotations": {contract.UPDATED_BY: "failover-20261122T040000-ab12"}}
    assert "REGIONPAIR_CONTRACT_VERSION" not in sent["data"] and "FEATURE_FLAGS" not in sent["data"]
    for ns in NAMESPACES:
        obj = k8s.fake.copy(context(S), ns)
        assert {k: obj["data"][k] for k in values} == values
        assert obj["data"]["REGIONPAIR_CONTRACT_VERSION"] == "1" and obj["data"]["FEATURE_FLAGS"] == "beta=on"
        assert obj["annotations"][contract.UPDATED_BY] == "failover-20261122T040000-ab12"
        assert obj["owners"]["data.ACTIVE_REGION"] == "regionpair-runbooks"
        assert obj["owners"]["data.REGIONPAIR_CONTRACT_VERSION"] == PULUMI  # never taken over
        assert obj["owners"]["data.FEATURE_FLAGS"] == TEAM
        assert obj["labels"] == {contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE}  # still Pulumi's
    assert {c.updated_by for c in k8s.port.read(S).copies} == {"failover-20261122T040000-ab12"}


def test_a_later_publish_of_fewer_keys_keeps_every_key_the_runbooks_own_and_pulumi_then_conflicts(k8s):
    dr = k8s.outputs.regions[S]
    k8s.port.publish(S, contract.active_values(dr, ["payments", "payments-1"]), "failover-1")
    # a run that moves one database back: server-side apply would drop whatever it left out
    home = contract.active_values(k8s.outputs.regions[P], ["payments"])
    k8s.port.publish(S, home, "failback-2")
    data = k8s.fake.copy(context(S), "payments")["data"]
    assert data["DB_PAYMENTS_HOST"] == home["DB_PAYMENTS_HOST"]
    assert data["DB_PAYMENTS_1_HOST"] == dr.databases["payments-1"].endpoint, "a key the runbooks own was dropped"
    assert sorted(data) == sorted(contract.endpoint_keys(["payments", "payments-1"]) + ["FEATURE_FLAGS"])
    # a `pulumi up` that sends its original data again conflicts instead of reverting the runbooks' values
    pulumi = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": contract.CONFIGMAP_NAME, "namespace": "payments",
        "labels": {contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE, "team": "payments"}},
        "data": k8s.initial}
    proc = k8s.fake.apply_as(PULUMI, context(S), "payments", pulumi)
    assert proc.returncode == 1 and "conflict with \"regionpair-runbooks\": .data.DB_PAYMENTS_1_HOST" in proc.stderr
    assert k8s.fake.copy(context(S), "payments")["data"]["DB_PAYMENTS_1_HOST"] == dr.databases["payments-1"].endpoint


def test_only_the_contracts_configmap_is_read_and_a_namespace_without_one_is_named(k8s):
    k8s.fake.seed(context(P), "payments", {"ACTIVE_REGION": "elsewhere"}, name="someone-elses-copy")
    state = k8s.fake._read()
    del state["contexts"][context(P)]["namespaces"]["checkout"]
    k8s.fake._write(state)
    cluster = k8s.port.read(P)
    assert [(c.namespace, c.name) for c in cluster.copies] == [("payments", contract.CONFIGMAP_NAME)]
    assert cluster.missing == ("checkout",)
    result = k8s.port.publish(P, {"ACTIVE_REGION": S}, "run-1")
    assert "no copy in checkout" in result
    assert k8s.fake.copy(context(P), "payments", "someone-elses-copy")["data"] == {"ACTIVE_REGION": "elsewhere"}


@pytest.mark.parametrize("fault, error, words", [
    ("unreachable", Unreachable, ["us-west-2's cluster", context(S), "does not answer", "i/o timeout"]),
    ("forbidden", StepFailed, ["list, get and patch", "EKS access entry", "Forbidden"]),
    ("hang", Unreachable, ["did not answer", "within 0.5 s"]),
])
def test_a_cluster_that_fails_is_an_error_naming_the_context_and_what_to_do_and_never_a_token(k8s, fault, error,
                                                                                              words):
    k8s.fake.cluster(context(S), fault)
    port = KubectlEndpoints(k8s.outputs, KubectlSettings(process_timeout_s=0.5))
    with pytest.raises(error) as err:
        port.read(S)
    for w in words:
        assert w in str(err.value), str(err.value)
    assert "aHR0cHM6" not in str(err.value), "kubectl's stderr carried a token into the error"
    before = k8s.fake.copy(context(S), "payments")
    with pytest.raises(error):
        port.publish(S, {"ACTIVE_REGION": S}, "run-1")
    assert k8s.fake.copy(context(S), "payments") == before


def test_a_missing_kubectl_or_context_says_how_to_get_one(k8s, monkeypatch, tmp_path):
    doc = clusters_doc()
    doc["regions"][S]["kubernetes"]["context"] = "payments-dr"
    port = KubectlEndpoints(outputs_contract.from_dict(doc))
    with pytest.raises(Unreachable) as err:
        port.read(S)
    assert "no context payments-dr" in str(err.value) and "aws eks update-kubeconfig --region us-west-2" in str(err.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(Unreachable) as err:
        k8s.port.read(S)
    assert "kubectl is not on PATH" in str(err.value) and context(S) in str(err.value)


def test_bad_values_are_refused_before_any_call(k8s):
    for values in ({"REGIONPAIR_CONTRACT_VERSION": "2"}, {"FEATURE_FLAGS": "x"}, {"ACTIVE_REGION": ""}, {}):
        with pytest.raises(BadInput):
            k8s.port.publish(S, values, "run-1")
    with pytest.raises(BadInput):
        k8s.port.publish(S, {"ACTIVE_REGION": S}, "")
    assert k8s.fake.calls() == []


def _failover_through_kubectl(doc: dict, tmp_path):
    """A world whose endpoints go through the real kubectl adapter, and a function that runs the
    failover runbook on it (a second call is a rerun of the same run's journal)."""
    env = RunbookEnv(tmp_path, doc, "--yes",
                     setup=lambda world: setattr(world, "endpoints", KubectlEndpoints(world.outputs)))
    return env.world, lambda: env.run(failover)


def test_a_failover_through_kubectl_moves_both_clusters_and_a_rerun_changes_nothing(k8s, tmp_path):
    world, run = _failover_through_kubectl(clusters_doc(), tmp_path)
    code, out = run()
    assert code == EXIT_OK, out
    want = contract.active_values(world.outputs.regions[S], ["payments", "payments-1"])
    for region in (S, P):
        for ns in NAMESPACES:
            obj = k8s.fake.copy(context(region), ns)
            assert {k: obj["data"][k] for k in want} == want
            assert obj["annotations"][contract.UPDATED_BY] == out["run_id"]
    applies = len([c for c in k8s.fake.calls() if "apply" in c["argv"]])
    assert applies == 4
    code, out = run()
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    assert len([c for c in k8s.fake.calls() if "apply" in c["argv"]]) == applies


def test_the_aws_ports_reach_the_clusters_through_kubectl_only_when_a_region_declares_one():
    from runbooks.adapters.aws import aws_ports
    from runbooks.core.clock import FakeClock
    with_clusters = aws_ports(outputs_contract.from_dict(clusters_doc()), FakeClock(), session=object())
    assert isinstance(with_clusters.endpoints, KubectlEndpoints)
    assert aws_ports(outputs_contract.from_dict(pair_document()), FakeClock(), session=object()).endpoints is None


# ---- the Deployments restarted after the ConfigMap moved (restart_deployments) ----------------------

LISTED = {"payments": ["payments-api", "payments-worker"], "checkout": ["checkout-web"]}


@pytest.fixture
def k8s_restart(k8s):
    doc = clusters_doc()
    for region in doc["regions"].values():
        region["kubernetes"]["restart_deployments"] = LISTED
    k8s.outputs = outputs_contract.from_dict(doc)
    k8s.port = KubectlEndpoints(k8s.outputs, KubectlSettings(process_timeout_s=10))
    for region in (P, S):
        for ns, names in LISTED.items():
            for name in names:
                k8s.fake.seed_deployment(context(region), ns, name)
    return k8s


def test_deployments_are_read_by_name_one_get_each_and_nothing_else_of_them_is_kept(k8s_restart):
    k = k8s_restart
    states = k.port.deployments(S)
    assert [(d.namespace, d.name, d.exists, d.restarted_for, d.paused) for d in states] == [
        ("payments", "payments-api", True, None, False), ("payments", "payments-worker", True, None, False),
        ("checkout", "checkout-web", True, None, False)]
    assert states[0].rollout == "2 of 2 pods updated, 2 available"
    assert [c["argv"] for c in k.fake.calls()] == [
        ["--context", context(S), "--request-timeout", "5s", "-n", ns, "get", "deployment", name, "-o", "json"]
        for ns, names in LISTED.items() for name in names]
    # a listed Deployment that is gone is reported, not an error
    k.fake.remove_deployment(context(S), "checkout", "checkout-web")
    assert [(d.name, d.exists) for d in k.port.deployments(S)][-1] == ("checkout-web", False)


def test_restart_patches_the_pod_template_as_rollout_restart_does_with_the_run_id_and_nothing_else(k8s_restart):
    k = k8s_restart
    before = k.fake.deployment(context(S), "payments", "payments-api")
    result = k.port.restart(S, "payments", "payments-api", "failover-20261122T040000-ab12", "2026-11-22T04:00:07Z")
    assert "payments/payments-api in us-west-2 restarted" in result
    (call,) = k.fake.calls()
    assert call["argv"][:-1] == ["--context", context(S), "--request-timeout", "5s", "-n", "payments", "patch",
                                 "deployment", "payments-api", "--type", "merge", "--field-manager=regionpair-runbooks",
                                 "-p"]
    assert json.loads(call["argv"][-1]) == {"spec": {"template": {"metadata": {"annotations": {
        contract.RESTARTED_AT: "2026-11-22T04:00:07Z", contract.RESTARTED_FOR: "failover-20261122T040000-ab12"}}}}}
    after = k.fake.deployment(context(S), "payments", "payments-api")
    assert after["spec"]["template"]["metadata"]["annotations"] == {
        contract.RESTARTED_AT: "2026-11-22T04:00:07Z", contract.RESTARTED_FOR: "failover-20261122T040000-ab12"}
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1  # a new pod template: a rollout
    assert after["spec"]["template"]["spec"] == before["spec"]["template"]["spec"]
    assert after["spec"]["template"]["metadata"]["labels"] == before["spec"]["template"]["metadata"]["labels"]
    assert {f["manager"] for f in after["metadata"]["managedFields"]} == {PULUMI, "regionpair-runbooks"}
    (read,) = [d for d in k.port.deployments(S) if d.name == "payments-api"]
    assert (read.restarted_for, read.restarted_at) == ("failover-20261122T040000-ab12", "2026-11-22T04:00:07Z")
    assert read.rollout == "rollout not started yet (the controller has not seen the change)"
    assert k.fake.deployment(context(P), "payments", "payments-api") == before, "only the region named"


def test_restart_refuses_a_deployment_the_outputs_do_not_list_before_any_call(k8s_restart):
    k = k8s_restart
    k.fake.seed_deployment(context(S), "payments", "ledger")
    for ns, name, run, at in (("payments", "ledger", "run-1", "t"), ("checkout", "payments-api", "run-1", "t"),
                              ("payments", "payments-api", "", "t"), ("payments", "payments-api", "run-1", "")):
        with pytest.raises(BadInput):
            k.port.restart(S, ns, name, run, at)
    assert k.fake.calls() == []


def test_a_deployment_gone_before_its_restart_is_an_error_with_the_fix(k8s_restart):
    k = k8s_restart
    k.fake.remove_deployment(context(S), "payments", "payments-worker")
    with pytest.raises(StepFailed) as err:
        k.port.restart(S, "payments", "payments-worker", "run-1", "2026-11-22T04:00:07Z")
    assert "Deployment payments/payments-worker does not exist in us-west-2's cluster" in str(err.value)
    assert "remove it from the stack's kubernetes.restart_deployments" in str(err.value)


def test_a_failover_through_kubectl_restarts_each_listed_deployment_once_and_a_rerun_patches_nothing(k8s_restart,
                                                                                                      tmp_path):
    k = k8s_restart
    doc = clusters_doc()
    for region in doc["regions"].values():
        region["kubernetes"]["restart_deployments"] = LISTED
    world, run = _failover_through_kubectl(doc, tmp_path)
    code, out = run()
    assert code == EXIT_OK, out
    patches = [c for c in k.fake.calls() if "patch" in c["argv"]]
    assert len(patches) == 6  # three Deployments in each of two clusters
    for region in (S, P):
        for ns, names in LISTED.items():
            for name in names:
                notes = k.fake.deployment(context(region), ns, name)["spec"]["template"]["metadata"]["annotations"]
                assert notes[contract.RESTARTED_FOR] == out["run_id"] and notes[contract.RESTARTED_AT]
    step = {s["name"]: s for s in out["steps"]}[f"restart-deployments:{S}"]
    assert "verified: payments/payments-api: rollout not started yet" in step["result"]
    code, out = run()
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    assert len([c for c in k.fake.calls() if "patch" in c["argv"]]) == 6
