"""Components under Pulumi mocks: the inputs each one declares, and its refusal of bad args."""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws
import pytest

from components.access import RUNBOOK_ACTIONS, RegionScope, RunbookRole, RunbookRoleArgs
from components.alarms import (
    Alarms,
    AlarmsArgs,
    AlarmSpec,
    free_storage,
    replica_lag,
    replicator_failure,
    replicator_lag,
    s3_replication_failures,
    s3_replication_latency,
)
from components.common import ComponentArgsError
from components.dns import FailoverRecords, FailoverRecordsArgs, HealthCheckSpec
from components.keys import RegionKey, RegionKeyArgs
from components.network import Network, NetworkArgs
from components.storage import Bucket, BucketArgs, BucketReplication, BucketReplicationArgs
from components.streaming import KafkaCluster, KafkaClusterArgs, KafkaReplicator, KafkaReplicatorArgs
from tests import harness
from tests.harness import of_type, one

ACCOUNT = harness.ACCOUNT
KEY_E = "arn:aws:kms:us-east-1:123456789012:key/prod"
KEY_W = "arn:aws:kms:us-west-2:123456789012:key/dr"
ONCALL = "arn:aws:iam::123456789012:role/oncall-sre"


def render(build):
    def program():
        build(aws.Provider("aws-us-west-2", region="us-west-2"))
    return harness.render_program(program).resources


def opts(p):
    return pulumi.ResourceOptions(provider=p)


def children_follow_the_convention(resources, component: str):
    for r in resources:
        if r["type"].startswith("aws:"):
            assert r["name"].startswith(f"{component}-"), r["name"]
            assert r["parent"] == component, r["name"]
            assert r["provider"] is not None, r["name"]


# ---- keys --------------------------------------------------------------------------------------

