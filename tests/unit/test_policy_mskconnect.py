"""The MSK Connect rules of the pack (policy/mskconnect.py): each refusing the broken form and
accepting the good one, called through the SDK's proxies as the CLI calls them; the whole pack on the
dr stack rendered with ``streaming.replication: mirrormaker2``. (Each policy broken on that real
graph: ``test_policy_graph.py``'s BROKEN, stack ``dr+mirrormaker2``.)"""

from __future__ import annotations

import base64
import copy
import inspect
import json
from typing import Any

import pulumi_aws as aws
import pytest
from pulumi._types import input_type_py_to_pulumi_names

from components.mskconnect import execution_role_policy
from components.mskconnect_common import trust_policy
from contract import mirrormaker2 as mm2
from policy import base, mskconnect as M, rules
from policy.graph import evaluate, policy_resources
from tests.helpers.policy import check, init_args_class, input_types_of
from tests.props import DELETE, with_

SRC = "arn:aws:kafka:us-east-1:111122223333:cluster/regionpair-prod-kafka/abc-1"
DST = "arn:aws:kafka:us-west-2:111122223333:cluster/regionpair-dr-kafka/def-1"
ROLE_ARN = "arn:aws:iam::111122223333:role/regionpair-dr-mm2"

SETTINGS = mm2.msk_connect_configurations(source_alias="us-east-1", target_alias="us-west-2",
                                          source_bootstrap="b-1.prod:9098", target_bootstrap="b-1.dr:9098",
                                          topics=[".*"], groups=[".*"])
CONNECTOR: dict[str, Any] = {
    "name": "regionpair-dr-mm2-source", "kafkaconnectVersion": "3.7.x",
    "capacity": {"autoscaling": {"mcuCount": 1, "minWorkerCount": 1, "maxWorkerCount": 2,
                                 "scaleInPolicy": {"cpuUtilizationPercentage": 20},
                                 "scaleOutPolicy": {"cpuUtilizationPercentage": 80}}},
    "connectorConfiguration": SETTINGS["source"],
    "kafkaCluster": {"apacheKafkaCluster": {"bootstrapServers": "b-1.dr:9098",
                                            "vpc": {"securityGroups": ["sg-1"], "subnets": ["subnet-1", "subnet-2"]}}},
    "kafkaClusterClientAuthentication": {"authenticationType": "IAM"},
    "kafkaClusterEncryptionInTransit": {"encryptionType": "TLS"},
    "plugins": [{"customPlugin": {"arn": "arn:aws:kafkaconnect:us-west-2:111122223333:custom-plugin/p/x", "revision": 1}}],
    "serviceExecutionRoleArn": ROLE_ARN,
    "logDelivery": {"workerLogDelivery": {"cloudwatchLogs": {"enabled": True, "logGroup": "/aws/mskconnect/x"}}},
    "tags": {M.SOURCE_TAG: SRC, M.TARGET_TAG: DST},
}
PLUGIN = {"name": "regionpair-dr-mm2-mirrormaker2", "contentType": "ZIP",
          "location": {"s3": {"bucketArn": "arn:aws:s3:::plugins", "fileKey": "mm2/kafka-3.7.2.zip"}}}
WORKER = {"name": "regionpair-dr-mm2-mirrormaker2", "propertiesFileContent": mm2.worker_properties()}

