"""The dr stack's MirrorMaker 2 on MSK Connect (``streaming.replication: mirrormaker2``): the
component's arguments from the stack config, prod's exports and this region's network."""

from __future__ import annotations

from typing import Any, Callable

import pulumi
import pulumi_aws as aws

from components import mskconnect_common as connect
from components.mskconnect import MirrorMaker2Args, MirrorMaker2OnMskConnect
from stacks.config import StackConfig


def capacity(cfg: StackConfig) -> aws.mskconnect.ConnectorCapacityArgs:
    m = cfg.streaming.mirrormaker2
    assert m is not None
    if m.capacity_mode == "provisioned":
        return connect.provisioned_capacity(m.mcu_count, m.workers)
    return connect.autoscaled_capacity(m.mcu_count, m.min_workers, m.max_workers, m.scale_in_cpu, m.scale_out_cpu)


def mirrormaker2(cfg: StackConfig, net: Any, providers: Any, from_prod: Callable[..., pulumi.Output[Any]],
                 running: bool = True) -> MirrorMaker2OnMskConnect:
    m = cfg.streaming.mirrormaker2
    assert m is not None and cfg.primary_region is not None
    return MirrorMaker2OnMskConnect("mirrormaker2", MirrorMaker2Args(
        name_prefix=f"{cfg.resource_prefix()}-mm2", region=cfg.region, account_id=net.account_id,
        source_alias=cfg.primary_region, target_alias=cfg.region,
        source_cluster_arn=from_prod("streaming", "cluster_arn"),
        source_bootstrap=from_prod("streaming", "bootstrap_brokers"),
        target_cluster_arn=net.kafka.arn, target_bootstrap=net.kafka.bootstrap_brokers,
        vpc_id=net.network.vpc_id, subnet_ids=net.network.subnet_ids,
        target_security_group_id=net.network.kafka_security_group_id,
        source_security_group_id=from_prod("streaming", "security_group_ids").apply(lambda groups: groups[0]),
        source_provider=providers.region(cfg.primary_region), source_cidrs=m.source_cidrs,
        connector_cidrs=m.connector_cidrs, plugin_bucket_arn=m.plugin_bucket_arn, plugin_file_key=m.plugin_file_key,
        plugin_object_version=m.plugin_object_version, kms_key_arn=net.key.arn, topics=cfg.streaming.topics,
        groups=cfg.streaming.consumer_groups, kafkaconnect_version=m.kafkaconnect_version, capacity=capacity(cfg),
        log_retention_days=m.log_retention_days, running=running, partition=net.partition),
        opts=pulumi.ResourceOptions(provider=providers.home))
