# Over 500 lines, on purpose for now: the value model, the per-resource checks and the registry that the
# area modules and the tests reach as `rules.X` (~300 references); the split (values / checks / registry,
# ending the rules <-> area-module import cycle) waits until the restructure wave's merges are in.
"""The DR invariants of regionpair, as CrossGuard (pulumi-policy) policies.

Two layers:

* pure check functions over a resource's type token and its props, named with the provider's
  property names (camelCase: ``storageEncrypted``, ``kmsKeyId``, ``replicateSourceDb``), which is
  what the policy SDK hands a validator. They return plain sentences, each naming the resource
  and the fix, and are unit-tested directly;
* the ``ResourceValidationPolicy`` / ``StackValidationPolicy`` objects in ``POLICIES`` that wrap
  them for the SDK.

Importing this module has no side effect. Only ``policy/__main__.py`` constructs the
``PolicyPack`` (its constructor starts a gRPC server and never returns).

Values that are computed by the cloud (a key's ARN, a bucket's id) are unknown during
``pulumi preview``. A check that only needs to know a value *will be set* treats an unknown as
set; a check that needs the value itself skips it during preview, and the same policy sees the
resolved value when ``pulumi up`` runs it again just before the resource is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

try:  # the CDC area's checks (policy/cdc.py): a package in the tests, a plain module under the CLI
    from policy import cdc as _cdc
except ImportError:
    import cdc as _cdc  # type: ignore[no-redef]

PACK_NAME = "regionpair-dr-invariants"
PROJECT = "regionpair"
"""The Pulumi project whose stack config (``regionpair:role``, ``regionpair:promoted``) the
stack-level policies read."""

# ---- pulumi-aws 7.x type tokens (checked against the installed provider in the tests) -------

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_BACKUP_REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
                          "InstanceAutomatedBackupsReplication")
MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_CONFIGURATION = "aws:msk/configuration:Configuration"
MSK_REPLICATOR = "aws:msk/replicator:Replicator"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning",
                  "aws:s3/bucketVersioningV2:BucketVersioningV2")
S3_ENCRYPTIONS = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SNS_TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
ROUTE53_RECORD = "aws:route53/record:Record"
STACK_REFERENCE = "pulumi:pulumi:StackReference"

# ---- pulumi-kubernetes 4.x workload types, and where each keeps its pod spec -----------------
K8S_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
}

MIN_BACKUP_RETENTION_DAYS = 7
RTC_MINUTES = 15
MIN_REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


# ---- values: plain Python, with one marker for "computed, unknown during preview" -----------


class _Unknown:
    _instance: Optional["_Unknown"] = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<computed>"

    def __bool__(self) -> bool:  # an unknown is never mistaken for a literal True
        return False


UNKNOWN = _Unknown()
"""A value the engine cannot know during preview (an output of another resource)."""

_SENTINELS = frozenset((UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
                        UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE))


def plain(value: Any) -> Any:
    """The SDK's props (proxies that raise on unknown values, secrets) as plain dicts and lists,
    with every unknown replaced by ``UNKNOWN``. Works on plain dicts too."""
    if isinstance(value, Secret):
        value = value.value
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                item = value[key]
            except UnknownValueError:
                out[key] = UNKNOWN
            else:
                out[key] = plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                item = value[i]
            except UnknownValueError:
                items.append(UNKNOWN)
            else:
                items.append(plain(item))
        return items
    return value


def document(value: Any) -> Optional[Mapping[str, Any]]:
    """A JSON document (a policy, a config object) given as JSON text or a mapping; None when it is
    neither (unknown during a preview, or not an object)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def get(props: Any, *path: Any) -> Any:
    """``props[path[0]][path[1]]…``; None when any step is missing, UNKNOWN when a step is unknown.
    A one-element list on the way is looked into (the provider models single blocks as lists)."""
    value = props
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(key, str) and isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return None
            value = value[key]
        elif isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value


def is_set(value: Any) -> bool:
    """Declared with a value (an unknown counts: it will be set to whatever it is computed to)."""
    if value is UNKNOWN:
        return True
    return value is not None and value != "" and value != [] and value != {}


def as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aws_managed_key(value: Any) -> bool:
    """``alias/aws/rds`` and the like: a key AWS owns, whose policy nobody here can change."""
    return isinstance(value, str) and ("alias/aws/" in value)


