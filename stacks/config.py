"""The stack config, read into typed frozen objects and validated before any resource exists.

`read(values, ...)` takes a plain mapping of config key → value (what `Pulumi.<stack>.yaml`
holds under `config:`, without the `regionpair:` prefix; `aws:region` is passed as `region`), so
tests feed dicts. `from_pulumi()` is the thin adapter over `pulumi.Config`.

Every problem raises `ConfigError` naming the key (a dotted path), the value seen and what is
allowed. Unknown keys are refused too: a misspelt `backup_retention` must not silently fall back
to a default in the worst hour of the year.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from components.aws_limits import (BUCKET_NAME, MSK_REPLICATOR_MIN_KAFKA, MSK_REPLICATOR_UNSUPPORTED_BROKERS,
                                   bucket_name_reserved, kafka_version_tuple)
from contract import outputs
from contract.active_endpoints import DEPLOYMENT_NAME, DEPLOYMENT_NAME_HINT
from contract.fields import Fields
from stacks import kafka_backup as kafka_backup_section
from stacks import mm2config
from stacks.config_reader import MISSING, PROJECT, SECRET, ConfigError, section
from stacks.mm2config import MirrorMaker2Config

ROLES = ("primary", "secondary")
HEALTH_CHECK_TYPES = ("HTTPS", "HTTP", "TCP")
HEALTH_CHECK_INTERVALS = (10, 30)

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_ENGINE_VERSION = re.compile(r"^\d+(\.\d+)?$")
_KAFKA_VERSION = re.compile(r"^\d+\.\d+\.\d+(\.x|\.tiered)?$")
_APPLICATION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_BROKER_TYPE = re.compile(r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
_BACKUP_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINT_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
                           r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ZONE_ID = re.compile(r"^Z[0-9A-Z]{1,31}$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK_REF = re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$")
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RESERVED_USERNAMES = ("postgres", "rdsadmin", "admin", "root")
_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K8S_CONTEXT = re.compile(r"^\S{1,253}$")
_K8S_GROUP = re.compile(r"^(?!system:)[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_CRON = re.compile(r"^[0-9*/,-]+( [0-9*/,-]+){4}$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$")


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


@dataclass(frozen=True)
class DatabaseConfig:
    name: str
    """Logical name, the same in both stacks (pairs the primary with its replica)."""
    instance_class: str
    engine_version: str
    """PostgreSQL major or major.minor version."""
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    """Storage autoscaling ceiling; defaults to twice allocated_storage_gb."""
    backup_retention_days: int = 30
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"
    multi_az: bool = True
    logical_replication: bool = False
    """rds.logical_replication=1 in the parameter group: logical slots for CDC consumers (docs/backups.md)."""
    db_name: str = "app"
    username: str = "app_admin"
    port: int = 5432
    auto_minor_version_upgrade: bool = True
    """RDS applies minor upgrades in the maintenance window; then engine_version names the major only."""


@dataclass(frozen=True)
class NetworkConfig:
    cidr: str
    """CIDR of the VPC created when vpc_id is not given."""
    allowed_cidrs: tuple[str, ...]
    allowed_security_group_ids: tuple[str, ...]
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    runbook_cidrs: tuple[str, ...] = ()
    """Where the runbooks run from: database ingress that fencing keeps (none: a fenced database is
    unreachable to the runbooks too, so a switchover cannot drain it)."""


@dataclass(frozen=True)
class HealthCheckConfig:
    fqdn: str
    """The primary region's service endpoint Route53 probes (must be reachable from the internet)."""
    port: int = 443
    type: str = "HTTPS"
    resource_path: str = "/health"
    interval_seconds: int = 30
    failure_threshold: int = 3

    @property
    def detection_seconds(self) -> int:
        return self.interval_seconds * self.failure_threshold


@dataclass(frozen=True)
class DnsConfig:
    zone_name: str
    zone_id: str
    ttl_seconds: int
    strategy: str
    health_check: HealthCheckConfig
    record_prefix: str = ""
    """Put before every record name (drill stacks use their own names, never production's)."""

    def record_name(self, service: str) -> str:
        return f"{self.record_prefix}{service}.{self.zone_name}"


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
class PasswordSecretConfig:
    name: str
    """A Kubernetes Secret in the jobs' namespace (e.g. synced from Secrets Manager by External Secrets)."""
    key: str = "password"


