"""The Streaming port on MSK and the MSK Replicator (runbooks/adapters/aws/msk.py), on botocore's
Stubber with the real service models: moto has no MSK Replicator, no bootstrap brokers and returns
only the CloudWatch data put into it."""

from __future__ import annotations

import copy

import pytest

from runbooks.adapters import aws
from runbooks.adapters.aws.msk import EXCLUDES_TAG
from runbooks.core.errors import StepFailed, Unreachable
from runbooks.core.ports import PAUSED
from tests.contract.aws_helpers import (
    DST_CLUSTER,
    REPLICATOR,
    REVERSE,
    SRC_CLUSTER,
    StreamStubs as Stubs,
    metric_data,
    replicator,
    streams_document,
    stub_params,
)
from tests.helpers.moto import P, S


def test_kafka_flow_reads_the_replicator_its_source_and_its_lag():
    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", replicator(), {"ReplicatorArn": REPLICATOR})
    s.stub("kafka", P).add_response("describe_cluster_v2", {"ClusterInfo": {"State": "ACTIVE"}},
                                     {"ClusterArn": SRC_CLUSTER})
    s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[(90, 2500.0), (150, 900.0)],
                                                                         lag=[(90, 42.0)]))
    stub_params(s, "b-1.dr:9098")
    f = s.streaming().flow()
    assert (f.source, f.target, f.running, f.source_reachable) == (P, S, True, True)
    assert (f.lag_records, f.lag_seconds) == (42, 2.5)  # the newest datapoint, ms → s
    assert "ReplicationLatency 2500 ms" in f.detail and "90 s ago" in f.detail
    s.done()


def test_kafka_lag_datapoint_too_old_is_unknown_while_the_source_answers_but_kept_when_it_is_lost():
    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", replicator(), {"ReplicatorArn": REPLICATOR})
    s.stub("kafka", P).add_response("describe_cluster_v2", {"ClusterInfo": {"State": "ACTIVE"}},
                                     {"ClusterArn": SRC_CLUSTER})
    s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[(400, 800.0)], lag=[(400, 5.0)]))
    stub_params(s, "b-1.prod:9098")
    f = s.streaming().flow()
    assert f.running and f.lag_seconds is None and "400 s old" in f.detail
    s.done()

    lost = Stubs()
    lost.stub("kafka", S).add_response("describe_replicator", replicator(), {"ReplicatorArn": REPLICATOR})
    lost.stub("kafka", P).add_client_error("describe_cluster_v2", "ServiceUnavailable", http_status_code=503)
    lost.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[(400, 800.0)], lag=[(400, 5.0)]))
    stub_params(lost, "b-1.prod:9098")
    f = lost.streaming().flow()
    assert f.source_reachable is False and f.lag_seconds == 0.8 and f.lag_records == 5
    lost.done()


def test_kafka_zero_lag_counts_only_from_a_period_after_the_clients_paused():
    """Clients paused 100 s ago and re-read every 30 s: a zero from 80 s ago began before they had
    all stopped, and says nothing about their last records; one from 60 s ago does."""
    for zero_ago, counted in ((80, False), (60, True)):
        s = Stubs()
        s.stub("kafka", S).add_response("describe_replicator", replicator(), {"ReplicatorArn": REPLICATOR})
        s.stub("kafka", P).add_response("describe_cluster_v2", {"ClusterInfo": {"State": "ACTIVE"}},
                                         {"ClusterArn": SRC_CLUSTER})
        s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[(zero_ago, 10.0)],
                                                                             lag=[(zero_ago, 0.0)]))
        stub_params(s, PAUSED, modified_ago=100)
        f = s.streaming().flow()
        assert f.lag_records == (0 if counted else None), zero_ago
        assert ("waiting for a later one" in f.detail) is not counted
        s.done()


