"""The outputs contract's schema: the one document the stacks export and everything else reads.

Pure Python on purpose (no pulumi import): the runbooks, the sandbox and the tests load it
without the Pulumi SDK. The document is versioned by ``schema_version``; a reader refuses a
version it does not know rather than guess.

Shape (``schema_version`` 1)::

    {
      "schema_version": 1,
      "project": "regionpair",
      "stack": "dr",                      # the stack (or "sandbox") that wrote the document
      "target": "aws" | "sandbox",
      "sandbox_dir": null | "/path",      # required when target is "sandbox"
      "objectives": {"rto_seconds": 900, "rpo_seconds": 300},
      "rto_budget": {...} | null,          # see RtoBudget
      "dns": {"zone_id", "zone_name", "ttl_seconds", "strategy", "resolver", "records"},
      "regions": {"us-east-1": {...Region...}, "us-west-2": {...Region...}}
    }

A region whose stack declares the optional Kubernetes section also carries ``kubernetes``: how the
runbooks reach that cluster's active-endpoints ConfigMaps (a kubeconfig context, the namespaces,
the ConfigMap's name, and optionally ``restart_deployments``: per namespace, the Deployments they
restart afterwards), never the kubeconfig itself. The dr stack's region, once it declares the
failback (``failback_replication: true``), also carries ``storage.batch_replication``: the role
and the report location with which the runbooks start S3 Batch Replication of its data bucket.

The prod stack exports its own region only; the dr stack reads prod through a StackReference
and exports both. ``merge`` joins the two documents. Secrets are never part of it: a key that
looks like one (``password``, ``secret_string``, ``private_key`` …) is refused wherever it
appears. A database names where its password lives (``secret_arn``; in the sandbox the 0600
file), never the password.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

SCHEMA_VERSION = 1

TARGETS = ("aws", "sandbox")
REGION_ROLES = ("primary", "secondary")
DATABASE_ROLES = ("primary", "replica")
DNS_STRATEGIES = ("health-check-inversion", "record-upsert")
FAILOVER_TYPES = ("PRIMARY", "SECONDARY")

LOGICAL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
"""A database's logical name (the same in both stacks): lowercase letters, digits and dashes, starting with a letter."""
KEY_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
"""An S3 key prefix an IAM policy can be scoped to: '/'-separated parts, no leading or trailing '/', no wildcard."""
STOP_PATTERN = ".*"
"""Excluded as topic and consumer-group pattern, it stops an MSK Replicator (it has no pause): the
streaming component declares a stopped replicator with it, and the runbooks stop one with it and
read it back as "stopped"."""


class OutputsError(ValueError):
    """The document is malformed. The message names the field (a dotted path) and the fix."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"stack outputs: {path}: {problem}")


# --------------------------------------------------------------------------------------------
# The typed document
# --------------------------------------------------------------------------------------------


COMPONENTS = ("database", "kafka", "object_storage")
"""Components with objectives of their own (planning documents 001 and 004)."""


@dataclass(frozen=True)
class ComponentObjectives:
    rto_seconds: int
    rpo_seconds: int


@dataclass(frozen=True)
class Objectives:
    rto_seconds: int
    """Declared recovery time objective of the service (met when every component is recovered)."""
    rpo_seconds: int
    """Declared recovery point objective of the service."""
    components: Mapping[str, ComponentObjectives] = field(default_factory=dict)
    """Each component's own objectives (``objectives.components``, optional and additive in schema
    version 1: a document without it gives every component the service's)."""

    def of(self, component: str) -> ComponentObjectives:
        return self.components.get(component) or ComponentObjectives(self.rto_seconds, self.rpo_seconds)


@dataclass(frozen=True)
class RtoBudget:
    """What the configuration itself costs of the RTO, before any runbook work."""

    detection_seconds: int
    """Health check interval × failure threshold."""
    dns_ttl_seconds: int
    """Clients may keep the old answer this long."""
    promotion_seconds: int
    """Expected time to promote the replica (from config)."""
    total_seconds: int
    """Sum of the above."""
    within_objective: bool
    """total_seconds <= the database's RTO objective."""
    components: Mapping[str, "ComponentBudget"] = field(default_factory=dict)
    """Per component (database, kafka, object_storage): what the configuration costs of its RTO
    against its own objective (optional and additive in schema version 1)."""


@dataclass(frozen=True)
class ComponentBudget:
    total_seconds: int
    """Detection plus what moves the component's clients (DNS TTL and promotion; the clients'
    parameter refresh for Kafka and object storage)."""
    rto_seconds: int
    """The component's RTO objective."""
    within_objective: bool