@dataclass(frozen=True)
class KubernetesConfig:
    """The optional `kubernetes` section: the region's cluster gets the active-endpoints ConfigMap
    and the backup/export CronJobs (components/kubernetes.py, docs/kubernetes.md)."""
    backup_role_arn: str
    """IRSA role of the pg_dump job (the stacks create no IAM for the cluster)."""
    export_role_arn: str
    """IRSA role of the ConfigMap/Secret export job."""
    kubeconfig: str | None = field(default=None, repr=False)
    """The cluster's kubeconfig, a config secret (never printed)."""
    context: str | None = None
    """A context of the kubeconfig (or of the ambient kubeconfig when kubeconfig is not given)."""
    runbook_context: str | None = None
    """The context through which the runbooks reach this cluster from the operator's own kubeconfig
    (exported in the outputs; default: ``context``). Always set once the config is read."""
    runbook_group: str = "regionpair-runbooks"
    """The Kubernetes group the runbooks' identity is mapped to (EKS access entry); it may get, list
    and patch the active-endpoints ConfigMaps of the app namespaces, get and patch the Deployments
    of ``restart_deployments``, nothing else."""
    namespace: str = "regionpair"
    create_namespace: bool = True
    app_namespaces: tuple[str, ...] = ()
    """Namespaces that get the ConfigMap; empty means the jobs' namespace."""
    export_namespaces: tuple[str, ...] = ()
    """Namespaces exported; empty means app_namespaces."""
    export_all_namespaces: bool = False
    logical_backups: bool = True
    backup_schedule: str = "0 2 * * *"
    export_schedule: str = "30 2 * * *"
    postgres_image: str | None = None
    """None: the component's default."""
    tools_image: str | None = None
    """None: the component's default."""
    dump_size_limit: str = "20Gi"
    password_secrets: Mapping[str, PasswordSecretConfig] = field(default_factory=dict)
    """Per database: a Kubernetes Secret instead of reading Secrets Manager at run time."""
    restart_deployments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """App namespace → the Deployments the runbooks restart (``kubectl rollout restart``) after they
    rewrite that namespace's ConfigMap: those that read it through ``envFrom``. The Role grants get
    and patch on exactly these names. Empty (default): no Deployment is touched, none is granted."""
    restore_group: str | None = "regionpair-config-restore"
    """The Kubernetes group that may restore the configuration export (runbooks/config_restore.py);
    ``false`` in config: none is declared."""
    restore_secrets: bool = False
    """That group may also write Secrets (the restore's --include-secrets)."""


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


def _window_minutes(start: str, end: str) -> tuple[int, int]:
    sh, sm = (int(x) for x in start.split(":"))
    eh, em = (int(x) for x in end.split(":"))
    s, e = sh * 60 + sm, eh * 60 + em
    if e <= s:
        e += 24 * 60
    return s, e


def _overlaps(backup: str, maintenance: str) -> bool:
    b_start, b_end = backup.split("-")
    bs, be = _window_minutes(b_start, b_end)
    m_start, m_end = maintenance.split("-")
    md_s, mt_s = m_start.split(":", 1)
    md_e, mt_e = m_end.split(":", 1)
    week = 7 * 24 * 60
    ms = _DAYS.index(md_s) * 1440 + _window_minutes(mt_s, mt_s)[0]
    me = _DAYS.index(md_e) * 1440 + _window_minutes(mt_e, mt_e)[0]
    if me <= ms:
        me += week
    for day in range(-1, 8):  # the backup window happens every day
        s, e = day * 1440 + bs, day * 1440 + be
        for shift in (0, week, -week):
            if s < me + shift and ms + shift < e:
                return True
    return False


