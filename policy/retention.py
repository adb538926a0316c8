"""Retention-tier rules (issue 13 item 4) that AWS documents, as CrossGuard policies. Each policy's
description names its document; docs/stacks.md's AWS rules table lists them with where they are
enforced and the test that shows each refusing (tests/unit/test_policy_retention.py, and a BROKEN case
of tests/unit/test_policy_graph.py).

``rules.py`` puts ``POLICIES`` in the pack's list. Two layers, as everywhere in the pack: pure checks
over a ``base.Resource`` returning sentences, then the policies.
"""

from __future__ import annotations

import json
from typing import Any

from . import base

Resource, Violation, UNKNOWN, get, as_list = base.Resource, base.Violation, base.UNKNOWN, base.get, base.as_list

RDS_INSTANCE = base.RDS_INSTANCE
IAM_ROLE = base.IAM_ROLE
IAM_ROLE_POLICY = base.IAM_ROLE_POLICY
S3_OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
BACKUP_PLAN = "aws:backup/plan:Plan"

RDS_MAX_BACKUP_RETENTION = 35
EXPORT_PRINCIPAL = "export.rds.amazonaws.com"
EXPORT_ROLE_TAG = ("regionpair:purpose", "rds-snapshot-export")
TIER_TAG = ("regionpair:retention-tier", "compliance")
EXPORT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject", "s3:GetBucketLocation")
COMPLIANCE_MIN_DAYS = 2555
VAULT_LOCK_MIN_COOLING_OFF_DAYS = 3
COLD_STORAGE_MIN_DAYS = 90

RDS_RETENTION_DOC = ("RDS User Guide, 'Backup retention period' (0 to 35 days for a DB instance); RDS API Reference, "
                     "CreateDBInstance/ModifyDBInstance BackupRetentionPeriod ('Must be a value from 0 to 35')")
EXPORT_DOC = ("RDS User Guide, 'Exporting DB snapshot data to Amazon S3 for Amazon RDS' (the role RDS assumes, the "
              "bucket in the snapshot's region); RDS API Reference, StartExportTask IamRoleArn (s3:PutObject*, "
              "s3:GetObject*, s3:ListBucket, s3:DeleteObject*, s3:GetBucketLocation on the bucket and its objects)")
LOCK_MODE_DOC = ("S3 User Guide, 'Locking objects with Object Lock', retention modes: in governance mode a user "
                 "with s3:BypassGovernanceRetention can delete a locked version; in compliance mode no user can, "
                 "the root user included, until the retention ends")
VAULT_LOCK_DOC = ("AWS Backup API Reference, PutBackupVaultLockConfiguration; CloudFormation "
                  "AWS::Backup::BackupVault LockConfigurationType, ChangeableForDays: 'AWS Backup enforces a 72-hour "
                  "cooling-off period … you must set ChangeableForDays to 3 or greater'")
COLD_STORAGE_DOC = ("AWS Backup API Reference, Lifecycle: backups transitioned to cold storage stay there at least 90 "
                    "days, DeleteAfterDays 'must be at least 90 days after' MoveToColdStorageAfterDays")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _doc(value: Any) -> Any:
    if isinstance(value, str) and value is not UNKNOWN:
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _tagged(r: Resource, tag: tuple[str, str]) -> bool:
    for key in ("tags", "tagsAll"):
        tags = r.props.get(key)
        if isinstance(tags, dict) and tags.get(tag[0]) == tag[1]:
            return True
    return False


# ---- resource checks ---------------------------------------------------------------------------


def check_rds_retention_max(r: Resource) -> list[str]:
    """RDS keeps automated backups 0 to 35 days: a longer automated tier cannot be declared."""
    if r.type != RDS_INSTANCE:
        return []
    days = r.props.get("backupRetentionPeriod")
    if _number(days) and days > RDS_MAX_BACKUP_RETENTION:
        return [f"{r.label}: backupRetentionPeriod {days:g} days; RDS keeps automated backups at most "
                f"{RDS_MAX_BACKUP_RETENTION} ({RDS_RETENTION_DOC}). Fix: backup_retention_period <= 35 (the automated "
                "tier is 30); keep longer with the manual tier (90 days) and the compliance archive (7 years)."]
    return []


