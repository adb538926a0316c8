"""Kafka on MSK: a cluster per region, and the MSK Replicator from primary to DR.

The cluster: three brokers across three zones, TLS between clients and brokers and inside the
cluster, the region's customer key at rest, IAM client authentication only, broker logs to a
KMS-encrypted log group, and a configuration that refuses to lose acknowledged writes
(replication factor 3, min ISR 2, no unclean leader election, no auto-created topics).

The replicator (dr stack, in the DR region): topics copied under identical names with their
configurations and ACLs, new topics detected, consumer-group offsets synchronised, and a service
role limited to reading the source cluster and writing the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components._common import assume_role_policy, child, policy_json, require
from stacks.outputs import STOP_PATTERN

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
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


class KafkaCluster(pulumi.ComponentResource):
    arn: pulumi.Output[str]
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
        for key, param in [("bootstrap_parameter", args.bootstrap_parameter)] + [
                (f"client_parameters.{app}", p) for app, p in args.client_parameters.items()]:
            if param is not None:
                require(CLUSTER_TYPE, key, param, bool(re.match(r"^/[a-zA-Z0-9_./-]+$", param)),
                        "an SSM path such as /app/kafka")
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
                    public_access=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoPublicAccessArgs(type="DISABLED")),
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
    source_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups reaching the source brokers. Required."""
    target_cluster_arn: pulumi.Input[str]
    """This region's cluster. Required."""
    target_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets of the target cluster. Required."""
    target_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups reaching the target brokers. Required."""
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
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


SOURCE_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:DescribeTopic",
                  "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:ReadData",
                  "kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")
TARGET_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
                  "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                  "kafka-cluster:DescribeTopicDynamicConfiguration", "kafka-cluster:AlterTopicDynamicConfiguration",
                  "kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently", "kafka-cluster:ReadData",
                  "kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")


def cluster_scoped_arns(cluster_arn: str) -> list[str]:
    """The cluster, its topics and its groups: arn:…:cluster/NAME/UUID → topic/NAME/UUID/*, group/NAME/UUID/*."""
    return [cluster_arn, cluster_arn.replace(":cluster/", ":topic/", 1) + "/*",
            cluster_arn.replace(":cluster/", ":group/", 1) + "/*"]


def replicator_policy(source_arn: str, target_arn: str) -> str:
    return policy_json([
        {"Sid": "ReadTheSourceCluster", "Effect": "Allow", "Action": list(SOURCE_ACTIONS),
         "Resource": cluster_scoped_arns(source_arn)},
        {"Sid": "WriteTheTargetCluster", "Effect": "Allow", "Action": list(TARGET_ACTIONS),
         "Resource": cluster_scoped_arns(target_arn)},
    ])


class KafkaReplicator(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    replicator_name: str

    def __init__(self, name: str, args: KafkaReplicatorArgs, opts: pulumi.ResourceOptions | None = None):
        require(REPLICATOR_TYPE, "replicator_name", args.replicator_name, bool(_NAME.match(args.replicator_name)),
                "letters, digits and dashes, at most 64 characters")
        require(REPLICATOR_TYPE, "topics", list(args.topics), bool(args.topics), "name at least one topic pattern")
        require(REPLICATOR_TYPE, "starting_position", args.starting_position,
                args.starting_position in ("EARLIEST", "LATEST"), "EARLIEST or LATEST")
        super().__init__(REPLICATOR_TYPE, name, None, opts)
        tags = dict(args.tags)

        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            description=f"{args.replicator_name}: MSK Replicator, read source, write target",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda acct: assume_role_policy("kafka.amazonaws.com", acct)), tags=tags), opts=child(self))
        policy = aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(args.source_cluster_arn, args.target_cluster_arn).apply(
                lambda arns: replicator_policy(arns[0], arns[1]))), opts=child(self))

        def cluster(arn, subnets, groups):
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
            tags=tags), opts=child(self, depends_on=[policy]))

        self.arn = replicator.arn
        self.replicator_name = args.replicator_name
        self.register_outputs({"arn": self.arn})
