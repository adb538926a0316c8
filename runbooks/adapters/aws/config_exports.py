"""The Kubernetes configuration exports in AWS: the objects the export CronJob writes to a region's
backups bucket under ``k8s-config/<stamp>/<namespace>/`` (runbooks/k8s_config.py), read back with
S3 GetObject.

The job uploads with ``--sse aws:kms --sse-kms-key-id <region key>``. A GET of an SSE-KMS object
names no key: S3 decrypts it for a caller allowed ``s3:GetObject`` on it and ``kms:Decrypt`` on its
key (AWS Knowledge Center, "Do I need to specify the AWS KMS key when I download a KMS-encrypted
object from Amazon S3?"; the S3 User Guide page itself was not found by this project's document
search). So the restore reads it "as the export encrypted it" by GetObject alone, and checks that
S3 reports it encrypted with SSE-KMS under the region key the outputs name: an object that is not
(written by hand, or by something else) is refused, with the key it has."""

from __future__ import annotations

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, fail
from runbooks.backups.k8s_config_export import (
    ALL_NAMESPACES,
    EXPORT_PREFIX,
    STAMP,
    Export,
    ExportDamaged,
    export_of,
    parse_key,
    parse_list,
)
from runbooks.core.errors import BadInput


def _same_key(reported: str | None, expected: str) -> bool:
    """S3 reports the key as an ARN; compare by key id as well (an alias ARN compares only as itself)."""
    if not reported:
        return False
    return reported == expected or reported.rsplit("/", 1)[-1] == expected.rsplit("/", 1)[-1]


class S3ConfigExports:
    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def _bucket(self, region: str) -> str:
        r = self.outputs.regions.get(region)
        if r is None or r.storage is None or not r.storage.backups_bucket:
            raise BadInput(f"stack outputs: regions.{region}.storage.backups_bucket is missing; the configuration "
                           "exports of that region's cluster live there")
        return r.storage.backups_bucket

    def _call(self, region: str, op: str, what: str, **params) -> dict:
        try:
            return self.clients.call("s3", region, op, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc

    def stamps(self, region: str) -> list[str]:
        bucket = self._bucket(region)
        found, token = [], None
        while True:
            page = self._call(region, "list_objects_v2", f"list the exports in s3://{bucket}/{EXPORT_PREFIX}/",
                              Bucket=bucket, Prefix=f"{EXPORT_PREFIX}/", Delimiter="/",
                              **({"ContinuationToken": token} if token else {}))
            for p in page.get("CommonPrefixes") or []:
                stamp = p["Prefix"][len(EXPORT_PREFIX) + 1:].rstrip("/")
                if STAMP.match(stamp):
                    found.append(stamp)
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(found)

    def load(self, region: str, stamp: str) -> Export:
        bucket = self._bucket(region)
        key_arn = self.outputs.regions[region].kms_key_arn
        prefix = f"{EXPORT_PREFIX}/{stamp}/"
        keys, token = [], None
        while True:
            page = self._call(region, "list_objects_v2", f"list s3://{bucket}/{prefix}", Bucket=bucket, Prefix=prefix,
                              **({"ContinuationToken": token} if token else {}))
            keys += [o["Key"] for o in page.get("Contents") or []]
            token = page.get("NextContinuationToken")
            if not token:
                break
        objects = []
        for key in sorted(keys):
            parsed = parse_key(key)
            if parsed is None:
                continue
            _, directory, kind = parsed
            where = f"s3://{bucket}/{key}"
            got = self._call(region, "get_object", f"read the export {where}", Bucket=bucket, Key=key)
            body = got["Body"].read()
            if key_arn is not None and (got.get("ServerSideEncryption") != "aws:kms"
                                        or not _same_key(got.get("SSEKMSKeyId"), key_arn)):
                raise ExportDamaged(
                    f"{where} is not encrypted as the export job encrypts it (SSE-KMS with {key_arn}): S3 reports "
                    f"{got.get('ServerSideEncryption') or 'no encryption'}"
                    f"{' with ' + got['SSEKMSKeyId'] if got.get('SSEKMSKeyId') else ''}; not restored from")
            items = parse_list(body, kind, where)
            for o in items:
                if directory != ALL_NAMESPACES and o.namespace != directory:
                    raise ExportDamaged(f"{where}: {o.kind} {o.name} is of namespace {o.namespace}, not {directory}")
            objects += items
        return export_of(region, stamp, f"s3://{bucket}/{prefix}", objects)
