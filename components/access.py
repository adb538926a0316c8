"""The IAM role the runbooks assume: only the actions they call, on only these stacks' resources.

The actions are listed once (`RUNBOOK_ACTIONS`); the runbook code is expected to stay within
them, and a test in the runbooks' suite can compare. No statement has a `*` action; every
resource is an ARN of these stacks, except actions AWS does not scope to resources: the reads
`cloudwatch:GetMetricData`, `ec2:DescribeSecurityGroups`, `route53:ListHostedZonesByName` and
`s3:ListJobs`; `cloudwatch:PutMetricData`, limited by condition to the backup runbooks'
namespace; and `s3:CreateJob` (only where the stacks declare an S3 Batch Replication role),
limited by condition to the `S3ReplicateObject` operation, and usable only with the one role the
runbooks may pass to S3 Batch Operations, which may replicate one bucket.

Deletions are narrower than the rest: the runbooks delete only `verify-<database>-…` instances
that carry `regionpair:temporary=true` (verify_backup's own), and only snapshots that carry
`regionpair:managed-by=snapshot-runbook` (the snapshot runbook's own); the stacks' databases and
any hand-made snapshot are out of reach even for a runbook with a bug in it. No object version is
ever deleted (no `s3:DeleteObjectVersion`; undelete copies versions back), and `s3:DeleteObject`
reaches only the run lock's objects.

What IAM cannot narrow further, and why (IAM service authorization reference for RDS, and the
RDS User Guide, "Specifying conditions: Using custom tags"): `rds:ModifyDBInstance` has no
condition key on the request's parameters (DeletionProtection, BackupRetentionPeriod), so a
runbook allowed to rename an instance could also change those on it. It is allowed only on the
exact database identifiers the failback's rebuild renames aside (`RegionScope.rebuild_identifiers`), not on
the name prefix; restored, verify and `-old-` instances, and other stacks' databases, are out of
reach, and DeleteDBInstance stays limited to verify_backup's temporary instances.
`kms:CreateGrant` is allowed only when an AWS service asks on the runbook's behalf
(`kms:GrantIsForAWSResource`, KMS Developer Guide, "Controlling access to grants"): RDS creating
an encrypted replica or copying a snapshot. `route53:ChangeResourceRecordSets` is allowed only
for UPSERTs of CNAMEs named in `record_names` (Route 53 Developer Guide, "Using IAM policy
conditions for fine-grained access control"), and not at all without them (the default
health-check-inversion strategy changes no record). The trust policy names the principals from
config; a whole account (`:root`, an account id) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import child, policy_json, require
from components.storage import BATCH_OPERATIONS_PRINCIPAL

TYPE = "regionpair:access:RunbookRole"

RUNBOOK_ACTIONS: dict[str, tuple[str, ...]] = {
    "rds": ("rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:DescribeDBInstanceAutomatedBackups",
            "rds:PromoteReadReplica", "rds:CreateDBInstanceReadReplica",
            "rds:CreateDBSnapshot", "rds:CopyDBSnapshot", "rds:RestoreDBInstanceToPointInTime",
            "rds:AddTagsToResource"),
    "rds_restored": ("rds:DescribeDBInstances", "rds:RestoreDBInstanceToPointInTime", "rds:AddTagsToResource"),
    "rds_delete_temporary": ("rds:DeleteDBInstance",),
    "rds_delete_snapshot": ("rds:DeleteDBSnapshot",),
    "rds_rename": ("rds:ModifyDBInstance",),
    "route53": ("route53:ListResourceRecordSets",),
    "route53_upsert": ("route53:ChangeResourceRecordSets",),
    "route53_health": ("route53:GetHealthCheck", "route53:UpdateHealthCheck", "route53:GetHealthCheckStatus"),
    "route53_change": ("route53:GetChange",),
    "ec2": ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:CreateTags",
            "ec2:DeleteTags"),
    "ec2_describe": ("ec2:DescribeSecurityGroups",),
    "route53_zones": ("route53:ListHostedZonesByName",),
    "secrets": ("secretsmanager:GetSecretValue",),
    "kafka": ("kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"),
    # kafka_replay in AWS reaches the clusters with IAM access control (SASL/OAUTHBEARER): the data-plane
    # actions of MSK's IAM policies (MSK Developer Guide, "Understand service execution role" lists them
    # for an IAM cluster), the idempotent producer's WriteDataIdempotently on the cluster
    "kafka_data_cluster": ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                           "kafka-cluster:WriteDataIdempotently"),
    "kafka_data_topic": ("kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData",
                         "kafka-cluster:ReadData"),
    "kafka_data_group": ("kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"),
    "kafka_read_groups": ("kafka-cluster:DescribeGroup",),
    "kafka_replicator": ("kafka:DescribeReplicator", "kafka:UpdateReplicationInfo", "kafka:TagResource",
                         "kafka:UntagResource"),
    # MirrorMaker 2 on MSK Connect: the failover stops it by deleting its source and heartbeat connectors
    "kafkaconnect": ("kafkaconnect:DescribeConnector", "kafkaconnect:DeleteConnector"),
    "ssm": ("ssm:GetParameter", "ssm:PutParameter"),
    "s3_bucket": ("s3:ListBucket", "s3:ListBucketVersions", "s3:GetReplicationConfiguration",
                  "s3:PutReplicationConfiguration", "s3:GetBucketVersioning", "s3:GetObjectLockConfiguration"),
    # the audit entries' own 7-year COMPLIANCE retention (S3 API Reference, "PutObjectRetention":
    # placing a retention needs s3:PutObjectRetention), only under the audit prefix
    "s3_audit_retention": ("s3:PutObjectRetention",),
    "s3_object": ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"),
    "s3_lock_release": ("s3:DeleteObject",),
    "kms": ("kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"),
    "kms_grant_for_aws_service": ("kms:CreateGrant",),
    "cloudwatch": ("cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics"),
    "cloudwatch_publish": ("cloudwatch:PutMetricData",),
    "sns": ("sns:Publish",),
    "pass_replication_role": ("iam:PassRole",),
    "s3_batch_create": ("s3:CreateJob",),
    "s3_batch_read": ("s3:DescribeJob",),
    "s3_batch_list": ("s3:ListJobs",),
    "pass_batch_replication_role": ("iam:PassRole",),
    "rds_export": ("rds:StartExportTask",),
    "rds_export_read": ("rds:DescribeExportTasks",),
    "pass_export_role": ("iam:PassRole",),
}
BATCH_OPERATION = "S3ReplicateObject"
"""The only S3 Batch Operations operation the runbooks may create a job for (the failback's seeding)."""

BACKUP_METRICS_NAMESPACE = "RegionPair/Backups"
DR_METRICS_NAMESPACE = "RegionPair/DR"
"""The failover, failback, switchover and drills' metrics (runbooks/dr_metrics.py)."""
"""The only CloudWatch namespace the runbooks publish to (runbooks/adapters/aws/cloudwatch.py)."""
TEMPORARY_TAG = "regionpair:temporary"
"""verify_backup tags its temporary instances with it (value `true`); only those may be deleted."""
MANAGED_SNAPSHOT_TAG = ("regionpair:managed-by", "snapshot-runbook")
"""The snapshot runbook's tag: retention deletes only snapshots carrying it."""
COMPLIANCE_TIER_TAG = ("regionpair:retention-tier", "compliance")
"""Snapshots of the compliance tier (docs/backups.md, "Retention tiers"): the role may never delete them."""
RESTORED_INSTANCE_PREFIXES = ("restore", "verify")
"""restore and verify_backup name new instances `<prefix>-<database>-<run>` (runbooks/restore.py)."""
LOCK_PREFIX = "regionpair/locks/"
"""Where the run lock lives (runbooks/adapters/aws/s3_lock.py S3Lock): the only objects the runbooks delete."""
_ACCOUNT_PRINCIPAL = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}|"
                        r"sts::\d{12}:assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{1,64})$")


