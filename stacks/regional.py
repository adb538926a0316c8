"""What every region has, whatever its role: key, network, buckets, Kafka cluster, alarm topic.

Both stack programs call `build`; the logical names here are part of the stacks' contract
(renaming one replaces live data), so they are plain and fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_aws as aws

from components.alarms import Alarms, AlarmsArgs, AlarmSpec, free_storage
from components.common import partition_of
from components.kafka_backup import expiry_rules as kafka_expiry_rules
from components.keys import RegionKey, RegionKeyArgs
from components.network import Network, NetworkArgs
from components.storage import Bucket, BucketArgs, WriterParameter, WriterParameterArgs
from components.streaming import KafkaCluster, KafkaClusterArgs
from stacks import providers as prov
from stacks.config import StackConfig


def bootstrap_parameter(cfg: StackConfig) -> str:
    """The SSM parameter (same name in both regions) with the bootstrap servers clients use now."""
    return f"/{cfg.project}/kafka/bootstrap-brokers"


def client_parameters(cfg: StackConfig) -> dict[str, str]:
    """Per application, its own bootstrap parameter (same name in both regions)."""
    return {app: f"/{cfg.project}/kafka/{app}/bootstrap-brokers" for app in cfg.streaming.applications}


def all_client_parameters(cfg: StackConfig) -> list[str]:
    """Every parameter a failover publishes the new brokers to: the shared one and each application's."""
    return [bootstrap_parameter(cfg)] + sorted(client_parameters(cfg).values())


def writer_parameter(cfg: StackConfig) -> str:
    """The SSM parameter (same name in both regions) with the bucket writers write to now."""
    return f"/{cfg.project}/s3/writer-bucket"


@dataclass
class Regional:
    cfg: StackConfig
    provider: aws.Provider
    account_id: pulumi.Output[str]
    key: RegionKey
    network: Network
    data: Bucket
    backups: Bucket
    kafka: KafkaCluster
    writers: WriterParameter
    archive: Any = None
    """components.retention.ComplianceArchive (None: not declared: drill stacks, compliance_archive: false)."""

    @property
    def partition(self) -> str:
        return partition_of(self.cfg.region)

    def storage_document(self, batch_replication: Mapping[str, Any] | None = None) -> dict[str, Any]:
        extra = {} if batch_replication is None else {"batch_replication": dict(batch_replication)}
        if self.archive is not None:
            extra["archive"] = {"bucket": self.archive.bucket, "export_role_arn": self.archive.export_role_arn}
        return {**extra, "data_bucket": self.data.bucket, "data_bucket_arn": self.data.arn,
                "backups_bucket": self.backups.bucket, "writer_parameter": self.writers.name}

    def streaming_document(self, replicator_arn: pulumi.Input[str] | None = None,
                           failback_replicator_arn: pulumi.Input[str] | None = None,
                           mirrormaker2: Mapping[str, Any] | None = None) -> dict[str, Any]:
        extra = {} if failback_replicator_arn is None else {"failback_replicator_arn": failback_replicator_arn}
        if mirrormaker2 is not None:
            extra["mirrormaker2"] = dict(mirrormaker2)
        if self.cfg.streaming.applications:
            extra["client_parameters"] = all_client_parameters(self.cfg)
        return {**extra, "cluster_arn": self.kafka.arn, "bootstrap_brokers": self.kafka.bootstrap_brokers,
                "replicator_arn": replicator_arn, "bootstrap_parameter": self.kafka.bootstrap_parameter,
                "subnet_ids": self.network.subnet_ids,
                "security_group_ids": self.network.kafka_security_group_id.apply(lambda sg: [sg])}