@dataclass(frozen=True)
class Database:
    name: str
    """Logical name, the same in both regions (pairs a primary with its replica)."""
    identifier: str
    """RDS DB instance identifier (sandbox: the local instance's name)."""
    arn: str
    endpoint: str
    """Host name or address clients connect to directly (DNS records point at it)."""
    port: int
    role: str
    """`primary` or `replica`, as declared by the stack."""
    db_name: str
    """The database inside the instance."""
    username: str
    secret_arn: str | None = None
    """Where the password lives (Secrets Manager ARN, or the sandbox's 0600 file). Never the password."""
    security_group_id: str | None = None
    """The instance's security group (fencing denies its ingress)."""
    source_arn: str | None = None
    """For a replica: the ARN of the database it replicates."""


def secret_replica_arn(arn: str, region: str) -> str:
    """The ARN of ``arn``'s Secrets Manager replica in ``region``: a replica keeps the secret's ARN,
    in its own region. The dr stack grants the runbooks this ARN and the runbooks read the password
    from it when the secret's region does not answer, so both derive it here."""
    parts = arn.split(":")
    home = parts[3] if arn.startswith("arn:") and len(parts) > 3 else ""
    return arn.replace(f":secretsmanager:{home}:", f":secretsmanager:{region}:", 1)


MIRRORMAKER2_CONNECTORS = ("source", "checkpoint", "heartbeat")


@dataclass(frozen=True)
class MirrorMaker2Flow:
    """MirrorMaker 2 on MSK Connect into this region (dr with ``streaming.replication: mirrormaker2``)."""
    checkpoints_topic: str
    """``<source alias>.checkpoints.internal`` on this region's cluster: each group's translated offsets."""
    connector_arns: Mapping[str, str] = field(default_factory=dict)
    """Kind (source, checkpoint, heartbeat) → connector ARN; empty once the flow is declared stopped."""


@dataclass(frozen=True)
class Streaming:
    cluster_arn: str
    bootstrap_brokers: str
    """Comma-separated host:port list (TLS/IAM listener in AWS)."""
    replicator_arn: str | None = None
    """The MSK Replicator into this region (dr only)."""
    failback_replicator_arn: str | None = None
    """The MSK Replicator from this region into the primary's (dr only, declared for a failback
    with ``failback_replication: true``; it lives in the primary's region)."""
    bootstrap_parameter: str | None = None
    """Where clients read the active bootstrap servers (SSM parameter name, or sandbox file)."""
    subnet_ids: tuple[str, ...] = ()
    """The brokers' subnets (the dr stack's MSK Replicator needs the source cluster's network)."""
    security_group_ids: tuple[str, ...] = ()
    """The brokers' security groups (as above)."""
    client_parameters: tuple[str, ...] = ()
    """Every parameter clients read the active bootstrap servers from, one per application
    (empty: only ``bootstrap_parameter``). The failover publishes the DR bootstrap to each."""
    consumer_groups: tuple[str, ...] = ()
    """Consumer groups that must have DR offsets before their consumers move (empty: none checked)."""
    topics: tuple[str, ...] = ()
    """Replicated topics (empty: whatever the replicator is configured with)."""
    client_refresh_seconds: int | None = None
    """How often clients re-read their parameter: a planned switchover waits this long after
    pausing them before it drains (None: 30 s)."""
    mirrormaker2: MirrorMaker2Flow | None = None
    """The MirrorMaker 2 flow into this region instead of ``replicator_arn`` (dr only)."""


@dataclass(frozen=True)
class BatchReplication:
    """What copying this region's data bucket's existing versions through its replication
    configuration needs (S3 Batch Replication, the failback's seeding of home). The dr stack
    exports it with ``failback_replication: true``."""

    role_arn: str
    """IAM role trusted by batchoperations.s3.amazonaws.com, allowed exactly that job on this bucket."""
    report_bucket: str
    """The bucket (this region's backups bucket) the job writes its generated manifest and its
    completion report to."""
    report_prefix: str
    """The key prefix in ``report_bucket`` the role may write under (no leading or trailing slash)."""


@dataclass(frozen=True)
class ComplianceArchive:
    """The compliance tier's archive of this region (components/retention.py): RDS snapshot exports
    of this region's snapshots go there (an export bucket is in the snapshot's region)."""

    bucket: str
    export_role_arn: str
    """The role ``export.rds.amazonaws.com`` assumes to write the export (StartExportTask IamRoleArn)."""


@dataclass(frozen=True)
class Storage:
    data_bucket: str
    data_bucket_arn: str
    backups_bucket: str | None = None
    endpoint_url: str | None = None
    """Only for the sandbox (moto): the S3 endpoint of this region."""
    writer_parameter: str | None = None
    """Where writers read the bucket they write to (SSM parameter name); the failover points it at
    the DR bucket (None: writers are not moved by the runbook)."""
    archive: ComplianceArchive | None = None
    """The compliance archive (None: the stacks declare none; ``retention --archive`` refuses)."""
    batch_replication: BatchReplication | None = None
    """How the runbooks start S3 Batch Replication of this region's data bucket (None: the stacks
    declare no role for it; a failback in AWS then needs ``--objects-seeded``)."""