def normalized_record_name(name: str) -> str:
    """A record name as `route53:ChangeResourceRecordSetsNormalizedRecordNames` compares it (Route 53
    Developer Guide, "Normalizing Route 53 condition key values"): lower case, no trailing dot, any
    character but a-z, 0-9, -, _ and . as a backslash and its three-digit octal code."""
    out = []
    for ch in name.lower().rstrip("."):
        out.append(ch if re.match(r"[a-z0-9._-]", ch) else "\\" + format(ord(ch), "03o"))
    return "".join(out)


@dataclass(frozen=True)
class RegionScope:
    region: str
    """Region name. Required."""
    db_security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Database security groups (fencing revokes and restores their ingress). Required."""
    kafka_cluster_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """MSK clusters. Default: none."""
    replicator_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """MSK replicators. Default: none."""
    bucket_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Buckets (data, backups; the run lock lives in one). Default: none."""
    kms_key_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Keys of this region (encrypted snapshots, replicas, objects). Default: none."""
    topic_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Alarm topics the runbooks notify. Default: none."""
    bootstrap_parameter: str | None = None
    """SSM parameter with the active Kafka bootstrap servers. Default: none."""
    client_parameters: Sequence[str] = ()
    """More such parameters, one per application. Default: none."""
    writer_parameter: str | None = None
    """SSM parameter naming the bucket writers write to. Default: none."""
    replication_role_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """S3 replication roles the runbooks pass when they disable, enable or reverse replication. Default: none."""
    secret_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """The databases' master-password secrets in this region (and replicas of them), which the
    runbooks' SQL checks read. Default: none."""
    batch_replication_role_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """S3 Batch Replication roles of this region's buckets, which the failback passes to the S3
    Batch Operations job it creates here. Default: none (no job may be created or read)."""
    export_role_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """The compliance archive's snapshot-export role of this region, which ``retention --archive`` passes
    to StartExportTask. Default: none (no export may be started)."""
    rebuild_identifiers: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """This region's DB instance identifiers that the failback's rebuild may rename aside
    (rds:ModifyDBInstance on exactly these). Default: none (no ModifyDBInstance here)."""
    connector_arns: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """MirrorMaker 2's MSK Connect connectors in this region (described and deleted by the failover).
    Default: none."""


