"""The Route53, CloudWatch-alarm and IAM rules of the pack (policy/dns_alarms_iam.py): each one
refusing the broken form and accepting the good one, called through the SDK the way the CLI calls
it. The whole stacks are judged in test_policy_graph.py; the documents each rule comes from are
named in the policies' descriptions and in docs/stacks.md#aws-rules-dns."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from typing import Any

import pytest
from pulumi._types import input_type_py_to_pulumi_names
from pulumi_policy import ResourceValidationPolicy

from policy import dns_alarms_iam as dai, rules
from policy.graph import evaluate, policy_resources

POLICY = {p.name: p for p in rules.POLICIES}
OURS = [p.name for p in dai.POLICIES]


def check(policy_name: str, type_: str, props: dict[str, Any]) -> list[str]:
    policy = POLICY[policy_name]
    assert isinstance(policy, ResourceValidationPolicy)
    [resource] = policy_resources([{"type": type_, "name": "it", "parent": None, "inputs": copy.deepcopy(props)}],
                                  stack="test")
    return [f.message for f in evaluate([resource], [policy])]


def test_the_pack_serves_these_policies_with_their_documents_named():
    assert set(OURS) <= set(POLICY) and len(OURS) == 8
    for p in dai.POLICIES:
        assert any(doc in p.description for doc in ("Route 53", "CloudWatch", "KMS Developer Guide", "IAM User Guide")), p.name


def test_the_cli_entry_point_builds_the_pack_from_the_package(monkeypatch):
    """`pulumi preview --policy-pack policy` runs policy/__main__.py with policy/ as sys.path[0]; run it the
    same way (runpy on the directory) with PolicyPack recording instead of serving."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    code = ("import runpy, pulumi_policy; seen = {}; pulumi_policy.PolicyPack = lambda **kw: seen.update(kw); "
            "runpy.run_path('.', run_name='__main__'); print(sorted(p.name for p in seen['policies']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root / "policy", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(name in out.stdout for name in OURS)


# ---- tokens and property names exist in the provider ----------------------------------------------

PROPS = {
    dai.ROUTE53_HEALTH_CHECK: ("route53.HealthCheck", ["type", "fqdn", "ipAddress", "requestInterval",
                                                       "failureThreshold", "searchString", "resourcePath",
                                                       "childHealthThreshold", "childHealthchecks",
                                                       "cloudwatchAlarmName", "cloudwatchAlarmRegion",
                                                       "insufficientDataHealthStatus", "disabled",
                                                       "invertHealthcheck"]),
    dai.ROUTE53_RECORD: ("route53.Record", ["name", "type", "ttl", "records", "aliases", "setIdentifier",
                                            "healthCheckId", *dai.ROUTING_POLICIES]),
    dai.METRIC_ALARM: ("cloudwatch.MetricAlarm", ["period", "evaluationPeriods", "datapointsToAlarm",
                                                  "treatMissingData", "alarmActions", "namespace", "metricQueries"]),
    dai.IAM_ROLE: ("iam.Role", ["assumeRolePolicy"]),
    dai.IAM_ROLE_POLICY: ("iam.RolePolicy", ["policy"]),
    dai.IAM_POLICY: ("iam.Policy", ["policy"]),
}


@pytest.mark.parametrize("token", PROPS)
def test_tokens_and_property_names_are_the_providers(token):
    import pulumi_aws
    module, cls_name = PROPS[token][0].split(".")
    cls = getattr(getattr(pulumi_aws, module), cls_name)
    assert f"'{token}'" in inspect.getsource(cls)
    args = getattr(importlib.import_module(cls.__module__), f"{cls_name}Args")
    names = set(input_type_py_to_pulumi_names(args).values())
    assert [p for p in PROPS[token][1] if p not in names] == []


# ---- Route53 health checks ---------------------------------------------------------------------

HTTPS = {"type": "HTTPS", "fqdn": "api.example.com", "port": 443, "requestInterval": 10, "failureThreshold": 3,
         "resourcePath": "/health"}
PIN = {"type": "CALCULATED", "childHealthThreshold": 0, "childHealthchecks": ["hc-1"], "disabled": True}
CW = {"type": "CLOUDWATCH_METRIC", "cloudwatchAlarmName": "a", "cloudwatchAlarmRegion": "us-east-1",
      "insufficientDataHealthStatus": "LastKnownStatus"}


@pytest.mark.parametrize("good", [HTTPS, PIN, CW, {"type": "TCP", "ipAddress": "10.0.0.1", "port": 5432}])
def test_health_checks_of_every_kind_pass_when_whole(good):
    assert check("route53-health-check-valid", dai.ROUTE53_HEALTH_CHECK, good) == []


