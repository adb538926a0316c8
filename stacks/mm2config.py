"""The ``streaming.replication`` choice and the ``streaming.mirrormaker2`` section of the stack config.

``msk-replicator`` (default): the dr stack declares the MSK Replicator, as before.
``mirrormaker2``: the dr stack runs MirrorMaker 2 on MSK Connect near the target (the DR region)
instead, with the connector settings of ``contract/mirrormaker2.py`` (the sandbox's), and the section
says what AWS cannot infer: where the plugin ZIP is, the capacity, and the network path to the
primary region's brokers. Read by ``stacks.config.read``; every refusal is a ``ConfigError``
naming the key, the value and the fix, and the document the rule comes from. The keys every MSK
Connect section shares (version, MCUs, workers, plugin location) are read by ``stacks/connectconfig.py``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from contract import mirrormaker2
from stacks import connectconfig
from stacks.config_reader import MISSING, ConfigError
from stacks.connectconfig import DOC_CAPACITY

REPLICATIONS = ("msk-replicator", "mirrormaker2")
IDENTITY_POLICY_MIN = "3.7.x"
"""MirrorMaker 2's IdentityReplicationPolicy (the stacks' identical topic names) is part of Apache
Kafka from 3.0 (KAFKA-9726; Apache Kafka Javadoc, org.apache.kafka.connect.mirror.
IdentityReplicationPolicy): Kafka Connect 2.7.1 does not have it, so only 3.7.x can run the flow."""
CAPACITY_MODES = ("autoscaled", "provisioned")
DOC_OUTSIDE_VPC = 'MSK Developer Guide, "Access from within AWS but outside cluster\'s VPC" (VPC peering, Transit Gateway)'


@dataclass(frozen=True)
class MirrorMaker2Config:
    plugin_bucket_arn: str
    """The S3 bucket (in the DR region) holding the custom plugin ZIP."""
    plugin_file_key: str
    """The ZIP's key: connect-mirror-<v>.jar and connect-mirror-client-<v>.jar of Apache Kafka 3.7
    (Maven Central, org.apache.kafka) and the aws-msk-iam-auth library with its dependencies (its uber jar), for
    MirrorMaker 2's own IAM clients. MSK Connect copies the object when the plugin is created."""
    source_cidrs: tuple[str, ...]
    """The primary region's broker subnets, reached from DR's VPC through VPC peering or a Transit
    Gateway (which the stacks do not create): the connectors' egress on 9098 goes there."""
    connector_cidrs: tuple[str, ...]
    """Where the connectors' workers take their addresses (DR's subnets): the primary brokers' group
    admits these on 9098 (security groups cannot be referenced across regions)."""
    plugin_object_version: str | None = None
    """The object version to use (versioned bucket). Default: the current object."""
    kafkaconnect_version: str = "3.7.x"
    capacity_mode: str = "autoscaled"
    mcu_count: int = 1
    workers: int = 1
    """provisioned: the worker count."""
    min_workers: int = 1
    max_workers: int = 2
    scale_in_cpu: int = 20
    scale_out_cpu: int = 80
    log_retention_days: int = 30


