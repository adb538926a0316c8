"""MirrorMaker 2 on MSK Connect: the primary → DR flow run near its target, the DR region.

What it declares, and the document each part follows:

- a **custom plugin** from a ZIP the user puts in S3 (MSK Developer Guide, "Create custom plugins":
  a JAR or a ZIP of JARs; MSK Connect copies the object when the plugin is created). The ZIP holds
  Apache Kafka's connect-mirror and connect-mirror-client jars of the Kafka Connect version
  (3.7.x) and the aws-msk-iam-auth library's uber jar, which MirrorMaker 2's own clients need for IAM;
- a **worker configuration** with byte-array converters (``contract.mirrormaker2.WORKER_PROPERTIES``);
- the **three connectors** (source, checkpoint, heartbeat), their settings from
  ``contract.mirrormaker2.msk_connect_configurations`` — the ones the sandbox's MirrorMaker 2 runs —
  each on the target cluster with IAM authentication and TLS (MSK Connect API Reference,
  KafkaClusterClientAuthentication, KafkaClusterEncryptionInTransit; IAM is served on 9098, TLS);
- a **service execution role** trusting ``kafkaconnect.amazonaws.com`` for this account's connectors
  (MSK Developer Guide, "Understand service execution role"), with least privilege: on the source,
  read what is replicated (topics, groups' offsets); on the target, write the copies, MirrorMaker 2's
  internal topics (checkpoints, heartbeats, offset syncs) and MSK Connect's own, and commit the
  groups' translated offsets;
- the **network**: a security group for the workers in DR's VPC (egress 9098 to DR's brokers and to
  the primary's broker subnets; DR's brokers admit it), and, with the primary region's provider, an
  ingress rule on the primary brokers' group from the workers' subnets (security groups cannot be
  referenced across regions). The route between the VPCs (VPC peering or a Transit Gateway) is the
  user's (MSK Developer Guide, "Access from within AWS but outside cluster's VPC");
- **worker logs** to a KMS-encrypted CloudWatch log group (MSK Connect API Reference, WorkerLogDelivery).

Each connector is tagged with the clusters it links (``regionpair:source-cluster``,
``regionpair:target-cluster``) so the policy pack can check the role against them. The plugin, log
group, role trust, capacity and connectors are built by ``components/mskconnect_common.py``, as the
Kafka topic backup's are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import mskconnect_common as connect
from components.common import child, policy_json, require, slug
from components.network import KAFKA_IAM_TLS_PORT
from components.streaming import cluster_scoped_arns
from contract import mirrormaker2 as mm2

TYPE = "regionpair:streaming:MirrorMaker2OnMskConnect"

# what MirrorMaker 2 does on each cluster, as kafka-cluster actions (MSK Developer Guide, "Understand
# service execution role" for the connector's own cluster; the rest follows MirrorMaker 2's clients)
SOURCE_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster")
SOURCE_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData",
                        "kafka-cluster:DescribeTopicDynamicConfiguration")
SOURCE_GROUP_ACTIONS = ("kafka-cluster:DescribeGroup",)
TARGET_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                          "kafka-cluster:WriteDataIdempotently")
TARGET_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData",
                        "kafka-cluster:ReadData", "kafka-cluster:AlterTopic",
                        "kafka-cluster:DescribeTopicDynamicConfiguration",
                        "kafka-cluster:AlterTopicDynamicConfiguration")
TARGET_GROUP_ACTIONS = ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup")


def execution_role_policy(source_arn: str, target_arn: str) -> str:
    """Read on the source cluster, write on the target, each on that cluster's topics and groups only."""
    src, dst = cluster_scoped_arns(source_arn), cluster_scoped_arns(target_arn)
    return policy_json([
        {"Sid": "SourceCluster", "Effect": "Allow", "Action": list(SOURCE_CLUSTER_ACTIONS), "Resource": [src[0]]},
        {"Sid": "SourceTopics", "Effect": "Allow", "Action": list(SOURCE_TOPIC_ACTIONS), "Resource": [src[1]]},
        {"Sid": "SourceGroups", "Effect": "Allow", "Action": list(SOURCE_GROUP_ACTIONS), "Resource": [src[2]]},
        {"Sid": "TargetCluster", "Effect": "Allow", "Action": list(TARGET_CLUSTER_ACTIONS), "Resource": [dst[0]]},
        {"Sid": "TargetTopics", "Effect": "Allow", "Action": list(TARGET_TOPIC_ACTIONS), "Resource": [dst[1]]},
        {"Sid": "TargetGroups", "Effect": "Allow", "Action": list(TARGET_GROUP_ACTIONS), "Resource": [dst[2]]},
    ])


