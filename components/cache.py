"""Redis on ElastiCache with the backups the planning documents ask for (document 001: "Redis Cache
— RPO 1 hour, hourly snapshots; automatic 7 days, manual 30 days; copy for DR; restore to a new
cluster"), and the bucket its snapshots are exported to for DR.

What ElastiCache can and cannot do, and so what this component declares:

- Automatic backups are **daily**: one snapshot begins in the daily ``snapshot_window`` and is kept
  ``snapshot_retention_days`` (1 to 35; 0 turns automatic backups off) — Amazon ElastiCache User
  Guide, "Scheduling automatic backups"; API Reference, CreateReplicationGroup, SnapshotWindow
  ("the daily time range … during which ElastiCache begins taking a daily snapshot") and
  SnapshotRetentionLimit. There is no hourly setting: the hourly snapshots of document 001 are
  manual snapshots, ``python -m runbooks.cache_backup`` run every hour (a scheduler outside
  ElastiCache; docs/backups.md). Manual snapshots are kept until deleted: their 30 days are the
  export bucket's lifecycle here.
- Export: ``CopySnapshot`` with ``TargetBucket`` writes the .rdb into an S3 bucket that **must be in
  the snapshot's region** (ElastiCache User Guide, "Exporting a backup"; CopySnapshot API errors
  "The S3 bucket %s is outside of the region"). This component creates that bucket next to the
  cache, with the region's provider. ElastiCache writes through the bucket's ACL: the bucket grants
  ElastiCache's canonical user READ, WRITE and READ_ACP ("Exporting a backup", Step 2, "Grant
  ElastiCache access to your Amazon S3 bucket" — the search tool used for this project returned
  that page's introduction but not Step 2's text, so ``elasticache_canonical_id`` defaults to the
  ID published there for the standard regions as known to the author: verify it before use; opt-in
  regions use another mechanism). ACLs only take effect when the bucket's object ownership is not
  ``BucketOwnerEnforced`` (Amazon S3 User Guide, "Controlling ownership of objects and disabling
  ACLs for your bucket"), so this bucket is ``BucketOwnerPreferred``. The copy into the DR region is
  the runbook's (an export bucket cannot be in another region).
- Export is not supported for clusters using data tiering ("Exporting a backup") — node types
  ``cache.r6gd.*`` are refused while ``export`` is on.
- Manual snapshots are rate-limited: "during any contiguous 24-hour period, you can create no more
  than 20 manual backups per node in the cluster" (ElastiCache User Guide, "Snapshot and restore",
  Backup constraints). Hourly is 24 a day: more than one node allows, so an hourly schedule must
  spread its snapshots over at least two nodes (CreateSnapshot with ``CacheClusterId`` alternating
  between the group's nodes). ``manual_snapshots_per_day`` declares the schedule's rate and is
  refused above 20 × ``num_cache_clusters``; ``hourly_needs_alternation`` says when it must alternate.
  Backup and restore are not supported on ``cache.t1.micro`` nodes (same section): refused.
- The weekly maintenance window is at least 60 minutes (API Reference, ModifyReplicationGroup,
  PreferredMaintenanceWindow) and, here, must not overlap the daily snapshot window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import child, require

TYPE = "regionpair:cache:ReplicatedRedis"
ELASTICACHE_CANONICAL_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"
"""ElastiCache's canonical user for export grants in the standard regions (see the module docstring:
not confirmed by this project's document search)."""
DATA_TIERING = re.compile(r"^cache\.[a-z0-9]+gd\.")
"""Node types with data tiering (r6gd): their backups cannot be exported."""
_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINT = re.compile(r"^(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):([0-5]\d)-"
                    r"(sun|mon|tue|wed|thu|fri|sat):([01]\d|2[0-3]):([0-5]\d)$")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CANONICAL = re.compile(r"^[0-9a-f]{64}$")
