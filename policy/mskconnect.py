"""Every MSK Connect rule of the pack, whatever the connector runs (MirrorMaker 2 on the dr stack,
the Kafka topic backup's S3 sink on prod): one policy per AWS constraint on each
``aws:mskconnect/*`` resource (connector, custom plugin, worker configuration, the connector's
service execution role), plus the MirrorMaker 2 invariants in a policy of their own.

Each policy names the AWS document its rule comes from; where the search tool could not show a
page's text, the rule says so. ``rules.py`` puts ``POLICIES`` in the pack's list; this module is
Imported as ``policy.mskconnect`` (tests and policy/__main__.py alike).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Optional

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from . import base, iam_documents

Resource = base.Resource
Violation = base.Violation
UNKNOWN = base.UNKNOWN
get = base.get
as_list = base.as_list

CONNECTOR = "aws:mskconnect/connector:Connector"
CUSTOM_PLUGIN = "aws:mskconnect/customPlugin:CustomPlugin"
WORKER_CONFIGURATION = "aws:mskconnect/workerConfiguration:WorkerConfiguration"
SERVICE = "kafkaconnect.amazonaws.com"
SERVICE_LINKED_ROLE = "AWSServiceRoleForKafkaConnect"
SOURCE_TAG = "regionpair:source-cluster"
TARGET_TAG = "regionpair:target-cluster"

NAME_MAX = 128
KAFKACONNECT_VERSIONS = ("2.7.1", "3.7.x")
MCU_COUNTS = (1, 2, 4, 8)
AUTHENTICATION_TYPES = ("NONE", "IAM")
ENCRYPTION_TYPES = ("PLAINTEXT", "TLS")
CONTENT_TYPES = ("JAR", "ZIP")
MIRROR_PREFIX = "org.apache.kafka.connect.mirror."
IDENTITY_POLICY = MIRROR_PREFIX + "IdentityReplicationPolicy"
BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
# MSK Developer Guide, "Supported worker configuration properties" (the producer. and consumer. lists)
WORKER_PRODUCER = ("acks", "batch.size", "buffer.memory", "compression.type", "enable.idempotence", "key.serializer",
                   "linger.ms", "max.request.size", "metadata.max.age.ms", "metadata.max.idle.ms", "partitioner.class",
                   "reconnect.backoff.max.ms", "reconnect.backoff.ms", "request.timeout.ms", "retry.backoff.ms",
                   "value.serializer")
WORKER_CONSUMER = ("allow.auto.create.topics", "auto.offset.reset", "check.crcs", "fetch.max.bytes", "fetch.max.wait.ms",
                   "fetch.min.bytes", "heartbeat.interval.ms", "key.deserializer", "max.partition.fetch.bytes",
                   "max.poll.interval.ms", "max.poll.records", "metadata.max.age.ms",
                   "partition.assignment.strategy", "reconnect.backoff.max.ms", "reconnect.backoff.ms")

DOC_CREATE = "MSK Connect API Reference, CreateConnector"
DOC_VERSIONS = 'MSK Developer Guide, "Understand MSK Connect" (Kafka Connect 2.7.1 or 3.7.x)'
DOC_CAPACITY = ('MSK Developer Guide, "Understand connector capacity"; MSK Connect API Reference, Capacity ("exactly '
                'one of the two"), AutoScaling, ProvisionedCapacity (mcuCount 1, 2, 4, 8), ScaleInPolicy, '
                'ScaleOutPolicy (1-100)')
DOC_AUTH = ("MSK Connect API Reference, KafkaClusterClientAuthentication (NONE | IAM) and "
            "KafkaClusterEncryptionInTransit (PLAINTEXT | TLS)")
DOC_IAM_TLS = ('MSK Developer Guide, "Port information" (IAM access control on 9098); CloudFormation '
               "AWS::MSK::Cluster Sasl (SASL needs clientBroker TLS)")
DOC_PLUGINS = ('MSK Developer Guide, "Create custom plugins" (a JAR, or a ZIP of JARs, in S3); MSK Connect API '
               "Reference, CreatePlugin contentType JAR | ZIP, CustomPluginLocation s3Location; CreateConnector "
               "plugins (\"does not currently support specifying multiple plugins\")")
DOC_WORKER = 'MSK Developer Guide, "Supported worker configuration properties" and "Understand MSK Connect workers"'
DOC_ROLE = ('MSK Developer Guide, "Understand service execution role" (trust kafkaconnect.amazonaws.com; not the '
            'service-linked role; Connect and DescribeCluster on the cluster, CreateTopic/WriteData/ReadData/'
            "DescribeTopic on the connector's topics)")
DOC_DEPUTY = 'MSK Developer Guide, "Prevent cross-service confused deputy problem"'
DOC_LOGS = ('MSK Developer Guide, "Logging for MSK Connect" (zero or more destinations: CloudWatch Logs, S3, '
            "Firehose); MSK Connect API Reference, LogDelivery, WorkerLogDelivery, CloudWatchLogsLogDelivery")
DOC_IDENTITY = "Apache Kafka Javadoc, org.apache.kafka.connect.mirror.IdentityReplicationPolicy (Kafka 3.0+, KAFKA-9726)"


def _number(value: Any) -> bool:
    return base.is_number(value)


def _is_mirror(r: Resource) -> bool:
    cls = get(r.props, "connectorConfiguration", "connector.class")
    return isinstance(cls, str) and cls.startswith(MIRROR_PREFIX)


# ---- resource checks ------------------------------------------------------------------------


def check_connector(r: Resource) -> list[str]:
    """What CreateConnector accepts."""
    if r.type != CONNECTOR:
        return []
    p = r.props
    problems = []
    name = p.get("name")
    if isinstance(name, str) and not 1 <= len(name) <= NAME_MAX:
        problems.append(f"{r.label}: connector name of {len(name)} characters; connectorName takes 1 to {NAME_MAX} "
                        f"({DOC_CREATE}). Fix: a shorter name.")
    version = p.get("kafkaconnectVersion")
    if isinstance(version, str) and version not in KAFKACONNECT_VERSIONS:
        problems.append(f"{r.label}: kafkaconnectVersion {version!r}; MSK Connect runs {' or '.join(KAFKACONNECT_VERSIONS)} "
                        f"({DOC_VERSIONS}). Fix: kafkaconnect_version='3.7.x'.")
    capacity = p.get("capacity")
    if capacity is not UNKNOWN:
        modes = [m for m in ("autoscaling", "provisionedCapacity") if base.is_set(get(capacity, m))]
        if len(modes) != 1:
            problems.append(f"{r.label}: capacity sets {modes or 'neither mode'}; exactly one of autoscaling and "
                            f"provisionedCapacity ({DOC_CAPACITY}). Fix: declare one.")
        auto, prov = get(capacity, "autoscaling"), get(capacity, "provisionedCapacity")
        for where, block in (("autoscaling", auto), ("provisionedCapacity", prov)):
            mcu = get(block, "mcuCount")
            if _number(mcu) and mcu not in MCU_COUNTS:
                problems.append(f"{r.label}: capacity.{where}.mcuCount {mcu:g}; the valid values are 1, 2, 4, 8 "
                                f"({DOC_CAPACITY}). Fix: one of them.")
        workers = get(prov, "workerCount")
        if _number(workers) and workers < 1:
            problems.append(f"{r.label}: {workers:g} workers; a connector runs on at least one ({DOC_CAPACITY}). "
                            "Fix: worker_count >= 1.")
        low, high = get(auto, "minWorkerCount"), get(auto, "maxWorkerCount")
        if _number(low) and low < 1:
            problems.append(f"{r.label}: minWorkerCount {low:g}; at least one worker ({DOC_CAPACITY}). Fix: >= 1.")
        if _number(low) and _number(high) and high < low:
            problems.append(f"{r.label}: maxWorkerCount {high:g} below minWorkerCount {low:g} ({DOC_CAPACITY}: the "
                            "worker count stays between the two). Fix: max >= min.")
        cpu = {k: get(auto, f"{k}Policy", "cpuUtilizationPercentage") for k in ("scaleIn", "scaleOut")}
        for k, v in cpu.items():
            if _number(v) and not 1 <= v <= 100:
                problems.append(f"{r.label}: {k}Policy.cpuUtilizationPercentage {v:g}; valid range 1 to 100 "
                                f"({DOC_CAPACITY}). Fix: a percentage.")
    plugins = p.get("plugins")
    if isinstance(plugins, list) and len(plugins) != 1:
        problems.append(f"{r.label}: {len(plugins)} plugins; MSK Connect takes exactly one (a ZIP holds several "
                        f"JARs) ({DOC_PLUGINS}). Fix: one custom plugin.")
    auth = get(p, "kafkaClusterClientAuthentication", "authenticationType")
    if isinstance(auth, str) and auth not in AUTHENTICATION_TYPES:
        problems.append(f"{r.label}: authenticationType {auth!r}; {' | '.join(AUTHENTICATION_TYPES)} ({DOC_AUTH}). "
                        "Fix: IAM.")
    encryption = get(p, "kafkaClusterEncryptionInTransit", "encryptionType")
    if isinstance(encryption, str) and encryption not in ENCRYPTION_TYPES:
        problems.append(f"{r.label}: encryptionType {encryption!r}; {' | '.join(ENCRYPTION_TYPES)} ({DOC_AUTH}). "
                        "Fix: TLS.")
    role = p.get("serviceExecutionRoleArn")
    if isinstance(role, str) and role.rsplit("/", 1)[-1] == SERVICE_LINKED_ROLE:
        problems.append(f"{r.label}: the service-linked role {SERVICE_LINKED_ROLE} as service execution role; MSK "
                        f"Connect does not support it ({DOC_ROLE}). Fix: a role of your own trusting {SERVICE}.")
    return problems


def check_connector_iam_tls_logs(r: Resource) -> list[str]:
    """The stacks' connectors reach MSK with IAM (the clusters accept IAM only) over TLS (MSK serves IAM
    on its TLS listener only) and send their worker logs to CloudWatch Logs (a failed connector, the
    replicator or the backup sink, is diagnosed from them)."""
    if r.type != CONNECTOR:
        return []
    p = r.props
    problems = []
    auth = get(p, "kafkaClusterClientAuthentication", "authenticationType")
    if auth not in ("IAM", UNKNOWN):
        problems.append(f"{r.label}: authenticationType {auth!r}; the stacks' clusters allow IAM access control only "
                        f"(no unauthenticated clients) ({DOC_AUTH}). Fix: authentication_type='IAM'.")
    encryption = get(p, "kafkaClusterEncryptionInTransit", "encryptionType")
    if encryption not in ("TLS", UNKNOWN):
        problems.append(f"{r.label}: encryptionType {encryption!r}; MSK serves IAM access control on its TLS "
                        f"listener (9098) only, and the clusters are TLS-only ({DOC_IAM_TLS}). Fix: "
                        "kafka_cluster_encryption_in_transit.encryption_type='TLS'.")
    cw = get(p, "logDelivery", "workerLogDelivery", "cloudwatchLogs")
    if cw is not UNKNOWN and (get(cw, "enabled") is not True or not base.is_set(get(cw, "logGroup"))):
        problems.append(f"{r.label}: worker logs are not delivered to a CloudWatch log group "
                        f"(logDelivery.workerLogDelivery.cloudwatchLogs={cw!r}) ({DOC_LOGS}). Fix: enabled=True with "
                        "log_group=<a KMS-encrypted log group>.")
    return problems


def check_custom_plugin(r: Resource) -> list[str]:
    if r.type != CUSTOM_PLUGIN:
        return []
    p = r.props
    problems = []
    content = p.get("contentType")
    if content is not UNKNOWN and content not in CONTENT_TYPES:
        problems.append(f"{r.label}: contentType {content!r}; a plugin is a JAR or a ZIP of JARs ({DOC_PLUGINS}). "
                        "Fix: content_type='ZIP'.")
    bucket = get(p, "location", "s3", "bucketArn")
    key = get(p, "location", "s3", "fileKey")
    if bucket is not UNKNOWN and not (isinstance(bucket, str) and re.match(r"^arn:aws[a-z-]*:s3:::[^/]+$", bucket)):
        problems.append(f"{r.label}: location.s3.bucketArn {bucket!r} is not an S3 bucket ARN ({DOC_PLUGINS}). "
                        "Fix: arn:aws:s3:::<bucket>.")
    if key is not UNKNOWN and not (isinstance(key, str) and key):
        problems.append(f"{r.label}: location.s3.fileKey is not set ({DOC_PLUGINS}). Fix: the key of the ZIP.")
    if isinstance(key, str) and isinstance(content, str) and content in CONTENT_TYPES and \
            not key.lower().endswith("." + content.lower()):
        problems.append(f"{r.label}: contentType {content} but the file is {key!r} ({DOC_PLUGINS}). Fix: make them "
                        "agree.")
    return problems


def worker_properties(r: Resource) -> Optional[dict[str, str]]:
    """The worker configuration's properties (raw text or base64, as the provider takes either)."""
    text = r.props.get("propertiesFileContent")
    if not isinstance(text, str):
        return None
    if "=" not in text:
        try:
            text = base64.b64decode(text, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return {}
    return base.parse_server_properties(text)


def check_worker_configuration(r: Resource) -> list[str]:
    if r.type != WORKER_CONFIGURATION:
        return []
    props = worker_properties(r)
    if props is None:
        return []
    problems = []
    missing = [k for k in ("key.converter", "value.converter") if not props.get(k)]
    if missing:
        problems.append(f"{r.label}: {', '.join(missing)} missing; they are required ({DOC_WORKER}). Fix: set both "
                        f"(ByteArrayConverter for MirrorMaker 2).")
    for key in props:
        prefix, _, rest = key.partition(".")
        if prefix in ("producer", "consumer") and rest not in (WORKER_PRODUCER if prefix == "producer" else WORKER_CONSUMER):
            problems.append(f"{r.label}: {key} is not among the {prefix}. properties MSK Connect supports "
                            f"({DOC_WORKER}). Fix: remove it.")
    return problems


def check_mirrormaker2(r: Resource) -> list[str]:
    """A MirrorMaker 2 connector of the stacks copies under identical names, byte for byte, with group
    offset sync and the offset syncs on the target (contract/mirrormaker2.py), and reaches both clusters
    with IAM over TLS."""
    if r.type != CONNECTOR or not _is_mirror(r):
        return []
    c = r.props.get("connectorConfiguration")
    if not isinstance(c, dict):
        return []  # computed during a preview: judged when `pulumi up` runs the pack with the values
    problems = []
    expected = {
        "replication.policy.class": (IDENTITY_POLICY, "after a failover DR's clients must find the same topic names "
                                     f"({DOC_IDENTITY})"),
        "sync.group.offsets.enabled": ("true", "DR's consumers would restart from the beginning or the end"),
        "emit.checkpoints.enabled": ("true", "no translated offsets to move the groups to DR with"),
        "offset-syncs.topic.location": ("target", "translation would need the source cluster a region outage takes"),
        "key.converter": (BYTE_ARRAY_CONVERTER, "records must be copied byte for byte (MSK Connect's default "
                          f"StringConverter would rewrite them) ({DOC_WORKER})"),
        "value.converter": (BYTE_ARRAY_CONVERTER, "records must be copied byte for byte"),
    }
    for side in ("source", "target"):
        expected[f"{side}.cluster.security.protocol"] = ("SASL_SSL", f"the {side} cluster takes IAM over TLS only "
                                                         f"({DOC_IAM_TLS})")
        expected[f"{side}.cluster.sasl.mechanism"] = ("AWS_MSK_IAM", f"the {side} cluster allows IAM access control only")
    for key, (value, why) in expected.items():
        seen = c.get(key)
        if seen is not UNKNOWN and seen != value:
            problems.append(f"{r.label}: connector configuration {key}={seen!r}; {why}. Fix: {key}={value} (the "
                            "stacks take it from contract/mirrormaker2.py).")
    return problems


# ---- stack check: the execution role ----------------------------------------------------------


def _role_for(connector: Resource, roles: list[Resource]) -> Optional[Resource]:
    arn = connector.props.get("serviceExecutionRoleArn")
    for role in roles:
        if isinstance(arn, str) and ":role/" in arn and iam_documents.is_role_named(role, arn.rsplit("/", 1)[-1]):
            return role
        if arn is UNKNOWN and role.urn in connector.property_dependencies.get("serviceExecutionRoleArn", ()):
            return role
    return None


def _connect_trusts(trust: Any) -> list[dict]:
    """The statements letting MSK Connect assume the role."""
    found = []
    for s in iam_documents.statements(trust):
        principal = s.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, dict) else []
        if s.get("Effect") == "Allow" and SERVICE in services and "sts:AssumeRole" in as_list(s.get("Action")):
            found.append(s)
    return found


