"""Continuous Kafka topic backup to the backups bucket: MSK Connect running Aiven's S3 sink connector
(Apache License 2.0), writing Parquet under ``kafka/topic=<t>/year=/month=/day=/hour=/`` (the layout
``contract.kafka_backup`` reads and the replay runbook replays from).

Declares: the custom plugin (the connector's ZIP, which the operator uploads: it is not in this
repository), the connector (IAM over TLS to the MSK cluster, the cluster's only client
authentication; worker logs to CloudWatch), its service execution role, and an S3 gateway VPC
endpoint on the named route tables (the private subnets have no internet gateway). The bucket's
lifecycle expiry per topic class is part of the bucket's one lifecycle configuration
(``components/storage.py``, ``expiry_rules``; ``expiry_rules`` below computes them): a bucket has a
single lifecycle configuration, a second resource would replace the first.

The plugin, log group, role trust, capacity and connector are built by
``components/mskconnect_common.py``, as MirrorMaker 2's are.

Documents behind each choice (also in the MSK Connect policies, ``policy/mskconnect.py``):
MSK Developer Guide "Understand service execution role" (trust kafkaconnect.amazonaws.com, for this
account's connector of that name only: "Prevent cross-service confused deputy problem"; for an
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

from components import mskconnect_common as connect
from components.common import child, policy_json, require

TYPE = "regionpair:kafka:TopicBackup"
CONNECTOR_CLASS = "io.aiven.kafka.connect.s3.AivenKafkaConnectS3SinkConnector"
"""Aiven's S3 sink connector (Apache License 2.0): why it, not Confluent's or Firehose, is in stacks/kafka_backup.py."""
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
        connect.require_name(TYPE, "connector_name", args.connector_name)
        connect.require_version(TYPE, "kafka_connect_version", args.kafka_connect_version)
        connect.require_provisioned(TYPE, "mcu_count", args.mcu_count, "worker_count", args.worker_count)
        require(TYPE, "plugin_file_key", args.plugin_file_key, args.plugin_file_key.endswith((".zip", ".jar")),
                "a JAR, or a ZIP of JARs (MSK Developer Guide, 'Create custom plugins')")
        require(TYPE, "route_table_ids", list(args.route_table_ids),
                bool(args.route_table_ids) or args.s3_endpoint_exists,
                "the workers' subnets have no internet gateway: name their route tables for an S3 gateway endpoint, "
                "or set s3_endpoint_exists")
        super().__init__(TYPE, name, None, opts)
        tags = {**args.tags, "regionpair:kafka-backup": args.connector_name}
        plugin_content = "ZIP" if args.plugin_file_key.endswith(".zip") else "JAR"

        cluster_arn = pulumi.Output.from_input(args.cluster_arn)
        role = connect.execution_role(
            name, self, role_name=f"{args.connector_name}-connect"[:64], region=args.region,
            account_id=cluster_arn.apply(lambda arn: arn.split(":")[4]),
            partition=cluster_arn.apply(lambda arn: arn.split(":")[1]), connectors=args.connector_name, tags=tags)

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

        logs = connect.worker_log_group(name, self, log_name=args.connector_name,
                                        retention_days=args.log_retention_days, tags=tags)

        depends = [policy]
        if args.route_table_ids and not args.s3_endpoint_exists:
            depends.append(aws.ec2.VpcEndpoint(f"{name}-s3-endpoint", aws.ec2.VpcEndpointArgs(
                vpc_id=args.vpc_id, service_name=f"com.amazonaws.{args.region}.s3", vpc_endpoint_type="Gateway",
                route_table_ids=list(args.route_table_ids), tags=tags), opts=child(self)))

        plugin = connect.custom_plugin(
            name, self, plugin_name=f"{args.connector_name}-s3-sink", content_type=plugin_content,
            bucket_arn=args.plugin_bucket_arn, file_key=args.plugin_file_key,
            description="Aiven S3 sink connector for Apache Kafka (Apache License 2.0)", tags=tags)

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
        connector = connect.connector(
            f"{name}-connector", self, connector_name=args.connector_name,
            kafkaconnect_version=args.kafka_connect_version,
            capacity=connect.provisioned_capacity(args.mcu_count, args.worker_count), configuration=config,
            bootstrap_servers=args.bootstrap_brokers, security_groups=args.security_group_ids,
            subnets=args.subnet_ids, plugin=plugin, role=role, log_group=logs, tags=tags,
            target_cluster_arn=args.cluster_arn, depends_on=depends)

        self.connector_arn = connector.arn
        self.role_arn = role.arn
        self.register_outputs({"connector_arn": self.connector_arn, "role_arn": self.role_arn})