def _database(o: Fields) -> DatabaseConfig:
    name = o.string("name", pattern=outputs.LOGICAL_NAME, hint="lowercase letters, digits and dashes, starting with a letter")
    allocated = o.integer("allocated_storage_gb", minimum=20, maximum=65536)
    db = DatabaseConfig(
        name=name,
        instance_class=o.string("instance_class", pattern=_INSTANCE_CLASS, hint="an RDS instance class such as db.r6g.large"),
        engine_version=o.string("engine_version", pattern=_ENGINE_VERSION, hint="a PostgreSQL version such as 16 or 16.4"),
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=o.integer("max_allocated_storage_gb", 2 * allocated, minimum=allocated, maximum=65536,
                                           why="at least allocated_storage_gb"),
        backup_retention_days=o.integer("backup_retention_days", 30, minimum=7, maximum=35,
                                        why="7 days is the floor for point-in-time recovery here; RDS allows at most 35"),
        backup_window=o.string("backup_window", "03:00-04:00", pattern=_BACKUP_WINDOW, hint="HH:MM-HH:MM in UTC"),
        maintenance_window=o.string("maintenance_window", "sun:04:30-sun:05:30", pattern=_MAINT_WINDOW,
                                    hint="ddd:HH:MM-ddd:HH:MM in UTC, e.g. sun:04:30-sun:05:30"),
        multi_az=o.boolean("multi_az", True),
        logical_replication=o.boolean("logical_replication", False),
        db_name=o.string("db_name", "app", pattern=re.compile(r"^[a-z][a-z0-9_]{0,62}$"),
                         hint="a PostgreSQL database name: lowercase letters, digits, underscores"),
        username=o.string("username", "app_admin", pattern=_USERNAME, hint="lowercase letters, digits, underscores"),
        port=o.integer("port", 5432, minimum=1150, maximum=65535, why="RDS PostgreSQL ports are 1150-65535"),
        auto_minor_version_upgrade=o.boolean("auto_minor_version_upgrade", True),
    )
    if db.auto_minor_version_upgrade and "." in db.engine_version:
        # pulumi-aws aws.rds.Instance engine_version: with auto_minor_version_upgrade a prefix such as the
        # major version is allowed and the running version is engine_version_actual; a pinned minor drifts
        # once RDS upgrades it, and the next `pulumi up` plans a downgrade RDS refuses (issue 10, point 4)
        raise ConfigError(o.key("engine_version"), db.engine_version,
                          f"auto_minor_version_upgrade is on, so RDS moves the minor version by itself and a pinned "
                          f"minor drifts (the next `pulumi up` would plan a downgrade RDS refuses): pin the major "
                          f"version only, e.g. {db.engine_version.split('.')[0]!r}, or set "
                          f"auto_minor_version_upgrade: false to own minor upgrades yourself")
    if db.username in _RESERVED_USERNAMES:
        raise ConfigError(o.key("username"), db.username, f"reserved by PostgreSQL/RDS; pick another than {', '.join(_RESERVED_USERNAMES)}")
    s, e = _window_minutes(*db.backup_window.split("-"))
    if e - s < 30:
        raise ConfigError(o.key("backup_window"), db.backup_window, "RDS needs a backup window of at least 30 minutes")
    if _overlaps(db.backup_window, db.maintenance_window):
        raise ConfigError(o.key("maintenance_window"), db.maintenance_window,
                          f"overlaps the backup window {db.backup_window}; RDS refuses overlapping windows")
    o.done()
    return db


def _cidr(value: str, key: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, value, f"expected a CIDR block such as 10.0.0.0/16 ({exc})") from None
    if net.prefixlen == 0:
        raise ConfigError(key, value, "opens the service to the whole internet; name the client networks instead")
    return value


