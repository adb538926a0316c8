"""What every MSK Connect connector of the stacks is built from, whatever it runs (MirrorMaker 2 in
``components/mskconnect.py``, the topic backup's S3 sink in ``components/kafka_backup.py``): the
argument checks, the custom plugin, the KMS-able worker log group, the service execution role's trust,
the capacity and the connector itself with IAM over TLS. The users keep their own logical names,
physical names and rights; these functions only declare what both declared alike.

Documents: MSK Connect API Reference, CreateConnector (connectorName 1-128 characters),
KafkaClusterClientAuthentication / KafkaClusterEncryptionInTransit, AutoScaling / ProvisionedCapacity
(mcuCount 1, 2, 4, 8), LogDelivery / WorkerLogDelivery; MSK Developer Guide, "Create custom plugins" (a
JAR or a ZIP of JARs in S3), "Understand service execution role" (trust kafkaconnect.amazonaws.com),
"Prevent cross-service confused deputy problem" (aws:SourceAccount, aws:SourceArn), "Understand MSK
Connect" (Kafka Connect 2.7.1 or 3.7.x). The policy pack checks the same (``policy/mskconnect.py``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.aws_limits import KAFKACONNECT_VERSIONS, MCU_COUNTS
from components.common import child, policy_json, require

SERVICE = "kafkaconnect.amazonaws.com"
SOURCE_TAG = "regionpair:source-cluster"
TARGET_TAG = "regionpair:target-cluster"
"""Tags naming the clusters a connector works on, so the pack can check its role against them."""
NAME_MAX = 128
"""CreateConnector connectorName: 1 to 128 characters (MSK Connect API Reference)."""


# ---- argument checks ------------------------------------------------------------------------------


def require_name(component: str, arg: str, connector_name: str) -> None:
    require(component, arg, connector_name, 1 <= len(connector_name) <= NAME_MAX,
            f"connector names such as {connector_name!r} must be 1 to {NAME_MAX} characters (CreateConnector)")


def require_version(component: str, arg: str, version: str) -> None:
    require(component, arg, version, version in KAFKACONNECT_VERSIONS,
            f"MSK Connect runs Kafka Connect {' or '.join(KAFKACONNECT_VERSIONS)} (MSK Developer Guide, "
            "'Understand MSK Connect')")


def require_provisioned(component: str, mcu_arg: str, mcu_count: int, workers_arg: str, workers: int) -> None:
    require(component, mcu_arg, mcu_count, mcu_count in MCU_COUNTS,
            "1, 2, 4 or 8 MCUs per worker (MSK Connect API Reference, 'ProvisionedCapacity')")
    require(component, workers_arg, workers, workers >= 1, "at least one worker")


# ---- resources --------------------------------------------------------------------------------------


def trust_policy(account_id: str, region: str, connectors: str, partition: str = "aws") -> str:
    """MSK Connect may assume the role for this account's connectors named ``connectors`` (a connectorName
    or a ``prefix-*`` pattern) in ``region`` only: aws:SourceAccount and aws:SourceArn, "Prevent
    cross-service confused deputy problem"."""
    return policy_json([{
        "Effect": "Allow", "Principal": {"Service": SERVICE}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:kafkaconnect:{region}:{account_id}:connector/"
                                                   f"{connectors}/*"}}}])


def execution_role(name: str, parent: pulumi.Resource, *, account_id: pulumi.Input[str], region: str, connectors: str,
                   partition: pulumi.Input[str] = "aws", tags: Mapping[str, str], role_name: str | None = None,
                   description: str | None = None) -> aws.iam.Role:
    """The connectors' service execution role (``<name>-role``), trusted as ``trust_policy`` says; the
    caller attaches its rights."""
    return aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
        name=role_name, description=description,
        assume_role_policy=pulumi.Output.all(account_id, partition).apply(
            lambda v: trust_policy(v[0], region, connectors, v[1])), tags=dict(tags)),
        opts=child(parent))


def worker_log_group(name: str, parent: pulumi.Resource, *, log_name: str, retention_days: int,
                     tags: Mapping[str, str], kms_key_arn: pulumi.Input[str] | None = None) -> aws.cloudwatch.LogGroup:
    """``/aws/mskconnect/<log_name>`` (``<name>-logs``), where the connectors' worker logs go."""
    return aws.cloudwatch.LogGroup(f"{name}-logs", aws.cloudwatch.LogGroupArgs(
        name=f"/aws/mskconnect/{log_name}", retention_in_days=retention_days, kms_key_id=kms_key_arn,
        tags=dict(tags)), opts=child(parent))


