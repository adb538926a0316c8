"""The clusters' active-endpoints ConfigMaps in the failover, switchover and failback, on in-memory
fakes (tests/fakes.py): when they move, to what, best effort where the region is lost, and reruns."""

from __future__ import annotations

import io
import json

import pytest

from runbooks import failback, failover, switchover
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from tests.fakes import Crash, RunbookEnv, with_endpoints, with_streams
from tests.helpers.streams import streams_document

P, S = "us-east-1", "us-west-2"
DBS = ("payments", "payments-1")


def clusters_document(streams: bool = True) -> dict:
    doc = streams_document()
    two = __import__("tests.samples", fromlist=["pair_document"]).pair_document(n_databases=2)
    for name, region in doc["regions"].items():
        region["databases"] = two["regions"][name]["databases"]
        region["kubernetes"] = {"context": f"arn:aws:eks:{name}:123456789012:cluster/payments",
                                "namespaces": ["payments", "checkout"]}
        if not streams:
            del region["streaming"]
            region["storage"].pop("writer_parameter")
    doc["dns"]["records"] = two["dns"]["records"]
    return doc


@pytest.fixture
def env(tmp_path):
    made = {}
    e = RunbookEnv(tmp_path, clusters_document(), "--yes",
                   setup=lambda world: (with_streams(world), made.update(k8s=with_endpoints(world))))
    e.k8s, e.out = made["k8s"], e.world.outputs
    return e


def expected(out, region: str) -> dict[str, str]:
    r = out.regions[region]
    values = {"ACTIVE_REGION": region, "KAFKA_BOOTSTRAP_SERVERS": r.streaming.bootstrap_brokers,
              "DATA_BUCKET": r.storage.data_bucket}
    for db in DBS:
        key = db.upper().replace("-", "_")
        values[f"DB_{key}_HOST"], values[f"DB_{key}_PORT"] = r.databases[db].endpoint, "5432"
    return values


def assert_points_at(env, cluster: str, region: str, run_id: str | None = None) -> None:
    for ns, copy in env.k8s.copies[cluster].items():
        assert {k: copy["data"][k] for k in expected(env.out, region)} == expected(env.out, region), (cluster, ns)
        assert copy["data"]["REGIONPAIR_CONTRACT_VERSION"] == "1"  # Pulumi's, never rewritten
        assert copy["data"]["TEAM_OWNED_KEY"] == "kept"             # not the contract's: left alone
        if run_id:
            assert copy["updated_by"] == run_id


def test_failover_moves_every_copy_in_both_clusters_after_promotion_and_the_clients(env):
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    for cluster in (S, P):
        assert_points_at(env, cluster, S, out["run_id"])
    acts = env.world.actions
    first = next(i for i, a in enumerate(acts) if a[0] == "endpoints")
    assert [a[:2] for a in acts if a[0] == "endpoints"] == [("endpoints", S), ("endpoints", P)]  # target first
    last_needed = max(i for i, a in enumerate(acts) if a[0] in ("promote", "publish", "writers"))
    assert first > last_needed, "the endpoints moved before every database was promoted and the clients moved"
    step = next(s for s in out["steps"] if s["name"] == f"endpoints:{S}")
    assert step["status"] == "done" and "read back ACTIVE_REGION=us-west-2" in step["result"]
    gates = {g["name"]: g for g in json.load(open(out["report"]["json"]))["gates"]}
    assert gates[f"endpoints:{S}"]["passed"] and f"endpoints:{P}" not in gates  # the lost side is not a gate
    audit = (env.state / "audit.jsonl").read_text()
    assert '"action": "endpoints"' in audit


def test_a_rerun_after_success_changes_nothing(env):
    assert env.run(failover)[0] == EXIT_OK
    before = list(env.world.actions)
    code, out = env.run(failover)
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    assert env.world.actions == before


def test_region_outage_records_the_lost_cluster_and_the_failback_corrects_it_first(env):
    env.world.kill_region(P)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert_points_at(env, S, S)
    lost = next(s for s in out["steps"] if s["name"] == f"endpoints:{P}")
    assert lost["status"] == "best-effort-failed"
    assert "cannot reach us-east-1's cluster" in lost["result"] and "correct them before any failback" in lost["result"]
    report = json.load(open(out["report"]["json"]))
    assert any(n.startswith(f"endpoints:{P}:") and "before any failback" in n for n in report["notes"])
    assert env.k8s.active(P) == {P}, "the lost cluster still sends its applications home"

    env.world.region_up[P] = True  # the region returns; its copies are stale
    for db in DBS:
        env.world.dbs[(S, db)].lsn = 5000
    mark = len(env.world.actions)
    code, out = env.run(failback)
    assert code == EXIT_OK, out
    back = env.world.actions[mark:]
    corrected = back.index(("endpoints", P, S))
    assert corrected < back.index(("promote", P, "payments")), "home's copies pointed at the writer first"
    for cluster in (P, S):
        assert_points_at(env, cluster, P, out["run_id"])
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[f"endpoints-current:{S}"]["status"] == "skipped"  # DR's copies were current already
    assert steps[f"endpoints-current:{P}"]["status"] == "done"