@pytest.mark.parametrize("props, words", [
    ({**HTTPS, "requestInterval": 15}, "every 10 or 30 seconds"),
    ({**HTTPS, "failureThreshold": 11}, "1 to 10"),
    ({k: v for k, v in HTTPS.items() if k != "fqdn"}, "names none"),
    ({"type": "TCP", "ipAddress": "10.0.0.1", "resourcePath": "/x"}, "no resource path"),
    ({**HTTPS, "type": "HTTPS_STR_MATCH"}, "search_string"),
    ({k: v for k, v in PIN.items() if k != "childHealthThreshold"}, "without a threshold"),
    ({**PIN, "childHealthThreshold": 257}, "0 to 256"),
    ({k: v for k, v in CW.items() if k != "cloudwatchAlarmRegion"}, "cloudwatch_alarm_region"),
    ({k: v for k, v in CW.items() if k != "insufficientDataHealthStatus"}, "insufficient_data_health_status"),
    ({**CW, "insufficientDataHealthStatus": "Unknown"}, "LastKnownStatus"),
    ({**HTTPS, "type": "ICMP"}, "not a Route53 health-check type"),
])
def test_health_checks_missing_what_their_type_needs_are_refused(props, words):
    found = check("route53-health-check-valid", dai.ROUTE53_HEALTH_CHECK, props)
    assert len(found) == 1 and words in found[0] and "Fix:" in found[0], found


# ---- Route53 records ---------------------------------------------------------------------------

RECORD = {"zoneId": "Z1", "name": "payments.example.com", "type": "CNAME", "ttl": 60, "records": ["db.example"],
          "setIdentifier": "prod-us-east-1", "failoverRoutingPolicies": [{"type": "PRIMARY"}], "healthCheckId": "hc"}


@pytest.mark.parametrize("props, words", [
    ({k: v for k, v in RECORD.items() if k != "setIdentifier"}, "without set_identifier"),
    ({**RECORD, "weightedRoutingPolicies": [{"weight": 1}]}, "2 routing policies"),
    ({**RECORD, "aliases": [{"name": "x.elb.amazonaws.com", "zoneId": "Z2", "evaluateTargetHealth": False}]},
     "not allowed with aliases"),
    ({k: v for k, v in RECORD.items() if k != "ttl"}, "no ttl or no records"),
    ({**RECORD, "records": ["a.example", "b.example"]}, "exactly one value"),
    ({**RECORD, "failoverRoutingPolicies": [{"type": "TERTIARY"}]}, "PRIMARY or SECONDARY"),
])
def test_records_route53_would_refuse_are_refused(props, words):
    assert check("route53-record-valid", dai.ROUTE53_RECORD, RECORD) == []
    found = check("route53-record-valid", dai.ROUTE53_RECORD, props)
    assert any(words in m for m in found) and all("Fix:" in m for m in found), found


def test_an_alias_record_needs_no_ttl():
    alias = {k: v for k, v in RECORD.items() if k not in ("ttl", "records")}
    alias["aliases"] = [{"name": "x.elb.amazonaws.com", "zoneId": "Z2", "evaluateTargetHealth": False}]
    assert check("route53-record-valid", dai.ROUTE53_RECORD, alias) == []


def _stack(*nodes):
    return policy_resources([{"parent": None, **n} for n in nodes], stack="test")


def _guarded(check_props: dict[str, Any]) -> list[str]:
    hc = {"type": dai.ROUTE53_HEALTH_CHECK, "name": "guard", "urn": "urn:guard", "inputs": check_props}
    record = {"type": dai.ROUTE53_RECORD, "name": "rec", "urn": "urn:rec", "inputs": RECORD,
              "property_dependencies": {"healthCheckId": ["urn:guard"]}}
    return [f.message for f in evaluate(_stack(hc, record), [POLICY["route53-failover-record-runbook-controlled"]])]


@pytest.mark.parametrize("guard", [PIN, {**PIN, "disabled": False}, {**HTTPS, "disabled": True}])
def test_a_primary_record_guarded_by_a_check_only_an_inversion_moves_passes(guard):
    assert _guarded(guard) == []


@pytest.mark.parametrize("guard", [HTTPS, {**PIN, "disabled": False, "childHealthThreshold": 1}, CW])
def test_a_primary_record_guarded_by_a_check_that_flips_on_its_own_is_refused(guard):
    (message,) = _guarded(guard)
    assert "turns unhealthy by itself" in message and "unpromoted replica" in message and "Fix:" in message


def test_a_primary_record_whose_check_is_not_in_the_stack_is_refused():
    record = {"type": dai.ROUTE53_RECORD, "name": "rec", "urn": "urn:rec", "inputs": RECORD}
    found = [f.message for f in evaluate(_stack(record), [POLICY["route53-failover-record-runbook-controlled"]])]
    assert len(found) == 1 and "not declared in this stack" in found[0]


# ---- CloudWatch alarms -------------------------------------------------------------------------

ALARM = {"name": "lag", "namespace": "AWS/RDS", "metricName": "ReplicaLag", "statistic": "Minimum", "period": 60,
         "evaluationPeriods": 6, "datapointsToAlarm": 6, "threshold": 150, "comparisonOperator": "GreaterThanThreshold",
         "treatMissingData": "breaching", "alarmActions": ["arn:aws:sns:us-west-2:1:t"]}


