"""Helpers the AWS contract tests share: botocore Stubber clients on the real service models
(``Stubs``, and ``StreamStubs``/``BackupStubs`` for the stream and backup ports), the canned RDS and
MSK answers they return, and the fake SQL connection the moto tests fence with."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import boto3
from botocore.stub import Stubber

from contract import outputs as contract
from runbooks.adapters import aws
from runbooks.adapters.aws.msk import MskStreaming
from runbooks.adapters.aws.s3_replication import S3Objects
from runbooks.core.clock import FakeClock
from tests.helpers.moto import P, S
from tests.samples import pair_document

PRIMARY_ARN = "arn:aws:rds:us-east-1:123456789012:db:prod-payments"
REPLICA_ARN = "arn:aws:rds:us-west-2:123456789012:db:dr-payments"


class Stubs:
    """Clients whose calls are answered by botocore Stubbers on the real service models."""

    def __init__(self, doc=None, clock=None):
        self.outputs = contract.from_dict(doc or pair_document())
        self.clock = clock or FakeClock()
        self.session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.clients = aws.Clients(self.session)
        self.stubbers: list[Stubber] = []

    def stub(self, service: str, region: str) -> Stubber:
        client = self.session.client(service, region_name=region)
        self.clients.use(service, region, client)
        stubber = Stubber(client)
        stubber.activate()
        self.stubbers.append(stubber)
        return stubber

    def ports(self, connect=None):
        return aws.aws_ports(self.outputs, self.clock, clients=self.clients, connect=connect)

    def done(self):
        for s in self.stubbers:
            s.assert_no_pending_responses()


def instance(identifier: str, region: str, status: str = "available", source: str | None = None, **extra) -> dict:
    inst = {"DBInstanceIdentifier": identifier, "DBInstanceStatus": status,
            "DBInstanceArn": f"arn:aws:rds:{region}:123456789012:db:{identifier}",
            "DBInstanceClass": "db.r6g.large", "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-prod0" if region == P else "sg-dr0", "Status": "active"}],
            "Endpoint": {"Address": f"{identifier}.abc.{region}.rds.amazonaws.com", "Port": 5432}, **extra}
    if source:
        inst["ReadReplicaSourceDBInstanceIdentifier"] = source
    return inst


def described(*instances) -> dict:
    return {"DBInstances": list(instances)}


def open_group(gid: str) -> dict:
    return {"SecurityGroups": [{"GroupId": gid, "GroupName": "db", "Description": "db", "OwnerId": "123456789012",
                                "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                                   "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}], "Tags": []}]}


class FakeConn:
    """A connection that answers the session-termination query (fencing ends sessions)."""

    def __init__(self, log):
        self.log = log

    def execute(self, query, params=None):
        self.log.append(query)
        rows = [(True,), (True,)] if "pg_terminate_backend" in query else []

        class Cur:
            def fetchall(self_inner):
                return rows
        return Cur()

    def close(self):
        pass


def ports(pair, connect=None):
    return aws.aws_ports(pair.outputs, pair.clock, pair.session, connect=connect)


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


class StreamStubs(Stubs):
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


def stub_params(s: StreamStubs, value: str, modified_ago: float = 3600.0, name: str = PARAM):
    for region in (P, S):
        p = parameter(value, modified_ago)
        p["Parameter"]["Name"] = name
        s.stub("ssm", region).add_response("get_parameter", p, {"Name": name})


class BackupStubs:
    def __init__(self):
        self.outputs = contract.from_dict(pair_document())
        self.clock = FakeClock()
        self.session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.clients = aws.Clients(self.session)
        self.stubbers = []

    def stub(self, service, region):
        client = self.session.client(service, region_name=region)
        self.clients.use(service, region, client)
        s = Stubber(client)
        s.activate()
        self.stubbers.append(s)
        return s

    def ports(self):
        return aws.aws_backup_ports(self.outputs, self.clock, clients=self.clients)

    def done(self):
        for s in self.stubbers:
            s.assert_no_pending_responses()


def with_dr_key(pair) -> contract.Outputs:
    """The pair's outputs with a real (moto) KMS key in the DR region, as the stacks provide."""
    key = pair.client("kms", S).create_key(Description="dr")["KeyMetadata"]["Arn"]
    doc = json.loads(json.dumps(pair.doc))
    doc["regions"][S]["kms_key_arn"] = key
    return contract.from_dict(doc)
