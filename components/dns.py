"""Route53 failover: the failover records, a pin check that guards them and only the runbooks
move, and a health check on the primary's endpoint that alarms (and moves nothing).

Each stack declares its own half of every record: PRIMARY in prod, SECONDARY in dr.

A database's name must move only when the failover runbook has fenced and promoted, never on
a health check's own (DESIGN.md). So the PRIMARY records are guarded by the **pin check**: a
CALCULATED health check with a health threshold of 0 (Route53 API Reference, HealthCheckConfig
`HealthThreshold`: "If you specify 0, Route 53 always considers this health check to be
healthy"), declared `disabled` as well ("After you disable a health check, Route 53 considers
the status of the health check to always be healthy"). Nothing in AWS can turn it unhealthy;
only the runbook does, by inverting it (`Inverted` of a disabled check: unhealthy, so Route53
answers the SECONDARY), and the failback clears the inversion. `invertHealthcheck` is therefore
the runbooks' once the check exists (`ignore_changes`): a `pulumi up -s prod` that wrote the
declared `false` back would send writers to a primary the runbook had just fenced.

The **endpoint check** (HTTPS/HTTP/TCP on the service endpoint) guards no record: 30 s of API
failure must page someone, not flip writers to an unpromoted replica. Route53 publishes
health-check metrics in us-east-1 only, so its alarm is created with a us-east-1 provider that the
caller passes in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.common import child, require, slug

TYPE = "regionpair:dns:FailoverRecords"
FAILOVER = ("PRIMARY", "SECONDARY")
RUNBOOK_OWNED_HEALTH_CHECK_FIELDS = ("invertHealthcheck",)
"""Of the pin check: set by the failover runbook (the pin to DR); `pulumi up` must not reset it."""
PIN_CHECK_TYPE = "CALCULATED"
PIN_HEALTH_THRESHOLD = 0
"""Route53 always considers a CALCULATED check with this threshold healthy: only an inversion moves it."""


@dataclass(frozen=True)
class HealthCheckSpec:
    fqdn: str
    """Endpoint host name Route53 probes from the internet. Required."""
    port: int = 443
    """Port probed. Default: 443."""
    type: str = "HTTPS"
    """HTTPS, HTTP or TCP. Default: HTTPS."""
    resource_path: str = "/health"
    """Path probed (HTTP/HTTPS). Default: /health."""
    interval_seconds: int = 30
    """10 or 30. Default: 30."""
    failure_threshold: int = 3
    """Consecutive failures before unhealthy. Default: 3."""


@dataclass(frozen=True)
class FailoverRecordsArgs:
    zone_id: str
    """Route53 hosted zone id. Required."""
    failover: str
    """PRIMARY or SECONDARY: which half of each record this stack owns. Required."""
    set_identifier: str
    """Distinguishes this stack's half of each record. Required."""
    records: Mapping[str, tuple[str, pulumi.Input[str]]]
    """Service name → (record name, target host name). Required."""
    ttl_seconds: int = 60
    """Record TTL; clients may keep the old answer this long. Default: 60."""
    health_check: HealthCheckSpec | None = None
    """The endpoint health check that alarms (it guards no record; the pin check does). Required with
    PRIMARY; default: none (SECONDARY)."""
    alarm_provider: pulumi.ProviderResource | None = None
    """A us-east-1 provider for the health-check alarm. Required with health_check."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    """SNS topic (in us-east-1) the health-check alarm notifies. Required with health_check."""
    alarm_name: str | None = None
    """Name of the health-check alarm. Default: `{set_identifier}-health`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def _validate(args: FailoverRecordsArgs) -> None:
    require(TYPE, "failover", args.failover, args.failover in FAILOVER, "PRIMARY or SECONDARY")
    require(TYPE, "records", dict(args.records), bool(args.records), "name at least one record")
    require(TYPE, "ttl_seconds", args.ttl_seconds, 1 <= args.ttl_seconds <= 86400, "1 to 86400 seconds")
    if args.failover == "PRIMARY":
        require(TYPE, "health_check", args.health_check, args.health_check is not None,
                "the PRIMARY records need the endpoint check that alarms when the primary fails; give one")
    hc = args.health_check
    if hc is not None:
        require(TYPE, "health_check.type", hc.type, hc.type in ("HTTPS", "HTTP", "TCP"), "HTTPS, HTTP or TCP")
        require(TYPE, "health_check.interval_seconds", hc.interval_seconds, hc.interval_seconds in (10, 30),
                "Route53 probes every 10 or 30 seconds")
        require(TYPE, "health_check.failure_threshold", hc.failure_threshold, 1 <= hc.failure_threshold <= 10, "1 to 10")
        require(TYPE, "alarm_provider", args.alarm_provider, args.alarm_provider is not None,
                "Route53 health-check metrics exist in us-east-1 only; pass a us-east-1 provider")
        require(TYPE, "alarm_topic_arn", args.alarm_topic_arn, args.alarm_topic_arn is not None,
                "an alarm nobody hears is no alarm; pass a topic in us-east-1")
    for service, (record, _target) in args.records.items():
        require(TYPE, f"records[{service}]", record, bool(re.match(r"^[a-z0-9.-]+$", record)), "a DNS name")


