"""The dr stack with ``streaming.replication: mirrormaker2`` under mocks: MirrorMaker 2 on MSK Connect
instead of the MSK Replicator, running the sandbox's connector settings, with its role, network,
logs and alarms; promoted, its connectors are gone and nothing else changes."""

from __future__ import annotations

import copy
import json

import pulumi.runtime
import pytest

from components.mskconnect import execution_role_policy
from contract import mirrormaker2 as mm2
from tests import harness
from tests.harness import of_type, one

CONNECTOR = "aws:mskconnect/connector:Connector"
MM2 = {"streaming": harness.MIRRORMAKER2}


@pytest.fixture(autouse=True)
def keep_the_global_config():
    saved = pulumi.runtime.config.CONFIG.get()
    yield
    pulumi.runtime.config.CONFIG.set(saved)


def streaming(exports: dict, region: str) -> dict:
    return exports["regions"][region]["streaming"]


def test_the_replicator_is_replaced_by_three_connectors_running_the_sandboxs_settings():
    r = harness.render("dr", overrides=MM2)
    assert of_type(r.resources, "aws:msk/replicator:Replicator") == []
    prod, dr = streaming(r.exports, "us-east-1"), streaming(r.exports, "us-west-2")
    assert dr["replicator_arn"] is None
    expected = mm2.msk_connect_configurations(source_alias="us-east-1", target_alias="us-west-2",
                                              source_bootstrap=prod["bootstrap_brokers"],
                                              target_bootstrap=dr["bootstrap_brokers"], topics=[".*"], groups=[".*"])
    connectors = {c["inputs"]["name"]: c["inputs"] for c in of_type(r.resources, CONNECTOR)}
    assert sorted(connectors) == ["regionpair-dr-mm2-checkpoint", "regionpair-dr-mm2-heartbeat", "regionpair-dr-mm2-source"]
    sandbox = mm2.connector_settings([".*"], [".*"], 3)
    for kind, settings in expected.items():
        c = connectors[f"regionpair-dr-mm2-{kind}"]
        assert c["connectorConfiguration"] == settings
        # every setting the sandbox's MirrorMaker 2 runs, unchanged: a drill rehearses this flow
        assert {k: c["connectorConfiguration"][k] for k in sandbox} == sandbox
        assert c["kafkaCluster"]["apacheKafkaCluster"]["bootstrapServers"] == dr["bootstrap_brokers"]
        assert (c["kafkaClusterClientAuthentication"], c["kafkaClusterEncryptionInTransit"]) == (
            {"authenticationType": "IAM"}, {"encryptionType": "TLS"})
        assert c["tags"]["regionpair:source-cluster"] == prod["cluster_arn"]
        assert c["tags"]["regionpair:target-cluster"] == dr["cluster_arn"]