MANUAL_PER_NODE_PER_DAY = 20
"""Manual backups ElastiCache allows per node in any contiguous 24 hours (node-based Redis OSS)."""


def hourly_needs_alternation(snapshots_per_day: int) -> bool:
    """More manual snapshots a day than one node may take: the scheduler must alternate nodes."""
    return snapshots_per_day > MANUAL_PER_NODE_PER_DAY


@dataclass(frozen=True)
class ReplicatedRedisArgs:
    replication_group_id: str
    """ElastiCache replication group id. Required: the runbooks address the cache by it."""
    node_type: str
    """Node type such as cache.r7g.large. Required: no size fits every workload."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets of the cache (a subnet group is made of them). Required."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups of the cache. Required."""
    kms_key_arn: pulumi.Input[str]
    """This region's customer key (data at rest, and the export bucket's default encryption). Required."""
    engine_version: str = "7.1"
    """Redis OSS version. Default: 7.1."""
    num_cache_clusters: int = 2
    """Primary plus replicas (at least 2: automatic failover needs a replica). Default: 2."""
    snapshot_retention_days: int = 7
    """Days an automatic (daily) snapshot is kept, 1 to 35. Default: 7 (document 001)."""
    snapshot_window: str = "04:00-05:00"
    """Daily UTC window in which the automatic snapshot begins. Default: 04:00-05:00 (document 001)."""
    maintenance_window: str = "sun:05:30-sun:06:30"
    """Weekly UTC maintenance window, at least 60 minutes, not overlapping the snapshot window.
    Default: sun:05:30-sun:06:30."""
    export: bool = True
    """Create the export bucket (same region) the runbooks export snapshots to for DR. Default: on."""
    export_bucket_name: str | None = None
    """Its name. Default: <replication_group_id>-cache-exports."""
    export_retention_days: int = 30
    """Exported (manual) snapshots expire after this many days. Default: 30 (document 001)."""
    elasticache_canonical_id: str = ELASTICACHE_CANONICAL_ID
    """The canonical user ElastiCache writes exports as. Default: the standard regions' (verify it)."""
    manual_snapshots_per_day: int = 0
    """How many manual snapshots the scheduler (runbooks.cache_backup) takes a day: 24 for document 001's
    hourly snapshots. At most 20 per node (see the module docstring). Default: 0 (no schedule declared)."""
    final_snapshot: bool = True
    """Take a final snapshot when the group is deleted. Default: on."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none."""


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


def _window_minutes(window: str) -> tuple[int, int]:
    m = _WINDOW.match(window)
    assert m
    s, e = _minutes(m.group(1), m.group(2)), _minutes(m.group(3), m.group(4))
    return s, e if e > s else e + 1440


def _maint_minutes(window: str) -> tuple[int, int]:
    m = _MAINT.match(window)
    assert m
    s = _DAYS.index(m.group(1)) * 1440 + _minutes(m.group(2), m.group(3))
    e = _DAYS.index(m.group(4)) * 1440 + _minutes(m.group(5), m.group(6))
    return s, e if e > s else e + 7 * 1440


def _overlap(snapshot: tuple[int, int], maint: tuple[int, int]) -> bool:
    week = 7 * 1440
    for day in range(-1, 8):
        s, e = day * 1440 + snapshot[0], day * 1440 + snapshot[1]
        for shift in (0, week, -week):
            if s < maint[1] + shift and maint[0] + shift < e:
                return True
    return False


