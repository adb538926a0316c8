"""MSK in both real stacks under mocks: each cluster is ready to be a cross-region Replicator source,
each Replicator's role covers both of its clusters, and the Replicator's alarms exist exactly while
it runs."""

from __future__ import annotations

import json

import pulumi.runtime
import pytest

from contract.outputs import STOP_PATTERN
from tests import harness
from tests.harness import of_type, one

CLUSTER_POLICY = "aws:msk/clusterPolicy:ClusterPolicy"


@pytest.fixture(autouse=True)
def keep_the_global_config():
    """A render sets Pulumi's global config (promoted: true here); tests after these must not inherit it."""
    saved = pulumi.runtime.config.CONFIG.get()
    yield
    pulumi.runtime.config.CONFIG.set(saved)
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def kafka_alarms(resources: list[dict]) -> dict[str, dict]:
    return {a["inputs"]["metricName"]: a["inputs"] for a in of_type(resources, ALARM)
            if a["inputs"]["namespace"] == "AWS/Kafka"}


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_each_stacks_cluster_is_ready_to_be_a_replicator_source(stack):
    """prod's cluster is the source of primary → DR, DR's of the failback's reverse flow."""
    resources = harness.render_stack(stack)
    exports = harness.stack_exports(stack)
    region = harness.stack_config(stack)["aws:region"]
    cluster_arn = exports["regions"][region]["streaming"]["cluster_arn"]
    cluster = one(resources, "aws:msk/cluster:Cluster")["inputs"]
    assert cluster["brokerNodeGroupInfo"]["connectivityInfo"]["vpcConnectivity"]["clientAuthentication"]["sasl"][
        "iam"] is True
    [policy] = of_type(resources, CLUSTER_POLICY)
    assert policy["provider"] == f"aws-{region}" and policy["inputs"]["clusterArn"] == cluster_arn
    [statement] = json.loads(policy["inputs"]["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "kafka.amazonaws.com"} and statement["Resource"] == cluster_arn


def test_the_running_replicator_has_a_latency_and_a_failure_alarm():
    alarms = kafka_alarms(harness.render_stack("dr"))
    assert set(alarms) == {"ReplicationLatency", "ReplicatorFailure"}
    name = one(harness.render_stack("dr"), "aws:msk/replicator:Replicator")["inputs"]["replicatorName"]
    assert all(a["dimensions"] == {"ReplicatorName": name} for a in alarms.values())
    failure = alarms["ReplicatorFailure"]
    assert (failure["statistic"], failure["threshold"], failure["comparisonOperator"], failure["treatMissingData"]) == \
        ("Sum", 0.0, "GreaterThanThreshold", "notBreaching")


def test_a_stopped_replicator_has_no_alarm_that_would_sit_in_alarm_forever():
    """promoted: true declares the replicator stopped (everything excluded): no latency is published, so
    its alarms are dropped rather than left breaching; the replicator itself stays declared."""
    rendered = harness.render("dr", overrides={"promoted": True})
    assert kafka_alarms(rendered.resources) == {}
    replicator = one(rendered.resources, "aws:msk/replicator:Replicator")["inputs"]["replicationInfoList"]
    assert replicator["topicReplications"][0]["topicsToExcludes"] == [STOP_PATTERN]
    region = rendered.exports["regions"]["us-west-2"]
    assert not [a for a in region["alarms"] if "from-us-east-1" in a]


def test_the_failback_replicators_role_covers_drs_cluster_as_source_and_prods_as_target():
    rendered = harness.render("dr", overrides={"promoted": True, "failback_replication": True})
    reverse = [r for r in of_type(rendered.resources, "aws:msk/replicator:Replicator") if "failback" in r["name"]]
    [reverse] = reverse
    info = reverse["inputs"]["replicationInfoList"]
    source, target = info["sourceKafkaClusterArn"], info["targetKafkaClusterArn"]
    assert ":us-west-2:" in source and ":us-east-1:" in target and reverse["provider"] == "aws-us-east-1"
    policy = [r for r in of_type(rendered.resources, "aws:iam/rolePolicy:RolePolicy")
              if r["name"] == "failback-replicator-policy"]
    statements = {s["Sid"]: s for s in json.loads(policy[0]["inputs"]["policy"])["Statement"]}
    assert statements["ClusterPermissions"]["Resource"] == [source, target]
    assert "kafka-cluster:WriteDataIdempotently" in statements["ClusterPermissions"]["Action"]


def test_the_failback_replicator_is_alarmed_in_its_own_region_while_declared():
    """Replicator metrics are published where the replicator runs (the target's region): the reverse
    replicator's alarms and their topic are in the primary's region, under prod's key."""
    rendered = harness.render("dr", overrides={"promoted": True, "failback_replication": True})
    alarms = [a for a in of_type(rendered.resources, ALARM) if a["inputs"]["namespace"] == "AWS/Kafka"]
    assert {(a["inputs"]["metricName"], a["provider"]) for a in alarms} == {
        ("ReplicationLatency", "aws-us-east-1"), ("ReplicatorFailure", "aws-us-east-1")}
    assert {a["inputs"]["dimensions"]["ReplicatorName"] for a in alarms} == {"regionpair-dr-to-us-east-1"}
    topic = [t for t in of_type(rendered.resources, "aws:sns/topic:Topic") if t["provider"] == "aws-us-east-1"]
    prod_key = harness.stack_exports("prod")["regions"]["us-east-1"]["kms_key_arn"]
    assert [t["inputs"]["kmsMasterKeyId"] for t in topic] == [prod_key]
    assert all(a["inputs"]["alarmActions"] == [f"arn:aws:sns:us-east-1:{harness.ACCOUNT}:regionpair-dr-failback-alarms"]
               for a in alarms)
