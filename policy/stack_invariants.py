"""The pack's own DR invariants over a whole stack: pure checks over the stack's resources (and,
for the dr stack, its config: ``base.StackSettings``) that return ``base.Violation``s. Every bucket
versioned, KMS-encrypted and behind a full public access block; in the dr stack, every prod primary
database replicated. ``rules.py`` wraps them into the pack's policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from . import invariants
from .base import (
    MSK_REPLICATOR,
    RDS_BACKUP_REPLICATION,
    RDS_INSTANCE,
    ROUTE53_RECORD,
    S3_BUCKETS,
    S3_ENCRYPTIONS,
    S3_PUBLIC_ACCESS_BLOCK,
    S3_REPLICATION,
    S3_VERSIONINGS,
    STACK_REFERENCE,
    UNKNOWN,
    Resource,
    StackSettings,
    Violation,
    as_list,
    configs_for,
    contract_documents,
    get,
    is_replica,
    of_type,
    refers_to,
)


def _versioned(bucket: Resource, versionings: list[Resource]) -> bool:
    for v in configs_for(bucket, versionings):
        if get(v.props, "versioningConfiguration", "status") in ("Enabled", UNKNOWN):
            return True
    # the deprecated inline form on the bucket itself
    return get(bucket.props, "versioning", "enabled") is True


def check_buckets_versioned(resources: list[Resource]) -> list[Violation]:
    """Every bucket is versioned, and so is every bucket a replication configuration reads from or
    writes to (S3 refuses replication otherwise, and an unversioned bucket cannot undelete)."""
    buckets = of_type(resources, S3_BUCKETS)
    versionings = of_type(resources, S3_VERSIONINGS)
    violations = []
    for b in buckets:
        if not _versioned(b, versionings):
            violations.append(Violation(b, f"{b.label}: the bucket is not versioned; deleted or overwritten objects "
                                        "cannot be recovered and replication cannot be configured. Fix: declare "
                                        "aws.s3.BucketVersioning(bucket=<this bucket>, versioning_configuration="
                                        "{status: 'Enabled'})."))
    for rc in of_type(resources, S3_REPLICATION):
        source = rc.props.get("bucket")
        source_buckets = [b for b in buckets if refers_to(rc, "bucket", source, b)]
        # A source bucket of another stack (the dr stack configures replication on prod's bucket) is
        # versioned by that stack's own run of this policy.
        for b in source_buckets:
            if not _versioned(b, versionings):
                violations.append(Violation(rc, f"{rc.label}: replicates from {b.name}, which is not versioned. "
                                            "Fix: declare aws.s3.BucketVersioning for it with status 'Enabled'."))
        for i, rule in enumerate(as_list(rc.props.get("rules"))):
            dest = get(rule, "destination", "bucket")
            if dest is UNKNOWN:
                candidates = [b for b in buckets if b.urn in rc.property_dependencies.get("rules", ())
                              and b not in source_buckets]
            else:
                candidates = [b for b in buckets if refers_to(rc, "rules", dest, b)]
            if not candidates:
                if dest is UNKNOWN and not rc.property_dependencies:
                    continue  # nothing to match on during this preview; `pulumi up` sees the ARN
                violations.append(Violation(rc, f"{rc.label}: rules[{i}] replicates to {dest!r}, which is not a "
                                            "bucket of this stack, so its versioning cannot be verified. Fix: "
                                            "replicate to the DR bucket this stack declares (versioned)."))
            for b in candidates:
                if not _versioned(b, versionings):
                    violations.append(Violation(rc, f"{rc.label}: rules[{i}] replicates to {b.name}, which is not "
                                                "versioned. Fix: declare aws.s3.BucketVersioning for it with "
                                                "status 'Enabled'."))
    return violations


def _kms_encrypted(bucket: Resource, encryptions: list[Resource]) -> bool:
    for e in configs_for(bucket, encryptions):
        rules = as_list(e.props.get("rules"))
        if rules and all(not invariants.sse_rule_problems(e, "", rule) for rule in rules):
            return True
    inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule")
    return inline is not None and not invariants.sse_rule_problems(bucket, "", inline)


def check_buckets_kms_encrypted(resources: list[Resource]) -> list[Violation]:
    encryptions = of_type(resources, S3_ENCRYPTIONS)
    return [Violation(b, f"{b.label}: no SSE-KMS encryption configuration with a customer key names this bucket "
                         "(without one S3 uses SSE-S3 keys this project does not control). Fix: declare "
                         "aws.s3.BucketServerSideEncryptionConfiguration(bucket=<this bucket>, rules=[{"
                         "apply_server_side_encryption_by_default: {sse_algorithm: 'aws:kms', kms_master_key_id: "
                         "<customer key ARN>}, bucket_key_enabled: True}]).")
            for b in of_type(resources, S3_BUCKETS) if not _kms_encrypted(b, encryptions)]


def check_buckets_public_access_blocked(resources: list[Resource]) -> list[Violation]:
    blocks = of_type(resources, S3_PUBLIC_ACCESS_BLOCK)
    violations = []
    for b in of_type(resources, S3_BUCKETS):
        mine = configs_for(b, blocks)
        if not any(not invariants.check_public_access_block(p) for p in mine):
            violations.append(Violation(b, f"{b.label}: no public access block with all four settings True names "
                                        "this bucket. Fix: declare aws.s3.BucketPublicAccessBlock(bucket=<this "
                                        "bucket>, block_public_acls=True, block_public_policy=True, "
                                        "ignore_public_acls=True, restrict_public_buckets=True)."))
    return violations


_DR_MARKERS = (STACK_REFERENCE, RDS_BACKUP_REPLICATION, MSK_REPLICATOR, S3_REPLICATION)


def looks_like_dr_stack(resources: list[Resource]) -> bool:
    """Without the stack config: the dr stack is the one that reads prod (a StackReference) and owns
    the cross-region links (replicas, backup replication, the replicator, S3 replication, SECONDARY)."""
    for r in resources:
        if r.type in _DR_MARKERS:
            return True
        if r.type == RDS_INSTANCE and is_replica(r):
            return True
        if r.type == ROUTE53_RECORD and "SECONDARY" in [get(p, "type") for p in
                                                         as_list(r.props.get("failoverRoutingPolicies"))]:
            return True
    return False


def prod_primaries(resources: list[Resource]) -> Optional[dict[str, str]]:
    """The primary databases prod exports (logical name → ARN), read from the outputs document a
    StackReference carries; None when no such document is visible (e.g. unknown during preview)."""
    found: dict[str, str] = {}
    seen = False
    for ref in of_type(resources, STACK_REFERENCE):
        for doc in contract_documents(ref.props.get("outputs")):
            seen = True
            for region in (doc.get("regions") or {}).values():
                if not isinstance(region, Mapping) or region.get("role") != "primary":
                    continue
                for name, db in (region.get("databases") or {}).items():
                    if isinstance(db, Mapping) and db.get("role") == "primary" and isinstance(db.get("arn"), str):
                        found[name] = db["arn"]
    return found if seen else None


def check_dr_databases_replicated(resources: list[Resource], settings: StackSettings) -> list[Violation]:
    """In the dr stack: every primary database of prod has a cross-region read replica here (an RDS
    instance with ``replicateSourceDb`` = the primary's ARN) and an automated-backups replication of
    the same primary (PITR in DR). After a failover (``promoted: true``) the promoted database is a
    standalone instance and is accepted as such; the primary checks (retention, deletion protection,
    encryption) apply to it."""
    if settings.role == "primary":
        return []
    if settings.role is None and not looks_like_dr_stack(resources):
        return []
    instances = of_type(resources, RDS_INSTANCE)
    replicas = [i for i in instances if is_replica(i)]
    standalone = [i for i in instances if not is_replica(i)]
    backups = of_type(resources, RDS_BACKUP_REPLICATION)
    violations: list[Violation] = []
    if settings.promoted:
        if not instances:
            violations.append(Violation(None, "the dr stack is promoted (regionpair:promoted: true) but declares no "
                                        "database; the promoted instance must stay declared under its logical name "
                                        "or the next `pulumi up` deletes it. Fix: restore the database component."))
        return violations
    if not replicas:
        violations.append(Violation(None, "the dr stack declares no read replica (aws:rds/instance:Instance with "
                                    "replicateSourceDb), so prod's primary database has no copy in DR. Fix: declare "
                                    "the replica with replicate_source_db=<prod primary ARN from the StackReference>; "
                                    "if DR has been promoted after a failover, set regionpair:promoted: true in "
                                    "Pulumi.dr.yaml instead."))
    for s in standalone:
        violations.append(Violation(s, f"{s.label}: a standalone database in the dr stack while it is not promoted "
                                    "receives nothing from prod. Fix: set replicate_source_db=<prod primary ARN>, or "
                                    "set regionpair:promoted: true if this is the database promoted in a failover."))
    sources: dict[str, Resource] = {}
    for rep in replicas:
        source = rep.props.get("replicateSourceDb")
        if isinstance(source, str) and not source.startswith("arn:"):
            violations.append(Violation(rep, f"{rep.label}: replicateSourceDb is {source!r}; a cross-region replica "
                                        "must name its source by ARN. Fix: replicate_source_db=<prod primary ARN>."))
        if isinstance(source, str):
            sources[source] = rep
        matched = [b for b in backups if b.props.get("sourceDbInstanceArn") in (source, UNKNOWN) or source is UNKNOWN]
        if not matched:
            violations.append(Violation(rep, f"{rep.label}: no automated-backups replication of its source "
                                        f"{source!r} in DR, so point-in-time restore is impossible there after a "
                                        "failover. Fix: declare aws.rds.InstanceAutomatedBackupsReplication("
                                        "source_db_instance_arn=<the same primary ARN>, kms_key_id=<DR key ARN>)."))
    primaries = prod_primaries(resources)
    if primaries:
        for name, arn in sorted(primaries.items()):
            if arn not in sources and UNKNOWN not in [r.props.get("replicateSourceDb") for r in replicas]:
                violations.append(Violation(None, f"prod's primary database {name!r} ({arn}) has no read replica in "
                                            "the dr stack. Fix: add it to the dr stack's databases so a replica "
                                            "with replicate_source_db set to that ARN is declared."))
    return violations


