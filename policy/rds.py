"""RDS and Secrets Manager rules that AWS and the pulumi-aws provider document (issue 10, points 1, 3,
4 and the RDS / Secrets Manager constraints), as CrossGuard policies. Each policy's description
names the document it comes from; docs/stacks.md#aws-rules-rds lists them with where they are enforced and
the test that shows each refusing.

``rules.py`` puts ``POLICIES`` in the pack's list. Two layers, as everywhere in the pack: pure checks
over a ``base.Resource`` returning sentences, then the policy objects.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from . import base

Resource, Violation, UNKNOWN, is_set, get = base.Resource, base.Violation, base.UNKNOWN, base.is_set, base.get

RDS_INSTANCE = base.RDS_INSTANCE
RDS_BACKUP_REPLICATION = base.RDS_BACKUP_REPLICATION
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
SECRET = "aws:secretsmanager/secret:Secret"

_ARN = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<rest>.+)$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_SIX_CHAR_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def arn_region(value: Any) -> Optional[str]:
    m = _ARN.match(value) if isinstance(value, str) else None
    return m.group("region") if m else None


def _replica(r: Resource) -> bool:
    return base.is_replica(r)


# ---- RDS instance ------------------------------------------------------------------------------


def check_no_rds_managed_password(r: Resource) -> list[str]:
    """RDS User Guide, "Limitations for Secrets Manager integration": RDS cannot create a read replica
    of a source whose master password Secrets Manager manages (all engines but SQL Server). Every
    database of this project is a replication source, a replica, or a promoted replica that a
    failback makes a source again."""
    if r.type != RDS_INSTANCE or r.props.get("manageMasterUserPassword") is not True:
        return []
    return [f"{r.label}: manageMasterUserPassword is true, but RDS cannot create a read replica of a source whose "
            "password Secrets Manager manages (RDS User Guide, 'Limitations for Secrets Manager integration'), and "
            "every database here is replicated to the DR region. Fix: pass the password from a stack-owned secret "
            "(components/database.py) and leave manage_master_user_password unset."]


def check_final_snapshot(r: Resource) -> list[str]:
    """pulumi-aws aws.rds.Instance, final_snapshot_identifier: "Must be provided if skip_final_snapshot
    is set to false … Must not be provided when deleting a read replica"; skip_final_snapshot defaults
    to false."""
    if r.type != RDS_INSTANCE:
        return []
    skip, ident = r.props.get("skipFinalSnapshot"), r.props.get("finalSnapshotIdentifier")
    if _replica(r):
        problems = []
        if is_set(ident) and ident is not UNKNOWN:
            problems.append(f"{r.label}: a read replica names finalSnapshotIdentifier {ident!r}; RDS refuses to delete "
                            "a replica with a final snapshot. Fix: skip_final_snapshot=True and no "
                            "final_snapshot_identifier on replicas.")
        if skip is not True and skip is not UNKNOWN:
            problems.append(f"{r.label}: a read replica with skipFinalSnapshot={skip!r} asks for a final snapshot RDS "
                            "does not take of a replica. Fix: skip_final_snapshot=True.")
        return problems
    if skip is not True and skip is not UNKNOWN and not is_set(ident):
        return [f"{r.label}: skipFinalSnapshot is {skip!r} (the provider's default is false) but no "
                "finalSnapshotIdentifier is set, so deleting the instance fails. Fix: name a final snapshot "
                "(final_snapshot_identifier) or, for a drill stack only, skip_final_snapshot=True."]
    return []


def check_engine_version_with_auto_minor_upgrade(r: Resource) -> list[str]:
    """pulumi-aws aws.rds.Instance, engine_version: with auto_minor_version_upgrade a version prefix is
    given and the running one is engine_version_actual. A pinned PostgreSQL minor drifts after RDS
    upgrades it and the next `up` plans a downgrade RDS refuses (issue 10, point 4)."""
    if r.type != RDS_INSTANCE or r.props.get("engine") != "postgres":
        return []
    version, auto = r.props.get("engineVersion"), r.props.get("autoMinorVersionUpgrade")
    if auto is False or not isinstance(version, str) or "." not in version:
        return []
    return [f"{r.label}: engineVersion {version!r} pins a minor version while autoMinorVersionUpgrade is "
            f"{'on by default' if auto is None else repr(auto)}; after RDS upgrades the minor version the next "
            f"`pulumi up` plans a downgrade RDS refuses. Fix: engine_version={version.split('.')[0]!r} (major "
            "only), or auto_minor_version_upgrade=False."]


def check_cross_region_replica(r: Resource) -> list[str]:
    """pulumi-aws aws.rds.Instance, replicate_source_db: a replica of an instance in another region is
    given the source's ARN, and a cross-region replica of an encrypted source needs kms_key_id (a
    key of the replica's own region: KMS keys are regional, RDS User Guide "Working with DB
    instance read replicas" / "Creating a read replica in a different AWS Region")."""
    if r.type != RDS_INSTANCE or not _replica(r):
        return []
    source, key = r.props.get("replicateSourceDb"), r.props.get("kmsKeyId")
    if source is UNKNOWN:
        return []
    problems = []
    if arn_region(source) is None:
        problems.append(f"{r.label}: replicateSourceDb {source!r} is not an ARN; the replicas here are cross-region "
                        "and a cross-region source is addressed by its ARN. Fix: pass the primary's ARN.")
    elif arn_region(key) is not None and arn_region(key) == arn_region(source):
        problems.append(f"{r.label}: kmsKeyId {key!r} is a key of the source's region {arn_region(source)}; a "
                        "cross-region replica is encrypted with a key of its own region. Fix: the DR region's key.")
    return problems


