"""The AWS Streaming (MSK) and ObjectStore (S3) adapters.

moto 5.2.5 in server mode for what it emulates: S3 versioning and replication configurations,
SSM parameters, object versions. botocore's Stubber on the real service models for what it does
not: MSK GetBootstrapBrokers, DescribeReplicator, UpdateReplicationInfo (moto has no MSK
Replicator and no bootstrap brokers), CloudWatch GetMetricData for AWS/Kafka and AWS/S3
replication metrics (moto returns only what was put), HeadObject's ReplicationStatus (moto never
replicates), refusals and throttling. A closed loopback port stands in for a lost region."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.adapters import aws
from runbooks.adapters.aws_streams import EXCLUDES_TAG, REVERSE_RULE_ID, MskStreaming, S3Objects
from runbooks.clock import FakeClock
from runbooks.errors import BadInput, StepFailed, Unreachable
from runbooks.ports import PAUSED
from stacks import outputs as contract
from tests.helpers.moto import P, S, closed_port
from tests.contract.test_aws_stubber import Stubs as StubberStubs
from tests.samples import pair_document

ACCOUNT = "123456789012"
SRC_CLUSTER = f"arn:aws:kafka:{P}:{ACCOUNT}:cluster/prod/x"
DST_CLUSTER = f"arn:aws:kafka:{S}:{ACCOUNT}:cluster/dr/x"
REPLICATOR = f"arn:aws:kafka:{S}:{ACCOUNT}:replicator/dr/y"
REVERSE = f"arn:aws:kafka:{P}:{ACCOUNT}:replicator/prod-from-dr/z"
PARAM = "/regionpair/payments/kafka-bootstrap"
WRITERS = "/regionpair/payments/objects-bucket"
T0 = 1_800_000_000.0
ROLE = f"arn:aws:iam::{ACCOUNT}:role/data-replication"


def streams_document() -> dict:
    doc = copy.deepcopy(pair_document())
    for r in doc["regions"].values():
        r["storage"]["writer_parameter"] = WRITERS
        r["streaming"]["consumer_groups"] = ["ledger", "audit"]
    return doc


def at(seconds_before_t0: float) -> datetime:
    return datetime.fromtimestamp(T0 - seconds_before_t0, timezone.utc)


class Stubs(StubberStubs):
    def __init__(self, doc=None):
        super().__init__(doc or streams_document(), FakeClock(start=T0))

    def streaming(self) -> MskStreaming:
        return MskStreaming(self.outputs, self.clients, self.clock)

    def objects(self) -> S3Objects:
        return S3Objects(self.outputs, self.clients, self.clock)


def replicator(state="RUNNING", source=P, target=S, arn=REPLICATOR, excluded=(), groups_excluded=(), tags=None,
               sync=True, message=None):
    clusters = {P: SRC_CLUSTER, S: DST_CLUSTER}
    d = {"ReplicatorArn": arn, "ReplicatorName": arn.split("/")[-2], "ReplicatorState": state, "CurrentVersion": "K1",
         "KafkaClusters": [{"AmazonMskCluster": {"MskClusterArn": clusters[source]}, "KafkaClusterAlias": "src-alias"},
                           {"AmazonMskCluster": {"MskClusterArn": clusters[target]}, "KafkaClusterAlias": "dst-alias"}],
         "ReplicationInfoList": [{
             "SourceKafkaClusterAlias": "src-alias", "TargetKafkaClusterAlias": "dst-alias",
             "TargetCompressionType": "NONE",
             "TopicReplication": {"TopicsToReplicate": [".*"], "TopicsToExclude": list(excluded),
                                  "CopyTopicConfigurations": True, "CopyAccessControlListsForTopics": True,
                                  "DetectAndCopyNewTopics": True, "StartingPosition": {"Type": "EARLIEST"}},
             "ConsumerGroupReplication": {"ConsumerGroupsToReplicate": ["ledger", "orders-.*"],
                                          "ConsumerGroupsToExclude": list(groups_excluded),
                                          "SynchroniseConsumerGroupOffsets": sync,
                                          "DetectAndCopyNewConsumerGroups": True}}],
         "Tags": dict(tags or {})}
    if message:
        d["StateInfo"] = {"Code": "X", "Message": message}
    return d


def metric_data(**series) -> dict:
    """id → [(seconds before T0, value), …]"""
    return {"MetricDataResults": [{"Id": qid, "Label": qid, "StatusCode": "Complete",
                                   "Timestamps": [at(ago) for ago, _ in points], "Values": [v for _, v in points]}
                                  for qid, points in series.items()]}


def parameter(value: str, modified_ago: float = 3600.0) -> dict:
    return {"Parameter": {"Name": PARAM, "Type": "String", "Value": value, "Version": 3,
                          "LastModifiedDate": at(modified_ago)}}


def stub_params(s: Stubs, value: str, modified_ago: float = 3600.0, name: str = PARAM):
    for region in (P, S):
        p = parameter(value, modified_ago)
        p["Parameter"]["Name"] = name
        s.stub("ssm", region).add_response("get_parameter", p, {"Name": name})


# --------------------------------------------------------------------------------------------
# MSK on Stubber
# --------------------------------------------------------------------------------------------


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


def test_s3_seeding_is_never_claimed_in_aws_and_says_what_copies_existing_versions():
    """CRR copies only versions written after its rule is enabled; the adapter cannot see whether
    S3 Batch Replication copied the rest, so it says so rather than pretend (the failback then
    needs --objects-seeded)."""
    seeding = Stubs().objects().seeding(S, P)
    assert seeding.complete is None
    assert "copies only versions written after its rule was enabled" in seeding.sentence
    assert "S3 Batch Replication" in seeding.remedy and "--objects-seeded" in seeding.remedy
    assert "ObjectReplicationStatuses NONE, FAILED and REPLICA" in seeding.remedy


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
    # (a throttle, TooManyRequestsException, is tried again: tests/contract/test_aws_stubber.py)
    k.add_client_error("describe_replicator", "BadRequestException", "bad replicator", http_status_code=400)
    with pytest.raises(aws.AwsCallFailed, match=r"DescribeReplicator failed: BadRequestException"):
        s.streaming().flow()
    k.add_client_error("describe_replicator", "ServiceUnavailableException", "down", http_status_code=503)
    with pytest.raises(Unreachable, match="no MSK Replicator could be described"):
        s.streaming().flow()
    s.done()


# --------------------------------------------------------------------------------------------
# S3 on Stubber (metrics, pending objects)
# --------------------------------------------------------------------------------------------


def forward_config(status="Enabled") -> dict:
    return {"Role": ROLE, "Rules": [{
        "ID": "primary-to-dr", "Priority": 1, "Status": status, "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": "arn:aws:s3:::regionpair-dr-data",
                        "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                        "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}}}]}


def test_s3_flow_reads_the_rule_the_replication_metrics_and_samples_pending_keys():
    s = Stubs()
    s3p = s.stub("s3", P)
    s3p.add_response("get_bucket_replication", {"ReplicationConfiguration": forward_config()},
                     {"Bucket": "regionpair-prod-data"})
    s.stub("s3", S).add_client_error("get_bucket_replication", "ReplicationConfigurationNotFoundError",
                                     http_status_code=404)
    s.stub("cloudwatch", P).add_response("get_metric_data", metric_data(ops=[(60, 2.0)], bytes=[(60, 2048.0)],
                                                                         latency=[(60, 31.0)]))
    stub_params(s, "regionpair-prod-data", name=WRITERS)
    s3p.add_response("list_object_versions", {"Versions": [
        {"Key": "a", "VersionId": "v1", "IsLatest": True, "LastModified": at(5)},
        {"Key": "b", "VersionId": "v2", "IsLatest": True, "LastModified": at(50)},
        {"Key": "b", "VersionId": "v0", "IsLatest": False, "LastModified": at(900)},
        {"Key": "c", "VersionId": "v3", "IsLatest": True, "LastModified": at(20)}]},
        {"Bucket": "regionpair-prod-data", "MaxKeys": 1000})
    # newest first: a, c, b
    s3p.add_response("head_object", {"ReplicationStatus": "PENDING"}, {"Bucket": "regionpair-prod-data", "Key": "a", "VersionId": "v1"})
    s3p.add_response("head_object", {"ReplicationStatus": "COMPLETED"}, {"Bucket": "regionpair-prod-data", "Key": "c", "VersionId": "v3"})
    s3p.add_response("head_object", {"ReplicationStatus": "FAILED"}, {"Bucket": "regionpair-prod-data", "Key": "b", "VersionId": "v2"})
    f = s.objects().flow()
    assert (f.source, f.target, f.running, f.source_reachable) == (P, S, True, True)
    assert (f.lag_records, f.lag_seconds) == (2, 31.0)
    assert f.pending == ("a@v1", "b@v2") and "2048 bytes pending" in f.detail
    s.done()


def test_s3_lost_primary_region_is_assumed_still_replicating_and_stop_says_it_could_not():
    s = Stubs()
    dead = s.session.client("s3", region_name=P, endpoint_url=f"http://127.0.0.1:{closed_port()}",
                            config=aws.AwsSettings().botocore_config())
    s.clients.use("s3", P, dead)
    s.stub("s3", S).add_client_error("get_bucket_replication", "ReplicationConfigurationNotFoundError",
                                     http_status_code=404)
    f = s.objects().flow()
    assert (f.source, f.running, f.source_reachable, f.lag_seconds) == (P, True, False, None)
    assert "assumed enabled" in f.detail
    s.stub("s3", S).add_client_error("get_bucket_replication", "ReplicationConfigurationNotFoundError",
                                     http_status_code=404)
    with pytest.raises(Unreachable, match="must be disabled before"):
        s.objects().stop_flow()
    s.done()


# --------------------------------------------------------------------------------------------
# S3 and SSM on moto
# --------------------------------------------------------------------------------------------


@pytest.fixture
def moto_streams(moto_server, aws_env):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    session = boto3.session.Session()
    doc = streams_document()
    for region, stack in ((P, "prod"), (S, "dr")):
        s3 = session.client("s3", region_name=region)
        bucket = doc["regions"][region]["storage"]["data_bucket"]
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        session.client("ssm", region_name=region).put_parameter(Name=WRITERS, Value="regionpair-prod-data",
                                                                Type="String")
    session.client("s3", region_name=P).put_bucket_replication(Bucket="regionpair-prod-data",
                                                               ReplicationConfiguration=forward_config())
    outputs = contract.from_dict(doc)
    clients = aws.Clients(session)
    clock = FakeClock(start=T0)
    # CloudWatch's AWS/S3 replication metrics: moto has none of S3's own; a Stubber answers "no datapoint"
    cw = session.client("cloudwatch", region_name=P)
    stubber = Stubber(cw)
    stubber.activate()
    clients.use("cloudwatch", P, cw)
    cw_s = session.client("cloudwatch", region_name=S)
    stubber_s = Stubber(cw_s)
    stubber_s.activate()
    clients.use("cloudwatch", S, cw_s)
    return session, S3Objects(outputs, clients, clock), (stubber, stubber_s)


def rules(session, region, bucket):
    return session.client("s3", region_name=region).get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]


def test_s3_stop_disables_the_rule_and_failback_reverses_with_the_forward_role_on_moto(moto_streams):
    session, objects, (cw_p, cw_s) = moto_streams
    cw_p.add_response("get_metric_data", metric_data(ops=[], bytes=[], latency=[]))
    session.client("s3", region_name=P).put_object(Bucket="regionpair-prod-data", Key="k", Body=b"x")
    f = objects.flow()
    assert (f.source, f.target, f.running) == (P, S, True)
    assert f.lag_seconds is None and "no replication metric datapoint" in f.detail  # unknown, not zero
    assert "disabled" in objects.stop_flow()
    fwd = rules(session, P, "regionpair-prod-data")
    assert [r["Status"] for r in fwd["Rules"]] == ["Disabled"] and fwd["Role"] == ROLE  # kept, not deleted
    assert not objects.flow().running
    assert objects.stop_flow() == "no S3 replication rule was enabled"

    result = objects.start_flow(S, P)
    assert REVERSE_RULE_ID in result
    back = rules(session, S, "regionpair-dr-data")
    [rule] = back["Rules"]
    assert back["Role"] == ROLE and rule["Status"] == "Enabled"
    assert rule["Destination"]["Bucket"] == "arn:aws:s3:::regionpair-prod-data"
    assert rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"] == f"arn:aws:kms:{P}:{ACCOUNT}:key/prod"
    cw_s.add_response("get_metric_data", metric_data(ops=[], bytes=[], latency=[]))
    f = objects.flow()
    assert (f.source, f.target, f.running) == (S, P, True)
    assert "already enabled" in objects.start_flow(S, P)

    # switchover home → protect again: the forward rule is enabled, not rewritten
    assert "enabled again" in objects.start_flow(P, S)
    assert [r["Status"] for r in rules(session, P, "regionpair-prod-data")["Rules"]] == ["Enabled"]
    cw_p.assert_no_pending_responses()
    cw_s.assert_no_pending_responses()


def test_s3_reverse_is_refused_when_a_bucket_is_not_versioned_on_moto(moto_streams):
    session, objects, _ = moto_streams
    session.client("s3", region_name=P).put_bucket_versioning(Bucket="regionpair-prod-data",
                                                              VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(StepFailed, match=r"regionpair-prod-data \(us-east-1\) has versioning Suspended"):
        objects.start_flow(S, P)
    with pytest.raises(BadInput, match="eu-west-1"):
        objects.bucket("eu-west-1")


def test_parameters_are_written_in_every_region_and_a_split_is_visible_on_moto(moto_streams):
    session, objects, _ = moto_streams
    assert objects.writers(WRITERS) == "regionpair-prod-data"
    result = objects.point_writers(WRITERS, "regionpair-dr-data")
    assert "us-east-1" in result and "us-west-2" in result
    for region in (P, S):
        assert session.client("ssm", region_name=region).get_parameter(Name=WRITERS)["Parameter"]["Value"] \
            == "regionpair-dr-data"
    assert objects.writers(WRITERS) == "regionpair-dr-data"
    session.client("ssm", region_name=P).put_parameter(Name=WRITERS, Value=PAUSED, Type="String", Overwrite=True)
    split = objects.writers(WRITERS)
    assert split.startswith("differs by region") and f"{P}={PAUSED}" in split
    assert objects.writers("/regionpair/none") is None
