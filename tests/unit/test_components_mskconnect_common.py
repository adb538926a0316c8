"""The MSK Connect building blocks both users share (components/mskconnect_common.py): the same argument
checks refuse in MirrorMaker 2's component and the topic backup's, naming each one's own argument; the role
trust is scoped to the account's named connectors in the region for both; and the backup's connector is held
to the execution-role policy like MirrorMaker 2's (its cluster tag lets the pack check its rights)."""

from __future__ import annotations

import copy
import dataclasses
import json

import pulumi
import pytest

from components import mskconnect_common as connect
from components.common import ComponentArgsError
from components.kafka_backup import KafkaTopicBackup, KafkaTopicBackupArgs
from components.mskconnect import MirrorMaker2Args, MirrorMaker2OnMskConnect
from tests import harness
from tests.harness import one
from tests.helpers.stack_config import GOOD

CLUSTER = "arn:aws:kafka:us-east-1:111122223333:cluster/regionpair-prod-kafka/abc-1"
BACKUP = KafkaTopicBackupArgs(
    connector_name="regionpair-prod-kafka-backup", topics={"orders": "critical"}, cluster_arn=CLUSTER,
    bootstrap_brokers="b-1:9098", subnet_ids=["subnet-1"], security_group_ids=["sg-1"], vpc_id="vpc-1",
    bucket_name="b", bucket_arn="arn:aws:s3:::b", kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/k",
    region="us-east-1", plugin_bucket_arn="arn:aws:s3:::p", plugin_file_key="s3-sink.zip",
    s3_endpoint_exists=True)


class _Provider(pulumi.ProviderResource):
    def __init__(self) -> None:
        super().__init__("aws", "src")


def mm2_args(**changes) -> MirrorMaker2Args:
    return dataclasses.replace(MirrorMaker2Args(
        name_prefix="regionpair-dr-mm2", region="us-west-2", account_id="111122223333", source_alias="us-east-1",
        target_alias="us-west-2", source_cluster_arn=CLUSTER, source_bootstrap="b-1.prod:9098",
        target_cluster_arn=CLUSTER.replace("us-east-1", "us-west-2"), target_bootstrap="b-1.dr:9098",
        vpc_id="vpc-1", subnet_ids=["subnet-1"], target_security_group_id="sg-1", source_security_group_id="sg-2",
        source_provider=_Provider(), source_cidrs=["10.10.0.0/16"], connector_cidrs=["10.20.0.0/16"],
        plugin_bucket_arn="arn:aws:s3:::p", plugin_file_key="mm2.zip", kms_key_arn="arn:aws:kms:us-west-2:1:key/k"),
        **changes)


@pytest.mark.parametrize("build, arg, words", [
    (lambda: KafkaTopicBackup("kb", dataclasses.replace(BACKUP, connector_name="x" * 129)), "connector_name",
     "1 to 128 characters"),
    (lambda: MirrorMaker2OnMskConnect("mm2", mm2_args(name_prefix="x" * 118)), "name_prefix", "1 to 128 characters"),
    (lambda: KafkaTopicBackup("kb", dataclasses.replace(BACKUP, kafka_connect_version="3.6.0")),
     "kafka_connect_version", "2.7.1 or 3.7.x"),
    (lambda: MirrorMaker2OnMskConnect("mm2", mm2_args(kafkaconnect_version="2.8.0")), "kafkaconnect_version",
     "2.7.1 or 3.7.x"),
    (lambda: KafkaTopicBackup("kb", dataclasses.replace(BACKUP, mcu_count=3)), "mcu_count", "1, 2, 4 or 8"),
    (lambda: KafkaTopicBackup("kb", dataclasses.replace(BACKUP, worker_count=0)), "worker_count", "at least one"),
])
def test_both_components_refuse_the_same_broken_argument_naming_their_own(build, arg, words):
    harness.use_mocks()
    with pytest.raises(ComponentArgsError) as err:
        build()
    assert err.value.arg == arg and words in str(err.value), str(err.value)


def test_both_components_accept_the_good_arguments():
    harness.use_mocks()
    assert KafkaTopicBackup("kb-ok", BACKUP) and MirrorMaker2OnMskConnect("mm2-ok", mm2_args())


def test_the_trust_names_the_account_the_region_and_the_connectors_only():
    [s] = json.loads(connect.trust_policy("111122223333", "us-west-2", "regionpair-dr-mm2-*", "aws-cn"))["Statement"]
    assert s["Principal"] == {"Service": "kafkaconnect.amazonaws.com"} and s["Action"] == "sts:AssumeRole"
    assert s["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111122223333"},
        "ArnLike": {"aws:SourceArn": "arn:aws-cn:kafkaconnect:us-west-2:111122223333:connector/regionpair-dr-mm2-*/*"}}


@pytest.fixture(scope="module")
def backup_graph():
    return harness.render("prod", overrides={"kafka_backup": GOOD}).resources


def test_the_backup_roles_trust_is_scoped_to_its_own_connector(backup_graph):
    role = one(backup_graph, "aws:iam/role:Role", "kafka-backup-role")["inputs"]
    [s] = json.loads(role["assumeRolePolicy"])["Statement"]
    connector = one(backup_graph, "aws:mskconnect/connector:Connector")["inputs"]
    assert s["Condition"]["ArnLike"]["aws:SourceArn"] == \
        f"arn:aws:kafkaconnect:us-east-1:{s['Condition']['StringEquals']['aws:SourceAccount']}:connector/" \
        f"{connector['name']}/*"


def test_the_backup_connector_is_held_to_the_execution_role_policy(backup_graph):
    from tests.helpers.policy import findings
    graph = copy.deepcopy(backup_graph)
    connector = one(graph, "aws:mskconnect/connector:Connector")["inputs"]
    assert connector["tags"][connect.TARGET_TAG].startswith("arn:aws:kafka:us-east-1:")
    policy = one(graph, "aws:iam/rolePolicy:RolePolicy", "kafka-backup-policy")["inputs"]
    doc = json.loads(policy["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "ConnectInternalTopics"]
    policy["policy"] = json.dumps(doc)
    found = [(f.policy, f.message) for f in findings("prod", graph, {})]
    assert [p for p, _ in found] == ["mskconnect-execution-role"], found
    assert "kafka-cluster:CreateTopic on its topics" in found[0][1], found
