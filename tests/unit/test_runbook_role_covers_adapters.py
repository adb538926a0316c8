"""The runbook role grants every AWS operation the AWS adapters call, and nothing is forgotten when
an adapter learns a new call: the operations are read from the adapters' source.

The same for the clusters: the kubectl adapter, run against the stand-in kubectl with RBAC
enforced from the Role the Kubernetes component declares (components.kubernetes_access.runbook_rules),
does all it does in a failover (read and rewrite the ConfigMaps, read and restart the listed
Deployments) without one Forbidden, and is refused what the Role does not name."""

from __future__ import annotations

import re
from pathlib import Path

from components.access import RUNBOOK_ACTIONS

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = sorted((ROOT / "runbooks" / "adapters" / "aws").glob("*.py"))
"""The AWS adapters: one module per AWS service in the package runbooks/adapters/aws/."""
CALL = re.compile(r'\.call\(\s*"([a-z0-9]+)",\s*[^,]+?,\s*"([a-z_0-9]+)"', re.S)

# S3 and a few others name the IAM action differently from the API operation
IAM_ACTION = {
    ("s3", "head_object"): "s3:GetObject",
    ("s3", "list_object_versions"): "s3:ListBucketVersions",
    ("s3", "list_objects_v2"): "s3:ListBucket",
    ("s3", "get_bucket_replication"): "s3:GetReplicationConfiguration",
    ("s3", "put_bucket_replication"): "s3:PutReplicationConfiguration",
    ("s3", "delete_object"): "s3:DeleteObject",  # with VersionId: also s3:DeleteObjectVersion
    ("s3", "copy_object"): "s3:PutObject",  # and s3:GetObjectVersion on the source version
    ("kafka", "describe_cluster_v2"): "kafka:DescribeClusterV2",
    ("rds", "describe_db_instances"): "rds:DescribeDBInstances",
    ("rds", "describe_db_snapshots"): "rds:DescribeDBSnapshots",
    ("rds", "describe_db_instance_automated_backups"): "rds:DescribeDBInstanceAutomatedBackups",
    ("rds", "create_db_instance_read_replica"): "rds:CreateDBInstanceReadReplica",
    ("rds", "create_db_snapshot"): "rds:CreateDBSnapshot",
    ("rds", "copy_db_snapshot"): "rds:CopyDBSnapshot",
    ("rds", "delete_db_snapshot"): "rds:DeleteDBSnapshot",
    ("rds", "delete_db_instance"): "rds:DeleteDBInstance",
    ("rds", "modify_db_instance"): "rds:ModifyDBInstance",
    ("rds", "restore_db_instance_to_point_in_time"): "rds:RestoreDBInstanceToPointInTime",
    # S3 Batch Operations is S3 Control's API and S3's IAM actions
    ("s3control", "create_job"): "s3:CreateJob",
    ("s3control", "describe_job"): "s3:DescribeJob",
    ("s3control", "list_jobs"): "s3:ListJobs",
}


def _iam(service: str, operation: str) -> str:
    if (service, operation) in IAM_ACTION:
        return IAM_ACTION[(service, operation)]
    return f"{service}:" + "".join(part.capitalize() for part in operation.split("_"))


SERVICES = ("rds", "ec2", "kafka", "kafkaconnect", "ssm", "s3", "s3control", "kms", "cloudwatch", "sns",
            "secretsmanager", "route53")
LITERAL = re.compile(r'"([a-z][a-z0-9]*(?:_[a-z0-9]+)+)"')


def called() -> set[tuple[str, str]]:
    """Every (service, operation) whose snake_case operation name appears as a string literal in the
    AWS adapters: direct ``clients.call("rds", r, "promote_read_replica")`` and the wrappers that
    pass the name on (``self._call("get_health_check", …)``) alike. A name several services share
    counts for each of them that the adapters use."""
    import botocore.session
    from botocore import xform_name
    session = botocore.session.get_session()
    ops = {svc: {xform_name(o) for o in session.get_service_model(svc).operation_names} for svc in SERVICES}
    found = set()
    for path in ADAPTERS:
        text = path.read_text()
        used = {svc for svc in SERVICES if f'"{svc}"' in text}
        for literal in set(LITERAL.findall(text)):
            for svc in used:
                if literal in ops[svc]:
                    found.add((svc, literal))
    return found


