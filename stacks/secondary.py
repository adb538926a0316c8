"""The dr stack: the DR region and every cross-region link.

It reads prod's exported `regions` through a StackReference, checks them against its own
config, and owns: the read replicas (or, with `promoted: true`, the promoted databases under
the same logical names), automated-backup replication, the MSK Replicator, the S3 replication
configuration on prod's bucket (with prod's region provider), the SECONDARY records, and the
runbook role; with `failback_replication: true` also what the failback's reverse flows need (the
reverse MSK Replicator, and the S3 Batch Replication role that seeds prod's bucket). It exports
both regions: prod's as read, and its own.
"""

from __future__ import annotations

from typing import Any, Mapping

import pulumi

from components.access import RegionScope, RunbookRole, RunbookRoleArgs
from components.alarms import (
    Alarms,
    AlarmsArgs,
    replica_lag,
    replicator_failure,
    replicator_lag,
    s3_replication_failures,
    s3_replication_latency,
)
from components.database import ReplicatedPostgres
from components.dns import FailoverRecords, FailoverRecordsArgs
from components.mskconnect import connector_alarms
from components.storage import (
    REPLICATION_RULE_ID,
    BatchReplicationRole,
    BatchReplicationRoleArgs,
    BucketReplication,
    BucketReplicationArgs,
)
from components.streaming import KafkaReplicator, KafkaReplicatorArgs
from contract import outputs
from stacks import exports, mskconnect, regional
from stacks.config import StackConfig
from stacks.config_reader import ConfigError
from stacks.primary import database_args, database_document, set_identifier
from stacks.providers import Providers


class ProdMismatch(ValueError):
    """What prod exports does not fit the dr stack's config."""


def prod_region(cfg: StackConfig, regions: Any, dns: Any) -> dict[str, Any]:
    """Check prod's exports against this config; return prod's region (plain data)."""
    where = f"stack {cfg.prod_stack}"
    if not isinstance(regions, Mapping) or not regions:
        raise ProdMismatch(f"{where} exports no `regions`; run `pulumi up -s prod` first (prod before dr)")
    envelope = exports.envelope(cfg)
    try:
        parsed = outputs.from_dict({**envelope, "stack": "prod", "dns": dns, "regions": regions})
    except outputs.OutputsError as exc:
        raise ProdMismatch(f"{where} exports a malformed document: {exc}") from None
    if set(parsed.regions) != {cfg.primary_region}:
        raise ProdMismatch(f"{where} exports regions {sorted(parsed.regions)}, but this stack's primary_region is "
                           f"{cfg.primary_region}; fix regionpair:primary_region")
    region = parsed.regions[cfg.primary_region]
    if region.role != "primary":
        raise ProdMismatch(f"{where}: region {cfg.primary_region} has role {region.role}, expected primary")
    for db in cfg.databases:
        theirs = region.databases.get(db.name)
        if theirs is None:
            raise ProdMismatch(f"{where} has no database {db.name!r} (it has {sorted(region.databases)}); a replica "
                               "needs its primary: add it to prod first, or remove it from this stack")
        if (theirs.db_name, theirs.username) != (db.db_name, db.username):
            raise ProdMismatch(f"database {db.name}: prod has db_name/username {theirs.db_name}/{theirs.username}, "
                               f"this config {db.db_name}/{db.username}; a replica inherits prod's, make them equal")
    missing = sorted(set(region.databases) - {db.name for db in cfg.databases})
    if missing:
        raise ProdMismatch(f"prod's databases {missing} have no replica here; every primary needs one: add them to "
                           "regionpair:databases of the dr stack")
    if region.streaming is None or not region.streaming.subnet_ids or not region.streaming.security_group_ids:
        raise ProdMismatch(f"{where} exports no Kafka network (streaming.subnet_ids/security_group_ids); the "
                           "replicator needs it: update the prod stack first")
    mine = tuple(regional.all_client_parameters(cfg)) if cfg.streaming.applications else ()
    if tuple(region.streaming.client_parameters) != mine:
        raise ProdMismatch(f"{where} has Kafka client parameters {list(region.streaming.client_parameters)}, this "
                           f"config {list(mine)}; a failover moves the clients of both regions: make "
                           "regionpair:streaming.applications equal in both stacks (prod first)")
    if region.storage is None or region.kms_key_arn is None:
        raise ProdMismatch(f"{where} exports no bucket or key; update the prod stack first")
    if parsed.dns.zone_name != cfg.dns.zone_name or parsed.dns.zone_id != cfg.dns.zone_id:
        raise ProdMismatch(f"prod's zone is {parsed.dns.zone_name} ({parsed.dns.zone_id}), this config's "
                           f"{cfg.dns.zone_name} ({cfg.dns.zone_id}); both halves of a record live in one zone")
    if parsed.dns.ttl_seconds != cfg.dns.ttl_seconds:
        raise ProdMismatch(f"prod's DNS TTL is {parsed.dns.ttl_seconds} s, this config's {cfg.dns.ttl_seconds} s; "
                           "make them equal (the RTO budget depends on it)")
    # normalised by the contract's reader (a StackReference hands numbers back as floats)
    return parsed.to_dict()["regions"][cfg.primary_region]


