# Over 500 lines (about 520), on purpose: the documented rules of one service with the documents and limits
# they quote; the replication-role and Object Lock stack checks share their role-policy readers.
"""What AWS documents about the S3 resources the stacks declare (lifecycle transitions, replication
rules and the replication role, Object Lock, bucket names, one configuration per bucket), as checks
and the policies that wrap them. Each check names the document its rule comes from;
``docs/stacks.md#aws-rules-s3`` lists them with where they are enforced and the test that shows each
refusing the broken form. They read props the way every check of the pack does (provider property
names, ``UNKNOWN`` for what a preview cannot know) and judge only what is known: a value computed by
the cloud is judged when ``pulumi up`` runs the pack again with it. (The pack's own S3 invariants,
versioning, SSE-KMS, public access blocks and replication time control: ``invariants.py`` and
``stack_invariants.py``.) Imported as ``policy.s3`` (tests and policy/__main__.py alike).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from .base import (
    IAM_ROLE,
    IAM_ROLE_POLICY,
    S3_BUCKETS,
    S3_ENCRYPTIONS,
    S3_REPLICATION,
    S3_VERSIONINGS,
    UNKNOWN,
    Resource,
    Violation,
    as_list,
    configs_for,
    get,
    ignoring_settings,
    is_number,
    is_set,
    of_type,
    refers_to,
    resource_policy,
    stack_policy,
)
from .iam_documents import is_role_named, policies_of, statement_allows, statements_or_none

# ---- pulumi-aws 7.x type tokens (checked against the installed provider in the tests) -------

S3_LIFECYCLES = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                 "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
S3_OBJECT_LOCKS = ("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                   "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2")

# ---- the documents ---------------------------------------------------------------------------

S3_LIFECYCLE_DOC = "S3 User Guide, 'Transitioning objects using Amazon S3 Lifecycle' (Constraints)"
S3_DEEP_ARCHIVE_GAP_DOC = ("the S3 API's PutBucketLifecycleConfiguration InvalidArgument \"'Days' in the 'Transition' "
                           "action for StorageClass 'DEEP_ARCHIVE' ... must be 90 days more than ... 'GLACIER'\" "
                           "(not stated in the User Guide; seen in public provider error reports)")
S3_REPLICATION_DOC = "S3 User Guide, 'Replication configuration' (Basic rule configuration, Filter)"
S3_DELETE_MARKER_DOC = "S3 API Reference, 'DeleteMarkerReplication'"
S3_REPLICA_KEY_DOC = ("S3 User Guide, 'Replicating objects created with server-side encryption (SSE) using AWS KMS' "
                      "(the key must be in the destination bucket's Region) and S3 API Reference "
                      "'EncryptionConfiguration' (ReplicaKmsKeyID: key ARN or alias ARN)")
S3_BUCKET_KEY_REPLICATION_DOC = ("S3 User Guide, 'Replicating objects created with server-side encryption (SSE) using "
                                 "AWS KMS', 'Amazon S3 Bucket Keys and replication'")
S3_REPLICATION_PERMISSIONS_DOC = "S3 User Guide, 'Setting up permissions' for live replication"
S3_SSE_KMS_PERMISSIONS_DOC = ("S3 User Guide, 'Replicating objects created with server-side encryption (SSE) using AWS "
                              "KMS', 'Granting additional permissions for the IAM role' (kms:Decrypt for the source "
                              "key, kms:Encrypt for the replica key)")
S3_OBJECT_LOCK_REPLICATION_DOC = ("S3 User Guide, 'Object Lock considerations', 'Using Object Lock with S3 Replication' "
                                  "(s3:GetObjectRetention and s3:GetObjectLegalHold on the source; s3:Get* satisfies it)")
S3_OBJECT_LOCK_DOC = ("S3 User Guide, 'Object Lock considerations' and 'Managing Object Lock' (retention up to 100 "
                      "years; no suspending versioning; replication needs Object Lock on the destination); S3 API "
                      "Reference 'DefaultRetention' (a mode and either Days or Years)")
S3_FORCE_DESTROY_DOC = ("a rule of this project, not an AWS constraint (S3 and the provider accept force_destroy on a "
                        "locked bucket): pulumi-aws aws.s3.Bucket 'force_destroy' (deletes objects before destroying) "
                        "against S3 User Guide 'Locking objects with Object Lock' (COMPLIANCE: no user, root "
                        "included, can delete a protected version), so the destroy would fail half-way")
S3_BUCKET_NAME_DOC = "S3 User Guide, 'General purpose bucket naming rules'"
S3_SINGLE_CONFIG_DOC = ("pulumi-aws aws.s3.BucketLifecycleConfiguration and aws.s3.BucketReplicationConfig (\"S3 Buckets "
                        "only support a single lifecycle/replication configuration ... perpetual difference\")")

# ---- limits, from those documents --------------------------------------------------------------

IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
TRANSITION_CLASSES = ("GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR")
MIN_IA_DAYS = 30
DEEP_ARCHIVE_AFTER_GLACIER_DAYS = 90
S3_IA_GAP_DOC = (f"{S3_LIFECYCLE_DOC}, 'Minimum 30-day storage charge for S3 Standard-IA and S3 One Zone-IA': no "
                 "single rule with an IA transition and a GLACIER/DEEP_ARCHIVE one less than 30 days later; \"the "
                 "same 30-day minimum applies\" from STANDARD_IA to ONEZONE_IA")
LIFECYCLE_GAPS = (
    *((ia, archive, MIN_IA_DAYS, S3_IA_GAP_DOC) for ia in IA_CLASSES for archive in ARCHIVE_CLASSES),
    ("STANDARD_IA", "ONEZONE_IA", MIN_IA_DAYS, S3_IA_GAP_DOC),
    ("GLACIER", "DEEP_ARCHIVE", DEEP_ARCHIVE_AFTER_GLACIER_DAYS, S3_DEEP_ARCHIVE_GAP_DOC),
)
"""Every ordered pair of storage classes S3 documents a minimum gap for, within one rule. Not here,
because no AWS page read says S3 refuses them (they are minimum storage CHARGES, or third-party
claims only): GLACIER_IR before GLACIER/DEEP_ARCHIVE (90-day minimum charge), STANDARD_IA before
INTELLIGENT_TIERING, INTELLIGENT_TIERING before ONEZONE_IA."""
NONCURRENT_GAPS = tuple((a, b) for a, b, _, _ in LIFECYCLE_GAPS if a != "GLACIER")
"""The IA gaps hold for noncurrent transitions too (the User Guide speaks of the transitions of one
rule, current or noncurrent alike); the DEEP_ARCHIVE-after-GLACIER gap is sourced for current
transitions ('Days' in the 'Transition' action) only."""
MAX_RETENTION_DAYS = 36500
MAX_RETENTION_YEARS = 100
REPLICATION_ROLE_ACTIONS = ("s3:GetReplicationConfiguration", "s3:ListBucket", "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionAcl", "s3:ReplicateObject", "s3:ReplicateDelete")
"""The User Guide's minimum permissions policy for live replication. Not s3:ReplicateTags (s3:ReplicateObject
covers tags), nor s3:GetObjectVersionTagging: without it "it replicates the objects, but not the object
tags" (same page), which S3 does not refuse. KMS permissions: only for SSE-KMS rules (a stack check)."""
LOCKED_SOURCE_ROLE_ACTIONS = ("s3:GetObjectRetention", "s3:GetObjectLegalHold")
"""For a source bucket with Object Lock, on the source (S3 User Guide, 'Using Object Lock with S3 Replication')."""
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
"""S3 User Guide, 'General purpose bucket naming rules' (sthree-configurator is covered by sthree-)."""
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
"""Same page: access point aliases, Object Lambda access point aliases, Multi-Region Access Points,
directory buckets, table buckets."""
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")