def custom_plugin(name: str, parent: pulumi.Resource, *, plugin_name: str, content_type: str, bucket_arn: str,
                  file_key: str, description: str, tags: Mapping[str, str],
                  object_version: str | None = None) -> aws.mskconnect.CustomPlugin:
    """The custom plugin (``<name>-plugin``) from a JAR or ZIP the operator put in S3 (MSK Connect copies
    the object when the plugin is created)."""
    return aws.mskconnect.CustomPlugin(f"{name}-plugin", aws.mskconnect.CustomPluginArgs(
        name=plugin_name, content_type=content_type, description=description,
        location=aws.mskconnect.CustomPluginLocationArgs(s3=aws.mskconnect.CustomPluginLocationS3Args(
            bucket_arn=bucket_arn, file_key=file_key, object_version=object_version)), tags=dict(tags)),
        opts=child(parent))


def provisioned_capacity(mcu_count: int, workers: int) -> aws.mskconnect.ConnectorCapacityArgs:
    """A fixed number of workers of ``mcu_count`` MCUs each."""
    return aws.mskconnect.ConnectorCapacityArgs(
        provisioned_capacity=aws.mskconnect.ConnectorCapacityProvisionedCapacityArgs(
            mcu_count=mcu_count, worker_count=workers))


def autoscaled_capacity(mcu_count: int = 1, min_workers: int = 1, max_workers: int = 2, scale_in_cpu: int = 20,
                        scale_out_cpu: int = 80) -> aws.mskconnect.ConnectorCapacityArgs:
    """Default: 1 MCU, 1 to 2 workers, scale in below 20 % CPU and out above 80 %."""
    return aws.mskconnect.ConnectorCapacityArgs(autoscaling=aws.mskconnect.ConnectorCapacityAutoscalingArgs(
        mcu_count=mcu_count, min_worker_count=min_workers, max_worker_count=max_workers,
        scale_in_policy=aws.mskconnect.ConnectorCapacityAutoscalingScaleInPolicyArgs(
            cpu_utilization_percentage=scale_in_cpu),
        scale_out_policy=aws.mskconnect.ConnectorCapacityAutoscalingScaleOutPolicyArgs(
            cpu_utilization_percentage=scale_out_cpu)))


def connector(name: str, parent: pulumi.Resource, *, connector_name: str, kafkaconnect_version: str,
              capacity: aws.mskconnect.ConnectorCapacityArgs, configuration: pulumi.Input[Mapping[str, str]],
              bootstrap_servers: pulumi.Input[str], security_groups: pulumi.Input[Sequence[pulumi.Input[str]]],
              subnets: pulumi.Input[Sequence[pulumi.Input[str]]], plugin: aws.mskconnect.CustomPlugin,
              role: aws.iam.Role, log_group: aws.cloudwatch.LogGroup, tags: Mapping[str, str],
              target_cluster_arn: pulumi.Input[str], source_cluster_arn: pulumi.Input[str] | None = None,
              worker_configuration: aws.mskconnect.WorkerConfiguration | None = None, description: str | None = None,
              depends_on: Sequence[pulumi.Resource] = ()) -> aws.mskconnect.Connector:
    """A connector (logical name ``name``) on its cluster with IAM over TLS (the stacks' clusters take
    nothing else; MSK serves IAM on its TLS listener), its one custom plugin, worker logs to
    ``log_group``, tagged with the cluster(s) it works on (``TARGET_TAG``, and ``SOURCE_TAG`` for a
    replicator) so the pack can check ``role``'s rights there."""
    def cluster_tags(arns: list[Any]) -> dict[str, str]:
        source, target = arns
        return {**tags, **({SOURCE_TAG: source} if source_cluster_arn is not None else {}), TARGET_TAG: target}

    return aws.mskconnect.Connector(name, aws.mskconnect.ConnectorArgs(
        name=connector_name, kafkaconnect_version=kafkaconnect_version, description=description, capacity=capacity,
        connector_configuration=configuration,
        kafka_cluster=aws.mskconnect.ConnectorKafkaClusterArgs(
            apache_kafka_cluster=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterArgs(
                bootstrap_servers=bootstrap_servers,
                vpc=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterVpcArgs(
                    security_groups=security_groups, subnets=subnets))),
        kafka_cluster_client_authentication=aws.mskconnect.ConnectorKafkaClusterClientAuthenticationArgs(
            authentication_type="IAM"),
        kafka_cluster_encryption_in_transit=aws.mskconnect.ConnectorKafkaClusterEncryptionInTransitArgs(
            encryption_type="TLS"),
        plugins=[aws.mskconnect.ConnectorPluginArgs(custom_plugin=aws.mskconnect.ConnectorPluginCustomPluginArgs(
            arn=plugin.arn, revision=plugin.latest_revision))],
        worker_configuration=None if worker_configuration is None else aws.mskconnect.ConnectorWorkerConfigurationArgs(
            arn=worker_configuration.arn, revision=worker_configuration.latest_revision),
        service_execution_role_arn=role.arn,
        log_delivery=aws.mskconnect.ConnectorLogDeliveryArgs(
            worker_log_delivery=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryArgs(
                cloudwatch_logs=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryCloudwatchLogsArgs(
                    enabled=True, log_group=log_group.name))),
        tags=pulumi.Output.all(source_cluster_arn, target_cluster_arn).apply(cluster_tags)),
        opts=child(parent, depends_on=list(depends_on)))