def run(cfg: StackConfig) -> pulumi.Output[dict]:
    if cfg.prod_stack is None or cfg.primary_region is None:
        raise ConfigError("prod_stack", cfg.prod_stack, "the dr stack needs prod_stack and primary_region")
    exports.warn_if_over_budget(cfg)
    providers = Providers(cfg)
    home = providers.home
    opts = pulumi.ResourceOptions(provider=home)

    ref = pulumi.StackReference(cfg.prod_stack, stack_name=cfg.prod_stack)
    prod = pulumi.Output.all(ref.get_output("regions"), ref.get_output("dns")).apply(lambda v: prod_region(cfg, v[0], v[1]))

    def from_prod(*path: str) -> pulumi.Output[Any]:
        def dig(value: Any) -> Any:
            for key in path:
                value = value[key]
            return value
        return prod.apply(dig)

    net = regional.build(cfg, providers, bootstrap_initial_value=None if cfg.promoted else
                         from_prod("streaming", "bootstrap_brokers"),
                         writer_initial_bucket=None if cfg.promoted else from_prod("storage", "data_bucket"))

    role = "promoted" if cfg.promoted else "replica"
    databases = {}
    for db in cfg.databases:
        source = from_prod("databases", db.name, "arn")
        databases[db.name] = (ReplicatedPostgres(db.name, database_args(cfg, db, net, role, source_db_arn=source),
                                                 opts=opts), source)

    replicator = mirrormaker = None
    if cfg.streaming.replication == "mirrormaker2":
        # MirrorMaker 2 on MSK Connect near the target, with the sandbox's connector settings. Promoted,
        # its connectors are not declared (the rest stays, unchanged, so nothing calls prod's region):
        # the failover deleted the source connector, and a checkpoint connector left running would
        # overwrite DR's group offsets from the old primary if it came back
        mirrormaker = mskconnect.mirrormaker2(cfg, net, providers, from_prod, running=not cfg.promoted)
    else:
        replicator = KafkaReplicator("replicator", KafkaReplicatorArgs(
            replicator_name=f"{cfg.resource_prefix()}-from-{cfg.primary_region}",
            source_cluster_arn=from_prod("streaming", "cluster_arn"),
            source_subnet_ids=from_prod("streaming", "subnet_ids"),
            # cross-region: no security groups for the source ("Network requirements"), the target's only
            target_cluster_arn=net.kafka.arn, target_subnet_ids=net.network.subnet_ids,
            target_security_group_ids=net.network.kafka_security_group_id.apply(lambda sg: [sg]),
            account_id=net.account_id, topics=cfg.streaming.topics, consumer_groups=cfg.streaming.consumer_groups,
            # after a failover it stays stopped, as the runbook left it: `pulumi up -s dr` must not copy the
            # old primary's topics and consumer offsets over what DR's clients wrote since
            stopped=cfg.promoted),
            opts=opts)

    # the failback's reverse flow, DR → prod, declared only when asked for (prod's region must be back
    # for it to be created): a replicator lives in the region it writes into
    failback_replicator = None
    if cfg.failback_replication:
        failback_replicator = KafkaReplicator("failback-replicator", KafkaReplicatorArgs(
            replicator_name=f"{cfg.resource_prefix()}-to-{cfg.primary_region}",
            source_cluster_arn=net.kafka.arn, source_subnet_ids=net.network.subnet_ids,
            target_cluster_arn=from_prod("streaming", "cluster_arn"),
            target_subnet_ids=from_prod("streaming", "subnet_ids"),
            target_security_group_ids=from_prod("streaming", "security_group_ids"),
            account_id=net.account_id, topics=cfg.streaming.topics, consumer_groups=cfg.streaming.consumer_groups,
            starting_position="EARLIEST", source_ready=[net.kafka.source_policy]),
            opts=pulumi.ResourceOptions(provider=providers.region(cfg.primary_region)))
        # its metrics are published in its own (the primary's) region, where this stack has no topic:
        # a topic there under prod's key (its policy lets CloudWatch use it), for the failback's duration
        Alarms("failback-alarms", AlarmsArgs(
            topic_name=f"{cfg.resource_prefix()}-failback-alarms", kms_key_arn=from_prod("kms_key_arn"),
            alarms=[replicator_lag(failback_replicator.replicator_name, cfg.objectives.rpo_seconds),
                    replicator_failure(failback_replicator.replicator_name)], email=cfg.alarm_email),
            opts=pulumi.ResourceOptions(provider=providers.region(cfg.primary_region)))

    replication = BucketReplication("data-replication", BucketReplicationArgs(
        source_provider=providers.region(cfg.primary_region), source_region=cfg.primary_region,
        destination_region=cfg.region, source_bucket=from_prod("storage", "data_bucket"),
        source_bucket_arn=from_prod("storage", "data_bucket_arn"), source_kms_key_arn=from_prod("kms_key_arn"),
        destination_bucket_arn=net.data.arn, destination_kms_key_arn=net.key.arn, account_id=net.account_id,
        # declared as before the failover, byte for byte: the configuration lives on prod's bucket, in
        # the region that may be down, so `pulumi up -s dr` after a failover must not change it. The
        # failover runbook disables the rule itself; promoted, Pulumi ignores the live rule (see the
        # component's `keep_live_rules`), so neither a refresh nor an up re-enables it
        enabled=True, keep_live_rules=cfg.promoted),
        opts=pulumi.ResourceOptions(provider=home, depends_on=[net.data.versioning]))

    # the failback's seeding of prod's bucket with what the reverse rule does not copy (everything DR
    # took before the rule was enabled): S3 Batch Replication of DR's bucket, run as this role, its
    # manifests and reports in DR's backups bucket. Declared with the reverse flows, not ahead of need
    batch = None
    if cfg.failback_replication:
        batch = BatchReplicationRole("data-batch-replication", BatchReplicationRoleArgs(
            region=cfg.region, source_bucket_arn=net.data.arn, report_bucket_arn=net.backups.arn,
            report_kms_key_arn=net.key.arn), opts=opts)

    # the password of every database is the primary's, in prod's secret; its Secrets Manager replica in
    # this region (same ARN, this region) is what DR reads once promoted, with prod's region gone
    prod_secrets = {db.name: from_prod("databases", db.name, "secret_arn") for db in cfg.databases}
    dr_secrets = {name: arn.apply(lambda a: outputs.secret_replica_arn(a, cfg.region) if a else None)
                  for name, arn in prod_secrets.items()}

    if cfg.kubernetes is not None:
        # active: prod's endpoints until a failover is recorded (promoted: true), then this region's;
        # the dumps read this region's own instances, with the password from this region's replica of
        # prod's secret (readable with prod's region down)
        if cfg.promoted:
            active_region, kafka, bucket = cfg.region, net.kafka.bootstrap_brokers, net.data.bucket
            endpoints = {name: (c.address, c.port) for name, (c, _) in databases.items()}
        else:
            active_region, kafka = cfg.primary_region, from_prod("streaming", "bootstrap_brokers")
            bucket = from_prod("storage", "data_bucket")
            endpoints = {db.name: (from_prod("databases", db.name, "endpoint"), from_prod("databases", db.name, "port"))
                         for db in cfg.databases}
        regional.cluster(net, providers, active_region=active_region, endpoints=endpoints,
                         kafka_bootstrap_servers=kafka, data_bucket=bucket,
                         local={name: (c.address, c.port, dr_secrets[name]) for name, (c, _) in databases.items()})

    specs = regional.storage_alarms(cfg)
    if not cfg.promoted:
        specs += [replica_lag(regional.identifier(cfg, db.name), cfg.objectives.rpo_seconds) for db in cfg.databases]
    if mirrormaker is not None:
        specs += [a for name in mirrormaker.connector_names.values() for a in connector_alarms(name)]
    if replicator is not None and not cfg.promoted:
        # a stopped replicator (promoted: everything excluded) copies nothing and publishes no latency,
        # which the latency alarm would read as a breach forever: its alarms go with it, and come back
        # when the pair is re-linked (promoted: false)
        specs += [replicator_lag(replicator.replicator_name, cfg.objectives.rpo_seconds),
                  replicator_failure(replicator.replicator_name)]
    # S3 publishes replication metrics in the destination's region: here. Kept after a failover (the
    # rule is disabled, nothing is published, notBreaching: OK), so the reconcile touches nothing
    source_bucket = from_prod("storage", "data_bucket")
    specs += [s3_replication_latency(cfg.resource_prefix(), source_bucket, net.data.bucket, REPLICATION_RULE_ID,
                                     cfg.objectives.rpo_seconds),
              s3_replication_failures(cfg.resource_prefix(), source_bucket, net.data.bucket, REPLICATION_RULE_ID)]
    alarms = regional.alarms(net, specs)

    dns = FailoverRecords("dns", FailoverRecordsArgs(
        zone_id=cfg.dns.zone_id, failover="SECONDARY", set_identifier=set_identifier(cfg),
        records={name: (cfg.dns.record_name(name), component.address) for name, (component, _) in databases.items()},
        ttl_seconds=cfg.dns.ttl_seconds), opts=opts)

    s3_arn = f"arn:{net.partition}:s3:::"
    prod_secret_list = pulumi.Output.all(*prod_secrets.values()).apply(lambda arns: [a for a in arns if a])
    runbooks = RunbookRole("runbooks", RunbookRoleArgs(
        role_name=f"{cfg.resource_prefix()}-runbooks", account_id=net.account_id, name_prefix=cfg.project,
        zone_id=cfg.dns.zone_id, partition=net.partition, databases=[db.name for db in cfg.databases],
        trusted_principal_arns=cfg.runbook_principals,
        health_check_ids=from_prod("dns", "health_check_id").apply(lambda h: [h] if h else []),
        regions=[
            RegionScope(
                region=cfg.primary_region,
                db_security_group_ids=prod.apply(lambda p: sorted({d["security_group_id"] for d in p["databases"].values()
                                                                   if d.get("security_group_id")})),
                kafka_cluster_arns=from_prod("streaming", "cluster_arn").apply(lambda a: [a]),
                replicator_arns=failback_replicator.arn.apply(lambda a: [a]) if failback_replicator else (),
                bucket_arns=prod.apply(lambda p: [p["storage"]["data_bucket_arn"]] + (
                    [s3_arn + p["storage"]["backups_bucket"]] if p["storage"].get("backups_bucket") else [])),
                kms_key_arns=from_prod("kms_key_arn").apply(lambda a: [a]),
                topic_arns=prod.apply(lambda p: [p["alarm_topic_arn"]] if p.get("alarm_topic_arn") else []),
                bootstrap_parameter=regional.bootstrap_parameter(cfg),
                client_parameters=sorted(regional.client_parameters(cfg).values()),
                writer_parameter=regional.writer_parameter(cfg),
                replication_role_arns=replication.role_arn.apply(lambda a: [a]),
                secret_arns=prod_secret_list,
                export_role_arns=prod.apply(lambda p: [p["storage"]["archive"]["export_role_arn"]]
                                            if p["storage"].get("archive") else []),
                # the failback's rebuild renames a region's database aside: only these identifiers
                rebuild_identifiers=prod.apply(lambda p: sorted(d["identifier"] for d in p["databases"].values()))),
            RegionScope(
                region=cfg.region,
                db_security_group_ids=net.network.db_security_group_id.apply(lambda sg: [sg]),
                kafka_cluster_arns=net.kafka.arn.apply(lambda a: [a]),
                replicator_arns=replicator.arn.apply(lambda a: [a]) if replicator else (),
                bucket_arns=pulumi.Output.all(net.data.arn, net.backups.arn),
                kms_key_arns=net.key.arn.apply(lambda a: [a]),
                topic_arns=alarms.topic_arn.apply(lambda a: [a]),
                bootstrap_parameter=regional.bootstrap_parameter(cfg),
                client_parameters=sorted(regional.client_parameters(cfg).values()),
                writer_parameter=regional.writer_parameter(cfg),
                # prod's secrets' replicas here (the databases of this stack have no secret of their own)
                secret_arns=prod_secret_list.apply(lambda arns: [outputs.secret_replica_arn(a, cfg.region)
                                                                 for a in arns]),
                batch_replication_role_arns=batch.role_arn.apply(lambda a: [a]) if batch else (),
                connector_arns=pulumi.Output.all(*mirrormaker.connector_arns.values()) if mirrormaker else (),
                export_role_arns=net.archive.export_role_arn.apply(lambda a: [a]) if net.archive else (),
                rebuild_identifiers=sorted(regional.identifier(cfg, db.name) for db in cfg.databases)),
        ]), opts=opts)

    own = {
        "role": "secondary", "stack": cfg.stack,
        "databases": {db.name: database_document(cfg, db, databases[db.name][0], net,
                                                 source_arn=None if cfg.promoted else databases[db.name][1],
                                                 # a replica's password is its primary's: the runbooks read
                                                 # prod's secret, or its replica in this region when prod's
                                                 # region does not answer; promoted, that replica directly
                                                 secret_arn=dr_secrets[db.name] if cfg.promoted
                                                 else prod_secrets[db.name])
                      for db in cfg.databases},
        "dns": {"failover": "SECONDARY", "set_identifier": set_identifier(cfg), "health_check_id": None},
        "streaming": net.streaming_document(
            replicator_arn=replicator.arn if replicator else None,
            mirrormaker2=None if mirrormaker is None else {"checkpoints_topic": mirrormaker.checkpoints_topic,
                                                           "connector_arns": mirrormaker.connector_arns},
            failback_replicator_arn=failback_replicator.arn if failback_replicator else None),
        "storage": net.storage_document(batch_replication=None if batch is None else {
            "role_arn": batch.role_arn, "report_bucket": net.backups.bucket, "report_prefix": batch.report_prefix}),
        "kms_key_arn": net.key.arn,
        "runbook_role_arn": runbooks.arn,
        "alarm_topic_arn": alarms.topic_arn,
        "alarms": sorted(alarms.alarm_names),
        "kubernetes": regional.kubernetes_document(cfg),
    }
    # prod's region as read (checked and normalised by prod_region), and this stack's own
    regions = pulumi.Output.all(prod, pulumi.Output.from_input(own)).apply(
        lambda v: {cfg.primary_region: v[0], cfg.region: v[1]})
    return exports.export(cfg, regions)