@dataclass(frozen=True)
class Resource:
    """What a check sees of one resource: the type token, the logical name, the URN and the props
    (provider property names), plus which resources each property was computed from."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type})"

    @classmethod
    def of(cls, args: Any) -> "Resource":
        """From the SDK's ResourceValidationArgs or PolicyResource."""
        deps: dict[str, tuple[str, ...]] = {}
        for prop, resources in (getattr(args, "property_dependencies", None) or {}).items():
            deps[prop] = tuple(r.urn for r in resources)
        return cls(type=args.resource_type, name=args.name, props=plain(args.props), urn=args.urn,
                   property_dependencies=deps)


@dataclass(frozen=True)
class Violation:
    resource: Optional[Resource]
    message: str

    @property
    def urn(self) -> Optional[str]:
        return self.resource.urn if self.resource is not None and self.resource.urn else None


def _key_problems(r: Resource, prop: str, what: str, fix: str) -> list[str]:
    """A customer-managed KMS key must be named in ``prop``."""
    value = r.props.get(prop)
    if not is_set(value):
        return [f"{r.label}: {what} has no customer KMS key ({prop} is not set), so AWS would use its own "
                f"managed key, which this project cannot control or share across regions. Fix: {fix}."]
    if aws_managed_key(value):
        return [f"{r.label}: {what} uses the AWS-managed key {value!r} ({prop}); its key policy cannot be "
                f"changed, so other services and regions cannot be granted use of it. Fix: {fix}."]
    return []


# =============================================================================================
# Resource checks: (Resource) -> list of sentences
# =============================================================================================


def is_replica(r: Resource) -> bool:
    return is_set(r.props.get("replicateSourceDb"))


def check_rds_encryption(r: Resource) -> list[str]:
    problems = []
    if r.type == RDS_INSTANCE:
        encrypted = r.props.get("storageEncrypted")
        if is_replica(r):
            # storage_encrypted is ignored on a cross-region replica (it inherits the source's), but an
            # explicit False says something that is not true.
            if encrypted is False:
                problems.append(f"{r.label}: storageEncrypted is False on a read replica. Fix: drop it or set "
                                "storage_encrypted=True; the replica is encrypted with its kms_key_id.")
        elif encrypted is not True and encrypted is not UNKNOWN:
            problems.append(f"{r.label}: storage is not encrypted (storageEncrypted={encrypted!r}). Fix: set "
                            "storage_encrypted=True with kms_key_id=<this region's customer KMS key ARN>.")
        problems += _key_problems(r, "kmsKeyId", "the database storage",
                                  "set kms_key_id to this region's customer KMS key ARN (a cross-region replica "
                                  "needs a key in its own region)")
    elif r.type == RDS_BACKUP_REPLICATION:
        problems += _key_problems(r, "kmsKeyId", "the replicated automated backups",
                                  "set kms_key_id to the DR region's customer KMS key ARN")
    return problems


def check_rds_deletion_protection(r: Resource) -> list[str]:
    if r.type != RDS_INSTANCE:
        return []
    value = r.props.get("deletionProtection")
    if value is True or value is UNKNOWN:
        return []
    return [f"{r.label}: deletion protection is off (deletionProtection={value!r}); one mistaken `pulumi destroy` "
            "or console click deletes the database. Fix: set deletion_protection=True."]


def check_backup_retention(r: Resource) -> list[str]:
    floor = MIN_BACKUP_RETENTION_DAYS
    if r.type == RDS_INSTANCE and not is_replica(r):
        days = r.props.get("backupRetentionPeriod")
        if days is UNKNOWN:
            return []
        if not _is_number(days):
            return [f"{r.label}: a primary database without backupRetentionPeriod gets RDS's default (1 day, or none); "
                    f"point-in-time recovery needs at least {floor} days. Fix: set backup_retention_period >= {floor}."]
        if days < floor:
            return [f"{r.label}: backupRetentionPeriod is {days:g} days, below the floor of {floor} for a primary. "
                    f"Fix: set backup_retention_period >= {floor} (the stack config defaults to 30)."]
    if r.type == RDS_BACKUP_REPLICATION:
        days = r.props.get("retentionPeriod")
        if _is_number(days) and days < floor:
            return [f"{r.label}: replicated backups are kept {days:g} days, below the floor of {floor}. "
                    f"Fix: set retention_period >= {floor} (or leave it unset: AWS keeps 7)."]
    return []


