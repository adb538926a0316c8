"""The pack as the CLI runs it, and the names it relies on.

* ``python -u -m pulumi.policy <engine> .`` in ``policy/`` (what the CLI's
  pulumi-analyzer-policy-python plugin runs) serves the analyzer; we talk to it over gRPC like the
  engine does: GetAnalyzerInfo, Analyze, AnalyzeStack.
* The type tokens and property names the rules use exist in the installed pulumi-aws.
* The snake_case → camelCase translation used for mocked graphs agrees with the provider's own
  name tables.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import grpc
import pulumi_aws as aws
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi._types import input_type_py_to_pulumi_names
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy import base, invariants, kms_sns_ssm, rules, s3
from policy.graph import provider_props, snake_to_camel
from tests.helpers.policy import init_args_class, input_types_of

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"

# ---- the type tokens and property names exist in pulumi-aws 7.x ------------------------------

CLASSES = {
    base.RDS_INSTANCE: aws.rds.Instance,
    base.RDS_BACKUP_REPLICATION: aws.rds.InstanceAutomatedBackupsReplication,
    base.MSK_CLUSTER: aws.msk.Cluster,
    base.MSK_CONFIGURATION: aws.msk.Configuration,
    base.MSK_REPLICATOR: aws.msk.Replicator,
    base.S3_BUCKETS[0]: aws.s3.Bucket,
    base.S3_VERSIONINGS[0]: aws.s3.BucketVersioning,
    base.S3_VERSIONINGS[1]: aws.s3.BucketVersioningV2,
    base.S3_ENCRYPTIONS[0]: aws.s3.BucketServerSideEncryptionConfiguration,
    base.S3_ENCRYPTIONS[1]: aws.s3.BucketServerSideEncryptionConfigurationV2,
    base.S3_PUBLIC_ACCESS_BLOCK: aws.s3.BucketPublicAccessBlock,
    base.S3_REPLICATION: aws.s3.BucketReplicationConfig,
    base.SNS_TOPIC: aws.sns.Topic,
    base.KMS_KEY: aws.kms.Key,
    base.ROUTE53_RECORD: aws.route53.Record,
    s3.S3_LIFECYCLES[0]: aws.s3.BucketLifecycleConfiguration,
    s3.S3_LIFECYCLES[1]: aws.s3.BucketLifecycleConfigurationV2,
    s3.S3_OBJECT_LOCKS[0]: aws.s3.BucketObjectLockConfiguration,
    s3.S3_OBJECT_LOCKS[1]: aws.s3.BucketObjectLockConfigurationV2,
    kms_sns_ssm.KMS_ALIAS: aws.kms.Alias,
    kms_sns_ssm.SSM_PARAMETER: aws.ssm.Parameter,
    base.IAM_ROLE_POLICY: aws.iam.RolePolicy,
    kms_sns_ssm.METRIC_ALARM: aws.cloudwatch.MetricAlarm,
}

# every property path the rules read, per type
PATHS = {
    base.RDS_INSTANCE: ["storageEncrypted", "kmsKeyId", "deletionProtection", "backupRetentionPeriod",
                         "replicateSourceDb"],
    base.RDS_BACKUP_REPLICATION: ["kmsKeyId", "retentionPeriod", "sourceDbInstanceArn"],
    base.MSK_CLUSTER: ["encryptionInfo.encryptionAtRestKmsKeyArn", "encryptionInfo.encryptionInTransit.clientBroker",
                        "encryptionInfo.encryptionInTransit.inCluster", "configurationInfo.arn"],
    base.MSK_CONFIGURATION: ["serverProperties"],
    base.S3_BUCKETS[0]: ["bucket", "objectLockEnabled", "forceDestroy"],
    base.S3_VERSIONINGS[0]: ["bucket", "versioningConfiguration.status"],
    base.S3_ENCRYPTIONS[0]: ["bucket", "rules.applyServerSideEncryptionByDefault.sseAlgorithm",
                              "rules.applyServerSideEncryptionByDefault.kmsMasterKeyId"],
    base.S3_PUBLIC_ACCESS_BLOCK: ["bucket", *invariants.PUBLIC_ACCESS_FLAGS],
    base.S3_REPLICATION: ["bucket", "rules.id", "rules.status", "rules.destination.bucket",
                           "rules.sourceSelectionCriteria.sseKmsEncryptedObjects.status",
                           "rules.destination.encryptionConfiguration.replicaKmsKeyId",
                           "rules.destination.replicationTime.status", "rules.destination.replicationTime.time.minutes",
                           "rules.destination.metrics.status", "rules.destination.metrics.eventThreshold.minutes",
                           "rules.priority", "rules.filter.tag", "rules.filter.and.tags",
                           "rules.deleteMarkerReplication.status"],
    base.SNS_TOPIC: ["kmsMasterKeyId", "name", "fifoTopic"],
    base.KMS_KEY: ["enableKeyRotation", "deletionWindowInDays", "rotationPeriodInDays", "customerMasterKeySpec",
                    "keyUsage", "policy"],
    base.ROUTE53_RECORD: ["failoverRoutingPolicies.type", "healthCheckId"],
    s3.S3_LIFECYCLES[0]: ["bucket", "rules.id", "rules.transitions.days", "rules.transitions.storageClass",
                           "rules.noncurrentVersionTransitions.noncurrentDays",
                           "rules.noncurrentVersionTransitions.storageClass"],
    s3.S3_OBJECT_LOCKS[0]: ["bucket", "objectLockEnabled", "rule.defaultRetention.mode", "rule.defaultRetention.days",
                             "rule.defaultRetention.years"],
    kms_sns_ssm.KMS_ALIAS: ["name"],
    kms_sns_ssm.SSM_PARAMETER: ["name", "type", "tier", "value", "insecureValue"],
    base.IAM_ROLE_POLICY: ["policy"],
    kms_sns_ssm.METRIC_ALARM: ["alarmActions", "okActions", "insufficientDataActions"],
}


@pytest.mark.parametrize("token, cls", CLASSES.items(), ids=list(CLASSES))
def test_type_tokens_are_the_ones_pulumi_aws_registers(token, cls):
    assert f"'{token}'" in inspect.getsource(cls), f"{cls.__name__} does not register as {token}"


@pytest.mark.parametrize("token", sorted(invariants.K8S_POD_SPEC_PATHS))
def test_kubernetes_type_tokens_are_the_ones_pulumi_kubernetes_registers(token):
    group_version, kind = token.split(":")[1], token.split(":")[2]
    group, version = group_version.split("/")
    module = importlib.import_module(f"pulumi_kubernetes.{group}.{version}.{kind}")
    assert f"'{token}'" in inspect.getsource(getattr(module, kind)), f"{kind} does not register as {token}"


@pytest.mark.parametrize("token", PATHS, ids=list(PATHS))
def test_property_names_the_rules_read_exist_in_the_provider(token):
    cls = CLASSES[token]
    top = set(input_type_py_to_pulumi_names(init_args_class(cls)).values())
    nested: set[str] = set()
    for c in input_types_of(cls.__module__.rsplit(".", 1)[0]):
        nested |= set(input_type_py_to_pulumi_names(c).values())
    for path in PATHS[token]:
        first, *rest = path.split(".")
        assert first in top, f"{token} has no input {first!r}"
        for step in rest:
            assert step in nested, f"{token}: no nested input {step!r} (in {path})"


@pytest.mark.parametrize("module", sorted({c.__module__.rsplit(".", 1)[0] for c in CLASSES.values()}))
def test_snake_to_camel_agrees_with_the_providers_own_name_tables(module):
    classes = input_types_of(module) + [init_args_class(c) for c in CLASSES.values()
                                         if c.__module__.startswith(module + ".")]
    mismatches = {(c.__name__, py, pu) for c in classes for py, pu in input_type_py_to_pulumi_names(c).items()
                  if snake_to_camel(py) != pu}
    # IAM policy documents (Version, Statement, Id, their statements and principals) are the one
    # irregular family; the rules read policies as JSON text, never through these types
    irregular = ("PolicyDocument", "PolicyStatement", "AWSPrincipal", "FederatedPrincipal", "ServicePrincipal")
    assert {m for m in mismatches if not m[0].startswith(irregular)} == set()


def test_provider_props_is_recursive_idempotent_and_leaves_tags_alone():
    inputs = {"kms_key_id": "k", "encryption_info": {"encryption_in_transit": {"client_broker": "TLS"}},
              "rules": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
              "tags": {"cost_center": "payments", "Name": "x"}}
    camel = provider_props(inputs)
    assert camel == {"kmsKeyId": "k", "encryptionInfo": {"encryptionInTransit": {"clientBroker": "TLS"}},
                     "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}],
                     "tags": {"cost_center": "payments", "Name": "x"}}
    assert provider_props(camel) == camel


# ---- the pack, served the way the CLI runs it ------------------------------------------------


@pytest.fixture(scope="module")
def analyzer():
    """Start the pack exactly as pulumi-analyzer-policy-python does (`python -u -m pulumi.policy
    <engine> .` in the pack's directory) with a dr stack's config, and connect to it."""
    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"regionpair:role": "secondary", "regionpair:promoted": "false"})}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], cwd=POLICY_DIR,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            proc.kill()
            raise AssertionError(f"the pack did not print its port: {line!r}; stderr: {proc.stderr.read()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _struct(props: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    json_format.ParseDict(props, s)
    return s


def test_the_served_pack_lists_every_policy_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == rules.PACK_NAME
    from policy import objectives
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in rules.POLICIES + objectives.POLICIES)
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_served_pack_rejects_a_key_without_rotation_and_passes_one_with(analyzer):
    def analyze(props):
        return analyzer.Analyze(analyzer_pb2.AnalyzeRequest(
            type=base.KMS_KEY, properties=_struct(props), urn="urn:pulumi:dr::regionpair::aws:kms/key:Key::dr-key",
            name="dr-key"), timeout=10)

    bad = analyze({"enableKeyRotation": False})
    assert [(d.policyName, d.enforcementLevel) for d in bad.diagnostics] == [("kms-key-rotation", analyzer_pb2.MANDATORY)]
    assert "dr-key" in bad.diagnostics[0].message and "enable_key_rotation=True" in bad.diagnostics[0].message
    assert list(analyze({"enableKeyRotation": True}).diagnostics) == []


def test_the_served_pack_judges_a_preview_stack_with_unknown_ids_by_property_dependencies(analyzer):
    """During a preview of a new stack the bucket's name is unknown; the engine still says which
    resource each property came from, and that is enough to pair a bucket with its versioning."""
    u = UNKNOWN_STRING_VALUE

    def res(type_, name, props, deps=None):
        return analyzer_pb2.AnalyzerResource(
            type=type_, name=name, urn=f"urn:pulumi:dr::regionpair::{type_}::{name}", properties=_struct(props),
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v) for k, v in (deps or {}).items()})

    bucket_urn = f"urn:pulumi:dr::regionpair::{base.S3_BUCKETS[0]}::data"
    stack = [
        res(base.STACK_REFERENCE, "prod", {"name": "org/regionpair/prod"}),
        res(base.RDS_INSTANCE, "orders", {"replicateSourceDb": "arn:aws:rds:us-east-1:1:db:o", "kmsKeyId": u,
                                           "deletionProtection": True}),
        res(base.RDS_BACKUP_REPLICATION, "orders-backups", {"sourceDbInstanceArn": "arn:aws:rds:us-east-1:1:db:o",
                                                             "kmsKeyId": u}),
        res(base.S3_BUCKETS[0], "data", {"bucket": u}),
        res(base.S3_ENCRYPTIONS[0], "data-sse", {"bucket": u, "rules": [{"applyServerSideEncryptionByDefault": {
            "sseAlgorithm": "aws:kms", "kmsMasterKeyId": u}}]}, {"bucket": [bucket_urn]}),
        res(base.S3_PUBLIC_ACCESS_BLOCK, "data-pab", {"bucket": u, **{f: True for f in invariants.PUBLIC_ACCESS_FLAGS}},
            {"bucket": [bucket_urn]}),
    ]
    versioning = res(base.S3_VERSIONINGS[0], "data-versioning",
                     {"bucket": u, "versioningConfiguration": {"status": "Enabled"}}, {"bucket": [bucket_urn]})

    ok = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[*stack, versioning]), timeout=10)
    assert [d.message for d in ok.diagnostics] == []

    missing = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack), timeout=10)
    assert [(d.policyName, d.urn) for d in missing.diagnostics] == [("s3-every-bucket-versioned", bucket_urn)]

    no_replica = [r for r in stack if r.name != "orders"] + [versioning]
    failed = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=no_replica), timeout=10)
    assert [d.policyName for d in failed.diagnostics] == ["dr-every-primary-replicated"]
    assert failed.diagnostics[0].enforcementLevel == analyzer_pb2.MANDATORY
