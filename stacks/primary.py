"""The prod stack: the primary region. It stands alone and exports its own region."""

from __future__ import annotations

from typing import Any

import pulumi

from components.alarms import Alarms, AlarmsArgs
from components.database import ReplicatedPostgres, ReplicatedPostgresArgs
from components.dns import FailoverRecords, FailoverRecordsArgs, HealthCheckSpec
from components.keys import RegionKey, RegionKeyArgs
from stacks import exports, regional
from stacks.config import StackConfig
from stacks.config_database import DatabaseConfig
from stacks.providers import ROUTE53_METRICS_REGION, Providers


def database_args(cfg: StackConfig, db: DatabaseConfig, net: regional.Regional, role: str,
                  source_db_arn: pulumi.Input[str] | None = None) -> ReplicatedPostgresArgs:
    return ReplicatedPostgresArgs(
        identifier=regional.identifier(cfg, db.name), role=role, instance_class=db.instance_class,
        engine_version=db.engine_version, allocated_storage_gb=db.allocated_storage_gb,
        max_allocated_storage_gb=db.max_allocated_storage_gb, kms_key_arn=net.key.arn,
        db_subnet_group_name=net.network.db_subnet_group_name,
        security_group_ids=net.network.db_security_group_id.apply(lambda sg: [sg]), partition=net.partition,
        source_db_arn=source_db_arn, db_name=db.db_name, username=db.username, port=db.port,
        backup_retention_days=db.backup_retention_days, backup_window=db.backup_window,
        maintenance_window=db.maintenance_window, multi_az=db.multi_az,
        secret_replica_regions=(cfg.dr_region,) if role == "primary" and cfg.dr_region else (),
        auto_minor_version_upgrade=db.auto_minor_version_upgrade,
        deletion_protection=not cfg.ephemeral, final_snapshot=not cfg.ephemeral,
        secret_recovery_days=0 if cfg.ephemeral else 30,
        logical_replication=db.logical_replication)


def database_document(cfg: StackConfig, db: DatabaseConfig, component: ReplicatedPostgres, net: regional.Regional,
                      source_arn: pulumi.Input[str] | None = None,
                      secret_arn: pulumi.Input[str] | None = None) -> dict[str, Any]:
    """``secret_arn``: where the password is read (default: the primary's own secret; a replica, also
    once promoted, has none and uses its primary's password, from that secret or its replica)."""
    return {"identifier": component.identifier, "arn": component.arn, "endpoint": component.address,
            "port": component.port, "role": component.role, "db_name": db.db_name, "username": db.username,
            "secret_arn": component.secret_arn if secret_arn is None else secret_arn, "security_group_id": net.network.db_security_group_id,
            "source_arn": source_arn}


def cache(cfg: StackConfig, net: regional.Regional, opts: pulumi.ResourceOptions) -> Any:
    """The optional Redis replication group (components/cache.py), reachable on 6379 (TLS) by the clients
    the databases admit (network.allowed_cidrs / allowed_security_group_ids)."""
    import pulumi_aws as aws

    from components.cache import ReplicatedRedis, ReplicatedRedisArgs

    c = cfg.cache
    assert c is not None
    group_id = f"{cfg.resource_prefix()}-{c.name}"
    sg = aws.ec2.SecurityGroup(f"cache-{c.name}-sg", aws.ec2.SecurityGroupArgs(
        description=f"{group_id}: Redis clients", vpc_id=net.network.vpc_id, revoke_rules_on_delete=True,
        ingress=[aws.ec2.SecurityGroupIngressArgs(
            protocol="tcp", from_port=6379, to_port=6379, cidr_blocks=list(cfg.network.allowed_cidrs),
            security_groups=list(cfg.network.allowed_security_group_ids), description="Redis over TLS")],
        tags={"regionpair:cache": c.name}), opts=opts)
    return ReplicatedRedis(f"cache-{c.name}", ReplicatedRedisArgs(
        replication_group_id=group_id, node_type=c.node_type, engine_version=c.engine_version,
        num_cache_clusters=c.num_cache_clusters, subnet_ids=net.network.subnet_ids,
        security_group_ids=sg.id.apply(lambda i: [i]), kms_key_arn=net.key.arn,
        snapshot_retention_days=c.snapshot_retention_days, snapshot_window=c.snapshot_window,
        maintenance_window=c.maintenance_window, export=c.export, final_snapshot=not cfg.ephemeral), opts=opts)