def check_msk_encryption(r: Resource) -> list[str]:
    if r.type != MSK_CLUSTER:
        return []
    problems = []
    info = r.props.get("encryptionInfo")
    at_rest = get(info, "encryptionAtRestKmsKeyArn")
    if not is_set(at_rest):
        problems.append(f"{r.label}: data at rest is encrypted with the AWS-managed MSK key "
                        "(encryptionInfo.encryptionAtRestKmsKeyArn is not set). Fix: set encryption_info."
                        "encryption_at_rest_kms_key_arn to this region's customer KMS key ARN.")
    elif aws_managed_key(at_rest):
        problems.append(f"{r.label}: encryptionInfo.encryptionAtRestKmsKeyArn is the AWS-managed key {at_rest!r}. "
                        "Fix: use this region's customer KMS key ARN.")
    client_broker = get(info, "encryptionInTransit", "clientBroker")
    if client_broker != "TLS" and client_broker is not UNKNOWN:
        problems.append(f"{r.label}: client-to-broker traffic is not TLS-only (encryptionInfo.encryptionInTransit."
                        f"clientBroker={client_broker!r}). Fix: set encryption_in_transit.client_broker='TLS'.")
    in_cluster = get(info, "encryptionInTransit", "inCluster")
    if in_cluster is False:
        problems.append(f"{r.label}: broker-to-broker traffic is not encrypted (encryptionInTransit.inCluster=False). "
                        "Fix: set encryption_in_transit.in_cluster=True.")
    return problems


def parse_server_properties(text: str) -> dict[str, str]:
    """Kafka ``server.properties`` text as a dict (``#``/``!`` comments, ``=`` or ``:`` separators)."""
    result = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if match:
            result[match.group(1)] = match.group(2).strip()
    return result


def _int_or_none(text: Optional[str]) -> Optional[int]:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def check_msk_durability(r: Resource) -> list[str]:
    if r.type == MSK_CLUSTER:
        arn = get(r.props.get("configurationInfo"), "arn")
        if not is_set(arn):
            return [f"{r.label}: the cluster runs MSK's default configuration (min.insync.replicas=1), not one with "
                    "the durable settings. Fix: set configuration_info to an aws.msk.Configuration with "
                    f"default.replication.factor={MIN_REPLICATION_FACTOR}, min.insync.replicas={MIN_INSYNC_REPLICAS}, "
                    "unclean.leader.election.enable=false."]
        return []
    if r.type != MSK_CONFIGURATION:
        return []
    text = r.props.get("serverProperties")
    if text is UNKNOWN:
        return []
    props = parse_server_properties(text if isinstance(text, str) else "")
    problems = []
    rf = _int_or_none(props.get("default.replication.factor"))
    isr = _int_or_none(props.get("min.insync.replicas"))
    unclean = props.get("unclean.leader.election.enable")
    if rf is None or rf < MIN_REPLICATION_FACTOR:
        problems.append(f"{r.label}: default.replication.factor is {props.get('default.replication.factor')!r}; a "
                        "topic needs a copy on each of three brokers to survive losing one. "
                        f"Fix: default.replication.factor={MIN_REPLICATION_FACTOR} in server_properties.")
    if isr is None or isr < MIN_INSYNC_REPLICAS:
        problems.append(f"{r.label}: min.insync.replicas is {props.get('min.insync.replicas')!r}; with fewer than "
                        f"{MIN_INSYNC_REPLICAS} an acknowledged write can live on one broker only. "
                        f"Fix: min.insync.replicas={MIN_INSYNC_REPLICAS} in server_properties.")
    elif rf is not None and isr >= rf:
        problems.append(f"{r.label}: min.insync.replicas={isr} is not below default.replication.factor={rf}; losing "
                        "one broker would stop all writes. Fix: keep min.insync.replicas one below the replication "
                        f"factor ({MIN_INSYNC_REPLICAS} with {MIN_REPLICATION_FACTOR}).")
    if unclean is None or unclean.lower() != "false":
        problems.append(f"{r.label}: unclean.leader.election.enable is {unclean!r}; an out-of-sync replica could become "
                        "leader and silently drop acknowledged writes. "
                        "Fix: unclean.leader.election.enable=false in server_properties.")
    return problems