def check_vault_lock(r: Resource) -> list[str]:
    """AWS Backup Vault Lock: a cooling-off of at least 3 days before it becomes immutable; min <= max."""
    if r.type != BACKUP_VAULT_LOCK:
        return []
    problems = []
    changeable, lo, hi = (r.props.get(k) for k in ("changeableForDays", "minRetentionDays", "maxRetentionDays"))
    if _number(changeable) and changeable < VAULT_LOCK_MIN_COOLING_OFF_DAYS:
        problems.append(f"{r.label}: changeableForDays {changeable:g}; AWS Backup needs at least "
                        f"{VAULT_LOCK_MIN_COOLING_OFF_DAYS} ({VAULT_LOCK_DOC}). Fix: changeable_for_days >= 3 (after "
                        "that date the lock is in compliance mode and cannot be changed or removed).")
    if _number(lo) and _number(hi) and lo > hi:
        problems.append(f"{r.label}: minRetentionDays {lo:g} above maxRetentionDays {hi:g}: every backup or copy job "
                        f"into the vault would fail ({VAULT_LOCK_DOC}). Fix: min_retention_days <= max_retention_days.")
    return problems


def check_backup_plan_cold_storage(r: Resource) -> list[str]:
    """AWS Backup lifecycles: deleted no sooner than 90 days after the move to cold storage."""
    if r.type != BACKUP_PLAN:
        return []
    problems = []
    for i, rule in enumerate(as_list(r.props.get("rules"))):
        lifecycles = [(f"rules[{i}].lifecycle", get(rule, "lifecycle"))]
        lifecycles += [(f"rules[{i}].copyActions[{j}].lifecycle", get(c, "lifecycle"))
                       for j, c in enumerate(as_list(get(rule, "copyActions")))]
        for where, lc in lifecycles:
            cold, delete = get(lc, "coldStorageAfter"), get(lc, "deleteAfter")
            if _number(cold) and _number(delete) and delete < cold + COLD_STORAGE_MIN_DAYS:
                problems.append(f"{r.label}: {where} deletes after {delete:g} days, {delete - cold:g} after the move "
                                f"to cold storage at {cold:g}; AWS Backup keeps cold backups at least "
                                f"{COLD_STORAGE_MIN_DAYS} days ({COLD_STORAGE_DOC}). Fix: delete_after >= "
                                f"{cold + COLD_STORAGE_MIN_DAYS:g}.")
    return problems


# ---- stack checks --------------------------------------------------------------------------------


def _role_policies(role: Resource, policies: list[Resource]) -> list[Resource]:
    names = {v for v in (role.props.get("name"), role.props.get("id")) if isinstance(v, str) and v}
    out = []
    for p in policies:
        ref = p.props.get("role")
        if (isinstance(ref, str) and ref in names) or role.urn in p.property_dependencies.get("role", ()):
            out.append(p)
    return out


def _statements(doc: Any) -> list[dict]:
    return [s for s in as_list((doc or {}).get("Statement")) if isinstance(s, dict)]


def _grants(statements: list[dict], action: str) -> bool:
    import fnmatch
    for s in statements:
        if s.get("Effect") != "Allow":
            continue
        if any(isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower())
               for a in as_list(s.get("Action"))):
            return True
    return False


IAM_CONDITION_DOC = ("IAM User Guide, 'IAM JSON policy elements: Condition operators': a negated operator such as "
                     "StringNotEquals is true when the key is absent, so untagged snapshots stay deletable")


def check_snapshot_delete_spares_compliance(r: Resource) -> list[str]:
    """Every statement allowing rds:DeleteDBSnapshot excludes the compliance tier by its tag: IAM itself
    refuses a runbook (or anyone with the role) deleting a compliance snapshot."""
    if r.type not in (IAM_ROLE_POLICY, "aws:iam/policy:Policy"):
        return []
    doc = _doc(r.props.get("policy"))
    if doc is None or doc is UNKNOWN:
        return []
    problems = []
    for i, s in enumerate(_statements(doc)):
        if s.get("Effect") != "Allow" or not _grants([s], "rds:DeleteDBSnapshot"):
            continue
        spared = (s.get("Condition") or {}).get("StringNotEquals") or {}
        if spared.get(f"aws:ResourceTag/{TIER_TAG[0]}") not in (TIER_TAG[1], [TIER_TAG[1]]):
            problems.append(f"{r.label}: statement {s.get('Sid') or i} allows rds:DeleteDBSnapshot without excluding "
                            f"the compliance tier, so the role can delete a 7-year compliance snapshot "
                            f"({IAM_CONDITION_DOC}). Fix: Condition StringNotEquals "
                            f"{{'aws:ResourceTag/{TIER_TAG[0]}': '{TIER_TAG[1]}'}}.")
    return problems


