"""Continuous Kafka topic backup to the backups bucket: MSK Connect running Aiven's S3 sink connector
(Apache License 2.0), writing Parquet under ``kafka/topic=<t>/year=/month=/day=/hour=/`` (the layout
``runbooks.kafka_backup`` reads and the replay runbook replays from).

Declares: the custom plugin (the connector's ZIP, which the operator uploads: it is not in this
repository), the connector (IAM over TLS to the MSK cluster, the cluster's only client
authentication; worker logs to CloudWatch), its service execution role, and an S3 gateway VPC
endpoint on the named route tables (the private subnets have no internet gateway). The bucket's
lifecycle expiry per topic class is part of the bucket's one lifecycle configuration
(``components/storage.py``, ``expiry_rules``; ``expiry_rules`` below computes them): a bucket has a
single lifecycle configuration, a second resource would replace the first.

Documents behind each choice (also in the policies of ``policy/kafka_backup.py``):
MSK Developer Guide "Understand service execution role" (trust kafkaconnect.amazonaws.com; for an
IAM cluster, kafka-cluster:Connect/DescribeCluster, topic read, and the connector's internal
``__amazon_msk_connect_*`` topics and groups), "Create custom plugins" (a JAR or a ZIP of JARs in
S3), "Understand MSK Connect" (Kafka Connect 2.7.1 or 3.7.x); MSK Connect API Reference
"ProvisionedCapacity" (mcuCount 1, 2, 4, 8); Aiven's connector README ("Authorization": the S3
actions it needs; prefix templating ``{{timestamp:unit=…}}``, ``{{start_offset:padding=true}}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components._common import child, policy_json, require
from stacks.connectconfig import KAFKACONNECT_VERSIONS as KAFKA_CONNECT_VERSIONS, MCU_COUNTS
from stacks.kafka_backup import CONNECTOR_CLASS

TYPE = "regionpair:kafka:TopicBackup"
SERVICE = "kafkaconnect.amazonaws.com"
TARGET_TAG = "regionpair:target-cluster"
S3_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
              "s3:ListBucketMultipartUploads")
"""Aiven's S3 sink README, "Authorization": the permissions the connector needs on the bucket."""
FILE_TEMPLATE = ("kafka/topic={{topic}}/year={{timestamp:unit=YYYY}}/month={{timestamp:unit=MM}}/"
                 "day={{timestamp:unit=dd}}/hour={{timestamp:unit=HH}}/"
                 "{{topic}}+{{partition}}+{{start_offset:padding=true}}.parquet")


def expiry_rules(topics: Mapping[str, str], retention_days: Mapping[str, int],
                 offsets_days: int) -> list[tuple[str, str, int]]:
    """(rule id, key prefix, days) per topic by its class, and the offset snapshots'."""
    rules = [(f"kafka-{t}", f"kafka/topic={t}/", retention_days[c]) for t, c in sorted(topics.items())]
    return rules + [("kafka-offsets", "kafka/offsets/", offsets_days)]


@dataclass(frozen=True)
class KafkaTopicBackupArgs:
    connector_name: str
    """Physical name of the connector and its plugin. Required."""
    topics: Mapping[str, str]
    """Topic → class. Required: what is backed up."""
    cluster_arn: pulumi.Input[str]
    """The MSK cluster read. Required."""
    bootstrap_brokers: pulumi.Input[str]
    """Its IAM (SASL/TLS, port 9098) bootstrap servers. Required."""
    subnet_ids: pulumi.Input[Sequence[str]]
    """Where the workers run (the cluster's private subnets). Required."""
    security_group_ids: pulumi.Input[Sequence[str]]
    """The workers' security groups (the Kafka clients' group). Required."""
    vpc_id: pulumi.Input[str]
    """The VPC of the subnets (for the S3 gateway endpoint). Required."""
    bucket_name: pulumi.Input[str]
    """The backups bucket. Required."""
    bucket_arn: pulumi.Input[str]
    """Its ARN. Required."""
    kms_key_arn: pulumi.Input[str]
    """The bucket's SSE-KMS key (the connector's writes are encrypted with it). Required."""
    region: str
    """The region (connector's aws.s3.region and the endpoint's service name). Required."""
    plugin_bucket_arn: str
    """Where the operator uploaded the connector's ZIP. Required."""
    plugin_file_key: str
    """Its key. Required."""
    kafka_connect_version: str = "3.7.x"
    """MSK Connect's Kafka Connect version. Default: 3.7.x (Java 17)."""
    mcu_count: int = 1
    """MCUs per worker. Default: 1."""
    worker_count: int = 1
    """Workers. Default: 1."""
    route_table_ids: Sequence[str] = ()
    """Route tables that get the S3 gateway endpoint. Default: none (then s3_endpoint_exists)."""
    s3_endpoint_exists: bool = False
    """The VPC already reaches S3 privately: declare no endpoint. Default: False."""
    log_retention_days: int = 30
    """Worker log retention. Default: 30 days."""
    flush_interval_ms: int = 60_000
    """How often the connector writes a file per partition (Connect's offset.flush.interval.ms). Default: 60 s."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none."""


