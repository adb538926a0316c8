"""The stack config, read into typed frozen objects and validated before any resource exists.

`read(values, ...)` takes a plain mapping of config key → value (what `Pulumi.<stack>.yaml`
holds under `config:`, without the `regionpair:` prefix; `aws:region` is passed as `region`), so
tests feed dicts. `from_pulumi()` is the thin adapter over `pulumi.Config`.

The sections with most keys are read in their own modules (`config_database`, `config_network`,
`config_kubernetes`, `mm2config`, `kafka_backup`); all read through `config_reader.section`.

Every problem raises `ConfigError` naming the key (a dotted path), the value seen and what is
allowed. Unknown keys are refused too: a misspelt `backup_retention` must not silently fall back
to a default in the worst hour of the year.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from components.aws_limits import (
    BUCKET_NAME,
    MSK_REPLICATOR_MIN_KAFKA,
    MSK_REPLICATOR_UNSUPPORTED_BROKERS,
    bucket_name_reserved,
    kafka_version_tuple,
)
from contract import outputs
from stacks import kafka_backup as kafka_backup_section, mm2config
from stacks.config_database import BACKUP_WINDOW, MAINTENANCE_WINDOW, DatabaseConfig, read_database
from stacks.config_kubernetes import KubernetesConfig, read_kubernetes
from stacks.config_network import DnsConfig, NetworkConfig, read_dns, read_network
from stacks.config_reader import MISSING, PROJECT, ConfigError, section
from stacks.mm2config import MirrorMaker2Config

ROLES = ("primary", "secondary")

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_KAFKA_VERSION = re.compile(r"^\d+\.\d+\.\d+(\.x|\.tiered)?$")
_APPLICATION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_BROKER_TYPE = re.compile(r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK_REF = re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$")


# --------------------------------------------------------------------------------------------
# The typed config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheConfig:
    """The optional `cache` section: one Redis replication group in the primary region, daily automatic
    snapshots, and the same-region bucket its snapshots are exported to (docs/backups.md)."""
    name: str
    node_type: str
    engine_version: str = "7.1"
    num_cache_clusters: int = 2
    snapshot_retention_days: int = 7
    snapshot_window: str = "04:00-05:00"
    maintenance_window: str = "sun:05:30-sun:06:30"
    export: bool = True


COMPONENTS = outputs.COMPONENTS
"""The components with objectives of their own (planning documents 001 and 004 give RTO/RPO per
component: the database, Kafka, object storage): the outputs contract's."""


@dataclass(frozen=True)
class ObjectivesConfig:
    rto_seconds: int
    """The service's: met when every component is recovered."""
    rpo_seconds: int
    components: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Component → (RTO, RPO) declared for it under ``objectives.components``; a component not
    declared has the service's. Each is at most the service's (the service is recovered only when
    every component is)."""

    def of(self, component: str) -> tuple[int, int]:
        """(RTO, RPO) of one component."""
        return self.components.get(component, (self.rto_seconds, self.rpo_seconds))


@dataclass(frozen=True)
class StreamingConfig:
    kafka_version: str = "3.6.0"
    broker_instance_type: str = "kafka.m5.large"
    broker_volume_gb: int = 1000
    topics: tuple[str, ...] = (".*",)
    """Topic name patterns the replicator copies (dr)."""
    consumer_groups: tuple[str, ...] = (".*",)
    """Consumer group patterns whose offsets the replicator synchronises (dr)."""
    applications: tuple[str, ...] = ()
    """Applications that read their own bootstrap parameter (``/<project>/kafka/<app>/bootstrap-brokers``)
    besides the shared one; a failover publishes DR's brokers to every one."""
    replication: str = "msk-replicator"
    """primary → DR: ``msk-replicator`` or ``mirrormaker2`` (on MSK Connect; stacks/mm2config.py)."""
    mirrormaker2: "MirrorMaker2Config | None" = None
    """dr with ``mirrormaker2``: the plugin, capacity and network of the connectors."""