# (policy, type, good props, path, bad value, words the refusal must contain)
BROKEN = [
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "name", "x" * 129, "1 to 128"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "kafkaconnectVersion", "3.6.0", "2.7.1 or 3.7.x"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity.autoscaling", DELETE, "exactly one"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity.autoscaling.mcuCount", 3, "1, 2, 4, 8"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity.autoscaling.minWorkerCount", 0, "at least one"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity.autoscaling.maxWorkerCount", 0,
     "below minWorkerCount"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity.autoscaling.scaleOutPolicy.cpuUtilizationPercentage",
     101, "1 to 100"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "capacity",
     {"provisionedCapacity": {"mcuCount": 1, "workerCount": 0}}, "at least one"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "plugins", [], "exactly one"),
    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "kafkaClusterClientAuthentication.authenticationType",
     "SASL_SCRAM", "NONE | IAM"),

    ("mskconnect-connector-valid", M.CONNECTOR, CONNECTOR, "serviceExecutionRoleArn",
     "arn:aws:iam::111122223333:role/aws-service-role/kafkaconnect.amazonaws.com/AWSServiceRoleForKafkaConnect",
     "service-linked role"),
    ("mskconnect-connector-iam-tls-logs", M.CONNECTOR, CONNECTOR, "kafkaClusterClientAuthentication.authenticationType",
     "NONE", "IAM access control only"),
    ("mskconnect-connector-iam-tls-logs", M.CONNECTOR, CONNECTOR, "kafkaClusterEncryptionInTransit.encryptionType",
     "PLAINTEXT", "TLS listener (9098) only"),
    ("mskconnect-connector-iam-tls-logs", M.CONNECTOR, CONNECTOR, "logDelivery", DELETE, "CloudWatch log group"),
    ("mskconnect-connector-iam-tls-logs", M.CONNECTOR, CONNECTOR,
     "logDelivery.workerLogDelivery.cloudwatchLogs.enabled", False, "CloudWatch log group"),
    ("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, PLUGIN, "contentType", "TAR", "JAR or a ZIP"),
    ("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, PLUGIN, "location.s3.bucketArn", "plugins", "not an S3 bucket ARN"),
    ("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, PLUGIN, "location.s3.fileKey", "mm2/kafka.jar", "agree"),
    ("mskconnect-worker-configuration-valid", M.WORKER_CONFIGURATION, WORKER, "propertiesFileContent",
     "value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n", "key.converter missing"),
    ("mskconnect-worker-configuration-valid", M.WORKER_CONFIGURATION, WORKER, "propertiesFileContent",
     mm2.worker_properties() + "producer.transactional.id=x\n", "producer.transactional.id is not among"),
    ("mskconnect-mirrormaker2-settings", M.CONNECTOR, CONNECTOR, "connectorConfiguration",
     {**SETTINGS["checkpoint"], "sync.group.offsets.enabled": "false"}, "sync.group.offsets.enabled='false'"),
    ("mskconnect-mirrormaker2-settings", M.CONNECTOR, CONNECTOR, "connectorConfiguration",
     {**SETTINGS["source"], "value.converter": "org.apache.kafka.connect.storage.StringConverter"}, "byte for byte"),
    ("mskconnect-mirrormaker2-settings", M.CONNECTOR, CONNECTOR, "connectorConfiguration",
     {**SETTINGS["source"], "source.cluster.sasl.mechanism": "SCRAM-SHA-512"}, "IAM access control only"),
    ("mskconnect-mirrormaker2-settings", M.CONNECTOR, CONNECTOR, "connectorConfiguration",
     {k: v for k, v in SETTINGS["source"].items() if k != "offset-syncs.topic.location"}, "offset-syncs.topic.location"),
]


@pytest.mark.parametrize("policy, type_, good, path, bad, words", BROKEN,
                         ids=[f"{c[0]}: {c[3]}={str(c[4])[:30]}" for c in BROKEN])
def test_each_rule_refuses_the_broken_form_and_accepts_the_good_one(policy, type_, good, path, bad, words):
    assert check(policy, type_, good) == []
    refused = check(policy, type_, with_(good, path, bad))
    assert refused and any(words in m for m in refused), refused
    assert all("Fix:" in m for m in refused)


def test_a_base64_worker_configuration_is_read_like_the_raw_text():
    encoded = base64.b64encode(b"key.converter=x\n").decode()
    assert any("value.converter missing" in m for m in check("mskconnect-worker-configuration-valid",
                                                              M.WORKER_CONFIGURATION, {"propertiesFileContent": encoded}))


def test_a_non_mirrormaker_connector_is_not_held_to_mirrormaker2_settings():
    other = with_(CONNECTOR, "connectorConfiguration", {"connector.class": "io.example.S3SinkConnector", "topics": "x"})
    assert check("mskconnect-mirrormaker2-settings", M.CONNECTOR, other) == []


# ---- the execution role (stack policy) --------------------------------------------------------


def graph(role_policy: str, trust: str, tags: dict | None = None) -> list[dict[str, Any]]:
    return [
        {"type": M.CONNECTOR, "name": "mm2-source", "parent": None,
         "inputs": {**copy.deepcopy(CONNECTOR), **({"tags": tags} if tags is not None else {})}},
        {"type": "aws:iam/role:Role", "name": "mm2-role", "parent": None,
         "inputs": {"name": "regionpair-dr-mm2", "assumeRolePolicy": trust}},
        {"type": "aws:iam/rolePolicy:RolePolicy", "name": "mm2-policy", "parent": None,
         "inputs": {"role": "regionpair-dr-mm2", "policy": role_policy}},
    ]


def role_findings(nodes: list[dict[str, Any]]) -> list[str]:
    policy = next(p for p in rules.POLICIES if p.name == "mskconnect-execution-role")
    return [f.message for f in evaluate(policy_resources(nodes, stack="test"), [policy])]


GOOD_TRUST = trust_policy("111122223333", "us-west-2", "regionpair-dr-mm2-*")


def test_the_components_role_passes_and_each_missing_right_is_named():
    assert role_findings(graph(execution_role_policy(SRC, DST), GOOD_TRUST)) == []
    doc = json.loads(execution_role_policy(SRC, DST))
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "SourceTopics"]
    [message] = role_findings(graph(json.dumps(doc), GOOD_TRUST))
    assert f"source cluster {SRC}" in message and "kafka-cluster:ReadData on its topics" in message
    doc = json.loads(execution_role_policy(SRC, DST))
    next(s for s in doc["Statement"] if s["Sid"] == "TargetTopics")["Action"].remove("kafka-cluster:CreateTopic")
    [message] = role_findings(graph(json.dumps(doc), GOOD_TRUST))
    assert f"target cluster {DST}" in message and "CreateTopic" in message


def test_a_role_scoped_to_other_clusters_is_refused():
    other = execution_role_policy(SRC.replace("abc-1", "zzz-9"), DST.replace("def-1", "zzz-9"))
    assert len(role_findings(graph(other, GOOD_TRUST))) == 2


def test_a_role_not_trusting_msk_connect_and_a_connector_without_cluster_tags_are_refused():
    wrong_trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "kafka.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    [message] = role_findings(graph(execution_role_policy(SRC, DST), wrong_trust))
    assert "does not trust kafkaconnect.amazonaws.com" in message
    [message] = role_findings(graph(execution_role_policy(SRC, DST), GOOD_TRUST, tags={}))
    assert "tag" in message and "Fix:" in message


@pytest.mark.parametrize("drop, missing", [
    (("StringEquals", "ArnLike"), "aws:SourceAccount / aws:SourceArn"),
    (("ArnLike",), "aws:SourceArn"),
    (("StringEquals",), "aws:SourceAccount"),
])
def test_a_trust_of_msk_connect_not_scoped_to_the_account_and_its_connectors_is_refused(drop, missing):
    """MSK Developer Guide, "Understand service execution role": the role "must have the following trust policy",
    with aws:SourceAccount and aws:SourceArn ("Prevent cross-service confused deputy problem")."""
    assert role_findings(graph(execution_role_policy(SRC, DST), GOOD_TRUST)) == []
    doc = json.loads(GOOD_TRUST)
    for op in drop:
        doc["Statement"][0]["Condition"].pop(op)
    if not doc["Statement"][0]["Condition"]:
        doc["Statement"][0].pop("Condition")
    [message] = role_findings(graph(execution_role_policy(SRC, DST), json.dumps(doc)))
    assert f"has no {missing} condition" in message and "Fix:" in message, message


# ---- the pack on the rendered dr stack with MirrorMaker 2 ---------------------------------------


def test_the_pack_passes_on_the_dr_stack_with_mirrormaker2_and_the_pass_is_not_vacuous():
    from tests.helpers.policy import findings, graph_of

    g = graph_of("dr+mirrormaker2")
    present = {n["type"] for n in g}
    assert {M.CONNECTOR, M.CUSTOM_PLUGIN, M.WORKER_CONFIGURATION} <= present
    assert base.MSK_REPLICATOR not in present, "with mirrormaker2 the primary → DR replicator is not declared"
    assert [(f.policy, f.message) for f in findings("dr+mirrormaker2", g)] == []


# ---- the rules read names the provider has --------------------------------------------------------

CLASSES = {M.CONNECTOR: aws.mskconnect.Connector, M.CUSTOM_PLUGIN: aws.mskconnect.CustomPlugin,
           M.WORKER_CONFIGURATION: aws.mskconnect.WorkerConfiguration}
PATHS = {
    M.CONNECTOR: ["name", "kafkaconnectVersion", "capacity.autoscaling.mcuCount", "capacity.autoscaling.minWorkerCount",
                  "capacity.autoscaling.maxWorkerCount", "capacity.autoscaling.scaleInPolicy.cpuUtilizationPercentage",
                  "capacity.provisionedCapacity.workerCount", "plugins.customPlugin.arn",
                  "kafkaClusterClientAuthentication.authenticationType",
                  "kafkaClusterEncryptionInTransit.encryptionType", "serviceExecutionRoleArn",
                  "logDelivery.workerLogDelivery.cloudwatchLogs.enabled",
                  "logDelivery.workerLogDelivery.cloudwatchLogs.logGroup", "connectorConfiguration", "tags"],
    M.CUSTOM_PLUGIN: ["contentType", "location.s3.bucketArn", "location.s3.fileKey"],
    M.WORKER_CONFIGURATION: ["propertiesFileContent"],
}


@pytest.mark.parametrize("token", CLASSES, ids=list(CLASSES))
def test_type_tokens_and_property_names_are_pulumi_aws_own(token):
    cls = CLASSES[token]
    assert f"'{token}'" in inspect.getsource(cls)
    top = set(input_type_py_to_pulumi_names(init_args_class(cls)).values())
    nested: set[str] = set()
    for c in input_types_of(cls.__module__.rsplit(".", 1)[0]):
        nested |= set(input_type_py_to_pulumi_names(c).values())
    for path in PATHS[token]:
        first, *rest = path.split(".")
        assert first in top, f"{token} has no input {first!r}"
        assert all(step in nested for step in rest), path