def test_key_is_rotated_aliased_and_usable_by_alarms_and_logs():
    resources = render(lambda p: RegionKey("key", RegionKeyArgs(region="us-west-2", account_id=ACCOUNT,
                                                                 alias="regionpair-dr"), opts=opts(p)))
    key = one(resources, "aws:kms/key:Key")["inputs"]
    assert key["enableKeyRotation"] is True and key["deletionWindowInDays"] == 30
    policy = json.loads(key["policy"])
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["CloudWatchAlarmsPublishToEncryptedTopics"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sids["CloudWatchLogsEncryptsBrokerLogs"]["Principal"] == {"Service": "logs.us-west-2.amazonaws.com"}
    assert sids["AccountAdministersTheKey"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert one(resources, "aws:kms/alias:Alias")["inputs"]["name"] == "alias/regionpair-dr"
    children_follow_the_convention(resources, "key")


@pytest.mark.parametrize("kw, arg", [({"alias": "alias/x"}, "alias"), ({"alias": "aws/x"}, "alias"),
                                     ({"alias": "a b"}, "alias"), ({"deletion_window_days": 3}, "deletion_window_days"),
                                     ({"deletion_window_days": 31}, "deletion_window_days"),
                                     ({"rotation_period_days": 2561}, "rotation_period_days")])
def test_key_bad_args(kw, arg):
    with pytest.raises(ComponentArgsError) as err:
        RegionKey("key", RegionKeyArgs(region="us-west-2", account_id=ACCOUNT, **{"alias": "a", **kw}))
    assert err.value.arg == arg


def test_key_alias_may_start_with_aws_outside_the_reserved_prefix():
    """KMS reserves alias/aws/ only (KMS Developer Guide, "Create aliases")."""
    resources = render(lambda p: RegionKey("key", RegionKeyArgs(region="us-west-2", account_id=ACCOUNT,
                                                                 alias="awsome-team"), opts=opts(p)))
    assert one(resources, "aws:kms/alias:Alias")["inputs"]["name"] == "alias/awsome-team"


# ---- network -----------------------------------------------------------------------------------

def test_created_network_is_private_across_three_zones_and_admits_only_configured_clients():
    resources = render(lambda p: Network("network", NetworkArgs(
        name_prefix="regionpair-dr", db_ports=[5432], allowed_cidrs=["10.0.0.0/8"],
        allowed_security_group_ids=["sg-0aaaaaaaaaaaaaaaa"], cidr="10.20.0.0/16",
        availability_zones=["us-west-2a", "us-west-2b", "us-west-2c"]), opts=opts(p)))
    subnets = of_type(resources, "aws:ec2/subnet:Subnet")
    assert sorted(s["inputs"]["availabilityZone"] for s in subnets) == ["us-west-2a", "us-west-2b", "us-west-2c"]
    assert all(s["inputs"]["mapPublicIpOnLaunch"] is False for s in subnets)
    assert not of_type(resources, "aws:ec2/internetGateway:InternetGateway")
    rules = of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    sources = sorted((r["inputs"]["fromPort"], r["inputs"].get("cidrIpv4") or r["inputs"].get("referencedSecurityGroupId"))
                     for r in rules)
    kafka_sg = one(resources, "aws:ec2/securityGroup:SecurityGroup", "network-kafka-sg")
    assert sources[:2] == [(5432, "10.0.0.0/8"), (5432, "sg-0aaaaaaaaaaaaaaaa")]
    assert all(src != "0.0.0.0/0" for _, src in sources)
    assert {p for p, _ in sources} == {5432, 9098}
    assert "ingress" not in kafka_sg["inputs"] and "egress" not in kafka_sg["inputs"]
    group = one(resources, "aws:rds/subnetGroup:SubnetGroup")["inputs"]
    assert group["name"] == "regionpair-dr-db" and len(group["subnetIds"]) == 3
    children_follow_the_convention(resources, "network")


def test_runbook_hosts_get_database_ingress_that_the_fence_keeps():
    from components.network import RUNBOOK_ACCESS_PREFIX
    from runbooks.adapters.aws import KEEP_PREFIX  # the fence's own rule, not a copy of it
    assert RUNBOOK_ACCESS_PREFIX == KEEP_PREFIX

    def build(p):
        Network("network", NetworkArgs(
            name_prefix="regionpair-prod", db_ports=[5432, 5433], allowed_cidrs=["10.0.0.0/8"],
            runbook_cidrs=["10.9.0.10/32", "2001:db8::/64"], cidr="10.10.0.0/16",
            availability_zones=["us-east-1a", "us-east-1b", "us-east-1c"]), opts=opts(p))
    rules = of_type(render(build), "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    kept = [r["inputs"] for r in rules if r["inputs"]["description"].startswith(KEEP_PREFIX)]
    assert sorted((k["fromPort"], k["toPort"], k.get("cidrIpv4") or k.get("cidrIpv6")) for k in kept) == [
        (5432, 5432, "10.9.0.10/32"), (5432, 5432, "2001:db8::/64"),
        (5433, 5433, "10.9.0.10/32"), (5433, 5433, "2001:db8::/64")]
    assert all(k["ipProtocol"] == "tcp" for k in kept)
    # the clients' rules are fenced as before: none of them may carry the prefix
    clients = [r["inputs"] for r in rules if r["inputs"].get("cidrIpv4") == "10.0.0.0/8"]
    assert clients and not any(c["description"].startswith(KEEP_PREFIX) for c in clients)


def test_without_runbook_cidrs_no_rule_survives_a_fence():
    resources = render(lambda p: Network("network", NetworkArgs(
        name_prefix="regionpair-prod", db_ports=[5432], allowed_cidrs=["10.0.0.0/8"],
        availability_zones=["a", "b", "c"]), opts=opts(p)))
    rules = of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rules and not [r for r in rules if r["inputs"]["description"].startswith("regionpair:runbook-access")]


def test_given_vpc_is_used_and_nothing_is_created_around_it():
    subnets = [f"subnet-0123456789abcdef{i}" for i in range(3)]
    resources = render(lambda p: Network("network", NetworkArgs(
        name_prefix="regionpair-prod", db_ports=[5432], allowed_cidrs=["10.0.0.0/8"], vpc_id="vpc-0123456789abcdef0",
        subnet_ids=subnets), opts=opts(p)))
    assert not of_type(resources, "aws:ec2/vpc:Vpc") and not of_type(resources, "aws:ec2/subnet:Subnet")
    assert one(resources, "aws:rds/subnetGroup:SubnetGroup")["inputs"]["subnetIds"] == subnets
    assert {r["inputs"]["vpcId"] for r in of_type(resources, "aws:ec2/securityGroup:SecurityGroup")} == \
        {"vpc-0123456789abcdef0"}


@pytest.mark.parametrize("kw, arg", [
    ({"allowed_cidrs": []}, "allowed_cidrs"),
    ({"allowed_cidrs": ["0.0.0.0/0"]}, "allowed_cidrs"),
    ({"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0123456789abcdef0"]}, "subnet_ids"),
    ({"availability_zones": None}, "availability_zones"),
    ({"runbook_cidrs": ["0.0.0.0/0"]}, "runbook_cidrs"),
    ({"runbook_cidrs": ["10.9.0.10/32", "10.9.0.10/32"]}, "runbook_cidrs"),
])
def test_network_bad_args(kw, arg):
    base = dict(name_prefix="x-y", db_ports=[5432], allowed_cidrs=["10.0.0.0/8"], availability_zones=["a", "b", "c"])
    base.update(kw)
    with pytest.raises(ComponentArgsError) as err:
        Network("network", NetworkArgs(**base))
    assert err.value.arg == arg


# ---- streaming ---------------------------------------------------------------------------------

def test_kafka_cluster_is_durable_encrypted_and_iam_only():
    resources = render(lambda p: KafkaCluster("kafka", KafkaClusterArgs(
        cluster_name="regionpair-dr-kafka", subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        security_group_ids=["sg-k"], kms_key_arn=KEY_W, bootstrap_parameter="/regionpair/kafka/bootstrap-brokers"),
        opts=opts(p)))
    cluster = one(resources, "aws:msk/cluster:Cluster")["inputs"]
    assert cluster["numberOfBrokerNodes"] == 3
    assert cluster["brokerNodeGroupInfo"]["clientSubnets"] == ["subnet-a", "subnet-b", "subnet-c"]
    assert cluster["brokerNodeGroupInfo"]["connectivityInfo"]["publicAccess"]["type"] == "DISABLED"
    assert cluster["encryptionInfo"]["encryptionAtRestKmsKeyArn"] == KEY_W
    assert cluster["encryptionInfo"]["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    assert cluster["clientAuthentication"]["sasl"]["iam"] is True
    assert cluster["clientAuthentication"]["unauthenticated"] is False
    assert cluster["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]["enabled"] is True
    config = one(resources, "aws:msk/configuration:Configuration")["inputs"]["serverProperties"]
    props = dict(line.split("=", 1) for line in config.strip().splitlines())
    assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false" and props["auto.create.topics.enable"] == "false"
    assert one(resources, "aws:cloudwatch/logGroup:LogGroup")["inputs"]["kmsKeyId"] == KEY_W
    param = one(resources, "aws:ssm/parameter:Parameter")["inputs"]
    assert param["name"] == "/regionpair/kafka/bootstrap-brokers" and param["value"]["secret"].endswith(":9098")
    children_follow_the_convention(resources, "kafka")


def test_kafka_cluster_is_ready_to_be_a_cross_region_replicator_source():
    """MSK Developer Guide, MSK Replicator "Network requirements": multi-VPC private connectivity with
    IAM on the source, and a cluster policy letting kafka.amazonaws.com create the VPC connection, get
    the bootstrap brokers and describe the cluster, on that cluster only."""
    resources = render(lambda p: KafkaCluster("kafka", KafkaClusterArgs(
        cluster_name="regionpair-dr-kafka", subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        security_group_ids=["sg-k"], kms_key_arn=KEY_W), opts=opts(p)))
    cluster = one(resources, "aws:msk/cluster:Cluster")
    assert cluster["inputs"]["brokerNodeGroupInfo"]["connectivityInfo"]["vpcConnectivity"] == {
        "clientAuthentication": {"sasl": {"iam": True, "scram": False}, "tls": False}}
    policy = one(resources, "aws:msk/clusterPolicy:ClusterPolicy")["inputs"]
    arn = f"arn:aws:kafka:us-west-2:{ACCOUNT}:cluster/regionpair-dr-kafka/"
    assert policy["clusterArn"].startswith(arn)
    [statement] = json.loads(policy["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "kafka.amazonaws.com"} and statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["kafka:CreateVpcConnection", "kafka:DescribeClusterV2",
                                           "kafka:GetBootstrapBrokers"]
    assert statement["Resource"] == policy["clusterArn"]


@pytest.mark.parametrize("kw, arg, words", [
    ({"kafka_version": "2.8.0"}, "kafka_version", "2.8.1"),
    ({"broker_instance_type": "kafka.t3.small"}, "broker_instance_type", "t3.small"),
    ({"bootstrap_parameter": "/aws/kafka"}, "bootstrap_parameter", "prefixed with aws or ssm"),
    ({"bootstrap_parameter": "/SSM-x/kafka"}, "bootstrap_parameter", "prefixed with aws or ssm"),
    ({"client_parameters": {"orders": "/a" * 16}}, "client_parameters.orders", "15 levels"),
    ({"bootstrap_parameter": "kafka"}, "bootstrap_parameter", "leading /"),
    # 1011 characters counting the ARN before the name (arn:aws:ssm:<region>:<account>:parameter)
    ({"bootstrap_parameter": "/" + "k" * 967}, "bootstrap_parameter", "counting the ARN"),
    ({"bootstrap_parameter": "/" + "k" * 962, "region": "ap-southeast-2"}, "bootstrap_parameter", "ap-southeast-2"),
])
def test_kafka_cluster_refuses_what_msk_or_ssm_would(kw, arg, words):
    base = dict(cluster_name="c", subnet_ids=["subnet-a", "subnet-b", "subnet-c"], security_group_ids=["sg"],
                kms_key_arn=KEY_W)
    with pytest.raises(ComponentArgsError) as err:
        KafkaCluster("kafka", KafkaClusterArgs(**{**base, **kw}))
    assert err.value.arg == arg and words in str(err.value)


def test_kafka_cluster_takes_the_longest_parameter_name_its_region_allows():
    from components.streaming import ssm_arn_length, ssm_parameter_name_problem
    assert ssm_arn_length("/" + "k" * 966) == 1011 and ssm_parameter_name_problem("/" + "k" * 966) is None
    assert ssm_parameter_name_problem("/" + "k" * 961, "ap-southeast-2") is None
    assert ssm_arn_length("ExampleParameterName", "us-east-2") == 65  # the CloudFormation guide's example


SRC = "arn:aws:kafka:us-east-1:123456789012:cluster/regionpair-prod-kafka/abc-1"
DST = "arn:aws:kafka:us-west-2:123456789012:cluster/regionpair-dr-kafka/def-1"


def test_replicator_copies_identically_syncs_offsets_and_its_role_is_least_privilege():
    resources = render(lambda p: KafkaReplicator("replicator", KafkaReplicatorArgs(
        replicator_name="regionpair-dr-from-us-east-1", source_cluster_arn=SRC, source_subnet_ids=["subnet-s"],
        target_cluster_arn=DST, target_subnet_ids=["subnet-t"],
        target_security_group_ids=["sg-t"], account_id=ACCOUNT), opts=opts(p)))
    rep = one(resources, "aws:msk/replicator:Replicator")
    assert rep["provider"] == "aws-us-west-2"
    info = rep["inputs"]["replicationInfoList"]
    assert (info["sourceKafkaClusterArn"], info["targetKafkaClusterArn"]) == (SRC, DST)
    topics = info["topicReplications"][0]
    assert topics["copyTopicConfigurations"] is True and topics["detectAndCopyNewTopics"] is True
    assert topics["topicNameConfiguration"] == {"type": "IDENTICAL"}
    groups = info["consumerGroupReplications"][0]
    assert groups["synchroniseConsumerGroupOffsets"] is True and groups["detectAndCopyNewConsumerGroups"] is True
    clusters = rep["inputs"]["kafkaClusters"]
    assert [c["amazonMskCluster"]["mskClusterArn"] for c in clusters] == [SRC, DST]
    # cross-region: no security groups for the source, the target's (MSK Developer Guide, "Network requirements")
    assert clusters[0]["vpcConfig"] == {"subnetIds": ["subnet-s"]}
    assert clusters[1]["vpcConfig"] == {"subnetIds": ["subnet-t"], "securityGroupsIds": ["sg-t"]}
    policy = json.loads(one(resources, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"ClusterPermissions", "TopicPermissions", "GroupPermissions"}
    assert all(a.startswith("kafka-cluster:") and "*" not in a for s in policy["Statement"] for a in s["Action"])
    # the documented execution-role permissions (AWSMSKReplicatorExecutionRole), on both clusters only;
    # WriteDataIdempotently on the source as well as the target ("Service execution role")
    assert "kafka-cluster:WriteDataIdempotently" in by_sid["ClusterPermissions"]["Action"]
    assert by_sid["ClusterPermissions"]["Resource"] == [SRC, DST]
    assert by_sid["TopicPermissions"]["Resource"] == [a.replace(":cluster/", ":topic/") + "/*" for a in (SRC, DST)]
    assert by_sid["GroupPermissions"]["Resource"] == [a.replace(":cluster/", ":group/") + "/*" for a in (SRC, DST)]
    assert sorted(by_sid["GroupPermissions"]["Action"]) == ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    assert not [r for s in policy["Statement"] for r in s["Resource"] if ":cluster/*" in r or "kafka:*" in r]
    trust = json.loads(one(resources, "aws:iam/role:Role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "kafka.amazonaws.com"}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# ---- storage -----------------------------------------------------------------------------------

def test_bucket_is_versioned_encrypted_private_tls_only_with_the_lifecycle():
    resources = render(lambda p: Bucket("data", BucketArgs(bucket_name="regionpair-dr-data", kms_key_arn=KEY_W),
                                        opts=opts(p)))
    assert one(resources, "aws:s3/bucketVersioning:BucketVersioning")["inputs"]["versioningConfiguration"] == \
        {"status": "Enabled"}
    sse = one(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    rule = sse["inputs"]["rules"][0]
    assert rule["bucketKeyEnabled"] is True
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_W}
    pab = one(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    policy = json.loads(one(resources, "aws:s3/bucketPolicy:BucketPolicy")["inputs"]["policy"])
    deny = policy["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    life = one(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]["rules"][0]
    assert life["status"] == "Enabled"
    assert [(t["days"], t["storageClass"]) for t in life["transitions"]] == [(90, "GLACIER"), (730, "DEEP_ARCHIVE")]
    assert life["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert life["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert not of_type(resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert one(resources, "aws:s3/bucket:Bucket")["inputs"]["forceDestroy"] is False
    children_follow_the_convention(resources, "data")


def test_backups_bucket_is_locked_in_compliance_mode():
    resources = render(lambda p: Bucket("backups", BucketArgs(bucket_name="regionpair-dr-backups", kms_key_arn=KEY_W,
                                                              object_lock_days=45), opts=opts(p)))
    assert one(resources, "aws:s3/bucket:Bucket")["inputs"]["objectLockEnabled"] is True
    lock = one(resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")["inputs"]
    assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 45}


def test_replication_lives_on_the_primary_bucket_with_rtc_and_the_dr_key():
    def build(p):
        east = aws.Provider("aws-us-east-1", region="us-east-1")
        BucketReplication("data-replication", BucketReplicationArgs(
            source_provider=east, source_region="us-east-1", destination_region="us-west-2",
            source_bucket="regionpair-prod-data", source_bucket_arn="arn:aws:s3:::regionpair-prod-data",
            source_kms_key_arn=KEY_E, destination_bucket_arn="arn:aws:s3:::regionpair-dr-data",
            destination_kms_key_arn=KEY_W, account_id=ACCOUNT), opts=opts(p))
    resources = render(build)
    config = one(resources, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert config["provider"] == "aws-us-east-1"
    assert config["inputs"]["bucket"] == "regionpair-prod-data"
    rule = config["inputs"]["rules"][0]
    assert rule["status"] == "Enabled"
    assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
    dest = rule["destination"]
    assert dest["bucket"] == "arn:aws:s3:::regionpair-dr-data"
    assert dest["encryptionConfiguration"] == {"replicaKmsKeyId": KEY_W}
    assert dest["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert dest["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"] == {"status": "Enabled"}
    policy = json.loads(one(resources, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    resources_named = {r for s in policy["Statement"] for r in s["Resource"]}
    prod, dr = "arn:aws:s3:::regionpair-prod-data", "arn:aws:s3:::regionpair-dr-data"
    assert resources_named == {prod, f"{prod}/*", dr, f"{dr}/*", KEY_E, KEY_W}
    assert all("*" not in a for s in policy["Statement"] for a in s["Action"])

    def grants(action, resource):
        return [s for s in policy["Statement"] if action in s["Action"] and resource in s["Resource"]]

    # forward (the declared configuration) and reverse (what a failback puts on the DR bucket)
    for source, dest, src_key, dst_key, src_region, dst_region in (
            (prod, dr, KEY_E, KEY_W, "us-east-1", "us-west-2"), (dr, prod, KEY_W, KEY_E, "us-west-2", "us-east-1")):
        assert grants("s3:GetReplicationConfiguration", source)
        assert grants("s3:GetObjectVersionForReplication", f"{source}/*")
        assert grants("s3:ReplicateObject", f"{dest}/*")
        (decrypt,) = grants("kms:Decrypt", src_key)
        assert decrypt["Condition"]["StringLike"] == {"kms:ViaService": f"s3.{src_region}.amazonaws.com",
                                                      "kms:EncryptionContext:aws:s3:arn": [f"{source}/*", source]}
        (encrypt,) = grants("kms:GenerateDataKey", dst_key)
        assert encrypt["Condition"]["StringLike"]["kms:ViaService"] == f"s3.{dst_region}.amazonaws.com"
        assert encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [f"{dest}/*", dest]
        # S3 Bucket Keys: S3 decrypts with the replica key too, through S3 of the destination's region
        (replica_decrypt,) = grants("kms:Decrypt", dst_key)
        assert replica_decrypt["Condition"]["StringLike"] == {
            "kms:ViaService": f"s3.{dst_region}.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": [f"{dest}/*", dest]}
    # least privilege still: a key decrypts only its own bucket's objects, replicas go only to the other bucket
    assert not grants("kms:Decrypt", KEY_E)[0]["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"][1] == dr
    assert not [s for s in policy["Statement"] if "s3:ReplicateObject" in s["Action"]
                and set(s["Resource"]) & {prod, dr}]


DR_DATA, DR_BACKUPS = "arn:aws:s3:::regionpair-dr-data", "arn:aws:s3:::regionpair-dr-backups"


def _batch_role(**kw):
    from components.storage import BatchReplicationRole, BatchReplicationRoleArgs
    args = {"region": "us-west-2", "source_bucket_arn": DR_DATA, "report_bucket_arn": DR_BACKUPS,
            "report_kms_key_arn": KEY_W, **kw}
    return lambda p: BatchReplicationRole("data-batch-replication", BatchReplicationRoleArgs(**args), opts=opts(p))


def test_batch_replication_role_may_replicate_one_bucket_and_write_only_its_report_prefix():
    """Exactly what an S3ReplicateObject job with a generated (and stored) manifest needs: AWS's
    documented Batch Replication policy, scoped to DR's data bucket, one prefix of the backups
    bucket, and the backups bucket's key through S3 of that region."""
    resources = render(_batch_role())
    children_follow_the_convention(resources, "data-batch-replication")
    trust = json.loads(one(resources, "aws:iam/role:Role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]
    policy = json.loads(one(resources, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    prefix = f"{DR_BACKUPS}/regionpair/batch-replication/*"
    granted = {(a, r) for s in policy["Statement"] for a in s["Action"] for r in s["Resource"]}
    assert granted == {
        ("s3:InitiateReplication", f"{DR_DATA}/*"),
        ("s3:GetReplicationConfiguration", DR_DATA), ("s3:PutInventoryConfiguration", DR_DATA),
        ("s3:GetObject", prefix), ("s3:GetObjectVersion", prefix), ("s3:PutObject", prefix),
        ("kms:Decrypt", KEY_W), ("kms:GenerateDataKey", KEY_W)}
    (kms,) = [s for s in policy["Statement"] if s["Resource"] == [KEY_W]]
    assert kms["Condition"] == {"StringLike": {"kms:ViaService": "s3.us-west-2.amazonaws.com",
                                               "kms:EncryptionContext:aws:s3:arn": [prefix, DR_BACKUPS]}}
    assert all("Condition" not in s for s in policy["Statement"] if s is not kms)
    # nothing may write into the replicated bucket, nor read its objects' data
    assert not [g for g in granted if g[0] in ("s3:PutObject", "s3:GetObject") and g[1].startswith(DR_DATA)]


@pytest.mark.parametrize("kw, arg", [({"report_prefix": "/reports/"}, "report_prefix"),
                                     ({"report_prefix": "reports/*"}, "report_prefix"),
                                     ({"region": "west"}, "region"),
                                     ({"report_bucket_arn": DR_DATA}, "report_bucket_arn"),
                                     ({"source_bucket_arn": "regionpair-dr-data"}, "source_bucket_arn")])
def test_batch_replication_role_bad_args(kw, arg):
    harness.use_mocks()
    with pytest.raises(ComponentArgsError) as err:
        _batch_role(**kw)(None)
    assert err.value.arg == arg


@pytest.mark.parametrize("kw, arg", [({"bucket_name": "Bad_Name"}, "bucket_name"),
                                     ({"bucket_name": "192.168.5.4"}, "bucket_name"),
                                     ({"bucket_name": "xn--bucket"}, "bucket_name"),
                                     ({"bucket_name": "data-s3alias"}, "bucket_name"),
                                     *[({"bucket_name": name}, "bucket_name") for name in (
                                         "sthree-data", "amzn-s3-demo-data", "data--ol-s3", "data.mrap",
                                         "data--x-s3", "data--table-s3")],
                                     ({"deep_archive_after_days": 120}, "deep_archive_after_days"),
                                     ({"object_lock_days": 0}, "object_lock_days"),
                                     # expiry only after the last transition, never before the lock ends
                                     ({"expire_after_days": 500}, "expire_after_days"),
                                     ({"expire_after_days": 800, "object_lock_days": 900}, "expire_after_days"),
                                     # a destroy cannot empty a bucket under COMPLIANCE retention
                                     ({"object_lock_days": 30, "force_destroy": True}, "force_destroy")])
def test_bucket_bad_args(kw, arg):
    with pytest.raises(ComponentArgsError) as err:
        Bucket("data", BucketArgs(**{"bucket_name": "ok-name", "kms_key_arn": KEY_W, **kw}))
    assert err.value.arg == arg


# ---- dns ---------------------------------------------------------------------------------------

def test_primary_records_are_guarded_by_the_pin_check_and_the_endpoint_check_only_alarms():
    """A database name moves only when the runbook pins it: the records name the pin check (a
    CALCULATED check with threshold 0, disabled: always healthy), never the endpoint check, whose
    failure pages (alarm in us-east-1) and moves nothing."""
    def build(p):
        east = aws.Provider("aws-us-east-1", region="us-east-1")
        FailoverRecords("dns", FailoverRecordsArgs(
            zone_id="Z0123", failover="PRIMARY", set_identifier="prod-us-east-1",
            records={"payments": ("payments.example.com", "db.example")}, ttl_seconds=45,
            health_check=HealthCheckSpec(fqdn="api.example.com", interval_seconds=10, failure_threshold=2),
            alarm_provider=east, alarm_topic_arn="arn:aws:sns:us-east-1:1:t"), opts=opts(p))
    rendered = harness.render_program(lambda: build(aws.Provider("aws-us-west-2", region="us-west-2")))
    resources = rendered.resources
    endpoint = one(resources, "aws:route53/healthCheck:HealthCheck", "dns-health")
    pin = one(resources, "aws:route53/healthCheck:HealthCheck", "dns-pin")
    hc = endpoint["inputs"]
    assert (hc["fqdn"], hc["requestInterval"], hc["failureThreshold"], hc["type"]) == ("api.example.com", 10, 2, "HTTPS")
    assert (pin["inputs"]["type"], pin["inputs"]["childHealthThreshold"], pin["inputs"]["disabled"],
            pin["inputs"]["invertHealthcheck"]) == ("CALCULATED", 0, True, False)
    record = one(resources, "aws:route53/record:Record")
    assert record["inputs"]["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert record["inputs"]["ttl"] == 45 and record["inputs"]["records"] == ["db.example"]
    assert record["inputs"]["setIdentifier"] == "prod-us-east-1"
    # the record's health check is the pin check (by the engine's dependency record), not the endpoint's
    assert record["property_dependencies"]["healthCheckId"] == [pin["urn"]]
    alarm = one(resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm["provider"] == "aws-us-east-1"
    assert (alarm["inputs"]["namespace"], alarm["inputs"]["metricName"]) == ("AWS/Route53", "HealthCheckStatus")
    assert alarm["property_dependencies"]["dimensions"] == [endpoint["urn"]]
    assert alarm["inputs"]["alarmActions"] == ["arn:aws:sns:us-east-1:1:t"]


def test_pulumi_up_never_resets_the_pin_of_a_failover():
    """health-check-inversion pins DR by inverting the pin check; a later `pulumi up -s prod` must
    leave the inversion as the runbook set it (ignore_changes), while every other input of the
    checks and the records stays Pulumi's (the pin check stays declared disabled)."""
    def build(p):
        FailoverRecords("dns", FailoverRecordsArgs(
            zone_id="Z0123", failover="PRIMARY", set_identifier="prod-us-east-1",
            records={"payments": ("payments.example.com", "db.example")},
            health_check=HealthCheckSpec(fqdn="api.example.com"), alarm_provider=p,
            alarm_topic_arn="arn:aws:sns:us-east-1:1:t"), opts=opts(p))
    resources = render(build)
    pin = one(resources, "aws:route53/healthCheck:HealthCheck", "dns-pin")["inputs"]
    assert (pin["disabled"], pin["invertHealthcheck"]) == (True, False)  # declared at creation: not pinned
    ignored = {r["name"]: r["ignore_changes"] for r in harness.LAST["registrations"] if r["custom"]}
    # the engine's property names: a misspelt name would be ignored silently and protect nothing
    assert ignored.pop("dns-pin") == ["invertHealthcheck"] and "invertHealthcheck" in pin
    assert all(v == [] for v in ignored.values()), ignored


def test_secondary_records_need_no_health_check():
    resources = render(lambda p: FailoverRecords("dns", FailoverRecordsArgs(
        zone_id="Z0123", failover="SECONDARY", set_identifier="dr-us-west-2",
        records={"payments": ("payments.example.com", "db-dr.example")}), opts=opts(p)))
    record = one(resources, "aws:route53/record:Record")["inputs"]
    assert record["failoverRoutingPolicies"] == [{"type": "SECONDARY"}] and "healthCheckId" not in record
    assert not of_type(resources, "aws:route53/healthCheck:HealthCheck")


def test_primary_without_health_check_is_refused():
    with pytest.raises(ComponentArgsError, match="endpoint check that alarms") as err:
        FailoverRecords("dns", FailoverRecordsArgs(zone_id="Z1", failover="PRIMARY", set_identifier="x",
                                                   records={"a": ("a.example.com", "b")}))
    assert err.value.arg == "health_check"


# ---- alarms ------------------------------------------------------------------------------------

def test_replicator_failure_alarm_is_the_documented_metric_and_fires_on_the_first_failure():
    """MSK Developer Guide, MSK Replicator "Metrics reference": ReplicatorFailure, AWS/Kafka,
    dimension ReplicatorName, Count, Sum."""
    spec = replicator_failure("regionpair-dr-from-us-east-1")
    assert (spec.namespace, spec.metric_name, dict(spec.dimensions)) == \
        ("AWS/Kafka", "ReplicatorFailure", {"ReplicatorName": "regionpair-dr-from-us-east-1"})
    assert (spec.statistic, spec.threshold, spec.comparison, spec.treat_missing_data) == \
        ("Sum", 0, "GreaterThanThreshold", "notBreaching")
    render(lambda p: Alarms("alarms", AlarmsArgs(topic_name="t", kms_key_arn=KEY_W, alarms=[spec]), opts=opts(p)))
    zero_below = dataclasses.replace(spec, comparison="LessThanThreshold")
    with pytest.raises(ComponentArgsError) as err:
        Alarms("alarms", AlarmsArgs(topic_name="t", kms_key_arn=KEY_W, alarms=[zero_below]))
    assert "positive threshold" in str(err.value)


def test_alarm_thresholds_derive_from_the_rpo():
    assert replica_lag("db", 300).threshold == 150
    assert replicator_lag("rep", 300).threshold == 150_000
    assert free_storage("db", 200).threshold == int(200 * 0.1 * 1024 ** 3)
    assert free_storage("db", 200).comparison == "LessThanThreshold"


def _fires(spec, per_minute):
    """CloudWatch's evaluation of a static-threshold alarm on one-minute datapoints (period 60):
    ALARM when `datapoints_to_alarm` of the last `evaluation_periods` breach. Returns the minutes at
    which it is in ALARM."""
    m = spec.datapoints_to_alarm or spec.evaluation_periods
    breach = [v > spec.threshold if spec.comparison == "GreaterThanThreshold" else v < spec.threshold
              for v in per_minute]
    return [i for i in range(len(breach)) if i + 1 >= spec.evaluation_periods and
            sum(breach[i + 1 - spec.evaluation_periods:i + 1]) >= m]


def test_replica_lag_alarm_stays_quiet_on_an_idle_night_and_fires_on_a_stall():
    """Issue 10 point 8: a quiet source's ReplicaLag climbs for up to five minutes and drops when
    something writes; the old alarm (3 × Maximum > RPO/2) fired on it every night."""
    spec = replica_lag("db", 300)
    assert (spec.threshold, spec.statistic, spec.evaluation_periods, spec.datapoints_to_alarm) == (150, "Minimum", 6, 6)
    # an idle night: per-minute minimum of a saw-tooth that resets every 5 minutes (0, 60, …, 240, 0, …)
    idle = [(i % 5) * 60 for i in range(8 * 60)]
    assert _fires(spec, idle) == []
    # the same night under the old alarm would have paged every five minutes
    old = AlarmSpec(name="old", description="", namespace="AWS/RDS", metric_name="ReplicaLag", dimensions={},
                    threshold=150, evaluation_periods=1)
    assert len(_fires(old, [(i % 5) * 60 + 59 for i in range(60)])) >= 12
    # a stall: the lag grows by 60 s a minute and never resets → fires, within ~6 min of passing 150 s
    stall = [i * 60 for i in range(20)]
    fired = _fires(spec, stall)
    assert fired and fired[0] == 8 and stall[fired[0]] - spec.threshold <= 6 * 60


def test_s3_replication_alarms_watch_the_rule_with_s3s_dimensions():
    latency = s3_replication_latency("regionpair-dr", "src", "dst", "primary-to-dr", 300)
    failed = s3_replication_failures("regionpair-dr", "src", "dst", "primary-to-dr")
    for a in (latency, failed):
        assert a.namespace == "AWS/S3"
        assert a.dimensions == {"SourceBucket": "src", "DestinationBucket": "dst", "RuleId": "primary-to-dr"}
        assert a.treat_missing_data == "notBreaching"  # a quiet bucket publishes nothing
    assert (latency.metric_name, latency.statistic, latency.threshold) == ("ReplicationLatency", "Maximum", 150)
    assert s3_replication_latency("p", "s", "d", "r", 7200).threshold == 900  # never beyond RTC's 15 minutes
    assert (failed.metric_name, failed.statistic, failed.threshold, failed.comparison) == (
        "OperationsFailedReplication", "Sum", 0, "GreaterThanThreshold")
    assert _fires(failed, [0, 0, 1, 0]) == [2]


@pytest.mark.parametrize("change, arg, fix", [
    ({"period_seconds": 30}, "period_seconds", "multiple of 60"),
    ({"period_seconds": 90}, "period_seconds", "multiple of 60"),
    ({"evaluation_periods": 1441}, "evaluation_periods", "at most 86400"),
    ({"period_seconds": 3600, "evaluation_periods": 169}, "evaluation_periods", "at most 604800"),
    ({"datapoints_to_alarm": 4}, "datapoints_to_alarm", "1 to evaluation_periods"),
    ({"treat_missing_data": "zero"}, "treat_missing_data", "notBreaching"),
    ({"threshold": 0, "comparison": "LessThanThreshold"}, "threshold", "positive"),
])
def test_alarms_refuse_what_cloudwatch_refuses(change, arg, fix):
    """CloudWatch PutMetricAlarm: Period 10/20/30 (high-resolution custom metrics only) or a multiple
    of 60; Period × EvaluationPeriods ≤ one day (period < 1 h) or seven days; DatapointsToAlarm ≤
    EvaluationPeriods; TreatMissingData one of four values."""
    good = dict(name="a", description="d", namespace="AWS/RDS", metric_name="ReplicaLag", dimensions={"x": "y"},
                threshold=10, evaluation_periods=3)
    accepted = render(lambda p: Alarms("ok", AlarmsArgs(topic_name="t", kms_key_arn=KEY_W, alarms=[AlarmSpec(**good)]),
                                       opts=opts(p)))
    assert one(accepted, "aws:cloudwatch/metricAlarm:MetricAlarm")["inputs"]["period"] == 60
    with pytest.raises(ComponentArgsError, match=fix) as err:
        Alarms("bad", AlarmsArgs(topic_name="t", kms_key_arn=KEY_W, alarms=[AlarmSpec(**{**good, **change})]))
    assert err.value.arg == f"alarms[a].{arg}"


def test_alarms_notify_a_kms_encrypted_topic():
    resources = render(lambda p: Alarms("alarms", AlarmsArgs(
        topic_name="regionpair-dr-alarms", kms_key_arn=KEY_W, email="sre@example.com",
        alarms=[replica_lag("regionpair-dr-payments", 60)]), opts=opts(p)))
    topic = one(resources, "aws:sns/topic:Topic")["inputs"]
    assert topic["kmsMasterKeyId"] == KEY_W
    alarm = one(resources, "aws:cloudwatch/metricAlarm:MetricAlarm")["inputs"]
    assert (alarm["metricName"], alarm["threshold"], alarm["dimensions"]) == \
        ("ReplicaLag", 30, {"DBInstanceIdentifier": "regionpair-dr-payments"})
    assert alarm["alarmActions"] == [f"arn:aws:sns:us-west-2:{ACCOUNT}:regionpair-dr-alarms"]
    assert one(resources, "aws:sns/topicSubscription:TopicSubscription")["inputs"]["endpoint"] == "sre@example.com"


# ---- access ------------------------------------------------------------------------------------

def test_runbook_role_lists_only_runbook_actions_on_these_stacks_resources():
    def build(p):
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL],
            role_name="regionpair-dr-runbooks", account_id=ACCOUNT, name_prefix="regionpair", zone_id="Z0123",
            health_check_ids=["hc-1"],
            regions=[RegionScope(region="us-east-1", db_security_group_ids=["sg-e"], kafka_cluster_arns=[SRC],
                                 bucket_arns=["arn:aws:s3:::prod-data"], kms_key_arns=[KEY_E],
                                 topic_arns=["arn:aws:sns:us-east-1:1:t"], bootstrap_parameter="/regionpair/kafka/b"),
                     RegionScope(region="us-west-2", db_security_group_ids=["sg-w"], kafka_cluster_arns=[DST],
                                 replicator_arns=["arn:aws:kafka:us-west-2:1:replicator/r/x"])]), opts=opts(p))
    resources = render(build)
    policy = json.loads(one(resources, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    allowed = {a for actions in RUNBOOK_ACTIONS.values() for a in actions}
    for s in policy["Statement"]:
        assert s["Effect"] == "Allow"
        for action in s["Action"]:
            assert "*" not in action and action in allowed, action
        resources_ = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if s["Sid"] == "ReadMetrics":
            assert s["Action"] == ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"]
            continue
        if s["Sid"] == "PublishBackupMetrics":  # no resource scope in IAM: a namespace condition instead
            assert s["Action"] == ["cloudwatch:PutMetricData"] and s["Condition"]
            continue
        if s["Sid"] in ("DescribeSecurityGroups", "FindHostedZone"):  # read-only, no resource scope in IAM
            assert s["Action"] in (["ec2:DescribeSecurityGroups"], ["route53:ListHostedZonesByName"])
            continue
        for r in resources_:
            assert r.startswith("arn:aws:"), r
            assert r != "*" and (ACCOUNT in r or r.startswith(("arn:aws:s3:::", "arn:aws:route53:::")) or r in (SRC, DST)
                                 or r.startswith("arn:aws:kafka:") or r.startswith("arn:aws:sns:")), r
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["FenceDatabaseSecurityGroups"]["Resource"] == [
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-e", f"arn:aws:ec2:us-west-2:{ACCOUNT}:security-group/sg-w"]
    assert f"arn:aws:rds:us-west-2:{ACCOUNT}:db:regionpair-*" in by_sid["RdsFailoverAndBackups"]["Resource"]
    assert "rds:PromoteReadReplica" in by_sid["RdsFailoverAndBackups"]["Action"]
    assert by_sid["Route53HealthChecks"]["Resource"] == ["arn:aws:route53:::healthcheck/hc-1"]
    assert by_sid["Route53FailoverRecords"]["Resource"] == ["arn:aws:route53:::hostedzone/Z0123"]
    assert by_sid["ClientParameters"]["Resource"] == [f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/regionpair/kafka/b"]
    assert by_sid["BucketObjectsAndRunLock"]["Resource"] == ["arn:aws:s3:::prod-data/*"]
    trust = json.loads(one(resources, "aws:iam/role:Role")["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"AWS": [ONCALL]}  # from config, never the account root


def test_runbook_role_refuses_a_broad_prefix():
    with pytest.raises(ComponentArgsError) as err:
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL], role_name="r", account_id=ACCOUNT, name_prefix="r", zone_id="Z1",
                                                regions=[RegionScope(region="us-east-1", db_security_group_ids=[])]))
    assert err.value.arg == "name_prefix"


def test_runbook_role_may_pass_the_s3_replication_role_to_s3_only():
    """Disabling, enabling or reversing S3 replication (PutBucketReplication) passes the role."""
    role = f"arn:aws:iam::{ACCOUNT}:role/data-replication"

    def build(p):
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL],
            role_name="regionpair-dr-runbooks", account_id=ACCOUNT, name_prefix="regionpair", zone_id="Z0123",
            regions=[RegionScope(region="us-east-1", db_security_group_ids=["sg-e"],
                                 bucket_arns=["arn:aws:s3:::prod-data"], replication_role_arns=[role]),
                     RegionScope(region="us-west-2", db_security_group_ids=["sg-w"])]), opts=opts(p))
    policy = json.loads(one(render(build), "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    passing = by_sid["PassReplicationRoleToS3"]
    assert passing["Action"] == ["iam:PassRole"] and passing["Resource"] == [role]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}
    assert "s3:PutReplicationConfiguration" in by_sid["Buckets"]["Action"]
    assert [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]] == [passing]


def test_runbook_role_may_start_only_replication_jobs_passing_only_the_batch_role():
    """The failback's S3 Batch Replication: CreateJob (no resource scope in IAM) only for the
    S3ReplicateObject operation, PassRole on exactly the batch role and only to Batch Operations,
    DescribeJob on the region's jobs, ListJobs (read-only) to find the job of an interrupted run.
    Without a batch role in any region, none of it."""
    batch = f"arn:aws:iam::{ACCOUNT}:role/data-batch-replication-role-1a2b"
    replication = f"arn:aws:iam::{ACCOUNT}:role/data-replication"

    def policy_with(batch_roles):
        def build(p):
            RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL],
                role_name="regionpair-dr-runbooks", account_id=ACCOUNT, name_prefix="regionpair", zone_id="Z0123",
                regions=[RegionScope(region="us-east-1", db_security_group_ids=["sg-e"],
                                     replication_role_arns=[replication]),
                         RegionScope(region="us-west-2", db_security_group_ids=["sg-w"],
                                     batch_replication_role_arns=batch_roles)]), opts=opts(p))
        return json.loads(one(render(build), "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])["Statement"]

    statements = policy_with([batch])
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["CreateBatchReplicationJobs"] == {
        "Sid": "CreateBatchReplicationJobs", "Effect": "Allow", "Action": ["s3:CreateJob"], "Resource": "*",
        "Condition": {"StringEquals": {"s3:RequestJobOperation": "S3ReplicateObject"}}}
    assert by_sid["PassBatchReplicationRole"] == {
        "Sid": "PassBatchReplicationRole", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": [batch],
        "Condition": {"StringEquals": {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}}}
    assert by_sid["WatchBatchReplicationJobs"]["Action"] == ["s3:DescribeJob"]
    assert by_sid["WatchBatchReplicationJobs"]["Resource"] == [f"arn:aws:s3:us-west-2:{ACCOUNT}:job/*"]
    assert by_sid["FindBatchReplicationJobs"]["Action"] == ["s3:ListJobs"]
    # the replication role still goes to S3 only, the batch role to Batch Operations only
    passing = [s for s in statements if "iam:PassRole" in s["Action"]]
    assert sorted((s["Resource"][0], s["Condition"]["StringEquals"]["iam:PassedToService"]) for s in passing) == [
        (batch, "batchoperations.s3.amazonaws.com"), (replication, "s3.amazonaws.com")]

    without = policy_with([])
    assert not [s for s in without if {"s3:CreateJob", "s3:DescribeJob", "s3:ListJobs"} & set(s["Action"])]
    assert [s["Sid"] for s in without if "iam:PassRole" in s["Action"]] == ["PassReplicationRoleToS3"]


def _backup_policy(databases=("payments",), record_names=()):
    def build(p):
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL],
            role_name="regionpair-dr-runbooks", account_id=ACCOUNT, name_prefix="regionpair", zone_id="Z0123",
            databases=list(databases), record_names=list(record_names),
            regions=[RegionScope(region="us-east-1", db_security_group_ids=["sg-e"],
                                 bucket_arns=["arn:aws:s3:::prod-backups"], kms_key_arns=[KEY_E],
                                 rebuild_identifiers=["regionpair-prod-payments"]),
                     RegionScope(region="us-west-2", db_security_group_ids=["sg-w"],
                                 bucket_arns=["arn:aws:s3:::dr-backups"], kms_key_arns=[KEY_W],
                                 rebuild_identifiers=["regionpair-dr-payments"])]), opts=opts(p))
    policy = json.loads(one(render(build), "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    return policy, {s["Sid"]: s for s in policy["Statement"]}


def test_runbook_role_has_the_backup_runbooks_calls_and_deletes_only_their_own():
    """docs/backups.md lists the calls; the two deletions are limited by the runbooks' own tags, so
    neither a stack's database nor a hand-made snapshot can be deleted with this role."""
    from runbooks.adapters.aws import TEMPORARY_TAG, CloudWatchMetrics
    from runbooks.backups.ports import MANAGED_TAG, MANAGED_VALUE
    from runbooks.backups.restored import instance_name
    from runbooks.snapshot import snapshot_id
    policy, by_sid = _backup_policy()
    general = by_sid["RdsFailoverAndBackups"]
    for action in ("rds:CreateDBSnapshot", "rds:CopyDBSnapshot", "rds:DescribeDBSnapshots",
                   "rds:DescribeDBInstanceAutomatedBackups", "rds:RestoreDBInstanceToPointInTime",
                   "rds:AddTagsToResource"):
        assert action in general["Action"], action
    assert f"arn:aws:rds:us-west-2:{ACCOUNT}:auto-backup:*" in general["Resource"]
    # nothing but these two statements may delete anything in RDS
    deleting = {s["Sid"] for s in policy["Statement"] if any(a.startswith("rds:Delete") for a in s["Action"])}
    assert deleting == {"DeleteOnlyVerifyBackupTemporaryInstances", "DeleteOnlySnapshotRunbookSnapshots"}
    temp = by_sid["DeleteOnlyVerifyBackupTemporaryInstances"]
    assert temp["Action"] == ["rds:DeleteDBInstance"]
    assert temp["Resource"] == [f"arn:aws:rds:{r}:{ACCOUNT}:db:verify-payments-*" for r in ("us-east-1", "us-west-2")]
    assert temp["Condition"] == {"StringEquals": {f"aws:ResourceTag/{TEMPORARY_TAG}": "true"}}
    snaps = by_sid["DeleteOnlySnapshotRunbookSnapshots"]
    assert snaps["Action"] == ["rds:DeleteDBSnapshot"]
    # the runbooks' own snapshots, never one of the compliance tier (retention tiers, docs/backups.md)
    assert snaps["Condition"] == {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG}": MANAGED_VALUE},
                                  "StringNotEquals": {"aws:ResourceTag/regionpair:retention-tier": "compliance"}}
    # the names the runbooks really use fall under the ARNs
    from fnmatch import fnmatchcase
    sid = snapshot_id("payments", "snapshot-20261122T053000Z-ab12")
    assert any(fnmatchcase(f"arn:aws:rds:us-west-2:{ACCOUNT}:snapshot:{sid}", r) for r in snaps["Resource"]), sid
    verify = instance_name("verify", "payments", "verify_backup-20261122T053000Z-ab12")
    assert any(fnmatchcase(f"arn:aws:rds:us-west-2:{ACCOUNT}:db:{verify}", r) for r in temp["Resource"]), verify
    restore = instance_name("restore", "payments", "restore-20261122T053000Z-ab12")
    restored = by_sid["RestoreToNewInstances"]
    assert any(fnmatchcase(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{restore}", r) for r in restored["Resource"]), restore
    assert not any(fnmatchcase(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{restore}", r) for r in temp["Resource"])
    assert "rds:DeleteDBInstance" not in restored["Action"] and "rds:DeleteDBInstance" not in general["Action"]
    publish = by_sid["PublishBackupMetrics"]
    assert publish["Condition"] == {"StringEquals": {"cloudwatch:namespace": [CloudWatchMetrics.NAMESPACE,
                                                                              CloudWatchMetrics.DR_NAMESPACE]}}
    assert by_sid["AuditEntriesRetention"] == {"Sid": "AuditEntriesRetention", "Effect": "Allow",
                                                "Action": ["s3:PutObjectRetention"], "Resource": [
                                                    r + "/regionpair/audit/*" for r in by_sid["Buckets"]["Resource"]]}
    assert "s3:GetObjectLockConfiguration" in by_sid["Buckets"]["Action"]
    for action in ("s3:ListBucketVersions", "s3:GetBucketVersioning"):
        assert action in by_sid["Buckets"]["Action"] and "arn:aws:s3:::dr-backups" in by_sid["Buckets"]["Resource"]
    for action in ("s3:GetObjectVersion", "s3:PutObject"):
        assert action in by_sid["BucketObjectsAndRunLock"]["Action"]
    assert "kms:DescribeKey" in by_sid["KeysOfThePair"]["Action"] and KEY_W in by_sid["KeysOfThePair"]["Resource"]


def test_runbook_role_point_9_least_privilege():
    """Issue 10 point 9: CreateGrant only for AWS services; no version deletion and DeleteObject only on
    the run lock; ModifyDBInstance only on the databases the failback renames (exact identifiers);
    ChangeResourceRecordSets only as CNAME UPSERTs of the named records, or not at all."""
    from fnmatch import fnmatchcase

    from runbooks.adapters.aws import S3Lock
    policy, by_sid = _backup_policy()
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    # kms:CreateGrant: only when RDS (an AWS service) asks on the runbook's behalf
    assert "kms:CreateGrant" not in by_sid["KeysOfThePair"]["Action"]
    grant = by_sid["GrantsOnlyForAwsServices"]
    assert grant["Action"] == ["kms:CreateGrant"] and KEY_W in grant["Resource"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert [s["Sid"] for s in policy["Statement"] if "kms:CreateGrant" in s["Action"]] == ["GrantsOnlyForAwsServices"]
    # no object version can be deleted; DeleteObject reaches the run lock only
    assert "s3:DeleteObjectVersion" not in actions
    lock = by_sid["ReleaseTheRunLock"]
    assert lock["Action"] == ["s3:DeleteObject"] and lock["Resource"] == [
        "arn:aws:s3:::dr-backups/regionpair/locks/*", "arn:aws:s3:::prod-backups/regionpair/locks/*"]
    assert [s["Sid"] for s in policy["Statement"] if "s3:DeleteObject" in s["Action"]] == ["ReleaseTheRunLock"]
    outputs_doc = type("O", (), {"project": "regionpair"})()
    assert fnmatchcase(f"arn:aws:s3:::dr-backups/{S3Lock(outputs_doc, None).key}", lock["Resource"][0])
    assert not fnmatchcase("arn:aws:s3:::dr-backups/orders/1.json", lock["Resource"][0])
    # ModifyDBInstance: only the named identifiers, never the prefix (restore-/verify-/-old- instances)
    assert "rds:ModifyDBInstance" not in by_sid["RdsFailoverAndBackups"]["Action"]
    assert [s["Sid"] for s in policy["Statement"] if "rds:ModifyDBInstance" in s["Action"]] == [
        "RenameOnlyTheStacksDatabasesAside"]
    assert by_sid["RenameOnlyTheStacksDatabasesAside"]["Resource"] == [
        f"arn:aws:rds:us-east-1:{ACCOUNT}:db:regionpair-prod-payments",
        f"arn:aws:rds:us-west-2:{ACCOUNT}:db:regionpair-dr-payments"]
    # the names the rebuild renames to (…-old-<time>) and restored instances are out of reach
    from runbooks.backups.restored import instance_name
    renamed = by_sid["RenameOnlyTheStacksDatabasesAside"]["Resource"]
    for other in ("regionpair-prod-payments-old-20261122053000", instance_name("restore", "payments", "restore-x")):
        assert not any(fnmatchcase(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:{other}", r) for r in renamed), other
    # the default strategy changes no record: no ChangeResourceRecordSets at all
    assert "route53:ChangeResourceRecordSets" not in actions


def test_runbook_role_upserts_only_the_named_cname_records():
    policy, by_sid = _backup_policy(record_names=["Payments.Example.com.", "orders.example.com"])
    upsert = by_sid["UpsertOnlyTheDatabaseRecords"]
    assert upsert["Action"] == ["route53:ChangeResourceRecordSets"]
    assert upsert["Resource"] == ["arn:aws:route53:::hostedzone/Z0123"]
    assert upsert["Condition"] == {"ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["orders.example.com", "payments.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"], "route53:ChangeResourceRecordSetsActions": ["UPSERT"]}}
    assert by_sid["Route53FailoverRecords"]["Action"] == ["route53:ListResourceRecordSets"]


@pytest.mark.parametrize("principals, fix", [
    ([], "name who may assume"),
    ([f"arn:aws:iam::{ACCOUNT}:root"], "a whole account"),
    ([ACCOUNT], "a whole account"),
    (["arn:aws:iam::123456789012:group/sre"], "role or user ARN"),
])
def test_runbook_role_trust_refuses_no_principal_and_a_whole_account(principals, fix):
    with pytest.raises(ComponentArgsError, match=fix) as err:
        RunbookRole("runbooks", RunbookRoleArgs(
            trusted_principal_arns=principals, role_name="r", account_id=ACCOUNT, name_prefix="regionpair",
            zone_id="Z1", regions=[RegionScope(region="us-east-1", db_security_group_ids=[])]))
    assert err.value.arg == "trusted_principal_arns"


def test_runbook_role_without_databases_grants_no_restore_or_instance_deletion():
    policy, by_sid = _backup_policy(databases=())
    assert "RestoreToNewInstances" not in by_sid and "DeleteOnlyVerifyBackupTemporaryInstances" not in by_sid
    assert not [s for s in policy["Statement"] if "rds:DeleteDBInstance" in s["Action"]]


def test_runbook_role_refuses_a_database_name_that_would_widen_the_arns():
    with pytest.raises(ComponentArgsError) as err:
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL], role_name="r", account_id=ACCOUNT, name_prefix="regionpair",
                                                zone_id="Z1", databases=["*"],
                                                regions=[RegionScope(region="us-east-1", db_security_group_ids=[])]))
    assert err.value.arg == "databases"


def test_writer_parameter_starts_on_the_given_bucket_and_pulumi_never_moves_it_back():
    from components.storage import WriterParameter, WriterParameterArgs
    resources = render(lambda p: WriterParameter("data-writers", WriterParameterArgs(
        parameter_name="/regionpair/s3/writer-bucket", initial_bucket="regionpair-prod-data"), opts=opts(p)))
    param = one(resources, "aws:ssm/parameter:Parameter")["inputs"]
    # the provider marks every parameter value secret
    assert (param["name"], param["type"], param["value"]) == ("/regionpair/s3/writer-bucket", "String",
                                                             {"secret": "regionpair-prod-data"})
    (reg,) = [r for r in harness.LAST["registrations"] if r["type"] == "aws:ssm/parameter:Parameter"]
    assert reg["ignore_changes"] == ["value"]
    children_follow_the_convention(resources, "data-writers")
    with pytest.raises(ComponentArgsError) as err:
        WriterParameter("w", WriterParameterArgs(parameter_name="writer-bucket", initial_bucket="b"))
    assert err.value.arg == "parameter_name"


def test_runbook_role_may_move_the_writer_parameter_in_each_region_and_nothing_else_in_ssm():
    def build(p):
        RunbookRole("runbooks", RunbookRoleArgs(trusted_principal_arns=[ONCALL],
            role_name="regionpair-dr-runbooks", account_id=ACCOUNT, name_prefix="regionpair", zone_id="Z0123",
            regions=[RegionScope(region=r, db_security_group_ids=["sg-x"], bootstrap_parameter="/regionpair/kafka/b",
                                 writer_parameter="/regionpair/s3/writer-bucket") for r in ("us-east-1", "us-west-2")]),
            opts=opts(p))
    policy = json.loads(one(render(build), "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    ssm = [s for s in policy["Statement"] if any(a.startswith("ssm:") for a in s["Action"])]
    assert [s["Sid"] for s in ssm] == ["ClientParameters"]
    assert ssm[0]["Action"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert ssm[0]["Resource"] == sorted(f"arn:aws:ssm:{r}:{ACCOUNT}:parameter/regionpair/{p}"
                                        for r in ("us-east-1", "us-west-2") for p in ("kafka/b", "s3/writer-bucket"))