@dataclass(frozen=True)
class MirrorMaker2Args:
    name_prefix: str
    """Physical name prefix (connectors ``<prefix>-source`` …). Required."""
    region: str
    """The region the connectors run in (the target's). Required: the role's trust names it."""
    account_id: pulumi.Input[str]
    """The AWS account. Required: the role's trust is limited to it."""
    source_alias: str
    """The source cluster's alias (its region): the checkpoints go to ``<alias>.checkpoints.internal``."""
    target_alias: str
    """The target cluster's alias (its region)."""
    source_cluster_arn: pulumi.Input[str]
    source_bootstrap: pulumi.Input[str]
    """The source's IAM bootstrap servers (port 9098). Required."""
    target_cluster_arn: pulumi.Input[str]
    target_bootstrap: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    """The target's VPC, where the workers run. Required."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets for the workers (one address each). Required."""
    target_security_group_id: pulumi.Input[str]
    """The target brokers' security group: it admits the workers. Required."""
    source_security_group_id: pulumi.Input[str]
    """The source brokers' security group (another region): it admits ``connector_cidrs``. Required."""
    source_provider: pulumi.ProviderResource
    """A provider for the source's region (the ingress rule lives there). Required."""
    source_cidrs: Sequence[str]
    """The source's broker subnets as reached through peering/Transit Gateway. Required."""
    connector_cidrs: Sequence[str]
    """The workers' subnets' CIDRs. Required."""
    plugin_bucket_arn: str
    plugin_file_key: str
    kms_key_arn: pulumi.Input[str]
    """Key of the worker log group. Required."""
    topics: Sequence[str] = (".*",)
    groups: Sequence[str] = (".*",)
    plugin_object_version: str | None = None
    """Default: the object's current version."""
    kafkaconnect_version: str = "3.7.x"
    capacity: aws.mskconnect.ConnectorCapacityArgs | None = None
    """Default: autoscaled, 1 MCU, 1 to 2 workers, scale in below 20 % CPU and out above 80 %."""
    log_retention_days: int = 30
    running: bool = True
    """False (after a failover): the connectors are not declared; the plugin, role, logs and network stay.
    Default: running."""
    partition: str = "aws"
    tags: Mapping[str, str] = field(default_factory=dict)


