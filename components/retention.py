"""The compliance tier of the database backups (planning document 001: 7 years, archived to Glacier):
a bucket RDS snapshot exports are written to, under COMPLIANCE Object Lock for the whole period, moved
to GLACIER and then DEEP_ARCHIVE by its lifecycle and expired at the end; and the role RDS assumes to
write an export there (docs/backups.md, "Retention tiers", says why this and not AWS Backup).

What an export needs (RDS User Guide, "Exporting DB snapshot data to Amazon S3 for Amazon RDS"; RDS
API Reference, StartExportTask): the bucket in the same region as the snapshot (one archive per
region: DR's copies are exported in DR); an IAM role that ``export.rds.amazonaws.com`` may assume,
allowed ``s3:PutObject*``, ``s3:GetObject*``, ``s3:ListBucket``, ``s3:DeleteObject*`` and
``s3:GetBucketLocation`` on the bucket and its objects; a KMS key for the exported data (this
region's key; the caller of StartExportTask needs ``kms:CreateGrant`` and ``kms:DescribeKey`` on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.common import assume_role_policy, child, policy_json, require
from components.storage import Bucket, BucketArgs

TYPE = "regionpair:retention:ComplianceArchive"
EXPORT_PRINCIPAL = "export.rds.amazonaws.com"
EXPORT_S3_ACTIONS = ["s3:PutObject*", "s3:GetObject*", "s3:ListBucket", "s3:DeleteObject", "s3:GetBucketLocation"]
"""StartExportTask, IamRoleArn: the actions the export role's policy must include. AWS lists
``s3:DeleteObject*``; that wildcard includes s3:DeleteObjectVersion, which the pack refuses in every
role (iam-runbook-least-privilege), so it is narrowed to s3:DeleteObject (a delete marker in this
versioned bucket; a locked version cannot be removed anyway). Not yet run against a real export."""
EXPORT_ROLE_TAG = ("regionpair:purpose", "rds-snapshot-export")
"""How the policy pack finds the export role (policy/retention.py)."""
MIN_COMPLIANCE_DAYS = 2555
"""Planning document 001: 7 years."""


@dataclass(frozen=True)
class ComplianceArchiveArgs:
    bucket_name: pulumi.Input[str]
    """The archive bucket's name (globally unique). Required."""
    region: str
    """The region of the bucket and of the snapshots exported into it. Required: scopes the key grant."""
    kms_key_arn: pulumi.Input[str]
    """This region's key: the bucket's default encryption and the exports'. Required."""
    account_id: pulumi.Input[str]
    """The AWS account id (the export role trusts RDS for this account only). Required."""
    retention_days: int = 2557
    """COMPLIANCE Object Lock of every object, and its expiry. Default: 2557 (7 years)."""
    glacier_after_days: int = 30
    """GLACIER transition. Default: 30 days (the first month stays queryable by Athena)."""
    deep_archive_after_days: int = 180
    """DEEP_ARCHIVE transition. Default: 180 days."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def export_role_policy(bucket_arn: str, key_arn: str, region: str) -> str:
    return policy_json([
        {"Sid": "WriteExports", "Effect": "Allow", "Action": EXPORT_S3_ACTIONS,
         "Resource": [bucket_arn, f"{bucket_arn}/*"]},
        {"Sid": "EncryptExportsThroughS3", "Effect": "Allow",
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": [key_arn],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ])


class ComplianceArchive(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]
    export_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ComplianceArchiveArgs, opts: pulumi.ResourceOptions | None = None):
        require(TYPE, "retention_days", args.retention_days, MIN_COMPLIANCE_DAYS <= args.retention_days <= 36500,
                "the compliance tier keeps 7 years (2555 days or more; planning document 001), and Object Lock "
                "takes at most 36500 days")
        require(TYPE, "region", args.region, bool(re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", args.region)),
                "an AWS region name such as us-west-2")
        super().__init__(TYPE, name, None, opts)
        tags = {**args.tags, "regionpair:retention-tier": "compliance"}
        archive = Bucket(f"{name}-bucket", BucketArgs(
            bucket_name=args.bucket_name, kms_key_arn=args.kms_key_arn, object_lock_days=args.retention_days,
            glacier_after_days=args.glacier_after_days, deep_archive_after_days=args.deep_archive_after_days,
            expire_after_days=args.retention_days, tags=tags), opts=child(self))
        role = aws.iam.Role(f"{name}-export", aws.iam.RoleArgs(
            description="RDS snapshot export into the compliance archive (StartExportTask)",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda acct: assume_role_policy(EXPORT_PRINCIPAL, acct)),
            tags={**tags, EXPORT_ROLE_TAG[0]: EXPORT_ROLE_TAG[1]}), opts=child(self))
        aws.iam.RolePolicy(f"{name}-export", aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(archive.arn, args.kms_key_arn).apply(
                lambda a: export_role_policy(a[0], a[1], args.region))), opts=child(self))
        self.bucket = archive.bucket
        self.arn = archive.arn
        self.export_role_arn = role.arn
        self.register_outputs({"bucket": self.bucket, "arn": self.arn, "export_role_arn": self.export_role_arn})