def bucket_name_problems(name: str) -> list[str]:
    """What is wrong with a bucket name by S3's naming rules (empty: nothing)."""
    problems = []
    if not _BUCKET_NAME.match(name):
        problems.append("3 to 63 characters of lowercase letters, digits, dots and hyphens, beginning and ending "
                        "with a letter or digit")
    if ".." in name:
        problems.append("no two adjacent dots")
    try:
        ipaddress.IPv4Address(name)
        problems.append("not formatted as an IP address")
    except ValueError:
        pass
    problems += [f"not starting with {p} (reserved)" for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)]
    problems += [f"not ending with {x} (reserved)" for x in RESERVED_BUCKET_SUFFIXES if name.endswith(x)]
    return problems


# =============================================================================================
# Resource checks: Resource -> list of sentences (each names the resource and the fix)
# =============================================================================================


def _where(rule: Any, i: int) -> str:
    rid = get(rule, "id")
    return f"rules[{i}] ({rid})" if isinstance(rid, str) else f"rules[{i}]"


def _gap_problems(where: str, days: Mapping[str, Any], kind: str, noncurrent: bool) -> list[str]:
    problems = []
    for earlier, later, gap, doc in LIFECYCLE_GAPS:
        if noncurrent and (earlier, later) not in NONCURRENT_GAPS:
            continue
        if earlier in days and later in days and days[later] - days[earlier] < gap:
            problems.append(f"{where} moves {kind} to {later} {days[later] - days[earlier]:g} days after {earlier}; "
                            f"one rule cannot do both within {gap} days ({doc}). Fix: the {later} transition at "
                            f"least {gap} days after the {earlier} one.")
    return problems


