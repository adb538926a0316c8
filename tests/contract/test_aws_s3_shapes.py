"""The stacks' S3 shapes, as rendered, applied to moto's S3 with boto3: the buckets (Object Lock
at creation for the backups bucket), versioning, SSE-KMS with a bucket key, the lifecycle, the
COMPLIANCE default retention and the replication configuration the dr stack puts on prod's bucket.
moto's own validation sees them as the stacks declare them (the inputs of the mocked render,
renamed to the S3 API's names), and refuses what S3 documents as refused where moto models it.
What moto does not model (KMS key policies, RTC behaviour, the lifecycle's day gaps) is the
policy pack's (docs/stacks.md#aws-rules-s3)."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests import harness

S3_TYPES = {
    "bucket": "aws:s3/bucket:Bucket",
    "versioning": "aws:s3/bucketVersioning:BucketVersioning",
    "sse": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "lifecycle": "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "lock": "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    "replication": "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
}
# the S3 API spells these differently from the provider's camelCase
_API_NAMES = {"id": "ID", "replicaKmsKeyId": "ReplicaKmsKeyID", "sseAlgorithm": "SSEAlgorithm",
              "kmsMasterKeyId": "KMSMasterKeyID"}


def api(value: Any) -> Any:
    """Provider inputs (camelCase) as the S3 API's shapes (PascalCase)."""
    if isinstance(value, dict):
        return {_API_NAMES.get(k, k[:1].upper() + k[1:]): api(v) for k, v in value.items()}
    if isinstance(value, list):
        return [api(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine passes numbers as floats; the S3 API takes integers
    return value


def region_of(node: dict) -> str:
    provider = node.get("provider") or ""
    return provider[len("aws-"):] if provider.startswith("aws-") else "us-east-1"


def nodes(stack: str, kind: str) -> list[dict]:
    return [n for n in harness.render_stack(stack) if n["type"] == S3_TYPES[kind]]


@pytest.fixture
def s3(moto_server, aws_env):
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    import boto3
    session = boto3.session.Session()
    return lambda region: session.client("s3", region_name=region)


def create_buckets(s3, stack: str) -> dict[str, str]:
    """The stack's buckets as its Bucket resources declare them; bucket name → region."""
    made = {}
    for b in nodes(stack, "bucket"):
        region, name = region_of(b), b["inputs"]["bucket"]
        kwargs: dict[str, Any] = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        if b["inputs"].get("objectLockEnabled"):
            kwargs["ObjectLockEnabledForBucket"] = True
        s3(region).create_bucket(Bucket=name, **kwargs)
        made[name] = region
    return made


def apply_bucket_configuration(s3, stack: str, regions: dict[str, str]) -> None:
    for v in nodes(stack, "versioning"):
        s3(regions[v["inputs"]["bucket"]]).put_bucket_versioning(
            Bucket=v["inputs"]["bucket"], VersioningConfiguration=api(v["inputs"]["versioningConfiguration"]))
    for e in nodes(stack, "sse"):
        s3(regions[e["inputs"]["bucket"]]).put_bucket_encryption(
            Bucket=e["inputs"]["bucket"], ServerSideEncryptionConfiguration={"Rules": api(e["inputs"]["rules"])})
    for lc in nodes(stack, "lifecycle"):
        s3(regions[lc["inputs"]["bucket"]]).put_bucket_lifecycle_configuration(
            Bucket=lc["inputs"]["bucket"], LifecycleConfiguration={"Rules": api(lc["inputs"]["rules"])})
    for lk in nodes(stack, "lock"):
        config = {k: v for k, v in lk["inputs"].items() if k in ("objectLockEnabled", "rule")}
        s3(regions[lk["inputs"]["bucket"]]).put_object_lock_configuration(
            Bucket=lk["inputs"]["bucket"], ObjectLockConfiguration=api(config))


def test_the_stacks_s3_shapes_are_accepted_by_moto_and_read_back_as_declared(s3):
    regions = {**create_buckets(s3, "prod"), **create_buckets(s3, "dr")}
    for stack in ("prod", "dr"):
        apply_bucket_configuration(s3, stack, regions)
    [replication] = nodes("dr", "replication")
    source = replication["inputs"]["bucket"]
    assert regions[source] == region_of(replication) != regions[replication["inputs"]["rules"][0]["destination"][
        "bucket"].rsplit(":", 1)[-1]], "the configuration lives on prod's bucket, in prod's region"
    s3(regions[source]).put_bucket_replication(Bucket=source, ReplicationConfiguration={
        "Role": replication["inputs"]["role"], "Rules": api(replication["inputs"]["rules"])})

    # read back: what S3 (moto) keeps is what the stacks declared
    locks = {n["name"]: n for n in nodes("prod", "lock")}
    assert set(locks) == {"backups-object-lock", "compliance-bucket-object-lock"}
    for name, days in (("backups-object-lock", 30), ("compliance-bucket-object-lock", 2557)):
        bucket = locks[name]["inputs"]["bucket"]
        lock = s3(regions[bucket]).get_object_lock_configuration(Bucket=bucket)
        retention = lock["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
        assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", days), name  # moto also echoes "Years": 0
    rule = s3(regions[source]).get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"][0]
    assert rule["Destination"]["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
    assert rule["Destination"]["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    assert rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"].startswith("arn:aws:kms:us-west-2:")
    assert rule["Priority"] == 1 and rule["Filter"] == {"Prefix": ""}
    # moto keeps neither SourceSelectionCriteria nor the DeleteMarkerReplication status it is sent (it
    # answers Disabled): those two are proven by the pack's rules only (s3-sse-kms, s3-replication-rule-shape)
    assert "SourceSelectionCriteria" not in rule
    data = next(n for n in nodes("prod", "lifecycle") if "data" in n["name"])["inputs"]["bucket"]
    life = s3(regions[data]).get_bucket_lifecycle_configuration(Bucket=data)["Rules"][0]
    assert [(t["Days"], t["StorageClass"]) for t in life["Transitions"]] == [(90, "GLACIER"), (730, "DEEP_ARCHIVE")]


def test_moto_refuses_the_forms_aws_documents_as_refused(s3):
    """The same shapes, each broken the way the pack refuses: moto refuses them too."""
    regions = create_buckets(s3, "prod")
    data = next(n for n in nodes("prod", "bucket") if "data" in n["name"])["inputs"]["bucket"]
    lock = next(n for n in nodes("prod", "lock") if n["name"] == "backups-object-lock")
    config = api({k: v for k, v in lock["inputs"].items() if k in ("objectLockEnabled", "rule")})
    # Object Lock on a bucket created without it and not versioned (S3 User Guide, Object Lock)
    with pytest.raises(ClientError) as refused:
        s3(regions[data]).put_object_lock_configuration(Bucket=data, ObjectLockConfiguration=config)
    assert refused.value.response["Error"]["Code"] == "InvalidBucketState"
    assert "Versioning must be 'Enabled'" in refused.value.response["Error"]["Message"]
    # replication from an unversioned bucket (S3 User Guide, "Requirements for replication")
    [replication] = nodes("dr", "replication")
    with pytest.raises(ClientError) as refused:
        s3(regions[data]).put_bucket_replication(Bucket=data, ReplicationConfiguration={
            "Role": replication["inputs"]["role"], "Rules": api(replication["inputs"]["rules"])})
    assert refused.value.response["Error"]["Code"] == "InvalidRequest"
    assert "Versioning must be 'Enabled'" in refused.value.response["Error"]["Message"]
    # moto (as installed) accepts, and only the pack refuses: suspending a locked bucket's versioning
    # (s3-object-lock-bucket-consistent) and the lifecycle's day gaps (s3-lifecycle-transitions-valid)