def test_the_scan_finds_the_adapters_calls():
    ops = called()
    # a scan that finds nothing would make the next test pass vacuously
    assert ("rds", "promote_read_replica") in ops and ("route53", "change_resource_record_sets") in ops
    assert {("s3control", "create_job"), ("s3control", "describe_job"), ("s3control", "list_jobs")} <= ops
    assert len(ops) > 30, sorted(ops)


def test_the_scan_reads_every_module_that_calls_aws():
    # an adapter module outside the scanned package would escape the role check unseen
    calling = {path for path in (ROOT / "runbooks").rglob("*.py") if CALL.search(path.read_text())}
    assert calling, "no module of runbooks/ calls AWS through Clients.call: the CALL pattern is stale"
    assert calling <= set(ADAPTERS), sorted(str(p.relative_to(ROOT)) for p in calling - set(ADAPTERS))


def test_every_operation_the_aws_adapters_call_is_in_the_runbook_role():
    granted = {a for actions in RUNBOOK_ACTIONS.values() for a in actions}
    by_op: dict[str, set[str]] = {}
    for service, op in called():
        by_op.setdefault(op, set()).add(_iam(service, op))
    # an operation name shared by several services is covered when one of them is granted
    missing = sorted(f"{op}: {' or '.join(sorted(actions))}" for op, actions in by_op.items()
                     if not actions & granted)
    assert not missing, f"the runbook role lacks: {missing}"


# ---- the clusters: every kubectl request of the kubectl adapter is allowed by the runbooks' Role ----

def test_every_kubectl_request_the_adapter_makes_is_allowed_by_the_runbooks_role(tmp_path, monkeypatch):
    import pytest

    from components.kubernetes_access import runbook_rules
    from contract import active_endpoints as contract, outputs
    from runbooks.adapters.kubectl import KubectlEndpoints
    from runbooks.core.errors import StepFailed
    from tests.helpers.kubectl import FakeKubectl
    from tests.samples import pair_document

    listed = {"payments": ["payments-api"]}
    doc = pair_document()
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": f"ctx-{name}", "namespaces": ["payments", "checkout"],
                                "restart_deployments": listed}
    out = outputs.from_dict(doc)
    fake = FakeKubectl.install(tmp_path, monkeypatch)
    region = out.secondary.name
    ctx = f"ctx-{region}"
    for ns in ("payments", "checkout"):
        fake.seed(ctx, ns, contract.initial_data(out.primary))
        fake.grant(ctx, ns, runbook_rules(listed.get(ns, ())))  # the Role exactly as the component declares it
    fake.seed_deployment(ctx, "payments", "payments-api")
    port = KubectlEndpoints(out)

    port.read(region)
    port.publish(region, contract.active_values(out.secondary, list(out.secondary.databases)), "run-1")
    (state,) = port.deployments(region)
    assert state.exists
    port.restart(region, "payments", "payments-api", "run-1", "2026-11-22T04:00:07Z")
    assert port.deployments(region)[0].restarted_for == "run-1"
    verbs = {tuple(c["argv"][6:8]) for c in fake.calls()}
    assert verbs == {("get", "configmap"), ("apply", "--server-side"), ("get", "deployment"), ("patch", "deployment")}

    # and no more: a Deployment the Role does not name is refused, with what to grant and how
    fake.grant(ctx, "payments", runbook_rules())
    with pytest.raises(StepFailed) as err:
        port.deployments(region)
    assert "get and patch on the Deployment payments-api" in str(err.value) and "`pulumi up`" in str(err.value)
    assert "Forbidden" in str(err.value)
