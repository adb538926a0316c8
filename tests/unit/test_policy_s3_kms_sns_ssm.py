"""The S3 and KMS/SNS/SSM rules of the pack (policy/s3.py, policy/kms_sns_ssm.py), each refusing the broken form
and accepting the good one, called through the SDK the way the CLI calls them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy import base, kms_sns_ssm, rules, s3
from policy.graph import evaluate, policy_resources
from tests.props import DELETE, with_

POLICY = {p.name: p for p in rules.POLICIES}
KEY_W = "arn:aws:kms:us-west-2:111122223333:key/0a0b0c0d-1111-2222-3333-444455556666"
LIFECYCLE = s3.S3_LIFECYCLES[0]
OBJECT_LOCK = s3.S3_OBJECT_LOCKS[0]
BUCKET = base.S3_BUCKETS[0]
VERSIONING = base.S3_VERSIONINGS[0]


def key_policy(*, cloudwatch: bool = True) -> str:
    statements = [{"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                   "Action": "kms:*", "Resource": "*"}]
    if cloudwatch:
        statements.append({"Sid": "CloudWatch", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                           "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def replication_role_policy() -> str:
    src, dst = "arn:aws:s3:::prod-data", "arn:aws:s3:::dr-data"
    key_e = KEY_W.replace("us-west-2", "us-east-1")
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": [src]},
        {"Effect": "Allow", "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                                       "s3:GetObjectVersionTagging"], "Resource": [f"{src}/*"]},
        {"Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
         "Resource": [f"{dst}/*"]},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key_e]},
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"], "Resource": [KEY_W]},
    ]})


GOOD: dict[str, dict[str, Any]] = {
    LIFECYCLE: {"bucket": "data", "rules": [{
        "id": "archive", "status": "Enabled", "filter": {"prefix": ""},
        "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 90, "storageClass": "GLACIER"},
                        {"days": 180, "storageClass": "DEEP_ARCHIVE"}],
        "noncurrentVersionTransitions": [{"noncurrentDays": 30, "storageClass": "STANDARD_IA"}],
        "noncurrentVersionExpiration": {"noncurrentDays": 60}}]},
    base.S3_REPLICATION: {"bucket": "data", "role": "arn:aws:iam::111122223333:role/repl", "rules": [{
        "id": "all", "status": "Enabled", "priority": 1, "filter": {"prefix": ""},
        "deleteMarkerReplication": {"status": "Enabled"},
        "destination": {"bucket": "arn:aws:s3:::data-dr", "encryptionConfiguration": {"replicaKmsKeyId": KEY_W}}}]},
    OBJECT_LOCK: {"bucket": "backups", "objectLockEnabled": "Enabled",
                  "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 30}}},
    BUCKET: {"bucket": "regionpair-prod-data-111122223333-us-east-1"},
    base.KMS_KEY: {"enableKeyRotation": True, "rotationPeriodInDays": 365, "deletionWindowInDays": 30,
                    "customerMasterKeySpec": "SYMMETRIC_DEFAULT", "keyUsage": "ENCRYPT_DECRYPT"},
    kms_sns_ssm.KMS_ALIAS: {"name": "alias/regionpair-prod", "targetKeyId": "0a0b0c0d"},
    base.SNS_TOPIC: {"name": "regionpair-prod-alarms", "kmsMasterKeyId": KEY_W},
    kms_sns_ssm.SSM_PARAMETER: {"name": "/regionpair/s3/writer-bucket", "type": "String", "value": "b", "tier": "Standard"},
    base.IAM_ROLE_POLICY: {"role": "repl", "policy": replication_role_policy()},
}





def check(policy_name: str, type_: str, props: dict[str, Any], name: str = "it") -> list[str]:
    policy = POLICY[policy_name]
    assert isinstance(policy, ResourceValidationPolicy)
    [resource] = policy_resources([{"type": type_, "name": name, "parent": None, "inputs": copy.deepcopy(props)}],
                                  stack="test")
    return [f.message for f in evaluate([resource], [policy])]


def _role_policy_without(action: str) -> str:
    doc = json.loads(replication_role_policy())
    for s in doc["Statement"]:
        s["Action"] = [a for a in s["Action"] if a != action]
    return json.dumps(doc)


def _role_policy_encrypt_only() -> str:
    doc = json.loads(replication_role_policy())
    doc["Statement"][-1]["Action"] = ["kms:Encrypt", "kms:GenerateDataKey"]
    return json.dumps(doc)


def _role_policy_without_kms() -> str:
    doc = json.loads(replication_role_policy())
    doc["Statement"] = [s for s in doc["Statement"] if not any(a.startswith("kms:") for a in s["Action"])]
    return json.dumps(doc)


# what a 1011-character ARN leaves the name (with its leading /) in the shortest Region name
SSM_ROOM = 1011 - len("arn:aws:ssm:us-east-1:111122223333:parameter")


# (policy, type, path, broken value, words the message must contain)
BROKEN = [
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.0.days", 29, "at least 30 days"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.0",
     {"days": 10, "storageClass": "ONEZONE_IA"}, "at least 30 days"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.1.days", 59, "within 30 days"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.2.days", 179, "must be 90 days more"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.2.storageClass", "STANDARD",
     "cannot transition into S3 Standard"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.noncurrentVersionTransitions.0.noncurrentDays", 7,
     "noncurrent for at least 30 days"),
    # STANDARD_IA -> ONEZONE_IA: "the same 30-day minimum applies"
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.transitions.1", {"days": 45, "storageClass": "ONEZONE_IA"},
     "to ONEZONE_IA 15 days after STANDARD_IA"),
    # the IA -> archive gap holds for noncurrent transitions too
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.noncurrentVersionTransitions",
     [{"noncurrentDays": 30, "storageClass": "STANDARD_IA"}, {"noncurrentDays": 45, "storageClass": "GLACIER"}],
     "noncurrent versions to GLACIER 15 days after STANDARD_IA"),
    ("s3-lifecycle-transitions-valid", LIFECYCLE, "rules.0.noncurrentVersionTransitions",
     [{"noncurrentDays": 30, "storageClass": "STANDARD_IA"}, {"noncurrentDays": 31, "storageClass": "ONEZONE_IA"}],
     "noncurrent versions to ONEZONE_IA 1 days after STANDARD_IA"),
    ("s3-replication-rule-shape", base.S3_REPLICATION, "rules.0.deleteMarkerReplication", DELETE,
     "no deleteMarkerReplication"),
    ("s3-replication-rule-shape", base.S3_REPLICATION, "rules.0.priority", DELETE, "no priority"),
    ("s3-replication-rule-shape", base.S3_REPLICATION, "rules.0.filter",
     {"tag": {"key": "k", "value": "v"}}, "tag-based rules"),
    ("s3-replication-rule-shape", base.S3_REPLICATION, "rules.0.destination.encryptionConfiguration.replicaKmsKeyId",
     "0a0b0c0d-1111-2222-3333-444455556666", "not a KMS key or alias ARN"),
    ("s3-replication-rule-shape", base.S3_REPLICATION, "rules.0.destination.encryptionConfiguration.replicaKmsKeyId",
     "alias/regionpair-dr", "not a KMS key or alias ARN"),
    ("s3-object-lock-retention-valid", OBJECT_LOCK, "rule.defaultRetention.years", 1, "both days and years"),
    ("s3-object-lock-retention-valid", OBJECT_LOCK, "rule.defaultRetention.days", DELETE, "neither of days and years"),
    ("s3-object-lock-retention-valid", OBJECT_LOCK, "rule.defaultRetention.days", 36501, "1 day to 100 years"),
    ("s3-object-lock-retention-valid", OBJECT_LOCK, "rule.defaultRetention.mode", "STRICT", "retention mode"),
    ("s3-object-lock-retention-valid", OBJECT_LOCK, "objectLockEnabled", "Disabled", "cannot be turned off"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "Regionpair_Data", "naming rules"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "regionpair-" + "x" * 60, "3 to 63 characters"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "192.168.5.4", "IP address"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "xn--regionpair", "xn--"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "regionpair-data-s3alias", "-s3alias"),
    ("s3-bucket-name-valid", BUCKET, "bucket", "regionpair..data", "adjacent dots"),
    *[("s3-bucket-name-valid", BUCKET, "bucket", name, f"not starting with {prefix}")
      for prefix, name in [("sthree-", "sthree-regionpair"), ("sthree-", "sthree-configurator-x"),
                           ("amzn-s3-demo-", "amzn-s3-demo-regionpair")]],
    *[("s3-bucket-name-valid", BUCKET, "bucket", f"regionpair-data{suffix}", f"not ending with {suffix}")
      for suffix in ("--ol-s3", ".mrap", "--x-s3", "--table-s3")],
    *[("s3-replication-role-permissions", base.IAM_ROLE_POLICY, "policy", _role_policy_without(action),
       f"without {action}") for action in s3.REPLICATION_ROLE_ACTIONS if action != "s3:ReplicateObject"],
    ("kms-key-settings-valid", base.KMS_KEY, "deletionWindowInDays", 6, "7 to 30"),
    ("kms-key-settings-valid", base.KMS_KEY, "deletionWindowInDays", 31, "7 to 30"),
    ("kms-key-settings-valid", base.KMS_KEY, "rotationPeriodInDays", 89, "90 to 2560"),
    ("kms-key-settings-valid", base.KMS_KEY, "rotationPeriodInDays", 2561, "90 to 2560"),
    ("kms-key-settings-valid", base.KMS_KEY, "customerMasterKeySpec", "RSA_2048", "symmetric encryption keys only"),
    ("kms-alias-name-valid", kms_sns_ssm.KMS_ALIAS, "name", "alias/aws/regionpair", "reserves for AWS managed keys"),
    ("kms-alias-name-valid", kms_sns_ssm.KMS_ALIAS, "name", "regionpair-prod", "is not 'alias/'"),
    ("kms-alias-name-valid", kms_sns_ssm.KMS_ALIAS, "name", "alias/region pair", "is not 'alias/'"),
    ("kms-alias-name-valid", kms_sns_ssm.KMS_ALIAS, "name", "alias/" + "a" * 251, "256 characters"),
    ("sns-topic-name-valid", base.SNS_TOPIC, "name", "regionpair prod alarms", "1 to 256 letters"),
    ("sns-topic-name-valid", base.SNS_TOPIC, "name", "a" * 257, "1 to 256 letters"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "/aws/regionpair/x", "not prefixed with aws or ssm"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "SSM-writer", "not prefixed with aws or ssm"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "regionpair/s3/writer", "starts with /"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "/regionpair/s3 writer", "no spaces"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "/" + "/".join("abcdefghijklmnop"), "fifteen"),
    # 1011 characters counting the ARN before the name: too long in every Region
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "/r/" + "x" * (SSM_ROOM - 2), "1011 characters"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "name", "r" * SSM_ROOM, "1011 characters"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "type", "Secret", "type 'Secret'"),
    ("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, "value", "b" * 4097, "at most 4096"),  # tier Standard
]


@pytest.mark.parametrize("policy_name, type_", sorted({(b[0], b[1]) for b in BROKEN}))
def test_the_good_resource_passes(policy_name, type_):
    assert check(policy_name, type_, GOOD[type_]) == []


@pytest.mark.parametrize("policy_name, type_, path, value, words", BROKEN,
                         ids=[f"{b[0]}:{b[2]}={str(b[3])[:30] if b[3] is not DELETE else 'unset'}" for b in BROKEN])
def test_a_broken_resource_is_refused_naming_it_the_document_and_the_fix(policy_name, type_, path, value, words):
    messages = check(policy_name, type_, with_(GOOD[type_], path, value), name="orders-main")
    assert any(words in m for m in messages), messages
    for m in messages:
        assert m.startswith(f"orders-main ({type_})"), m
        assert "Fix:" in m and "(" in m, m


def test_every_resource_rule_of_this_module_has_a_refusing_case():
    names = {p.name for p in (s3.POLICIES + kms_sns_ssm.POLICIES)
             if isinstance(p, ResourceValidationPolicy)}
    assert names - {b[0] for b in BROKEN} == set()


def test_every_rule_names_its_document():
    for p in (s3.POLICIES + kms_sns_ssm.POLICIES):
        assert "Guide" in p.description or "Reference" in p.description or "pulumi-aws" in p.description, p.name
        assert p.name in POLICY, f"{p.name} is not in the pack"


def test_rules_judge_only_known_values():
    # a bucket name computed from the account id, a policy computed from an ARN: nothing to judge in preview
    assert check("s3-bucket-name-valid", BUCKET, {"bucket": UNKNOWN_STRING_VALUE}) == []
    assert check("s3-replication-role-permissions", base.IAM_ROLE_POLICY,
                 {"role": "r", "policy": UNKNOWN_STRING_VALUE}) == []
    # a role policy that replicates nothing is not a replication role
    assert check("s3-replication-role-permissions", base.IAM_ROLE_POLICY, {"role": "r", "policy": json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": KEY_W}]})}) == []
    # a V1 rule (prefix, no filter) needs neither priority nor deleteMarkerReplication
    v1 = with_(with_(with_(GOOD[base.S3_REPLICATION], "rules.0.filter", DELETE), "rules.0.priority", DELETE),
               "rules.0.deleteMarkerReplication", DELETE)
    assert check("s3-replication-rule-shape", base.S3_REPLICATION, v1) == []
    # an alias ARN is a valid replica key; a FIFO topic may end in .fifo
    assert check("s3-replication-rule-shape", base.S3_REPLICATION, with_(
        GOOD[base.S3_REPLICATION], "rules.0.destination.encryptionConfiguration.replicaKmsKeyId",
        "arn:aws:kms:us-west-2:111122223333:alias/regionpair-dr")) == []
    assert check("sns-topic-name-valid", base.SNS_TOPIC, {"name": "alarms.fifo", "fifoTopic": True}) == []
    # a value past 4 KB is fine in the Advanced tier, and without a tier (the Region's default tier,
    # which may be Advanced or Intelligent-Tiering)
    for tier in ("Advanced", DELETE):
        assert check("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER,
                     with_({**GOOD[kms_sns_ssm.SSM_PARAMETER], "value": "b" * 4097}, "tier", tier)) == []


def test_ssm_name_length_counts_the_arn_before_the_name():
    param = GOOD[kms_sns_ssm.SSM_PARAMETER]
    # the longest name that fits in the shortest Region's ARN passes; one more character does not
    assert check("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, {**param, "name": "/" + "x" * (SSM_ROOM - 1)}) == []
    assert check("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, {**param, "name": "/" + "x" * SSM_ROOM})
    # a non-hierarchical name gets the / of the ARN
    assert check("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, {**param, "name": "x" * (SSM_ROOM - 1)}) == []
    # in a known, longer Region the same name no longer fits
    longer = {**param, "name": "/" + "x" * (SSM_ROOM - 1), "region": "ap-southeast-2"}
    [message] = check("ssm-parameter-valid", kms_sns_ssm.SSM_PARAMETER, longer)
    assert "1011 characters counting the ARN" in message and "ap-southeast-2" in message
    assert kms_sns_ssm.ssm_arn_length("/regionpair/x", "us-east-2") == len(
        "arn:aws:ssm:us-east-2:111122223333:parameter/regionpair/x")
    assert kms_sns_ssm.ssm_arn_length("ExampleParameterName", "us-east-2") == 65  # the documented example


def test_lifecycle_gaps_no_aws_page_sources_are_not_refused():
    rule = GOOD[LIFECYCLE]["rules"][0]
    unsourced = [
        # GLACIER_IR's 90 days and DEEP_ARCHIVE's 180 are minimum storage charges, not refusals
        {"transitions": [{"days": 0, "storageClass": "GLACIER_IR"}, {"days": 1, "storageClass": "GLACIER"}]},
        {"transitions": [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 31, "storageClass": "INTELLIGENT_TIERING"}]},
        # the DEEP_ARCHIVE-after-GLACIER gap is sourced for current transitions only
        {"transitions": [], "noncurrentVersionTransitions": [{"noncurrentDays": 1, "storageClass": "GLACIER"},
                                                            {"noncurrentDays": 2, "storageClass": "DEEP_ARCHIVE"}]},
    ]
    for change in unsourced:
        props = {**GOOD[LIFECYCLE], "rules": [{**rule, "noncurrentVersionTransitions": [], **change}]}
        assert check("s3-lifecycle-transitions-valid", LIFECYCLE, props) == [], change


def test_a_replication_role_without_tag_reading_is_accepted():
    # S3 replicates the objects without their tags (S3 User Guide, 'Setting up permissions'): not refused
    assert check("s3-replication-role-permissions", base.IAM_ROLE_POLICY,
                 {"role": "repl", "policy": _role_policy_without("s3:GetObjectVersionTagging")}) == []
    # nor one without KMS permissions: whether it needs them depends on its rules (a stack check)
    assert check("s3-replication-role-permissions", base.IAM_ROLE_POLICY,
                 {"role": "repl", "policy": _role_policy_without_kms()}) == []


# ---- stack rules -------------------------------------------------------------------------------


def node(type_: str, logical: str, **inputs: Any) -> dict[str, Any]:
    return {"type": type_, "name": logical, "parent": None, "inputs": inputs}


def locked_bucket(*, force_destroy: bool = False, mode: str = "COMPLIANCE", versioning: str = "Enabled",
                  object_lock_enabled: bool = True) -> list[dict[str, Any]]:
    return [node(BUCKET, "backups-bucket", bucket="backups", objectLockEnabled=object_lock_enabled,
                 forceDestroy=force_destroy),
            node(VERSIONING, "backups-versioning", bucket="backups", versioningConfiguration={"status": versioning}),
            node(OBJECT_LOCK, "backups-lock", bucket="backups", objectLockEnabled="Enabled",
                 rule={"defaultRetention": {"mode": mode, "days": 30}})]


def alarm_graph(*, cloudwatch: bool = True, actions: Any = None) -> list[dict[str, Any]]:
    topic_arn = "arn:aws:sns:us-west-2:111122223333:alarms"
    return [node(base.KMS_KEY, "key-key", enableKeyRotation=True, policy=key_policy(cloudwatch=cloudwatch)),
            node(base.SNS_TOPIC, "alarms-topic", name="alarms", kmsMasterKeyId=KEY_W),
            node(kms_sns_ssm.METRIC_ALARM, "lag", alarmActions=[topic_arn] if actions is None else actions)]


def stack_messages(policy_name: str, graph: list[dict[str, Any]]) -> list[str]:
    policy = POLICY[policy_name]
    assert isinstance(policy, StackValidationPolicy)
    return [f.message for f in evaluate(policy_resources(graph, "test"), [policy])]


@pytest.mark.parametrize("graph, words", [
    (locked_bucket(force_destroy=True), "forceDestroy with a COMPLIANCE-mode Object Lock"),
    (locked_bucket(versioning="Suspended"), "suspends versioning"),
    (locked_bucket(object_lock_enabled=False, versioning="Suspended"), "created without object_lock_enabled"),
    (locked_bucket() + [node(BUCKET, "copy-bucket", bucket="copy"),
                        node(base.S3_REPLICATION, "copy-config", bucket="backups", rules=[
                            {"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::copy"}}])],
     "which has no Object Lock"),
])
def test_a_locked_bucket_that_cannot_stay_locked_or_be_destroyed_is_refused(graph, words):
    messages = stack_messages("s3-object-lock-bucket-consistent", graph)
    assert any(words in m for m in messages), messages
    assert all("Fix:" in m and "S3 User Guide" in m for m in messages)


def test_a_locked_bucket_that_is_versioned_and_kept_passes():
    assert stack_messages("s3-object-lock-bucket-consistent", locked_bucket()) == []
    # GOVERNANCE retention can be bypassed by the destroy, so force_destroy is allowed with it
    assert stack_messages("s3-object-lock-bucket-consistent", locked_bucket(force_destroy=True, mode="GOVERNANCE")) == []


def test_alarm_topic_key_must_let_cloudwatch_use_it():
    messages = stack_messages("kms-key-lets-cloudwatch-publish", alarm_graph(cloudwatch=False))
    assert len(messages) == 1 and "cloudwatch.amazonaws.com" in messages[0] and "SNS Developer Guide" in messages[0]
    assert stack_messages("kms-key-lets-cloudwatch-publish", alarm_graph()) == []
    # a topic no alarm notifies needs nothing from CloudWatch
    assert stack_messages("kms-key-lets-cloudwatch-publish", alarm_graph(cloudwatch=False, actions=[])) == []
    # during preview the alarm's actions are unknown: the topic is assumed notified
    assert stack_messages("kms-key-lets-cloudwatch-publish",
                          alarm_graph(cloudwatch=False, actions=UNKNOWN_STRING_VALUE))


def test_cloudwatch_statement_must_grant_both_actions():
    policy = json.loads(key_policy())
    policy["Statement"][1]["Action"] = ["kms:Decrypt"]
    assert kms_sns_ssm.key_policy_lets_cloudwatch_publish(json.dumps(policy)) is False
    policy["Statement"][1]["Action"] = "kms:*"
    assert kms_sns_ssm.key_policy_lets_cloudwatch_publish(json.dumps(policy)) is True
    policy["Statement"][1]["Effect"] = "Deny"
    assert kms_sns_ssm.key_policy_lets_cloudwatch_publish(json.dumps(policy)) is False


def test_a_bucket_with_two_lifecycle_or_replication_configurations_is_refused():
    lifecycle = node(LIFECYCLE, "data-lifecycle", **GOOD[LIFECYCLE])
    replication = node(base.S3_REPLICATION, "data-replication", **GOOD[base.S3_REPLICATION])
    assert stack_messages("s3-one-configuration-per-bucket", [lifecycle, replication]) == []
    for first in (lifecycle, replication):
        second = copy.deepcopy(first)
        second["name"] += "-2"
        messages = stack_messages("s3-one-configuration-per-bucket", [lifecycle, replication, second])
        assert len(messages) == 1 and "S3 keeps one" in messages[0] and "Fix:" in messages[0], messages
    # two buckets, one configuration each
    other = copy.deepcopy(lifecycle)
    other["name"], other["inputs"]["bucket"] = "backups-lifecycle", "backups"
    assert stack_messages("s3-one-configuration-per-bucket", [lifecycle, other]) == []


# ---- the replication role, judged with its replication configuration ---------------------------

ROLE_ARN = "arn:aws:iam::111122223333:role/repl"


def replication_graph(*, policy: str | None = None, bucket_key: bool = True, sse_kms: bool = True,
                      replica_key: str | None = KEY_W, source_locked: bool = False) -> list[dict[str, Any]]:
    rule: dict[str, Any] = {"id": "all", "status": "Enabled", "priority": 1, "filter": {"prefix": ""},
                            "deleteMarkerReplication": {"status": "Enabled"},
                            "destination": {"bucket": "arn:aws:s3:::dr-data"}}
    if sse_kms:
        rule["sourceSelectionCriteria"] = {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    if replica_key:
        rule["destination"]["encryptionConfiguration"] = {"replicaKmsKeyId": replica_key}
    graph = [node(BUCKET, "prod-data-bucket", bucket="prod-data", objectLockEnabled=source_locked),
             node(BUCKET, "dr-data-bucket", bucket="dr-data", objectLockEnabled=source_locked),
             node(base.S3_ENCRYPTIONS[0], "dr-data-sse", bucket="dr-data", rules=[{
                 "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_W},
                 "bucketKeyEnabled": bucket_key}]),
             node(base.IAM_ROLE, "repl-role", name="repl"),
             node(base.IAM_ROLE_POLICY, "repl-policy", role="repl",
                  policy=replication_role_policy() if policy is None else policy),
             node(base.S3_REPLICATION, "data-replication", bucket="prod-data", role=ROLE_ARN, rules=[rule])]
    if source_locked:
        for b in ("prod-data", "dr-data"):
            graph.append(node(VERSIONING, f"{b}-versioning", bucket=b, versioningConfiguration={"status": "Enabled"}))
            graph.append(node(OBJECT_LOCK, f"{b}-lock", bucket=b, objectLockEnabled="Enabled",
                              rule={"defaultRetention": {"mode": "GOVERNANCE", "days": 1}}))
    return graph


def test_an_sse_kms_replication_role_that_cannot_use_the_keys_is_refused():
    assert stack_messages("s3-replication-role-kms-permissions", replication_graph()) == []
    [message] = stack_messages("s3-replication-role-kms-permissions", replication_graph(policy=_role_policy_without_kms()))
    assert "kms:Decrypt (the source objects' key) and kms:Encrypt on " + KEY_W in message
    assert "Granting additional permissions for the IAM role" in message and "Fix:" in message
    # Encrypt granted on another key than the replica key is not Encrypt on the replica key
    other = _role_policy_without("kms:Encrypt")
    assert any(f"kms:Encrypt on {KEY_W}" in m for m in stack_messages(
        "s3-replication-role-kms-permissions", replication_graph(policy=other)))
    # a replica key named by its alias ARN: the key it resolves to is not known here, any Encrypt will do
    alias = "arn:aws:kms:us-west-2:111122223333:alias/regionpair-dr"
    assert stack_messages("s3-replication-role-kms-permissions", replication_graph(replica_key=alias)) == []


def test_a_replication_rule_without_sse_kms_needs_no_key_permissions():
    graph = replication_graph(policy=_role_policy_without_kms(), sse_kms=False, replica_key=None)
    assert stack_messages("s3-replication-role-kms-permissions", graph) == []


def test_decrypt_with_the_replica_key_is_required_only_with_a_bucket_key_on_the_destination():
    encrypt_only = _role_policy_encrypt_only()
    [message] = stack_messages("s3-replication-role-kms-permissions", replication_graph(policy=encrypt_only))
    assert "S3 Bucket Key" in message and "may not kms:Decrypt with that key" in message and KEY_W in message
    assert "Amazon S3 Bucket Keys and replication" in message
    # no S3 Bucket Key on the destination: kms:Encrypt alone is what S3 documents
    assert stack_messages("s3-replication-role-kms-permissions",
                          replication_graph(policy=encrypt_only, bucket_key=False)) == []


def test_a_role_replicating_a_locked_bucket_must_read_retention_and_legal_hold():
    messages = stack_messages("s3-object-lock-bucket-consistent", replication_graph(source_locked=True))
    assert len(messages) == 1, messages
    assert "s3:GetObjectRetention and s3:GetObjectLegalHold" in messages[0]
    assert "Using Object Lock with S3 Replication" in messages[0] and "Fix:" in messages[0]
    doc = json.loads(replication_role_policy())
    doc["Statement"][1]["Action"] += ["s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    assert stack_messages("s3-object-lock-bucket-consistent",
                          replication_graph(source_locked=True, policy=json.dumps(doc))) == []
    # s3:Get* satisfies it; granted on another bucket's objects, it does not
    doc["Statement"][1]["Action"] = ["s3:Get*"]
    assert stack_messages("s3-object-lock-bucket-consistent",
                          replication_graph(source_locked=True, policy=json.dumps(doc))) == []
    doc["Statement"][1]["Resource"] = ["arn:aws:s3:::other/*"]
    assert stack_messages("s3-object-lock-bucket-consistent",
                          replication_graph(source_locked=True, policy=json.dumps(doc)))
    # an unlocked source needs neither
    assert stack_messages("s3-object-lock-bucket-consistent", replication_graph()) == []
