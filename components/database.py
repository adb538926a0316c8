"""PostgreSQL on RDS: the primary, its cross-region read replica, and the replica promoted.

One component for the three lives of one database, so the instance keeps the same logical
name (`{name}-instance`) through all of them:

- `primary`: Multi-AZ, KMS-encrypted, password managed by Secrets Manager, IAM auth, TLS forced.
- `replica`: the same settings plus `replicate_source_db` = the primary's ARN (cross-region, with
  this region's key), and automated-backup replication so point-in-time restore works in DR.
- `promoted`: after a real failover the dr stack sets `promoted: true`; the instance is declared
  with the replica's inputs minus `replicate_source_db` (plus a Secrets Manager password in this
  region). Removing `replicate_source_db` promotes in place; nothing that forces a replacement
  changes (`tests/unit/test_components_database.py` proves both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components._common import assume_role_policy, child, require

TYPE = "regionpair:database:ReplicatedPostgres"
ROLES = ("primary", "replica", "promoted")
LOG_EXPORTS = ["postgresql", "upgrade"]
MONITORING_POLICY = "arn:{partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

# Inputs of aws.rds.Instance whose change replaces the instance (and its data). The promoted
# declaration must leave every one of them as the replica had it.
REPLACING_INPUTS = ("identifier", "identifierPrefix", "engine", "kmsKeyId", "storageEncrypted", "username",
                    "dbName", "availabilityZone", "characterSetName", "ncharCharacterSetName", "timezone",
                    "snapshotIdentifier", "restoreToPointInTime", "s3Import", "customIamInstanceProfile")


@dataclass(frozen=True)
class ReplicatedPostgresArgs:
    identifier: str
    """RDS instance identifier. Required: runbooks and people address the instance by it."""
    role: str
    """`primary`, `replica` or `promoted`. Required: decides whether the instance replicates."""
    instance_class: str
    """Instance class such as db.r6g.large. Required: no size fits every workload."""
    engine_version: str
    """PostgreSQL version (major or major.minor). Required: upgrades must be deliberate."""
    allocated_storage_gb: int
    """Initial storage. Required."""
    kms_key_arn: pulumi.Input[str]
    """This region's customer key (storage, Performance Insights, the password secret). Required."""
    db_subnet_group_name: pulumi.Input[str]
    """Subnet group of private subnets. Required: the instance is never placed in a default VPC."""
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Security groups of the instance. Required."""
    partition: str = "aws"
    """ARN partition. Default: aws."""
    source_db_arn: pulumi.Input[str] | None = None
    """ARN of the primary. Required for `replica`; with `promoted` keeps the backup replication. Default: none."""
    max_allocated_storage_gb: int | None = None
    """Storage autoscaling ceiling. Default: twice allocated_storage_gb."""
    db_name: str = "app"
    """Database created in a new primary. Default: app. (Replicas inherit it.)"""
    username: str = "app_admin"
    """Master user of a new primary; its password lives in Secrets Manager. Default: app_admin."""
    port: int = 5432
    """Listener port. Default: 5432."""
    backup_retention_days: int = 30
    """Automated backup retention, floor 7. Default: 30 days."""
    backup_window: str = "03:00-04:00"
    """Daily backup window (UTC). Default: 03:00-04:00."""
    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC). Default: sun:04:30-sun:05:30."""
    multi_az: bool = True
    """Synchronous standby in a second zone. Default: on."""
    monitoring_interval_seconds: int = 60
    """Enhanced monitoring interval. Default: 60 s."""
    performance_insights_retention_days: int = 7
    """Performance Insights retention. Default: 7 days (the free tier)."""
    deletion_protection: bool = True
    """Refuse deletes. Default: on (turn off deliberately before a teardown)."""
    final_snapshot: bool = True
    """Take a final snapshot when the instance is deleted. Default: on (off only for drill stacks)."""
    logical_replication: bool = False
    """`rds.logical_replication=1` (pending-reboot: static; RDS then sets wal_level=logical), so CDC consumers
    can use logical slots and the runbooks can recreate them after a failover (runbooks/slots.py). Default: off
    (a slot nobody reads keeps WAL and fills the storage)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags (copied to snapshots). Default: none beyond the provider's default tags."""


