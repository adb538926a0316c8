"""The ports of the backup runbooks (snapshot, restore, verify_backup, undelete), as Protocols.

Adapters: ``runbooks.adapters.sandbox_backups`` (real base backups, WAL archive and PITR on the
sandbox's PostgreSQL; moto's S3) and ``runbooks.adapters.aws`` (RDS, S3, CloudWatch). Tests use
the in-memory fakes of ``tests/fakes.py``. Times are epoch seconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from contract import kafka_backup
from runbooks.core.audit import AuditSink
from runbooks.core.clock import Clock
from runbooks.core.errors import EXIT_REFUSED, RunbookError
from runbooks.core.metrics import Metrics
from runbooks.core.ports import SqlProbe

MANAGED_TAG = "regionpair:managed-by"
"""Tag (and value ``snapshot-runbook``) on every snapshot the snapshot runbook makes. Retention
deletes only snapshots that carry it: a snapshot someone made by hand (a legal hold, a pre-upgrade
copy) is never the runbook's to delete."""
MANAGED_VALUE = "snapshot-runbook"

TIER_TAG = "regionpair:retention-tier"
"""Tag naming a snapshot's retention tier (docs/backups.md, "Retention tiers"). ``compliance``: kept 7
years and never deleted by any runbook — retention refuses it, and so do both adapters' deletes."""
COMPLIANCE = "compliance"


def is_compliance(snapshot: "Snapshot") -> bool:
    return snapshot.tags.get(TIER_TAG) == COMPLIANCE


class ComplianceRefused(RunbookError):
    """A delete of a compliance-tier backup was asked for: refused, nothing deleted."""

    exit_code = EXIT_REFUSED


def refuse_compliance(snapshot: "Snapshot") -> None:
    """Every delete path calls this first (the retention runbook and both adapters' ``delete_snapshot``)."""
    if is_compliance(snapshot):
        raise ComplianceRefused(
            f"{snapshot.region}/{snapshot.id} is in the compliance tier ({TIER_TAG}={COMPLIANCE}): no runbook "
            "deletes it, whatever it is told; nothing was deleted. Compliance backups end by their archive's "
            "own lock and lifecycle (docs/backups.md, 'Retention tiers').")


@dataclass(frozen=True)
class Snapshot:
    id: str
    region: str
    database: str
    status: str
    """`available`, `creating`, `copying`, … (RDS's words)."""
    created_at: float | None
    kind: str = "manual"
    """`manual` or `automated`."""
    tags: dict[str, str] = field(default_factory=dict)
    arn: str | None = None
    kms_key_id: str | None = None
    copied_from: str | None = None
    """For a copy: the source snapshot's ARN (AWS) or region (sandbox)."""
    size_bytes: int | None = None
    """AWS: the snapshot's ``AllocatedStorage`` (GiB, RDS API Reference "DBSnapshot") in bytes; the
    sandbox: the base backup's size. None: unknown."""


@dataclass(frozen=True)
class Archive:
    """A backup in the compliance tier's archive (AWS: an RDS snapshot export into the archive bucket)."""

    id: str
    region: str
    database: str
    source: str
    """The snapshot (or base backup) archived."""
    status: str
    """AWS: the export task's status, lower case (starting, in_progress, complete, canceled, failed)."""
    started_at: float | None
    location: str
    """Where it is: ``s3://bucket/prefix/id`` (AWS) or a directory (sandbox)."""


@dataclass(frozen=True)
class Window:
    """The restorable window of a database in a region: any time in [earliest, latest]."""

    region: str
    database: str
    earliest: float
    latest: float
    source: str
    """What the window is read from (e.g. 'automated backups of prod-payments', 'base backups + WAL archive')."""


@dataclass(frozen=True)
class Instance:
    """A database instance a restore created."""

    name: str
    region: str
    database: str
    status: str
    """`creating`, `available`, `failed`, `deleting`, `absent`."""
    endpoint: str | None = None
    port: int | None = None
    dsn: str | None = None
    """Sandbox: the libpq connection string (password in a passfile, never inline). AWS: None."""
    restored_to: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class TableState:
    rows: int
    checksum: str
    """An order-independent digest of every row's text (sum of 64-bit slices of md5)."""


@dataclass(frozen=True)
class Reference:
    """The state of chosen tables on the source at one instant ``time``: the tables are locked
    against writes (SHARE) while they are summed and until the database clock has passed ``time``,
    so a restore to ``time`` must hold exactly these rows."""

    region: str
    database: str
    time: float
    tables: dict[str, TableState]


