"""The Kubernetes configuration restore end to end against a REAL API server (pytest -m k8s).

etcd, kube-apiserver and kube-controller-manager built by scripts/setup-k8s.sh run on loopback
(tests/e2e/k8s_cluster.py); the export sits in moto S3 under SSE-KMS as the CronJob writes it; the
runbook (runbooks.config_restore's CLI entry point) reaches the cluster through the real kubectl,
authenticated as a user bound to exactly the Roles components/kubernetes.py declares for the
restore (restore_rules, restore_namespace_rules), under RBAC. Then the API server's objects are read
back. What this cannot show: no kubelet or scheduler runs, so no pod starts (the restarted workloads
have replicas 0, and a rollout is what the real controllers write into their status); no EKS
authentication (a static token stands in for `aws eks get-token`).

    scripts/setup-k8s.sh && .venv/bin/python -m pytest -m k8s -s
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
from pathlib import Path

import pytest

from components.kubernetes_access import RESTORE_GROUP, restore_namespace_rules, restore_rules
from contract import active_endpoints as contract, outputs as outputs_contract
from runbooks import config_restore
from runbooks.adapters.aws import Clients
from runbooks.adapters.aws.config_exports import S3ConfigExports
from runbooks.backups import k8s_config_export as kc
from runbooks.core.clock import SystemClock
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.e2e.k8s_cluster import BIN, Cluster, missing_binaries, role, workload
from tests.fakes import FakeWorld, backup_ports
from tests.helpers.config_restore import (
    B64,
    DRY_RUN_DIFF,
    OLD_B64,
    PASSWORD,
    READER_RESTARTS,
    cm,
    export_files,
    reads_configmap,
    secret,
)
from tests.helpers.moto import S, shared_session
from tests.samples import pair_document

pytestmark = pytest.mark.k8s

CTX = "arn:aws:eks:us-west-2:123456789012:cluster/payments-dr"
NO_SECRETS = "restorer-without-secrets"
DAY, STAMP = "2026-11-22", "2026-11-22T023000Z"
REFUSALS_DAY, REFUSALS_STAMP = "2026-11-23", "2026-11-23T023000Z"
NAMESPACES = ("payments", "checkout", "frozen", "stuck")
TIMINGS: dict[str, float] = {}
REPORT = Path(__file__).resolve().parents[2] / "reports" / "k8s-e2e.json"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"{', '.join(missing)} not in {BIN}: run scripts/setup-k8s.sh first (it builds the control "
                    "plane; tens of minutes the first time)")
    c = Cluster(tmp_path_factory.mktemp("k8s"))
    c.add_user(CTX, "restorer", [RESTORE_GROUP])
    c.add_user(NO_SECRETS, "restorer-without-secrets", [NO_SECRETS])
    try:
        TIMINGS["control plane ready"] = c.start()
        print(f"\n{c.version()}: control plane ready in {TIMINGS['control plane ready']:.1f} s")
        seed(c)
        yield c
    finally:
        c.stop()
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps({k: round(v, 2) for k, v in TIMINGS.items()}, indent=2) + "\n")
        print("\nk8s e2e timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()) + f" -> {REPORT}")


def seed(c: Cluster) -> None:
    """The cluster today: drifted from the export of DAY (the unit test's export_files)."""
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES]
    for ns in NAMESPACES:
        docs += role(ns, RESTORE_GROUP, restore_rules(secrets=True))
        docs += role(ns, NO_SECRETS, restore_rules(secrets=False))
    for group in (RESTORE_GROUP, NO_SECRETS):
        docs += [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": group},
                  "rules": restore_namespace_rules(NAMESPACES)},
                 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": {"name": group},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": group},
                  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]}]
    c.apply(*docs)
    # created (not client-side applied: no last-applied annotation carrying a value), as a controller would
    objects = [
        cm("payments", "app-config", {"LOG_LEVEL": "debug", "FEATURE_X": "on", "HOTFIX": "1"}),
        cm("payments", "untouched", {"A": "1"}),
        cm("payments", contract.CONFIGMAP_NAME, {"ACTIVE_REGION": "us-west-2"},
           labels={contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE}),
        cm("checkout", "web-config", {"THEME": "dark"}),
        secret("payments", "db-credentials", {"password": OLD_B64}),
        workload("Deployment", "payments", "payments-api", reads_configmap("app-config")),
        workload("StatefulSet", "payments", "ledger", reads_configmap("limits", "volume")),
        workload("DaemonSet", "payments", "agent", reads_configmap("limits", "env")),
        workload("Deployment", "payments", "reads-untouched", reads_configmap("untouched")),
        workload("Deployment", "payments", "reads-secret", {"containers": [
            {"name": "app", "image": "registry.example/app:1.0",
             "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}]}]}),
        workload("Deployment", "checkout", "checkout-web", reads_configmap("web-config")),
        # the refusals' namespaces
        dict(cm("frozen", "limits", {"MAX_TPS": "50"}), immutable=True),
        cm("stuck", "app-config", {"LOG_LEVEL": "debug"}),
        workload("Deployment", "stuck", "api", reads_configmap("app-config"), replicas=1),
    ]
    c.kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


@pytest.fixture
def restore(cluster, moto_server, aws_env, tmp_path, monkeypatch):
    """The export of DAY (and of REFUSALS_DAY) in moto S3 under SSE-KMS with the DR region's key, and
    a runner of the real runbook, the real kubectl first on PATH, the test cluster's kubeconfig."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    session = shared_session()
    key = session.client("kms", region_name=S).create_key(Description="dr region key")["KeyMetadata"]["Arn"]
    doc = pair_document()
    doc["regions"][S]["kms_key_arn"] = key
    doc["regions"][S]["kubernetes"] = {"context": CTX, "namespaces": ["payments", "checkout"]}
    bucket = doc["regions"][S]["storage"]["backups_bucket"]
    s3 = session.client("s3", region_name=S)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S})
    refusals = {("frozen", "ConfigMap"): [cm("frozen", "limits", {"MAX_TPS": "500"})],
                ("stuck", "ConfigMap"): [cm("stuck", "app-config", {"LOG_LEVEL": "info"})]}
    for stamp, files in ((STAMP, export_files()), (REFUSALS_STAMP, refusals)):
        for (ns, kind), items in files.items():
            s3.put_object(Bucket=bucket, Key=f"{kc.EXPORT_PREFIX}/{stamp}/{ns}/{kc.FILES[kind]}",
                          Body=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode(),
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    outputs = outputs_contract.from_dict(doc)
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(doc))
    state = tmp_path / "state"
    ports = backup_ports(FakeWorld(outputs), state)  # audit sink, metrics, notifier: fakes; the export: S3
    ports.config_exports = S3ConfigExports(outputs, Clients(session))
    monkeypatch.setenv("PATH", f"{BIN}:{__import__('os').environ['PATH']}")
    for name, value in cluster.env().items():
        monkeypatch.setenv(name, value)

    def run(*extra, label: str | None = None):
        buf = io.StringIO()
        t0 = time.monotonic()
        code = config_restore.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json",
                                    "--region", "dr", *extra], ports_factory=lambda o, c: ports, clock=SystemClock(),
                                   stdin=io.StringIO(), stdout=buf)
        if label:
            TIMINGS[label] = time.monotonic() - t0
        return code, json.loads(buf.getvalue())

    run.state = state  # type: ignore[attr-defined]
    return run


def versions(c: Cluster, namespaces=NAMESPACES) -> dict[str, str]:
    """resourceVersion of every ConfigMap, Secret and workload of the namespaces: any write moves one."""
    out = {}
    for ns in namespaces:
        r = c.kubectl("-n", ns, "get", "configmap,secret,deployment,statefulset,daemonset", "-o", "json")
        for item in json.loads(r.stdout)["items"]:
            out[f"{item['kind']} {ns}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def template_annotations(c: Cluster, kind: str, ns: str, name: str) -> dict:
    return c.get(kind, ns, name)["spec"]["template"]["metadata"].get("annotations") or {}


def test_the_restore_end_to_end_on_a_real_api_server(cluster, restore):
    c = cluster
    before = versions(c)

    # 1. dry run: the diff by key names, what it would restart; nothing written to the API server
    code, out = restore("--day", DAY, "--dry-run", label="dry run")
    assert code == EXIT_OK, out
    assert out["diff"] == DRY_RUN_DIFF
    assert out["restart"] == READER_RESTARTS
    assert "1 Secret(s) in payments: NOT restored" in out["secrets"]
    assert versions(c) == before, "the dry run wrote to the API server"

    # 2. the restore: ConfigMaps applied server-side, their readers restarted, the rollouts waited for
    code, out = restore("--day", DAY, "--yes", label="restore (configmaps, 3 restarts)")
    assert code == EXIT_OK, out
    run_id = out["run_id"]
    app = c.get("configmap", "payments", "app-config", "--show-managed-fields")
    assert app["data"] == {"LOG_LEVEL": "info", "FEATURE_X": "on", "HOTFIX": "1"}, "HOTFIX (not exported) was lost"
    owners = {m["manager"]: m for m in app["metadata"]["managedFields"]}
    assert owners[kc.FIELD_MANAGER]["operation"] == "Apply"
    assert "f:LOG_LEVEL" in owners[kc.FIELD_MANAGER]["fieldsV1"]["f:data"]
    assert "f:HOTFIX" not in owners[kc.FIELD_MANAGER]["fieldsV1"]["f:data"]
    assert c.get("configmap", "payments", "limits")["data"] == {"MAX_TPS": "500"}
    assert c.get("configmap", "payments", contract.CONFIGMAP_NAME)["data"] == {"ACTIVE_REGION": "us-west-2"}
    after = versions(c)
    for untouched in ("ConfigMap payments/untouched", "ConfigMap checkout/web-config",
                      f"ConfigMap payments/{contract.CONFIGMAP_NAME}", "Secret payments/db-credentials",
                      "Deployment payments/reads-untouched", "Deployment payments/reads-secret",
                      "Deployment checkout/checkout-web"):
        assert after[untouched] == before[untouched], f"{untouched} was written"
    assert c.get("secret", "payments", "db-credentials")["data"] == {"password": OLD_B64}
    for kind, name in (("deployment", "payments-api"), ("statefulset", "ledger"), ("daemonset", "agent")):
        obj = c.get(kind, "payments", name)
        notes = obj["spec"]["template"]["metadata"]["annotations"]
        assert notes[contract.RESTARTED_FOR] == run_id and notes[contract.RESTARTED_AT]
        assert obj["metadata"]["generation"] == 2
        assert obj["status"]["observedGeneration"] == 2, f"the {kind} controller did not see the restart"
        assert kc.rollout(kind, obj)[0], (kind, obj["status"])
    assert out["summary"].startswith("2 object(s) restored") and "3 workload(s) restarted" in out["summary"]
    assert set(out["rollout_seconds"]) == {"deployment payments/payments-api", "statefulset payments/ledger",
                                           "daemonset payments/agent"}
    for ref, seconds in out["rollout_seconds"].items():
        TIMINGS[f"rollout {ref}"] = seconds

    # 3. the Secrets, with consent: the value written, never shown; its reader restarted
    code, out = restore("--day", DAY, "--include-secrets", "--yes", "--new-run", label="restore with --include-secrets")
    assert code == EXIT_OK, out
    assert c.get("secret", "payments", "db-credentials")["data"] == {"password": B64}
    assert base64.b64decode(c.get("secret", "payments", "db-credentials")["data"]["password"]).decode() == PASSWORD
    reader = c.get("deployment", "payments", "reads-secret")
    assert reader["metadata"]["generation"] == 2 and reader["status"]["observedGeneration"] == 2
    assert out["restored"] == ["secret payments/db-credentials"], out["restored"]
    assert c.get("deployment", "payments", "payments-api")["metadata"]["generation"] == 2, "restarted twice"
    written = "\n".join(p.read_text() for p in restore.state.rglob("*") if p.is_file()) + json.dumps(out)
    for value in (PASSWORD, B64, OLD_B64):
        assert value not in written, "a Secret's value reached a journal, the audit, a report or the output"

    # 4. a rerun with nothing to do says so and writes nothing
    settled = versions(c)
    code, out = restore("--day", DAY, "--include-secrets", "--yes", "--new-run", label="rerun, nothing to do")
    assert code == EXIT_OK, out
    assert out["summary"].startswith("nothing to do"), out
    assert versions(c) == settled, "a rerun with nothing to do wrote to the API server"


def test_without_the_secrets_role_the_cluster_refuses_and_nothing_changes(cluster, restore):
    before = versions(cluster, ("payments", "checkout"))
    code, out = restore("--day", DAY, "--include-secrets", "--yes", "--context", NO_SECRETS)
    assert code == EXIT_FAILED, out
    assert "refused the secret list" in out["error"] and "restore_rules" in out["error"], out["error"]
    assert "forbidden" in out["error"]
    assert versions(cluster, ("payments", "checkout")) == before


def test_an_immutable_configmap_that_differs_is_refused_before_any_change(cluster, restore):
    before = versions(cluster, ("frozen", "stuck"))
    code, out = restore("--day", REFUSALS_DAY, "--namespace", "frozen", "--namespace", "stuck", "--yes")
    assert code == EXIT_BAD_INPUT, out
    assert "configmap frozen/limits cannot be restored in place" in out["error"] and "immutable" in out["error"]
    assert versions(cluster, ("frozen", "stuck")) == before
    # what the API server itself says to such a change: the runbook's refusal is not stricter than it
    r = cluster.kubectl("-n", "frozen", "apply", "--server-side", "--field-manager=probe", "--force-conflicts",
                        "-f", "-", stdin=json.dumps(cm("frozen", "limits", {"MAX_TPS": "500"})), check=False)
    assert r.returncode != 0 and "immutable" in r.stderr.lower(), r.stderr


def test_a_rollout_that_cannot_finish_fails_at_its_deadline_and_a_rerun_finishes_without_restarting_again(
        cluster, restore):
    # no kubelet: the restarted Deployment's one new pod never becomes available
    code, out = restore("--day", REFUSALS_DAY, "--namespace", "stuck", "--yes", "--timeout", "6",
                        label="stuck rollout (deadline 6 s)")
    assert code == EXIT_FAILED, out
    assert "timed out after 6 s waiting for the rollout of deployment stuck/api" in out["error"], out["error"]
    assert cluster.get("configmap", "stuck", "app-config")["data"] == {"LOG_LEVEL": "info"}
    api = cluster.get("deployment", "stuck", "api")
    assert api["metadata"]["generation"] == 2 and api["status"].get("availableReplicas", 0) == 0
    restarted = template_annotations(cluster, "deployment", "stuck", "api")
    assert restarted[contract.RESTARTED_FOR] == out["run_id"]
    # the operator scales it to zero (a stand-in for the pods becoming ready); a plain rerun continues the
    # failed run from its journal: the rollout is now done, the restart is not made a second time
    cluster.kubectl("-n", "stuck", "scale", "deployment", "api", "--replicas=0")
    code, again = restore("--day", REFUSALS_DAY, "--namespace", "stuck", "--yes", "--timeout", "30",
                          label="rerun of the stuck run")
    assert code == EXIT_OK, again
    assert again["run_id"] == out["run_id"]
    assert template_annotations(cluster, "deployment", "stuck", "api") == restarted, "restarted a second time"