@dataclass(frozen=True)
class RunbookRoleArgs:
    role_name: str
    """IAM role name. Required: operators assume it by name."""
    account_id: pulumi.Input[str]
    """The AWS account id. Required."""
    name_prefix: str
    """RDS identifiers, snapshots, subnet and parameter groups the runbooks may touch start with it. Required."""
    regions: Sequence[RegionScope]
    """The regions of the pair. Required."""
    zone_id: str
    """The Route53 zone of the failover records. Required."""
    databases: Sequence[str] = ()
    """Logical database names: restores go to `restore-<name>-*` / `verify-<name>-*`. Default: none (no restores)."""
    trusted_principal_arns: Sequence[str] = ()
    """Who may assume the role: IAM role or user ARNs (e.g. the on-call SSO role). Required; a whole
    account (`arn:…:root`, an account id) is refused: it would let any principal IAM allows there in."""
    health_check_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    """Health checks the runbooks read and invert. Default: none."""
    record_names: Sequence[str] = ()
    """Record names the record-upsert strategy may UPSERT (CNAME only). Default: none (no
    ChangeResourceRecordSets: the health-check-inversion strategy changes no record)."""
    partition: str = "aws"
    """ARN partition. Default: aws."""
    max_session_seconds: int = 3600
    """Longest session. Default: one hour (a failover runbook fits; re-assume for longer)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def runbook_policy(*, partition: str, account: str, prefix: str, zone_id: str, health_check_ids: Sequence[str],
                   regions: Sequence[Mapping[str, Any]], databases: Sequence[str] = (),
                   record_names: Sequence[str] = ()) -> str:
    """The policy document; `regions` are RegionScope values resolved to plain lists."""
    def arn(service: str, region: str, resource: str) -> str:
        return f"arn:{partition}:{service}:{region}:{account}:{resource}"

    statements: list[dict[str, Any]] = []

    def add(sid: str, actions: Sequence[str], resources: Sequence[str]) -> None:
        if resources:
            statements.append({"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(set(resources))})

    rds, ec2, kafka, repl, ssm, buckets, objects, keys, topics, roles, secrets = ([] for _ in range(11))
    renamed, locks, connectors = [], [], []
    batch_roles, batch_jobs, export_roles = [], [], []
    restored, temporary, snapshots = [], [], []
    for r in regions:
        name = r["region"]
        rds += [arn("rds", name, f"{kind}:{prefix}-*") for kind in ("db", "snapshot", "subgrp", "pg")]
        rds += [arn("rds", name, "og:default:postgres-*")]
        # automated backups (and those replicated into DR) have generated ids: scoped to region and account
        rds += [arn("rds", name, "auto-backup:*")]
        restored += [arn("rds", name, f"db:{kind}-{db}-*") for kind in RESTORED_INSTANCE_PREFIXES for db in databases]
        temporary += [arn("rds", name, f"db:verify-{db}-*") for db in databases]
        renamed += [arn("rds", name, f"db:{ident}") for ident in r.get("rebuild_identifiers") or [] if ident]
        snapshots.append(arn("rds", name, f"snapshot:{prefix}-*"))
        ec2 += [arn("ec2", name, f"security-group/{sg}") for sg in r["db_security_group_ids"]]
        kafka += list(r["kafka_cluster_arns"])
        repl += list(r["replicator_arns"])
        connectors += [a for a in r.get("connector_arns") or [] if a]
        for param in (r.get("bootstrap_parameter"), r.get("writer_parameter"), *(r.get("client_parameters") or ())):
            if param:
                ssm.append(arn("ssm", name, f"parameter{param}"))
        buckets += list(r["bucket_arns"])
        objects += [f"{b}/*" for b in r["bucket_arns"]]
        locks += [f"{b}/{LOCK_PREFIX}*" for b in r["bucket_arns"]]
        keys += list(r["kms_key_arns"])
        topics += list(r["topic_arns"])
        roles += list(r.get("replication_role_arns") or [])
        secrets += [s for s in r.get("secret_arns") or [] if s]
        export_roles += [a for a in r.get("export_role_arns") or [] if a]
        region_batch_roles = [a for a in r.get("batch_replication_role_arns") or [] if a]
        batch_roles += region_batch_roles
        if region_batch_roles:  # job ids are generated: scoped to the region and account
            batch_jobs.append(arn("s3", name, "job/*"))
    add("RdsFailoverAndBackups", RUNBOOK_ACTIONS["rds"], rds)
    add("RestoreToNewInstances", RUNBOOK_ACTIONS["rds_restored"], restored)
    add("DeleteOnlyVerifyBackupTemporaryInstances", RUNBOOK_ACTIONS["rds_delete_temporary"], temporary)
    if temporary:
        statements[-1]["Condition"] = {"StringEquals": {f"aws:ResourceTag/{TEMPORARY_TAG}": "true"}}
    add("DeleteOnlySnapshotRunbookSnapshots", RUNBOOK_ACTIONS["rds_delete_snapshot"], snapshots)
    if snapshots:
        # and never one of the compliance tier: a negated operator holds when the tag is absent (IAM User
        # Guide, "IAM JSON policy elements: Condition operators"), so untagged managed snapshots stay deletable
        statements[-1]["Condition"] = {
            "StringEquals": {f"aws:ResourceTag/{MANAGED_SNAPSHOT_TAG[0]}": MANAGED_SNAPSHOT_TAG[1]},
            "StringNotEquals": {f"aws:ResourceTag/{COMPLIANCE_TIER_TAG[0]}": COMPLIANCE_TIER_TAG[1]}}
    # the failback's rebuild renames the old primary aside; IAM cannot condition ModifyDBInstance on
    # its parameters, so the resource is the exact identifiers, not the prefix (module docstring)
    add("RenameOnlyTheStacksDatabasesAside", RUNBOOK_ACTIONS["rds_rename"], renamed)
    zone = f"arn:{partition}:route53:::hostedzone/{zone_id}"
    add("Route53FailoverRecords", RUNBOOK_ACTIONS["route53"], [zone])
    if record_names:
        add("UpsertOnlyTheDatabaseRecords", RUNBOOK_ACTIONS["route53_upsert"], [zone])
        statements[-1]["Condition"] = {"ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted({normalized_record_name(n)
                                                                            for n in record_names}),
            "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
            "route53:ChangeResourceRecordSetsActions": ["UPSERT"]}}
    add("Route53HealthChecks", RUNBOOK_ACTIONS["route53_health"],
        [f"arn:{partition}:route53:::healthcheck/{h}" for h in health_check_ids])
    add("Route53ChangeStatus", RUNBOOK_ACTIONS["route53_change"], [f"arn:{partition}:route53:::change/*"])
    add("FenceDatabaseSecurityGroups", RUNBOOK_ACTIONS["ec2"], ec2)
    add("ReadDatabasePasswords", RUNBOOK_ACTIONS["secrets"], sorted(set(secrets)))
    add("KafkaClusters", RUNBOOK_ACTIONS["kafka"], kafka)
    add("KafkaReplicators", RUNBOOK_ACTIONS["kafka_replicator"], repl)
    # the replay runbook (runbooks/kafka_replay.py): any topic of the pair's clusters is a possible
    # target; its consumers use only the regionpair-replay-* group ids
    add("ReplayKafkaBackupsConnect", RUNBOOK_ACTIONS["kafka_data_cluster"], kafka)
    add("ReplayKafkaBackupsTopics", RUNBOOK_ACTIONS["kafka_data_topic"],
        [a.replace(":cluster/", ":topic/", 1) + "/*" for a in kafka if ":cluster/" in a])
    add("ReplayKafkaBackupsGroups", RUNBOOK_ACTIONS["kafka_data_group"],
        [a.replace(":cluster/", ":group/", 1) + "/regionpair-replay-*" for a in kafka if ":cluster/" in a])
    # runbooks/kafka_offsets.py lists the groups and reads their committed offsets (read-only)
    add("ReadConsumerGroupOffsets", RUNBOOK_ACTIONS["kafka_read_groups"],
        [a.replace(":cluster/", ":group/", 1) + "/*" for a in kafka if ":cluster/" in a])
    add("MirrorMaker2Connectors", RUNBOOK_ACTIONS["kafkaconnect"], connectors)
    add("ClientParameters", RUNBOOK_ACTIONS["ssm"], ssm)
    add("Buckets", RUNBOOK_ACTIONS["s3_bucket"], buckets)
    add("BucketObjectsAndRunLock", RUNBOOK_ACTIONS["s3_object"], objects)
    add("ReleaseTheRunLock", RUNBOOK_ACTIONS["s3_lock_release"], locks)
    add("AuditEntriesRetention", RUNBOOK_ACTIONS["s3_audit_retention"], [f"{b}/regionpair/audit/*" for b in buckets])
    add("KeysOfThePair", RUNBOOK_ACTIONS["kms"], keys)
    # RDS asks for a grant when it creates an encrypted replica or copies a snapshot for the runbook
    add("GrantsOnlyForAwsServices", RUNBOOK_ACTIONS["kms_grant_for_aws_service"], keys)
    if keys:
        statements[-1]["Condition"] = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    add("NotifyAlarmTopics", RUNBOOK_ACTIONS["sns"], topics)
    add("PassReplicationRoleToS3", RUNBOOK_ACTIONS["pass_replication_role"], roles)
    if roles:  # PutBucketReplication passes the role to S3, and only to S3
        statements[-1]["Condition"] = {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}
    # the failback's S3 Batch Replication: CreateJob has no resource-level permission in IAM; the
    # condition allows only replication jobs, and the one role it may pass replicates one bucket
    if batch_roles:
        statements.append({"Sid": "CreateBatchReplicationJobs", "Effect": "Allow",
                           "Action": list(RUNBOOK_ACTIONS["s3_batch_create"]), "Resource": "*",
                           "Condition": {"StringEquals": {"s3:RequestJobOperation": BATCH_OPERATION}}})
        add("PassBatchReplicationRole", RUNBOOK_ACTIONS["pass_batch_replication_role"], batch_roles)
        statements[-1]["Condition"] = {"StringEquals": {"iam:PassedToService": BATCH_OPERATIONS_PRINCIPAL}}
        add("WatchBatchReplicationJobs", RUNBOOK_ACTIONS["s3_batch_read"], batch_jobs)
        # a rerun finds the job an interrupted run started (read-only, no resource scope in IAM)
        statements.append({"Sid": "FindBatchReplicationJobs", "Effect": "Allow",
                           "Action": list(RUNBOOK_ACTIONS["s3_batch_list"]), "Resource": "*"})
    # the compliance tier's exports (runbooks/retention.py --archive): the only role the runbooks may
    # pass is the export role, which writes into the archive bucket only; the search tool did not return
    # RDS's resource-level scoping of StartExportTask, so it is not scoped beyond that role
    if export_roles:
        statements.append({"Sid": "ExportSnapshotsToTheComplianceArchive", "Effect": "Allow",
                           "Action": list(RUNBOOK_ACTIONS["rds_export"]), "Resource": "*"})
        add("PassOnlyTheExportRole", RUNBOOK_ACTIONS["pass_export_role"], export_roles)
        statements.append({"Sid": "ReadExportTasks", "Effect": "Allow",
                           "Action": list(RUNBOOK_ACTIONS["rds_export_read"]), "Resource": "*"})
    # these have no resource-level permissions in IAM, and they only read
    statements.append({"Sid": "DescribeSecurityGroups", "Effect": "Allow",
                       "Action": list(RUNBOOK_ACTIONS["ec2_describe"]), "Resource": "*"})
    statements.append({"Sid": "FindHostedZone", "Effect": "Allow",
                       "Action": list(RUNBOOK_ACTIONS["route53_zones"]), "Resource": "*"})
    # GetMetricData has no resource-level permissions in IAM; it reads metrics only
    statements.append({"Sid": "ReadMetrics", "Effect": "Allow", "Action": list(RUNBOOK_ACTIONS["cloudwatch"]),
                       "Resource": "*"})
    # PutMetricData has no resource-level permissions either; the namespace condition keeps the
    # runbooks from writing (or faking) any metric outside their own
    statements.append({"Sid": "PublishBackupMetrics", "Effect": "Allow",
                       "Action": list(RUNBOOK_ACTIONS["cloudwatch_publish"]), "Resource": "*",
                       "Condition": {"StringEquals": {"cloudwatch:namespace": [BACKUP_METRICS_NAMESPACE,
                                                                               DR_METRICS_NAMESPACE]}}})
    for s in statements:
        for action in s["Action"]:
            if "*" in action:
                raise ValueError(f"runbook policy: wildcard action {action!r} in {s['Sid']}")
    return policy_json(statements)


class RunbookRole(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: RunbookRoleArgs, opts: pulumi.ResourceOptions | None = None):
        require(TYPE, "role_name", args.role_name, bool(re.match(r"^[\w+=,.@-]{1,64}$", args.role_name)), "an IAM role name")
        require(TYPE, "regions", [r.region for r in args.regions], bool(args.regions), "name the regions of the pair")
        require(TYPE, "name_prefix", args.name_prefix, bool(re.match(r"^[a-z][a-z0-9-]{2,}$", args.name_prefix)),
                "a specific prefix such as regionpair; a short prefix would reach other teams' databases")
        for db in args.databases:
            require(TYPE, "databases", db, bool(re.match(r"^[a-z][a-z0-9-]{0,40}$", db)),
                    "logical database names (lowercase letters, digits, dashes)")
        require(TYPE, "max_session_seconds", args.max_session_seconds, 3600 <= args.max_session_seconds <= 43200,
                "IAM allows 3600 to 43200")
        principals = list(args.trusted_principal_arns)
        require(TYPE, "trusted_principal_arns", principals, bool(principals),
                "name who may assume the role (the on-call role's ARN); nobody could run the runbooks otherwise")
        for p in principals:
            require(TYPE, "trusted_principal_arns", p, not _ACCOUNT_PRINCIPAL.match(p),
                    "a whole account would let every principal IAM allows there assume the runbook role; name "
                    "the roles or users (arn:aws:iam::<account>:role/<name>)")
            require(TYPE, "trusted_principal_arns", p, bool(_PRINCIPAL.match(p)),
                    "an IAM role or user ARN, e.g. arn:aws:iam::123456789012:role/oncall")
        for n in args.record_names:
            require(TYPE, "record_names", n, bool(re.match(r"^[A-Za-z0-9._-]+\.?$", n)), "DNS record names")
        super().__init__(TYPE, name, None, opts)

        account = pulumi.Output.from_input(args.account_id)
        trust = policy_json([{"Effect": "Allow", "Principal": {"AWS": sorted(set(principals))},
                              "Action": ["sts:AssumeRole", "sts:TagSession"]}])
        role = aws.iam.Role(f"{name}-role", aws.iam.RoleArgs(
            name=args.role_name, description="regionpair runbooks: failover, failback, drills, backups",
            assume_role_policy=trust, max_session_duration=args.max_session_seconds, tags=dict(args.tags)),
            opts=child(self))

        scopes = pulumi.Output.from_input([{
            "region": r.region, "db_security_group_ids": r.db_security_group_ids,
            "kafka_cluster_arns": r.kafka_cluster_arns, "replicator_arns": r.replicator_arns,
            "bucket_arns": r.bucket_arns, "kms_key_arns": r.kms_key_arns, "topic_arns": r.topic_arns,
            "bootstrap_parameter": r.bootstrap_parameter, "writer_parameter": r.writer_parameter,
            "client_parameters": list(r.client_parameters), "secret_arns": r.secret_arns,
            "replication_role_arns": r.replication_role_arns,
            "batch_replication_role_arns": r.batch_replication_role_arns,
            "export_role_arns": r.export_role_arns,
            "rebuild_identifiers": r.rebuild_identifiers, "connector_arns": r.connector_arns} for r in args.regions])
        document = pulumi.Output.all(account, pulumi.Output.from_input(args.health_check_ids), scopes).apply(
            lambda v: runbook_policy(partition=args.partition, account=v[0], prefix=args.name_prefix,
                                     zone_id=args.zone_id, health_check_ids=[h for h in v[1] if h], regions=v[2],
                                     databases=list(args.databases), record_names=list(args.record_names)))
        aws.iam.RolePolicy(f"{name}-policy", aws.iam.RolePolicyArgs(role=role.id, policy=document), opts=child(self))

        self.arn = role.arn
        self.name = role.name
        self.register_outputs({"arn": self.arn})
