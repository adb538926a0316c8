"""What AWS documents about the KMS keys and aliases, SNS topics and SSM parameters the stacks
declare, as checks and the policies that wrap them. Each check names the document its rule comes
from; ``docs/stacks.md#aws-rules-s3`` lists them with where they are enforced and the test that
shows each refusing the broken form. Like every check of the pack they judge only values a preview
knows. (Key rotation, SNS encryption with a customer key: ``invariants.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .base import (
    KMS_KEY,
    METRIC_ALARM,
    SNS_TOPIC,
    UNKNOWN,
    Resource,
    Violation,
    as_list,
    ignoring_settings,
    is_number,
    is_set,
    of_type,
    resource_policy,
    stack_policy,
)
from .iam_documents import statement_allows, statements_or_none

# ---- pulumi-aws 7.x type tokens (checked against the installed provider in the tests) -------

KMS_ALIAS = "aws:kms/alias:Alias"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"

# ---- the documents ---------------------------------------------------------------------------

KMS_KEY_DOC = ("pulumi-aws aws.kms.Key (deletion_window_in_days 7-30, rotation_period_in_days 90-2560) and KMS API "
               "Reference 'EnableKeyRotation' (automatic rotation only for symmetric encryption keys)")
KMS_ALIAS_DOC = "KMS Developer Guide, 'Create aliases'"
SNS_KMS_DOC = ("SNS Developer Guide, 'Key management': 'Enable compatibility between event sources from AWS services "
               "and encrypted topics'")
SNS_TOPIC_NAME_DOC = "SNS API Reference, 'CreateTopic' (Name)"
SSM_NAME_DOC = ("SSM API Reference, 'PutParameter' (Name: naming constraints, fifteen levels; 1011 characters "
                "including the ARN that precedes the name, arn:aws:ssm:us-east-2:111122223333:parameter/) and "
                "CloudFormation 'AWS::SSM::Parameter' Name (\"including the full length of the parameter ARN\")")
SSM_TYPE_DOC = "pulumi-aws aws.ssm.Parameter (type: String, StringList or SecureString)"
SSM_STANDARD_SIZE_DOC = ("SSM PutParameter's ValidationException \"Standard tier parameters support a maximum parameter "
                         "value of 4096 characters\" (quoted in a public error report; the User Guide's tier page "
                         "was not found by the search)")
SSM_TIER_DOC = ("pulumi-aws aws.ssm.Parameter 'tier' (\"If not specified, will use the default parameter tier for "
                "the region\"): only an explicit Standard is held to the Standard limit")
SSM_STANDARD_MAX_CHARS = 4096

# ---- limits, from those documents --------------------------------------------------------------

CLOUDWATCH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")
SSM_NAME_MAX = 1011
SHORTEST_REGION = "us-east-1"
"""When a parameter's region is unknown, its ARN is at least this long (no Region name is shorter):
the length check refuses only a name too long in every Region."""
_ALIAS_NAME = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")
_SSM_NAME = re.compile(r"^[a-zA-Z0-9_.\-/]+$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def ssm_arn_length(name: str, region: str | None = None) -> int:
    """The length of the parameter's ARN, which PutParameter's 1011-character limit counts:
    arn:<partition>:ssm:<region>:<12-digit account>:parameter, then the name (a / put before a name
    without one). Without a region, the shortest Region name (and the aws partition)."""
    region = region or SHORTEST_REGION
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return len(f"arn:{partition}:ssm:{region}:{'0' * 12}:parameter") + len(name) + (0 if name.startswith("/") else 1)


def ssm_name_problems(name: str, region: str | None = None) -> list[str]:
    """What is wrong with an SSM parameter name by PutParameter's naming constraints (empty: nothing)."""
    problems = []
    if not _SSM_NAME.match(name):
        problems.append("only a-zA-Z0-9_.- and / (no spaces)")
    if "/" in name and not name.startswith("/"):
        problems.append("a name in a hierarchy starts with /")
    if name.lstrip("/").lower().startswith(("aws", "ssm")):
        problems.append("not prefixed with aws or ssm (any case)")
    arn = ssm_arn_length(name, region)
    if arn > SSM_NAME_MAX:
        problems.append(f"at most {SSM_NAME_MAX} characters counting the ARN before it (arn:aws:ssm:"
                        f"{region or SHORTEST_REGION}:<account>:parameter/...: {arn})")
    if len([p for p in name.split("/") if p]) > 15:
        problems.append("at most fifteen hierarchy levels")
    return problems


