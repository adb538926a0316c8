"""config_restore through its real CLI entry point: the export read from an in-memory store shaped as
the CronJob writes it, the cluster through the real kubectl adapter against the stand-in kubectl
(tests/helpers/kubectl_standin.py): dry run, apply, consent for Secrets, restarts and rollouts, refusals that
change nothing, a rerun that finishes a failed run, and no Secret value anywhere it could leak."""

from __future__ import annotations

import io
import json

import pytest

from contract import active_endpoints as contract, outputs as outputs_contract
from runbooks import config_restore
from runbooks.backups import k8s_config_export as kc
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.fakes import FakeWorld, backup_ports
from tests.helpers.config_restore import (
    B64,
    CTX,
    DRY_RUN_DIFF,
    OLD_B64,
    PASSWORD,
    READER_RESTARTS,
    cm,
    export_files,
    reads_configmap,
)
from tests.helpers.kubectl import FakeKubectl
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"
STAMP = "2026-11-22T023000Z"
class MemoryExports:
    """The ExportStore port over in-memory export runs: region → stamp → files."""

    def __init__(self, runs: dict[str, dict[str, dict]]):
        self.runs = runs

    def stamps(self, region):
        return sorted(self.runs.get(region, {}))

    def load(self, region, stamp):
        objects = []
        for (ns, kind), items in self.runs[region][stamp].items():
            objects += kc.parse_list(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), kind,
                                     f"memory://{region}/{stamp}/{ns}/{kc.FILES[kind]}")
        return kc.export_of(region, stamp, f"memory://{region}/k8s-config/{stamp}/", objects)


@pytest.fixture
def env(tmp_path, monkeypatch):
    doc = pair_document()
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": CTX if name == P else f"ctx-{name}", "namespaces": ["payments"]}
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(doc))
    out = outputs_contract.from_dict(doc)
    world = FakeWorld(out)
    state = tmp_path / "state"
    ports = backup_ports(world, state)
    ports.config_exports = MemoryExports({P: {"2026-11-20T023000Z": export_files(), STAMP: export_files(),
                                              "2026-11-25T023000Z": export_files()}})
    fake = FakeKubectl.install(tmp_path, monkeypatch)
    fake.namespaces(CTX, ["payments", "checkout", "payments-restore"])
    fake.rollouts(CTX, 2)
    # the cluster today: app-config drifted (a key changed, one added by someone), limits deleted, untouched equal
    fake.seed_configmap(CTX, "payments", "app-config", {"LOG_LEVEL": "debug", "FEATURE_X": "on", "HOTFIX": "1"})
    fake.seed_configmap(CTX, "payments", "untouched", {"A": "1"})
    fake.seed(CTX, "payments", {"ACTIVE_REGION": S})  # the failover moved it: never restored
    fake.seed_configmap(CTX, "checkout", "web-config", {"THEME": "dark"})
    fake.seed_secret(CTX, "payments", "db-credentials", {"password": OLD_B64})
    fake.seed_workload(CTX, "deployment", "payments", "payments-api", reads_configmap("app-config"))
    fake.seed_workload(CTX, "statefulset", "payments", "ledger", reads_configmap("limits", "volume"))
    fake.seed_workload(CTX, "daemonset", "payments", "agent", reads_configmap("limits", "env"))
    fake.seed_workload(CTX, "deployment", "payments", "reads-untouched", reads_configmap("untouched"))
    fake.seed_workload(CTX, "deployment", "payments", "reads-secret", {"containers": [
        {"name": "app", "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-credentials",
                                                                              "key": "password"}}}]}]})
    fake.seed_workload(CTX, "deployment", "checkout", "checkout-web", reads_configmap("web-config"))

    def run(*extra):
        buf = io.StringIO()
        code = config_restore.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json",
                                    *extra], ports_factory=lambda o, c: ports, clock=world.clock,
                                   stdin=io.StringIO(), stdout=buf)
        return code, json.loads(buf.getvalue())

    class Env:
        pass
    e = Env()
    e.run, e.fake, e.state, e.ports, e.world, e.tmp = run, fake, state, ports, world, tmp_path
    return e


def changes(fake) -> list[list[str]]:
    return [c["argv"][6:9] for c in fake.calls() if c["argv"][6] in ("apply", "patch")]


def everything_written(env) -> str:
    """Every file the run left: journals, audit, reports, metrics (not the stand-in's own state)."""
    return "\n".join(p.read_text() for p in env.state.rglob("*") if p.is_file())