def test_an_unreachable_target_cluster_refuses_before_any_change_then_force_and_rerun_finish(env):
    env.k8s.down.add(S)
    code, out = env.run(failover)
    assert code == EXIT_REFUSED, out
    assert f"endpoints:{S}" in out["error"] and "arn:aws:eks:us-west-2:123456789012:cluster/payments" in out["error"]
    assert env.world.actions == []
    code, out = env.run(failover, "--force")
    assert code == EXIT_FAILED
    assert f"endpoints:{S}" in out["error"] and "cannot reach us-west-2's cluster" in out["error"]
    assert all(env.world.dbs[(S, db)].role == "primary" for db in DBS), "everything else was done"
    env.k8s.down.clear()
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert_points_at(env, S, S)


@pytest.mark.parametrize("action,nth", [("endpoints", 1), ("endpoints-ns", 2), ("endpoints-ns", 3)])
def test_a_crash_while_publishing_then_a_rerun_finishes_the_job(env, action, nth):
    env.world.crash_on = (action, nth)
    with pytest.raises(Crash):
        env.run(failover)
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    for cluster in (S, P):
        assert_points_at(env, cluster, S, out["run_id"])
    assert len(list((env.state / "runs").glob("failover-*.jsonl"))) == 1


def test_switchover_moves_both_clusters_and_a_rerun_changes_nothing(env):
    code, out = env.run(switchover)
    assert code == EXIT_OK, out
    for cluster in (S, P):
        assert_points_at(env, cluster, S, out["run_id"])
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[f"endpoints-current:{P}"]["status"] == "skipped"  # every copy already pointed at the writer
    assert not steps[f"endpoints:{P}"].get("best_effort")
    gates = {g["name"] for g in json.load(open(out["report"]["json"]))["gates"]}
    assert {f"endpoints:{S}", f"endpoints:{P}"} <= gates
    before = list(env.world.actions)
    assert env.run(switchover)[1]["result"] == "nothing-to-do"
    assert env.world.actions == before


def test_only_the_moved_databases_keys_change(env):
    code, out = env.run(failover, "--database", "payments-1")
    assert code == EXIT_OK, out
    data = env.k8s.copies[S]["payments"]["data"]
    assert data["DB_PAYMENTS_1_HOST"] == env.out.regions[S].databases["payments-1"].endpoint
    assert data["DB_PAYMENTS_HOST"] == env.out.regions[P].databases["payments"].endpoint, "payments did not move"


def test_a_cluster_without_a_copy_is_refused_with_the_fix(env):
    env.k8s.copies[S].clear()
    code, out = env.run(failover)
    assert code == EXIT_REFUSED
    assert "has no ConfigMap regionpair-active-endpoints labelled regionpair.io/contract=active-endpoints" in out["error"]
    assert "`pulumi up` of the dr stack creates them" in out["error"]
    assert env.world.actions == []


def test_a_namespace_without_a_copy_is_named_and_the_others_move(env):
    del env.k8s.copies[S]["checkout"]
    code, out = env.run(failover)
    assert code == EXIT_OK, out
    assert env.k8s.active(S) == {S}
    gate = next(g for g in json.load(open(out["report"]["json"]))["gates"] if g["name"] == f"endpoints:{S}")
    assert "no copy in namespace(s) checkout" in gate["sentence"]


def test_dry_run_shows_the_endpoints_lane_after_the_promotion_and_changes_nothing(env):
    code, text = env.dry_run(failover)
    assert code == EXIT_OK and env.world.actions == []
    assert f"pass  endpoints:{S}" in text
    assert f"[to do] endpoints:{S}: point the applications in {S}'s cluster at {S}" in text
    assert f"endpoints:{P}: point the applications in {P}'s cluster at {S} (best effort)" in text


def test_without_clusters_or_without_the_port_the_plans_are_unchanged(env, tmp_path):
    env.world.endpoints = None
    code, out = env.run(failover)
    assert code == EXIT_OK
    assert not [s for s in out["steps"] if s["name"].startswith("endpoints")]