@pytest.mark.parametrize("change, words", [
    ({"period": 30}, "sub-minute periods"),
    ({"period": 90}, "multiple of 60"),
    ({"period": 60, "evaluationPeriods": 1441, "datapointsToAlarm": 1}, "at most 86400"),
    ({"period": 3600, "evaluationPeriods": 169, "datapointsToAlarm": 1}, "at most 604800"),
    ({"datapointsToAlarm": 7}, "between 1 and evaluation_periods"),
    ({"treatMissingData": "zero"}, "notBreaching"),
    ({"alarmActions": []}, "nobody hears it"),
])
def test_alarms_cloudwatch_would_refuse_are_refused(change, words):
    assert check("cloudwatch-alarm-valid", dai.METRIC_ALARM, ALARM) == []
    found = check("cloudwatch-alarm-valid", dai.METRIC_ALARM, {**ALARM, **change})
    assert len(found) == 1 and words in found[0] and "Fix:" in found[0], found


@pytest.mark.parametrize("region, refused", [("us-east-1", False), ("eu-west-1", True), (None, False)])
def test_route53_metric_alarms_live_in_us_east_1(region, refused):
    """The region is the alarm's provider's, as the engine hands it to the policy (None: not visible)."""
    nodes = [{"type": dai.METRIC_ALARM, "name": "hc-alarm", "parent": None,
              "inputs": {**ALARM, "namespace": "AWS/Route53", "metricName": "HealthCheckStatus"}}]
    if region:
        nodes[0]["provider"] = f"aws-{region}"
        nodes.append({"type": "pulumi:providers:aws", "name": f"aws-{region}", "parent": None,
                      "inputs": {"region": region}})
    found = [f.message for f in evaluate(policy_resources(nodes, stack="test"),
                                         [POLICY["cloudwatch-route53-alarm-in-us-east-1"]])]
    assert (found != []) == refused, found
    if refused:
        assert "us-east-1 only" in found[0] and "Fix:" in found[0]
    # an alarm on another namespace may live anywhere
    other = [{**nodes[0], "inputs": ALARM}] + nodes[1:]
    assert evaluate(policy_resources(other, stack="test"), [POLICY["cloudwatch-route53-alarm-in-us-east-1"]]) == []


def test_a_sub_minute_period_is_fine_on_a_high_resolution_custom_metric():
    assert check("cloudwatch-alarm-valid", dai.METRIC_ALARM, {**ALARM, "namespace": "RegionPair/Heartbeat",
                                                              "period": 10}) == []


# ---- IAM -----------------------------------------------------------------------------------------

def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"role": "r", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


GRANT = {"Sid": "G", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": ["arn:aws:kms:us-east-1:1:key/k"],
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
UPSERT = {"Sid": "U", "Effect": "Allow", "Action": ["route53:ChangeResourceRecordSets"],
          "Resource": ["arn:aws:route53:::hostedzone/Z1"],
          "Condition": {"ForAllValues:StringEquals": {
              "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["payments.example.com"]}}}


@pytest.mark.parametrize("statement, words", [
    ({k: v for k, v in GRANT.items() if k != "Condition"}, "without kms:GrantIsForAWSResource"),
    ({**GRANT, "Action": ["kms:*"], "Condition": {"Bool": {"kms:GrantIsForAWSResource": "false"}}},
     "without kms:GrantIsForAWSResource"),
    ({"Sid": "O", "Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObjectVersion"], "Resource": ["arn:aws:s3:::b/*"]},
     "s3:DeleteObjectVersion"),
    ({"Sid": "O", "Effect": "Allow", "Action": ["s3:Delete*"], "Resource": ["arn:aws:s3:::b/*"]},
     "s3:DeleteObjectVersion"),
    ({k: v for k, v in UPSERT.items() if k != "Condition"}, "every record of the zone"),
])
def test_role_policies_beyond_the_runbooks_limits_are_refused(statement, words):
    assert check("iam-runbook-least-privilege", dai.IAM_ROLE_POLICY, _policy(GRANT, UPSERT)) == []
    found = check("iam-runbook-least-privilege", dai.IAM_ROLE_POLICY, _policy(statement))
    assert len(found) == 1 and words in found[0] and "Fix:" in found[0], found


def test_a_deny_is_not_judged_as_a_grant():
    deny = {"Sid": "D", "Effect": "Deny", "Action": ["s3:DeleteObjectVersion"], "Resource": ["*"]}
    assert check("iam-runbook-least-privilege", dai.IAM_ROLE_POLICY, _policy(deny)) == []


@pytest.mark.parametrize("principal", ["arn:aws:iam::123456789012:root", "123456789012", "*",
                                       ["arn:aws:iam::123456789012:role/oncall", "arn:aws:iam::123456789012:root"]])
def test_trust_in_a_whole_account_is_refused(principal):
    def role(p):
        return {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": p}, "Action": "sts:AssumeRole"}]})}
    assert check("iam-trust-names-principals", dai.IAM_ROLE, role("arn:aws:iam::123456789012:role/oncall")) == []
    found = check("iam-trust-names-principals", dai.IAM_ROLE, role(principal))
    assert len(found) == 1 and "whole account" in found[0] and "Fix:" in found[0]


def test_service_trust_policies_pass():
    service = {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]})}
    assert check("iam-trust-names-principals", dai.IAM_ROLE, service) == []