def test_dry_run_shows_the_diff_by_key_names_and_what_it_would_restart_and_changes_nothing(env):
    before = env.fake._read()
    code, out = env.run("--day", "2026-11-22", "--dry-run")
    assert code == EXIT_OK, out
    assert out["result"] == "dry-run"
    assert out["diff"] == DRY_RUN_DIFF
    assert out["restart"] == READER_RESTARTS
    assert "active-endpoints contract" in out["left"][0]
    assert "1 Secret(s) in payments: NOT restored" in out["secrets"]
    assert "info" not in json.dumps(out["diff"]) and "debug" not in json.dumps(out["diff"])  # names, not values
    assert changes(env.fake) == [] and env.fake._read() == before


def test_a_restore_applies_configmaps_only_restarts_their_readers_waits_for_rollouts_and_says_secrets_were_left(env):
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, out
    app = env.fake.configmap(CTX, "payments", "app-config")
    assert app["data"] == {"LOG_LEVEL": "info", "FEATURE_X": "on", "HOTFIX": "1"}
    assert app["owners"]["data.LOG_LEVEL"] == kc.FIELD_MANAGER
    assert env.fake.configmap(CTX, "payments", "limits")["data"] == {"MAX_TPS": "500"}
    assert env.fake.copy(CTX, "payments")["data"] == {"ACTIVE_REGION": S}, "the active endpoints were restored"
    assert env.fake.secret(CTX, "payments", "db-credentials")["data"] == {"password": OLD_B64}
    assert sorted(changes(env.fake)) == sorted([
        ["apply", "--server-side", "--field-manager=regionpair-config-restore"],
        ["apply", "--server-side", "--field-manager=regionpair-config-restore"],
        ["patch", "daemonset", "agent"], ["patch", "deployment", "payments-api"], ["patch", "statefulset", "ledger"]])
    for kind, name in (("deployment", "payments-api"), ("statefulset", "ledger"), ("daemonset", "agent")):
        w = env.fake.workload(CTX, kind, "payments", name)
        assert w["spec"]["template"]["metadata"]["annotations"][contract.RESTARTED_FOR] == out["run_id"]
        assert kc.rollout(kind, w)[0], (kind, w["status"])
    for kind, ns, name in (("deployment", "payments", "reads-untouched"), ("deployment", "payments", "reads-secret"),
                           ("deployment", "checkout", "checkout-web")):
        assert env.fake.workload(CTX, kind, ns, name)["metadata"]["generation"] == 1, name
    assert out["summary"].startswith("2 object(s) restored") and "3 workload(s) restarted" in out["summary"]
    assert any("NOT restored" in d for d in out["details"])
    assert set(out["rollout_seconds"]) == {"deployment payments/payments-api", "statefulset payments/ledger",
                                           "daemonset payments/agent"}
    audit = [json.loads(x) for x in (env.state / "audit.jsonl").read_text().splitlines()]
    assert {a["target"] for a in audit if a.get("action", "").startswith("restart")} >= {
        "deployment payments/payments-api"}
    assert "regionpair_k8s_config_restore_duration_seconds" in (env.state / "metrics" / "regionpair_backups.prom"
                                                                ).read_text()
    # a second run: everything equal, the restarts of the first run are not repeated
    code, again = env.run("--day", "2026-11-22", "--yes", "--new-run")
    assert code == EXIT_OK and again["summary"].startswith("nothing to do"), again
    assert len(changes(env.fake)) == 5


def test_secrets_are_restored_only_with_consent_and_their_values_never_leave_the_cluster(env):
    code, out = env.run("--day", "2026-11-22", "--include-secrets", "--dry-run")
    assert code == EXIT_OK
    assert "change secret payments/db-credentials: restore the value(s) of password" in out["diff"]
    assert "deployment payments/reads-secret reads secret db-credentials (env)" in out["restart"]
    code, out = env.run("--day", "2026-11-22", "--include-secrets", "--yes")
    assert code == EXIT_OK, out
    assert env.fake.secret(CTX, "payments", "db-credentials")["data"] == {"password": B64}
    assert env.fake.workload(CTX, "deployment", "payments", "reads-secret")["metadata"]["generation"] == 2
    written = everything_written(env) + json.dumps(out)
    for value in (PASSWORD, B64, OLD_B64):
        assert value not in written, "a Secret's value reached a journal, the audit, a report or the output"


def test_no_export_that_day_lists_the_nearest_days_and_changes_nothing(env):
    code, out = env.run("--day", "2026-11-23", "--yes")
    assert code == EXIT_BAD_INPUT
    assert "no configuration export of that day" in out["error"]
    assert "nearest days with one: 2026-11-22, 2026-11-25, 2026-11-20" in out["error"]
    assert changes(env.fake) == [] and not (env.state / "runs").exists()
    code, out = env.run("--day", "22/11/2026", "--yes")
    assert code == EXIT_BAD_INPUT and "YYYY-MM-DD" in out["error"]