def check_lifecycle(r: Resource) -> list[str]:
    """Transitions S3 refuses (or a rule S3 refuses for them)."""
    if r.type not in S3_LIFECYCLES:
        return []
    problems = []
    for i, rule in enumerate(as_list(r.props.get("rules"))):
        where = f"{r.label}: {_where(rule, i)}"
        days: dict[str, Any] = {}
        for t in as_list(get(rule, "transitions")):
            cls, d = get(t, "storageClass"), get(t, "days")
            if isinstance(cls, str) and cls not in TRANSITION_CLASSES:
                problems.append(f"{where} transitions to {cls!r}; lifecycle cannot transition into S3 Standard or "
                                f"Reduced Redundancy ({S3_LIFECYCLE_DOC}). Fix: one of {', '.join(TRANSITION_CLASSES)}.")
            if isinstance(cls, str) and is_number(d):
                days[cls] = d
        for cls in IA_CLASSES:
            if cls in days and days[cls] < MIN_IA_DAYS:
                problems.append(f"{where} moves objects to {cls} after {days[cls]} days; S3 requires at least "
                                f"{MIN_IA_DAYS} days in S3 Standard first ({S3_LIFECYCLE_DOC}). "
                                f"Fix: days >= {MIN_IA_DAYS}.")
        problems += _gap_problems(where, days, "objects", noncurrent=False)
        noncurrent: dict[str, Any] = {}
        for t in as_list(get(rule, "noncurrentVersionTransitions")):
            cls, d = get(t, "storageClass"), get(t, "noncurrentDays")
            if isinstance(cls, str) and is_number(d):
                noncurrent[cls] = d
            if cls in IA_CLASSES and is_number(d) and d < MIN_IA_DAYS:
                problems.append(f"{where} moves noncurrent versions to {cls} after {d} days; S3 transitions only "
                                f"versions noncurrent for at least {MIN_IA_DAYS} days ({S3_LIFECYCLE_DOC}). "
                                f"Fix: noncurrent_days >= {MIN_IA_DAYS}.")
        problems += _gap_problems(where, noncurrent, "noncurrent versions", noncurrent=True)
    return problems


def _filter_has_tags(rule: Any) -> bool:
    return is_set(get(rule, "filter", "tag")) or is_set(get(rule, "filter", "and", "tags"))


def check_replication_rules(r: Resource) -> list[str]:
    """The rule shape S3 requires of a filter-based (V2) replication rule, and a usable replica key."""
    if r.type != S3_REPLICATION:
        return []
    problems = []
    for i, rule in enumerate(as_list(r.props.get("rules"))):
        where = f"{r.label}: {_where(rule, i)}"
        if isinstance(rule, Mapping) and "filter" in rule and rule.get("filter") is not None:
            if not is_set(get(rule, "deleteMarkerReplication", "status")):
                problems.append(f"{where} has a filter but no deleteMarkerReplication; S3 requires it with a filter "
                                f"({S3_REPLICATION_DOC}). Fix: delete_marker_replication={{status: 'Enabled'}} "
                                "(or 'Disabled').")
            if not is_set(get(rule, "priority")):
                problems.append(f"{where} has a filter but no priority; S3 requires it with a filter "
                                f"({S3_REPLICATION_DOC}). Fix: priority=<a number, unique among the rules>.")
            if _filter_has_tags(rule) and get(rule, "deleteMarkerReplication", "status") == "Enabled":
                problems.append(f"{where} filters on tags and replicates delete markers; S3 does not replicate delete "
                                f"markers for tag-based rules ({S3_DELETE_MARKER_DOC}). Fix: delete_marker_replication="
                                "{status: 'Disabled'}, or filter on a prefix.")
        key = get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId")
        if isinstance(key, str) and key and not _KMS_ARN.match(key):
            problems.append(f"{where} names the replica key {key!r}, which is not a KMS key or alias ARN; S3 needs "
                            f"the ARN of a key in the destination's Region ({S3_REPLICA_KEY_DOC}). Fix: "
                            "replica_kms_key_id=<the DR region's key ARN>.")
    return problems