def check_s3_encryption(r: Resource) -> list[str]:
    """The encryption configuration resource itself uses SSE-KMS, and replication keeps KMS objects
    encrypted (and replicates them at all: S3 skips SSE-KMS objects unless told otherwise)."""
    problems = []
    if r.type in S3_ENCRYPTIONS:
        rules = as_list(r.props.get("rules"))
        if not rules and r.props.get("rules") is not UNKNOWN:
            problems.append(f"{r.label}: no encryption rule. Fix: add a rule with sse_algorithm='aws:kms' and "
                            "kms_master_key_id=<this region's customer KMS key ARN>.")
        for i, rule in enumerate(rules):
            problems += _sse_rule_problems(r, f"rules[{i}]", rule)
    elif r.type == S3_REPLICATION:
        for i, rule in enumerate(as_list(r.props.get("rules"))):
            if get(rule, "status") == "Disabled":
                continue
            where = f"rules[{i}] ({get(rule, 'id')})" if isinstance(get(rule, "id"), str) else f"rules[{i}]"
            sse_kms = get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects", "status")
            if sse_kms != "Enabled" and sse_kms is not UNKNOWN:
                problems.append(f"{r.label}: {where} does not select SSE-KMS encrypted objects, so S3 skips every "
                                "object of a KMS-encrypted bucket. Fix: source_selection_criteria."
                                "sse_kms_encrypted_objects.status='Enabled'.")
            replica_key = get(rule, "destination", "encryptionConfiguration", "replicaKmsKeyId")
            if not is_set(replica_key):
                problems.append(f"{r.label}: {where} names no key for the replicas "
                                "(destination.encryptionConfiguration.replicaKmsKeyId). Fix: set it to the DR "
                                "region's customer KMS key ARN.")
            elif aws_managed_key(replica_key):
                problems.append(f"{r.label}: {where} encrypts replicas with the AWS-managed key {replica_key!r}. "
                                "Fix: use the DR region's customer KMS key ARN.")
    return problems


def _sse_rule_problems(r: Resource, where: str, rule: Any) -> list[str]:
    algorithm = get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
    key = get(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
    if algorithm is UNKNOWN:
        return []
    if algorithm not in KMS_ALGORITHMS:
        return [f"{r.label}: {where} encrypts with {algorithm!r}, not SSE-KMS. Fix: sse_algorithm='aws:kms' and "
                "kms_master_key_id=<this region's customer KMS key ARN>."]
    if not is_set(key):
        return [f"{r.label}: {where} uses SSE-KMS with the AWS-managed key aws/s3 (kmsMasterKeyId is not set). "
                "Fix: kms_master_key_id=<this region's customer KMS key ARN>."]
    if aws_managed_key(key):
        return [f"{r.label}: {where} uses the AWS-managed key {key!r}. Fix: use this region's customer KMS key ARN."]
    return []


def check_sns_encryption(r: Resource) -> list[str]:
    if r.type != SNS_TOPIC:
        return []
    value = r.props.get("kmsMasterKeyId")
    if not is_set(value):
        return [f"{r.label}: the topic is not encrypted (kmsMasterKeyId is not set). Fix: kms_master_key_id=<this "
                "region's customer KMS key ARN>, with a key policy that lets CloudWatch use it."]
    if aws_managed_key(value):
        return [f"{r.label}: the topic uses the AWS-managed key {value!r}; CloudWatch alarms cannot publish to it "
                "(its key policy cannot grant them), so alarms would go nowhere. Fix: use this region's customer "
                "KMS key ARN with a key policy that lets CloudWatch use it."]
    return []


def check_replication_time_control(r: Resource, settings: "StackSettings | None" = None) -> list[str]:
    """Every enabled rule has RTC and metrics; some rule is enabled, except in a dr stack whose
    config says it was promoted (the failover disabled primary → DR replication on purpose)."""
    if r.type != S3_REPLICATION:
        return []
    rules = r.props.get("rules")
    if rules is UNKNOWN:
        return []
    enabled = [(i, rule) for i, rule in enumerate(as_list(rules)) if get(rule, "status") != "Disabled"]
    if not enabled:
        if settings is not None and settings.promoted:
            return []
        return [f"{r.label}: no enabled replication rule; nothing reaches the DR bucket. Fix: add a rule with "
                "status='Enabled' and a destination in the DR region."]
    problems = []
    for i, rule in enabled:
        where = f"rules[{i}] ({get(rule, 'id')})" if isinstance(get(rule, "id"), str) else f"rules[{i}]"
        destination = get(rule, "destination")
        rtc_status = get(destination, "replicationTime", "status")
        rtc_minutes = get(destination, "replicationTime", "time", "minutes")
        metrics_status = get(destination, "metrics", "status")
        threshold = get(destination, "metrics", "eventThreshold", "minutes")
        if rtc_status != "Enabled" or (rtc_minutes != RTC_MINUTES and rtc_minutes is not UNKNOWN):
            problems.append(f"{r.label}: {where} has no replication time control (replicationTime status="
                            f"{rtc_status!r}, minutes={rtc_minutes!r}); without it S3 promises no replication "
                            f"time, so the bucket's RPO is unbounded. Fix: destination.replication_time="
                            f"{{status: 'Enabled', time: {{minutes: {RTC_MINUTES}}}}}.")
        if metrics_status != "Enabled":
            problems.append(f"{r.label}: {where} has no replication metrics (metrics status={metrics_status!r}); "
                            "replication lag cannot be alarmed on. Fix: destination.metrics={status: 'Enabled', "
                            f"event_threshold: {{minutes: {RTC_MINUTES}}}}}.")
        elif threshold is not None and threshold is not UNKNOWN and threshold != RTC_MINUTES:
            problems.append(f"{r.label}: {where} metrics.eventThreshold.minutes is {threshold!r}; replication "
                            f"time control requires {RTC_MINUTES}. Fix: event_threshold.minutes={RTC_MINUTES}.")
    return problems


def check_public_access_block(r: Resource) -> list[str]:
    if r.type != S3_PUBLIC_ACCESS_BLOCK:
        return []
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if r.props.get(flag) is not True and r.props.get(flag) is not UNKNOWN]
    if not off:
        return []
    return [f"{r.label}: public access is not fully blocked ({', '.join(f'{f}={r.props.get(f)!r}' for f in off)}). "
            "Fix: set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets to True."]