def test_an_unknown_or_missing_namespace_is_refused_naming_what_there_is(env):
    code, out = env.run("--day", "2026-11-22", "--namespace", "billing", "--yes")
    assert code == EXIT_BAD_INPUT and "billing: not in the export" in out["error"]
    assert "it holds checkout, payments" in out["error"]
    code, out = env.run("--day", "2026-11-22", "--namespace", "payments", "--target-namespace", "nowhere", "--yes")
    assert code == EXIT_BAD_INPUT and "nowhere do not exist in context" in out["error"]
    code, out = env.run("--day", "2026-11-22", "--target-namespace", "payments-restore", "--yes")
    assert code == EXIT_BAD_INPUT and "exactly one --namespace" in out["error"]
    assert changes(env.fake) == []


def test_a_target_namespace_gets_the_objects_and_its_own_readers_only(env):
    code, out = env.run("--day", "2026-11-22", "--namespace", "payments", "--target-namespace", "payments-restore",
                        "--yes")
    assert code == EXIT_OK, out
    assert env.fake.configmap(CTX, "payments-restore", "app-config")["data"] == {"LOG_LEVEL": "info",
                                                                                "FEATURE_X": "on"}
    assert env.fake.configmap(CTX, "payments", "app-config")["data"]["LOG_LEVEL"] == "debug"
    assert [c for c in changes(env.fake) if c[0] == "patch"] == []  # nothing runs in the new namespace


def test_an_object_that_cannot_be_restored_in_place_is_refused_before_any_change(env):
    env.fake.seed_configmap(CTX, "payments", "limits", {"MAX_TPS": "50"}, immutable=True)
    code, out = env.run("--day", "2026-11-22", "--dry-run")
    assert code == EXIT_OK and any("cannot be restored in place" in d and "immutable" in d for d in out["diff"])
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_BAD_INPUT and "limits cannot be restored in place" in out["error"]
    assert changes(env.fake) == []


def test_a_run_that_fails_half_way_is_finished_by_a_rerun_which_restarts_what_the_first_run_changed(env):
    from components.kubernetes_access import restore_namespace_rules, restore_rules
    # the cluster refuses to create `limits` (no create verb): app-config is applied, then the run fails
    no_create = [dict(r, verbs=[v for v in r["verbs"] if v != "create"]) for r in restore_rules()]
    for ns in ("payments", "checkout"):
        env.fake.grant(CTX, ns, no_create)
    env.fake.grant(CTX, "", restore_namespace_rules(["payments", "checkout"]))
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_FAILED, out
    assert "refused the apply of ConfigMap limits" in out["error"] and "restore_rules" in out["error"]
    assert env.fake.configmap(CTX, "payments", "app-config")["data"]["LOG_LEVEL"] == "info"
    assert [c for c in changes(env.fake) if c[0] == "patch"] == [], "no restart before every object is restored"
    for ns in ("payments", "checkout"):
        env.fake.grant(CTX, ns, restore_rules())
    code, again = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, again
    assert again["run_id"] == out["run_id"]
    assert env.fake.configmap(CTX, "payments", "limits")["data"] == {"MAX_TPS": "500"}
    # payments-api reads app-config, which the FIRST run restored: the rerun still restarts it
    assert sorted(c[1:] for c in changes(env.fake) if c[0] == "patch") == [
        ["daemonset", "agent"], ["deployment", "payments-api"], ["statefulset", "ledger"]]
    applies = [c for c in changes(env.fake) if c[0] == "apply"]
    assert len(applies) == 3  # app-config once, limits refused once and then applied


def test_a_rollout_past_its_deadline_fails_naming_it_and_a_rerun_waits_without_restarting_again(env):
    env.fake.rollouts(CTX, None)  # the controller never finishes
    code, out = env.run("--day", "2026-11-22", "--yes", "--timeout", "30")
    assert code == EXIT_FAILED and "timed out after 30 s waiting for the rollout of" in out["error"], out
    patches = [c for c in changes(env.fake) if c[0] == "patch"]
    env.fake.rollouts(CTX, 0)
    for kind, name in (("deployment", "payments-api"), ("statefulset", "ledger"), ("daemonset", "agent")):
        state = env.fake._read()
        state["contexts"][CTX][kind + "s"]["payments"][name]["_pending_reads"] = 0
        env.fake._write(state)
    code, again = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, again
    assert [c for c in changes(env.fake) if c[0] == "patch"] == patches, "a restart was repeated"


