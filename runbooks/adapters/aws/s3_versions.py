"""The ObjectVersions port on S3 (undelete and the backup runbooks): list versions and delete
markers, delete one version, copy one back.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import AwsCallFailed, Clients, epoch_seconds, fail
from runbooks.core.errors import BadInput


class S3Versions:
    """ObjectVersions on S3: list versions and delete markers, delete one version, copy one back."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def region_of(self, bucket: str) -> str:
        known = {}
        for r in self.outputs.regions.values():
            if r.storage:
                for b in (r.storage.data_bucket, r.storage.backups_bucket):
                    if b:
                        known[b] = r.name
        if bucket not in known:
            raise BadInput(f"--bucket {bucket}: not a bucket of the stack outputs; known: {', '.join(sorted(known))}")
        return known[bucket]

    def _call(self, bucket: str, op: str, what: str, **params) -> dict:
        try:
            return self.clients.call("s3", self.region_of(bucket), op, Bucket=bucket, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc

    def versioning(self, bucket: str) -> str | None:
        return self._call(bucket, "get_bucket_versioning", f"read versioning of {bucket}").get("Status")

    def versions(self, bucket: str, prefix: str, max_pages: int = 10_000) -> list:
        from runbooks.backups.ports import ObjectVersion
        out: list[ObjectVersion] = []
        marker: dict = {}
        for _ in range(max_pages):
            page = self._call(bucket, "list_object_versions", f"list versions in s3://{bucket}/{prefix}",
                              Prefix=prefix, **marker)
            for v in page.get("Versions") or []:
                out.append(ObjectVersion(v["Key"], v["VersionId"], epoch_seconds(v["LastModified"]), bool(v.get("IsLatest")),
                                         False, v.get("Size"), v.get("ETag")))
            for m in page.get("DeleteMarkers") or []:
                out.append(ObjectVersion(m["Key"], m["VersionId"], epoch_seconds(m["LastModified"]), bool(m.get("IsLatest")),
                                         True))
            if not page.get("IsTruncated"):
                return out
            marker = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
        raise AwsCallFailed(f"s3://{bucket}/{prefix} has more than {max_pages} pages of versions; use a narrower --prefix")

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._call(bucket, "delete_object", f"delete version {version_id} of s3://{bucket}/{key}",
                   Key=key, VersionId=version_id)

    def restore_version(self, bucket: str, key: str, version_id: str) -> str:
        out = self._call(bucket, "copy_object", f"copy version {version_id} of s3://{bucket}/{key} over the key",
                         Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": version_id},
                         MetadataDirective="COPY")
        return out.get("VersionId") or "?"