def _unscoped(statement: dict) -> list[str]:
    """The confused-deputy condition keys a trusting statement lacks (under any operator)."""
    condition = statement.get("Condition")
    keys = {k.lower() for block in condition.values() if isinstance(block, dict) for k in block} \
        if isinstance(condition, dict) else set()
    return [k for k in ("aws:SourceAccount", "aws:SourceArn") if k.lower() not in keys]


# (what, action, resource suffix kind) that each side of a MirrorMaker 2 flow needs
_TARGET_NEEDS = [("cluster", a) for a in ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster")] + \
    [("topic", a) for a in ("kafka-cluster:CreateTopic", "kafka-cluster:WriteData", "kafka-cluster:ReadData",
                            "kafka-cluster:DescribeTopic")] + \
    [("group", a) for a in ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup")]
_SOURCE_NEEDS = [("cluster", a) for a in ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster")] + \
    [("topic", a) for a in ("kafka-cluster:ReadData", "kafka-cluster:DescribeTopic")] + \
    [("group", "kafka-cluster:DescribeGroup")]


def _resource(cluster_arn: str, kind: str) -> str:
    if kind == "cluster":
        return cluster_arn
    # MSK Connect's and MirrorMaker 2's internal topics and groups live beside the replicated ones
    return cluster_arn.replace(":cluster/", f":{kind}/", 1) + "/__amazon_msk_connect_status_x"


def check_execution_role(resources: list[Resource]) -> list[Violation]:
    """Each connector's role trusts MSK Connect and grants, on its own (target) cluster, what MSK Connect
    documents for an IAM cluster plus the group rights offset sync needs; and for a MirrorMaker 2
    connector, read rights on the source cluster."""
    roles = base.of_type(resources, base.IAM_ROLE)
    role_policies = base.of_type(resources, base.IAM_ROLE_POLICY)
    violations = []
    for connector in base.of_type(resources, CONNECTOR):
        role = _role_for(connector, roles)
        arn = connector.props.get("serviceExecutionRoleArn")
        if role is None:
            if isinstance(arn, str):
                violations.append(Violation(connector, f"{connector.label}: its service execution role {arn} is not "
                                            "declared in this stack, so its permissions cannot be checked. Fix: "
                                            "declare the role and its policy next to the connector."))
            continue
        trust = base.document(role.props.get("assumeRolePolicy"))
        trusting = _connect_trusts(trust)
        if role.props.get("assumeRolePolicy") is not UNKNOWN and not trusting:
            violations.append(Violation(role, f"{role.label}: the role does not trust {SERVICE}; MSK Connect cannot "
                                        f"assume it ({DOC_ROLE}). Fix: a trust policy allowing sts:AssumeRole to "
                                        f"Principal {{Service: {SERVICE}}} with aws:SourceAccount and aws:SourceArn."))
        for missing in filter(None, (_unscoped(st) for st in trusting)):
            violations.append(Violation(role, f"{role.label}: its trust of {SERVICE} has no {' / '.join(missing)} "
                                        "condition, so MSK Connect could assume it for another account's or "
                                        f"connector's request ({DOC_ROLE}: the trust policy it must have; {DOC_DEPUTY}). "
                                        "Fix: StringEquals aws:SourceAccount <account> and ArnLike aws:SourceArn "
                                        "arn:aws:kafkaconnect:<region>:<account>:connector/<name>/* "
                                        "(components/mskconnect_common.py trust_policy)."))
        docs = [rp.props.get("policy") for rp in iam_documents.policies_of(role, role_policies)]
        tags = connector.props.get("tags")
        if any(d is UNKNOWN for d in docs) or tags is UNKNOWN:
            continue
        tags = tags if isinstance(tags, dict) else {}
        target, source = tags.get(TARGET_TAG), tags.get(SOURCE_TAG)
        if not isinstance(target, str) or (_is_mirror(connector) and not isinstance(source, str)):
            violations.append(Violation(connector, f"{connector.label}: no {TARGET_TAG}"
                                        f"{' / ' + SOURCE_TAG if _is_mirror(connector) else ''} tag naming the "
                                        "cluster ARNs it works on, so its role cannot be checked against them. Fix: "
                                        "tag the connector with them (components/mskconnect_common.py's connector() does)."))
            continue
        statements = [s for d in docs for s in iam_documents.statements(base.document(d))]
        sides = [("target", target, _TARGET_NEEDS)] + ([("source", source, _SOURCE_NEEDS)] if _is_mirror(connector) else [])
        for side, cluster_arn, needs in sides:
            if ":cluster/" not in cluster_arn:
                continue
            missing = sorted({f"{a} on its {kind}s" if kind != "cluster" else a for kind, a in needs
                              if not iam_documents.allows(statements, a, _resource(cluster_arn, kind))})
            if missing:
                violations.append(Violation(connector, f"{connector.label}: its execution role lacks on the {side} "
                                            f"cluster {cluster_arn}: {', '.join(missing)} ({DOC_ROLE}; the groups' "
                                            "rights are what MirrorMaker 2's offset sync does). Fix: grant them on "
                                            "the cluster, topic/<name>/<uuid>/* and group/<name>/<uuid>/*."))
    return violations


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    base.resource_policy(
        "mskconnect-connector-valid",
        "Every MSK Connect connector is one CreateConnector accepts: a 1-128 character name, Kafka Connect 2.7.1 or "
        "3.7.x, exactly one capacity mode with 1/2/4/8 MCUs, at least one worker (max >= min), CPU thresholds 1-100, "
        "exactly one plugin, NONE|IAM authentication and PLAINTEXT|TLS encryption, and not the service-linked role "
        f"({DOC_CREATE}; {DOC_VERSIONS}; {DOC_CAPACITY}; {DOC_PLUGINS}; {DOC_AUTH}; {DOC_ROLE}). The search tool "
        "showed no documented upper bound for the worker counts; none is encoded.",
        check_connector),
    base.resource_policy(
        "mskconnect-connector-iam-tls-logs",
        "Every MSK Connect connector (MirrorMaker 2 or the topic backup) reaches its cluster with IAM (the stacks' "
        "clusters accept nothing else) over TLS (MSK serves IAM access control on its TLS listener only) and delivers "
        f"its worker logs to a CloudWatch log group ({DOC_AUTH}; {DOC_IAM_TLS}; {DOC_LOGS}).",
        check_connector_iam_tls_logs),
    base.resource_policy(
        "mskconnect-custom-plugin-valid",
        f"Every MSK Connect custom plugin is a JAR or ZIP file in an S3 bucket, its key agreeing with its type "
        f"({DOC_PLUGINS}).",
        check_custom_plugin),
    base.resource_policy(
        "mskconnect-worker-configuration-valid",
        "Every MSK Connect worker configuration sets key.converter and value.converter and only the producer./"
        f"consumer. properties MSK Connect supports ({DOC_WORKER}).",
        check_worker_configuration),
    base.resource_policy(
        "mskconnect-mirrormaker2-settings",
        "Every MirrorMaker 2 connector copies under identical topic names (IdentityReplicationPolicy), byte for byte "
        "(ByteArrayConverter), with group offset sync, checkpoints and the offset syncs on the target, and reaches "
        f"both clusters with SASL_SSL / AWS_MSK_IAM ({DOC_IDENTITY}; {DOC_WORKER}; {DOC_IAM_TLS}; DR invariants of "
        "this project, as contract/mirrormaker2.py sets them for the sandbox too).",
        check_mirrormaker2),
    base.stack_policy(
        "mskconnect-execution-role",
        f"Every MSK Connect connector's service execution role trusts {SERVICE}, scoped by aws:SourceAccount and "
        "aws:SourceArn (the trust policy the page says the role must have), and grants Connect/DescribeCluster, "
        "CreateTopic/WriteData/ReadData/DescribeTopic on the topics and AlterGroup/DescribeGroup on the groups of its "
        "target cluster, and (MirrorMaker 2) read rights on its source cluster. "
        f"({DOC_ROLE}; {DOC_DEPUTY}. The search tool's text of that page stops inside the internal-topics "
        "statement, before its Resource and any group statement: the group rights here follow MirrorMaker 2's offset "
        "sync and the backup's Connect groups, not a quoted AWS statement.)",
        base.ignoring_settings(check_execution_role)),
]
"""The MSK Connect policies, all mandatory (``base.resource_policy``/``stack_policy``)."""