def _validate(args: ReplicatedPostgresArgs) -> None:
    require(TYPE, "role", args.role, args.role in ROLES, f"use one of {', '.join(ROLES)}")
    require(TYPE, "identifier", args.identifier, bool(_IDENTIFIER.match(args.identifier)) and "--" not in args.identifier
            and not args.identifier.endswith("-"), "lowercase letters, digits and single dashes, at most 63 characters")
    if args.role == "replica":
        require(TYPE, "source_db_arn", args.source_db_arn, args.source_db_arn is not None,
                "a replica needs the primary's ARN (cross-region replicas are addressed by ARN)")
    if args.role == "primary":
        require(TYPE, "source_db_arn", args.source_db_arn, args.source_db_arn is None,
                "a primary replicates nothing; use role=replica to declare a replica")
    require(TYPE, "backup_retention_days", args.backup_retention_days, 7 <= args.backup_retention_days <= 35,
            "7 days is the floor for point-in-time recovery; RDS allows at most 35")
    require(TYPE, "allocated_storage_gb", args.allocated_storage_gb, 20 <= args.allocated_storage_gb <= 65536,
            "RDS gp3 allows 20 to 65536 GiB")
    if args.max_allocated_storage_gb is not None:
        require(TYPE, "max_allocated_storage_gb", args.max_allocated_storage_gb,
                args.max_allocated_storage_gb >= args.allocated_storage_gb, "must be at least allocated_storage_gb")
    require(TYPE, "monitoring_interval_seconds", args.monitoring_interval_seconds,
            args.monitoring_interval_seconds in (1, 5, 10, 15, 30, 60), "RDS allows 1, 5, 10, 15, 30 or 60")
    require(TYPE, "engine_version", args.engine_version, bool(re.match(r"^\d+(\.\d+)?$", args.engine_version)),
            "a PostgreSQL version such as 16 or 16.4")


def parameter_family(engine_version: str) -> str:
    return f"postgres{engine_version.split('.')[0]}"


class ReplicatedPostgres(pulumi.ComponentResource):
    """One PostgreSQL database in one region, as primary, replica or promoted replica."""

    arn: pulumi.Output[str]
    identifier: pulumi.Output[str]
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    secret_arn: pulumi.Output[str | None]
    role: str

    def __init__(self, name: str, args: ReplicatedPostgresArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(args)
        super().__init__(TYPE, name, None, opts)
        tags = {**args.tags, "regionpair:database": name}

        params = aws.rds.ParameterGroup(f"{name}-params", aws.rds.ParameterGroupArgs(
            name=f"{args.identifier}-{parameter_family(args.engine_version)}",
            family=parameter_family(args.engine_version),
            description=f"{args.identifier}: TLS only",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1", apply_method="pending-reboot"),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1", apply_method="immediate"),
                aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1", apply_method="immediate"),
            ] + ([aws.rds.ParameterGroupParameterArgs(name="rds.logical_replication", value="1",
                                                      apply_method="pending-reboot")]
                 if args.logical_replication else []),
            tags=tags), opts=child(self))

        monitoring = aws.iam.Role(f"{name}-monitoring", aws.iam.RoleArgs(
            description=f"{args.identifier}: RDS enhanced monitoring",
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"), tags=tags), opts=child(self))
        attachment = aws.iam.RolePolicyAttachment(f"{name}-monitoring", aws.iam.RolePolicyAttachmentArgs(
            role=monitoring.name, policy_arn=MONITORING_POLICY.format(partition=args.partition)), opts=child(self))

        standalone = args.role in ("primary", "promoted")
        instance_args = aws.rds.InstanceArgs(
            identifier=args.identifier,
            engine="postgres",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.max_allocated_storage_gb or 2 * args.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            multi_az=args.multi_az,
            db_subnet_group_name=args.db_subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            parameter_group_name=params.name,
            publicly_accessible=False,
            port=args.port,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            backup_retention_period=args.backup_retention_days,
            backup_window=args.backup_window,
            maintenance_window=args.maintenance_window,
            delete_automated_backups=False,
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=f"{args.identifier}-final" if args.final_snapshot else None,
            copy_tags_to_snapshot=True,
            iam_database_authentication_enabled=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=args.performance_insights_retention_days,
            monitoring_interval=args.monitoring_interval_seconds,
            monitoring_role_arn=monitoring.arn,
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            # a new primary creates the database and its master user; a replica (and the replica
            # once promoted) inherits both: declaring them there would force a replacement
            db_name=args.db_name if args.role == "primary" else None,
            username=args.username if args.role == "primary" else None,
            manage_master_user_password=True if standalone else None,
            master_user_secret_kms_key_id=args.kms_key_arn if standalone else None,
            replicate_source_db=args.source_db_arn if args.role == "replica" else None,
            tags=tags,
        )
        instance = aws.rds.Instance(f"{name}-instance", instance_args,
                                    opts=child(self, depends_on=[attachment]))

        if args.role in ("replica", "promoted") and args.source_db_arn is not None:
            # in this (the destination) region: keeps the primary's automated backups here, so a
            # point-in-time restore works in DR even when the primary's region is gone
            aws.rds.InstanceAutomatedBackupsReplication(f"{name}-backups", aws.rds.InstanceAutomatedBackupsReplicationArgs(
                source_db_instance_arn=args.source_db_arn, kms_key_id=args.kms_key_arn,
                retention_period=args.backup_retention_days), opts=child(self))

        self.role = "replica" if args.role == "replica" else "primary"
        self.arn = instance.arn
        self.identifier = instance.identifier
        self.address = instance.address
        self.port = instance.port
        self.secret_arn = instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn if secrets else None) if standalone else pulumi.Output.from_input(None)
        self.register_outputs({"arn": self.arn, "identifier": self.identifier, "address": self.address,
                               "port": self.port, "secret_arn": self.secret_arn})
