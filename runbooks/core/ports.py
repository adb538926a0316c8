"""Ports: the side effects the runbooks need, as small Protocols.

The runbooks' logic sees only these. Adapters: ``runbooks.adapters.sandbox`` (the local region
pair) and ``runbooks.adapters.aws`` (boto3 + psycopg; honours AWS_ENDPOINT_URL). Tests use
in-memory fakes. A port that cannot reach what it talks to raises ``runbooks.core.errors.Unreachable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from runbooks.core.clock import Clock
from runbooks.core.lock import Lock


@dataclass(frozen=True)
class DbInstance:
    """What the control plane says about one database in one region."""

    region: str
    database: str
    identifier: str
    status: str
    """`available`, `backing-up`, `modifying`, `stopped`, `unreachable`, … (RDS's words)."""
    role: str
    """`primary`, `replica` or `unknown` (unreachable)."""
    fenced: bool
    """Client writes are denied (and stay denied across a restart)."""
    source_region: str | None = None
    """For a replica: the region it replicates from."""


@dataclass(frozen=True)
class ReplicationState:
    """What SQL says about one database's replication, read on that database."""

    in_recovery: bool
    """True on a replica."""
    lsn: int
    """Primary: pg_current_wal_lsn(). Replica: the last replayed position."""
    receive_lsn: int | None = None
    """Replica: last position received from its primary."""
    streaming: bool | None = None
    """Replica: its WAL receiver is connected and streaming."""
    lag_seconds: float | None = None
    """Replica: how far behind, as best known (see the adapter for how it is measured)."""
    last_contact_age_seconds: float | None = None
    """Replica: seconds since the last message from its primary."""
    replicas: tuple[dict[str, Any], ...] = ()
    """Primary: one entry per connected replica (state, sync_state, replay_lag_seconds)."""


@dataclass(frozen=True)
class Health:
    healthy: bool
    sentence: str


class DatabaseControl(Protocol):
    def describe(self, region: str, database: str) -> DbInstance: ...

    def fence(self, region: str, database: str) -> str:
        """Deny client writes on this database, persistently (also after it restarts)."""

    def unfence(self, region: str, database: str) -> str: ...

    def promote(self, region: str, database: str) -> str:
        """Start promoting a replica. The runbook waits for the result through SqlProbe."""

    def rebuild_replica(self, region: str, database: str, source_region: str) -> str:
        """Make this region's database a replica of ``source_region``'s (failback)."""


class SqlProbe(Protocol):
    def replication(self, region: str, database: str) -> ReplicationState: ...

    def canary_write(self, region: str, database: str) -> str:
        """Write and read back a canary row; raise if the database takes no write."""


class DnsControl(Protocol):
    def answer(self, service: str) -> str | None:
        """The region the service's name now sends clients to (None: no answer)."""

    def point(self, service: str, region: str) -> str:
        """Send the service's clients to ``region`` (the strategy the outputs declare)."""


class HealthProbe(Protocol):
    def region(self, region: str) -> Health: ...

    def database(self, region: str, database: str) -> Health:
        """Does the database accept connections (data plane, as clients see it)?"""


@dataclass(frozen=True)
class FlowState:
    """One replication flow between the regions: the Kafka replicator, or S3 replication."""

    source: str | None
    target: str | None
    running: bool
    lag_records: int | None = None
    """Kafka: records not yet copied. S3: object versions pending replication."""
    lag_seconds: float | None = None
    """Age of the oldest record/object not yet copied (at the last contact with the source)."""
    source_reachable: bool | None = None
    pending: tuple[str, ...] = ()
    """S3: the keys still pending (the first of them, for the report)."""
    detail: str = ""
    groups: dict | None = None
    """Kafka with MirrorMaker 2: per consumer group, ``{"checkpoint_age_s", "consumed_since_checkpoint",
    "has_offsets_on_source", "without_checkpoint": {partition: {"committed", "reason"}}}`` (the age of
    its last checkpoint in the target, how many records it consumed on the source since then on the
    partitions that have one, and the partitions it committed on the source that have none, with
    the replicator's reason); None when the replicator does not say."""


@dataclass(frozen=True)
class GroupOffsets:
    """What making sure a consumer group has DR offsets found and did."""

    group: str
    translated: bool
    """The group has offsets in the target region to resume from."""
    method: str
    """How: the replicator's sync, or computed now from the offset mapping."""
    duplicates: int | None = None
    """Records the group's consumers will see again on the target (None: not known)."""
    skipped: int | None = None
    """Records consumed on the source that never reached the target (None: not known)."""


class Streaming(Protocol):
    """Kafka in both regions and the replicator between them (MSK + MSK Replicator, or the sandbox's)."""

    def flow(self) -> FlowState: ...

    def stop_flow(self) -> str:
        """Stop copying into the target (no stale records interleave once DR takes writes)."""

    def start_flow(self, source: str, target: str) -> str:
        """Copy source → target; a reversed flow starts where the previous one stopped."""

    def ensure_group_offsets(self, source: str, target: str, groups: list[str]) -> list[GroupOffsets]: ...

    def bootstrap(self, region: str) -> str:
        """The region's bootstrap brokers (MSK get_bootstrap_brokers)."""

    def published(self, parameter: str) -> str | None:
        """The value clients read now (SSM parameter)."""

    def publish(self, parameter: str, value: str) -> str: ...


@dataclass(frozen=True)
class Seeding:
    """Does the target bucket hold every version the source holds that replication does not copy
    by itself: versions written while no rule copied source → target (everything since a
    failover), and everything, when the target bucket was recreated empty?"""

    complete: bool | None
    """True: it does (or nothing needed copying); False: being copied; None: cannot be known by
    looking (S3 CRR copies only versions written after its rule is enabled)."""
    sentence: str
    remedy: str = ""
    """When ``complete`` is None and nothing can be started: what the operator does instead, and
    how to tell the runbook."""
    startable: bool = False
    """When ``complete`` is None: the adapter can start a job that copies them (``start_seeding``;
    AWS: S3 Batch Replication with the role the stacks declare)."""


@dataclass(frozen=True)
class SeedJob:
    """A job that copies into the target what replication does not copy by itself (AWS: an S3
    Batch Operations job, operation S3ReplicateObject, on the source bucket)."""

    job_id: str
    status: str
    """The service's word (AWS: New, Preparing, Active, Complete, Failed, Cancelled, Suspended, …)."""
    finished: bool
    """It will not move on by itself: ended, or waiting for a person (Suspended)."""
    succeeded: bool
    """Finished with every task done."""
    sentence: str
    """What it did or does, for the step's result; when it failed, why and where its report is."""
    attempt: int = 1
    """Which job of this run it is: a rerun after a job that failed starts the next attempt."""
    created: bool = False
    """This call created it (False: an earlier call of the same run did)."""
    failed_tasks: int | None = None
    report: str | None = None
    """Where the job's completion report is (failed tasks only)."""


class ObjectStore(Protocol):
    """The data buckets and the replication between them (S3 CRR, or the sandbox's)."""

    def flow(self) -> FlowState: ...

    def stop_flow(self) -> str: ...

    def start_flow(self, source: str, target: str) -> str: ...

    def seeding(self, source: str, target: str) -> Seeding:
        """Before a failback's switch: whether the target holds what the flow will not copy itself."""

    def start_seeding(self, source: str, target: str, token: str) -> SeedJob:
        """Start the job that copies what ``seeding`` cannot see copied (only called when it answered
        ``startable``). ``token`` (the run id) makes it idempotent: the same token finds the job an
        earlier call started, running or finished well, instead of starting another; after a job
        that failed, it starts the next attempt. Refuses, creating nothing, when it cannot start one."""

    def seed_job(self, source: str, job_id: str, attempt: int = 1) -> SeedJob:
        """The job as it is now (the step polls it on its own clock)."""

    def bucket(self, region: str) -> str: ...

    def writers(self, parameter: str) -> str | None:
        """The bucket writers write to now."""

    def point_writers(self, parameter: str, value: str) -> str: ...


@dataclass(frozen=True)
class EndpointsCopy:
    """One copy of the active-endpoints ConfigMap (docs/kubernetes.md) in a region's cluster."""

    namespace: str
    name: str
    data: Mapping[str, str]
    """The contract's keys only (contract.active_endpoints.contract_data): nothing else of the ConfigMap is
    read into the runbooks, so nothing else can reach a journal or a log."""
    updated_by: str | None = None
    """The run id that wrote it last (annotation regionpair.io/updated-by; None: Pulumi's original)."""


@dataclass(frozen=True)
class ClusterEndpoints:
    """What one region's cluster holds of the contract."""

    region: str
    context: str
    """The kubeconfig context it was read through (sandbox: its stand-in's name)."""
    copies: tuple[EndpointsCopy, ...]
    missing: tuple[str, ...] = ()
    """Namespaces of the outputs that hold no copy (the stack creates them; the runbooks never do)."""


@dataclass(frozen=True)
class DeploymentState:
    """One Deployment a region's outputs list for restart (``kubernetes.restart_deployments``)."""

    namespace: str
    name: str
    exists: bool
    restarted_for: str | None = None
    """Pod-template annotation regionpair.io/restarted-for: the run id of the ConfigMap write its pods
    were last restarted for (None: never restarted by the runbooks)."""
    restarted_at: str | None = None
    """Pod-template annotation kubectl.kubernetes.io/restartedAt (set by the runbooks or by hand)."""
    paused: bool = False
    """A paused Deployment takes the restart only when resumed."""
    rollout: str | None = None
    """How far its rollout is, in words ("2 of 3 updated, 3 available"): reported, never waited for."""


class Endpoints(Protocol):
    """The active-endpoints ConfigMaps of each region's cluster (kubectl, or the sandbox's stand-in),
    and the Deployments listed to be restarted once they changed."""

    def read(self, region: str) -> ClusterEndpoints:
        """Every copy in the region's namespaces (raises Unreachable when the cluster cannot be reached)."""

    def publish(self, region: str, values: Mapping[str, str], run_id: str) -> str:
        """Set ``values`` (contract keys) in every copy of the region, leave every other key as it is,
        and annotate each copy ``regionpair.io/updated-by`` = ``run_id``. Never creates a copy."""

    def deployments(self, region: str) -> tuple[DeploymentState, ...]:
        """Each Deployment of the region's ``restart_deployments``, in the outputs' order; one that does
        not exist with ``exists=False`` (raises Unreachable when the cluster cannot be reached)."""

    def restart(self, region: str, namespace: str, name: str, restarted_for: str, at: str) -> str:
        """What ``kubectl rollout restart`` does, to one listed Deployment: set its pod template's
        annotations kubectl.kubernetes.io/restartedAt = ``at`` and regionpair.io/restarted-for =
        ``restarted_for``. Refuses (BadInput) a Deployment the outputs do not list. Does not wait
        for the rollout."""


PAUSED = "PAUSED"
"""The parameter value that tells Kafka and S3 clients to produce and write nothing until it
changes: a planned switchover's fence for them (the client contract, docs/sandbox.md)."""


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> None: ...


class LogNotifier:
    """Notifier that only logs (the default where no topic is configured)."""

    def __init__(self, logger):
        self.logger = logger

    def notify(self, subject: str, message: str) -> None:
        self.logger.info("%s: %s", subject, message)


@dataclass
class Ports:
    db: DatabaseControl
    sql: SqlProbe
    dns: DnsControl
    health: HealthProbe
    lock: Lock
    notifier: Notifier
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)
    """Adapter-specific facts for the report (e.g. the sandbox directory)."""
    streaming: Streaming | None = None
    """Kafka and its replicator; None where the adapter (or the pair) has none."""
    objects: ObjectStore | None = None
    """The data buckets and their replication; None where there is none."""
    endpoints: Endpoints | None = None
    """The clusters' active-endpoints ConfigMaps; None when no region declares a cluster."""
    audit_sink: Any = None
    """Where every audit entry also goes (``runbooks.core.audit.AuditSink``; AWS: the DR region's
    object-locked backups bucket; the sandbox: its hash-chained JSON-lines file); None: local only."""
    metrics: Any = None
    """Remote metrics (``runbooks.core.metrics.Metrics``; AWS: CloudWatch); None: the Prometheus file only."""
    backups: Any = None
    """The databases' backups (``runbooks.backups.ports.BackupControl``), for the PITR-in-DR gate; None:
    the gate cannot look and says so."""
    slots: Any = None
    """``runbooks.backups.slots.SlotControl``: logical replication slots (None: no slot step in the plans)."""
    slot_store: Any = None
    """``runbooks.backups.slots.SlotStore``: where the slot backups are kept (None: no slot step)."""

    def close(self) -> None:
        for port in (self.db, self.sql, self.dns, self.health, self.streaming, self.objects, self.endpoints):
            close = getattr(port, "close", None)
            if close:
                close()