def check_replicator_cluster(streaming: StreamingConfig, key: Any = lambda name: f"streaming.{name}") -> None:
    """Both clusters are MSK Replicator sources and targets (primary → DR, and DR → primary for the
    failback), so each must run a Kafka version and broker type the Replicator supports."""
    if kafka_version_tuple(streaming.kafka_version) < MSK_REPLICATOR_MIN_KAFKA:
        raise ConfigError(key("kafka_version"), streaming.kafka_version,
                          "MSK Replicator with identical topic names and multi-VPC private connectivity needs Kafka "
                          "2.8.1 or later (MSK Developer Guide, \"Supported cluster types and versions for MSK "
                          "Replicator\"); choose e.g. 3.6.0")
    if streaming.broker_instance_type in MSK_REPLICATOR_UNSUPPORTED_BROKERS:
        raise ConfigError(key("broker_instance_type"), streaming.broker_instance_type,
                          "MSK Replicator and multi-VPC private connectivity do not support kafka.t3.small brokers "
                          "(MSK Developer Guide, \"Supported cluster types and versions for MSK Replicator\"); use "
                          "kafka.m5.large or larger")


@dataclass(frozen=True)
class BackupsConfig:
    object_lock_days: int = 30
    snapshot_retention_days: int = 90
    """Manual tier (document 001: 90 days): the retention runbook (and the snapshot runbook's
    --enforce-retention) deletes the runbooks' own snapshots older than this."""
    snapshot_keep_newest: int = 3
    """…but never the newest N of a region, whatever their age."""
    compliance_archive: bool = True
    """Compliance tier: the archive bucket RDS snapshot exports go to, and the export role (components/retention.py)."""
    compliance_retention_days: int = 2557
    """Compliance tier (document 001: 7 years): the archive's COMPLIANCE Object Lock and its expiry."""
    compliance_glacier_after_days: int = 30
    """Archive objects move to GLACIER after this many days."""
    compliance_deep_archive_after_days: int = 180
    """…and to DEEP_ARCHIVE after this many."""


GLACIER_MIN_DAYS = 90
"""S3 User Guide, "Constraints and considerations for transitions" (minimum storage duration): S3 Glacier
Flexible Retrieval bills at least 90 days, S3 Glacier Deep Archive at least 180."""
DEEP_ARCHIVE_MIN_DAYS = 180