def check_object_lock(r: Resource) -> list[str]:
    if r.type not in S3_OBJECT_LOCKS:
        return []
    problems = []
    enabled = r.props.get("objectLockEnabled")
    if isinstance(enabled, str) and enabled != "Enabled":
        problems.append(f"{r.label}: objectLockEnabled is {enabled!r}; the only value is 'Enabled' and Object Lock "
                        f"cannot be turned off on a bucket ({S3_OBJECT_LOCK_DOC}). Fix: object_lock_enabled='Enabled'.")
    retention = get(r.props, "rule", "defaultRetention")
    if retention is None or retention is UNKNOWN:
        return problems
    mode, d, y = get(retention, "mode"), get(retention, "days"), get(retention, "years")
    if mode is None or (isinstance(mode, str) and mode not in ("GOVERNANCE", "COMPLIANCE")):
        problems.append(f"{r.label}: default retention mode is {mode!r} ({S3_OBJECT_LOCK_DOC}). "
                        "Fix: mode='COMPLIANCE' (or 'GOVERNANCE').")
    if is_set(d) == is_set(y):
        problems.append(f"{r.label}: default retention sets {'both' if is_set(d) else 'neither of'} days and years; "
                        f"S3 takes exactly one ({S3_OBJECT_LOCK_DOC}). Fix: days=<1..{MAX_RETENTION_DAYS}> only.")
    if is_number(d) and not 1 <= d <= MAX_RETENTION_DAYS:
        problems.append(f"{r.label}: default retention of {d} days; the retention period is 1 day to 100 years "
                        f"({S3_OBJECT_LOCK_DOC}). Fix: days between 1 and {MAX_RETENTION_DAYS}.")
    if is_number(y) and not 1 <= y <= MAX_RETENTION_YEARS:
        problems.append(f"{r.label}: default retention of {y} years; the retention period is at most 100 years "
                        f"({S3_OBJECT_LOCK_DOC}). Fix: years between 1 and {MAX_RETENTION_YEARS}.")
    return problems


def check_bucket_name(r: Resource) -> list[str]:
    if r.type not in S3_BUCKETS:
        return []
    name = r.props.get("bucket")
    if not isinstance(name, str) or not name:
        return []  # computed (e.g. from the account id): judged when `pulumi up` knows it
    problems = bucket_name_problems(name)
    if not problems:
        return []
    return [f"{r.label}: bucket name {name!r} breaks S3's naming rules ({S3_BUCKET_NAME_DOC}): it must be "
            f"{'; '.join(problems)}. Fix: choose a name that is."]


def _resources(statement: Mapping[str, Any]) -> list[str]:
    return [x for x in as_list(statement.get("Resource")) if isinstance(x, str)]


def check_replication_role_policy(r: Resource) -> list[str]:
    """A role policy that replicates objects (grants s3:ReplicateObject) has the S3 permissions every
    live replication needs. What only some replications need (KMS keys, Object Lock) is judged with
    the replication configuration, by the stack checks below."""
    if r.type != IAM_ROLE_POLICY:
        return []
    statements = statements_or_none(r.props.get("policy"))
    if not statements or not any(statement_allows(s, "s3:ReplicateObject") for s in statements):
        return []
    missing = [a for a in REPLICATION_ROLE_ACTIONS if not any(statement_allows(s, a) for s in statements)]
    if not missing:
        return []
    return [f"{r.label}: a replication role without {', '.join(missing)}; without them S3 cannot read the "
            f"configuration, the versions or their ACLs, or replicate deletes ({S3_REPLICATION_PERMISSIONS_DOC}). "
            "Fix: grant them on the source bucket, its objects and the destination's objects."]


