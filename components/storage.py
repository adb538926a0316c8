"""S3: a versioned, KMS-encrypted, private bucket per region; its cross-region replication; and
a backups bucket under object lock.

`Bucket` carries every protection a data bucket needs on its own (versioning, SSE-KMS with a
bucket key, public access blocked, owner-enforced ownership, a TLS-only policy, a lifecycle).
`BucketReplication` is the dr stack's link: the replication configuration lives ON THE PRIMARY
BUCKET, so it is created with the primary region's provider, which the caller passes in.
`BatchReplicationRole` is the role an S3 Batch Replication job runs as when a failback copies the
DR bucket's existing versions home (replication copies only versions written after its rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.aws_limits import (
    BUCKET_NAME,
    MAX_LIFECYCLE_RULES,
    RESERVED_BUCKET_PREFIXES,
    RESERVED_BUCKET_SUFFIXES,
    bucket_name_reserved,
)
from components.common import assume_role_policy, child, partition_of, policy_json, require
from contract.outputs import KEY_PREFIX

BUCKET_TYPE = "regionpair:storage:Bucket"
REPLICATION_TYPE = "regionpair:storage:BucketReplication"
BATCH_REPLICATION_TYPE = "regionpair:storage:BatchReplicationRole"
BATCH_OPERATIONS_PRINCIPAL = "batchoperations.s3.amazonaws.com"
DEFAULT_BATCH_REPORT_PREFIX = "regionpair/batch-replication"
WRITER_PARAMETER_TYPE = "regionpair:storage:WriterParameter"
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

REPLICATION_RULE_ID = "primary-to-dr"
"""The replication rule's id: the `RuleId` dimension of its S3 Replication metrics (alarms)."""