class KafkaTopicBackup(pulumi.ComponentResource):
    connector_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KafkaTopicBackupArgs, opts: pulumi.ResourceOptions | None = None):
        require(TYPE, "topics", dict(args.topics), bool(args.topics), "name at least one topic to back up")
        require(TYPE, "kafka_connect_version", args.kafka_connect_version,
                args.kafka_connect_version in KAFKA_CONNECT_VERSIONS,
                f"MSK Connect runs Kafka Connect {' or '.join(KAFKA_CONNECT_VERSIONS)} (MSK Developer Guide, "
                "'Understand MSK Connect')")
        require(TYPE, "mcu_count", args.mcu_count, args.mcu_count in MCU_COUNTS,
                "1, 2, 4 or 8 MCUs per worker (MSK Connect API Reference, 'ProvisionedCapacity')")
        require(TYPE, "worker_count", args.worker_count, args.worker_count >= 1, "at least one worker")
        require(TYPE, "plugin_file_key", args.plugin_file_key, args.plugin_file_key.endswith((".zip", ".jar")),
                "a JAR, or a ZIP of JARs (MSK Developer Guide, 'Create custom plugins')")
        require(TYPE, "route_table_ids", list(args.route_table_ids),
                bool(args.route_table_ids) or args.s3_endpoint_exists,
                "the workers' subnets have no internet gateway: name their route tables for an S3 gateway endpoint, "
                "or set s3_endpoint_exists")
        super().__init__(TYPE, name, None, opts)
        tags = {**args.tags, "regionpair:kafka-backup": args.connector_name}
        plugin_content = "ZIP" if args.plugin_file_key.endswith(".zip") else "JAR"

        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            name=f"{args.connector_name}-connect"[:64],
            assume_role_policy=pulumi.Output.from_input(args.cluster_arn).apply(
                lambda arn: policy_json([{"Effect": "Allow", "Principal": {"Service": SERVICE}, "Action": "sts:AssumeRole",
                                          "Condition": {"StringEquals": {"aws:SourceAccount": arn.split(":")[4]}}}])),
            tags=tags), opts=child(self))

        def permissions(values: list) -> str:
            cluster_arn, bucket_arn, key_arn = values
            # arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID → topic/ and group/ ARNs of the same cluster
            head, _, rest = cluster_arn.partition(":cluster/")
            topic = f"{head}:topic/{rest}"
            group = f"{head}:group/{rest}"
            return policy_json([
                {"Sid": "Cluster", "Effect": "Allow", "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                 "Resource": [cluster_arn]},
                {"Sid": "ReadBackedUpTopics", "Effect": "Allow",
                 "Action": ["kafka-cluster:ReadData", "kafka-cluster:DescribeTopic"],
                 "Resource": [f"{topic}/{t}" for t in sorted(args.topics)]},
                {"Sid": "ConnectInternalTopics", "Effect": "Allow",
                 "Action": ["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:WriteData",
                            "kafka-cluster:ReadData"],
                 "Resource": [f"{topic}/__amazon_msk_connect_*"]},
                {"Sid": "ConnectorGroups", "Effect": "Allow",
                 "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                 "Resource": [f"{group}/__amazon_msk_connect_*", f"{group}/connect-*"]},
                {"Sid": "WriteBackups", "Effect": "Allow", "Action": list(S3_ACTIONS),
                 "Resource": [bucket_arn, f"{bucket_arn}/kafka/*"]},
                {"Sid": "EncryptBackups", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                 "Resource": [key_arn]},
            ])

        policy = aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id, policy=pulumi.Output.all(args.cluster_arn, args.bucket_arn, args.kms_key_arn).apply(permissions)),
            opts=child(self))

        logs = aws.cloudwatch.LogGroup(f"{name}-logs", aws.cloudwatch.LogGroupArgs(
            name=f"/aws/mskconnect/{args.connector_name}", retention_in_days=args.log_retention_days, tags=tags),
            opts=child(self))

        depends = [policy]
        if args.route_table_ids and not args.s3_endpoint_exists:
            depends.append(aws.ec2.VpcEndpoint(f"{name}-s3-endpoint", aws.ec2.VpcEndpointArgs(
                vpc_id=args.vpc_id, service_name=f"com.amazonaws.{args.region}.s3", vpc_endpoint_type="Gateway",
                route_table_ids=list(args.route_table_ids), tags=tags), opts=child(self)))

        plugin = aws.mskconnect.CustomPlugin(f"{name}-plugin", aws.mskconnect.CustomPluginArgs(
            name=f"{args.connector_name}-s3-sink", content_type=plugin_content,
            location=aws.mskconnect.CustomPluginLocationArgs(s3=aws.mskconnect.CustomPluginLocationS3Args(
                bucket_arn=args.plugin_bucket_arn, file_key=args.plugin_file_key)),
            description="Aiven S3 sink connector for Apache Kafka (Apache License 2.0)", tags=tags), opts=child(self))

        config = pulumi.Output.from_input(args.bucket_name).apply(lambda bucket: {
            "connector.class": CONNECTOR_CLASS,
            "tasks.max": str(args.worker_count * args.mcu_count),
            "topics": ",".join(sorted(args.topics)),
            "aws.s3.bucket.name": bucket,
            "aws.s3.region": args.region,
            "file.name.template": FILE_TEMPLATE,
            "format.output.type": "parquet",
            "format.output.fields": "key,value,offset,timestamp,headers",
            "file.compression.type": "zstd",
            "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
            "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
            "header.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
            "timestamp.timezone": "UTC",
            "offset.flush.interval.ms": str(args.flush_interval_ms),
        })
        connector = aws.mskconnect.Connector(f"{name}-connector", aws.mskconnect.ConnectorArgs(
            name=args.connector_name, kafkaconnect_version=args.kafka_connect_version,
            capacity=aws.mskconnect.ConnectorCapacityArgs(
                provisioned_capacity=aws.mskconnect.ConnectorCapacityProvisionedCapacityArgs(
                    mcu_count=args.mcu_count, worker_count=args.worker_count)),
            connector_configuration=config,
            kafka_cluster=aws.mskconnect.ConnectorKafkaClusterArgs(
                apache_kafka_cluster=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterArgs(
                    bootstrap_servers=args.bootstrap_brokers,
                    vpc=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterVpcArgs(
                        security_groups=args.security_group_ids, subnets=args.subnet_ids))),
            kafka_cluster_client_authentication=aws.mskconnect.ConnectorKafkaClusterClientAuthenticationArgs(
                authentication_type="IAM"),
            kafka_cluster_encryption_in_transit=aws.mskconnect.ConnectorKafkaClusterEncryptionInTransitArgs(
                encryption_type="TLS"),
            plugins=[aws.mskconnect.ConnectorPluginArgs(custom_plugin=aws.mskconnect.ConnectorPluginCustomPluginArgs(
                arn=plugin.arn, revision=plugin.latest_revision))],
            service_execution_role_arn=role.arn,
            log_delivery=aws.mskconnect.ConnectorLogDeliveryArgs(
                worker_log_delivery=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryArgs(
                    cloudwatch_logs=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryCloudwatchLogsArgs(
                        enabled=True, log_group=logs.name))),
            # the cluster it works on, so the policy pack can check its role's rights there (mskconnect-execution-role)
            tags=pulumi.Output.from_input(args.cluster_arn).apply(lambda arn: {**tags, TARGET_TAG: arn})),
            opts=child(self, depends_on=depends))

        self.connector_arn = connector.arn
        self.role_arn = role.arn
        self.register_outputs({"connector_arn": self.connector_arn, "role_arn": self.role_arn})