def validate(args: ReplicatedRedisArgs) -> None:
    """Every rule names the document it comes from (module docstring)."""
    require(TYPE, "replication_group_id", args.replication_group_id, bool(_ID.match(args.replication_group_id))
            and "--" not in args.replication_group_id and not args.replication_group_id.endswith("-"),
            "1 to 40 lower-case letters, digits and single dashes, a letter first (ElastiCache naming constraints)")
    require(TYPE, "snapshot_retention_days", args.snapshot_retention_days,
            isinstance(args.snapshot_retention_days, int) and 1 <= args.snapshot_retention_days <= 35,
            "1 to 35 days: ElastiCache keeps automatic backups at most 35 days, and 0 turns them off (ElastiCache "
            "User Guide, 'Scheduling automatic backups')")
    require(TYPE, "snapshot_window", args.snapshot_window, bool(_WINDOW.match(args.snapshot_window)),
            "a daily UTC range hh24:mi-hh24:mi such as 04:00-05:00: ElastiCache takes ONE automatic snapshot a day, "
            "beginning in this window (API Reference, CreateReplicationGroup, SnapshotWindow); there is no hourly "
            "setting — schedule python -m runbooks.cache_backup hourly for hourly snapshots")
    require(TYPE, "maintenance_window", args.maintenance_window, bool(_MAINT.match(args.maintenance_window)),
            "ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. sun:05:30-sun:06:30")
    ms, me = _maint_minutes(args.maintenance_window)
    require(TYPE, "maintenance_window", args.maintenance_window, me - ms >= 60,
            "at least 60 minutes (API Reference, ModifyReplicationGroup, PreferredMaintenanceWindow)")
    require(TYPE, "maintenance_window", args.maintenance_window,
            not _overlap(_window_minutes(args.snapshot_window), (ms, me)),
            f"overlaps the daily snapshot window {args.snapshot_window}; move one of them")
    require(TYPE, "num_cache_clusters", args.num_cache_clusters, 2 <= args.num_cache_clusters <= 6,
            "2 to 6 (a primary and 1 to 5 replicas): automatic failover and Multi-AZ need a replica")
    require(TYPE, "node_type", args.node_type, not args.node_type.startswith("cache.t1."),
            "a node type other than cache.t1.*: backup and restore are not supported on cache.t1.micro nodes "
            "(ElastiCache User Guide, 'Snapshot and restore', Backup constraints)")
    require(TYPE, "manual_snapshots_per_day", args.manual_snapshots_per_day,
            isinstance(args.manual_snapshots_per_day, int)
            and 0 <= args.manual_snapshots_per_day <= MANUAL_PER_NODE_PER_DAY * args.num_cache_clusters,
            f"0 to {MANUAL_PER_NODE_PER_DAY} per node ({MANUAL_PER_NODE_PER_DAY * args.num_cache_clusters} for "
            f"{args.num_cache_clusters} nodes): ElastiCache allows no more than {MANUAL_PER_NODE_PER_DAY} manual backups "
            "per node in any 24 hours (ElastiCache User Guide, 'Snapshot and restore', Backup constraints); hourly "
            "snapshots (24) need at least two nodes and alternate between them")
    if args.export:
        require(TYPE, "node_type", args.node_type, not DATA_TIERING.match(args.node_type),
                "a node type without data tiering: backups of data-tiering clusters cannot be exported to S3 "
                "(ElastiCache User Guide, 'Exporting a backup'); or set export=False")
        require(TYPE, "elasticache_canonical_id", args.elasticache_canonical_id,
                bool(_CANONICAL.match(args.elasticache_canonical_id)), "a 64-character hex S3 canonical user id")
        require(TYPE, "export_retention_days", args.export_retention_days, 1 <= args.export_retention_days <= 36500,
                "1 to 36500 days")