def check_compliance_tier(b: "BackupsConfig", key: Any = lambda name: f"backups.{name}") -> None:
    """The archive's lifecycle: GLACIER, then DEEP_ARCHIVE at least its 90-day minimum later, and the
    7-year expiry at least Deep Archive's 180-day minimum after that (earlier moves or deletes are
    billed as if the object had stayed: S3 User Guide, "Constraints and considerations for transitions")."""
    if not b.compliance_archive:
        return
    if b.compliance_deep_archive_after_days < b.compliance_glacier_after_days + GLACIER_MIN_DAYS:
        raise ConfigError(key("compliance_deep_archive_after_days"), b.compliance_deep_archive_after_days,
                          f"at least {b.compliance_glacier_after_days + GLACIER_MIN_DAYS}: objects stay in GLACIER "
                          f"its minimum of {GLACIER_MIN_DAYS} days before DEEP_ARCHIVE (S3 User Guide, 'Constraints "
                          "and considerations for transitions')")
    if b.compliance_retention_days < b.compliance_deep_archive_after_days + DEEP_ARCHIVE_MIN_DAYS:
        raise ConfigError(key("compliance_retention_days"), b.compliance_retention_days,
                          f"at least {b.compliance_deep_archive_after_days + DEEP_ARCHIVE_MIN_DAYS}: the archive expires "
                          f"objects no sooner than DEEP_ARCHIVE's minimum of {DEEP_ARCHIVE_MIN_DAYS} days after they "
                          "move there (S3 User Guide, 'Constraints and considerations for transitions')")


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    role: str
    region: str
    databases: tuple[DatabaseConfig, ...]
    network: NetworkConfig
    dns: DnsConfig
    objectives: ObjectivesConfig
    expected_promotion_seconds: int
    streaming: StreamingConfig
    backups: BackupsConfig
    tags: Mapping[str, str] = field(default_factory=dict)
    alarm_email: str | None = None
    promoted: bool = False
    """dr only: the replica has been promoted (a failover happened); declare it standalone, and the
    primary → DR replication (Kafka and S3) stopped, as the failover runbook left it."""
    failback_replication: bool = False
    """dr only, with ``promoted``: declare what the failback's reverse flows need: the reverse MSK
    Replicator (DR → primary), and the role with which the failback starts S3 Batch Replication of
    the DR bucket's existing versions (exported as ``storage.batch_replication``)."""
    prod_stack: str | None = None
    """dr only: the prod stack's fully qualified name, for the StackReference."""
    primary_region: str | None = None
    """dr only: the prod stack's region (checked against what prod exports)."""
    dr_region: str | None = None
    """prod only: the DR region, where each database's password secret is replicated (Secrets Manager
    replica) so the runbooks and the promoted replica's clients read it when prod's region is down."""
    ephemeral: bool = False
    """A drill stack, destroyed after the drill: no deletion protection, no final snapshot, no
    compliance object lock, buckets emptied on destroy. Never for a stack that holds real data."""
    kubernetes: KubernetesConfig | None = None
    """The region's cluster (optional): none of its objects are declared without this section."""
    runbook_principals: tuple[str, ...] = ()
    """dr only: the IAM roles/users that may assume the runbook role (never a whole account)."""
    cache: "CacheConfig | None" = None
    """prod only (optional): an ElastiCache Redis replication group with its backups (components/cache.py)."""
    kafka_backup: Any = None
    """prod only (optional): ``stacks.kafka_backup.KafkaBackupConfig``, the Kafka topic backup (components/kafka_backup.py)."""

    @property
    def is_primary(self) -> bool:
        return self.role == "primary"

    def resource_prefix(self) -> str:
        """Physical name prefix of this stack's resources, e.g. `regionpair-prod`."""
        return f"{self.project}-{self.stack}"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


_WHOLE_ACCOUNT = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")


def _runbook_principals(principals: tuple[str, ...]) -> None:
    """Who may assume the runbook role: named roles or users, never a whole account (IAM User Guide,
    "AWS JSON policy elements: Principal": an account principal delegates to every identity of the
    account that its own policies allow)."""
    if not principals:
        raise ConfigError("runbook_principals", MISSING, "name the IAM roles (or users) that may assume the "
                          "runbook role, e.g. [arn:aws:iam::123456789012:role/oncall-sre]; the stacks no longer "
                          "trust the whole account by default")
    for i, p in enumerate(principals):
        if _WHOLE_ACCOUNT.match(p):
            raise ConfigError(f"runbook_principals[{i}]", p, "a whole account would let every role and user that "
                              "IAM allows there assume the runbook role; name the on-call roles instead, e.g. "
                              "arn:aws:iam::123456789012:role/oncall-sre")
        if not _PRINCIPAL_ARN.match(p):
            raise ConfigError(f"runbook_principals[{i}]", p, "expected an IAM role or user ARN, "
                              "arn:aws:iam::<account>:role/<name>")