def kafka_backup(cfg: StackConfig, net: regional.Regional, opts: pulumi.ResourceOptions) -> Any:
    """The optional Kafka topic backup (components/kafka_backup.py): MSK Connect reading this region's
    cluster into its backups bucket (the bucket's expiry rules come with the bucket, stacks/regional.py)."""
    from components.kafka_backup import KafkaTopicBackup, KafkaTopicBackupArgs
    k = cfg.kafka_backup
    assert k is not None and k.enabled
    return KafkaTopicBackup("kafka-backup", KafkaTopicBackupArgs(
        connector_name=f"{cfg.resource_prefix()}-kafka-backup", topics=dict(k.topics), cluster_arn=net.kafka.arn,
        bootstrap_brokers=net.kafka.bootstrap_brokers, subnet_ids=net.network.subnet_ids,
        security_group_ids=net.network.kafka_security_group_id.apply(lambda sg: [sg]), vpc_id=net.network.vpc_id,
        bucket_name=net.backups.bucket, bucket_arn=net.backups.arn, kms_key_arn=net.key.arn, region=cfg.region,
        plugin_bucket_arn=k.plugin_bucket_arn, plugin_file_key=k.plugin_file_key,
        kafka_connect_version=k.kafka_connect_version, mcu_count=k.mcu_count, worker_count=k.worker_count,
        route_table_ids=k.route_table_ids, s3_endpoint_exists=k.s3_endpoint_exists), opts=opts)


def set_identifier(cfg: StackConfig) -> str:
    return f"{cfg.stack}-{cfg.region}"


def run(cfg: StackConfig) -> pulumi.Output[dict]:
    exports.warn_if_over_budget(cfg)
    providers = Providers(cfg)
    home = providers.home
    net = regional.build(cfg, providers)
    opts = pulumi.ResourceOptions(provider=home)

    databases = {db.name: ReplicatedPostgres(db.name, database_args(cfg, db, net, "primary"), opts=opts)
                 for db in cfg.databases}
    alarms = regional.alarms(net, regional.storage_alarms(cfg))
    if cfg.kubernetes is not None:
        regional.cluster(
            net, providers, active_region=cfg.region,
            endpoints={name: (c.address, c.port) for name, c in databases.items()},
            kafka_bootstrap_servers=net.kafka.bootstrap_brokers, data_bucket=net.data.bucket,
            local={name: (c.address, c.port, c.secret_arn) for name, c in databases.items()})

    if cfg.cache is not None:
        cache(cfg, net, opts)
    if cfg.kafka_backup is not None and cfg.kafka_backup.enabled:
        kafka_backup(cfg, net, opts)

    # Route53 health-check metrics exist in us-east-1 only; the alarm and its topic live there
    if cfg.region == ROUTE53_METRICS_REGION:
        hc_provider, hc_topic = home, alarms.topic_arn
    else:
        hc_provider = providers.region(ROUTE53_METRICS_REGION)
        hc_opts = pulumi.ResourceOptions(provider=hc_provider)
        hc_key = RegionKey("route53-key", RegionKeyArgs(region=ROUTE53_METRICS_REGION, account_id=net.account_id,
                                                        alias=f"{cfg.resource_prefix()}-route53"), opts=hc_opts)
        hc_topic = Alarms("route53-alarms", AlarmsArgs(topic_name=f"{cfg.resource_prefix()}-route53-alarms",
                                                       kms_key_arn=hc_key.arn, email=cfg.alarm_email),
                          opts=hc_opts).topic_arn

    hc = cfg.dns.health_check
    dns = FailoverRecords("dns", FailoverRecordsArgs(
        zone_id=cfg.dns.zone_id, failover="PRIMARY", set_identifier=set_identifier(cfg),
        records={name: (cfg.dns.record_name(name), component.address) for name, component in databases.items()},
        ttl_seconds=cfg.dns.ttl_seconds,
        health_check=HealthCheckSpec(fqdn=hc.fqdn, port=hc.port, type=hc.type, resource_path=hc.resource_path,
                                     interval_seconds=hc.interval_seconds, failure_threshold=hc.failure_threshold),
        alarm_provider=hc_provider, alarm_topic_arn=hc_topic, alarm_name=f"{cfg.resource_prefix()}-health"),
        opts=opts)

    region_doc = {
        "role": "primary", "stack": cfg.stack,
        "databases": {db.name: database_document(cfg, db, databases[db.name], net) for db in cfg.databases},
        "dns": {"failover": "PRIMARY", "set_identifier": set_identifier(cfg), "health_check_id": dns.health_check_id},
        "streaming": net.streaming_document(),
        "storage": net.storage_document(),
        "kms_key_arn": net.key.arn,
        "runbook_role_arn": None,
        "alarm_topic_arn": alarms.topic_arn,
        "alarms": sorted(alarms.alarm_names + [dns.alarm_name]),
        "kubernetes": regional.kubernetes_document(cfg),
    }
    return exports.export(cfg, {cfg.region: region_doc})
