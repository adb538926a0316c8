"""The backup ports on the sandbox: base backups, WAL archive and real point-in-time restores of
the local PostgreSQL servers (through ``sandbox.control``, which starts every process), and the
regions' S3 (moto) for undelete (through the AWS adapter's S3 code, pointed at moto).

Snapshots are base backups (``kind`` manual or automated). A copy to the other region copies the
backup's directory; the sandbox has no KMS, so there is no key (docs/backups.md). RDS replicates
automated backups and WAL to the DR region continuously; here the DR region receives the
automated backups and the archived WAL when a window is asked for while the other region's
server runs — never from a region that is down.
"""

from __future__ import annotations

import logging

import psycopg

from runbooks.backups import verify_sql as backup_sql
from runbooks.backups.ports import Archive, Instance, Integrity, Reference, Snapshot, Window, refuse_compliance
from runbooks.core.errors import StepFailed, Unreachable

log = logging.getLogger(__name__)


def _snapshot(meta: dict) -> Snapshot:
    return Snapshot(id=meta["id"], region=meta["region"], database=meta["database"], status="available",
                    created_at=meta["finished_at"], kind=meta.get("kind", "automated"), tags=dict(meta.get("tags") or {}),
                    arn=f"sandbox:{meta['region']}:{meta['database']}:{meta['id']}", copied_from=meta.get("copied_from"),
                    size_bytes=meta.get("size_bytes"))


def _instance(info: dict | None, region: str, name: str) -> Instance:
    if info is None:
        return Instance(name, region, "", "absent")
    return Instance(name=info["name"], region=info["region"], database=info["database"],
                    status="available" if info.get("state") == "running" else "stopped",
                    endpoint=info["address"], port=info["port"], dsn=info["dsn"], restored_to=info["restored_to"],
                    seconds=info.get("seconds"))