# =============================================================================================
# Stack checks: list of Resources -> list of Violations
# =============================================================================================


def _grants(statements: list[Mapping[str, Any]], action: str, resource: str | None = None) -> bool:
    """Does an Allow statement grant ``action`` (on ``resource``, when given: its Resource patterns,
    with IAM wildcards, any partition)?"""
    def arn(value: str) -> str:
        return re.sub(r"^arn:aws[a-z-]*:", "arn:aws:", value)
    return any(statement_allows(s, action) and (resource is None or any(
        fnmatch.fnmatchcase(arn(resource), arn(pattern)) for pattern in _resources(s))) for s in statements)


def _role_statements(rc: Resource, resources: list[Resource]) -> list[Mapping[str, Any]] | None:
    """The statements of the inline policies of the role a replication configuration names (by its
    ARN, or in a preview by the engine's dependencies); None when this stack does not declare the
    role or its policies are not known yet (judged when `pulumi up` runs the pack again)."""
    arn = rc.props.get("role")
    for role in of_type(resources, IAM_ROLE):
        named = isinstance(arn, str) and ":role/" in arn and is_role_named(role, arn.rsplit("/", 1)[-1])
        if not named and not (arn is UNKNOWN and role.urn in rc.property_dependencies.get("role", ())):
            continue
        docs = [statements_or_none(rp.props.get("policy"))
                for rp in policies_of(role, of_type(resources, IAM_ROLE_POLICY))]
        if not docs or any(d is None for d in docs):
            return None
        return [s for d in docs if d is not None for s in d]
    return None


def _bucket_key_enabled(bucket: Resource, encryptions: list[Resource]) -> bool:
    if any(get(rule, "bucketKeyEnabled") is True
           for e in configs_for(bucket, encryptions) for rule in as_list(e.props.get("rules"))):
        return True
    return get(bucket.props, "serverSideEncryptionConfiguration", "rule", "bucketKeyEnabled") is True


def check_replication_role_kms(resources: list[Resource]) -> list[Violation]:
    """The role of a replication rule that replicates SSE-KMS objects may decrypt them and encrypt the
    replicas; into a destination with an S3 Bucket Key, it may also decrypt with the replica key."""
    buckets = of_type(resources, S3_BUCKETS)
    encryptions = of_type(resources, S3_ENCRYPTIONS)
    violations: list[Violation] = []
    for rc in of_type(resources, S3_REPLICATION):
        statements = _role_statements(rc, resources)
        if statements is None:
            continue
        for i, rule in enumerate(as_list(rc.props.get("rules"))):
            if get(rule, "status") == "Disabled":
                continue
            sse_kms = get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects", "status")
            replica_key = get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId")
            if sse_kms not in ("Enabled", UNKNOWN) and not is_set(replica_key):
                continue  # replicates no SSE-KMS objects: the role needs no key
            # an alias ARN: IAM judges the key it resolves to, which this run cannot tell
            key = replica_key if isinstance(replica_key, str) and replica_key and ":alias/" not in replica_key else None
            where = f"{rc.label}: {_where(rule, i)}"
            missing = ([] if _grants(statements, "kms:Decrypt") else ["kms:Decrypt (the source objects' key)"]) + (
                [] if _grants(statements, "kms:Encrypt", key) else [f"kms:Encrypt on {key or 'the replica key'}"])
            if missing:
                violations.append(Violation(rc, f"{where} replicates SSE-KMS objects, but its role may not "
                                            f"{' and '.join(missing)} ({S3_SSE_KMS_PERMISSIONS_DOC}). Fix: grant them "
                                            "in the role's policy, with kms:ViaService conditions."))
            dests = [b for b in buckets if refers_to(rc, "rules", get(rule, "destination", "bucket"), b)]
            keyed = [b for b in dests if _bucket_key_enabled(b, encryptions)]
            if not keyed:
                continue  # no S3 Bucket Key on the destination: Encrypt alone is what S3 documents
            keys = [key] if key else sorted({k for s in statements if statement_allows(s, "kms:Encrypt") for k in _resources(s)})
            for k in keys:
                if _grants(statements, "kms:Encrypt", k) and not _grants(statements, "kms:Decrypt", k):
                    violations.append(Violation(rc, f"{where} encrypts replicas with {k} into {keyed[0].name}, which "
                                                "has an S3 Bucket Key, but its role may not kms:Decrypt with that "
                                                f"key; S3 calls Decrypt with the replica key then "
                                                f"({S3_BUCKET_KEY_REPLICATION_DOC}). Fix: grant kms:Decrypt on {k} "
                                                "(through S3 of the destination's Region, the destination bucket's "
                                                "context)."))
    return violations


