"""The audit sink in S3: one object-locked object per audit entry in the DR region's backups
bucket, written only if absent.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, error_code, fail
from runbooks.core.errors import BadInput
from runbooks.core.redact import scrub

log = logging.getLogger(__name__)


class S3AuditSink:
    """The audit trail in the DR region's backups bucket (object lock, COMPLIANCE mode, from the
    stacks): one object per entry under ``regionpair/audit/``, written only if absent, so an entry
    can be added and never replaced. Every DR runbook (failover, failback, switchover) and every
    backup runbook writes here; the DR region is the one that answers when the primary does not.

    Retention: planning document 001 keeps audit logs 7 years, longer than the bucket's default
    retention (``object_lock_days``, 30 by default). So each entry carries its own retention,
    ``ObjectLockMode=COMPLIANCE`` and ``ObjectLockRetainUntilDate`` = its time + 7 years (S3 API
    Reference, "PutObject": x-amz-object-lock-mode / x-amz-object-lock-retain-until-date; S3 User
    Guide, "Locking objects with Object Lock": in compliance mode a retention period cannot be
    shortened and the version cannot be overwritten or deleted until it ends). A bucket without
    Object Lock cannot take those headers (S3 refuses them): the entry is still written, with a
    warning in the log that its retention is not enforced."""

    RETENTION_DAYS = 7 * 365 + 2  # 7 years, leap days included

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self._locked: bool | None = None

    def _bucket_locked(self, region: str, bucket: str) -> bool:
        if self._locked is None:
            try:
                out = self.clients.call("s3", region, "get_object_lock_configuration", Bucket=bucket)
                self._locked = (out.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                    raise fail(exc, f"read the object lock configuration of s3://{bucket}") from exc
                self._locked = False
        return self._locked

    def write(self, entry: dict) -> str:
        dr = self.outputs.secondary
        if dr.storage is None or not dr.storage.backups_bucket:
            raise BadInput(f"stack outputs: regions.{dr.name}.storage.backups_bucket is missing; the audit log of "
                           "the runbooks lives there (object-locked)")
        bucket = dr.storage.backups_bucket
        day = str(entry.get("at", ""))[:10].replace("-", "/")
        key = f"regionpair/audit/{day}/{entry.get('at')}-{entry.get('run_id')}-{uuid.uuid4().hex[:8]}.json"
        extra: dict[str, Any] = {}
        locked = self._bucket_locked(dr.name, bucket)
        if locked:
            try:
                at = datetime.fromisoformat(str(entry.get("at")).replace("Z", "+00:00"))
            except ValueError:
                at = datetime.now(timezone.utc)
            extra = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": at + timedelta(days=self.RETENTION_DAYS)}
        try:
            self.clients.call("s3", dr.name, "put_object", Bucket=bucket, Key=key, IfNoneMatch="*",
                              Body=json.dumps(scrub(entry), sort_keys=True).encode(), ContentType="application/json",
                              **extra)
        except ClientError as exc:
            raise fail(exc, f"write the audit entry s3://{bucket}/{key}") from exc
        if not locked:
            log.warning("s3://%s has no Object Lock: the audit entry %s is written, its retention is not enforced",
                        bucket, key)
        return f"s3://{bucket}/{key}"
