"""The optional `kafka_backup` section of the prod stack's config, and the facts it is checked against.

How the backup runs in AWS (chosen after reading both options; docs/backups.md says more):

- **MSK Connect with Aiven's S3 sink connector** (Apache License 2.0; Confluent's S3 sink is under
  the Confluent Community License, so it is not the default here). It keeps each record's key,
  value, offset, timestamp and headers, names files by topic, partition and first offset, and its
  prefix template takes ``{{timestamp:unit=YYYY|MM|dd|HH}}`` (the connector's clock), which gives
  the ``topic=/year=/month=/day=/hour=`` layout. Chosen.
- Amazon Data Firehose with MSK as source converts to Parquet only from JSON records through a
  Glue table schema, and does not keep the partition and offset: a replay could not prove itself
  exact. Not chosen.

The connector needs a plugin artefact (the connector's ZIP in an S3 bucket) that the operator
supplies, so the section is off by default (``enabled: false``); enabled, it declares the custom
plugin, the connector, its service execution role, its worker log group, an S3 gateway endpoint
(the stacks' VPCs have no internet gateway), and lifecycle expiry on the backups bucket per topic
class (components/kafka_backup.py). Consumer-group offset snapshots are not something the sink
connector writes; in AWS they are declared as lifecycle-managed prefix ``kafka/offsets/`` only
(docs/backups.md: what is and is not running there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from components.aws_limits import MAX_LIFECYCLE_RULES
from contract import kafka_backup as kb
from stacks import connectconfig
from stacks.config_reader import ConfigError

BUCKET_RULES_BESIDES = 2
"""The backups bucket's own archive rule (components/storage.py) and the offsets rule."""
ROUTE_TABLE = re.compile(r"^rtb-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class KafkaBackupConfig:
    topics: Mapping[str, str]
    """Topic → class (``critical`` or ``standard``)."""
    enabled: bool = False
    retention_days: Mapping[str, int] = field(default_factory=lambda: dict(kb.RETENTION_DAYS))
    offsets_retention_days: int = kb.OFFSETS_RETENTION_DAYS
    plugin_bucket_arn: str | None = None
    plugin_file_key: str | None = None
    kafka_connect_version: str = "3.7.x"
    mcu_count: int = 1
    worker_count: int = 1
    route_table_ids: tuple[str, ...] = ()
    """Where the S3 gateway endpoint is attached (the subnets' route tables)."""
    s3_endpoint_exists: bool = False
    """The VPC already routes S3 through a gateway endpoint (or a NAT): declare none."""


def read(top: Any, role: str) -> KafkaBackupConfig | None:
    """``top`` is the config's top-level reader (``stacks.config_reader.section``)."""
    if top.get("kafka_backup", None) is None:
        return None
    if role != "primary":
        raise ConfigError("kafka_backup", top.get("kafka_backup"), "only the prod stack declares the Kafka topic "
                          "backup (it reads prod's cluster into prod's backups bucket); remove it from the dr stack")
    o = top.obj("kafka_backup")
    raw_topics = o.get("topics")
    if not isinstance(raw_topics, Mapping) or not raw_topics:
        raise ConfigError(o.key("topics"), raw_topics, "a mapping of topic name to class (critical | standard), "
                          "e.g. {trades.executed: critical}")
    ro = o.obj("retention_days", required=False)
    classes = {name: ro.integer(name, days, minimum=1) for name, days in kb.RETENTION_DAYS.items()}
    ro.done()
    try:
        kb.check_classes(classes)
    except ValueError as exc:
        raise ConfigError(ro.key("critical"), classes.get("critical"), str(exc)) from None
    topics: dict[str, str] = {}
    for t, cls in raw_topics.items():
        try:
            kb.check_topic(str(t))
        except ValueError as exc:
            raise ConfigError(o.key(f"topics.{t}"), t, str(exc)) from None
        if cls not in classes:
            raise ConfigError(o.key(f"topics.{t}"), cls, f"allowed: {' | '.join(sorted(classes))}")
        topics[str(t)] = cls
    if len(topics) + BUCKET_RULES_BESIDES > MAX_LIFECYCLE_RULES:
        raise ConfigError(o.key("topics"), f"{len(topics)} topics",
                          f"one lifecycle rule per topic plus {BUCKET_RULES_BESIDES} exceeds S3's {MAX_LIFECYCLE_RULES} "
                          "rules per bucket (Amazon S3 API Reference, 'LifecycleConfiguration'); back up fewer topics")
    enabled = o.boolean("enabled", False)
    plugin_bucket_arn, plugin_file_key, _ = connectconfig.plugin_location(
        o, "plugin_bucket_arn", "plugin_file_key", required=False, contents="the connector's ZIP or JAR in that bucket")
    cfg = KafkaBackupConfig(
        topics=topics, enabled=enabled, retention_days=classes,
        offsets_retention_days=o.integer("offsets_retention_days", kb.OFFSETS_RETENTION_DAYS, minimum=1, maximum=3650),
        plugin_bucket_arn=plugin_bucket_arn, plugin_file_key=plugin_file_key,
        kafka_connect_version=connectconfig.kafkaconnect_version(o, "kafka_connect_version"),
        mcu_count=connectconfig.mcu_count(o, "mcu_count"),
        worker_count=connectconfig.worker_count(o, "worker_count"),
        route_table_ids=o.strings("route_table_ids", [], pattern=ROUTE_TABLE, hint="route table ids rtb-…"),
        s3_endpoint_exists=o.boolean("s3_endpoint_exists", False))
    if enabled:
        for key in ("plugin_bucket_arn", "plugin_file_key"):
            if getattr(cfg, key) is None:
                raise ConfigError(o.key(key), None, "enabled: true needs the connector's plugin artefact (Aiven's S3 "
                                  "sink ZIP, Apache 2.0) uploaded to S3 by you: name plugin_bucket_arn and "
                                  "plugin_file_key, or set enabled: false")
        if not cfg.route_table_ids and not cfg.s3_endpoint_exists:
            raise ConfigError(o.key("route_table_ids"), [], "the connector's workers run in the stack's private subnets, "
                              "which have no internet gateway: S3 is reached only through a gateway VPC endpoint "
                              "whose route goes into each route table listed (AWS's own page on gateway endpoints was not "
                              "found with the search tool; this rests on third-party descriptions of AWS::EC2::VPCEndpoint "
                              "Gateway). Name the subnets' "
                              "route tables, or set s3_endpoint_exists: true if the VPC already has one (or a NAT)")
    o.done()
    return cfg