@dataclass(frozen=True)
class Integrity:
    tables: dict[str, TableState]
    amcheck: list[str] | None
    """Problems amcheck reported (empty: none); None when amcheck is not available."""
    amcheck_note: str = ""


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    last_modified: float
    is_latest: bool
    delete_marker: bool
    size: int | None = None
    etag: str | None = None


class BackupControl(Protocol):
    def snapshots(self, region: str, database: str) -> list[Snapshot]:
        """Manual and automated snapshots of the database held in the region, oldest first."""

    def create_snapshot(self, region: str, database: str, snapshot_id: str, tags: dict[str, str]) -> Snapshot:
        """Start a manual snapshot (idempotent by id)."""

    def copy_snapshot(self, snapshot: Snapshot, target_region: str, tags: dict[str, str]) -> Snapshot:
        """Start a copy into ``target_region`` encrypted with that region's key (idempotent)."""

    def delete_snapshot(self, snapshot: Snapshot) -> str:
        """Delete a snapshot; a compliance snapshot is refused (``refuse_compliance``), nothing deleted."""

    # The compliance archive (optional; the retention runbook's --archive). There is no delete.
    def archive_target(self, region: str) -> str | None:
        """Where the region's archive is (bucket or directory), None: none declared."""

    def archives(self, region: str, database: str) -> list[Archive]: ...

    def archive(self, snapshot: Snapshot, archive_id: str) -> Archive:
        """Start archiving ``snapshot`` into its region's archive (idempotent by id)."""

    def window(self, region: str, database: str, seal: bool = False) -> Window | None:
        """The restorable window, None without any backup. ``seal``: first make the newest writes
        restorable where the adapter can (sandbox: WAL switch and archive)."""

    def restore(self, region: str, database: str, name: str, to_time: float | None) -> Instance:
        """Start a point-in-time restore to a NEW instance ``name`` (None: latest restorable time)."""

    def instance(self, region: str, name: str) -> Instance:
        """A restored instance as it is now (status ``absent`` when there is none)."""

    def delete_instance(self, region: str, name: str) -> str:
        """Delete a restored instance the runbooks created (never anything else), without a final snapshot."""

    def reference(self, region: str, database: str, tables: list[str], timeout: float) -> Reference:
        """Lock, sum and time-stamp the tables on the live database (see Reference)."""

    def integrity(self, instance: Instance, tables: list[str]) -> Integrity:
        """Sum the tables on a restored instance and run amcheck where available."""


class ObjectVersions(Protocol):
    def versioning(self, bucket: str) -> str | None:
        """`Enabled`, `Suspended`, or None (never enabled)."""

    def versions(self, bucket: str, prefix: str) -> list[ObjectVersion]:
        """Every version and delete marker under the prefix."""

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        """Permanently delete one version or delete marker."""

    def restore_version(self, bucket: str, key: str, version_id: str) -> str:
        """Copy an earlier version over the key (a new version with its content); returns the new version id."""


@dataclass
class BackupPorts:
    backups: BackupControl
    objects: ObjectVersions
    metrics: Metrics
    audit_sink: AuditSink
    sql: SqlProbe | None
    """For the replication-lag metric (None: not measured)."""
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)
    notifier: Any = None
    """A ``runbooks.core.ports.Notifier`` (AWS: the alarm topics; the sandbox: its JSON-lines sink);
    None: notifications are only logged."""
    slots: Any = None
    """``runbooks.backups.slots.SlotControl`` (backup_slots, recreate_slots); None: the adapter has none."""
    slot_store: Any = None
    """``runbooks.backups.slots.SlotStore``."""
    caches: Any = None
    """``runbooks.backups.cache.CacheControl`` (cache_backup, cache_restore); None: the adapter has none."""
    kafka_backups: Any = None
    """``runbooks.backups.ports.KafkaBackupPort`` (kafka_replay); None: the adapter has none."""
    config_exports: Any = None
    """``runbooks.backups.k8s_config_export.ExportStore`` (config_restore); None: the adapter has none."""

    def close(self) -> None:
        for port in (self.backups, self.objects, self.sql):
            close = getattr(port, "close", None)
            if close:
                close()


@dataclass
class KafkaBackupPort:
    """What the replay runbook needs: the backups store, and a Kafka client per region
    (``runbooks.adapters.kafka_client.KafkaTopics`` or a fake with the same methods)."""

    store: kafka_backup.BackupStore
    cluster: "object"
    """``cluster(region)`` → the region's Kafka (partitions, end_offsets, create_topic, produce, read)."""
    source_region: str
    """The region whose cluster the backup reads (where a replay goes by default)."""
