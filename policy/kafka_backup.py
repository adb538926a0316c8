"""The Kafka topic backup's rules (MSK Connect connector, custom plugin, the backups bucket's
lifecycle), as CrossGuard policies. Imported as ``policy.kafka_backup`` (tests) and as
``kafka_backup`` (the CLI runs the pack with ``sys.path[0] = policy/``); ``rules.py`` imports it last.
"""

from __future__ import annotations

from typing import Any

try:  # the tests import the package, the CLI the directory
    from . import rules
except ImportError:  # pragma: no cover - exercised by the served-pack test
    import rules  # type: ignore[no-redef]

Resource = rules.Resource
get = rules.get
as_list = rules.as_list
is_set = rules.is_set

CONNECTOR = "aws:mskconnect/connector:Connector"
CUSTOM_PLUGIN = "aws:mskconnect/customPlugin:CustomPlugin"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
KAFKA_CONNECT_VERSIONS = ("2.7.1", "3.7.x")
MCU_COUNTS = (1, 2, 4, 8)
MAX_LIFECYCLE_RULES = 1000

DOC_MSKC = 'MSK Developer Guide, "Understand MSK Connect" (Kafka Connect 2.7.1 or 3.7.x)'
DOC_CAPACITY = 'Amazon MSK Connect API Reference, "ProvisionedCapacity"/"AutoScaling" (mcuCount 1, 2, 4, 8)'
DOC_PLUGINS = 'MSK Developer Guide, "Create custom plugins" (a JAR file, or a ZIP file of JARs, in S3)'
DOC_LIFECYCLE = 'Amazon S3 API Reference, "LifecycleConfiguration" ("You can add as many as 1000 rules")'
DOC_RULE_ID = 'Amazon S3 API Reference, "LifecycleRule" (ID: "Unique identifier for the rule", at most 255 characters)'
DOC_STREAMING = "components/streaming.py: the clusters take IAM over TLS only"


def check_connector(r: Resource) -> list[str]:
    if r.type != CONNECTOR:
        return []
    problems = []
    version = r.props.get("kafkaconnectVersion")
    if isinstance(version, str) and version not in KAFKA_CONNECT_VERSIONS:
        problems.append(f"{r.label}: kafkaconnectVersion {version!r}; MSK Connect runs {' or '.join(KAFKA_CONNECT_VERSIONS)} "
                        f"({DOC_MSKC}). Fix: kafkaconnect_version=\"3.7.x\".")
    for mode in ("provisionedCapacity", "autoscaling"):
        mcu = get(r.props, "capacity", mode, "mcuCount")
        if isinstance(mcu, int) and mcu not in MCU_COUNTS:
            problems.append(f"{r.label}: capacity.{mode}.mcuCount {mcu}; MSK Connect takes 1, 2, 4 or 8 ({DOC_CAPACITY}). "
                            "Fix: one of those.")
    auth = get(r.props, "kafkaClusterClientAuthentication", "authenticationType")
    if isinstance(auth, str) and auth != "IAM":
        problems.append(f"{r.label}: kafkaClusterClientAuthentication {auth!r}; this project's MSK clusters admit IAM "
                        f"clients only ({DOC_STREAMING}; MSK Connect supports IAM or NONE). Fix: authentication_type=\"IAM\".")
    tls = get(r.props, "kafkaClusterEncryptionInTransit", "encryptionType")
    if isinstance(tls, str) and tls != "TLS":
        problems.append(f"{r.label}: kafkaClusterEncryptionInTransit {tls!r}; IAM access control needs TLS and the "
                        f"clusters take TLS only ({DOC_STREAMING}). Fix: encryption_type=\"TLS\".")
    logs = get(r.props, "logDelivery", "workerLogDelivery")
    if logs is not rules.UNKNOWN and not any(get(logs, k, "enabled") is True
                                             for k in ("cloudwatchLogs", "s3", "firehose")):
        problems.append(f"{r.label}: worker logs are delivered nowhere; a failing backup connector would be silent "
                        "(MSK Developer Guide, 'Logging for MSK Connect': zero or more destinations). Fix: log_delivery with cloudwatch_logs enabled.")
    return problems


def check_custom_plugin(r: Resource) -> list[str]:
    if r.type != CUSTOM_PLUGIN:
        return []
    problems = []
    kind = r.props.get("contentType")
    key = get(r.props, "location", "s3", "fileKey")
    if isinstance(kind, str) and kind not in ("ZIP", "JAR"):
        problems.append(f"{r.label}: contentType {kind!r} ({DOC_PLUGINS}). Fix: ZIP or JAR.")
    if isinstance(kind, str) and isinstance(key, str) and not key.lower().endswith("." + kind.lower()):
        problems.append(f"{r.label}: contentType {kind} but the file is {key!r} ({DOC_PLUGINS}). Fix: the content type "
                        "of the uploaded file.")
    return problems


def check_lifecycle_rules(r: Resource) -> list[str]:
    if r.type != LIFECYCLE:
        return []
    rules_ = as_list(r.props.get("rules"))
    if len(rules_) > MAX_LIFECYCLE_RULES:
        return [f"{r.label}: {len(rules_)} lifecycle rules; S3 takes at most {MAX_LIFECYCLE_RULES} per bucket "
                f"({DOC_LIFECYCLE}). Fix: fewer rules (back up fewer topics, or group them under one prefix)."]
    ids = [x.get("id") for x in rules_ if isinstance(x, dict) and isinstance(x.get("id"), str)]
    problems = []
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        problems.append(f"{r.label}: lifecycle rule id(s) {', '.join(dup)} used twice ({DOC_RULE_ID}). Fix: unique ids.")
    long_ = [i for i in ids if len(i) > 255]
    if long_:
        problems.append(f"{r.label}: lifecycle rule id {long_[0][:40]}… has {len(long_[0])} characters ({DOC_RULE_ID}). "
                        "Fix: at most 255.")
    return problems


POLICIES: list[Any] = [
    rules.resource_policy(
        "mskconnect-connector-supported-and-secure",
        f"An MSK Connect connector runs a supported Kafka Connect version ({DOC_MSKC}), 1/2/4/8 MCUs per worker "
        f"({DOC_CAPACITY}), reaches its cluster with IAM over TLS ({DOC_STREAMING}), and delivers its worker logs.",
        check_connector),
    rules.resource_policy(
        "mskconnect-custom-plugin-jar-or-zip",
        f"An MSK Connect custom plugin is a JAR or a ZIP whose content type matches the file ({DOC_PLUGINS}).",
        check_custom_plugin),
    rules.resource_policy(
        "s3-lifecycle-rule-limit",
        f"A bucket's lifecycle configuration has at most {MAX_LIFECYCLE_RULES} rules ({DOC_LIFECYCLE}), each id once "
        f"and at most 255 characters ({DOC_RULE_ID}).",
        check_lifecycle_rules),
]
rules.register(POLICIES)