class FailoverRecords(pulumi.ComponentResource):
    health_check_id: pulumi.Output[str | None]
    alarm_name: str | None
    record_names: dict[str, str]

    def __init__(self, name: str, args: FailoverRecordsArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(args)
        super().__init__(TYPE, name, None, opts)
        tags = dict(args.tags)
        health_id: pulumi.Input[str] | None = None
        self.alarm_name = None
        hc = args.health_check
        if hc is not None:
            check = aws.route53.HealthCheck(f"{name}-health", aws.route53.HealthCheckArgs(
                fqdn=hc.fqdn, port=hc.port, type=hc.type,
                resource_path=hc.resource_path if hc.type != "TCP" else None,
                enable_sni=True if hc.type == "HTTPS" else None,
                request_interval=hc.interval_seconds, failure_threshold=hc.failure_threshold,
                measure_latency=True, reference_name=args.set_identifier[:28],
                disabled=False, invert_healthcheck=False,
                tags={**tags, "Name": f"{args.set_identifier}-health"}),
                opts=child(self))
            # the pin check: always healthy (threshold 0, disabled) until the runbook inverts it
            pin = aws.route53.HealthCheck(f"{name}-pin", aws.route53.HealthCheckArgs(
                type=PIN_CHECK_TYPE, child_healthchecks=[check.id], child_health_threshold=PIN_HEALTH_THRESHOLD,
                disabled=True, invert_healthcheck=False, reference_name=f"{args.set_identifier[:24]}-pin",
                tags={**tags, "Name": f"{args.set_identifier}-pin"}),
                opts=child(self, ignore_changes=list(RUNBOOK_OWNED_HEALTH_CHECK_FIELDS)))
            health_id = pin.id
            self.alarm_name = args.alarm_name or f"{args.set_identifier}-health"
            aws.cloudwatch.MetricAlarm(f"{name}-health-alarm", aws.cloudwatch.MetricAlarmArgs(
                name=self.alarm_name,
                alarm_description=f"Route53 health check of {hc.fqdn} is failing. DNS does not move on its own: if "
                                  "the primary region is lost, run the failover runbook (it fences, promotes, then "
                                  "pins the database names to DR).",
                namespace="AWS/Route53", metric_name="HealthCheckStatus", dimensions={"HealthCheckId": check.id},
                statistic="Minimum", period=60, evaluation_periods=1, threshold=1,
                comparison_operator="LessThanThreshold", treat_missing_data="breaching",
                alarm_actions=[args.alarm_topic_arn], ok_actions=[args.alarm_topic_arn], tags=tags),
                opts=child(self, provider=args.alarm_provider))

        self.record_names = {}
        for service, (record, target) in sorted(args.records.items()):
            aws.route53.Record(f"{name}-{slug(service)}", aws.route53.RecordArgs(
                zone_id=args.zone_id, name=record, type="CNAME", ttl=args.ttl_seconds, records=[target],
                set_identifier=args.set_identifier,
                failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=args.failover)],
                health_check_id=health_id if args.failover == "PRIMARY" else None), opts=child(self))
            self.record_names[service] = record

        self.health_check_id = pulumi.Output.from_input(health_id)
        self.register_outputs({"health_check_id": self.health_check_id})