def build(cfg: StackConfig, providers: prov.Providers,
          bootstrap_initial_value: pulumi.Input[str] | None = None,
          writer_initial_bucket: pulumi.Input[str] | None = None) -> Regional:
    """`bootstrap_initial_value`/`writer_initial_bucket`: where clients and writers start (the
    primary's brokers and data bucket); default: this region's own."""
    provider = providers.home
    opts = pulumi.ResourceOptions(provider=provider)
    account = prov.account_id(provider)
    prefix = cfg.resource_prefix()

    key = RegionKey("key", RegionKeyArgs(region=cfg.region, account_id=account, alias=prefix,
                                         description=f"{prefix}: databases, brokers, buckets, alarms"), opts=opts)
    net = cfg.network
    network = Network("network", NetworkArgs(
        name_prefix=prefix, db_ports=sorted({db.port for db in cfg.databases}),
        allowed_cidrs=net.allowed_cidrs, allowed_security_group_ids=net.allowed_security_group_ids,
        runbook_cidrs=net.runbook_cidrs, vpc_id=net.vpc_id, subnet_ids=net.subnet_ids, cidr=net.cidr,
        availability_zones=None if net.vpc_id else prov.availability_zones(provider)), opts=opts)

    def bucket_name(kind: str) -> pulumi.Output[str]:
        # bucket names are global: the account and region make them this account's own
        return account.apply(lambda a: f"{prefix}-{kind}-{a}-{cfg.region}")

    drill = cfg.ephemeral  # a drill stack must be destroyable: no compliance lock, buckets emptied
    data = Bucket("data", BucketArgs(bucket_name=bucket_name("data"), kms_key_arn=key.arn,
                                     force_destroy=drill), opts=opts)
    kb = cfg.kafka_backup if cfg.kafka_backup is not None and cfg.kafka_backup.enabled else None
    backups = Bucket("backups", BucketArgs(bucket_name=bucket_name("backups"), kms_key_arn=key.arn,
                                           object_lock_days=None if drill else cfg.backups.object_lock_days,
                                           force_destroy=drill, expiry_rules=() if kb is None else tuple(
                                               kafka_expiry_rules(kb.topics, kb.retention_days,
                                                                  kb.offsets_retention_days))), opts=opts)
    archive = None
    if cfg.backups.compliance_archive and not drill:  # a drill stack must be destroyable: no 7-year lock
        from components.retention import ComplianceArchive, ComplianceArchiveArgs
        b = cfg.backups
        archive = ComplianceArchive("compliance", ComplianceArchiveArgs(
            bucket_name=bucket_name("archive"), region=cfg.region, kms_key_arn=key.arn, account_id=account,
            retention_days=b.compliance_retention_days, glacier_after_days=b.compliance_glacier_after_days,
            deep_archive_after_days=b.compliance_deep_archive_after_days), opts=opts)
    st = cfg.streaming
    kafka = KafkaCluster("kafka", KafkaClusterArgs(
        cluster_name=f"{prefix}-kafka", subnet_ids=network.subnet_ids,
        security_group_ids=network.kafka_security_group_id.apply(lambda sg: [sg]), kms_key_arn=key.arn,
        kafka_version=st.kafka_version, broker_instance_type=st.broker_instance_type,
        broker_volume_gb=st.broker_volume_gb, bootstrap_parameter=bootstrap_parameter(cfg),
        client_parameters=client_parameters(cfg), bootstrap_initial_value=bootstrap_initial_value,
        region=cfg.region), opts=opts)
    writers = WriterParameter("data-writers", WriterParameterArgs(
        parameter_name=writer_parameter(cfg),
        initial_bucket=writer_initial_bucket if writer_initial_bucket is not None else data.bucket), opts=opts)
    return Regional(cfg=cfg, provider=provider, account_id=account, key=key, network=network, data=data,
                    backups=backups, kafka=kafka, writers=writers, archive=archive)