def test_kafka_stop_excludes_every_topic_and_group_remembers_and_start_restores():
    s = Stubs()
    k = s.stub("kafka", S)
    k.add_response("describe_replicator", replicator(excluded=["tmp-.*"]), {"ReplicatorArn": REPLICATOR})
    k.add_response("tag_resource", {}, {"ResourceArn": REPLICATOR,
                                        "Tags": {EXCLUDES_TAG: '{"topics":["tmp-.*"],"groups":[]}'}})
    update = {"ReplicatorArn": REPLICATOR, "CurrentVersion": "K1", "SourceKafkaClusterArn": SRC_CLUSTER,
              "TargetKafkaClusterArn": DST_CLUSTER,
              "TopicReplication": {"TopicsToReplicate": [".*"], "TopicsToExclude": ["tmp-.*", ".*"],
                                   "CopyTopicConfigurations": True, "CopyAccessControlListsForTopics": True,
                                   "DetectAndCopyNewTopics": True},
              "ConsumerGroupReplication": {"ConsumerGroupsToReplicate": ["ledger", "orders-.*"],
                                           "ConsumerGroupsToExclude": [".*"], "SynchroniseConsumerGroupOffsets": True,
                                           "DetectAndCopyNewConsumerGroups": True}}
    k.add_response("update_replication_info", {"ReplicatorArn": REPLICATOR, "ReplicatorState": "UPDATING"}, update)
    stopped = replicator(state="UPDATING", excluded=["tmp-.*", ".*"], groups_excluded=[".*"],
                         tags={EXCLUDES_TAG: '{"topics":["tmp-.*"],"groups":[]}'})
    k.add_response("describe_replicator", stopped, {"ReplicatorArn": REPLICATOR})   # flow(): stopped
    k.add_response("describe_replicator", stopped, {"ReplicatorArn": REPLICATOR})   # stop again: nothing to do
    k.add_response("describe_replicator", stopped, {"ReplicatorArn": REPLICATOR})   # start
    restore = copy.deepcopy(update)
    restore["TopicReplication"]["TopicsToExclude"] = ["tmp-.*"]
    restore["ConsumerGroupReplication"]["ConsumerGroupsToExclude"] = []
    k.add_response("update_replication_info", {"ReplicatorArn": REPLICATOR, "ReplicatorState": "UPDATING"}, restore)
    k.add_response("untag_resource", {}, {"ResourceArn": REPLICATOR, "TagKeys": [EXCLUDES_TAG]})
    st = s.streaming()
    assert "every topic and consumer group excluded" in st.stop_flow()
    f = st.flow()
    assert not f.running and (f.source, f.target) == (P, S) and "stopped by the runbooks" in f.detail
    assert "already stopped" in st.stop_flow()
    assert "copies us-east-1 → us-west-2 again" in st.start_flow(P, S)
    s.done()


def test_kafka_reverse_flow_needs_a_replicator_from_the_stacks_and_says_how():
    s = Stubs()
    with pytest.raises(StepFailed, match=r"no MSK Replicator copies us-west-2 → us-east-1.*"
                       r"pulumi config set failback_replication true --stack dr"):
        s.streaming().start_flow(S, P)
    s.done()

    # as the dr stack exports it with failback_replication: in its own region's document, the
    # replicator itself in prod's region (the region it copies into, read from its ARN)
    doc = streams_document()
    doc["regions"][S]["streaming"]["failback_replicator_arn"] = REVERSE
    s = Stubs(doc)
    s.stub("kafka", P).add_response("describe_replicator", replicator(arn=REVERSE, source=S, target=P),
                                     {"ReplicatorArn": REVERSE})
    assert "already copies us-west-2 → us-east-1" in s.streaming().start_flow(S, P)
    s.done()