def check_primary_failover_health_check(r: Resource) -> list[str]:
    if r.type != ROUTE53_RECORD:
        return []
    types = [get(p, "type") for p in as_list(r.props.get("failoverRoutingPolicies"))]
    if "PRIMARY" not in types or is_set(r.props.get("healthCheckId")):
        return []
    return [f"{r.label}: a PRIMARY failover record without a health check is always considered healthy, so Route53 "
            "never fails over to the SECONDARY, not even when the runbook fails over. Fix: set health_check_id to "
            "the stack's pin check (components/dns.py), which only the runbook inverts; never to a check that "
            "probes the endpoint (route53-failover-record-runbook-controlled)."]


def check_kms_rotation(r: Resource) -> list[str]:
    if r.type != KMS_KEY:
        return []
    value = r.props.get("enableKeyRotation")
    if value is True or value is UNKNOWN:
        return []
    return [f"{r.label}: automatic key rotation is off (enableKeyRotation={value!r}). Fix: enable_key_rotation=True."]


def check_k8s_workload_restricted(r: Resource) -> list[str]:
    """The privilege-relevant part of the `restricted` Pod Security Standard, on every workload the
    stacks declare (the DR jobs read Secrets and hold IRSA credentials: a privileged or root
    container there would be a way from the cluster into the backups)."""
    path = K8S_POD_SPEC_PATHS.get(r.type)
    if path is None:
        return []
    pod = get(r.props, *path)
    if not isinstance(pod, Mapping):
        return []  # computed during preview: judged when `pulumi up` runs the pack with the value
    problems = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag) is True:
            problems.append(f"{r.label}: the pod shares the node's namespace ({flag}=True). Fix: remove {flag}.")
    for volume in as_list(pod.get("volumes")):
        if isinstance(volume, Mapping) and is_set(volume.get("hostPath")):
            problems.append(f"{r.label}: volume {volume.get('name')!r} mounts a path of the node (hostPath). "
                            "Fix: use an emptyDir, a projected volume or a persistent volume claim.")
    pod_sc = pod.get("securityContext") if isinstance(pod.get("securityContext"), Mapping) else {}
    for c in as_list(pod.get("initContainers")) + as_list(pod.get("containers")):
        if not isinstance(c, Mapping):
            continue
        sc = c.get("securityContext") if isinstance(c.get("securityContext"), Mapping) else {}
        where = f"{r.label}: container {c.get('name')!r}"

        def effective(key: str, sc: Mapping = sc) -> Any:  # bound now, not at the loop's last container
            return sc[key] if key in sc else pod_sc.get(key)

        if sc.get("privileged") is True:
            problems.append(f"{where} runs privileged. Fix: securityContext.privileged=False.")
        if sc.get("allowPrivilegeEscalation") not in (False, UNKNOWN):
            problems.append(f"{where} may gain privileges (allowPrivilegeEscalation="
                            f"{sc.get('allowPrivilegeEscalation')!r}). Fix: allowPrivilegeEscalation=False.")
        drop = get(sc, "capabilities", "drop")
        if drop is not UNKNOWN and "ALL" not in as_list(drop):
            problems.append(f"{where} keeps the default Linux capabilities (drop={drop!r}). "
                            "Fix: capabilities.drop=['ALL'].")
        added = [cap for cap in as_list(get(sc, "capabilities", "add")) if cap != "NET_BIND_SERVICE"]
        if added:
            problems.append(f"{where} adds capabilities {added!r}. Fix: remove them (only NET_BIND_SERVICE is allowed).")
        if effective("runAsNonRoot") not in (True, UNKNOWN) or effective("runAsUser") == 0:
            problems.append(f"{where} may run as root (runAsNonRoot={effective('runAsNonRoot')!r}, runAsUser="
                            f"{effective('runAsUser')!r}). Fix: runAsNonRoot=True with a non-zero runAsUser.")
        seccomp = effective("seccompProfile")
        kind = get(seccomp, "type") if isinstance(seccomp, Mapping) else seccomp
        if kind not in ("RuntimeDefault", "Localhost", UNKNOWN):
            problems.append(f"{where} runs without a seccomp profile (seccompProfile={seccomp!r}). "
                            "Fix: seccompProfile.type='RuntimeDefault' on the pod or the container.")
    return problems