def test_the_role_reads_the_source_and_writes_the_target_only():
    r = harness.render("dr", overrides=MM2)
    prod, dr = streaming(r.exports, "us-east-1"), streaming(r.exports, "us-west-2")
    policy = one(r.resources, "aws:iam/rolePolicy:RolePolicy", "mirrormaker2-policy")["inputs"]["policy"]
    assert json.loads(policy) == json.loads(execution_role_policy(prod["cluster_arn"], dr["cluster_arn"]))
    by_sid = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
    assert not [a for s in ("SourceCluster", "SourceTopics", "SourceGroups") for a in by_sid[s]["Action"]
                if a.split(":")[1].startswith(("Write", "Create", "Alter"))]
    trust = json.loads(one(r.resources, "aws:iam/role:Role", "mirrormaker2-role")["inputs"]["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "kafkaconnect.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == \
        "arn:aws:kafkaconnect:us-west-2:123456789012:connector/regionpair-dr-mm2-*/*"


def test_the_workers_reach_both_clusters_on_9098_only():
    r = harness.render("dr", overrides=MM2)
    prod_sg = streaming(r.exports, "us-east-1")["security_group_ids"][0]
    rules = [n for n in r.resources if n["type"].startswith("aws:vpc/securityGroup") and n["name"].startswith("mirrormaker2")]
    assert {(n["inputs"]["fromPort"], n["inputs"]["toPort"]) for n in rules} == {(9098, 9098)}
    [into_prod] = [n for n in rules if n["inputs"]["securityGroupId"] == prod_sg]
    assert into_prod["provider"] == "aws-us-east-1" and into_prod["inputs"]["cidrIpv4"] == "10.20.0.0/16"
    [to_source] = [n for n in rules if n["inputs"].get("cidrIpv4") == "10.10.0.0/16"]
    assert to_source["type"].endswith("EgressRule")


def test_each_connector_has_its_task_alarms():
    r = harness.render("dr", overrides=MM2)
    alarms = {a["inputs"]["name"]: a["inputs"] for a in of_type(r.resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
              if a["inputs"]["namespace"] == "AWS/KafkaConnect"}
    assert len(alarms) == 6
    assert {a["dimensions"]["ConnectorName"] for a in alarms.values()} == {
        f"regionpair-dr-mm2-{k}" for k in mm2.CONNECTOR_CLASSES}
    assert not [a for a in of_type(r.resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
                if a["inputs"]["namespace"] == "AWS/Kafka"], "no MSK Replicator, no replicator alarms"


def test_promoted_the_connectors_are_gone_and_nothing_else_changes():
    running = harness.render("dr", overrides=MM2).resources
    promoted = harness.render("dr", overrides={**MM2, "promoted": True}).resources
    assert len(of_type(running, CONNECTOR)) == 3 and of_type(promoted, CONNECTOR) == []

    def mm2_parts(resources):
        return {n["name"]: n["inputs"] for n in resources if n["name"].startswith("mirrormaker2")
                and n["type"] != CONNECTOR}

    assert mm2_parts(promoted) == mm2_parts(running)
    assert of_type(promoted, "aws:msk/replicator:Replicator") == []


def test_the_failback_keeps_its_reverse_msk_replicator():
    r = harness.render("dr", overrides={**MM2, "promoted": True, "failback_replication": True})
    [reverse] = of_type(r.resources, "aws:msk/replicator:Replicator")
    assert reverse["name"] == "failback-replicator-replicator" and reverse["provider"] == "aws-us-east-1"


def test_a_bad_section_stops_the_program_before_any_resource():
    broken = copy.deepcopy(harness.MIRRORMAKER2)
    broken["mirrormaker2"]["kafkaconnect_version"] = "2.7.1"
    with pytest.raises(Exception, match="IdentityReplicationPolicy"):
        harness.render("dr", overrides={"streaming": broken})
    assert [r for r in harness.LAST["registrations"] if r["type"] != "pulumi:providers:aws"] == []


def test_the_outputs_name_the_connectors_and_the_checkpoints_topic_and_stay_readable():
    from contract import outputs

    r = harness.render("dr", overrides=MM2)
    flow = streaming(r.exports, "us-west-2")["mirrormaker2"]
    assert flow["checkpoints_topic"] == "us-east-1.checkpoints.internal"
    assert sorted(flow["connector_arns"]) == ["checkpoint", "heartbeat", "source"]
    parsed = outputs.from_dict(r.exports).regions["us-west-2"].streaming.mirrormaker2
    assert parsed.connector_arns["source"].startswith("arn:aws:kafkaconnect:us-west-2:")
    promoted = harness.render("dr", overrides={**MM2, "promoted": True}).exports
    assert streaming(promoted, "us-west-2")["mirrormaker2"]["connector_arns"] == {}


@pytest.mark.parametrize("path, value, words", [
    ("checkpoints_topic", "checkpoints", "<source alias>.checkpoints.internal"),
    ("connector_arns.sink", "arn:aws:kafkaconnect:us-west-2:1:connector/x/y", "not a MirrorMaker 2 connector kind"),
    ("connector_arns.source", "arn:aws:kafka:us-west-2:1:cluster/x/y", "not an MSK Connect connector ARN"),
])
def test_the_outputs_refuse_a_malformed_flow(path, value, words):
    from contract import outputs

    doc = copy.deepcopy(harness.render("dr", overrides=MM2).exports)
    node = doc["regions"]["us-west-2"]["streaming"]["mirrormaker2"]
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    with pytest.raises(outputs.OutputsError, match=words.replace(".", r"\.")):
        outputs.from_dict(doc)


def test_the_runbook_role_may_describe_and_delete_exactly_these_connectors():
    r = harness.render("dr", overrides=MM2)
    arns = sorted(streaming(r.exports, "us-west-2")["mirrormaker2"]["connector_arns"].values())
    doc = json.loads(one(r.resources, "aws:iam/rolePolicy:RolePolicy", "runbooks-policy")["inputs"]["policy"])
    [statement] = [s for s in doc["Statement"] if s["Sid"] == "MirrorMaker2Connectors"]
    assert statement["Action"] == ["kafkaconnect:DeleteConnector", "kafkaconnect:DescribeConnector"]
    assert statement["Resource"] == arns
    default = json.loads(one(harness.render_stack("dr"), "aws:iam/rolePolicy:RolePolicy", "runbooks-policy")["inputs"][
        "policy"])
    assert not [s for s in default["Statement"] if "kafkaconnect" in json.dumps(s)]