def check_export_role(resources: list[Resource]) -> list[Violation]:
    """The role the compliance archive's exports run as: RDS may assume it, and it may write the archive."""
    roles = [r for r in base.of_type(resources, IAM_ROLE) if _tagged(r, EXPORT_ROLE_TAG)]
    policies = base.of_type(resources, IAM_ROLE_POLICY)
    out = []
    for role in roles:
        trust = _doc(role.props.get("assumeRolePolicy"))
        if trust is not None and trust is not UNKNOWN:
            services = {svc for s in _statements(trust) if s.get("Effect") == "Allow"
                        and "sts:AssumeRole" in as_list(s.get("Action"))
                        for svc in as_list(get(s, "Principal", "Service"))}
            if EXPORT_PRINCIPAL not in services:
                out.append(Violation(role, f"{role.label}: the snapshot-export role is not assumable by "
                                     f"{EXPORT_PRINCIPAL} (it trusts {sorted(services) or 'no service'}), so "
                                     f"StartExportTask fails ({EXPORT_DOC}). Fix: assume_role_policy with Principal "
                                     f"Service {EXPORT_PRINCIPAL!r} and Action sts:AssumeRole."))
        mine = _role_policies(role, policies)
        docs = [_doc(p.props.get("policy")) for p in mine]
        if any(d is None or d is UNKNOWN for d in docs):
            continue  # computed during preview; `pulumi up` sees the document
        statements = [s for d in docs for s in _statements(d)]
        missing = [a for a in EXPORT_ACTIONS if not _grants(statements, a)]
        if missing:
            out.append(Violation(role, f"{role.label}: the snapshot-export role may not {', '.join(missing)}, which "
                                 f"an export into the archive needs ({EXPORT_DOC}). Fix: grant them on the archive "
                                 "bucket and its objects (components/retention.py export_role_policy)."))
    return out


def check_compliance_archive_lock(resources: list[Resource]) -> list[Violation]:
    """A compliance-tier bucket is locked in COMPLIANCE mode for the tier's 7 years."""
    buckets = [b for b in base.of_type(resources, base.S3_BUCKETS) if _tagged(b, TIER_TAG)]
    locks = base.of_type(resources, S3_OBJECT_LOCK)
    out = []
    for b in buckets:
        mine = base.configs_for(b, locks)
        if not mine:
            out.append(Violation(b, f"{b.label}: a compliance-tier bucket without an Object Lock configuration: anyone "
                                 f"allowed to delete versions can end the 7-year archive early ({LOCK_MODE_DOC}). Fix: "
                                 "BucketObjectLockConfiguration with default retention mode COMPLIANCE, days >= 2555."))
            continue
        for lock in mine:
            retention = get(lock.props, "rule", "defaultRetention")
            mode, days, years = (get(retention, k) for k in ("mode", "days", "years"))
            if isinstance(mode, str) and mode != "COMPLIANCE":
                out.append(Violation(lock, f"{lock.label}: the compliance archive is locked in {mode} mode, which a "
                                     f"user with s3:BypassGovernanceRetention can lift ({LOCK_MODE_DOC}). Fix: "
                                     "mode='COMPLIANCE'."))
            period = days if _number(days) else (years * 365 if _number(years) else None)
            if period is not None and period < COMPLIANCE_MIN_DAYS:
                out.append(Violation(lock, f"{lock.label}: the compliance archive is locked {period:g} days, less than "
                                     f"the tier's 7 years ({COMPLIANCE_MIN_DAYS} days, planning document 001), so its "
                                     f"versions can be deleted early ({LOCK_MODE_DOC}). Fix: days >= "
                                     f"{COMPLIANCE_MIN_DAYS} (backups.compliance_retention_days)."))
    return out


POLICIES = [
    base.resource_policy("rds-backup-retention-at-most-35",
                          f"Automated backups are kept at most {RDS_MAX_BACKUP_RETENTION} days ({RDS_RETENTION_DOC}).",
                          check_rds_retention_max),
    base.resource_policy("backup-vault-lock-cooling-off",
                          f"An AWS Backup Vault Lock has a cooling-off of at least 3 days and min <= max retention "
                          f"({VAULT_LOCK_DOC}).", check_vault_lock),
    base.resource_policy("backup-plan-cold-storage-90-days",
                          f"AWS Backup lifecycles delete no sooner than 90 days after the move to cold storage "
                          f"({COLD_STORAGE_DOC}).", check_backup_plan_cold_storage),
    base.resource_policy("iam-snapshot-delete-spares-compliance",
                          f"A role allowed rds:DeleteDBSnapshot may not delete compliance-tier snapshots "
                          f"({IAM_CONDITION_DOC}).", check_snapshot_delete_spares_compliance),
    base.stack_policy("rds-snapshot-export-role",
                       f"The snapshot-export role trusts {EXPORT_PRINCIPAL} and may write the archive bucket "
                       f"({EXPORT_DOC}).", base.ignoring_settings(check_export_role)),
    base.stack_policy("s3-compliance-archive-locked",
                       f"The compliance-tier bucket is under COMPLIANCE Object Lock for at least 7 years "
                       f"({LOCK_MODE_DOC}; planning document 001).", base.ignoring_settings(check_compliance_archive_lock)),
]
