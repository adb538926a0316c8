"""The MSK rules of the pack (policy/msk.py), each refusing the broken form and accepting the
good one, called through the SDK's own proxies the way the CLI calls them (``tests/unit/
test_policy_rules.py``'s helpers). Stack-level breakage on the real rendered stacks is in
``test_policy_graph.py``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi_aws as aws
import pytest
from pulumi._types import input_type_py_to_pulumi_names
from pulumi_policy import EnforcementLevel

from policy import base, iam_documents, msk, rules
from policy.graph import evaluate, policy_resources
from tests.helpers.policy import check, init_args_class, input_types_of
from tests.props import DELETE, with_

SRC = "arn:aws:kafka:us-east-1:111122223333:cluster/regionpair-prod-kafka/abc-1"
DST = "arn:aws:kafka:us-west-2:111122223333:cluster/regionpair-dr-kafka/def-1"
ACCOUNT = "111122223333"

CLUSTER: dict[str, Any] = {
    "clusterName": "regionpair-prod-kafka", "kafkaVersion": "3.6.0", "numberOfBrokerNodes": 3,
    "brokerNodeGroupInfo": {
        "instanceType": "kafka.m5.large", "clientSubnets": ["subnet-a", "subnet-b", "subnet-c"],
        "storageInfo": {"ebsStorageInfo": {"volumeSize": 1000}},
        "connectivityInfo": {"publicAccess": {"type": "DISABLED"},
                             "vpcConnectivity": {"clientAuthentication": {"sasl": {"iam": True, "scram": False},
                                                                          "tls": False}}}},
    "clientAuthentication": {"sasl": {"iam": True, "scram": False}, "unauthenticated": False},
    "configurationInfo": {"arn": f"arn:aws:kafka:us-east-1:{ACCOUNT}:configuration/regionpair-prod-kafka-durable/x",
                          "revision": 1},
}
REPLICATOR: dict[str, Any] = {
    "replicatorName": "regionpair-dr-from-us-east-1", "description": "primary to DR",
    "serviceExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/replicator-role-0a1b2c3",
    "kafkaClusters": [{"amazonMskCluster": {"mskClusterArn": SRC}, "vpcConfig": {"subnetIds": ["s"]}},
                      {"amazonMskCluster": {"mskClusterArn": DST},
                       "vpcConfig": {"subnetIds": ["t"], "securityGroupsIds": ["sg-t"]}}],
    "replicationInfoList": {
        "sourceKafkaClusterArn": SRC, "targetKafkaClusterArn": DST, "targetCompressionType": "NONE",
        "topicReplications": [{"topicsToReplicates": [".*"], "startingPosition": {"type": "EARLIEST"},
                               "topicNameConfiguration": {"type": "IDENTICAL"}}],
        "consumerGroupReplications": [{"consumerGroupsToReplicates": [".*"],
                                       "synchroniseConsumerGroupOffsets": True}]},
}
PARAMETER = {"name": "/regionpair/kafka/bootstrap-brokers", "type": "String"}

BROKEN = [
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER,
     "brokerNodeGroupInfo.connectivityInfo.vpcConnectivity", DELETE, "multi-VPC private connectivity with IAM is off"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER,
     "brokerNodeGroupInfo.connectivityInfo.vpcConnectivity.clientAuthentication.sasl.iam", False,
     "multi-VPC private connectivity with IAM is off"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "clientAuthentication.sasl.iam", False,
     "IAM access control is off"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "clientAuthentication.unauthenticated", True,
     "unauthenticated access is on"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "brokerNodeGroupInfo.instanceType", "kafka.t3.small",
     "not supported by MSK Replicator"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "kafkaVersion", "2.8.0", "below 2.8.1"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "kafkaVersion", "2.6.2", "below 2.8.1"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "numberOfBrokerNodes", 2, "at least three"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER, "numberOfBrokerNodes", 4, "multiple of them"),
    ("msk-cluster-replicator-ready", base.MSK_CLUSTER, CLUSTER,
     "brokerNodeGroupInfo.storageInfo.ebsStorageInfo.volumeSize", 16385, "1 to 16384"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "replicatorName", "dr_from_prod", "1 to 128"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "replicatorName", "r" * 129, "1 to 128"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "description", "x" * 1025, "maximum is 1024"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "kafkaClusters", REPLICATOR["kafkaClusters"][:1],
     "names 1 clusters"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "replicationInfoList.targetKafkaClusterArn", SRC,
     "same cluster"),
    # cross-region: the source needs no security groups (the good REPLICATOR gives it none), the target does
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "kafkaClusters.1.vpcConfig.securityGroupsIds", DELETE,
     "no security groups for the target cluster"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "replicationInfoList.sourceKafkaClusterArn",
     SRC.replace("abc-1", "zzz-9"), "not among kafkaClusters"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR, "kafkaClusters.1.amazonMskCluster.mskClusterArn",
     DST.replace(ACCOUNT, "444455556666"), "same AWS account"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR,
     "replicationInfoList.topicReplications.0.topicNameConfiguration.type", "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS",
     "renames topics"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR,
     "replicationInfoList.topicReplications.0.startingPosition.type", "LATEST", "starts at 'LATEST'"),
    ("msk-replicator-valid", base.MSK_REPLICATOR, REPLICATOR,
     "replicationInfoList.consumerGroupReplications.0.synchroniseConsumerGroupOffsets", False,
     "does not synchronise offsets"),
]


@pytest.mark.parametrize("policy_name, type_, good", sorted({(b[0], b[1], json.dumps(b[2])) for b in BROKEN}))
def test_the_good_resource_passes(policy_name, type_, good):
    assert check(policy_name, type_, json.loads(good)) == []


@pytest.mark.parametrize("policy_name, type_, good, path, value, words", BROKEN,
                         ids=[f"{b[0]}:{b[3]}={'unset' if b[4] is DELETE else str(b[4])[:30]}" for b in BROKEN])
def test_a_broken_resource_is_refused_naming_it_the_document_and_the_fix(policy_name, type_, good, path, value, words):
    messages = check(policy_name, type_, with_(good, path, value), name="it")
    assert any(words in m for m in messages), messages
    assert all(m.startswith(f"it ({type_})") and "Fix:" in m for m in messages), messages
    # an AWS rule names its document; the two DR invariants (EARLIEST, offset sync) say they are ours
    assert all("Guide" in m or "Reference" in m or "DR invariant of this project" in m for m in messages), messages


@pytest.mark.parametrize("version", ["2.8.1", "3.6.0", "3.7.x", "2.8.2.tiered"])
def test_supported_kafka_versions_pass(version):
    assert check("msk-cluster-replicator-ready", base.MSK_CLUSTER, with_(CLUSTER, "kafkaVersion", version)) == []


def test_six_brokers_over_three_subnets_pass():
    assert check("msk-cluster-replicator-ready", base.MSK_CLUSTER, with_(CLUSTER, "numberOfBrokerNodes", 6)) == []


def test_every_msk_policy_is_in_the_pack_mandatory_and_names_its_document():
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names))
    for policy in msk.POLICIES:
        assert policy in rules.POLICIES
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        assert "Guide" in policy.description or "Reference" in policy.description, policy.name


# ---- the statement matcher the stack checks rely on ------------------------------------------


def test_allows_reads_wildcards_case_and_denies():
    topic = SRC.replace(":cluster/", ":topic/") + "/orders"
    allow = {"Effect": "Allow", "Action": "kafka-cluster:*", "Resource": SRC.replace(":cluster/", ":topic/") + "/*"}
    assert iam_documents.allows([allow], "kafka-cluster:WriteDataIdempotently", topic)
    assert iam_documents.allows([{**allow, "Action": "Kafka-Cluster:writedata*"}], "kafka-cluster:WriteDataIdempotently", topic)
    assert not iam_documents.allows([allow], "kafka-cluster:WriteData", DST.replace(":cluster/", ":topic/") + "/orders")
    assert not iam_documents.allows([allow, {**allow, "Effect": "Deny", "Action": "kafka-cluster:WriteData"}],
                           "kafka-cluster:WriteData", topic)
    service = {"Effect": "Allow", "Principal": {"Service": "kafka.amazonaws.com"}, "Action": "kafka:GetBootstrapBrokers",
               "Resource": SRC}
    assert iam_documents.allows([service], "kafka:GetBootstrapBrokers", SRC, principal_service="kafka.amazonaws.com")
    root = {**service, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    assert not iam_documents.allows([root], "kafka:GetBootstrapBrokers", SRC, principal_service="kafka.amazonaws.com")


def _stack(policy_name: str, graph: list[dict]) -> list[str]:
    policy = next(p for p in rules.POLICIES if p.name == policy_name)
    return [f.message for f in evaluate(policy_resources(graph, "test"), [policy])]


def node(type_: str, name: str, inputs: dict) -> dict:
    return {"type": type_, "name": name, "parent": None, "inputs": copy.deepcopy(inputs)}


def test_a_role_of_another_stack_or_with_a_wrong_trust_is_refused():
    replicator = node(base.MSK_REPLICATOR, "rep", REPLICATOR)
    assert any("not declared in this stack" in m for m in _stack("msk-replicator-execution-role", [replicator]))
    trust = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}]})
    role = node(msk.IAM_ROLE, "replicator-role", {"assumeRolePolicy": trust})
    from components.streaming import replicator_policy
    rp = node(msk.IAM_ROLE_POLICY, "replicator-policy", {"role": "replicator-role-0a1b2c3",
                                                         "policy": replicator_policy(SRC, DST)})
    messages = _stack("msk-replicator-execution-role", [replicator, role, rp])
    assert len(messages) == 1 and "does not trust kafka.amazonaws.com" in messages[0]
    role["inputs"]["assumeRolePolicy"] = trust.replace("ec2.amazonaws.com", "kafka.amazonaws.com")
    assert _stack("msk-replicator-execution-role", [replicator, role, rp]) == []


def test_the_component_policies_pass_the_pack_checks():
    """What components/streaming.py writes is exactly what the pack asks for."""
    from components.streaming import replicator_policy, source_cluster_policy
    statements = json.loads(source_cluster_policy(SRC))["Statement"]
    assert all(iam_documents.allows(statements, a, SRC, principal_service=msk.SERVICE) for a in msk.SOURCE_POLICY_ACTIONS)
    role = json.loads(replicator_policy(SRC, DST))["Statement"]
    for arn in (SRC, DST):
        assert all(iam_documents.allows(role, a, arn) for a in msk.ROLE_CLUSTER_ACTIONS)
        assert all(iam_documents.allows(role, a, arn.replace(":cluster/", ":topic/") + "/t") for a in msk.ROLE_TOPIC_ACTIONS)
        assert all(iam_documents.allows(role, a, arn.replace(":cluster/", ":group/") + "/g") for a in msk.ROLE_GROUP_ACTIONS)
    other = "arn:aws:kafka:eu-west-1:111122223333:cluster/someone-else/zzz-1"
    assert not iam_documents.allows(role, "kafka-cluster:ReadData", other.replace(":cluster/", ":topic/") + "/t")


# ---- the names the rules read exist in pulumi-aws --------------------------------------------

PATHS = {
    (msk.MSK_CLUSTER_POLICY, aws.msk.ClusterPolicy): ["clusterArn", "policy"],
    (msk.IAM_ROLE, aws.iam.Role): ["name", "assumeRolePolicy"],
    (msk.IAM_ROLE_POLICY, aws.iam.RolePolicy): ["role", "policy"],
    (base.MSK_CONFIGURATION, aws.msk.Configuration): ["name", "kafkaVersions"],
    (base.MSK_CLUSTER, aws.msk.Cluster): [
        "clusterName", "kafkaVersion", "numberOfBrokerNodes", "brokerNodeGroupInfo.instanceType",
        "brokerNodeGroupInfo.clientSubnets", "brokerNodeGroupInfo.storageInfo.ebsStorageInfo.volumeSize",
        "brokerNodeGroupInfo.connectivityInfo.vpcConnectivity.clientAuthentication.sasl.iam",
        "clientAuthentication.sasl.iam", "clientAuthentication.unauthenticated", "configurationInfo.arn"],
    (base.MSK_REPLICATOR, aws.msk.Replicator): [
        "replicatorName", "description", "serviceExecutionRoleArn", "kafkaClusters.amazonMskCluster.mskClusterArn",
        "replicationInfoList.sourceKafkaClusterArn", "replicationInfoList.targetKafkaClusterArn",
        "replicationInfoList.topicReplications.topicNameConfiguration.type",
        "replicationInfoList.topicReplications.startingPosition.type",
        "replicationInfoList.consumerGroupReplications.synchroniseConsumerGroupOffsets"],
}


@pytest.mark.parametrize("token, cls", list(PATHS), ids=[t for t, _ in PATHS])
def test_the_types_and_properties_the_msk_rules_read_exist_in_the_provider(token, cls):
    import inspect
    assert f"'{token}'" in inspect.getsource(cls)
    top = set(input_type_py_to_pulumi_names(init_args_class(cls)).values())
    nested: set[str] = set()
    for c in input_types_of(cls.__module__.rsplit(".", 1)[0]):
        nested |= set(input_type_py_to_pulumi_names(c).values())
    for path in PATHS[(token, cls)]:
        first, *rest = path.split(".")
        assert first in top, f"{token} has no input {first!r}"
        assert all(step in nested for step in rest), f"{token}: {path}"