def test_the_sandbox_adapter_has_no_export_and_says_so(env):
    env.ports.config_exports = None
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_BAD_INPUT and "no Kubernetes configuration exports" in out["error"]


# ---- the pure parts -------------------------------------------------------------------------------

def test_the_key_layout_is_the_export_jobs():
    from components import kubernetes as component
    assert kc.EXPORT_PREFIX == component.EXPORT_PREFIX
    assert 'save "$ns/configmaps.json"' in component.EXPORT and 'save "$ns/secrets.json"' in component.EXPORT
    assert '"s3://$BUCKET/$PREFIX/$stamp/$name"' in component.EXPORT and "+%Y-%m-%dT%H%M%SZ" in component.EXPORT
    assert kc.parse_key("k8s-config/2026-11-22T023000Z/payments/configmaps.json") == (STAMP, "payments", "ConfigMap")
    assert kc.parse_key("k8s-config/2026-11-22T023000Z/all-namespaces/secrets.json")[2] == "Secret"
    for bad in ("k8s-config/2026-11-22/payments/configmaps.json", "pgdump/x/2026.dump",
                "k8s-config/2026-11-22T023000Z/payments/deployments.json"):
        assert kc.parse_key(bad) is None


def test_a_damaged_export_file_is_refused_naming_it():
    for text in ("not json", json.dumps({"kind": "ConfigMap"}), json.dumps({"kind": "List", "items": [{"kind": "Pod"}]}),
                 json.dumps({"kind": "List", "items": [{"kind": "ConfigMap", "metadata": {"name": "x"}}]})):
        with pytest.raises(kc.ExportDamaged) as err:
            kc.parse_list(text, "ConfigMap", "s3://b/k8s-config/x/payments/configmaps.json")
        assert "s3://b/k8s-config/x/payments/configmaps.json" in str(err.value)
    assert kc.parse_list(json.dumps({"kind": "List", "items": [cm("a", "b", {"K": "v"})]}), "ConfigMap", "w")[0].data == {
        "K": "v"}