@dataclass(frozen=True)
class Kubernetes:
    """How the runbooks reach this region's cluster (docs/kubernetes.md). Never the kubeconfig: the
    operator's own kubeconfig holds the credentials (for EKS, an exec plugin)."""

    context: str
    """The kubeconfig context of this region's cluster, e.g. the EKS cluster ARN (the name
    `aws eks update-kubeconfig` gives it)."""
    namespaces: tuple[str, ...]
    """The namespaces whose active-endpoints ConfigMap the runbooks rewrite after a failover."""
    configmap: str = "regionpair-active-endpoints"
    """The ConfigMap's name in each namespace (it carries the label regionpair.io/contract=active-endpoints)."""
    restart_deployments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Namespace (one of ``namespaces``) → the Deployments the runbooks restart once they have
    rewritten that namespace's ConfigMap (they read it through ``envFrom``); the stack's Role may
    get and patch exactly these. Empty: none is restarted."""

    @property
    def listed_deployments(self) -> tuple[tuple[str, str], ...]:
        """(namespace, name) of each Deployment of ``restart_deployments``, in its order."""
        return tuple((ns, name) for ns, names in self.restart_deployments.items() for name in names)


@dataclass(frozen=True)
class RegionDns:
    failover: str
    """`PRIMARY` or `SECONDARY`: this region's failover record type."""
    set_identifier: str
    health_check_id: str | None = None
    """Route53 health check guarding the PRIMARY record."""
    address: str | None = None
    """Sandbox: the loopback address this region's services answer on."""


@dataclass(frozen=True)
class Region:
    name: str
    role: str
    """The role the region was provisioned with (`primary` | `secondary`); the live role of each
    database can differ after a failover and is read from the database itself."""
    stack: str
    databases: Mapping[str, Database]
    dns: RegionDns
    streaming: Streaming | None = None
    storage: Storage | None = None
    kms_key_arn: str | None = None
    runbook_role_arn: str | None = None
    alarm_topic_arn: str | None = None
    alarms: tuple[str, ...] = ()
    kubernetes: Kubernetes | None = None
    """This region's cluster, when the stack declares one (None: no cluster to update)."""


@dataclass(frozen=True)
class Dns:
    zone_name: str
    ttl_seconds: int
    strategy: str
    """How the failover runbook moves traffic: `health-check-inversion` or `record-upsert`."""
    records: Mapping[str, str]
    """Service name → fully qualified record name (database logical names, `kafka`, `objects`)."""
    zone_id: str | None = None
    resolver: str | None = None
    """Sandbox: host:port of the authoritative DNS responder clients resolve through."""


@dataclass(frozen=True)
class BackupPolicy:
    """What the snapshot runbook's ``--enforce-retention`` keeps (optional; the runbook's defaults
    apply when the stacks do not export it)."""

    snapshot_retention_days: int = 90
    """Manual tier: snapshots made by the snapshot runbook older than this are deleted."""
    snapshot_keep_newest: int = 3
    """The newest N of them in each region are never deleted, whatever their age."""
    automated_retention_days: int = 30
    """Automated tier: the period the stacks declare for automated backups (RDS: at most 35)."""
    compliance_retention_days: int = 2557
    """Compliance tier (7 years): reported, never deleted by a runbook (docs/backups.md)."""


@dataclass(frozen=True)
class Outputs:
    schema_version: int
    project: str
    stack: str
    target: str
    objectives: Objectives
    dns: Dns
    regions: Mapping[str, Region]
    rto_budget: RtoBudget | None = None
    sandbox_dir: str | None = None
    backup_policy: BackupPolicy | None = None

    # ---- helpers for readers ----------------------------------------------------------------

    def region_with_role(self, role: str) -> Region:
        for region in self.regions.values():
            if region.role == role:
                return region
        raise OutputsError("regions", f"no region has role {role!r}; a pair needs one primary and one "
                           "secondary region (load both stacks' outputs, or the dr stack's)")

    @property
    def primary(self) -> Region:
        return self.region_with_role("primary")

    @property
    def secondary(self) -> Region:
        return self.region_with_role("secondary")

    def require_pair(self) -> "Outputs":
        """Refuse a document that does not describe a whole region pair (runbooks need both)."""
        for role in ("primary", "secondary"):
            self.region_with_role(role)  # raises OutputsError naming the missing role
        for name in self.primary.databases:
            if name not in self.secondary.databases:
                raise OutputsError(f"regions.{self.secondary.name}.databases",
                                   f"database {name!r} of the primary region has no counterpart here; "
                                   "every primary database needs a replica in the dr stack")
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value