def read(so: Any, role: str, network_cidr: str, vpc_id: str | None) -> tuple[str, MirrorMaker2Config | None]:
    """``so``: the config's ``streaming`` object (``stacks.config_reader.section``). Returns the replication
    choice and, for ``mirrormaker2`` on the dr stack, its section."""
    replication = so.string("replication", "msk-replicator", choices=REPLICATIONS)
    present = so.get("mirrormaker2", None) is not None
    if not present:
        if replication == "mirrormaker2" and role == "secondary":
            raise ConfigError(so.key("mirrormaker2"), MISSING,
                              "replication mirrormaker2 needs the section: plugin {bucket_arn, file_key}, "
                              "source_cidrs (the primary's broker subnets, reached through VPC peering or a Transit "
                              "Gateway)")
        return replication, None
    if role != "secondary":
        raise ConfigError(so.key("mirrormaker2"), so.get("mirrormaker2"), "only the dr stack runs MirrorMaker 2 (near "
                          "the target, the DR region); remove the section here")
    if replication != "mirrormaker2":
        raise ConfigError(so.key("mirrormaker2"), so.get("mirrormaker2"),
                          f"the section is read only with replication: mirrormaker2 (this stack has {replication}); "
                          "set replication: mirrormaker2 or remove the section")
    mo = so.obj("mirrormaker2")
    po = mo.obj("plugin")
    bucket_arn, file_key, object_version = connectconfig.plugin_location(
        po, "bucket_arn", "file_key", types=("zip",), version_key="object_version",
        contents="the stacks declare contentType ZIP: connect-mirror and connect-mirror-client 3.7.x and "
                 "aws-msk-iam-auth -all")
    po.done()
    version = connectconfig.kafkaconnect_version(mo, "kafkaconnect_version")
    if version != IDENTITY_POLICY_MIN:
        raise ConfigError(mo.key("kafkaconnect_version"), version,
                          "Kafka Connect 2.7.1 has no IdentityReplicationPolicy (Apache Kafka 3.0+, KAFKA-9726), which "
                          "keeps topic names identical as the stacks require; use 3.7.x")
    co = mo.obj("capacity", required=False)
    mode = co.string("mode", "autoscaled", choices=CAPACITY_MODES)
    mcu = connectconfig.mcu_count(co, "mcu_count")
    allowed = {"autoscaled": ("mode", "mcu_count", "min_workers", "max_workers", "scale_in_cpu", "scale_out_cpu"),
               "provisioned": ("mode", "mcu_count", "workers")}[mode]
    wrong = sorted(set(co.data) - set(allowed))
    if wrong:
        raise ConfigError(co.key(wrong[0]), co.data[wrong[0]], f"not a setting of {mode} capacity, which takes "
                          f"{', '.join(allowed)}")
    workers = connectconfig.worker_count(co, "workers", maximum=1000) if mode == "provisioned" else 1
    min_w = co.integer("min_workers", 1, minimum=1, maximum=1000, why="at least one worker") if mode == "autoscaled" else 1
    max_w = co.integer("max_workers", max(2, min_w), minimum=min_w, maximum=1000,
                       why="at least min_workers") if mode == "autoscaled" else 2
    scale_in = co.integer("scale_in_cpu", 20, minimum=1, maximum=100,
                          why=f"a CPU percentage 1-100 ({DOC_CAPACITY})") if mode == "autoscaled" else 20
    scale_out = co.integer("scale_out_cpu", 80, minimum=1, maximum=100,
                           why=f"a CPU percentage 1-100 ({DOC_CAPACITY})") if mode == "autoscaled" else 80
    if mode == "autoscaled" and scale_in >= scale_out:
        raise ConfigError(co.key("scale_in_cpu"), scale_in, f"must be below scale_out_cpu ({scale_out}): a connector "
                          "between the two thresholds would otherwise be scaled in and out at once")
    co.done()
    source_cidrs = _cidrs(mo, "source_cidrs", None, ConfigError,
                          f"the primary region's broker subnets as CIDRs, reached from this VPC through VPC peering or a "
                          f"Transit Gateway that you create ({DOC_OUTSIDE_VPC}); MSK Connect runs in this region's VPC "
                          "only")
    default_connector = None if vpc_id else [network_cidr]
    connector_cidrs = _cidrs(mo, "connector_cidrs", default_connector, ConfigError,
                             "the CIDRs of this stack's subnets (where the workers take their addresses); needed with "
                             "network.vpc_id (without it the stack's own VPC CIDR is used)")
    retention = mo.integer("log_retention_days", 30, minimum=1, maximum=3653, why="days the worker logs are kept")
    mo.done()
    return replication, MirrorMaker2Config(
        plugin_bucket_arn=bucket_arn, plugin_file_key=file_key, plugin_object_version=object_version,
        source_cidrs=source_cidrs, connector_cidrs=connector_cidrs, kafkaconnect_version=version, capacity_mode=mode,
        mcu_count=mcu, workers=workers, min_workers=min_w, max_workers=max_w, scale_in_cpu=scale_in,
        scale_out_cpu=scale_out, log_retention_days=retention)


def _cidrs(o: Any, name: str, default: Any, error: type, what: str) -> tuple[str, ...]:
    value = o.strings(name, MISSING if default is None else default, hint=what)
    if not value:
        raise error(o.key(name), [], f"name at least one: {what}")
    for i, cidr in enumerate(value):
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            raise error(f"{o.key(name)}[{i}]", cidr, f"a CIDR such as 10.10.0.0/16: {what}") from None
        if net.prefixlen == 0:
            raise error(f"{o.key(name)}[{i}]", cidr, "0.0.0.0/0 would open Kafka's port to everyone; name the subnets")
    return value


def check_patterns(topics: tuple[str, ...], groups: tuple[str, ...], key: Any) -> None:
    """MirrorMaker 2 takes ``streaming.topics``/``consumer_groups`` as comma-separated regexes: the
    sandbox's ``connector_settings`` refuses what would not survive that (commas, bars, spaces)."""
    for name, values in (("topics", topics), ("consumer_groups", groups)):
        try:
            mirrormaker2.connector_settings(values, values, 3)
        except ValueError as exc:
            raise ConfigError(key(name), list(values), f"MirrorMaker 2 lists these comma-separated: {exc}; write "
                              "one pattern per entry (a|b as two entries)") from None