def _lock_mode(lock: Resource) -> Any:
    return get(lock.props, "rule", "defaultRetention", "mode")


def check_object_lock_buckets(resources: list[Resource]) -> list[Violation]:
    """A locked bucket stays versioned, can be destroyed by what declares it, and replicates only to
    a locked bucket."""
    buckets = of_type(resources, S3_BUCKETS)
    locks = of_type(resources, S3_OBJECT_LOCKS)
    versionings = of_type(resources, S3_VERSIONINGS)
    violations: list[Violation] = []
    locked: list[Resource] = []
    for b in buckets:
        mine = configs_for(b, locks)
        if not mine and b.props.get("objectLockEnabled") is not True:
            continue
        locked.append(b)
        if b.props.get("forceDestroy") is True and any(_lock_mode(lk) == "COMPLIANCE" for lk in mine):
            violations.append(Violation(b, f"{b.label}: forceDestroy with a COMPLIANCE-mode Object Lock: destroying the "
                                        "stack empties the bucket first, and S3 refuses to delete a version under "
                                        f"COMPLIANCE retention, so the destroy fails ({S3_FORCE_DESTROY_DOC}). Fix: "
                                        "force_destroy=False for a locked bucket, or no Object Lock on a bucket a "
                                        "drill destroys."))
        for v in configs_for(b, versionings):
            if get(v.props, "versioningConfiguration", "status") == "Suspended":
                violations.append(Violation(v, f"{v.label}: suspends versioning of {b.name}, which has Object Lock; "
                                            f"S3 does not allow that ({S3_OBJECT_LOCK_DOC}). Fix: status='Enabled'."))
        if mine and b.props.get("objectLockEnabled") is not True and not any(
                get(v.props, "versioningConfiguration", "status") in ("Enabled", UNKNOWN)
                for v in configs_for(b, versionings)):
            violations.append(Violation(b, f"{b.label}: an Object Lock configuration on a bucket created without "
                                        "object_lock_enabled and not versioned; S3 enables Object Lock on an existing "
                                        f"bucket only once it is versioned ({S3_OBJECT_LOCK_DOC}). Fix: "
                                        "object_lock_enabled=True on the bucket."))
    for rc in of_type(resources, S3_REPLICATION):
        sources = [b for b in locked if refers_to(rc, "bucket", rc.props.get("bucket"), b)]
        if not sources:
            continue
        statements = _role_statements(rc, resources)
        source_name = sources[0].props.get("bucket")
        objects = f"arn:aws:s3:::{source_name}/any-key" if isinstance(source_name, str) and source_name else None
        missing = [a for a in LOCKED_SOURCE_ROLE_ACTIONS
                   if statements is not None and not _grants(statements, a, objects)]
        if missing:
            violations.append(Violation(rc, f"{rc.label}: replicates the Object Lock bucket {sources[0].name}, but its "
                                        f"role may not {' and '.join(missing)} on its objects "
                                        f"({S3_OBJECT_LOCK_REPLICATION_DOC}). Fix: grant them on the source bucket's "
                                        "objects in the replication role's policy."))
        for i, rule in enumerate(as_list(rc.props.get("rules"))):
            dest = get(rule, "destination", "bucket")
            targets = [b for b in buckets if refers_to(rc, "rules", dest, b) and b not in sources]
            for t in targets:
                if t not in locked:
                    violations.append(Violation(rc, f"{rc.label}: rules[{i}] replicates the Object Lock bucket "
                                                f"{sources[0].name} to {t.name}, which has no Object Lock; S3 requires "
                                                f"it on the destination ({S3_OBJECT_LOCK_DOC}). Fix: create the "
                                                "destination with object_lock_enabled=True."))
    return violations