def read(values: Mapping[str, Any], *, stack: str, project: str = PROJECT,
         secret_keys: frozenset[str] | None = None) -> StackConfig:
    """Validate a stack's config. `values` maps the project's config keys (no `regionpair:` prefix)
    plus `region` (from `aws:region`) to their values; objects and lists as Python values.
    `secret_keys` (the keys stored as secrets, when known) lets values that must be secrets be checked."""
    top = section(values, "")
    role = top.string("role", choices=ROLES)
    region = top.string("region", pattern=_REGION, hint="an AWS region such as us-east-1 (set aws:region)")

    raw_dbs = top.get("databases")
    if not isinstance(raw_dbs, list) or not raw_dbs:
        raise ConfigError("databases", raw_dbs, "expected a non-empty list of databases (name, instance_class, "
                          "engine_version, allocated_storage_gb, …)")
    databases = tuple(read_database(section(d, f"databases[{i}]")) for i, d in enumerate(raw_dbs))
    names = [d.name for d in databases]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ConfigError(f"databases[{i}].name", n, "already used by another database; names are unique")

    network = read_network(top.obj("network"), role)
    dns = read_dns(top.obj("dns"))
    ob = top.obj("objectives")
    objectives = ObjectivesConfig(
        rto_seconds=ob.integer("rto_seconds", minimum=1, maximum=7 * 86400),
        rpo_seconds=ob.integer("rpo_seconds", minimum=1, maximum=7 * 86400,
                               why="asynchronous cross-region replication cannot promise zero loss"),
    )
    co = ob.obj("components", required=False)
    components: dict[str, tuple[int, int]] = {}
    for name in co.data:
        if name not in COMPONENTS:
            raise ConfigError(co.key(name), co.data[name], f"not a component with objectives; allowed: "
                              f"{' | '.join(COMPONENTS)}")
        c = co.obj(name)
        rto = c.integer("rto_seconds", objectives.rto_seconds, minimum=1, maximum=objectives.rto_seconds,
                        why="a component's RTO cannot exceed the service's objectives.rto_seconds: the service is "
                            "recovered only when every component is")
        rpo = c.integer("rpo_seconds", objectives.rpo_seconds, minimum=0, maximum=objectives.rpo_seconds,
                        why="a component's RPO cannot exceed the service's objectives.rpo_seconds")
        c.done()
        components[name] = (rto, rpo)
    co.done()
    objectives = ObjectivesConfig(objectives.rto_seconds, objectives.rpo_seconds, components)
    ob.done()
    promotion = top.integer("expected_promotion_seconds", 300, minimum=1, maximum=86400)

    so = top.obj("streaming", required=False)
    streaming = StreamingConfig(
        kafka_version=so.string("kafka_version", "3.6.0", pattern=_KAFKA_VERSION, hint="an MSK Kafka version such as 3.6.0"),
        broker_instance_type=so.string("broker_instance_type", "kafka.m5.large", pattern=_BROKER_TYPE,
                                       hint="an MSK broker type such as kafka.m5.large"),
        broker_volume_gb=so.integer("broker_volume_gb", 1000, minimum=1, maximum=16384),
        topics=so.strings("topics", [".*"], hint="topic name patterns"),
        consumer_groups=so.strings("consumer_groups", [".*"], hint="consumer group patterns"),
        applications=so.strings("applications", [], pattern=_APPLICATION,
                                hint="application names: lower-case letters, digits and dashes, at most 40 characters"),
    )
    replication, mm2 = mm2config.read(so, role, network.cidr, network.vpc_id)
    streaming = dataclasses.replace(streaming, replication=replication, mirrormaker2=mm2)
    if mm2 is not None:
        mm2config.check_patterns(streaming.topics, streaming.consumer_groups, so.key)
    if not streaming.topics:
        raise ConfigError(so.key("topics"), [], "the replicator needs at least one topic pattern (.* copies all)")
    check_replicator_cluster(streaming, so.key)
    so.done()

    bo = top.obj("backups", required=False)
    backups = BackupsConfig(
        object_lock_days=bo.integer("object_lock_days", 30, minimum=1, maximum=36500),
        snapshot_retention_days=bo.integer("snapshot_retention_days", 90, minimum=1, maximum=3650,
                                           why="the manual tier: days a manual snapshot of the runbooks is kept"),
        snapshot_keep_newest=bo.integer("snapshot_keep_newest", 3, minimum=1, maximum=100,
                                        why="retention never deletes the last snapshot of a region"),
        compliance_archive=bo.boolean("compliance_archive", True),
        compliance_retention_days=bo.integer(
            "compliance_retention_days", 2557, minimum=2555, maximum=36500,
            why="the compliance tier keeps 7 years (planning document 001) under the archive's COMPLIANCE Object "
                "Lock, which takes 1 to 36500 days"),
        compliance_glacier_after_days=bo.integer("compliance_glacier_after_days", 30, minimum=0, maximum=36500),
        compliance_deep_archive_after_days=bo.integer("compliance_deep_archive_after_days", 180, minimum=0,
                                                      maximum=36500))
    check_compliance_tier(backups, bo.key)
    bo.done()

    tags = top.get("tags", {})
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ConfigError("tags", tags, "expected a mapping of tag name to string value")
    alarm_email = top.string("alarm_email", None, pattern=_EMAIL, hint="an e-mail address for alarm notifications")
    promoted = top.boolean("promoted", False)
    failback_replication = top.boolean("failback_replication", False)
    ephemeral = top.boolean("ephemeral", False)
    prod_stack = top.string("prod_stack", None, pattern=_STACK_REF, hint="the prod stack's name, e.g. organization/regionpair/prod")
    primary_region = top.string("primary_region", None, pattern=_REGION, hint="an AWS region such as us-east-1")
    dr_region = top.string("dr_region", None, pattern=_REGION, hint="the DR region, e.g. us-west-2")
    principals = top.strings("runbook_principals", [], hint="IAM role or user ARNs that may assume the runbook role")

    if role == "primary":
        for key, value in (("promoted", promoted or None), ("failback_replication", failback_replication or None),
                           ("prod_stack", prod_stack), ("primary_region", primary_region),
                           ("runbook_principals", list(principals) or None)):
            if value is not None:
                raise ConfigError(key, value, "only the dr stack (role: secondary) takes this key; remove it here")
        if dr_region is None:
            raise ConfigError("dr_region", MISSING, "the databases' password secrets are replicated to the DR "
                              "region so they can be read when this region is down; name it, e.g. us-west-2")
        if dr_region == region:
            raise ConfigError("dr_region", dr_region, f"must differ from this stack's region {region}: a secret "
                              "replica in the same region does not survive a regional outage")
    else:
        if dr_region is not None:
            raise ConfigError("dr_region", dr_region, "only the prod stack (role: primary) takes this key (the dr "
                              "stack's region is aws:region); remove it here")
        if prod_stack is None:
            raise ConfigError("prod_stack", MISSING, "the dr stack reads prod through a StackReference; name the prod "
                              "stack, e.g. organization/regionpair/prod")
        if primary_region is None:
            raise ConfigError("primary_region", MISSING, "the dr stack manages the replication on prod's bucket with a "
                              "provider for prod's region; name it, e.g. us-east-1")
        if failback_replication and not promoted:
            raise ConfigError("failback_replication", failback_replication,
                              "the reverse replication is for a failback, after a failover: set promoted: true first "
                              "(or remove failback_replication)")
        if primary_region == region:
            raise ConfigError("primary_region", primary_region, f"must differ from this stack's region {region}; "
                              "a DR copy in the same region does not survive a regional outage")
        _runbook_principals(principals)
    cache = None
    if top.get("cache", None) is not None:
        if role != "primary":
            raise ConfigError("cache", top.get("cache"), "only the prod stack declares the cache; the DR side holds its "
                              "exported snapshots and restores a new cache from them (runbooks.cache_restore)")
        co = top.obj("cache")
        cache = CacheConfig(
            name=co.string("name", pattern=re.compile(r"^[a-z][a-z0-9-]{0,20}$"),
                           hint="lower-case letters, digits and dashes, at most 21 (the group id adds the stack prefix)"),
            node_type=co.string("node_type", pattern=re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$"),
                                hint="an ElastiCache node type such as cache.r7g.large"),
            engine_version=co.string("engine_version", "7.1", pattern=re.compile(r"^\d+(\.\d+)?$"),
                                     hint="a Redis OSS version such as 7.1"),
            num_cache_clusters=co.integer("num_cache_clusters", 2, minimum=2, maximum=6,
                                          why="a primary and 1 to 5 replicas: failover needs a replica"),
            snapshot_retention_days=co.integer(
                "snapshot_retention_days", 7, minimum=1, maximum=35,
                why="ElastiCache keeps automatic backups at most 35 days and 0 turns them off (ElastiCache User "
                    "Guide, 'Scheduling automatic backups')"),
            snapshot_window=co.string(
                "snapshot_window", "04:00-05:00", pattern=BACKUP_WINDOW,
                hint="a DAILY UTC range HH:MM-HH:MM: ElastiCache takes one automatic snapshot a day (API Reference, "
                     "CreateReplicationGroup, SnapshotWindow); hourly snapshots are runbooks.cache_backup run hourly"),
            maintenance_window=co.string("maintenance_window", "sun:05:30-sun:06:30", pattern=MAINTENANCE_WINDOW,
                                         hint="ddd:HH:MM-ddd:HH:MM in UTC, at least 60 minutes"),
            export=co.boolean("export", True))
        co.done()
    kafka_backup = kafka_backup_section.read(top, role)
    kubernetes = None
    if top.get("kubernetes", None) is not None:
        kubernetes = read_kubernetes(top.obj("kubernetes"), databases,
                                 None if secret_keys is None else "kubernetes" in secret_keys)
    top.done()
    _check_physical_names(project, stack, region)
    return StackConfig(project=project, stack=stack, role=role, region=region, databases=databases, network=network,
                       dns=dns, objectives=objectives, expected_promotion_seconds=promotion, streaming=streaming,
                       backups=backups, tags=dict(tags), alarm_email=alarm_email, promoted=promoted,
                       failback_replication=failback_replication, prod_stack=prod_stack, primary_region=primary_region, dr_region=dr_region, ephemeral=ephemeral, kubernetes=kubernetes,
                       runbook_principals=principals, cache=cache, kafka_backup=kafka_backup)