class MirrorMaker2OnMskConnect(pulumi.ComponentResource):
    connector_arns: dict[str, pulumi.Output[str]]
    connector_names: dict[str, str]
    checkpoints_topic: str

    def __init__(self, name: str, args: MirrorMaker2Args, opts: pulumi.ResourceOptions | None = None):
        connect.require_name(TYPE, "name_prefix", f"{args.name_prefix}-checkpoint")  # the longest name
        connect.require_version(TYPE, "kafkaconnect_version", args.kafkaconnect_version)
        require(TYPE, "source_cidrs", list(args.source_cidrs), bool(args.source_cidrs),
                "name the primary's broker subnets (reached through VPC peering or a Transit Gateway)")
        require(TYPE, "connector_cidrs", list(args.connector_cidrs), bool(args.connector_cidrs),
                "name the workers' subnets: the primary's brokers admit them")
        super().__init__(TYPE, name, None, opts)
        tags = dict(args.tags)

        sg = aws.ec2.SecurityGroup(f"{name}-sg", aws.ec2.SecurityGroupArgs(
            name=f"{args.name_prefix}-workers", vpc_id=args.vpc_id, revoke_rules_on_delete=True,
            description=f"{args.name_prefix}: MirrorMaker 2 workers, Kafka IAM/TLS to both clusters only", tags=tags),
            opts=child(self))
        aws.vpc.SecurityGroupEgressRule(f"{name}-to-target", aws.vpc.SecurityGroupEgressRuleArgs(
            security_group_id=sg.id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT, to_port=KAFKA_IAM_TLS_PORT,
            referenced_security_group_id=args.target_security_group_id, description="to the target brokers",
            tags=tags), opts=child(self))
        aws.vpc.SecurityGroupIngressRule(f"{name}-target-from-workers", aws.vpc.SecurityGroupIngressRuleArgs(
            security_group_id=args.target_security_group_id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT,
            to_port=KAFKA_IAM_TLS_PORT, referenced_security_group_id=sg.id,
            description="MirrorMaker 2 workers", tags=tags), opts=child(self))
        for cidr in args.source_cidrs:
            aws.vpc.SecurityGroupEgressRule(f"{name}-to-source-{slug(cidr)}", aws.vpc.SecurityGroupEgressRuleArgs(
                security_group_id=sg.id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT, to_port=KAFKA_IAM_TLS_PORT,
                cidr_ipv4=cidr, description=f"to the source brokers ({cidr}, through peering/Transit Gateway)",
                tags=tags), opts=child(self))
        for cidr in args.connector_cidrs:
            aws.vpc.SecurityGroupIngressRule(f"{name}-source-from-{slug(cidr)}", aws.vpc.SecurityGroupIngressRuleArgs(
                security_group_id=args.source_security_group_id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT,
                to_port=KAFKA_IAM_TLS_PORT, cidr_ipv4=cidr,
                description=f"MirrorMaker 2 workers in {args.target_alias} ({cidr})", tags=tags),
                opts=child(self, provider=args.source_provider))

        logs = connect.worker_log_group(name, self, log_name=args.name_prefix, retention_days=args.log_retention_days,
                                        kms_key_arn=args.kms_key_arn, tags=tags)
        role = connect.execution_role(
            name, self, account_id=args.account_id, region=args.region, connectors=f"{args.name_prefix}-*",
            partition=args.partition, tags=tags,
            description=f"{args.name_prefix}: MirrorMaker 2 on MSK Connect, read the source, write the target")
        policy = aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id, policy=pulumi.Output.all(args.source_cluster_arn, args.target_cluster_arn).apply(
                lambda arns: execution_role_policy(arns[0], arns[1]))), opts=child(self))

        plugin = connect.custom_plugin(
            name, self, plugin_name=f"{args.name_prefix}-mirrormaker2", content_type="ZIP",
            description="Apache Kafka connect-mirror and connect-mirror-client, aws-msk-iam-auth",
            bucket_arn=args.plugin_bucket_arn, file_key=args.plugin_file_key,
            object_version=args.plugin_object_version, tags=tags)
        worker = aws.mskconnect.WorkerConfiguration(f"{name}-workers", aws.mskconnect.WorkerConfigurationArgs(
            name=f"{args.name_prefix}-mirrormaker2", description="byte-array converters, acks=all",
            properties_file_content=mm2.worker_properties(), tags=tags), opts=child(self))

        capacity = args.capacity or connect.autoscaled_capacity()

        settings = pulumi.Output.all(args.source_bootstrap, args.target_bootstrap).apply(
            lambda b: mm2.msk_connect_configurations(
                source_alias=args.source_alias, target_alias=args.target_alias, source_bootstrap=b[0],
                target_bootstrap=b[1], topics=list(args.topics), groups=list(args.groups)))
        self.connector_arns = {}
        self.connector_names = {}
        for kind in mm2.CONNECTOR_CLASSES if args.running else ():
            connector_name = f"{args.name_prefix}-{kind}"
            connector = connect.connector(
                f"{name}-{kind}", self, connector_name=connector_name, kafkaconnect_version=args.kafkaconnect_version,
                description=f"MirrorMaker 2 {kind} connector, {args.source_alias} to {args.target_alias}",
                capacity=capacity, configuration=settings.apply(lambda s, kind=kind: s[kind]),
                bootstrap_servers=args.target_bootstrap, security_groups=[sg.id], subnets=args.subnet_ids,
                plugin=plugin, worker_configuration=worker, role=role, log_group=logs, tags=tags,
                source_cluster_arn=args.source_cluster_arn, target_cluster_arn=args.target_cluster_arn,
                depends_on=[policy])
            self.connector_arns[kind] = connector.arn
            self.connector_names[kind] = connector_name
        self.checkpoints_topic = mm2.checkpoints_topic(args.source_alias)
        self.register_outputs({"connector_arns": self.connector_arns})


def connector_alarms(connector_name: str) -> list:
    """MSK Developer Guide, "Monitoring Amazon MSK Connect": MSK Connect publishes ErroredTaskCount and
    RunningTaskCount under the ConnectorName dimension (namespace AWS/KafkaConnect). A connector with
    an errored task, or none running, copies nothing: replication to DR has stopped. (MirrorMaker 2's
    own replication-latency-ms is a JMX metric that MSK Connect does not publish: no RPO alarm here.)"""
    from components.alarms import AlarmSpec

    dims = {"ConnectorName": connector_name}
    return [
        AlarmSpec(name=f"{connector_name}-errored-tasks",
                  description=f"MSK Connect connector {connector_name} has a failed task (ErroredTaskCount > 0 for 5 "
                              "minutes): MirrorMaker 2 may have stopped copying to DR. Read its worker logs.",
                  namespace="AWS/KafkaConnect", metric_name="ErroredTaskCount", dimensions=dims, threshold=0,
                  statistic="Maximum", period_seconds=60, evaluation_periods=5, treat_missing_data="notBreaching"),
        AlarmSpec(name=f"{connector_name}-not-running",
                  description=f"MSK Connect connector {connector_name} runs no task (RunningTaskCount < 1 for 5 "
                              "minutes, or no data): MirrorMaker 2 is not copying to DR.",
                  namespace="AWS/KafkaConnect", metric_name="RunningTaskCount", dimensions=dims, threshold=1,
                  comparison="LessThanThreshold", statistic="Minimum", period_seconds=60, evaluation_periods=5,
                  treat_missing_data="breaching"),
    ]