def test_references_cover_env_envfrom_volumes_and_projected_volumes_of_every_container():
    spec = {"initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s1"}}]}],
            "containers": [{"name": "c", "env": [{"name": "A", "value": "literal"},
                                                 {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "s3"}},
                        {"name": "p", "projected": {"sources": [{"configMap": {"name": "c1"}}, {"secret": {"name": "s4"}},
                                                                {"serviceAccountToken": {"path": "t"}}]}},
                        {"name": "e", "emptyDir": {}}]}
    assert kc.references(spec) == {("Secret", "s1"): {"envFrom"}, ("Secret", "s2"): {"env"},
                                   ("Secret", "s3"): {"volume"}, ("ConfigMap", "c1"): {"projected volume"},
                                   ("Secret", "s4"): {"projected volume"}}
    assert kc.readers([{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": spec}}}],
                      "ns", {("ConfigMap", "other")}) == []


@pytest.mark.parametrize("kind, obj, done", [
    ("deployment", {"metadata": {"generation": 2}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}}, False),
    ("deployment", {"metadata": {"generation": 2}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}},
     False),
    ("deployment", {"metadata": {"generation": 2}, "spec": {"replicas": 2},
                    "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}},
     True),
    ("statefulset", {"metadata": {"generation": 2}, "spec": {"replicas": 1},
                     "status": {"observedGeneration": 2, "updatedReplicas": 1, "readyReplicas": 1,
                                "currentRevision": "a", "updateRevision": "b"}}, False),
    ("daemonset", {"metadata": {"generation": 2}, "spec": {},
                   "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                              "numberAvailable": 2}}, False),
    ("daemonset", {"metadata": {"generation": 2}, "spec": {},
                   "status": {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3,
                              "numberAvailable": 3}}, True),
])
def test_a_rollout_is_done_only_when_the_controller_has_rolled_out_the_newest_template(kind, obj, done):
    assert kc.rollout(kind, obj)[0] is done


# ---- what the stacks declare for it -------------------------------------------------------------------

def test_the_restore_needs_no_more_than_the_role_the_stack_declares_and_secrets_only_with_restore_secrets(env):
    from components.kubernetes_access import restore_namespace_rules, restore_rules
    for ns in ("payments", "checkout"):
        env.fake.grant(CTX, ns, restore_rules())  # exactly as components/kubernetes.py declares it
    env.fake.grant(CTX, "", restore_namespace_rules(["payments", "checkout"]))
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, out  # read, apply (create and patch), list and restart workloads: nothing Forbidden
    code, out = env.run("--day", "2026-11-22", "--yes", "--include-secrets", "--new-run")
    assert code == EXIT_FAILED and "Forbidden" in out["error"] and "restore_secrets" in out["error"], out
    assert env.fake.secret(CTX, "payments", "db-credentials")["data"] == {"password": OLD_B64}
    for ns in ("payments", "checkout"):
        env.fake.grant(CTX, ns, restore_rules(secrets=True))
    code, out = env.run("--day", "2026-11-22", "--yes", "--include-secrets", "--new-run")
    assert code == EXIT_OK, out
    assert env.fake.secret(CTX, "payments", "db-credentials")["data"] == {"password": B64}
    # a namespace the ClusterRole does not name is refused before anything is written there
    code, out = env.run("--day", "2026-11-22", "--namespace", "payments", "--target-namespace", "payments-restore",
                        "--yes", "--new-run")
    assert code == EXIT_FAILED and "namespace payments-restore" in out["error"], out
    assert env.fake.configmap(CTX, "payments-restore", "app-config") is None


def _allows(doc: dict, action: str, resource: str) -> bool:
    from fnmatch import fnmatchcase
    return any(s["Effect"] == "Allow" and action in s["Action"] and "Condition" not in s
               and any(fnmatchcase(resource, r) for r in ([s["Resource"]] if isinstance(s["Resource"], str)
                                                          else s["Resource"])) for s in doc["Statement"])


def test_the_runbook_role_may_list_and_read_the_export_and_decrypt_it_with_the_region_key():
    from components.access import runbook_policy
    key = "arn:aws:kms:us-west-2:123456789012:key/dr"
    bucket = "arn:aws:s3:::regionpair-dr-backups"
    region = {"region": S, "db_security_group_ids": [], "kafka_cluster_arns": [], "replicator_arns": [],
              "bucket_arns": [bucket], "kms_key_arns": [key], "topic_arns": []}
    doc = json.loads(runbook_policy(partition="aws", account="123456789012", prefix="regionpair", zone_id="Z1",
                                    health_check_ids=[], regions=[region]))
    assert _allows(doc, "s3:ListBucket", bucket)
    assert _allows(doc, "s3:GetObject", f"{bucket}/k8s-config/2026-11-22T023000Z/payments/configmaps.json")
    assert _allows(doc, "kms:Decrypt", key)
    assert not _allows(doc, "kms:Decrypt", "arn:aws:kms:us-west-2:123456789012:key/someone-elses")
    assert not _allows(doc, "s3:GetObject", "arn:aws:s3:::someone-elses-bucket/k8s-config/x")


def test_diff_names_keys_only_and_sees_labels_and_annotations():
    exported = kc.Obj("ConfigMap", "ns", "c", {"A": "1"}, labels={"team": "payments"})
    assert kc.diff(exported, None).action == "create"
    same = kc.Obj("ConfigMap", "ns", "c", {"A": "1", "B": "2"}, labels={"team": "payments", "x": "y"})
    assert (kc.diff(exported, same).action, kc.diff(exported, same).kept) == ("as is", ("B",))
    relabelled = kc.Obj("ConfigMap", "ns", "c", {"A": "1"}, labels={"team": "other"})
    change = kc.diff(exported, relabelled)
    assert change.action == "change" and change.sentence() == "change configmap ns/c: restore its labels and annotations"
    secret_obj = kc.Obj("Secret", "ns", "s", {"pw": "c2VjcmV0"}, type="Opaque")
    sentence = kc.diff(secret_obj, kc.Obj("Secret", "ns", "s", {"pw": "b3RoZXI="}, type="Opaque")).sentence()
    assert sentence == "change secret ns/s: restore the value(s) of pw" and "c2VjcmV0" not in sentence
    retyped = kc.diff(secret_obj, kc.Obj("Secret", "ns", "s", {"pw": "x"}, type="kubernetes.io/tls"))
    assert retyped.action == "blocked" and "type cannot change" in retyped.sentence()


def test_a_rollout_finished_before_the_wait_looks_still_has_its_duration(env):
    # a real controller (tests/e2e) rolls a replicas-0 workload out in well under a second: the wait
    # step then finds it done at once, and its duration is measured from this run's restart
    env.fake.rollouts(CTX, 0)
    code, out = env.run("--day", "2026-11-22", "--yes")
    assert code == EXIT_OK, out
    assert set(out["rollout_seconds"]) == {"deployment payments/payments-api", "statefulset payments/ledger",
                                           "daemonset payments/agent"}
    assert all(s >= 0 for s in out["rollout_seconds"].values())
