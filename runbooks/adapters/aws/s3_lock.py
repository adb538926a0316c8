"""The run lock in S3: one object in the DR region's backups bucket, taken with a conditional
PutObject so two runs cannot both hold it.
"""

from __future__ import annotations

import json
import os
import socket

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, error_code, fail
from runbooks.core.errors import BadInput, LockHeld
from runbooks.core.lock import may_take_over


class S3Lock:
    """The pair's lock as one S3 object in the DR region's backups bucket (reachable when the
    primary region is down). Taken with ``If-None-Match: *``; taken over (crashed own run, or
    --break-lock) with ``If-Match`` on the ETag read, so two takers cannot both win; released
    with ``If-Match`` so a run only ever deletes its own lock."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self.key = f"regionpair/locks/{outputs.project}.json"

    def _where(self) -> tuple[str, str]:
        dr = self.outputs.secondary
        if dr.storage is None or not dr.storage.backups_bucket:
            raise BadInput(f"stack outputs: regions.{dr.name}.storage.backups_bucket is missing; the AWS lock lives "
                           "there (both regions can reach it when the primary region is down)")
        return dr.name, dr.storage.backups_bucket

    def _read(self) -> tuple[dict, str] | None:
        region, bucket = self._where()
        try:
            obj = self.clients.call("s3", region, "get_object", Bucket=bucket, Key=self.key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise fail(exc, f"read lock s3://{bucket}/{self.key}") from exc
        body = obj["Body"].read()
        try:
            holder = json.loads(body)
        except json.JSONDecodeError:
            holder = {"run_id": "?", "who": "?", "since": "?", "note": f"unreadable lock s3://{bucket}/{self.key}"}
        return holder, obj["ETag"]

    def holder(self) -> dict | None:
        found = self._read()
        return None if found is None else found[0]

    def _put(self, body: bytes, **condition) -> bool:
        """Write the lock under a condition; False when the condition did not hold."""
        region, bucket = self._where()
        try:
            self.clients.call("s3", region, "put_object", Bucket=bucket, Key=self.key, Body=body,
                              ContentType="application/json", **condition)
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise fail(exc, f"write lock s3://{bucket}/{self.key}") from exc
        return True

    def acquire(self, info: dict, break_lock: bool = False) -> str:
        info = dict(info, host=socket.gethostname(), pid=os.getpid())
        body = json.dumps(info, sort_keys=True).encode()
        for _ in range(3):  # the lock may vanish or change between our write and our read
            if self._put(body, IfNoneMatch="*"):
                return "lock taken"
            found = self._read()
            if found is None:
                continue
            holder, etag = found
            if holder.get("run_id") == info["run_id"] and holder.get("pid") == info["pid"] \
                    and holder.get("host") == info["host"]:
                return "lock already held by this run"
            if not (break_lock or may_take_over(holder, info)):
                raise LockHeld(holder)
            if self._put(body, IfMatch=etag):
                why = "broken by --break-lock" if break_lock else "taken over from the crashed run"
                return f"lock {why} (was {holder.get('run_id')} by {holder.get('who')} since {holder.get('since')})"
        raise LockHeld(self.holder() or {"run_id": "?", "note": "the lock kept changing under us"})

    def release(self, run_id: str) -> None:
        found = self._read()
        if found is None or found[0].get("run_id") != run_id:
            return
        region, bucket = self._where()
        try:
            self.clients.call("s3", region, "delete_object", Bucket=bucket, Key=self.key, IfMatch=found[1])
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "NoSuchKey"):
                return  # somebody broke our lock meanwhile: it is theirs now
            raise fail(exc, f"release lock s3://{bucket}/{self.key}") from exc
