"""The backup runbooks' RDS port: snapshots (create, copy to DR, delete), exports to S3,
point-in-time restores and the temporary instances verify_backup checks and deletes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, database_of, describe_instance, epoch_seconds, error_code, fail
from runbooks.adapters.aws.sql import ConnInfo, PsycopgSql
from runbooks.backups.ports import Snapshot
from runbooks.core.clock import Clock
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.redact import scrub

RESTORED_TAG = "regionpair:restored-by"
"""On every instance a backup runbook restores (value: the runbook and run id)."""
DATABASE_TAG = "regionpair:database"
"""The logical database a restored instance was restored from (its credentials are that database's)."""
TEMPORARY_TAG = "regionpair:temporary"
"""``true`` on verify_backup's temporary instances: the only instances the runbooks ever delete."""


class RdsBackups:
    """BackupControl on RDS. Snapshots of a database are found by its instance identifier in the
    region (a copy in DR keeps the source instance's identifier, so both are looked up)."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, sql: PsycopgSql):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.sql = sql

    def _rds(self, region: str, op: str, what: str, **params) -> dict:
        try:
            return self.clients.call("rds", region, op, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc

    def _identifiers(self, region: str, database: str) -> list[str]:
        ids = []
        for r in self.outputs.regions.values():
            if database in r.databases and r.databases[database].identifier not in ids:
                ids.append(r.databases[database].identifier)
        own = database_of(self.outputs, region, database)[1].identifier
        return [own] + [i for i in ids if i != own]

    def _snapshot(self, s: dict, region: str, database: str) -> Snapshot:
        return Snapshot(id=s["DBSnapshotIdentifier"], region=region, database=database, status=s.get("Status", "?"),
                        created_at=epoch_seconds(s.get("SnapshotCreateTime")), kind=s.get("SnapshotType", "manual"),
                        tags={t["Key"]: t["Value"] for t in s.get("TagList") or []}, arn=s.get("DBSnapshotArn"),
                        kms_key_id=s.get("KmsKeyId"), copied_from=s.get("SourceDBSnapshotIdentifier"),
                        size_bytes=s["AllocatedStorage"] * 2**30 if s.get("AllocatedStorage") else None)

    def snapshots(self, region: str, database: str) -> list:
        out, seen = [], set()
        for ident in self._identifiers(region, database):
            marker: dict = {}
            for _ in range(1000):
                page = self._rds(region, "describe_db_snapshots", f"list snapshots of {ident} in {region}",
                                 DBInstanceIdentifier=ident, **marker)
                for s in page.get("DBSnapshots") or []:
                    if s["DBSnapshotIdentifier"] not in seen:
                        seen.add(s["DBSnapshotIdentifier"])
                        out.append(self._snapshot(s, region, database))
                if not page.get("Marker"):
                    break
                marker = {"Marker": page["Marker"]}
        return sorted(out, key=lambda s: s.created_at or 0.0)

    def _find(self, region: str, database: str, snapshot_id: str):
        try:
            found = self.clients.call("rds", region, "describe_db_snapshots", DBSnapshotIdentifier=snapshot_id)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotNotFound":
                return None
            raise fail(exc, f"describe snapshot {snapshot_id} in {region}") from exc
        snaps = found.get("DBSnapshots") or []
        return self._snapshot(snaps[0], region, database) if snaps else None

    def create_snapshot(self, region: str, database: str, snapshot_id: str, tags: dict[str, str]):
        _, db = database_of(self.outputs, region, database)
        try:
            out = self.clients.call("rds", region, "create_db_snapshot", DBSnapshotIdentifier=snapshot_id,
                                    DBInstanceIdentifier=db.identifier,
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotAlreadyExists":
                return self._find(region, database, snapshot_id)
            raise fail(exc, f"snapshot {db.identifier} in {region}") from exc
        return self._snapshot(out["DBSnapshot"], region, database)

    def copy_snapshot(self, snapshot, target_region: str, tags: dict[str, str]):
        key = self.outputs.regions[target_region].kms_key_arn if target_region in self.outputs.regions else None
        if not key:
            raise BadInput(f"stack outputs: regions.{target_region}.kms_key_arn is missing; a cross-region copy of an "
                           "encrypted snapshot needs the DR region's key")
        try:
            out = self.clients.call("rds", target_region, "copy_db_snapshot", SourceDBSnapshotIdentifier=snapshot.arn,
                                    TargetDBSnapshotIdentifier=snapshot.id, KmsKeyId=key, CopyTags=True,
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                                    SourceRegion=snapshot.region)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotAlreadyExists":
                return self._find(target_region, snapshot.database, snapshot.id)
            raise fail(exc, f"copy snapshot {snapshot.id} to {target_region}") from exc
        return self._snapshot(out["DBSnapshot"], target_region, snapshot.database)

    expires_automated = True
    """RDS deletes automated backups itself after BackupRetentionPeriod; DeleteDBSnapshot takes manual ones only."""

    def automated_retention_days(self, region: str, database: str) -> int | None:
        """The period RDS holds the database's automated backups in ``region``: the instance's own in its
        region, the replicated backups' in DR (``BackupRetentionPeriod`` of DescribeDBInstanceAutomatedBackups)."""
        for backups in self._automated_backups_by_identifier(region, database):
            for b in backups:
                if b.get("BackupRetentionPeriod") is not None:
                    return int(b["BackupRetentionPeriod"])
        return None

    def delete_snapshot(self, snapshot) -> str:
        from runbooks.backups.ports import refuse_compliance
        refuse_compliance(snapshot)  # before any call: a compliance snapshot is never deleted from here
        current = self._find(snapshot.region, snapshot.database, snapshot.id)  # its tags now, not as listed
        if current is not None:
            refuse_compliance(current)
        try:
            self.clients.call("rds", snapshot.region, "delete_db_snapshot", DBSnapshotIdentifier=snapshot.id)
        except ClientError as exc:
            if error_code(exc) == "DBSnapshotNotFound":
                return f"{snapshot.region}/{snapshot.id} was already gone"
            raise fail(exc, f"delete snapshot {snapshot.id} in {snapshot.region}") from exc
        return f"deleted {snapshot.region}/{snapshot.id}"

    # ---- the compliance archive: RDS snapshot exports (StartExportTask) -------------------------------

    def archive_target(self, region: str) -> str | None:
        r = self.outputs.regions.get(region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        return None if archive is None else f"s3://{archive.bucket}"

    @staticmethod
    def _archive_prefix(database: str) -> str:
        return f"regionpair/{database}"

    def _archive(self, t: dict, region: str, database: str):
        from runbooks.backups.ports import Archive
        source = (t.get("SourceArn") or "").rsplit(":", 1)[-1]
        return Archive(id=t["ExportTaskIdentifier"], region=region, database=database, source=source,
                       status=str(t.get("Status", "?")).lower(), started_at=epoch_seconds(t.get("TaskStartTime")),
                       location=f"s3://{t.get('S3Bucket')}/{t.get('S3Prefix') or ''}/{t['ExportTaskIdentifier']}")

    def archives(self, region: str, database: str) -> list:
        r = self.outputs.regions.get(region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        if archive is None:
            return []
        out, marker = [], {}
        for _ in range(1000):
            page = self._rds(region, "describe_export_tasks", f"list snapshot exports in {region}", **marker)
            out += [self._archive(t, region, database) for t in page.get("ExportTasks") or []
                    if t.get("S3Bucket") == archive.bucket and t.get("S3Prefix") == self._archive_prefix(database)]
            if not page.get("Marker"):
                break
            marker = {"Marker": page["Marker"]}
        return sorted(out, key=lambda a: a.started_at or 0.0)

    def archive(self, snapshot, archive_id: str):
        r = self.outputs.regions.get(snapshot.region)
        archive = r.storage.archive if r is not None and r.storage is not None else None
        if archive is None or not r.kms_key_arn:
            raise BadInput(f"stack outputs: regions.{snapshot.region}.storage.archive or kms_key_arn is missing; an "
                           "export into the compliance archive needs the archive bucket, its export role and the "
                           "region's key (backups.compliance_archive in the stack config, then pulumi up)")
        if not snapshot.arn:
            raise BadInput(f"snapshot {snapshot.region}/{snapshot.id} has no ARN to export")
        try:
            t = self.clients.call("rds", snapshot.region, "start_export_task", ExportTaskIdentifier=archive_id,
                                  SourceArn=snapshot.arn, S3BucketName=archive.bucket,
                                  IamRoleArn=archive.export_role_arn, KmsKeyId=r.kms_key_arn,
                                  S3Prefix=self._archive_prefix(snapshot.database))
        except ClientError as exc:
            if error_code(exc) == "ExportTaskAlreadyExists":
                found = [a for a in self.archives(snapshot.region, snapshot.database) if a.id == archive_id]
                if found:
                    return found[0]
            raise fail(exc, f"export snapshot {snapshot.id} into {archive.bucket}") from exc
        return self._archive(t, snapshot.region, snapshot.database)

    def _automated_backups_by_identifier(self, region: str, database: str):
        """The automated backups (DescribeDBInstanceAutomatedBackups) of each of the database's
        identifiers in ``region``, in the order ``_identifiers`` gives them; read lazily, so a caller
        that stops at the first answer makes no further call."""
        for ident in self._identifiers(region, database):
            try:
                out = self.clients.call("rds", region, "describe_db_instance_automated_backups",
                                        DBInstanceIdentifier=ident)
            except ClientError as exc:
                if error_code(exc) == "DBInstanceAutomatedBackupNotFound":
                    continue
                raise fail(exc, f"describe automated backups of {ident} in {region}") from exc
            yield out.get("DBInstanceAutomatedBackups") or []

    def _automated_backup(self, region: str, database: str) -> dict | None:
        for backups in self._automated_backups_by_identifier(region, database):
            found = [b for b in backups if b.get("RestoreWindow")]
            if found:
                return found[0]
        return None

    def window(self, region: str, database: str, seal: bool = False):
        from runbooks.backups.ports import Window
        backup = self._automated_backup(region, database)
        if backup is None:
            return None
        w = backup["RestoreWindow"]
        if not w.get("EarliestTime") or not w.get("LatestTime"):
            return None
        return Window(region, database, epoch_seconds(w["EarliestTime"]), epoch_seconds(w["LatestTime"]),
                      backup.get("DBInstanceAutomatedBackupsArn") or backup.get("DBInstanceIdentifier", "?"))

    def _own_instance(self, region: str, database: str) -> dict:
        _, db = database_of(self.outputs, region, database)
        return describe_instance(self.clients, region, db.identifier) or {}

    def restore(self, region: str, database: str, name: str, to_time: float | None):
        _, db = database_of(self.outputs, region, database)
        own = self._own_instance(region, database)
        params: dict[str, Any] = {
            "TargetDBInstanceIdentifier": name, "MultiAZ": False, "PubliclyAccessible": False,
            "CopyTagsToSnapshot": True, "DeletionProtection": False, "EnableIAMDatabaseAuthentication": True,
            "Tags": [{"Key": RESTORED_TAG, "Value": name},
                     {"Key": TEMPORARY_TAG, "Value": str(name.startswith("verify-")).lower()},
                     {"Key": DATABASE_TAG, "Value": database}]}
        if to_time is None:
            params["UseLatestRestorableTime"] = True
        else:
            params["RestoreTime"] = datetime.fromtimestamp(to_time, timezone.utc)
        if own.get("DBSubnetGroup", {}).get("DBSubnetGroupName"):
            params["DBSubnetGroupName"] = own["DBSubnetGroup"]["DBSubnetGroupName"]
        groups = [g["VpcSecurityGroupId"] for g in own.get("VpcSecurityGroups") or []] or \
            ([db.security_group_id] if db.security_group_id else [])
        if groups:
            params["VpcSecurityGroupIds"] = groups
        if own.get("DBInstanceClass"):
            params["DBInstanceClass"] = own["DBInstanceClass"]
        if db.role == "primary" and own.get("ReadReplicaSourceDBInstanceIdentifier") is None and own:
            params["SourceDBInstanceIdentifier"] = db.identifier
        else:
            backup = self._automated_backup(region, database)
            if backup is None or not backup.get("DBInstanceAutomatedBackupsArn"):
                raise StepFailed(f"no replicated automated backups of {database} in {region} to restore from")
            # no key parameter: the instance is encrypted with the replicated backups' key, the DR
            # region's (the stacks' InstanceAutomatedBackupsReplication sets it)
            params["SourceDBInstanceAutomatedBackupsArn"] = backup["DBInstanceAutomatedBackupsArn"]
        try:
            out = self.clients.call("rds", region, "restore_db_instance_to_point_in_time", **params)
        except ClientError as exc:
            if error_code(exc) == "DBInstanceAlreadyExists":
                return self.instance(region, name)
            raise fail(exc, f"restore {database} in {region} to a new instance {name}") from exc
        return self._instance(out["DBInstance"], region, database)

    def _instance(self, inst: dict, region: str, database: str):
        from runbooks.backups.ports import Instance
        ep = inst.get("Endpoint") or {}
        return Instance(inst["DBInstanceIdentifier"], region, database, inst.get("DBInstanceStatus", "?"),
                        ep.get("Address"), ep.get("Port"), None)

    def instance(self, region: str, name: str):
        from runbooks.backups.ports import Instance
        inst = describe_instance(self.clients, region, name)
        if inst is None:
            return Instance(name, region, "", "absent")
        tags = {t["Key"]: t["Value"] for t in inst.get("TagList") or []}
        return self._instance(inst, region, tags.get(DATABASE_TAG, ""))

    def delete_instance(self, region: str, name: str) -> str:
        inst = describe_instance(self.clients, region, name)
        if inst is None:
            return f"{region}/{name} does not exist (nothing to delete)"
        tags = {t["Key"]: t["Value"] for t in inst.get("TagList") or []}
        if tags.get(TEMPORARY_TAG) != "true" or tags.get(RESTORED_TAG) != name:
            raise StepFailed(f"{region}/{name} is not a temporary instance of the backup runbooks "
                             f"(tags {TEMPORARY_TAG}=true and {RESTORED_TAG}={name}); it is not deleted")
        if inst.get("DBInstanceStatus") == "deleting":
            return f"{region}/{name} is already being deleted"
        self._rds(region, "delete_db_instance", f"delete the temporary instance {name}", DBInstanceIdentifier=name,
                  SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
        return f"deleting the temporary instance {region}/{name} (no final snapshot: it held a copy only)"

    def reference(self, region: str, database: str, tables: list[str], timeout: float):
        from runbooks.backups import verify_sql as backup_sql
        from runbooks.backups.ports import Reference
        # RDS restores to whole seconds: round up and hold the lock past it
        at, states = self.sql._run(region, database,
                                   lambda conn: backup_sql.reference(conn, tables, 1.0, timeout, self.clock.sleep))
        return Reference(region, database, at, states)

    def integrity(self, instance, tables: list[str]):
        import psycopg

        from runbooks.backups import verify_sql as backup_sql
        from runbooks.backups.ports import Integrity
        _, db = database_of(self.outputs, instance.region, instance.database)
        info = ConnInfo(instance.endpoint or "", instance.port or db.port, db.db_name, db.username,
                        self.sql._password(db), self.clients.settings.sql_connect_timeout)
        try:
            conn = self.sql.connect(info)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"restored instance {instance.name} does not accept connections: "
                              f"{scrub(str(exc).strip().splitlines()[0])}") from None
        try:
            missing = backup_sql.missing_tables(conn, tables)
            states = {t: backup_sql.table_state(conn, t) for t in tables if t not in missing}
            problems, note = backup_sql.amcheck(conn, [t for t in tables if t not in missing])
        finally:
            conn.close()
        return Integrity(states, problems, note + (f"; missing table(s): {', '.join(missing)}" if missing else ""))