@dataclass(frozen=True)
class BucketArgs:
    bucket_name: pulumi.Input[str]
    """Physical bucket name (globally unique). Required: the runbooks and the replication address it by name."""
    kms_key_arn: pulumi.Input[str]
    """This region's customer key (SSE-KMS with a bucket key). Required."""
    noncurrent_expiry_days: int = 30
    """Delete noncurrent versions after this many days. Default: 30 (the undelete window)."""
    glacier_after_days: int = 90
    """Move current objects to GLACIER after this many days. Default: 90."""
    deep_archive_after_days: int = 730
    """Move current objects to DEEP_ARCHIVE after this many days. Default: 730."""
    abort_incomplete_upload_days: int = 7
    """Abort multipart uploads left incomplete this long. Default: 7 days."""
    object_lock_days: int | None = None
    """Object lock in COMPLIANCE mode with this default retention. Default: no object lock."""
    expire_after_days: int | None = None
    """Expire current objects this many days after creation (a delete marker; the version then goes
    with noncurrent_expiry_days, never before its Object Lock ends). Default: never."""
    force_destroy: bool = False
    """Empty the bucket when it is destroyed. Default: off (only drill stacks turn it on)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""
    expiry_rules: tuple[tuple[str, str, int], ...] = ()
    """Extra lifecycle rules (id, key prefix, days): current objects under the prefix expire after the
    days, their noncurrent versions a day later. Default: none (components/kafka_backup.py's per topic class)."""


def _check_name(name: str) -> str:
    """S3 User Guide, "General purpose bucket naming rules"."""
    require(BUCKET_TYPE, "bucket_name", name, bool(BUCKET_NAME.match(name)) and ".." not in name,
            "3-63 lowercase letters, digits, dots and dashes, starting and ending with a letter or digit")
    require(BUCKET_TYPE, "bucket_name", name, not _IPV4.match(name), "S3 refuses names formatted as an IP address")
    reserved = bucket_name_reserved(name)
    require(BUCKET_TYPE, "bucket_name", name, reserved is None,
            f"S3 reserves {reserved!r} (names starting with {', '.join(RESERVED_BUCKET_PREFIXES)} or ending with "
            f"{', '.join(RESERVED_BUCKET_SUFFIXES)})")
    return name


def tls_only_policy(bucket_arn: str) -> str:
    return policy_json([{
        "Sid": "DenyRequestsWithoutTLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }])


class Bucket(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning

    def __init__(self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None):
        if isinstance(args.bucket_name, str):
            _check_name(args.bucket_name)
        require(BUCKET_TYPE, "deep_archive_after_days", args.deep_archive_after_days,
                args.deep_archive_after_days >= args.glacier_after_days + 90,
                "DEEP_ARCHIVE must come at least 90 days after GLACIER (S3's minimum storage duration)")
        require(BUCKET_TYPE, "noncurrent_expiry_days", args.noncurrent_expiry_days, args.noncurrent_expiry_days >= 1,
                "at least 1 day")
        if args.expire_after_days is not None:
            require(BUCKET_TYPE, "expire_after_days", args.expire_after_days,
                    args.expire_after_days > args.deep_archive_after_days,
                    "after the last transition (DEEP_ARCHIVE): S3 expires an object only after it moved")
            require(BUCKET_TYPE, "expire_after_days", args.expire_after_days,
                    args.object_lock_days is None or args.expire_after_days >= args.object_lock_days,
                    "at least object_lock_days: a locked version cannot be deleted before its retention ends")
        if args.object_lock_days is not None:
            require(BUCKET_TYPE, "object_lock_days", args.object_lock_days, 1 <= args.object_lock_days <= 36500,
                    "1 to 36500 days")
            # force_destroy empties the bucket before deleting it, and no one may delete a version under
            # COMPLIANCE retention: the destroy would fail half-way (S3 User Guide, Object Lock)
            require(BUCKET_TYPE, "force_destroy", args.force_destroy, not args.force_destroy,
                    "a bucket under COMPLIANCE Object Lock cannot be emptied by a destroy: set object_lock_days=None "
                    "for a bucket a drill destroys, or force_destroy=False")
        require(BUCKET_TYPE, "expiry_rules", len(args.expiry_rules), len(args.expiry_rules) + 1 <= MAX_LIFECYCLE_RULES,
                f"a bucket's lifecycle configuration holds at most {MAX_LIFECYCLE_RULES} rules (S3 API Reference, "
                "'LifecycleConfiguration'), this bucket's own archive rule included")
        for rule_id, prefix, days in args.expiry_rules:
            require(BUCKET_TYPE, "expiry_rules", (rule_id, prefix, days), bool(prefix) and days >= 1 and 0 < len(rule_id) <= 255,
                    "each rule needs a non-empty prefix, at least 1 day, and an id of 1-255 characters")
        super().__init__(BUCKET_TYPE, name, None, opts)
        tags = dict(args.tags)
        locked = args.object_lock_days is not None

        bucket = aws.s3.Bucket(f"{name}-bucket", aws.s3.BucketArgs(
            bucket=args.bucket_name if isinstance(args.bucket_name, str)
            else pulumi.Output.from_input(args.bucket_name).apply(_check_name), object_lock_enabled=locked or None, force_destroy=args.force_destroy, tags=tags),
            opts=child(self))
        self.versioning = aws.s3.BucketVersioning(f"{name}-versioning", aws.s3.BucketVersioningInitArgs(
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled")),
            opts=child(self))
        aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-sse", aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
            bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
                bucket_key_enabled=True)]), opts=child(self))
        block = aws.s3.BucketPublicAccessBlock(f"{name}-public-access", aws.s3.BucketPublicAccessBlockArgs(
            bucket=bucket.id, block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
            restrict_public_buckets=True), opts=child(self))
        aws.s3.BucketOwnershipControls(f"{name}-ownership", aws.s3.BucketOwnershipControlsArgs(
            bucket=bucket.id, rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced")),
            opts=child(self))
        aws.s3.BucketPolicy(f"{name}-tls-only", aws.s3.BucketPolicyArgs(
            bucket=bucket.id, policy=bucket.arn.apply(tls_only_policy)), opts=child(self, depends_on=[block]))
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", aws.s3.BucketLifecycleConfigurationArgs(
            bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="archive-and-expire-noncurrent",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=args.glacier_after_days, storage_class="GLACIER"),
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=args.deep_archive_after_days,
                                                                          storage_class="DEEP_ARCHIVE"),
                ],
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_expiry_days),
                expiration=None if args.expire_after_days is None else
                aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.expire_after_days),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=args.abort_incomplete_upload_days),
            )] + [aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=rule_id, status="Enabled", filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1)) for rule_id, prefix, days in args.expiry_rules]),
            opts=child(self, depends_on=[self.versioning]))
        if locked:
            aws.s3.BucketObjectLockConfiguration(f"{name}-object-lock", aws.s3.BucketObjectLockConfigurationInitArgs(
                bucket=bucket.id, object_lock_enabled="Enabled",
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode="COMPLIANCE", days=args.object_lock_days))), opts=child(self, depends_on=[self.versioning]))

        self.bucket = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"bucket": self.bucket, "arn": self.arn})