def _check_physical_names(project: str, stack: str, region: str) -> None:
    """The names the stacks derive from the project and stack names must be names AWS accepts: the
    buckets `<project>-<stack>-backups-<12-digit account>-<region>` (S3 User Guide, "General purpose
    bucket naming rules": 3-63 lowercase letters, digits, dots, hyphens; no reserved prefix or
    suffix) and the SSM parameters `/<project>/…` (SSM API Reference, PutParameter: not prefixed
    with aws or ssm)."""
    longest = f"{project}-{stack}-backups-{'0' * 12}-{region}"
    if not BUCKET_NAME.match(longest) or ".." in longest:
        raise ConfigError("(project and stack names)", f"{project}/{stack}",
                          f"the bucket names would be like {longest!r} ({len(longest)} characters), and S3 takes "
                          "3-63 lowercase letters, digits, dots and hyphens: use a shorter, lowercase project or "
                          "stack name")
    reserved = bucket_name_reserved(longest)
    if reserved is not None:
        raise ConfigError("(project and stack names)", f"{project}/{stack}",
                          f"the bucket names would be like {longest!r}, and S3 reserves {reserved!r} for its own "
                          "names: rename the project")
    if project.lower().startswith(("aws", "ssm")):
        raise ConfigError("(project and stack names)", f"{project}/{stack}",
                          f"the SSM parameters would be named /{project}/…, and SSM refuses names prefixed with aws "
                          "or ssm: rename the project")


