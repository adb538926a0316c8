"""The DNS port on Route 53 (runbooks/adapters/aws/route53.py): the pin check's inversion and the
record UPSERT on moto; failing health checkers and the lanes' shared read of the pin check on
botocore's Stubber."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

from contract import outputs as contract
from runbooks.adapters import aws
from tests.contract.aws_helpers import (
    Stubs,
    ports,
)
from tests.helpers.moto import P, S, build_pair
from tests.samples import pair_document


def test_dns_health_check_inversion_pins_and_restores(moto_pair):
    p = ports(moto_pair)
    pin = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (pin["Type"], pin["HealthThreshold"], pin["Disabled"]) == ("CALCULATED", 0, True)  # the stacks' pin check
    assert p.dns.answer("payments") == P
    assert "pinned unhealthy" in p.dns.point("payments", S)
    assert p.dns.answer("payments") == S
    hc = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (hc["Disabled"], hc["Inverted"]) == (True, True)
    assert "restored" in p.dns.point("payments", P)
    assert p.dns.answer("payments") == P
    # restored means disabled and not inverted (always healthy), never enabled: no check moves it on its own
    hc = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (hc["Disabled"], hc["Inverted"]) == (True, False)


def test_dns_record_upsert(moto_server, aws_env):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    pair = build_pair(moto_server, strategy="record-upsert")
    p = ports(pair)
    assert p.dns.answer("payments") == P
    assert "TTL 60 s" in p.dns.point("payments", S)
    assert p.dns.answer("payments") == S
    sets = pair.client("route53", P).list_resource_record_sets(HostedZoneId=pair.outputs.dns.zone_id)["ResourceRecordSets"]
    cname = [r for r in sets if r["Type"] == "CNAME"]
    assert cname[0]["ResourceRecords"] == [{"Value": pair.outputs.secondary.databases["payments"].endpoint}]


def test_dns_zone_is_found_by_name_when_the_outputs_have_no_zone_id(moto_pair):
    doc = copy.deepcopy(moto_pair.doc)
    doc["dns"]["zone_id"] = None
    p = aws.aws_ports(contract.from_dict(doc), moto_pair.clock, moto_pair.session)
    assert p.dns.answer("payments") == P and p.dns.zone_id() == moto_pair.outputs.dns.zone_id


def test_health_check_failing_at_the_checkers_answers_the_secondary_when_not_pinned():
    s = Stubs()
    r53 = s.stub("route53", "us-east-1")
    config = {"Type": "TCP", "IPAddress": "10.0.0.10", "Port": 5432, "Inverted": False, "Disabled": False}
    r53.add_response("get_health_check", {"HealthCheck": {"Id": "hc-1234", "CallerReference": "x",
                                                          "HealthCheckConfig": config, "HealthCheckVersion": 1}})
    now = datetime.now(timezone.utc)
    r53.add_response("get_health_check_status", {"HealthCheckObservations": [
        {"Region": r, "IPAddress": "1.2.3.4", "StatusReport": {"Status": "Failure: Connection timed out",
                                                                "CheckedTime": now}}
        for r in ("us-east-1", "eu-west-1", "ap-southeast-1")]})
    assert s.ports().dns.answer("payments") == S
    s.done()


def _pin_check(inverted: bool) -> dict:
    config = {"Type": "CALCULATED", "ChildHealthChecks": ["hc-endpoint"], "HealthThreshold": 0,
              "Disabled": True, "Inverted": inverted}
    return {"HealthCheck": {"Id": "hc-1234", "CallerReference": "x", "HealthCheckConfig": config,
                            "HealthCheckVersion": 1}}


def test_the_lanes_share_one_read_of_the_pin_check_a_second():
    """Route 53's quota is per account (50 burst, 10 per second): fifty databases' lanes polling the one
    check that guards them all share one read of it per second instead of one each."""
    s = Stubs(doc=pair_document(50))
    r53 = s.stub("route53", "us-east-1")
    r53.add_response("get_health_check", _pin_check(False), {"HealthCheckId": "hc-1234"})
    r53.add_response("get_health_check", _pin_check(True), {"HealthCheckId": "hc-1234"})
    dns = s.ports().dns
    services = list(s.outputs.dns.records)
    assert {dns.answer(name) for name in services} == {P}, "fifty answers, one read (a second would be unstubbed)"
    s.clock.advance(aws.Route53Dns.read_max_age)
    assert {dns.answer(name) for name in services} == {S}, "a second later, read again"
    s.done()


def test_pinning_a_check_another_lane_pinned_already_changes_nothing():
    s = Stubs()
    r53 = s.stub("route53", "us-east-1")
    name = s.outputs.dns.records["payments"]
    r53.add_response("list_resource_record_sets", {"ResourceRecordSets": [
        {"Name": name, "Type": "CNAME", "SetIdentifier": "prod", "Failover": "PRIMARY", "TTL": 60,
         "HealthCheckId": "hc-1234", "ResourceRecords": [{"Value": "prod-payments.abc.rds.amazonaws.com"}]}],
        "IsTruncated": False, "MaxItems": "10"})
    r53.add_response("get_health_check", _pin_check(True), {"HealthCheckId": "hc-1234"})
    assert "already pinned unhealthy" in s.ports().dns.point("payments", S)
    s.done()  # and no update_health_check was called: it would have been an unstubbed call