class SandboxBackups:
    def __init__(self, sb):
        self.sb = sb

    def _errors(self, fn, *args, **kwargs):
        from sandbox.errors import SandboxError
        try:
            return fn(*args, **kwargs)
        except SandboxError as exc:
            raise StepFailed(str(exc)) from exc

    def _running_primary(self, region: str, database: str) -> bool:
        node = self.sb.node(region, database)
        return node.is_running() and node.role() == "primary"

    def snapshots(self, region: str, database: str) -> list[Snapshot]:
        return [_snapshot(m) for m in self.sb.backups.list(database, region)]

    def create_snapshot(self, region: str, database: str, snapshot_id: str, tags: dict[str, str]) -> Snapshot:
        node = self.sb.node(region, database)
        if not node.is_running():
            raise Unreachable(f"{region}/{database} is not running; cannot take a snapshot of it")
        return _snapshot(self._errors(self.sb.backups.take, node, kind="manual", tags=tags, backup_id=snapshot_id))

    def copy_snapshot(self, snapshot: Snapshot, target_region: str, tags: dict[str, str]) -> Snapshot:
        return _snapshot(self._errors(self.sb.backups.copy, snapshot.database, snapshot.id, snapshot.region,
                                      target_region, tags))

    expires_automated = False
    """The sandbox keeps its base backups until the retention runbook deletes them (docs/backups.md)."""

    def delete_snapshot(self, snapshot: Snapshot) -> str:
        refuse_compliance(snapshot)  # a compliance backup is never deleted, whoever asks
        meta = self.sb.backups.get(snapshot.database, snapshot.region, snapshot.id)
        if meta is not None:  # its tags on disk, not as the caller saw them
            refuse_compliance(_snapshot(meta))
        gone = self.sb.backups.delete(snapshot.database, snapshot.region, snapshot.id)
        return f"deleted {snapshot.region}/{snapshot.id}" if gone else f"{snapshot.region}/{snapshot.id} was already gone"

    def archive_target(self, region: str) -> str | None:
        return str(self.sb.layout.pg_dir / "<database>" / region / "compliance") if region in self.sb.regions else None

    def _archive(self, meta: dict) -> Archive:
        return Archive(id=meta["id"], region=meta["region"], database=meta["database"], source=meta["source"],
                       status=meta["status"], started_at=meta["started_at"],
                       location=str(self.sb.backups.compliance_dir(meta["database"], meta["region"]) / meta["id"]))

    def archives(self, region: str, database: str) -> list[Archive]:
        return [self._archive(m) for m in self.sb.backups.archives(database, region)]

    def archive(self, snapshot: Snapshot, archive_id: str) -> Archive:
        return self._archive(self._errors(self.sb.backups.archive, snapshot.database, snapshot.region, snapshot.id,
                                          archive_id))

    def _replicate_into(self, region: str, database: str) -> None:
        """What RDS's automated-backup replication does all the time: the other region's automated
        backups and archived WAL, copied here — only while that region's server runs."""
        other = next(r for r in self.sb.regions if r != region)
        if not self.sb.node(other, database).is_running():
            return
        for meta in self.sb.backups.list(database, other):
            if meta.get("kind") == "automated" and meta.get("copied_from") is None:
                self._errors(self.sb.backups.copy, database, meta["id"], other, region)
        self.sb.backups.replicate_archive(database, other, region)

    def window(self, region: str, database: str, seal: bool = False) -> Window | None:
        if seal:
            for r in self.sb.regions:
                if self._running_primary(r, database):
                    self._errors(self.sb.backups.seal, self.sb.node(r, database))
        self._replicate_into(region, database)
        w = self.sb.backups.window(database, region)
        if w is None:
            return None
        return Window(region, database, w[0], w[1], f"base backups and the WAL archive of {database} in {region}")

    def restore(self, region: str, database: str, name: str, to_time: float | None) -> Instance:
        info = self._errors(self.sb.restore, name, database, region, to_time=to_time)
        return _instance(info, region, name)

    def instance(self, region: str, name: str) -> Instance:
        return _instance(self.sb.backups.restore_info(name), region, name)

    def delete_instance(self, region: str, name: str) -> str:
        return self._errors(self.sb.drop_restore, name)

    def reference(self, region: str, database: str, tables: list[str], timeout: float) -> Reference:
        node = self.sb.node(region, database)
        try:
            with psycopg.connect(node.dsn(admin=True, local=True), autocommit=True) as conn:
                at, states = backup_sql.reference(conn, tables, granularity=0.0, lock_timeout_s=timeout)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"{region}/{database} does not answer: {str(exc).strip().splitlines()[0]}") from None
        return Reference(region, database, at, states)

    def integrity(self, instance: Instance, tables: list[str]) -> Integrity:
        info = self.sb.backups.restore_info(instance.name)
        if info is None:
            raise StepFailed(f"restored instance {instance.name} does not exist")
        with psycopg.connect(info["local_dsn"], autocommit=True) as conn:
            missing = backup_sql.missing_tables(conn, tables)
            states = {t: backup_sql.table_state(conn, t) for t in tables if t not in missing}
            problems, note = backup_sql.amcheck(conn, [t for t in tables if t not in missing])
        return Integrity(states, problems, note + (f"; missing table(s): {', '.join(missing)}" if missing else ""))


def sandbox_kafka_backups(sb):
    """The Kafka topic backups of a sandbox with Kafka: its backups store and its real brokers."""
    if not sb.state.extra.get("kafka"):
        return None
    from contract.kafka_backup import DirStore
    from runbooks.adapters.kafka_client import KafkaTopics
    from runbooks.backups.ports import KafkaBackupPort
    from sandbox import kafka_backup as _kafka_backup, kafka_cluster
    from sandbox.layout import EAST
    return KafkaBackupPort(store=DirStore(_kafka_backup.store_dir(sb.layout)),
                           cluster=lambda region: KafkaTopics(kafka_cluster.bootstrap(sb.state, region)), source_region=EAST)