def _network(o: Fields, role: str) -> NetworkConfig:
    cidr = _cidr(o.string("cidr", "10.10.0.0/16" if role == "primary" else "10.20.0.0/16"), o.key("cidr"))
    if ipaddress.ip_network(cidr).prefixlen > 20:
        raise ConfigError(o.key("cidr"), cidr, "too small for three subnets; use a /20 or larger (e.g. /16)")
    allowed = o.strings("allowed_cidrs", [], hint="CIDR blocks of the clients")
    for i, c in enumerate(allowed):
        _cidr(c, f"{o.key('allowed_cidrs')}[{i}]")
    groups = o.strings("allowed_security_group_ids", [], pattern=_SG, hint="security group ids (sg-…)")
    if not allowed and not groups:
        raise ConfigError(o.key("allowed_cidrs"), [], "no client could reach the databases or brokers; name at least "
                          "one CIDR in allowed_cidrs or one group in allowed_security_group_ids")
    runbook = o.strings("runbook_cidrs", [], hint="CIDR blocks of the hosts the runbooks run on")
    for i, c in enumerate(runbook):
        _cidr(c, f"{o.key('runbook_cidrs')}[{i}]")
        net = ipaddress.ip_network(c)
        for client in allowed:
            other = ipaddress.ip_network(client)
            if net.version == other.version and (net == other or other.subnet_of(net)):
                raise ConfigError(f"{o.key('runbook_cidrs')}[{i}]", c,
                                  f"contains the client network {client} of allowed_cidrs; fencing keeps the "
                                  "runbooks' rules, so those clients could still write to a fenced primary. Name "
                                  "only the runbook hosts (e.g. a /32 or their own subnet)")
    vpc_id = o.string("vpc_id", None, pattern=_VPC, hint="a VPC id (vpc-…)")
    subnet_ids = o.strings("subnet_ids", [], pattern=_SUBNET, hint="subnet ids (subnet-…)")
    if vpc_id and len(subnet_ids) != 3:
        raise ConfigError(o.key("subnet_ids"), list(subnet_ids), "with vpc_id, name exactly three private subnets "
                          "in three different availability zones (MSK places one broker in each)")
    if subnet_ids and not vpc_id:
        raise ConfigError(o.key("vpc_id"), MISSING, "subnet_ids were given without the VPC they belong to; set vpc_id")
    o.done()
    return NetworkConfig(cidr=cidr, allowed_cidrs=allowed, allowed_security_group_ids=groups,
                         vpc_id=vpc_id, subnet_ids=subnet_ids, runbook_cidrs=runbook)


def _dns(o: Fields) -> DnsConfig:
    zone_name = o.string("zone_name", pattern=_FQDN, hint="a DNS zone name such as payments.example.com").rstrip(".")
    zone_id = o.string("zone_id", pattern=_ZONE_ID, hint="a Route53 hosted zone id (Z…)")
    ttl = o.integer("ttl_seconds", 60, minimum=1, maximum=86400)
    strategy = o.string("strategy", "health-check-inversion", choices=outputs.DNS_STRATEGIES)
    if strategy == "record-upsert":
        raise ConfigError(o.key("strategy"), strategy, "the stacks declare failover records (PRIMARY in prod, "
                          "SECONDARY in dr) guarded by a pin check only the runbook moves, and the runbook's "
                          "record-upsert refuses a failover record; use health-check-inversion (record-upsert is "
                          "the sandbox's strategy)")
    h = o.obj("health_check")
    kind = h.string("type", "HTTPS", choices=HEALTH_CHECK_TYPES)
    hc = HealthCheckConfig(
        fqdn=h.string("fqdn", pattern=_FQDN, hint="the host name of the primary region's service endpoint").rstrip("."),
        port=h.integer("port", 443 if kind == "HTTPS" else 80, minimum=1, maximum=65535),
        type=kind,
        resource_path=h.string("resource_path", "/health", pattern=re.compile(r"^/\S*$"), hint="a path starting with /"),
        interval_seconds=h.get("interval_seconds", 30),
        failure_threshold=h.integer("failure_threshold", 3, minimum=1, maximum=10),
    )
    if hc.interval_seconds not in HEALTH_CHECK_INTERVALS or isinstance(hc.interval_seconds, bool):
        raise ConfigError(h.key("interval_seconds"), hc.interval_seconds, "Route53 health checks run every 10 or 30 seconds")
    h.done()
    prefix = o.string("record_prefix", "", pattern=re.compile(r"^([a-z0-9][a-z0-9-]{0,40}-)?$"),
                      hint="lowercase letters, digits and dashes ending in a dash, e.g. drill-42-")
    o.done()
    return DnsConfig(zone_name=zone_name, zone_id=zone_id, ttl_seconds=ttl, strategy=strategy, health_check=hc,
                     record_prefix=prefix)