def check_kms_key(r: Resource) -> list[str]:
    if r.type != KMS_KEY:
        return []
    problems = []
    window = r.props.get("deletionWindowInDays")
    if is_number(window) and not 7 <= window <= 30:
        problems.append(f"{r.label}: deletionWindowInDays is {window}; KMS takes 7 to 30 ({KMS_KEY_DOC}). "
                        "Fix: deletion_window_in_days=30 (the longest time to undo a mistake).")
    period = r.props.get("rotationPeriodInDays")
    if is_number(period) and not 90 <= period <= 2560:
        problems.append(f"{r.label}: rotationPeriodInDays is {period}; KMS takes 90 to 2560 ({KMS_KEY_DOC}). "
                        "Fix: rotation_period_in_days=365.")
    spec, usage = r.props.get("customerMasterKeySpec"), r.props.get("keyUsage")
    asymmetric = (isinstance(spec, str) and spec != "SYMMETRIC_DEFAULT") or \
        (isinstance(usage, str) and usage != "ENCRYPT_DECRYPT")
    if r.props.get("enableKeyRotation") is True and asymmetric:
        problems.append(f"{r.label}: rotation is on for a {spec}/{usage} key; KMS rotates symmetric encryption keys "
                        f"only ({KMS_KEY_DOC}). Fix: customer_master_key_spec='SYMMETRIC_DEFAULT', "
                        "key_usage='ENCRYPT_DECRYPT' for a data key.")
    return problems


def check_kms_alias(r: Resource) -> list[str]:
    if r.type != KMS_ALIAS:
        return []
    name = r.props.get("name")
    if not isinstance(name, str) or not name:
        return []
    if not _ALIAS_NAME.match(name) or len(name) > 256:
        return [f"{r.label}: alias name {name!r} is not 'alias/' followed by letters, digits, '/', '_' and '-', at most "
                f"256 characters in all ({KMS_ALIAS_DOC}). Fix: e.g. name='alias/regionpair-prod'."]
    if name.startswith("alias/aws/"):
        return [f"{r.label}: alias name {name!r} starts with alias/aws/, which KMS reserves for AWS managed keys "
                f"({KMS_ALIAS_DOC}). Fix: a name outside alias/aws/, e.g. alias/regionpair-prod."]
    return []


def check_sns_topic_name(r: Resource) -> list[str]:
    if r.type != SNS_TOPIC:
        return []
    name = r.props.get("name")
    if not isinstance(name, str) or not name:
        return []
    fifo = r.props.get("fifoTopic") is True
    base = name[:-len(".fifo")] if fifo and name.endswith(".fifo") else name
    if _TOPIC_NAME.match(base) and len(name) <= 256 and (not fifo or name.endswith(".fifo")):
        return []
    return [f"{r.label}: topic name {name!r} is not 1 to 256 letters, digits, '-' and '_' (a FIFO topic's ending in "
            f".fifo) ({SNS_TOPIC_NAME_DOC}). Fix: e.g. name='regionpair-prod-alarms'."]


def check_ssm_parameter(r: Resource) -> list[str]:
    if r.type != SSM_PARAMETER:
        return []
    problems = []
    name = r.props.get("name")
    if isinstance(name, str) and name:
        region = r.props.get("region")
        wrong = ssm_name_problems(name, region if isinstance(region, str) and region else None)
        if wrong:
            problems.append(f"{r.label}: parameter name {name!r} breaks SSM's naming constraints ({SSM_NAME_DOC}): it "
                            f"must have {'; '.join(wrong)}. Fix: e.g. /regionpair/s3/writer-bucket.")
    kind = r.props.get("type")
    if isinstance(kind, str) and kind not in ("String", "StringList", "SecureString"):
        problems.append(f"{r.label}: type {kind!r} ({SSM_TYPE_DOC}). Fix: type='String'.")
    tier = r.props.get("tier")
    value = r.props.get("value", r.props.get("insecureValue"))
    if tier == "Standard" and isinstance(value, str) and len(value) > SSM_STANDARD_MAX_CHARS:
        problems.append(f"{r.label}: a {len(value)}-character value in the Standard tier, which holds at most "
                        f"{SSM_STANDARD_MAX_CHARS} ({SSM_STANDARD_SIZE_DOC}). Fix: tier='Advanced' (or "
                        "'Intelligent-Tiering'), or a shorter value.")
    return problems


def _kms_key_id(value: Any) -> str | None:
    """The key id of a key ARN (``arn:…:key/<id>``), or the value itself when it is a bare id."""
    if not isinstance(value, str):
        return None
    return value.rsplit("key/", 1)[-1] if ":key/" in value else value