def test_a_malformed_kubernetes_section_is_bad_input_and_changes_nothing(env, tmp_path):
    doc = clusters_document()
    doc["regions"][S]["kubernetes"]["namespaces"] = ["Payments"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = io.StringIO()
    code = failover.main(["--outputs", str(bad), "--yes", "--state-dir", str(env.state)],
                         ports_factory=lambda o, c: env.world.ports(env.state / "lock.json"), stdout=out)
    assert code == EXIT_BAD_INPUT and f"regions.{S}.kubernetes.namespaces[0]" in out.getvalue()
    assert env.world.actions == []


def test_no_other_key_of_a_configmap_reaches_the_journal_audit_or_report(env):
    for copies in env.k8s.copies.values():
        for c in copies.values():
            c["data"]["TEAM_OWNED_KEY"] = "not-for-the-journal-7731"
    code, out = env.run(failover)
    assert code == EXIT_OK
    written = "".join(p.read_text() for p in env.state.rglob("*") if p.is_file())
    assert "not-for-the-journal-7731" not in written and "TEAM_OWNED_KEY" not in written


# ---- restarting the Deployments that read the ConfigMap through envFrom ---------------------------

LISTED = {"payments": ["payments-api", "payments-worker"], "checkout": ["checkout-web"]}
NAMES = ["payments/payments-api", "payments/payments-worker", "checkout/checkout-web"]


@pytest.fixture
def renv(tmp_path):
    doc = clusters_document()
    for region in doc["regions"].values():
        region["kubernetes"]["restart_deployments"] = LISTED
    made = {}
    e = RunbookEnv(tmp_path, doc, "--yes", setup=lambda world: (with_streams(world), made.update(k8s=with_endpoints(world))))
    e.k8s, e.out = made["k8s"], e.world.outputs
    return e


def restarts(env, region: str | None = None) -> list[tuple]:
    return [a for a in env.world.actions if a[0] == "restart" and (region is None or a[1] == region)]


def test_without_a_list_no_deployment_is_read_or_restarted(env):
    read = []

    def no_read(region):
        read.append(region)
        pytest.fail(f"the Deployments of {region}'s cluster were read though no restart_deployments list names any")
    env.k8s.deployments = no_read
    code, out = env.run(failover)
    assert read == []  # also when the runbook swallowed pytest.fail's exception
    assert code == EXIT_OK, out
    assert not [s for s in out["steps"] if s["name"].startswith("restart-deployments")] and not restarts(env)


def test_failover_restarts_each_listed_deployment_once_after_its_clusters_copies_moved(renv):
    code, out = renv.run(failover)
    assert code == EXIT_OK, out
    acts = renv.world.actions
    for cluster in (S, P):
        assert [a[2] for a in restarts(renv, cluster)] == NAMES
        assert {a[3] for a in restarts(renv, cluster)} == {out["run_id"]}
        wrote = acts.index(("endpoints", cluster, S))
        assert all(acts.index(a) > wrote for a in restarts(renv, cluster)), "restarted before its copies moved"
        for d in renv.k8s.workloads[cluster].values():
            assert (d["restarted_for"], d["restarted_at"], d["restarts"]) == (out["run_id"], "2023-11-14T22:13:20Z", 1)
    steps = {s["name"]: s for s in out["steps"]}
    step = steps[f"restart-deployments:{S}"]
    assert step["status"] == "done"
    assert "rollout restart of payments/payments-api, payments/payments-worker, checkout/checkout-web" in step["result"]
    assert "verified: payments/payments-api: 1 of 1 pods updated, 1 available" in step["result"]
    gate = next(g for g in json.load(open(out["report"]["json"]))["gates"] if g["name"] == f"endpoints:{S}")
    assert gate["passed"] and "Deployments to restart after the move: payments/payments-api" in gate["sentence"]
    assert '"action": "restart-deployments"' in (renv.state / "audit.jsonl").read_text()
    before = list(acts)
    code, out = renv.run(failover)
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    assert renv.world.actions == before, "a rerun restarted again"


@pytest.mark.parametrize("crash", [("restart", 1), ("restart", 2), ("endpoints-ns", 2)])
def test_a_crash_around_the_restarts_then_a_rerun_restarts_each_exactly_once(renv, crash):
    renv.world.crash_on = crash
    with pytest.raises(Crash):
        renv.run(failover)
    code, out = renv.run(failover)
    assert code == EXIT_OK, out
    for cluster in (S, P):
        assert sorted(a[2] for a in restarts(renv, cluster)) == sorted(NAMES)
        assert all(d["restarts"] == 1 and d["restarted_for"] == out["run_id"]
                   for d in renv.k8s.workloads[cluster].values())


def test_the_lost_regions_deployments_are_best_effort_and_a_later_run_restarts_only_those(renv):
    renv.world.kill_region(P)
    code, out = renv.run(failover)
    assert code == EXIT_OK, out
    steps = {s["name"]: s for s in out["steps"]}
    lost = steps[f"restart-deployments:{P}"]
    assert lost["status"] == "best-effort-failed"
    assert "cannot reach us-east-1's cluster" in lost["result"] and "still run with us-east-1's endpoints" in lost["result"]
    assert any(n.startswith(f"restart-deployments:{P}:") for n in json.load(open(out["report"]["json"]))["notes"])
    assert [a[2] for a in restarts(renv, S)] == NAMES and not restarts(renv, P)
    first = out["run_id"]

    renv.world.region_up[P] = True  # the region answers again; a NEW failover run finishes what was left
    code, out = renv.run(failover)
    assert code == EXIT_OK, out
    assert out["run_id"] != first
    assert [a[2] for a in restarts(renv, S)] == NAMES, "the target's Deployments were restarted again"
    assert {a[3] for a in restarts(renv, P)} == {out["run_id"]} and [a[2] for a in restarts(renv, P)] == NAMES
    assert {s["name"]: s["status"] for s in out["steps"]}[f"restart-deployments:{S}"] == "skipped"


def test_a_listed_deployment_that_does_not_exist_refuses_the_run_naming_it_then_force_restarts_the_others(renv):
    del renv.k8s.workloads[S][("payments", "payments-worker")]
    code, out = renv.run(failover)
    assert code == EXIT_REFUSED, out
    assert "has no Deployment payments/payments-worker" in out["error"]
    assert "remove it from that list and `pulumi up` the stack" in out["error"] and "the dr stack" in out["error"]
    assert renv.world.actions == []
    code, out = renv.run(failover, "--force")
    assert code == EXIT_OK, out
    step = {s["name"]: s for s in out["steps"]}[f"restart-deployments:{S}"]
    assert "not restarted: payments/payments-worker does not exist" in step["result"]
    assert [a[2] for a in restarts(renv, S)] == ["payments/payments-api", "checkout/checkout-web"]


def test_a_planned_switch_gates_both_clusters_deployments_and_restarts_only_after_the_switch(renv):
    del renv.k8s.workloads[P][("checkout", "checkout-web")]
    code, out = renv.run(switchover)
    assert code == EXIT_REFUSED and f"endpoints:{P}" in out["error"] and "checkout/checkout-web" in out["error"]
    renv.k8s.workloads[P][("checkout", "checkout-web")] = {"restarted_for": None, "restarted_at": None, "restarts": 0}
    code, out = renv.run(switchover)
    assert code == EXIT_OK, out
    acts = renv.world.actions
    promoted = max(acts.index(a) for a in acts if a[0] == "promote")
    assert all(acts.index(a) > promoted for a in restarts(renv)), "a Deployment restarted before the switch"
    for cluster in (S, P):
        assert sorted(a[2] for a in restarts(renv, cluster)) == sorted(NAMES)  # once each, not after endpoints-current


def test_failback_after_an_outage_restarts_home_once_with_homes_endpoints(renv):
    renv.world.kill_region(P)
    assert renv.run(failover)[0] == EXIT_OK
    renv.world.region_up[P] = True
    for db in DBS:
        renv.world.dbs[(S, db)].lsn = 5000
    mark = len(renv.world.actions)
    code, out = renv.run(failback)
    assert code == EXIT_OK, out
    back = renv.world.actions[mark:]
    home = [a for a in back if a[0] == "restart" and a[1] == P]
    assert [a[2] for a in home] == NAMES and {a[3] for a in home} == {out["run_id"]}
    assert back.index(home[0]) > back.index(("endpoints", P, P)), "home restarted before its copies point home"


def test_moving_one_database_restarts_the_deployments_too(renv):
    code, out = renv.run(failover, "--database", "payments-1")
    assert code == EXIT_OK, out
    assert [a[2] for a in restarts(renv, S)] == NAMES


def test_a_cluster_that_refuses_the_deployment_read_refuses_the_run(renv):
    from runbooks.core.errors import StepFailed

    def refuse(region):
        raise StepFailed("us-west-2's cluster refused the read of Deployment payments-api: the runbooks' identity "
                         "needs get and patch on the Deployment payments-api")
    renv.k8s.deployments = refuse
    code, out = renv.run(failover)
    assert code == EXIT_REFUSED
    assert "cannot read the Deployments to restart in us-west-2's cluster" in out["error"]
    assert "get and patch on the Deployment payments-api" in out["error"]
    assert renv.world.actions == []


def test_dry_run_shows_the_restart_after_the_endpoints_and_changes_nothing(renv):
    code, text = renv.dry_run(failover)
    assert code == EXIT_OK and renv.world.actions == []
    assert (f"[to do] restart-deployments:{S}: restart the Deployments that read the endpoints through envFrom in "
            f"{S}'s cluster") in text
    assert "restarted once their copy carries us-west-2's endpoints" in text
    order = [line.split("] ", 1)[1].split(": ", 1)[0] for line in text.splitlines()
             if line.lstrip()[:1].isdigit() and "] " in line]  # "  17. [to do] restart-deployments:us-west-2: ..."
    for cluster in (S, P):
        assert order.index(f"endpoints:{cluster}") < order.index(f"restart-deployments:{cluster}"), order