# =============================================================================================
# Stack checks: (resources, settings) -> list of Violations
# =============================================================================================


@dataclass(frozen=True)
class StackSettings:
    """What the stack's own config says (``regionpair:role``, ``regionpair:promoted``); None when the
    pack cannot see it."""

    role: Optional[str] = None
    promoted: Optional[bool] = None

    @classmethod
    def from_pulumi_config(cls) -> "StackSettings":
        """Read the running stack's config, which the CLI passes to the policy pack."""
        import pulumi.runtime

        role = pulumi.runtime.get_config(f"{PROJECT}:role")
        promoted = pulumi.runtime.get_config(f"{PROJECT}:promoted")
        if isinstance(promoted, str):
            promoted = promoted.strip().lower() == "true"
        return cls(role=role if isinstance(role, str) else None,
                   promoted=promoted if isinstance(promoted, bool) else None)


def _of_type(resources: Iterable[Resource], types: Iterable[str] | str) -> list[Resource]:
    wanted = (types,) if isinstance(types, str) else tuple(types)
    return [r for r in resources if r.type in wanted]


def _bucket_names(bucket: Resource) -> set[str]:
    names = set()
    for key in ("bucket", "id", "arn"):
        value = bucket.props.get(key)
        if isinstance(value, str) and value:
            names.add(value)
            if value.startswith("arn:aws:s3:::"):
                names.add(value[len("arn:aws:s3:::"):])
    return names


def _refers_to(holder: Resource, prop: str, value: Any, bucket: Resource) -> bool:
    """Does ``holder``'s ``prop`` (whose value here is ``value``) name ``bucket``? By value (a bucket
    name or ARN) when known, else by the engine's record of which resources ``prop`` came from."""
    if isinstance(value, str) and value:
        name = value[len("arn:aws:s3:::"):] if value.startswith("arn:aws:s3:::") else value
        if name in _bucket_names(bucket) or value in _bucket_names(bucket):
            return True
    if value is UNKNOWN or value is None:
        return bucket.urn in holder.property_dependencies.get(prop, ())
    return False


def _configs_for(bucket: Resource, configs: list[Resource]) -> list[Resource]:
    return [c for c in configs if _refers_to(c, "bucket", c.props.get("bucket"), bucket)]


def _versioned(bucket: Resource, versionings: list[Resource]) -> bool:
    for v in _configs_for(bucket, versionings):
        if get(v.props, "versioningConfiguration", "status") in ("Enabled", UNKNOWN):
            return True
    # the deprecated inline form on the bucket itself
    return get(bucket.props, "versioning", "enabled") is True


def check_buckets_versioned(resources: list[Resource]) -> list[Violation]:
    """Every bucket is versioned, and so is every bucket a replication configuration reads from or
    writes to (S3 refuses replication otherwise, and an unversioned bucket cannot undelete)."""
    buckets = _of_type(resources, S3_BUCKETS)
    versionings = _of_type(resources, S3_VERSIONINGS)
    violations = []
    for b in buckets:
        if not _versioned(b, versionings):
            violations.append(Violation(b, f"{b.label}: the bucket is not versioned; deleted or overwritten objects "
                                        "cannot be recovered and replication cannot be configured. Fix: declare "
                                        "aws.s3.BucketVersioning(bucket=<this bucket>, versioning_configuration="
                                        "{status: 'Enabled'})."))
    for rc in _of_type(resources, S3_REPLICATION):
        source = rc.props.get("bucket")
        source_buckets = [b for b in buckets if _refers_to(rc, "bucket", source, b)]
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
                candidates = [b for b in buckets if _refers_to(rc, "rules", dest, b)]
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
    for e in _configs_for(bucket, encryptions):
        rules = as_list(e.props.get("rules"))
        if rules and all(not _sse_rule_problems(e, "", rule) for rule in rules):
            return True
    inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule")
    return inline is not None and not _sse_rule_problems(bucket, "", inline)


