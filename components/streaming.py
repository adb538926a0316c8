"""Kafka on MSK: a cluster per region, and the MSK Replicator from primary to DR.

The cluster: three brokers across three zones, TLS between clients and brokers and inside the
cluster, the region's customer key at rest, IAM client authentication only, broker logs to a
KMS-encrypted log group, and a configuration that refuses to lose acknowledged writes
(replication factor 3, min ISR 2, no unclean leader election, no auto-created topics). Each
cluster is ready to be a cross-region MSK Replicator source (prod's for primary → DR, DR's for the
failback's reverse flow): multi-VPC private connectivity with IAM, and a cluster policy that lets
the MSK service (``kafka.amazonaws.com``) create its VPC connection, read the bootstrap brokers and
describe the cluster (MSK Developer Guide, "Network requirements" of MSK Replicator). MSK refuses
to create a cluster with multi-VPC auth turned on; the provider (terraform-provider-aws
``resourceClusterCreate``) creates it without and turns it on with UpdateConnectivity once ACTIVE.

The replicator (dr stack, in the target's region): topics copied under identical names with their
configurations and ACLs, new topics detected, consumer-group offsets synchronised, and a service
execution role with the documented permissions (AWS managed policy AWSMSKReplicatorExecutionRole,
WriteDataIdempotently included, "on both the source and target cluster" per "Service execution
role") limited to exactly its two clusters, their topics and their groups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.aws_limits import MSK_REPLICATOR_MIN_KAFKA, MSK_REPLICATOR_UNSUPPORTED_BROKERS, kafka_version_tuple
from components.common import assume_role_policy, child, policy_json, require
from contract.outputs import STOP_PATTERN

CLUSTER_TYPE = "regionpair:streaming:KafkaCluster"
REPLICATOR_TYPE = "regionpair:streaming:KafkaReplicator"
BROKERS = 3
SERVER_PROPERTIES = {
    "auto.create.topics.enable": "false",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "unclean.leader.election.enable": "false",
    "num.partitions": "6",
}
_NAME = re.compile(r"^[a-zA-Z0-9-]{1,64}$")
_REPLICATOR_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,127}$")
"""CreateReplicator: 1 to 128 characters, letters, digits and '-' (MSK API Reference)."""
REPLICATOR_SERVICE = "kafka.amazonaws.com"
SOURCE_CLUSTER_ACTIONS = ("kafka:CreateVpcConnection", "kafka:GetBootstrapBrokers", "kafka:DescribeClusterV2")
"""What a cross-region Replicator's source cluster policy grants the MSK service (MSK Developer Guide,
MSK Replicator "Network requirements")."""
SSM_NAME_MAX = 1011
SSM_MAX_DEPTH = 15
SHORTEST_REGION = "us-east-1"


def ssm_arn_length(name: str, region: str | None = None) -> int:
    """PutParameter's 1011 characters "include the characters in the ARN that precede the name"
    (arn:aws:ssm:us-east-2:111122223333:parameter/…; CloudFormation AWS::SSM::Parameter: "including
    the full length of the parameter ARN"). Unknown region: the shortest Region name."""
    region = region or SHORTEST_REGION
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return len(f"arn:{partition}:ssm:{region}:{'0' * 12}:parameter") + len(name) + (0 if name.startswith("/") else 1)


def ssm_parameter_name_problem(name: str, region: str | None = None) -> str | None:
    """What is wrong with an SSM parameter name by the PutParameter naming constraints (Systems Manager
    API Reference, PutParameter ``Name``): None when nothing."""
    if not re.match(r"^/[a-zA-Z0-9_./-]+$", name):
        return "an SSM path such as /app/kafka: a leading /, then only a-zA-Z0-9_.-/"
    if name.lstrip("/").lower().startswith(("aws", "ssm")):
        return "SSM refuses names prefixed with aws or ssm (case-insensitive); choose another first path segment"
    if ssm_arn_length(name, region) > SSM_NAME_MAX:
        return (f"at most {SSM_NAME_MAX} characters counting the ARN before the name (arn:aws:ssm:"
                f"{region or SHORTEST_REGION}:<account>:parameter…: {ssm_arn_length(name, region)})")
    if name.count("/") > SSM_MAX_DEPTH:
        return f"at most {SSM_MAX_DEPTH} levels of hierarchy"
    return None


def source_cluster_policy(cluster_arn: str) -> str:
    """The cluster policy a cross-region MSK Replicator needs on its source cluster: the MSK service
    principal may create the Replicator's VPC connection, read the bootstrap brokers and describe
    the cluster, on this cluster only."""
    return policy_json([{"Sid": "MskReplicatorSource", "Effect": "Allow", "Principal": {"Service": REPLICATOR_SERVICE},
                         "Action": list(SOURCE_CLUSTER_ACTIONS), "Resource": cluster_arn}])


@dataclass(frozen=True)
class KafkaClusterArgs:
    cluster_name: str
    """MSK cluster name. Required: it appears in every topic and group ARN."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Three private subnets in three zones, one broker each. Required."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups of the brokers. Required."""
    kms_key_arn: pulumi.Input[str]
    """Customer key for data at rest and the broker logs. Required."""
    kafka_version: str = "3.6.0"
    """MSK Kafka version. Default: 3.6.0."""
    broker_instance_type: str = "kafka.m5.large"
    """Broker instance type. Default: kafka.m5.large."""
    broker_volume_gb: int = 1000
    """EBS volume per broker. Default: 1000 GiB."""
    log_retention_days: int = 30
    """Retention of the broker log group. Default: 30 days."""
    bootstrap_parameter: str | None = None
    """SSM parameter where clients read the active bootstrap servers. Default: none created."""
    bootstrap_initial_value: pulumi.Input[str] | None = None
    """First value of that parameter (runbooks change it later; `pulumi up` does not revert it). Default: this cluster's brokers."""
    client_parameters: Mapping[str, str] = field(default_factory=dict)
    """Application name → its own parameter like ``bootstrap_parameter``, same first value. Default: none."""
    region: str | None = None
    """The cluster's Region: its SSM parameters' ARNs count toward their 1011-character name limit.
    Default: unknown (the shortest Region name is assumed)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


class KafkaCluster(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    source_policy: aws.msk.ClusterPolicy
    bootstrap_brokers: pulumi.Output[str]
    cluster_name: str
    bootstrap_parameter: str | None

    def __init__(self, name: str, args: KafkaClusterArgs, opts: pulumi.ResourceOptions | None = None):
        require(CLUSTER_TYPE, "cluster_name", args.cluster_name, bool(_NAME.match(args.cluster_name)),
                "letters, digits and dashes, at most 64 characters")
        require(CLUSTER_TYPE, "broker_volume_gb", args.broker_volume_gb, 1 <= args.broker_volume_gb <= 16384,
                "MSK allows 1 to 16384 GiB")
        if isinstance(args.subnet_ids, (list, tuple)):
            require(CLUSTER_TYPE, "subnet_ids", list(args.subnet_ids), len(args.subnet_ids) == BROKERS,
                    "three subnets in three zones: one broker per zone")
        require(CLUSTER_TYPE, "kafka_version", args.kafka_version,
                kafka_version_tuple(args.kafka_version) >= MSK_REPLICATOR_MIN_KAFKA,
                "MSK Replicator with identical topic names needs Kafka 2.8.1 or later")
        require(CLUSTER_TYPE, "broker_instance_type", args.broker_instance_type,
                args.broker_instance_type not in MSK_REPLICATOR_UNSUPPORTED_BROKERS,
                "MSK Replicator and multi-VPC connectivity do not support kafka.t3.small; use kafka.m5.large or larger")
        for key, param in [("bootstrap_parameter", args.bootstrap_parameter)] + [
                (f"client_parameters.{app}", p) for app, p in args.client_parameters.items()]:
            if param is not None:
                problem = ssm_parameter_name_problem(param, args.region)
                require(CLUSTER_TYPE, key, param, problem is None, problem or "")
        super().__init__(CLUSTER_TYPE, name, None, opts)
        tags = dict(args.tags)

        config = aws.msk.Configuration(f"{name}-config", aws.msk.ConfigurationArgs(
            name=f"{args.cluster_name}-durable",
            kafka_versions=[args.kafka_version],
            description="no acknowledged write lost: RF 3, min ISR 2, no unclean election, no auto-created topics",
            server_properties="".join(f"{k}={v}\n" for k, v in sorted(SERVER_PROPERTIES.items()))), opts=child(self))
        logs = aws.cloudwatch.LogGroup(f"{name}-broker-logs", aws.cloudwatch.LogGroupArgs(
            name=f"/aws/msk/{args.cluster_name}", retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, tags=tags), opts=child(self))
        cluster = aws.msk.Cluster(f"{name}-cluster", aws.msk.ClusterArgs(
            cluster_name=args.cluster_name,
            kafka_version=args.kafka_version,
            number_of_broker_nodes=BROKERS,
            broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                instance_type=args.broker_instance_type,
                client_subnets=args.subnet_ids,
                security_groups=args.security_group_ids,
                storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                    ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                        volume_size=args.broker_volume_gb)),
                connectivity_info=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoArgs(
                    public_access=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoPublicAccessArgs(type="DISABLED"),
                    # a cross-region MSK Replicator reaches its source through multi-VPC private
                    # connectivity with IAM; only IAM, as the cluster's own client authentication
                    vpc_connectivity=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoVpcConnectivityArgs(
                        client_authentication=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoVpcConnectivityClientAuthenticationArgs(
                            sasl=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoVpcConnectivityClientAuthenticationSaslArgs(
                                iam=True, scram=False),
                            tls=False))),
            ),
            client_authentication=aws.msk.ClusterClientAuthenticationArgs(
                sasl=aws.msk.ClusterClientAuthenticationSaslArgs(iam=True, scram=False),
                unauthenticated=False),
            encryption_info=aws.msk.ClusterEncryptionInfoArgs(
                encryption_at_rest_kms_key_arn=args.kms_key_arn,
                encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                    client_broker="TLS", in_cluster=True)),
            configuration_info=aws.msk.ClusterConfigurationInfoArgs(arn=config.arn, revision=config.latest_revision),
            logging_info=aws.msk.ClusterLoggingInfoArgs(broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(enabled=True, log_group=logs.name))),
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            tags=tags), opts=child(self))

        source_policy = aws.msk.ClusterPolicy(f"{name}-replicator-source", aws.msk.ClusterPolicyArgs(
            cluster_arn=cluster.arn, policy=cluster.arn.apply(source_cluster_policy)), opts=child(self))

        def parameter(resource: str, param: str) -> None:
            aws.ssm.Parameter(resource, aws.ssm.ParameterArgs(
                name=param, type="String",
                value=args.bootstrap_initial_value if args.bootstrap_initial_value is not None
                else cluster.bootstrap_brokers_sasl_iam,
                description="Kafka bootstrap servers clients use now (failover runbooks move it)",
                tags=tags), opts=child(self, ignore_changes=["value"]))

        if args.bootstrap_parameter is not None:
            parameter(f"{name}-bootstrap", args.bootstrap_parameter)
        for app, param in sorted(args.client_parameters.items()):
            parameter(f"{name}-bootstrap-{app}", param)

        self.arn = cluster.arn
        self.bootstrap_brokers = cluster.bootstrap_brokers_sasl_iam
        self.cluster_name = args.cluster_name
        self.source_policy = source_policy
        """The cluster policy a Replicator reading this cluster must wait for (``depends_on``)."""
        self.bootstrap_parameter = args.bootstrap_parameter
        self.register_outputs({"arn": self.arn, "bootstrap_brokers": self.bootstrap_brokers})


@dataclass(frozen=True)
class KafkaReplicatorArgs:
    replicator_name: str
    """Replicator name. Required: alarms and runbooks address it by name."""
    source_cluster_arn: pulumi.Input[str]
    """The primary region's cluster. Required."""
    source_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets of the source cluster (the replicator places interfaces there). Required."""
    target_cluster_arn: pulumi.Input[str]
    """This region's cluster. Required."""
    target_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets of the target cluster. Required."""
    target_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups reaching the target brokers, with inbound and outbound rules on port 9098. Required
    ("Network requirements": you must provide security groups for the target cluster)."""
    account_id: pulumi.Input[str]
    """The AWS account id (scopes the service role's trust). Required."""
    topics: Sequence[str] = (".*",)
    """Topic patterns to copy. Default: every topic."""
    consumer_groups: Sequence[str] = (".*",)
    """Consumer group patterns whose offsets are synchronised. Default: every group."""
    starting_position: str = "EARLIEST"
    """Where replication of a new topic starts. Default: EARLIEST (nothing skipped)."""
    stopped: bool = False
    """Declare it stopped: every topic and consumer group excluded (``STOP_PATTERN``), which is how the
    failover runbook stops it (MSK Replicator has no pause). Default: copying."""
    source_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    """Security groups for the source cluster: for a same-region replicator only. Default: none, which
    is what a cross-region replicator takes (MSK Developer Guide, MSK Replicator "Network requirements":
    "You do not need to provide security groups for the source cluster"; it reaches the source through
    multi-VPC private connectivity)."""
    source_ready: Sequence[pulumi.Resource] = ()
    """The source cluster's policy when this stack declares it (created first). Default: none (the
    source belongs to another stack, which declared its policy when it came up)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


# The AWS managed policy AWSMSKReplicatorExecutionRole (MSK Developer Guide, "AWS managed policy:
# AWSMSKReplicatorExecutionRole"), statement by statement; it grants them on every cluster
# (arn:aws:kafka:*:*:cluster/*), this role on the Replicator's two clusters only. The guide's "Service
# execution role" page: WriteDataIdempotently is needed on both the source and the target cluster
# (the Replicator also writes its own internal topics on the source).
CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
                   "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                   "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup",
                   "kafka-cluster:DescribeGroup", "kafka-cluster:DescribeTopicDynamicConfiguration",
                   "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:WriteDataIdempotently")
TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                 "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:DescribeTopicDynamicConfiguration",
                 "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:AlterCluster")
GROUP_ACTIONS = ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup")


def cluster_scoped_arns(cluster_arn: str) -> list[str]:
    """The cluster, its topics and its groups: arn:…:cluster/NAME/UUID → topic/NAME/UUID/*, group/NAME/UUID/*."""
    return [cluster_arn, cluster_arn.replace(":cluster/", ":topic/", 1) + "/*",
            cluster_arn.replace(":cluster/", ":group/", 1) + "/*"]


def replicator_policy(source_arn: str, target_arn: str) -> str:
    """The documented execution-role statements, each on the source and the target cluster only."""
    scoped = [cluster_scoped_arns(source_arn), cluster_scoped_arns(target_arn)]
    return policy_json([
        {"Sid": "ClusterPermissions", "Effect": "Allow", "Action": list(CLUSTER_ACTIONS),
         "Resource": [arns[0] for arns in scoped]},
        {"Sid": "TopicPermissions", "Effect": "Allow", "Action": list(TOPIC_ACTIONS),
         "Resource": [arns[1] for arns in scoped]},
        {"Sid": "GroupPermissions", "Effect": "Allow", "Action": list(GROUP_ACTIONS),
         "Resource": [arns[2] for arns in scoped]},
    ])


class KafkaReplicator(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    replicator_name: str

    def __init__(self, name: str, args: KafkaReplicatorArgs, opts: pulumi.ResourceOptions | None = None):
        require(REPLICATOR_TYPE, "replicator_name", args.replicator_name,
                bool(_REPLICATOR_NAME.match(args.replicator_name)),
                "1 to 128 letters, digits and dashes, starting with a letter or digit (CreateReplicator)")
        require(REPLICATOR_TYPE, "topics", list(args.topics), bool(args.topics), "name at least one topic pattern")
        require(REPLICATOR_TYPE, "starting_position", args.starting_position,
                args.starting_position in ("EARLIEST", "LATEST"), "EARLIEST or LATEST")
        super().__init__(REPLICATOR_TYPE, name, None, opts)
        tags = dict(args.tags)

        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            description=f"{args.replicator_name}: MSK Replicator execution role, its two clusters only",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda acct: assume_role_policy("kafka.amazonaws.com", acct)), tags=tags), opts=child(self))
        policy = aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(args.source_cluster_arn, args.target_cluster_arn).apply(
                lambda arns: replicator_policy(arns[0], arns[1]))), opts=child(self))

        def cluster(arn, subnets, groups=None):
            return aws.msk.ReplicatorKafkaClusterArgs(
                amazon_msk_cluster=aws.msk.ReplicatorKafkaClusterAmazonMskClusterArgs(msk_cluster_arn=arn),
                vpc_config=aws.msk.ReplicatorKafkaClusterVpcConfigArgs(subnet_ids=subnets, security_groups_ids=groups))

        replicator = aws.msk.Replicator(f"{name}-replicator", aws.msk.ReplicatorArgs(
            replicator_name=args.replicator_name,
            description="primary to DR: identical topic names, configs copied, consumer offsets synchronised",
            service_execution_role_arn=role.arn,
            kafka_clusters=[cluster(args.source_cluster_arn, args.source_subnet_ids, args.source_security_group_ids),
                            cluster(args.target_cluster_arn, args.target_subnet_ids, args.target_security_group_ids)],
            replication_info_list=aws.msk.ReplicatorReplicationInfoListArgs(
                source_kafka_cluster_arn=args.source_cluster_arn,
                target_kafka_cluster_arn=args.target_cluster_arn,
                target_compression_type="NONE",
                topic_replications=[aws.msk.ReplicatorReplicationInfoListTopicReplicationArgs(
                    topics_to_replicates=list(args.topics),
                    topics_to_excludes=[STOP_PATTERN] if args.stopped else None,
                    copy_topic_configurations=True,
                    copy_access_control_lists_for_topics=True,
                    detect_and_copy_new_topics=True,
                    starting_position=aws.msk.ReplicatorReplicationInfoListTopicReplicationStartingPositionArgs(
                        type=args.starting_position),
                    topic_name_configuration=aws.msk.ReplicatorReplicationInfoListTopicReplicationTopicNameConfigurationArgs(
                        type="IDENTICAL"),
                )],
                consumer_group_replications=[aws.msk.ReplicatorReplicationInfoListConsumerGroupReplicationArgs(
                    consumer_groups_to_replicates=list(args.consumer_groups),
                    consumer_groups_to_excludes=[STOP_PATTERN] if args.stopped else None,
                    detect_and_copy_new_consumer_groups=True,
                    synchronise_consumer_group_offsets=True,
                )],
            ),
            tags=tags), opts=child(self, depends_on=[policy, *args.source_ready]))

        self.arn = replicator.arn
        self.replicator_name = args.replicator_name
        self.register_outputs({"arn": self.arn})
