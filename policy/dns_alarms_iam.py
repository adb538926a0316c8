"""AWS's own rules for Route53 health checks and records, CloudWatch metric alarms, and IAM roles
and policies, as CrossGuard policies (issue 10, points 5, 8 and 9).

Each policy's description names the document the rule comes from; docs/stacks.md#aws-rules-dns
lists them with where they are enforced and the test that shows each refusing the broken form.
``policy/rules.py`` puts ``POLICIES`` in ``rules.POLICIES``, the pack's one list.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from . import base

Resource, Violation, UNKNOWN, get, as_list, is_set = (base.Resource, base.Violation, base.UNKNOWN, base.get,
                                                      base.as_list, base.is_set)

ROUTE53_HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ROUTE53_RECORD = base.ROUTE53_RECORD
METRIC_ALARM = base.METRIC_ALARM
IAM_ROLE = base.IAM_ROLE
IAM_ROLE_POLICY = base.IAM_ROLE_POLICY
IAM_POLICY = "aws:iam/policy:Policy"

ENDPOINT_CHECK_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")
HEALTH_CHECK_TYPES = ENDPOINT_CHECK_TYPES + ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL")
INSUFFICIENT_DATA = ("Healthy", "Unhealthy", "LastKnownStatus")
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
ROUTING_POLICIES = ("failoverRoutingPolicies", "weightedRoutingPolicies", "latencyRoutingPolicies",
                    "geolocationRoutingPolicies", "geoproximityRoutingPolicy", "cidrRoutingPolicy",
                    "multivalueAnswerRoutingPolicy")

_ROUTE53_API = "Route 53 API Reference, HealthCheckConfig"
_FAILOVER_DOCS = "Route 53 Developer Guide, 'Values specific for failover records'"


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- Route53 ---------------------------------------------------------------------------------


def check_health_check(r: Resource) -> list[str]:
    """What each health-check type needs (Route 53 API Reference, HealthCheckConfig; pulumi-aws
    aws.route53.HealthCheck)."""
    if r.type != ROUTE53_HEALTH_CHECK:
        return []
    p = r.props
    kind = p.get("type")
    if kind is UNKNOWN:
        return []
    if kind not in HEALTH_CHECK_TYPES:
        return [f"{r.label}: type {kind!r} is not a Route53 health-check type. Fix: one of "
                f"{', '.join(HEALTH_CHECK_TYPES)}."]
    problems = []
    if kind in ENDPOINT_CHECK_TYPES:
        if not is_set(p.get("fqdn")) and not is_set(p.get("ipAddress")):
            problems.append(f"{r.label}: a {kind} check probes an endpoint but names none. Fix: set fqdn (or ip_address).")
        interval = p.get("requestInterval")
        if _num(interval) and interval not in (10, 30):
            problems.append(f"{r.label}: requestInterval={interval:g}; Route53 probes every 10 or 30 seconds. "
                            "Fix: request_interval=10 or 30.")
        threshold = p.get("failureThreshold")
        if _num(threshold) and not 1 <= threshold <= 10:
            problems.append(f"{r.label}: failureThreshold={threshold:g}; Route53 allows 1 to 10. Fix: "
                            "failure_threshold between 1 and 10.")
        if kind.endswith("STR_MATCH") and not is_set(p.get("searchString")):
            problems.append(f"{r.label}: a {kind} check matches a string but names none. Fix: set search_string.")
        if kind == "TCP" and is_set(p.get("resourcePath")):
            problems.append(f"{r.label}: a TCP check has no resource path (resourcePath is for HTTP/HTTPS). "
                            "Fix: remove resource_path.")
    elif kind == "CALCULATED":
        threshold = p.get("childHealthThreshold")
        if threshold is None:
            problems.append(f"{r.label}: a CALCULATED check without a threshold. Fix: child_health_threshold "
                            "(0-256; 0: always healthy).")
        elif _num(threshold) and not 0 <= threshold <= 256:
            problems.append(f"{r.label}: childHealthThreshold={threshold:g}; Route53 allows 0 to 256. Fix: 0-256.")
        children = p.get("childHealthchecks")
        if isinstance(children, list) and len(children) > 256:
            problems.append(f"{r.label}: {len(children)} child health checks; Route53 allows at most 256. "
                            "Fix: split them over several calculated checks.")
    elif kind == "CLOUDWATCH_METRIC":
        for prop, arg in (("cloudwatchAlarmName", "cloudwatch_alarm_name"),
                          ("cloudwatchAlarmRegion", "cloudwatch_alarm_region")):
            if not is_set(p.get(prop)):
                problems.append(f"{r.label}: a CLOUDWATCH_METRIC check without {arg}. Fix: set {arg} (the alarm "
                                "Route53 watches, and its region).")
        status = p.get("insufficientDataHealthStatus")
        if status is None:
            problems.append(f"{r.label}: a CLOUDWATCH_METRIC check without insufficient_data_health_status: "
                            "Route53 must be told what the check is while the alarm has no data. Fix: "
                            f"insufficient_data_health_status={' | '.join(INSUFFICIENT_DATA)}.")
        elif status is not UNKNOWN and status not in INSUFFICIENT_DATA:
            problems.append(f"{r.label}: insufficientDataHealthStatus={status!r}. Fix: one of "
                            f"{' | '.join(INSUFFICIENT_DATA)}.")
    return problems


def check_record(r: Resource) -> list[str]:
    """A routing-policy record needs a set identifier; an alias takes no TTL or values and a plain
    record needs both; a CNAME has one value; one routing policy per record (Route 53 Developer
    Guide, 'Values specific for failover records' / 'Values common for all routing policies';
    pulumi-aws aws.route53.Record)."""
    if r.type != ROUTE53_RECORD:
        return []
    p = r.props
    problems = []
    policies = [k for k in ROUTING_POLICIES if is_set(p.get(k)) and p.get(k) is not False]
    if len(policies) > 1:
        problems.append(f"{r.label}: {len(policies)} routing policies ({', '.join(policies)}); a record has one. "
                        "Fix: keep one.")
    if policies and not is_set(p.get("setIdentifier")):
        problems.append(f"{r.label}: a {policies[0]} record without set_identifier; Route53 needs it to tell the "
                        "records of one name and type apart. Fix: set set_identifier (e.g. the stack and region).")
    for policy in as_list(p.get("failoverRoutingPolicies")):
        kind = get(policy, "type")
        if kind is not UNKNOWN and kind not in ("PRIMARY", "SECONDARY"):
            problems.append(f"{r.label}: failover type {kind!r}. Fix: PRIMARY or SECONDARY.")
    if is_set(p.get("aliases")):
        if is_set(p.get("ttl")) or is_set(p.get("records")):
            problems.append(f"{r.label}: an alias record takes its TTL and target from the alias; ttl and records are "
                            "not allowed with aliases. Fix: remove ttl and records.")
    else:
        if not is_set(p.get("ttl")) or not is_set(p.get("records")):
            problems.append(f"{r.label}: a record that is not an alias has no ttl or no records. Fix: set both.")
        records = p.get("records")
        if p.get("type") == "CNAME" and isinstance(records, list) and len(records) > 1:
            problems.append(f"{r.label}: a CNAME has exactly one value, not {len(records)}. Fix: one value.")
    return problems


def runbook_controlled(check: Resource) -> bool:
    """A check Route53 always considers healthy until someone inverts it: disabled ("Route 53
    considers the status of the health check to always be healthy"), or CALCULATED with a threshold
    of 0 ("If you specify 0, Route 53 always considers this health check to be healthy")."""
    p = check.props
    return p.get("disabled") is True or (p.get("type") == "CALCULATED" and p.get("childHealthThreshold") == 0)


def check_failover_guards(resources: list[Resource]) -> list[Violation]:
    """A PRIMARY failover record's health check cannot flip on its own: it is a check of this stack
    that only an inversion makes unhealthy (DESIGN.md: a database name moves only when the runbook
    has fenced and promoted)."""
    checks = [c for c in resources if c.type == ROUTE53_HEALTH_CHECK]
    violations = []
    for r in resources:
        if r.type != ROUTE53_RECORD:
            continue
        if "PRIMARY" not in [get(x, "type") for x in as_list(r.props.get("failoverRoutingPolicies"))]:
            continue
        hc = r.props.get("healthCheckId")
        if not is_set(hc):
            continue  # route53-primary-failover-health-check refuses that
        deps = r.property_dependencies.get("healthCheckId", ())
        guards = [c for c in checks if c.urn and c.urn in deps]
        if not guards:
            if hc is UNKNOWN and not deps:
                continue  # nothing to match on during this preview; `pulumi up` sees the dependencies
            violations.append(Violation(r, f"{r.label}: its health check {hc!r} is not declared in this stack, so "
                                        "nothing shows it cannot flip on its own. Fix: guard it with this stack's "
                                        "pin check (components/dns.py: CALCULATED, child_health_threshold=0, "
                                        "disabled=True)."))
        for g in guards:
            if not runbook_controlled(g):
                violations.append(Violation(r, f"{r.label}: guarded by {g.name} (type {g.props.get('type')!r}, "
                                            f"disabled={g.props.get('disabled')!r}), which turns unhealthy by itself "
                                            "when its endpoint fails, and then Route53 sends writers to the "
                                            "unpromoted replica. Fix: guard the record with a check only the runbook "
                                            "moves: type CALCULATED with child_health_threshold=0 and disabled=True "
                                            "(it pins DR by inverting it); let the endpoint check alarm instead."))
    return violations


def check_failover_pairs(resources: list[Resource]) -> list[Violation]:
    """One record per (name, type, failover role) in a stack; in the dr stack, every PRIMARY name prod
    exports has its SECONDARY here and no SECONDARY is without one (Route 53 Developer Guide, 'Values
    specific for failover records': the same name and type for both records of a failover group)."""
    violations = []
    seen: dict[tuple[Any, Any, Any], Resource] = {}
    secondaries = set()
    for r in resources:
        if r.type != ROUTE53_RECORD:
            continue
        name, kind = r.props.get("name"), r.props.get("type")
        for policy in as_list(r.props.get("failoverRoutingPolicies")):
            role = get(policy, "type")
            if UNKNOWN in (name, kind, role) or not isinstance(name, str):
                continue
            key = (name.rstrip(".").lower(), kind, role)
            if key in seen:
                violations.append(Violation(r, f"{r.label}: a second {role} {kind} record named {name} (also "
                                            f"{seen[key].name}); a failover group has one {role}. Fix: remove one."))
            seen[key] = r
            if role == "SECONDARY":
                secondaries.add((key[0], kind))
    for ref in resources:
        if ref.type != base.STACK_REFERENCE:
            continue
        for doc in base.contract_documents(ref.props.get("outputs")):
            records = (doc.get("dns") or {}).get("records") or {}
            names = {str(v).rstrip(".").lower() for v in records.values() if isinstance(v, str)}
            if not names or not secondaries:
                continue
            mine = {n for n, _ in secondaries}
            for missing in sorted(names - mine):
                violations.append(Violation(None, f"prod's PRIMARY record {missing} has no SECONDARY in this stack; "
                                            "if prod's pin check is inverted, Route53 has nothing to answer. Fix: add "
                                            "the database to the dr stack (same name and type)."))
            for extra in sorted(mine - names):
                violations.append(Violation(None, f"SECONDARY record {extra} has no PRIMARY in prod's exports. Fix: "
                                            "make regionpair:databases and dns.record_prefix equal in both stacks."))
    return violations


# ---- CloudWatch metric alarms -------------------------------------------------------------------


def check_metric_alarm(r: Resource) -> list[str]:
    """CloudWatch PutMetricAlarm: Period 10, 20, 30 (high-resolution custom metrics only) or a
    multiple of 60; Period × EvaluationPeriods at most one day (period under an hour) or seven days;
    DatapointsToAlarm at most EvaluationPeriods; TreatMissingData one of four values. And the
    project's own: an alarm notifies someone."""
    if r.type != METRIC_ALARM:
        return []
    p = r.props
    problems = []
    if is_set(p.get("metricQueries")):
        return problems  # metric math: periods live in the queries
    period, periods, m = p.get("period"), p.get("evaluationPeriods"), p.get("datapointsToAlarm")
    namespace = p.get("namespace")
    if _num(period):
        if period in (10, 20, 30):
            if isinstance(namespace, str) and namespace.startswith("AWS/"):
                problems.append(f"{r.label}: period {period:g} s on {namespace}; sub-minute periods are for metrics "
                                "stored with a one-second StorageResolution (PutMetricData), which AWS namespaces are "
                                "not: the alarm would sit in INSUFFICIENT_DATA. Fix: period=60 or a multiple of 60.")
        elif period < 60 or period % 60:
            problems.append(f"{r.label}: period {period:g} s; CloudWatch allows 10, 20, 30 or a multiple of 60. "
                            "Fix: a multiple of 60.")
        if _num(periods):
            limit = 86400 if period < 3600 else 604800
            if period * periods > limit:
                problems.append(f"{r.label}: period × evaluationPeriods = {period * periods:g} s; CloudWatch allows "
                                f"at most {limit} s for this period. Fix: fewer or shorter periods.")
    if _num(m) and _num(periods) and not 1 <= m <= periods:
        problems.append(f"{r.label}: datapointsToAlarm={m:g} of evaluationPeriods={periods:g}. Fix: "
                        "datapoints_to_alarm between 1 and evaluation_periods.")
    missing = p.get("treatMissingData")
    if missing is not None and missing is not UNKNOWN and missing not in TREAT_MISSING_DATA:
        problems.append(f"{r.label}: treatMissingData={missing!r}. Fix: one of {' | '.join(TREAT_MISSING_DATA)}.")
    actions = p.get("alarmActions")
    if actions is not UNKNOWN and not as_list(actions):
        problems.append(f"{r.label}: no alarm action; nobody hears it. Fix: alarm_actions=[<the region's alarm "
                        "topic ARN>].")
    for a in as_list(actions):
        if isinstance(a, str) and a.startswith("arn:") and ":sns:" not in a and ":automate:" not in a \
                and ":autoscaling:" not in a and ":ssm" not in a and ":lambda:" not in a:
            problems.append(f"{r.label}: alarm action {a!r} is no SNS topic, automate, Auto Scaling, SSM or Lambda "
                            "ARN. Fix: the region's alarm topic ARN.")
    return problems


ROUTE53_METRICS_REGION = "us-east-1"


def check_route53_alarm_region(r: Resource, provider_region: Any) -> list[str]:
    """Route53 publishes health-check metrics (AWS/Route53) in us-east-1 only: an alarm on them
    anywhere else never gets a datapoint (Route 53 Developer Guide, monitoring health checks with
    CloudWatch; the region is the alarm's provider's, which the engine hands the policy)."""
    if r.type != METRIC_ALARM or r.props.get("namespace") != "AWS/Route53":
        return []
    if not isinstance(provider_region, str) or provider_region == ROUTE53_METRICS_REGION:
        return []
    return [f"{r.label}: an alarm on AWS/Route53 metrics in {provider_region}; Route53 publishes them in "
            f"{ROUTE53_METRICS_REGION} only, so it would never see a datapoint (and with treat_missing_data="
            f"breaching, sit in ALARM for ever). Fix: create it with a {ROUTE53_METRICS_REGION} provider "
            "(stacks/providers.py ROUTE53_METRICS_REGION) and a topic there."]


def _route53_alarm_region_policy() -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        region = None
        if args.provider is not None:
            region = base.plain(args.provider.props).get("region")
        for message in check_route53_alarm_region(Resource.of(args), region):
            report_violation(message, None)
    return ResourceValidationPolicy(
        name="cloudwatch-route53-alarm-in-us-east-1",
        description="Alarms on Route53 health-check metrics are created in us-east-1, the only region where "
                    "Route53 publishes them (Route 53 Developer Guide, monitoring health checks with CloudWatch; "
                    "page not re-read with the search tool).",
        validate=validate, enforcement_level=EnforcementLevel.MANDATORY)


# ---- IAM ------------------------------------------------------------------------------------------

_WHOLE_ACCOUNT = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")


_document = base.document


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def _actions(s: Mapping[str, Any]) -> list[str]:
    return [a for a in as_list(s.get("Action")) if isinstance(a, str)]


def _grants(s: Mapping[str, Any], action: str) -> bool:
    """Does an Allow statement's Action match `action` (wildcards included)?"""
    if s.get("Effect") != "Allow":
        return False
    svc, name = action.lower().split(":")
    for a in _actions(s):
        a = a.lower()
        if a == "*" or a == action.lower():
            return True
        if ":" in a and a.split(":")[0] == svc and re.fullmatch(a.split(":", 1)[1].replace("*", ".*").replace("?", "."),
                                                               name):
            return True
    return False


def _condition(s: Mapping[str, Any], key: str) -> list[tuple[str, Any]]:
    """(operator, value) of every condition on `key` in the statement."""
    found = []
    for op, block in (s.get("Condition") or {}).items():
        if isinstance(block, Mapping):
            for k, v in block.items():
                if k.lower() == key.lower():
                    found.append((op, v))
    return found


def check_iam_policy(r: Resource) -> list[str]:
    """The runbook role's limits (issue 10 point 9), on every role policy the stacks declare:
    kms:CreateGrant only with kms:GrantIsForAWSResource (KMS Developer Guide, 'Controlling access to
    grants'); no s3:DeleteObjectVersion (S3 User Guide, 'Deleting object versions': it removes a
    version for good); route53:ChangeResourceRecordSets only with
    route53:ChangeResourceRecordSetsNormalizedRecordNames (Route 53 Developer Guide, 'Using IAM
    policy conditions for fine-grained access control')."""
    if r.type not in (IAM_ROLE_POLICY, IAM_POLICY):
        return []
    doc = _document(r.props.get("policy"))
    if doc is None:
        return []
    problems = []
    for i, s in enumerate(_statements(doc)):
        where = f"{r.label}: statement {s.get('Sid') or i}"
        if _grants(s, "kms:CreateGrant"):
            values = [v for op, v in _condition(s, "kms:GrantIsForAWSResource") if op.startswith("Bool")]
            if not any(str(v).lower() == "true" or v is True or v == ["true"] for v in values):
                problems.append(f"{where} allows kms:CreateGrant without kms:GrantIsForAWSResource=true, so it may "
                                "hand the key to any principal. Fix: Condition {Bool: {kms:GrantIsForAWSResource: "
                                "'true'}} (RDS asks for the grant itself).")
        if _grants(s, "s3:DeleteObjectVersion"):
            problems.append(f"{where} allows s3:DeleteObjectVersion, which deletes object versions for good (the "
                            "versioning that protects the data). Fix: remove it; undelete copies a version back "
                            "instead of deleting delete markers.")
        if _grants(s, "route53:ChangeResourceRecordSets"):
            names = [v for op, v in _condition(s, "route53:ChangeResourceRecordSetsNormalizedRecordNames")
                     if op.startswith("ForAllValues:")]
            if not names:
                problems.append(f"{where} allows route53:ChangeResourceRecordSets on every record of the zone. Fix: "
                                "Condition {ForAllValues:StringEquals: {route53:ChangeResourceRecordSetsNormalizedRecord"
                                "Names: [<the database record names, lower case, no trailing dot>]}}.")
    return problems


def check_trust_policy(r: Resource) -> list[str]:
    """A role's trust policy names the principals, never a whole account (IAM User Guide, 'AWS JSON
    policy elements: Principal': an account principal lets in every identity of the account that
    its own policies allow)."""
    if r.type != IAM_ROLE:
        return []
    doc = _document(r.props.get("assumeRolePolicy"))
    if doc is None:
        return []
    problems = []
    for s in _statements(doc):
        if s.get("Effect") != "Allow":
            continue
        principal = s.get("Principal")
        aws_principals = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else as_list(principal)
        for p in aws_principals:
            if p == "*" or (isinstance(p, str) and _WHOLE_ACCOUNT.match(p)):
                problems.append(f"{r.label}: the trust policy lets {p!r} assume the role: a whole account (or "
                                "anyone). Fix: name the roles that may assume it (regionpair:runbook_principals).")
    return problems


# ---- the policies -------------------------------------------------------------------------------

POLICIES: list[Any] = [
    base.resource_policy(
        "route53-health-check-valid",
        "Route53 health checks have what their type needs: an endpoint, interval 10|30 and threshold 1-10 for "
        "endpoint checks; child_health_threshold 0-256 for CALCULATED; alarm name, region and "
        "insufficient_data_health_status for CLOUDWATCH_METRIC (Route 53 API Reference, HealthCheckConfig).",
        check_health_check),
    base.resource_policy(
        "route53-record-valid",
        "Route53 records: one routing policy; set_identifier with it; an alias takes no ttl/records and a plain "
        "record needs both; a CNAME has one value (Route 53 Developer Guide, 'Values specific for failover "
        "records'; pulumi-aws aws.route53.Record).",
        check_record),
    base.stack_policy(
        "route53-failover-record-runbook-controlled",
        "A PRIMARY failover record's health check cannot flip on its own: it is this stack's check that Route53 "
        "always considers healthy (disabled, or CALCULATED with threshold 0) until the runbook inverts it (Route 53 "
        "API Reference, HealthCheckConfig: Disabled, HealthThreshold, Inverted).",
        base.ignoring_settings(check_failover_guards)),
    base.stack_policy(
        "route53-failover-pairs",
        "One record per name, type and failover role; in the dr stack every prod PRIMARY name has its SECONDARY "
        "(Route 53 Developer Guide, 'Values specific for failover records').",
        base.ignoring_settings(check_failover_pairs)),
    base.resource_policy(
        "cloudwatch-alarm-valid",
        "Metric alarms: period 10/20/30 (high-resolution custom metrics only) or a multiple of 60; period × "
        "evaluation periods within one day (seven for hourly periods); datapoints_to_alarm ≤ evaluation_periods; "
        "treat_missing_data one of breaching|notBreaching|ignore|missing (CloudWatch API Reference, PutMetricAlarm); "
        "and an alarm action.",
        check_metric_alarm),
    _route53_alarm_region_policy(),
    base.resource_policy(
        "iam-runbook-least-privilege",
        "kms:CreateGrant only with kms:GrantIsForAWSResource (KMS Developer Guide, 'Controlling access to grants'); "
        "no s3:DeleteObjectVersion; route53:ChangeResourceRecordSets only with "
        "route53:ChangeResourceRecordSetsNormalizedRecordNames (Route 53 Developer Guide, 'Using IAM policy "
        "conditions for fine-grained access control').",
        check_iam_policy),
    base.resource_policy(
        "iam-trust-names-principals",
        "A role's trust policy names principals, never a whole account or * (IAM User Guide, 'AWS JSON policy "
        "elements: Principal').",
        check_trust_policy),
]
assert all(isinstance(p, (ResourceValidationPolicy, StackValidationPolicy)) for p in POLICIES)