def cluster(regional: Regional, providers: prov.Providers, *, active_region: pulumi.Input[str],
            endpoints: Mapping[str, tuple[pulumi.Input[str], pulumi.Input[int]]],
            kafka_bootstrap_servers: pulumi.Input[str], data_bucket: pulumi.Input[str],
            local: Mapping[str, tuple[pulumi.Input[str], pulumi.Input[int], pulumi.Input[str] | None]]) -> Any:
    """The region's cluster (only with the `kubernetes` section): the ACTIVE endpoints for the
    applications, dumps of this region's own instances (`local`: host, port, secret ARN), and, for the
    databases with logical_replication, captures of their slots from the active primary."""
    from components.kubernetes import ClusterDr
    from components.kubernetes_args import ClusterDrArgs, DatabaseEndpoint, DumpTarget, SecretRef

    cfg = regional.cfg
    k = cfg.kubernetes
    assert k is not None

    def target(db, host, port) -> DumpTarget:
        _, _, secret_arn = local[db.name]
        ref = k.password_secrets.get(db.name)
        return DumpTarget(database=db.name, host=host, port=port, db_name=db.db_name, username=db.username,
                          engine_version=db.engine_version, secret_arn=None if ref else secret_arn,
                          password_secret=SecretRef(name=ref.name, key=ref.key) if ref else None)

    dumps = [target(db, *local[db.name][:2]) for db in cfg.databases] if k.logical_backups else []
    # CDC slots: captured from the ACTIVE primary into this region's bucket (docs/backups.md)
    slot_backups = [target(db, *endpoints[db.name]) for db in cfg.databases if db.logical_replication]
    images = {key: value for key, value in (("postgres_image", k.postgres_image), ("tools_image", k.tools_image))
              if value is not None}
    return ClusterDr("k8s", ClusterDrArgs(
        region=cfg.region, active_region=active_region,
        databases={name: DatabaseEndpoint(host=host, port=port) for name, (host, port) in endpoints.items()},
        kafka_bootstrap_servers=kafka_bootstrap_servers, data_bucket=data_bucket,
        backups_bucket=regional.backups.bucket, kms_key_arn=regional.key.arn,
        backup_role_arn=k.backup_role_arn, export_role_arn=k.export_role_arn, dumps=dumps,
        slot_backups=slot_backups,
        namespace=k.namespace, create_namespace=k.create_namespace, app_namespaces=k.app_namespaces,
        export_namespaces=k.export_namespaces, export_all_namespaces=k.export_all_namespaces,
        backup_schedule=k.backup_schedule, export_schedule=k.export_schedule, dump_size_limit=k.dump_size_limit,
        labels={"regionpair.io/stack": cfg.stack}, runbook_group=k.runbook_group,
        restart_deployments=k.restart_deployments, restore_group=k.restore_group,
        restore_secrets=k.restore_secrets, **images),
        opts=pulumi.ResourceOptions(provider=providers.kubernetes()))


def kubernetes_document(cfg: StackConfig) -> dict[str, Any] | None:
    """The outputs' `kubernetes` of this region: how the runbooks reach its cluster's active-endpoints
    ConfigMaps, and which Deployments they restart afterwards (never the kubeconfig, a secret). None
    without the section."""
    from contract.active_endpoints import CONFIGMAP_NAME

    k = cfg.kubernetes
    if k is None:
        return None
    doc: dict[str, Any] = {"context": k.runbook_context, "namespaces": list(k.app_namespaces) or [k.namespace],
                           "configmap": CONFIGMAP_NAME}
    if k.restart_deployments:  # only when listed: a stack without it exports what it always did
        doc["restart_deployments"] = {ns: list(names) for ns, names in k.restart_deployments.items()}
    return doc


def alarms(regional: Regional, specs: list[AlarmSpec]) -> Alarms:
    cfg = regional.cfg
    return Alarms("alarms", AlarmsArgs(topic_name=f"{cfg.resource_prefix()}-alarms", kms_key_arn=regional.key.arn,
                                       alarms=specs, email=cfg.alarm_email),
                  opts=pulumi.ResourceOptions(provider=regional.provider))


def storage_alarms(cfg: StackConfig) -> list[AlarmSpec]:
    return [free_storage(identifier(cfg, db.name), db.allocated_storage_gb) for db in cfg.databases]


def identifier(cfg: StackConfig, db_name: str) -> str:
    return f"{cfg.resource_prefix()}-{db_name}"