@dataclass(frozen=True)
class BucketReplicationArgs:
    source_provider: pulumi.ProviderResource
    """Provider of the primary bucket's region. Required: the configuration lives on the primary bucket."""
    source_region: str
    """The primary bucket's region. Required: scopes the key permissions."""
    destination_region: str
    """The replica bucket's region. Required: scopes the key permissions."""
    source_bucket: pulumi.Input[str]
    """Name of the primary (versioned) bucket. Required."""
    source_bucket_arn: pulumi.Input[str]
    """ARN of the primary bucket. Required."""
    source_kms_key_arn: pulumi.Input[str]
    """Key the primary's objects are encrypted with (replication decrypts with it). Required."""
    destination_bucket_arn: pulumi.Input[str]
    """ARN of the DR (versioned) bucket. Required."""
    destination_kms_key_arn: pulumi.Input[str]
    """The DR key replicas are encrypted with. Required."""
    account_id: pulumi.Input[str]
    """The AWS account id (scopes the role's trust). Required."""
    replication_time_minutes: int = 15
    """Replication Time Control target, also the metrics threshold. Default: 15 (the only value S3 offers)."""
    enabled: bool = True
    """Declare the rule enabled. ``False`` after a failover: the runbook disabled it, and a later
    ``pulumi up`` must not copy the old primary's bucket into the one writers now use. Default: on."""
    keep_live_rules: bool = False
    """Never change the live rules (``ignore_changes``): after a failover the configuration lives in the
    region that may be down and the runbook owns its status. Default: off."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def _one_way(tag: str, source_arn: str, dest_arn: str, source_key: str, dest_key: str,
             source_region: str, dest_region: str) -> list[dict]:
    """What S3 needs to replicate source → destination with this role: read the configuration and
    the versions of the source, decrypt them with the source key (through S3 of that region, for
    that bucket only), write and encrypt replicas into the destination."""
    return [
        {"Sid": f"ReadReplicationConfiguration{tag}", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": [source_arn]},
        {"Sid": f"ReadSourceVersions{tag}", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
         "Resource": [f"{source_arn}/*"]},
        {"Sid": f"WriteReplicas{tag}", "Effect": "Allow",
         "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"], "Resource": [f"{dest_arn}/*"]},
        {"Sid": f"DecryptSourceObjects{tag}", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [source_key],
         "Condition": {"StringLike": {"kms:ViaService": f"s3.{source_region}.amazonaws.com",
                                      "kms:EncryptionContext:aws:s3:arn": [f"{source_arn}/*", source_arn]}}},
        {"Sid": f"EncryptReplicas{tag}", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
         "Resource": [dest_key],
         "Condition": {"StringLike": {"kms:ViaService": f"s3.{dest_region}.amazonaws.com",
                                      "kms:EncryptionContext:aws:s3:arn": [f"{dest_arn}/*", dest_arn]}}},
    ]


def replication_policy(source_arn: str, dest_arn: str, source_key: str, dest_key: str,
                       source_region: str, dest_region: str) -> str:
    """Primary → DR (the configuration the stacks declare), and DR → primary: the failback puts a
    reverse configuration on the DR bucket with this same role (runbooks/adapters/aws/s3_replication.py),
    which replicates nothing unless the role may read and decrypt DR and write and encrypt into the
    primary. Each direction is granted on exactly its two buckets and two keys.

    With an S3 Bucket Key on the destination, S3 also calls kms:Decrypt with the REPLICA key, in the
    destination bucket's context (S3 User Guide, "Amazon S3 Bucket Keys and replication"): the other
    direction's DecryptSourceObjects statement grants exactly that, so the pair is complete (the
    pack's s3-replication-role-kms-permissions refuses a role that encrypts with a key it may not decrypt
    into a bucket-key destination)."""
    return policy_json(_one_way("", source_arn, dest_arn, source_key, dest_key, source_region, dest_region)
                       + _one_way("Reverse", dest_arn, source_arn, dest_key, source_key, dest_region, source_region))


class BucketReplication(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: BucketReplicationArgs, opts: pulumi.ResourceOptions | None = None):
        require(REPLICATION_TYPE, "source_provider", args.source_provider,
                isinstance(args.source_provider, pulumi.ProviderResource),
                "pass the aws.Provider of the primary bucket's region")
        require(REPLICATION_TYPE, "destination_region", args.destination_region,
                args.destination_region != args.source_region, "replicate to another region than the source")
        require(REPLICATION_TYPE, "replication_time_minutes", args.replication_time_minutes,
                args.replication_time_minutes == 15, "S3 Replication Time Control offers 15 minutes only")
        require(REPLICATION_TYPE, "source_region", args.source_region,
                partition_of(args.source_region) == partition_of(args.destination_region),
                "both regions must be in one partition")
        super().__init__(REPLICATION_TYPE, name, None, opts)
        tags = dict(args.tags)

        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            description="S3 replication primary to DR, and DR to primary when a failback reverses it",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda acct: assume_role_policy("s3.amazonaws.com", acct)), tags=tags), opts=child(self))
        policy = aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(args.source_bucket_arn, args.destination_bucket_arn, args.source_kms_key_arn,
                                     args.destination_kms_key_arn).apply(
                lambda a: replication_policy(a[0], a[1], a[2], a[3], args.source_region, args.destination_region))),
            opts=child(self))
        minutes = args.replication_time_minutes
        aws.s3.BucketReplicationConfig(f"{name}-config", aws.s3.BucketReplicationConfigArgs(
            bucket=args.source_bucket,
            role=role.arn,
            rules=[aws.s3.BucketReplicationConfigRuleArgs(
                id=REPLICATION_RULE_ID,
                status="Enabled" if args.enabled else "Disabled",
                priority=1,
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(status="Enabled"),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled"),
                    replica_modifications=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaReplicaModificationsArgs(
                        status="Enabled")),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=args.destination_bucket_arn,
                    storage_class="STANDARD",
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=args.destination_kms_key_arn),
                    replication_time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                        status="Enabled",
                        time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(minutes=minutes)),
                    metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                        status="Enabled",
                        event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                            minutes=minutes)),
                ),
            )]), opts=child(self, provider=args.source_provider, depends_on=[policy],
                            ignore_changes=["rules"] if args.keep_live_rules else None))

        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn})


@dataclass(frozen=True)
class BatchReplicationRoleArgs:
    region: str
    """The region of the source bucket, the report bucket and the key (one region). Required: scopes the key."""
    source_bucket_arn: pulumi.Input[str]
    """ARN of the bucket whose existing versions the job replicates (DR's data bucket). Required."""
    report_bucket_arn: pulumi.Input[str]
    """ARN of the bucket the job writes its generated manifest and its completion report to (a bucket
    the stack already has in the same region, the backups bucket: never the replicated bucket,
    whose rule would copy the reports too). Required."""
    report_kms_key_arn: pulumi.Input[str]
    """The key the report bucket encrypts with by default (the job writes and reads back through it). Required."""
    report_prefix: str = DEFAULT_BATCH_REPORT_PREFIX
    """Key prefix of the manifests and reports; the role may write nowhere else in the bucket.
    Default: ``regionpair/batch-replication``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def batch_replication_policy(source_arn: str, report_arn: str, prefix: str, key_arn: str, region: str) -> str:
    """What an S3 Batch Operations job with operation ``S3ReplicateObject`` and a manifest generated
    from ``source_arn`` (stored under ``prefix``) needs, on nothing else: start replication of the
    source's versions (the copy itself runs as the bucket's replication role), read its replication
    configuration and generate the manifest from it (an inventory configuration), write the manifest
    and the completion report under the prefix and read the manifest back, through the report
    bucket's key, for that bucket only."""
    objects = f"{report_arn}/{prefix}/*"
    return policy_json([
        {"Sid": "InitiateReplicationOfSourceVersions", "Effect": "Allow", "Action": ["s3:InitiateReplication"],
         "Resource": [f"{source_arn}/*"]},
        {"Sid": "GenerateManifestFromReplicationConfiguration", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"], "Resource": [source_arn]},
        {"Sid": "ReadGeneratedManifest", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": [objects]},
        {"Sid": "WriteManifestAndReport", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [objects]},
        {"Sid": "EncryptManifestAndReport", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": [key_arn],
         "Condition": {"StringLike": {"kms:ViaService": f"s3.{region}.amazonaws.com",
                                      "kms:EncryptionContext:aws:s3:arn": [objects, report_arn]}}},
    ])


class BatchReplicationRole(pulumi.ComponentResource):
    """The role an S3 Batch Replication job of one bucket runs as (the failback's runbook creates
    the job and passes this role; runbooks/adapters/aws/s3_replication.py).

    Its trust names the Batch Operations service principal with no condition: AWS documents that
    trust policy without ``aws:SourceAccount``/``aws:SourceArn``, and a condition the service does
    not set would leave the role unusable. What the role may do is the limit: one bucket's
    replication, one prefix of one report bucket, one key."""

    role_arn: pulumi.Output[str]
    report_prefix: str

    def __init__(self, name: str, args: BatchReplicationRoleArgs, opts: pulumi.ResourceOptions | None = None):
        require(BATCH_REPLICATION_TYPE, "report_prefix", args.report_prefix,
                bool(KEY_PREFIX.match(args.report_prefix)),
                "a key prefix such as regionpair/batch-replication: no leading or trailing '/', no wildcard")
        require(BATCH_REPLICATION_TYPE, "region", args.region, bool(re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", args.region)),
                "an AWS region name such as us-west-2")
        for arg in ("source_bucket_arn", "report_bucket_arn"):
            value = getattr(args, arg)
            if isinstance(value, str):
                require(BATCH_REPLICATION_TYPE, arg, value, value.startswith("arn:") and ":s3:::" in value
                        and "/" not in value, "a bucket ARN (arn:aws:s3:::name)")
        if isinstance(args.source_bucket_arn, str) and isinstance(args.report_bucket_arn, str):
            require(BATCH_REPLICATION_TYPE, "report_bucket_arn", args.report_bucket_arn,
                    args.report_bucket_arn != args.source_bucket_arn,
                    "a bucket other than the replicated one: its replication rule would copy the reports too")
        super().__init__(BATCH_REPLICATION_TYPE, name, None, opts)
        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            description="S3 Batch Replication of the DR data bucket's existing versions (failback)",
            assume_role_policy=assume_role_policy(BATCH_OPERATIONS_PRINCIPAL), tags=dict(args.tags)),
            opts=child(self))
        aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(
            role=role.id,
            policy=pulumi.Output.all(args.source_bucket_arn, args.report_bucket_arn, args.report_kms_key_arn).apply(
                lambda a: batch_replication_policy(a[0], a[1], args.report_prefix, a[2], args.region))),
            opts=child(self))
        self.role_arn = role.arn
        self.report_prefix = args.report_prefix
        self.register_outputs({"role_arn": self.role_arn})