def check_buckets_kms_encrypted(resources: list[Resource]) -> list[Violation]:
    encryptions = _of_type(resources, S3_ENCRYPTIONS)
    return [Violation(b, f"{b.label}: no SSE-KMS encryption configuration with a customer key names this bucket "
                         "(without one S3 uses SSE-S3 keys this project does not control). Fix: declare "
                         "aws.s3.BucketServerSideEncryptionConfiguration(bucket=<this bucket>, rules=[{"
                         "apply_server_side_encryption_by_default: {sse_algorithm: 'aws:kms', kms_master_key_id: "
                         "<customer key ARN>}, bucket_key_enabled: True}]).")
            for b in _of_type(resources, S3_BUCKETS) if not _kms_encrypted(b, encryptions)]


def check_buckets_public_access_blocked(resources: list[Resource]) -> list[Violation]:
    blocks = _of_type(resources, S3_PUBLIC_ACCESS_BLOCK)
    violations = []
    for b in _of_type(resources, S3_BUCKETS):
        mine = _configs_for(b, blocks)
        if not any(not check_public_access_block(p) for p in mine):
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
    for ref in _of_type(resources, STACK_REFERENCE):
        for doc in _contract_documents(ref.props.get("outputs")):
            seen = True
            for region in (doc.get("regions") or {}).values():
                if not isinstance(region, Mapping) or region.get("role") != "primary":
                    continue
                for name, db in (region.get("databases") or {}).items():
                    if isinstance(db, Mapping) and db.get("role") == "primary" and isinstance(db.get("arn"), str):
                        found[name] = db["arn"]
    return found if seen else None


def _contract_documents(value: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping) or depth > 4:
        return []
    if "schema_version" in value and isinstance(value.get("regions"), Mapping):
        return [value]
    docs: list[Mapping[str, Any]] = []
    for item in value.values():
        docs += _contract_documents(item, depth + 1)
    return docs


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
    instances = _of_type(resources, RDS_INSTANCE)
    replicas = [i for i in instances if is_replica(i)]
    standalone = [i for i in instances if not is_replica(i)]
    backups = _of_type(resources, RDS_BACKUP_REPLICATION)
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


# =============================================================================================
# The policies
# =============================================================================================

ResourceCheck = Callable[[Resource], list[str]]
StackCheck = Callable[[list[Resource], StackSettings], list[Violation]]