def check_backup_replication(r: Resource) -> list[str]:
    """RDS API StartDBInstanceAutomatedBackupsReplication (pulumi-aws aws.rds.InstanceAutomatedBackupsReplication):
    SourceDBInstanceArn is the source's ARN; KmsKeyId is the ARN of a key in the destination region
    (an encrypted source needs it); backup retention is at most 35 days (aws.rds.Instance
    backup_retention_period: 0 to 35)."""
    if r.type != RDS_BACKUP_REPLICATION:
        return []
    source, key, days = r.props.get("sourceDbInstanceArn"), r.props.get("kmsKeyId"), r.props.get("retentionPeriod")
    problems = []
    if source is not UNKNOWN and arn_region(source) is None:
        problems.append(f"{r.label}: sourceDbInstanceArn {source!r} is not an RDS instance ARN. Fix: the primary's ARN.")
    if key is not UNKNOWN and is_set(key) and arn_region(key) is None:
        problems.append(f"{r.label}: kmsKeyId {key!r} is not a key ARN; RDS wants the ARN of a key in the destination "
                        "region. Fix: the DR region key's ARN.")
    elif arn_region(key) is not None and arn_region(key) == arn_region(source):
        problems.append(f"{r.label}: kmsKeyId {key!r} is in the source's region {arn_region(source)}; replicated "
                        "backups are encrypted with a key of the destination region. Fix: the DR region's key.")
    if isinstance(days, (int, float)) and not isinstance(days, bool) and not 1 <= days <= 35:
        problems.append(f"{r.label}: retentionPeriod {days:g} is outside 1-35 days. Fix: at most 35 (RDS's maximum).")
    return problems


# ---- Secrets Manager ---------------------------------------------------------------------------


def check_secret(r: Resource) -> list[str]:
    """Secrets Manager API CreateSecret, Name: letters, digits and /_+=.@- only, and not ending in a
    hyphen and six characters (Secrets Manager appends those to the ARN; a partial-ARN lookup gets
    confused). pulumi-aws aws.secretsmanager.Secret: recovery_window_in_days 0 or 7-30; replica
    kms_key_id is a key "within the region secret is replicated to" (ReplicateSecretToRegions,
    ReplicaRegionType); this project encrypts the primary with its customer key."""
    if r.type != SECRET:
        return []
    problems = []
    name, window = r.props.get("name"), r.props.get("recoveryWindowInDays")
    if isinstance(name, str) and name is not UNKNOWN:
        if not _SECRET_NAME.match(name):
            problems.append(f"{r.label}: secret name {name!r} holds characters Secrets Manager does not allow. Fix: "
                            "letters, digits and /_+=.@- only.")
        elif _SIX_CHAR_SUFFIX.search(name):
            problems.append(f"{r.label}: secret name {name!r} ends with a hyphen and six characters, which Secrets "
                            "Manager appends to every ARN; lookups by partial ARN become ambiguous. Fix: another ending.")
    if isinstance(window, (int, float)) and not isinstance(window, bool) and not (window == 0 or 7 <= window <= 30):
        problems.append(f"{r.label}: recoveryWindowInDays {window:g}: Secrets Manager allows 0 or 7-30. Fix: 30.")
    problems += base.key_problems(r, "kmsKeyId", "the secret", "set kms_key_id to this region's customer KMS key ARN")
    regions = [get(rep, "region") for rep in base.as_list(r.props.get("replicas"))]
    known = [x for x in regions if isinstance(x, str)]
    if len(set(known)) != len(known):
        problems.append(f"{r.label}: replicas name a region twice ({known}); a secret has one replica per region.")
    for rep in base.as_list(r.props.get("replicas")):
        region, key = get(rep, "region"), get(rep, "kmsKeyId")
        if isinstance(region, str) and arn_region(key) not in (None, region):
            problems.append(f"{r.label}: the replica in {region} names kmsKeyId {key!r}, a key of {arn_region(key)}; a "
                            f"replica is encrypted with a key of its own region. Fix: a key in {region} (or none: "
                            "aws/secretsmanager there).")
    return problems