def _kubernetes(o: Fields, databases: tuple[DatabaseConfig, ...], secret: bool | None) -> KubernetesConfig:
    from components import kubernetes as component  # only when the section is there

    kubeconfig = o.get("kubeconfig", None)
    if kubeconfig is not None and (not isinstance(kubeconfig, str) or "clusters" not in kubeconfig
                                   or "apiVersion" not in kubeconfig):
        raise ConfigError(o.key("kubeconfig"), SECRET, "expected the text of a kubeconfig file (apiVersion, clusters, "
                          "…); set it with `pulumi config set --secret --path regionpair:kubernetes.kubeconfig "
                          "< kubeconfig.yaml`")
    if kubeconfig is not None and secret is False:
        raise ConfigError(o.key("kubeconfig"), SECRET, "is stored in plain text; store it as a secret: `pulumi "
                          "config set --secret --path regionpair:kubernetes.kubeconfig < kubeconfig.yaml`")
    context = o.string("context", None, pattern=_K8S_CONTEXT, hint="a kubeconfig context name")
    if kubeconfig is None and context is None:
        raise ConfigError(o.key("context"), MISSING, "name the cluster explicitly: give kubeconfig (a secret) or "
                          "context; the ambient current-context could be another region's cluster")
    runbook_context = o.string("runbook_context", None, pattern=_K8S_CONTEXT, hint="a kubeconfig context name") \
        or context
    if runbook_context is None:
        raise ConfigError(o.key("runbook_context"), MISSING, "the runbooks rewrite this cluster's active endpoints "
                          "after a failover through a context of the operator's own kubeconfig (never the stack's "
                          "kubeconfig, a secret): give runbook_context, e.g. the EKS cluster ARN, which is the "
                          "context name `aws eks update-kubeconfig` writes")
    runbook_group = o.string("runbook_group", "regionpair-runbooks", pattern=_K8S_GROUP,
                             hint="a Kubernetes group name (letters, digits, - . _ :), not system:…")
    names = {db.name for db in databases}
    namespace = o.string("namespace", "regionpair", pattern=_K8S_NAME, hint="a Kubernetes namespace name")
    apps = o.strings("app_namespaces", [], pattern=_K8S_NAME, hint="Kubernetes namespace names")
    exports = o.strings("export_namespaces", [], pattern=_K8S_NAME, hint="Kubernetes namespace names")
    all_namespaces = o.boolean("export_all_namespaces", False)
    if all_namespaces and exports:
        raise ConfigError(o.key("export_namespaces"), list(exports), "export_all_namespaces is true, which already "
                          "covers every namespace; remove one of the two")
    schedules = {}
    for key, default in (("backup_schedule", component.BACKUP_SCHEDULE), ("export_schedule", component.EXPORT_SCHEDULE)):
        schedules[key] = o.string(key, default, pattern=_CRON,
                                  hint="a five-field cron schedule, in UTC, such as 0 2 * * *")
    images = {}
    for key in ("postgres_image", "tools_image"):
        image = o.string(key, None)
        problem = None if image is None else component.image_problem(image)
        if problem:
            raise ConfigError(o.key(key), image, problem)
        images[key] = image
    secrets_obj = o.obj("password_secrets", required=False)
    password_secrets = {}
    for db_name in list(secrets_obj.data):
        if db_name not in names:
            secrets_obj.seen.add(db_name)
            raise ConfigError(secrets_obj.key(db_name), secrets_obj.data[db_name],
                              f"no database {db_name!r} in regionpair:databases (there are {sorted(names)})")
        ref = secrets_obj.obj(db_name)
        password_secrets[db_name] = PasswordSecretConfig(
            name=ref.string("name", pattern=_K8S_NAME, hint="a Kubernetes Secret name"),
            key=ref.string("key", "password", pattern=_SECRET_KEY, hint="a Secret data key"))
        ref.done()
    secrets_obj.done()
    restart_deployments = _restart_deployments(o, apps or (namespace,))
    restore_group: str | None = None
    if o.get("restore_group", None) is not False:
        restore_group = o.string("restore_group", component.RESTORE_GROUP, pattern=_K8S_GROUP,
                                 hint="a Kubernetes group name (letters, digits, - . _ :), not system:…, or false")
    restore_secrets = o.boolean("restore_secrets", False)
    if restore_secrets and restore_group is None:
        raise ConfigError(o.key("restore_secrets"), True, "restore_group is false, so nobody could use it; name a "
                          "restore_group or drop restore_secrets")
    cfg = KubernetesConfig(
        backup_role_arn=o.string("backup_role_arn", pattern=_ROLE_ARN,
                                 hint="an IAM role ARN for IRSA, arn:aws:iam::<account>:role/<name>"),
        export_role_arn=o.string("export_role_arn", pattern=_ROLE_ARN,
                                 hint="an IAM role ARN for IRSA, arn:aws:iam::<account>:role/<name>"),
        kubeconfig=kubeconfig, context=context, runbook_context=runbook_context, runbook_group=runbook_group,
        namespace=namespace,
        create_namespace=o.boolean("create_namespace", True), app_namespaces=apps, export_namespaces=exports,
        export_all_namespaces=all_namespaces, logical_backups=o.boolean("logical_backups", True),
        backup_schedule=schedules["backup_schedule"], export_schedule=schedules["export_schedule"],
        postgres_image=images["postgres_image"], tools_image=images["tools_image"],
        dump_size_limit=o.string("dump_size_limit", "20Gi", pattern=_QUANTITY, hint="a size such as 20Gi"),
        password_secrets=password_secrets, restart_deployments=restart_deployments,
        restore_group=restore_group, restore_secrets=restore_secrets)
    o.done()
    return cfg