def resource_policy(name: str, description: str, check: ResourceCheck) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(Resource.of(args)):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def stack_policy(name: str, description: str, check: StackCheck,
                 settings: Callable[[], StackSettings] = StackSettings.from_pulumi_config) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [Resource.of(r) for r in args.resources]
        for violation in check(resources, settings()):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(name=name, description=description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


def _ignoring_settings(check: Callable[[list[Resource]], list[Violation]]) -> StackCheck:
    return lambda resources, _settings: check(resources)


POLICIES = [
    resource_policy("rds-encrypted-with-customer-key",
                    "RDS storage and replicated backups are encrypted with a customer KMS key.",
                    check_rds_encryption),
    resource_policy("rds-deletion-protection",
                    "Every RDS instance has deletion protection.",
                    check_rds_deletion_protection),
    resource_policy("rds-backup-retention-floor",
                    f"Primary databases and replicated backups keep at least {MIN_BACKUP_RETENTION_DAYS} days.",
                    check_backup_retention),
    resource_policy("msk-encrypted",
                    "MSK encrypts at rest with a customer KMS key and in transit with TLS only.",
                    check_msk_encryption),
    resource_policy("msk-durable-configuration",
                    f"MSK clusters use a configuration with default.replication.factor={MIN_REPLICATION_FACTOR}, "
                    f"min.insync.replicas={MIN_INSYNC_REPLICAS}, unclean.leader.election.enable=false.",
                    check_msk_durability),
    resource_policy("s3-sse-kms",
                    "S3 encryption uses SSE-KMS with a customer key, also for replicas: S3 replicates SSE-KMS objects "
                    "only with sse_kms_encrypted_objects Enabled and a replica key (S3 User Guide, 'Replicating objects "
                    "created with server-side encryption (SSE) using AWS KMS').",
                    check_s3_encryption),
    resource_policy("s3-replication-time-control",
                    f"S3 replication has replication time control ({RTC_MINUTES} minutes) and metrics; 15 is the only "
                    "value S3 accepts for Time and EventThreshold (S3 User Guide, 'Replication configuration', "
                    "'Enable S3 Replication Time Control').",
                    lambda r: check_replication_time_control(r, StackSettings.from_pulumi_config())),
    resource_policy("s3-public-access-block-complete",
                    "S3 public access blocks set all four settings.",
                    check_public_access_block),
    resource_policy("sns-encrypted-with-customer-key",
                    "SNS topics are encrypted with a customer KMS key: AWS services such as CloudWatch can publish to "
                    "an encrypted topic only through a customer managed key's policy (SNS Developer Guide, 'Key "
                    "management', 'Enable compatibility between event sources from AWS services and encrypted "
                    "topics').",
                    check_sns_encryption),
    resource_policy("route53-primary-failover-health-check",
                    "Every PRIMARY failover record has a health check.",
                    check_primary_failover_health_check),
    resource_policy("kms-key-rotation",
                    "Customer KMS keys rotate automatically (KMS API Reference, 'EnableKeyRotation').",
                    check_kms_rotation),
    resource_policy("k8s-workload-restricted",
                    "Kubernetes workloads run unprivileged: no privilege escalation, ALL capabilities dropped, "
                    "non-root, seccomp, no host namespaces or hostPath.",
                    check_k8s_workload_restricted),
    stack_policy("s3-every-bucket-versioned",
                 "Every bucket is versioned, including both ends of every replication (S3 User Guide, 'Replicating "
                 "objects', 'Requirements for replication': both buckets must have versioning enabled).",
                 _ignoring_settings(check_buckets_versioned)),
    stack_policy("s3-every-bucket-kms-encrypted",
                 "Every bucket has an SSE-KMS encryption configuration with a customer key.",
                 _ignoring_settings(check_buckets_kms_encrypted)),
    stack_policy("s3-every-bucket-public-access-blocked",
                 "Every bucket has a public access block with all four settings.",
                 _ignoring_settings(check_buckets_public_access_blocked)),
    resource_policy("rds-logical-replication-static", _cdc.LOGICAL_REPLICATION_DESCRIPTION,
                    _cdc.check_logical_replication_parameter),
    stack_policy("dr-every-primary-replicated",
                 "In the dr stack, every prod primary database has a cross-region replica and replicated backups.",
                 check_dr_databases_replicated),
]
"""Every policy of the pack, all mandatory: a violation fails `pulumi preview` and `pulumi up`."""

def register(policies: Iterable[Any]) -> None:
    """Add an area module's policies to ``POLICIES`` (in place, once each by name)."""
    known = {p.name for p in POLICIES}
    POLICIES.extend(p for p in policies if p.name not in known)


# Area modules register their policies on import (each imports this module, so they come last);
# imported as policy.msk etc. by the tests and as msk by the CLI (sys.path[0] = policy/). Their order
# is the order of POLICIES, so import sorting leaves it alone.
# isort: off
if __package__:
    from . import msk as _msk  # noqa: E402,F401
    from . import rds as _rds  # noqa: E402,F401
    from . import dns_alarms_iam as _dns_alarms_iam  # noqa: E402,F401
    from . import kafka_backup as _kafka_backup  # noqa: E402,F401
    from . import mskconnect as _mskconnect  # noqa: E402,F401
else:  # the CLI runs the pack with sys.path[0] = policy/
    import msk as _msk  # type: ignore[no-redef]  # noqa: E402,F401
    import rds as _rds  # type: ignore[no-redef]  # noqa: E402,F401
    import dns_alarms_iam as _dns_alarms_iam  # type: ignore[no-redef]  # noqa: E402,F401
    import kafka_backup as _kafka_backup  # type: ignore[no-redef]  # noqa: E402,F401
    import mskconnect as _mskconnect  # type: ignore[no-redef]  # noqa: E402,F401
# isort: on


# S3, KMS, SNS and SSM rules from AWS's documentation (policy/s3_kms_sns_ssm.py; it takes this
# module's helpers on its own last line, so the import stays at the end of this one)
if __package__:
    from . import s3_kms_sns_ssm as _s3_kms_sns_ssm
else:  # the CLI runs the pack with sys.path[0] = policy/
    import s3_kms_sns_ssm as _s3_kms_sns_ssm
register(_s3_kms_sns_ssm.policies(resource_policy, stack_policy, _ignoring_settings))

# Retention tiers (policy/retention.py; registers itself, so it comes after the helpers it uses)
if __package__:
    from . import retention as _retention  # noqa: E402,F401
else:  # the CLI runs the pack with sys.path[0] = policy/
    import retention as _retention  # type: ignore[no-redef]  # noqa: E402,F401