def _keys_for(value: Any, keys: list[Resource]) -> tuple[list[Resource], bool]:
    """The keys of the stack a topic's kmsMasterKeyId names, and whether that is certain; when it
    cannot be told (an unknown value, or keys whose ARN this run does not show), every key."""
    wanted = _kms_key_id(value)
    by_id = [k for k in keys if wanted is not None and wanted in
             (k.props.get("keyId"), _kms_key_id(k.props.get("arn")), k.props.get("id"))]
    return (by_id, True) if by_id else (keys, False)


def _principal_services(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if not isinstance(principal, Mapping):
        return []
    return [s for s in as_list(principal.get("Service")) if isinstance(s, str)]


def key_policy_lets_cloudwatch_publish(policy: Any) -> bool | None:
    """Does the key policy let cloudwatch.amazonaws.com Decrypt and GenerateDataKey*? None: unknown."""
    statements = statements_or_none(policy)
    if statements is None:
        return None
    cw = [s for s in statements if "cloudwatch.amazonaws.com" in _principal_services(s)]
    return all(any(statement_allows(s, a) for s in cw) for a in CLOUDWATCH_KEY_ACTIONS)


def check_alarm_topic_keys(resources: list[Resource]) -> list[Violation]:
    """A CloudWatch alarm that notifies a KMS-encrypted topic needs the key's policy to let
    cloudwatch.amazonaws.com use it; without it every notification is dropped, silently."""
    alarms = of_type(resources, METRIC_ALARM)
    topics = [t for t in of_type(resources, SNS_TOPIC) if is_set(t.props.get("kmsMasterKeyId"))]
    keys = of_type(resources, KMS_KEY)
    if not alarms or not topics:
        return []
    actions: list[Any] = []
    for a in alarms:
        for prop in ("alarmActions", "okActions", "insufficientDataActions"):
            value = a.props.get(prop)
            actions += [UNKNOWN] if value is UNKNOWN else as_list(value)
    violations = []
    for t in topics:
        name = t.props.get("name")
        notified = UNKNOWN in actions or any(
            isinstance(x, str) and (x == t.props.get("arn") or isinstance(name, str) and x.endswith(f":{name}"))
            for x in actions)
        if not notified:
            continue
        candidates, certain = _keys_for(t.props.get("kmsMasterKeyId"), keys)
        which = "this key" if certain else "a key of this stack (which one, this run cannot tell: every key is held to it)"
        for k in candidates:
            if key_policy_lets_cloudwatch_publish(k.props.get("policy")) is False:
                violations.append(Violation(k, f"{k.label}: CloudWatch alarms notify the topic {t.name}, encrypted with "
                                            f"{which}, but the key policy does not let cloudwatch.amazonaws.com "
                                            f"kms:Decrypt and kms:GenerateDataKey* ({SNS_KMS_DOC}); every alarm "
                                            "notification would be dropped. Fix: add a key policy statement allowing "
                                            "the service principal cloudwatch.amazonaws.com those two actions."))
    return violations


# ---- the policies ---------------------------------------------------------------------------

RESOURCE_POLICIES: list[Any] = [
    resource_policy("kms-key-settings-valid",
                    f"KMS keys: deletion window 7-30 days, rotation period 90-2560 days, rotation only on symmetric "
                    f"encryption keys. Source: {KMS_KEY_DOC}.",
                    check_kms_key),
    resource_policy("kms-alias-name-valid",
                    f"KMS aliases are alias/<letters, digits, / _ ->, not under alias/aws/. Source: {KMS_ALIAS_DOC}.",
                    check_kms_alias),
    resource_policy("sns-topic-name-valid", f"SNS topic names follow {SNS_TOPIC_NAME_DOC}.", check_sns_topic_name),
    resource_policy("ssm-parameter-valid",
                    "SSM parameter names (1011 characters counting the ARN before the name), types, and value "
                    "sizes of parameters declared in the Standard tier AWS accepts. Sources: "
                    f"{SSM_NAME_DOC}; {SSM_TYPE_DOC}; {SSM_STANDARD_SIZE_DOC}; {SSM_TIER_DOC}.",
                    check_ssm_parameter),
]

STACK_POLICIES: list[Any] = [
    stack_policy("kms-key-lets-cloudwatch-publish",
                 "The key of a KMS-encrypted SNS topic that CloudWatch alarms notify lets cloudwatch.amazonaws.com "
                 f"kms:Decrypt and kms:GenerateDataKey*. Source: {SNS_KMS_DOC}.",
                 ignoring_settings(check_alarm_topic_keys)),
]

POLICIES: list[Any] = RESOURCE_POLICIES + STACK_POLICIES