def _restart_deployments(o: Fields, app_namespaces: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``restart_deployments: {<app namespace>: [<Deployment>, …]}``: only namespaces that get the
    ConfigMap (the runbooks' Role lives there), valid Deployment names, each once, none empty."""
    raw = o.get("restart_deployments", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(o.key("restart_deployments"), raw, "expected a mapping of app namespace to Deployment "
                          "names, e.g. {payments: [payments-api, payments-worker]}")
    r = section(raw, o.key("restart_deployments"))
    found: dict[str, tuple[str, ...]] = {}
    for ns in list(raw):
        if ns not in app_namespaces:
            raise ConfigError(r.key(str(ns)), raw[ns], f"{ns!r} is not one of the app namespaces "
                              f"{list(app_namespaces)}: the runbooks rewrite the ConfigMap and hold a Role only "
                              "there; add it to app_namespaces, or list Deployments of those namespaces")
        names = r.strings(ns, (), pattern=DEPLOYMENT_NAME, hint=DEPLOYMENT_NAME_HINT)
        if not names:
            raise ConfigError(r.key(ns), [], "lists no Deployment; name at least one, or remove the namespace")
        found[ns] = names
    r.done()
    return found


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
    databases = tuple(_database(section(d, f"databases[{i}]")) for i, d in enumerate(raw_dbs))
    names = [d.name for d in databases]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ConfigError(f"databases[{i}].name", n, "already used by another database; names are unique")

    network = _network(top.obj("network"), role)
    dns = _dns(top.obj("dns"))
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
                "snapshot_window", "04:00-05:00", pattern=_BACKUP_WINDOW,
                hint="a DAILY UTC range HH:MM-HH:MM: ElastiCache takes one automatic snapshot a day (API Reference, "
                     "CreateReplicationGroup, SnapshotWindow); hourly snapshots are runbooks.cache_backup run hourly"),
            maintenance_window=co.string("maintenance_window", "sun:05:30-sun:06:30", pattern=_MAINT_WINDOW,
                                         hint="ddd:HH:MM-ddd:HH:MM in UTC, at least 60 minutes"),
            export=co.boolean("export", True))
        co.done()
    kafka_backup = kafka_backup_section.read(top, role)
    kubernetes = None
    if top.get("kubernetes", None) is not None:
        kubernetes = _kubernetes(top.obj("kubernetes"), databases,
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