@dataclass(frozen=True)
class WriterParameterArgs:
    parameter_name: str
    """SSM parameter name, the same in both regions (e.g. /regionpair/s3/writer-bucket). Required."""
    initial_bucket: pulumi.Input[str]
    """The bucket writers start on: the primary's data bucket. Required (it is only the first value)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


class WriterParameter(pulumi.ComponentResource):
    """The SSM parameter that names the bucket writers write to now.

    The failover, switchover and failback runbooks move it (`point_writers`); Pulumi only creates
    it. `ignore_changes` on the value: a `pulumi up` after a cutover must never point writers back
    at the bucket of a region that was failed away from."""

    name: str

    def __init__(self, name: str, args: WriterParameterArgs, opts: pulumi.ResourceOptions | None = None):
        require(WRITER_PARAMETER_TYPE, "parameter_name", args.parameter_name,
                bool(re.match(r"^/[a-zA-Z0-9_./-]{1,1000}$", args.parameter_name)), "an SSM path such as /app/s3/writer-bucket")
        super().__init__(WRITER_PARAMETER_TYPE, name, None, opts)
        aws.ssm.Parameter(f"{name}-parameter", aws.ssm.ParameterArgs(
            name=args.parameter_name, type="String", value=args.initial_bucket,
            description="S3 bucket writers write to now (failover runbooks move it; pulumi up does not)",
            tags=dict(args.tags)), opts=child(self, ignore_changes=["value"]))
        self.name = args.parameter_name
        self.register_outputs({"name": self.name})
