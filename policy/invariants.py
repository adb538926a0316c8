"""The pack's own DR invariants, one resource at a time: pure checks over a ``base.Resource``
(the type token and the props under the provider's property names, camelCase:
``storageEncrypted``, ``kmsKeyId``, ``replicateSourceDb``) that return plain sentences, each naming
the resource and the fix. ``rules.py`` wraps them into the pack's policies; the tests call them
directly. Imported as ``policy.invariants`` (tests and policy/__main__.py alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .base import (
    KMS_KEY,
    MSK_CLUSTER,
    MSK_CONFIGURATION,
    RDS_BACKUP_REPLICATION,
    RDS_INSTANCE,
    ROUTE53_RECORD,
    S3_ENCRYPTIONS,
    S3_PUBLIC_ACCESS_BLOCK,
    S3_REPLICATION,
    SNS_TOPIC,
    UNKNOWN,
    Resource,
    StackSettings,
    as_list,
    aws_managed_key,
    get,
    is_number,
    is_replica,
    is_set,
    key_problems,
    parse_server_properties,
)

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
        problems += key_problems(r, "kmsKeyId", "the database storage",
                                  "set kms_key_id to this region's customer KMS key ARN (a cross-region replica "
                                  "needs a key in its own region)")
    elif r.type == RDS_BACKUP_REPLICATION:
        problems += key_problems(r, "kmsKeyId", "the replicated automated backups",
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
        if not is_number(days):
            return [f"{r.label}: a primary database without backupRetentionPeriod gets RDS's default (1 day, or none); "
                    f"point-in-time recovery needs at least {floor} days. Fix: set backup_retention_period >= {floor}."]
        if days < floor:
            return [f"{r.label}: backupRetentionPeriod is {days:g} days, below the floor of {floor} for a primary. "
                    f"Fix: set backup_retention_period >= {floor} (the stack config defaults to 30)."]
    if r.type == RDS_BACKUP_REPLICATION:
        days = r.props.get("retentionPeriod")
        if is_number(days) and days < floor:
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
            problems += sse_rule_problems(r, f"rules[{i}]", rule)
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


def sse_rule_problems(r: Resource, where: str, rule: Any) -> list[str]:
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


