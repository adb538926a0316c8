"""The slot ports in AWS: SQL on the RDS instances (the master user's password from Secrets
Manager, as ``runbooks.adapters.aws.sql.PsycopgSql``), and the slot backups in each region's backups
bucket under ``regionpair/slots/<database>/`` (``contract/slot_backup.py``), where the stacks' CronJob
writes them too.

The master user of RDS for PostgreSQL has ``rds_superuser``, which includes ``rds_replication``:
the role that may create logical slots and stream from them (RDS User Guide, "Performing logical
replication for Amazon RDS for PostgreSQL"). Creating one needs ``wal_level = logical``, which RDS
sets when the parameter group has ``rds.logical_replication = 1`` (a static parameter: it takes
effect after a reboot) — ``database.logical_replication`` in the stack config."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from contract.slot_backup import KEY_PREFIX, SlotBackup, SlotDocumentError, key, loads, parse
from runbooks.adapters.aws.clients import Clients, database_of, fail
from runbooks.adapters.aws.sql import ConnInfo, PsycopgSql
from runbooks.backups import slots_sql
from runbooks.backups.slots import SlotTarget
from runbooks.core.errors import StepFailed, Unreachable
from runbooks.core.redact import scrub

MAX_READ = 50
"""Backups read per region (the newest): enough history to bound a gap in time; a 5-minute schedule
keeps them for about four hours."""


class RdsSlots(slots_sql.SqlSlotControl):
    def __init__(self, outputs: Outputs, clients: Clients, sql: PsycopgSql):
        self.outputs = outputs
        self.clients = clients
        self.sql = sql

    def _run(self, target: SlotTarget, fn):
        if target.instance is None:
            return self.sql._run(target.region, target.database, fn)
        import psycopg
        _, db = database_of(self.outputs, target.region, target.database)
        try:
            inst = self.clients.call("rds", target.region, "describe_db_instances",
                                     DBInstanceIdentifier=target.instance)["DBInstances"][0]
        except ClientError as exc:
            raise fail(exc, f"describe the restored instance {target.instance}") from exc
        endpoint = inst.get("Endpoint") or {}
        if not endpoint.get("Address"):
            raise Unreachable(f"restored instance {target.instance} has no endpoint yet ({inst.get('DBInstanceStatus')})")
        info = ConnInfo(endpoint["Address"], endpoint.get("Port") or db.port, db.db_name, db.username,
                        self.sql._password(db), self.clients.settings.sql_connect_timeout)
        try:
            conn = self.sql.connect(info)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"restored instance {target.instance} does not accept connections: "
                              f"{scrub(str(exc).strip().splitlines()[0])}") from None
        try:
            return fn(conn)
        finally:
            conn.close()


class S3SlotStore:
    """Each capture is one object in every region's backups bucket (the bucket's default encryption
    applies); a region that does not answer is skipped while another one takes it."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def _buckets(self) -> list[tuple[str, str]]:
        out = [(r.name, r.storage.backups_bucket) for r in self.outputs.regions.values()
               if r.storage is not None and r.storage.backups_bucket]
        if not out:
            raise StepFailed("stack outputs: no region has storage.backups_bucket; the slot backups live there")
        return out

    def put(self, database: str, doc: dict) -> list[str]:
        parse(doc, f"slot capture of {database}")  # never store what cannot be read back
        body = json.dumps(doc, sort_keys=True).encode()
        where, missed = [], []
        for region, bucket in self._buckets():
            k = key(database, doc["captured_at"])
            try:
                self.clients.call("s3", region, "put_object", Bucket=bucket, Key=k, Body=body,
                                  ContentType="application/json")
                where.append(f"s3://{bucket}/{k}")
            except ClientError as exc:
                missed.append(str(fail(exc, f"keep the slot backup in s3://{bucket}/{k}")))
            except Unreachable as exc:
                missed.append(f"{region}: {exc}")
        if not where:
            raise StepFailed("the slot backup could not be kept anywhere: " + "; ".join(missed))
        return where + [f"NOT in {m}" for m in missed]

    def backups(self, database: str) -> list[SlotBackup]:
        found: dict[str, SlotBackup] = {}
        errors, read = [], 0
        for region, bucket in self._buckets():
            prefix = f"{KEY_PREFIX}/{database}/"
            try:
                keys, token = [], None
                while True:
                    page = self.clients.call("s3", region, "list_objects_v2", Bucket=bucket, Prefix=prefix,
                                             **({"ContinuationToken": token} if token else {}))
                    keys += [o["Key"] for o in page.get("Contents", [])]
                    token = page.get("NextContinuationToken")
                    if not token:
                        break
                for k in sorted(keys)[-MAX_READ:]:
                    name = k.rsplit("/", 1)[-1]
                    if name in found:
                        continue
                    body = self.clients.call("s3", region, "get_object", Bucket=bucket, Key=k)["Body"].read()
                    try:
                        found[name] = loads(body.decode(), f"s3://{bucket}/{k}")
                    except (SlotDocumentError, UnicodeDecodeError) as exc:
                        raise StepFailed(f"slot backup s3://{bucket}/{k} is damaged: {exc}") from None
                read += 1
            except ClientError as exc:
                errors.append(str(fail(exc, f"read the slot backups in s3://{bucket}/{prefix}")))
            except Unreachable as exc:
                errors.append(f"{region}: {exc}")
        if not read:
            raise Unreachable("; ".join(errors))
        return [found[k] for k in sorted(found)]
