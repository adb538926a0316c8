"""Each DR invariant of the policy pack, passing and failing, called the way the CLI calls it.

Props go through the SDK's own ``unknown_checking_proxy`` into real ``ResourceValidationArgs`` /
``StackValidationArgs``, and the policy objects of ``policy.rules.POLICIES`` are called directly.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi.runtime
import pytest
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy import (
    base,
    dns_alarms_iam,
    invariants,
    kafka_backup,
    kms_sns_ssm,
    msk,
    mskconnect,
    rds,
    retention,
    rules,
    s3,
    stack_invariants,
)
from tests.helpers.policy import check, stack_findings
from tests.props import DELETE, with_

KEY = "arn:aws:kms:us-east-1:111122223333:key/0f0e0d0c-1111-2222-3333-444455556666"
DR_KEY = "arn:aws:kms:us-west-2:111122223333:key/0a0b0c0d-1111-2222-3333-444455556666"
PRIMARY_ARN = "arn:aws:rds:us-east-1:111122223333:db:prod-orders"
K8S_CRONJOB = "kubernetes:batch/v1:CronJob"
_POD = "spec.jobTemplate.spec.template.spec"
_MAIN = f"{_POD}.containers.0.securityContext"
_INIT = f"{_POD}.initContainers.0.securityContext"

GOOD: dict[str, dict[str, Any]] = {
    base.RDS_INSTANCE: {"engine": "postgres", "storageEncrypted": True, "kmsKeyId": KEY,
                         "deletionProtection": True, "backupRetentionPeriod": 30, "multiAz": True},
    base.RDS_BACKUP_REPLICATION: {"sourceDbInstanceArn": PRIMARY_ARN, "kmsKeyId": DR_KEY, "retentionPeriod": 14},
    base.MSK_CLUSTER: {"encryptionInfo": {"encryptionAtRestKmsKeyArn": KEY,
                                           "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True}},
                        "configurationInfo": {"arn": "arn:aws:kafka:us-east-1:111122223333:configuration/c/1",
                                              "revision": 1}},
    base.MSK_CONFIGURATION: {"serverProperties": "auto.create.topics.enable=false\n"
                                                  "default.replication.factor=3\nmin.insync.replicas=2\n"
                                                  "unclean.leader.election.enable=false\n"},
    base.S3_ENCRYPTIONS[0]: {"bucket": "data", "rules": [{"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY}, "bucketKeyEnabled": True}]},
    base.S3_REPLICATION: {"bucket": "data", "role": "arn:aws:iam::111122223333:role/repl", "rules": [{
        "id": "all", "status": "Enabled",
        "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
        "deleteMarkerReplication": {"status": "Enabled"},
        "destination": {"bucket": "arn:aws:s3:::data-dr", "encryptionConfiguration": {"replicaKmsKeyId": DR_KEY},
                        "replicationTime": {"status": "Enabled", "time": {"minutes": 15}},
                        "metrics": {"status": "Enabled", "eventThreshold": {"minutes": 15}}}}]},
    base.S3_PUBLIC_ACCESS_BLOCK: {"bucket": "data", "blockPublicAcls": True, "blockPublicPolicy": True,
                                   "ignorePublicAcls": True, "restrictPublicBuckets": True},
    base.SNS_TOPIC: {"kmsMasterKeyId": KEY},
    base.ROUTE53_RECORD: {"zoneId": "Z123", "name": "db.example.com", "type": "CNAME", "setIdentifier": "primary",
                           "failoverRoutingPolicies": [{"type": "PRIMARY"}], "healthCheckId": "hc-1",
                           "records": ["db.prod"], "ttl": 30},
    base.KMS_KEY: {"enableKeyRotation": True, "deletionWindowInDays": 30},
    K8S_CRONJOB: {"metadata": {"name": "dump"}, "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {
        "template": {"spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            "initContainers": [{"name": "fetch", "image": "tools:1", "securityContext": {
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
            "containers": [{"name": "upload", "image": "tools:1", "securityContext": {
                "privileged": False, "allowPrivilegeEscalation": False, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}}}}},
}


# (policy, resource type, path to change in the good props, new value, words the message must contain)
BROKEN = [
    ("rds-encrypted-with-customer-key", base.RDS_INSTANCE, "storageEncrypted", False, "not encrypted"),
    ("rds-encrypted-with-customer-key", base.RDS_INSTANCE, "storageEncrypted", DELETE, "not encrypted"),
    ("rds-encrypted-with-customer-key", base.RDS_INSTANCE, "kmsKeyId", DELETE, "no customer KMS key"),
    ("rds-encrypted-with-customer-key", base.RDS_INSTANCE, "kmsKeyId", "alias/aws/rds", "AWS-managed key"),
    ("rds-encrypted-with-customer-key", base.RDS_BACKUP_REPLICATION, "kmsKeyId", DELETE, "no customer KMS key"),
    ("rds-deletion-protection", base.RDS_INSTANCE, "deletionProtection", False, "deletion protection is off"),
    ("rds-deletion-protection", base.RDS_INSTANCE, "deletionProtection", DELETE, "deletion protection is off"),
    ("rds-backup-retention-floor", base.RDS_INSTANCE, "backupRetentionPeriod", 6, "below the floor of 7"),
    ("rds-backup-retention-floor", base.RDS_INSTANCE, "backupRetentionPeriod", 0, "below the floor of 7"),
    ("rds-backup-retention-floor", base.RDS_INSTANCE, "backupRetentionPeriod", DELETE, "at least 7 days"),
    ("rds-backup-retention-floor", base.RDS_BACKUP_REPLICATION, "retentionPeriod", 3, "below the floor of 7"),
    ("msk-encrypted", base.MSK_CLUSTER, "encryptionInfo.encryptionAtRestKmsKeyArn", DELETE, "AWS-managed MSK key"),
    ("msk-encrypted", base.MSK_CLUSTER, "encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT",
     "not TLS-only"),
    ("msk-encrypted", base.MSK_CLUSTER, "encryptionInfo.encryptionInTransit.clientBroker", "PLAINTEXT",
     "not TLS-only"),
    ("msk-encrypted", base.MSK_CLUSTER, "encryptionInfo.encryptionInTransit.inCluster", False, "not encrypted"),
    ("msk-durable-configuration", base.MSK_CLUSTER, "configurationInfo", DELETE, "default configuration"),
    ("msk-durable-configuration", base.MSK_CONFIGURATION, "serverProperties",
     "default.replication.factor=2\nmin.insync.replicas=2\nunclean.leader.election.enable=false",
     "default.replication.factor is '2'"),
    ("msk-durable-configuration", base.MSK_CONFIGURATION, "serverProperties",
     "default.replication.factor=3\nmin.insync.replicas=1\nunclean.leader.election.enable=false",
     "min.insync.replicas is '1'"),
    ("msk-durable-configuration", base.MSK_CONFIGURATION, "serverProperties",
     "default.replication.factor=3\nmin.insync.replicas=3\nunclean.leader.election.enable=false",
     "not below default.replication.factor"),
    ("msk-durable-configuration", base.MSK_CONFIGURATION, "serverProperties",
     "default.replication.factor=3\nmin.insync.replicas=2\nunclean.leader.election.enable=true",
     "unclean.leader.election.enable is 'true'"),
    ("msk-durable-configuration", base.MSK_CONFIGURATION, "serverProperties",
     "default.replication.factor=3\nmin.insync.replicas=2", "unclean.leader.election.enable is None"),
    ("s3-sse-kms", base.S3_ENCRYPTIONS[0], "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256",
     "not SSE-KMS"),
    ("s3-sse-kms", base.S3_ENCRYPTIONS[0], "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", DELETE,
     "AWS-managed key aws/s3"),
    ("s3-sse-kms", base.S3_ENCRYPTIONS[0], "rules", [], "no encryption rule"),
    ("s3-sse-kms", base.S3_REPLICATION, "rules.0.sourceSelectionCriteria", DELETE, "skips every object"),
    ("s3-sse-kms", base.S3_REPLICATION, "rules.0.destination.encryptionConfiguration", DELETE,
     "names no key for the replicas"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.destination.replicationTime", DELETE,
     "no replication time control"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.destination.replicationTime.status", "Disabled",
     "no replication time control"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.destination.replicationTime.time.minutes", 60,
     "no replication time control"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.destination.metrics", DELETE,
     "no replication metrics"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.destination.metrics.eventThreshold.minutes", 30,
     "requires 15"),
    ("s3-replication-time-control", base.S3_REPLICATION, "rules.0.status", "Disabled", "no enabled replication rule"),
    *[("s3-public-access-block-complete", base.S3_PUBLIC_ACCESS_BLOCK, flag, value, f"{flag}={value!r}")
      for flag in invariants.PUBLIC_ACCESS_FLAGS for value in (False, None)],
    ("sns-encrypted-with-customer-key", base.SNS_TOPIC, "kmsMasterKeyId", DELETE, "not encrypted"),
    ("sns-encrypted-with-customer-key", base.SNS_TOPIC, "kmsMasterKeyId", "alias/aws/sns",
     "CloudWatch alarms cannot publish"),
    ("route53-primary-failover-health-check", base.ROUTE53_RECORD, "healthCheckId", DELETE, "never fails over"),
    ("route53-primary-failover-health-check", base.ROUTE53_RECORD, "healthCheckId", "", "never fails over"),
    ("kms-key-rotation", base.KMS_KEY, "enableKeyRotation", False, "rotation is off"),
    ("kms-key-rotation", base.KMS_KEY, "enableKeyRotation", DELETE, "rotation is off"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.privileged", True, "runs privileged"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.allowPrivilegeEscalation", True, "may gain privileges"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_INIT}.allowPrivilegeEscalation", DELETE, "may gain privileges"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.capabilities", DELETE, "default Linux capabilities"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_INIT}.capabilities.drop", ["NET_RAW"], "default Linux capabilities"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.capabilities.add", ["SYS_ADMIN"], "adds capabilities"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.runAsNonRoot", False, "may run as root"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_POD}.securityContext.runAsNonRoot", DELETE, "may run as root"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_POD}.securityContext.runAsUser", 0, "may run as root"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_POD}.securityContext.seccompProfile", DELETE,
     "without a seccomp profile"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_MAIN}.seccompProfile.type", "Unconfined", "without a seccomp profile"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_POD}.hostNetwork", True, "hostNetwork=True"),
    ("k8s-workload-restricted", K8S_CRONJOB, f"{_POD}.volumes.0", {"name": "node", "hostPath": {"path": "/"}},
     "hostPath"),
]


@pytest.mark.parametrize("policy_name, type_", sorted({(b[0], b[1]) for b in BROKEN}))
def test_the_good_resource_passes(policy_name, type_):
    assert check(policy_name, type_, GOOD[type_]) == []


@pytest.mark.parametrize("policy_name, type_, path, value, words", BROKEN,
                         ids=[f"{b[0]}:{b[1].rsplit(':', 1)[-1]}:{b[2]}={b[3] if b[3] is not DELETE else 'unset'}"
                              for b in BROKEN])
def test_a_broken_resource_fails_with_a_message_naming_it_and_the_fix(policy_name, type_, path, value, words):
    messages = check(policy_name, type_, with_(GOOD[type_], path, value), name="orders-main")
    assert len(messages) >= 1, f"{policy_name} let {path}={value!r} through"
    assert any(words in m for m in messages), messages
    for m in messages:
        assert m.startswith(f"orders-main ({type_})"), m
        assert "Fix:" in m, m


def test_every_policy_is_mandatory_and_named_uniquely():
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names))
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in rules.POLICIES)


PACK_ORDER = [
    "rds-encrypted-with-customer-key", "rds-deletion-protection", "rds-backup-retention-floor", "msk-encrypted",
    "msk-durable-configuration", "s3-sse-kms", "s3-replication-time-control", "s3-public-access-block-complete",
    "sns-encrypted-with-customer-key", "route53-primary-failover-health-check", "kms-key-rotation",
    "k8s-workload-restricted", "s3-every-bucket-versioned", "s3-every-bucket-kms-encrypted",
    "s3-every-bucket-public-access-blocked", "rds-logical-replication-static", "dr-every-primary-replicated",
    "msk-cluster-replicator-ready", "msk-replicator-valid", "msk-cluster-policy-for-replicator",
    "msk-replicator-execution-role", "msk-configuration-matches-cluster-version", "rds-password-not-rds-managed",
    "rds-final-snapshot-by-role", "rds-major-version-with-auto-minor-upgrade", "rds-cross-region-replica",
    "rds-backup-replication", "secretsmanager-secret", "rds-parameter-group-family", "route53-health-check-valid",
    "route53-record-valid", "route53-failover-record-runbook-controlled", "route53-failover-pairs",
    "cloudwatch-alarm-valid", "cloudwatch-route53-alarm-in-us-east-1", "iam-runbook-least-privilege",
    "iam-trust-names-principals", "s3-lifecycle-rule-limit", "mskconnect-connector-valid",
    "mskconnect-connector-iam-tls-logs", "mskconnect-custom-plugin-valid", "mskconnect-worker-configuration-valid",
    "mskconnect-mirrormaker2-settings", "mskconnect-execution-role", "s3-lifecycle-transitions-valid",
    "s3-replication-rule-shape", "s3-object-lock-retention-valid", "s3-bucket-name-valid",
    "s3-replication-role-permissions", "kms-key-settings-valid", "kms-alias-name-valid", "sns-topic-name-valid",
    "ssm-parameter-valid", "s3-object-lock-bucket-consistent", "s3-replication-role-kms-permissions",
    "s3-one-configuration-per-bucket", "kms-key-lets-cloudwatch-publish", "rds-backup-retention-at-most-35",
    "backup-vault-lock-cooling-off", "backup-plan-cold-storage-90-days", "iam-snapshot-delete-spares-compliance",
    "rds-snapshot-export-role", "s3-compliance-archive-locked",
]
"""The order of ``rules.POLICIES`` before the pack was split into base, checks and areas (issue 14):
the split moved code, not the pack."""


def test_the_pack_keeps_its_order_and_holds_each_modules_policies_once():
    assert [p.name for p in rules.POLICIES] == PACK_ORDER
    parts = [rules.CORE_POLICIES, msk.POLICIES, rds.POLICIES, dns_alarms_iam.POLICIES, kafka_backup.POLICIES,
             mskconnect.POLICIES, s3.POLICIES, kms_sns_ssm.POLICIES, retention.POLICIES]
    assert sorted(id(p) for part in parts for p in part) == sorted(id(p) for p in rules.POLICIES)


def test_a_policy_only_looks_at_its_own_resource_types():
    # a KMS key without rotation is none of the RDS policy's business, and vice versa
    assert check("rds-deletion-protection", base.KMS_KEY, {"enableKeyRotation": False}) == []
    assert check("kms-key-rotation", base.RDS_INSTANCE, {"deletionProtection": False}) == []


def test_a_replica_needs_no_retention_but_does_need_its_own_regions_key():
    replica = {"replicateSourceDb": PRIMARY_ARN, "kmsKeyId": DR_KEY, "deletionProtection": True}
    assert check("rds-backup-retention-floor", base.RDS_INSTANCE, replica) == []
    assert check("rds-encrypted-with-customer-key", base.RDS_INSTANCE, replica) == []
    assert check("rds-encrypted-with-customer-key", base.RDS_INSTANCE, {**replica, "kmsKeyId": None})
    assert check("rds-encrypted-with-customer-key", base.RDS_INSTANCE, {**replica, "storageEncrypted": False})
    # and deletion protection applies to replicas too
    assert check("rds-deletion-protection", base.RDS_INSTANCE, {**replica, "deletionProtection": False})


def test_secondary_and_plain_records_need_no_health_check():
    secondary = with_(GOOD[base.ROUTE53_RECORD], "failoverRoutingPolicies", [{"type": "SECONDARY"}])
    assert check("route53-primary-failover-health-check", base.ROUTE53_RECORD,
                 with_(secondary, "healthCheckId", DELETE)) == []
    simple = {"zoneId": "Z1", "name": "x.example.com", "type": "A", "records": ["10.0.0.1"]}
    assert check("route53-primary-failover-health-check", base.ROUTE53_RECORD, simple) == []


def test_values_computed_during_preview_count_as_set_where_only_presence_matters():
    # the KMS key ARN is an output of the key: unknown in a preview of a new stack
    unknown_key = with_(GOOD[base.RDS_INSTANCE], "kmsKeyId", UNKNOWN_STRING_VALUE)
    assert check("rds-encrypted-with-customer-key", base.RDS_INSTANCE, unknown_key) == []
    unknown_hc = with_(GOOD[base.ROUTE53_RECORD], "healthCheckId", UNKNOWN_STRING_VALUE)
    assert check("route53-primary-failover-health-check", base.ROUTE53_RECORD, unknown_hc) == []
    # but an unknown never passes for a literal that must be True
    assert base.plain(UNKNOWN_STRING_VALUE) is base.UNKNOWN
    assert not base.UNKNOWN


def test_server_properties_parser_reads_comments_and_both_separators():
    text = "# durable\n default.replication.factor = 3\nmin.insync.replicas:2\n! note\n\nx=a=b\n"
    assert base.parse_server_properties(text) == {"default.replication.factor": "3", "min.insync.replicas": "2",
                                                   "x": "a=b"}


# ---- stack policies ---------------------------------------------------------------------------


def bucket_set(name: str, *, versioned: bool = True, kms: bool = True, blocked: bool = True) -> list[dict]:
    nodes = [{"type": base.S3_BUCKETS[0], "name": name, "parent": None, "inputs": {"bucket": name}}]
    if versioned:
        nodes.append({"type": base.S3_VERSIONINGS[0], "name": f"{name}-versioning", "parent": None,
                      "inputs": {"bucket": name, "versioningConfiguration": {"status": "Enabled"}}})
    if kms:
        nodes.append({"type": base.S3_ENCRYPTIONS[0], "name": f"{name}-sse", "parent": None,
                      "inputs": copy.deepcopy(GOOD[base.S3_ENCRYPTIONS[0]]) | {"bucket": name}})
    if blocked:
        nodes.append({"type": base.S3_PUBLIC_ACCESS_BLOCK, "name": f"{name}-pab", "parent": None,
                      "inputs": copy.deepcopy(GOOD[base.S3_PUBLIC_ACCESS_BLOCK]) | {"bucket": name}})
    return nodes


@pytest.mark.parametrize("policy_name, broken, words", [
    ("s3-every-bucket-versioned", {"versioned": False}, "not versioned"),
    ("s3-every-bucket-kms-encrypted", {"kms": False}, "no SSE-KMS encryption configuration"),
    ("s3-every-bucket-public-access-blocked", {"blocked": False}, "no public access block"),
])
def test_every_bucket_needs_its_companion_resources(policy_name, broken, words):
    assert stack_findings(policy_name, bucket_set("data") + bucket_set("backups")) == []
    findings = stack_findings(policy_name, bucket_set("data") + bucket_set("backups", **broken))
    assert [f.urn for f in findings] == ["urn:pulumi:test::regionpair::aws:s3/bucket:Bucket::backups"]
    assert words in findings[0].message and "Fix:" in findings[0].message


def test_a_companion_resource_for_another_bucket_does_not_count():
    graph = bucket_set("data", versioned=False) + bucket_set("other")
    assert stack_findings("s3-every-bucket-versioned", graph)


def test_a_weak_companion_does_not_count():
    weak_sse = bucket_set("data")
    weak_sse[2]["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}
    assert stack_findings("s3-every-bucket-kms-encrypted", weak_sse)
    suspended = bucket_set("data")
    suspended[1]["inputs"]["versioningConfiguration"]["status"] = "Suspended"
    assert stack_findings("s3-every-bucket-versioned", suspended)
    half_open = bucket_set("data")
    half_open[3]["inputs"]["restrictPublicBuckets"] = False
    assert stack_findings("s3-every-bucket-public-access-blocked", half_open)


def replication(source: str = "data", dest_arn: str = "arn:aws:s3:::data-dr") -> dict:
    props = with_(GOOD[base.S3_REPLICATION], "bucket", source)
    return {"type": base.S3_REPLICATION, "name": "data-replication", "parent": None,
            "inputs": with_(props, "rules.0.destination.bucket", dest_arn)}


def test_both_ends_of_a_replication_must_be_versioned():
    graph = bucket_set("data") + bucket_set("data-dr") + [replication()]
    assert stack_findings("s3-every-bucket-versioned", graph) == []
    unversioned_dest = bucket_set("data") + bucket_set("data-dr", versioned=False) + [replication()]
    messages = [f.message for f in stack_findings("s3-every-bucket-versioned", unversioned_dest)]
    assert any("replicates to data-dr, which is not versioned" in m for m in messages), messages
    unversioned_source = bucket_set("data", versioned=False) + bucket_set("data-dr") + [replication()]
    messages = [f.message for f in stack_findings("s3-every-bucket-versioned", unversioned_source)]
    assert any("replicates from data, which is not versioned" in m for m in messages), messages


def test_replication_from_another_stacks_bucket_checks_the_destination_here():
    # the dr stack configures replication on prod's bucket; prod's own run checks that bucket
    graph = bucket_set("data-dr") + [replication(source="prod-data")]
    assert stack_findings("s3-every-bucket-versioned", graph) == []
    elsewhere = bucket_set("data-dr") + [replication(source="prod-data", dest_arn="arn:aws:s3:::somewhere-else")]
    messages = [f.message for f in stack_findings("s3-every-bucket-versioned", elsewhere)]
    assert any("not a bucket of this stack" in m for m in messages), messages


def test_matching_falls_back_to_the_engines_property_dependencies_when_ids_are_unknown():
    bucket = base.Resource(base.S3_BUCKETS[0], "data", {"bucket": base.UNKNOWN}, urn="urn:b")
    versioning = base.Resource(base.S3_VERSIONINGS[0], "data-versioning",
                                {"bucket": base.UNKNOWN, "versioningConfiguration": {"status": "Enabled"}},
                                urn="urn:v", property_dependencies={"bucket": ("urn:b",)})
    assert stack_invariants.check_buckets_versioned([bucket, versioning]) == []
    unrelated = base.Resource(base.S3_VERSIONINGS[0], "x", {"bucket": base.UNKNOWN,
                                                                "versioningConfiguration": {"status": "Enabled"}},
                               urn="urn:x", property_dependencies={"bucket": ("urn:other",)})
    assert stack_invariants.check_buckets_versioned([bucket, unrelated])


# ---- every primary has a replica in the dr stack ------------------------------------------------


@pytest.fixture
def stack_config():
    """Set the stack config the CLI would pass the pack (regionpair:role / :promoted), then restore."""
    keys = (f"{base.PROJECT}:role", f"{base.PROJECT}:promoted")
    config = pulumi.runtime.config.CONFIG.get()
    saved = {k: config[k] for k in keys if k in config}

    def set_(role: str | None = None, promoted: str | None = None) -> None:
        for k, v in zip(keys, (role, promoted)):
            if v is None:
                config.pop(k, None)
            else:
                config[k] = v

    yield set_
    for k in keys:
        config.pop(k, None)
    config.update(saved)


def replica(name: str = "orders", source: Any = PRIMARY_ARN) -> dict:
    return {"type": base.RDS_INSTANCE, "name": f"{name}-replica", "parent": None,
            "inputs": {"replicateSourceDb": source, "kmsKeyId": DR_KEY, "deletionProtection": True}}


def backups_replication(source: str = PRIMARY_ARN) -> dict:
    return {"type": base.RDS_BACKUP_REPLICATION, "name": "orders-backups", "parent": None,
            "inputs": {"sourceDbInstanceArn": source, "kmsKeyId": DR_KEY}}


def standalone(name: str = "orders") -> dict:
    return {"type": base.RDS_INSTANCE, "name": f"{name}-replica", "parent": None,
            "inputs": copy.deepcopy(GOOD[base.RDS_INSTANCE])}


STACK_REF = {"type": base.STACK_REFERENCE, "name": "prod", "parent": None, "inputs": {"name": "org/regionpair/prod"}}


def dr_messages(graph: list[dict]) -> list[str]:
    return [f.message for f in stack_findings("dr-every-primary-replicated", graph, stack="dr")]


def test_dr_stack_with_replica_and_backup_replication_passes(stack_config):
    stack_config(role="secondary", promoted="false")
    assert dr_messages([STACK_REF, replica(), backups_replication()]) == []


@pytest.mark.parametrize("graph, words", [
    ([STACK_REF, backups_replication()], "declares no read replica"),
    ([STACK_REF, standalone(), backups_replication()], "standalone database in the dr stack"),
    ([STACK_REF, replica()], "no automated-backups replication"),
    ([STACK_REF, replica(), backups_replication("arn:aws:rds:us-east-1:111122223333:db:other")],
     "no automated-backups replication"),
    ([STACK_REF, replica(source="prod-orders"), backups_replication("prod-orders")], "must name its source by ARN"),
])
def test_dr_stack_without_a_full_replica_fails(stack_config, graph, words):
    stack_config(role="secondary", promoted="false")
    messages = dr_messages(graph)
    assert any(words in m for m in messages), messages
    assert all("Fix:" in m for m in messages)


def test_promoted_dr_stack_accepts_the_standalone_database(stack_config):
    stack_config(role="secondary", promoted="true")
    assert dr_messages([STACK_REF, standalone()]) == []
    assert any("declares no database" in m for m in dr_messages([STACK_REF]))


def test_prod_stack_is_not_asked_for_replicas(stack_config):
    stack_config(role="primary")
    assert dr_messages([standalone("orders")]) == []


def test_without_visible_config_the_dr_stack_is_recognised_by_its_cross_region_links(stack_config):
    stack_config()  # the pack cannot see the stack config
    assert dr_messages([standalone("orders")]) == []  # looks like prod
    assert any("declares no read replica" in m for m in dr_messages([STACK_REF, standalone()]))


def test_every_primary_prod_exports_needs_a_replica(stack_config):
    stack_config(role="secondary", promoted="false")
    doc = {"schema_version": 1, "regions": {"us-east-1": {"role": "primary", "databases": {
        "orders": {"role": "primary", "arn": PRIMARY_ARN},
        "ledger": {"role": "primary", "arn": "arn:aws:rds:us-east-1:111122223333:db:prod-ledger"}}}}}
    ref = with_(STACK_REF, "inputs", {"name": "org/regionpair/prod", "outputs": {"outputs": doc}})
    messages = dr_messages([ref, replica(), backups_replication()])
    assert messages == [m for m in messages if "'ledger'" in m] and len(messages) == 1, messages
    ledger_arn = "arn:aws:rds:us-east-1:111122223333:db:prod-ledger"
    assert dr_messages([ref, replica(), backups_replication(), replica("ledger", ledger_arn),
                        backups_replication(ledger_arn) | {"name": "ledger-backups"}]) == []


def test_k8s_policy_reads_every_workload_kind_and_waits_for_a_computed_pod_spec():
    pod = GOOD[K8S_CRONJOB]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    privileged = copy.deepcopy(pod)
    privileged["containers"][0]["securityContext"]["privileged"] = True
    for type_, path in invariants.K8S_POD_SPEC_PATHS.items():
        props: dict[str, Any] = {}
        node = props
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = copy.deepcopy(pod)
        assert check("k8s-workload-restricted", type_, props) == [], type_
        node[path[-1]] = privileged
        assert any("runs privileged" in m for m in check("k8s-workload-restricted", type_, props)), type_
    computed = {"spec": {"jobTemplate": {"spec": {"template": UNKNOWN_STRING_VALUE}}}}
    assert check("k8s-workload-restricted", K8S_CRONJOB, computed) == []
    assert check("k8s-workload-restricted", "kubernetes:core/v1:ConfigMap", {"data": {"a": "b"}}) == []