class ReplicatedRedis(pulumi.ComponentResource):
    """One Redis replication group with daily automatic snapshots, and its same-region export bucket."""

    replication_group_id: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    export_bucket: pulumi.Output[str] | None

    def __init__(self, name: str, args: ReplicatedRedisArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__(TYPE, name, None, opts)
        tags = {**args.tags, "regionpair:cache": name}
        subnets = aws.elasticache.SubnetGroup(f"{name}-subnets", aws.elasticache.SubnetGroupArgs(
            name=f"{args.replication_group_id}-subnets", description=f"{args.replication_group_id}: private subnets",
            subnet_ids=args.subnet_ids, tags=tags), opts=child(self))
        group = aws.elasticache.ReplicationGroup(f"{name}-group", aws.elasticache.ReplicationGroupArgs(
            replication_group_id=args.replication_group_id,
            description=f"{args.replication_group_id}: Redis with daily snapshots",
            engine="redis", engine_version=args.engine_version, node_type=args.node_type,
            num_cache_clusters=args.num_cache_clusters, automatic_failover_enabled=True, multi_az_enabled=True,
            subnet_group_name=subnets.name, security_group_ids=args.security_group_ids,
            at_rest_encryption_enabled=True, kms_key_id=args.kms_key_arn, transit_encryption_enabled=True,
            snapshot_retention_limit=args.snapshot_retention_days, snapshot_window=args.snapshot_window,
            maintenance_window=args.maintenance_window, auto_minor_version_upgrade=True,
            final_snapshot_identifier=f"{args.replication_group_id}-final" if args.final_snapshot else None,
            tags=tags), opts=child(self))
        self.replication_group_id = group.replication_group_id
        self.primary_endpoint = group.primary_endpoint_address
        self.export_bucket = None
        if args.export:
            self.export_bucket = self._export_bucket(name, args, tags)
        self.register_outputs({"replication_group_id": self.replication_group_id,
                               "primary_endpoint": self.primary_endpoint, "export_bucket": self.export_bucket})

    def _export_bucket(self, name: str, args: ReplicatedRedisArgs, tags: dict) -> pulumi.Output[str]:
        bucket = aws.s3.Bucket(f"{name}-exports", aws.s3.BucketArgs(
            bucket=args.export_bucket_name or f"{args.replication_group_id}-cache-exports", tags=tags),
            opts=child(self))
        aws.s3.BucketVersioning(f"{name}-exports-versioning", aws.s3.BucketVersioningInitArgs(
            bucket=bucket.id, versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled")), opts=child(self))
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-exports-sse", aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
                bucket=bucket.id, rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.
                    BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
                    bucket_key_enabled=True)]), opts=child(self))
        # a canonical-user grant is not public: block_public_acls refuses only AllUsers/AuthenticatedUsers grants
        aws.s3.BucketPublicAccessBlock(f"{name}-exports-public-access", aws.s3.BucketPublicAccessBlockArgs(
            bucket=bucket.id, block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
            restrict_public_buckets=True), opts=child(self))
        ownership = aws.s3.BucketOwnershipControls(f"{name}-exports-ownership", aws.s3.BucketOwnershipControlsArgs(
            bucket=bucket.id, rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerPreferred")),
            opts=child(self))
        owner = aws.s3.get_canonical_user_id_output(opts=pulumi.InvokeOutputOptions(parent=self))
        grantee = aws.s3.BucketAclAccessControlPolicyGrantGranteeArgs(type="CanonicalUser",
                                                                      id=args.elasticache_canonical_id)
        aws.s3.BucketAcl(f"{name}-exports-acl", aws.s3.BucketAclArgs(
            bucket=bucket.id, access_control_policy=aws.s3.BucketAclAccessControlPolicyArgs(
                owner=aws.s3.BucketAclAccessControlPolicyOwnerArgs(id=owner.id),
                grants=[aws.s3.BucketAclAccessControlPolicyGrantArgs(
                    grantee=aws.s3.BucketAclAccessControlPolicyGrantGranteeArgs(type="CanonicalUser", id=owner.id),
                    permission="FULL_CONTROL")] + [
                    aws.s3.BucketAclAccessControlPolicyGrantArgs(grantee=grantee, permission=p)
                    for p in ("READ", "WRITE", "READ_ACP")])),
            opts=child(self, depends_on=[ownership]))
        aws.s3.BucketLifecycleConfiguration(f"{name}-exports-lifecycle", aws.s3.BucketLifecycleConfigurationArgs(
            bucket=bucket.id, rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="manual-snapshots", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.export_retention_days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1))]), opts=child(self))
        return bucket.bucket