def test_kafka_replicator_starting_at_latest_is_refused_where_it_would_skip_records():
    """A stopped replicator restarted, or a reverse one (a failback into a home cluster that may
    have come back empty), with starting position LATEST would leave out what the source took
    before: refused with the fix, nothing updated. A forward one running all along is left be."""
    def latest(**kw):
        d = replicator(**kw)
        d["ReplicationInfoList"][0]["TopicReplication"]["StartingPosition"] = {"Type": "LATEST"}
        return d
    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", latest(excluded=[".*"], groups_excluded=[".*"]),
                                     {"ReplicatorArn": REPLICATOR})
    with pytest.raises(StepFailed, match=r"starting position LATEST.*Recreate it with StartingPosition EARLIEST"):
        s.streaming().start_flow(P, S)
    s.done()  # no update_replication_info was made

    doc = streams_document()
    doc["regions"][P]["streaming"]["replicator_arn"] = REVERSE
    s = Stubs(doc)
    s.stub("kafka", P).add_response("describe_replicator", latest(arn=REVERSE, source=S, target=P),
                                     {"ReplicatorArn": REVERSE})
    with pytest.raises(StepFailed, match=r"all of it, if us-east-1's cluster came back empty"):
        s.streaming().start_flow(S, P)
    s.done()

    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", latest(), {"ReplicatorArn": REPLICATOR})
    assert "already copies us-east-1 → us-west-2" in s.streaming().start_flow(P, S)
    s.done()


def test_kafka_failed_replicator_is_not_running_and_says_why():
    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", replicator(state="FAILED", message="source unreachable"),
                                     {"ReplicatorArn": REPLICATOR})
    f = s.streaming().flow()
    assert not f.running and "FAILED" in f.detail and "source unreachable" in f.detail
    s.done()


def test_kafka_group_offsets_are_confirmed_from_the_replicator_not_read_from_the_cluster():
    s = Stubs()
    s.stub("kafka", S).add_response("describe_replicator", replicator(groups_excluded=[".*"],
                                    tags={EXCLUDES_TAG: '{"topics":[],"groups":[]}'}), {"ReplicatorArn": REPLICATOR})
    s.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[(120, 10.0)]))
    got = {g.group: g for g in s.streaming().ensure_group_offsets(P, S, ["ledger", "audit"])}
    assert got["ledger"].translated and "translated by the replicator dr" in got["ledger"].method
    assert "120 s old" in got["ledger"].method and "not read from the cluster" in got["ledger"].method
    assert got["ledger"].duplicates is None  # not known without reading the clusters
    assert not got["audit"].translated and "do not cover audit" in got["audit"].method
    s.done()

    off = Stubs()
    off.stub("kafka", S).add_response("describe_replicator", replicator(sync=False), {"ReplicatorArn": REPLICATOR})
    off.stub("cloudwatch", S).add_response("get_metric_data", metric_data(latency=[]))
    [g] = off.streaming().ensure_group_offsets(P, S, ["ledger"])
    assert not g.translated and "does not synchronise" in g.method
    off.done()


def test_bootstrap_is_the_iam_listener_read_once_and_refusals_name_the_fix():
    s = Stubs()
    k = s.stub("kafka", S)
    k.add_response("get_bootstrap_brokers", {"BootstrapBrokerStringSaslIam": "b-1.dr:9098,b-2.dr:9098",
                                             "BootstrapBrokerStringTls": "b-1.dr:9094"}, {"ClusterArn": DST_CLUSTER})
    st = s.streaming()
    assert st.bootstrap(S) == "b-1.dr:9098,b-2.dr:9098"
    assert st.bootstrap(S) == "b-1.dr:9098,b-2.dr:9098"  # cached: one call
    k.add_client_error("get_bootstrap_brokers", "AccessDeniedException", "not authorized", http_status_code=403)
    with pytest.raises(aws.AwsCallFailed, match=r"GetBootstrapBrokers was denied.*runbook role"):
        s.streaming().bootstrap(S)
    # (a throttle, TooManyRequestsException, is tried again: tests/contract/test_aws_clients.py)
    k.add_client_error("describe_replicator", "BadRequestException", "bad replicator", http_status_code=400)
    with pytest.raises(aws.AwsCallFailed, match=r"DescribeReplicator failed: BadRequestException"):
        s.streaming().flow()
    k.add_client_error("describe_replicator", "ServiceUnavailableException", "down", http_status_code=503)
    with pytest.raises(Unreachable, match="no MSK Replicator could be described"):
        s.streaming().flow()
    s.done()
