"""The ObjectStore port on S3 replication (runbooks/adapters/aws/s3_replication.py) and the SSM
client parameters it shares with MSK (ssm_parameters.py). moto in server mode for what it emulates
(versioning, replication configurations, SSM parameters); botocore's Stubber for what it does not
(CloudWatch's replication metrics, HeadObject's ReplicationStatus, refusals). A closed loopback port
stands in for a lost region. The seeding jobs (S3 Batch Replication) are in
test_aws_batch_replication.py."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from contract import outputs as contract
from runbooks.adapters import aws
from runbooks.adapters.aws.s3_replication import REVERSE_RULE_ID, S3Objects
from runbooks.core.clock import FakeClock
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import PAUSED
from tests.contract.aws_helpers import (
    ACCOUNT,
    ROLE,
    T0,
    WRITERS,
    StreamStubs as Stubs,
    at,
    metric_data,
    streams_document,
    stub_params,
)
from tests.helpers.moto import P, S, closed_port


def test_s3_seeding_is_never_claimed_in_aws_and_says_what_copies_existing_versions():
    """CRR copies only versions written after its rule is enabled; the adapter cannot see whether
    S3 Batch Replication copied the rest, so it says so rather than pretend (the failback then
    needs --objects-seeded)."""
    seeding = Stubs().objects().seeding(S, P)
    assert seeding.complete is None
    assert "copies only versions written after its rule was enabled" in seeding.sentence
    assert "S3 Batch Replication" in seeding.remedy and "--objects-seeded" in seeding.remedy
    assert "ObjectReplicationStatuses NONE, FAILED and REPLICA" in seeding.remedy


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