# ---- stack checks --------------------------------------------------------------------------------


def check_parameter_group_family(resources: list[Resource]) -> list[Violation]:
    """RDS API CreateDBParameterGroup, DBParameterGroupFamily: a parameter group "can be applied only
    to a DB instance running a database engine and engine version compatible with that DB parameter
    group family" (RDS for PostgreSQL: postgres<major>)."""
    groups = {g.props.get("name"): g for g in base.of_type(resources, RDS_PARAMETER_GROUP)
              if isinstance(g.props.get("name"), str)}
    out = []
    for inst in base.of_type(resources, RDS_INSTANCE):
        version, group = inst.props.get("engineVersion"), groups.get(inst.props.get("parameterGroupName"))
        if inst.props.get("engine") != "postgres" or group is None or not isinstance(version, str):
            continue
        wanted, family = f"postgres{version.split('.')[0]}", group.props.get("family")
        if family is not UNKNOWN and family != wanted:
            out.append(Violation(inst, f"{inst.label}: engine version {version} needs a parameter group of family "
                                       f"{wanted}, but {group.label} is {family!r}; RDS refuses the combination. "
                                       f"Fix: family={wanted!r} (components/database.py derives it)."))
    return out


POLICIES = [
    base.resource_policy(
        "rds-password-not-rds-managed",
        "No RDS-managed master password: RDS cannot create a read replica of a source that uses "
        "manage_master_user_password (RDS User Guide, 'Limitations for Secrets Manager integration').",
        check_no_rds_managed_password),
    base.resource_policy(
        "rds-final-snapshot-by-role",
        "Replicas skip the final snapshot and name none; standalone instances name one when they take it "
        "(pulumi-aws aws.rds.Instance, final_snapshot_identifier / skip_final_snapshot).",
        check_final_snapshot),
    base.resource_policy(
        "rds-major-version-with-auto-minor-upgrade",
        "With auto minor version upgrades, engine_version names the major version only (pulumi-aws "
        "aws.rds.Instance, engine_version; issue 10 point 4).",
        check_engine_version_with_auto_minor_upgrade),
    base.resource_policy(
        "rds-cross-region-replica",
        "A cross-region replica names its source by ARN and is encrypted with a key of its own region "
        "(pulumi-aws aws.rds.Instance, replicate_source_db and kms_key_id).",
        check_cross_region_replica),
    base.resource_policy(
        "rds-backup-replication",
        "Automated-backup replication names the source ARN, a destination-region key ARN and at most 35 days "
        "(RDS API StartDBInstanceAutomatedBackupsReplication).",
        check_backup_replication),
    base.resource_policy(
        "secretsmanager-secret",
        "Secret names, recovery window, customer key, and replica keys in the replica's region (Secrets Manager "
        "API CreateSecret Name, ReplicateSecretToRegions; pulumi-aws aws.secretsmanager.Secret).",
        check_secret),
    base.stack_policy(
        "rds-parameter-group-family",
        "An instance's parameter group family matches its engine major version (RDS API CreateDBParameterGroup, "
        "DBParameterGroupFamily).",
        base.ignoring_settings(check_parameter_group_family)),
]