def check_single_bucket_configurations(resources: list[Resource]) -> list[Violation]:
    """One lifecycle and one replication configuration per bucket: S3 keeps one of each, so two
    declared configurations overwrite each other on every `pulumi up`."""
    violations = []
    for kind, types in (("lifecycle", S3_LIFECYCLES), ("replication", (S3_REPLICATION,))):
        by_bucket: dict[str, list[Resource]] = {}
        for c in of_type(resources, types):
            bucket = c.props.get("bucket")
            if isinstance(bucket, str) and bucket:
                by_bucket.setdefault(bucket, []).append(c)
        for bucket, configs in sorted(by_bucket.items()):
            if len(configs) > 1:
                names = ", ".join(c.name for c in configs)
                violations.append(Violation(configs[1], f"{configs[1].label}: bucket {bucket} has {len(configs)} {kind} "
                                            f"configurations ({names}); S3 keeps one, so each `pulumi up` replaces the "
                                            f"other ({S3_SINGLE_CONFIG_DOC}). Fix: put all rules in one {kind} "
                                            "configuration."))
    return violations


# ---- the policies ---------------------------------------------------------------------------

RESOURCE_POLICIES: list[Any] = [
    resource_policy("s3-lifecycle-transitions-valid",
                    f"S3 lifecycle transitions S3 accepts: at least {MIN_IA_DAYS} days before STANDARD_IA/ONEZONE_IA "
                    f"(current and noncurrent), and, within one rule, {MIN_IA_DAYS} days between them and an "
                    f"archive class and from STANDARD_IA to ONEZONE_IA (current and noncurrent), DEEP_ARCHIVE at "
                    f"least {DEEP_ARCHIVE_AFTER_GLACIER_DAYS} days after GLACIER (current). Sources: "
                    f"{S3_IA_GAP_DOC}; {S3_DEEP_ARCHIVE_GAP_DOC}.",
                    check_lifecycle),
    resource_policy("s3-replication-rule-shape",
                    "Filter-based replication rules carry a priority and deleteMarkerReplication (Disabled with "
                    "tag filters); the replica key is a KMS ARN. Sources: "
                    f"{S3_REPLICATION_DOC}; {S3_DELETE_MARKER_DOC}; {S3_REPLICA_KEY_DOC}.",
                    check_replication_rules),
    resource_policy("s3-object-lock-retention-valid",
                    f"Object Lock default retention: GOVERNANCE or COMPLIANCE, exactly one of days/years, at most "
                    f"100 years. Source: {S3_OBJECT_LOCK_DOC}.",
                    check_object_lock),
    resource_policy("s3-bucket-name-valid", f"Bucket names follow {S3_BUCKET_NAME_DOC}.", check_bucket_name),
    resource_policy("s3-replication-role-permissions",
                    "A replication role may read the source's configuration, versions and ACLs, and replicate "
                    "objects and deletes (not required: s3:GetObjectVersionTagging, without which S3 replicates "
                    f"objects without their tags). Source: {S3_REPLICATION_PERMISSIONS_DOC}.",
                    check_replication_role_policy),
]

STACK_POLICIES: list[Any] = [
    stack_policy("s3-object-lock-bucket-consistent",
                 "A bucket under Object Lock stays versioned and replicates only to a locked bucket, with a role "
                 "that may s3:GetObjectRetention and s3:GetObjectLegalHold on it; and (a project rule, not an AWS "
                 "constraint) is not force-destroyed under COMPLIANCE retention. Sources: "
                 f"{S3_OBJECT_LOCK_DOC}; {S3_OBJECT_LOCK_REPLICATION_DOC}; {S3_FORCE_DESTROY_DOC}.",
                 ignoring_settings(check_object_lock_buckets)),
    stack_policy("s3-replication-role-kms-permissions",
                 "The role of a replication rule that replicates SSE-KMS objects (sseKmsEncryptedObjects Enabled "
                 "or a replica key) may kms:Decrypt and kms:Encrypt with the replica key; only when the "
                 "destination's encryption configuration enables an S3 Bucket Key, also kms:Decrypt with the "
                 f"replica key. Sources: {S3_SSE_KMS_PERMISSIONS_DOC}; {S3_BUCKET_KEY_REPLICATION_DOC}.",
                 ignoring_settings(check_replication_role_kms)),
    stack_policy("s3-one-configuration-per-bucket",
                 f"A bucket has one lifecycle and one replication configuration. Source: {S3_SINGLE_CONFIG_DOC}.",
                 ignoring_settings(check_single_bucket_configurations)),
]

POLICIES: list[Any] = RESOURCE_POLICIES + STACK_POLICIES