# keys of the project namespace; must match Pulumi.yaml's config schema (a test checks)
KEYS = ("role", "databases", "network", "dns", "objectives", "expected_promotion_seconds", "streaming",
        "backups", "tags", "alarm_email", "promoted", "failback_replication", "prod_stack", "primary_region", "ephemeral",
        "cache", "kubernetes", "dr_region", "runbook_principals", "kafka_backup")


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def from_pulumi() -> StackConfig:
    """Read the running stack's config (the thin adapter over pulumi.Config)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    cfg = pulumi.Config(PROJECT)
    values: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    # the engine hands config over in PULUMI_CONFIG (a JSON bag); tests and the Automation API
    # may set it in the runtime directly: read the keys of both
    present = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    for full_key in sorted(present):
        if full_key.startswith(prefix):
            values[full_key[len(prefix):]] = _decode(cfg.get(full_key[len(prefix):]))
    region = pulumi.Config("aws").get("region")
    if region is not None:
        values["region"] = region
    env_secret = set(runtime_config.get_config_secret_keys_env())
    secret_keys = frozenset(k for k in values if runtime_config.is_config_secret(prefix + k) or prefix + k in env_secret)
    return read(values, stack=pulumi.get_stack(), project=pulumi.get_project(), secret_keys=secret_keys)
