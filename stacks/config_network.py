"""The stack config's ``network`` and ``dns`` sections: the VPC or the CIDR to create one in, who may
reach the databases and brokers, the hosted zone, its records' TTL and the Route53 health check."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from contract import outputs
from contract.fields import MISSING, Fields
from stacks.config_reader import ConfigError

HEALTH_CHECK_TYPES = ("HTTPS", "HTTP", "TCP")
HEALTH_CHECK_INTERVALS = (10, 30)
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ZONE_ID = re.compile(r"^Z[0-9A-Z]{1,31}$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")


@dataclass(frozen=True)
class NetworkConfig:
    cidr: str
    """CIDR of the VPC created when vpc_id is not given."""
    allowed_cidrs: tuple[str, ...]
    allowed_security_group_ids: tuple[str, ...]
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    runbook_cidrs: tuple[str, ...] = ()
    """Where the runbooks run from: database ingress that fencing keeps (none: a fenced database is
    unreachable to the runbooks too, so a switchover cannot drain it)."""


@dataclass(frozen=True)
class HealthCheckConfig:
    fqdn: str
    """The primary region's service endpoint Route53 probes (must be reachable from the internet)."""
    port: int = 443
    type: str = "HTTPS"
    resource_path: str = "/health"
    interval_seconds: int = 30
    failure_threshold: int = 3

    @property
    def detection_seconds(self) -> int:
        return self.interval_seconds * self.failure_threshold


@dataclass(frozen=True)
class DnsConfig:
    zone_name: str
    zone_id: str
    ttl_seconds: int
    strategy: str
    health_check: HealthCheckConfig
    record_prefix: str = ""
    """Put before every record name (drill stacks use their own names, never production's)."""

    def record_name(self, service: str) -> str:
        return f"{self.record_prefix}{service}.{self.zone_name}"


def _cidr(value: str, key: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(key, value, f"expected a CIDR block such as 10.0.0.0/16 ({exc})") from None
    if net.prefixlen == 0:
        raise ConfigError(key, value, "opens the service to the whole internet; name the client networks instead")
    return value


def read_network(o: Fields, role: str) -> NetworkConfig:
    cidr = _cidr(o.string("cidr", "10.10.0.0/16" if role == "primary" else "10.20.0.0/16"), o.key("cidr"))
    if ipaddress.ip_network(cidr).prefixlen > 20:
        raise ConfigError(o.key("cidr"), cidr, "too small for three subnets; use a /20 or larger (e.g. /16)")
    allowed = o.strings("allowed_cidrs", [], hint="CIDR blocks of the clients")
    for i, c in enumerate(allowed):
        _cidr(c, f"{o.key('allowed_cidrs')}[{i}]")
    groups = o.strings("allowed_security_group_ids", [], pattern=_SG, hint="security group ids (sg-…)")
    if not allowed and not groups:
        raise ConfigError(o.key("allowed_cidrs"), [], "no client could reach the databases or brokers; name at least "
                          "one CIDR in allowed_cidrs or one group in allowed_security_group_ids")
    runbook = o.strings("runbook_cidrs", [], hint="CIDR blocks of the hosts the runbooks run on")
    for i, c in enumerate(runbook):
        _cidr(c, f"{o.key('runbook_cidrs')}[{i}]")
        net = ipaddress.ip_network(c)
        for client in allowed:
            other = ipaddress.ip_network(client)
            if net.version == other.version and (net == other or other.subnet_of(net)):
                raise ConfigError(f"{o.key('runbook_cidrs')}[{i}]", c,
                                  f"contains the client network {client} of allowed_cidrs; fencing keeps the "
                                  "runbooks' rules, so those clients could still write to a fenced primary. Name "
                                  "only the runbook hosts (e.g. a /32 or their own subnet)")
    vpc_id = o.string("vpc_id", None, pattern=_VPC, hint="a VPC id (vpc-…)")
    subnet_ids = o.strings("subnet_ids", [], pattern=_SUBNET, hint="subnet ids (subnet-…)")
    if vpc_id and len(subnet_ids) != 3:
        raise ConfigError(o.key("subnet_ids"), list(subnet_ids), "with vpc_id, name exactly three private subnets "
                          "in three different availability zones (MSK places one broker in each)")
    if subnet_ids and not vpc_id:
        raise ConfigError(o.key("vpc_id"), MISSING, "subnet_ids were given without the VPC they belong to; set vpc_id")
    o.done()
    return NetworkConfig(cidr=cidr, allowed_cidrs=allowed, allowed_security_group_ids=groups,
                         vpc_id=vpc_id, subnet_ids=subnet_ids, runbook_cidrs=runbook)


def read_dns(o: Fields) -> DnsConfig:
    zone_name = o.string("zone_name", pattern=_FQDN, hint="a DNS zone name such as payments.example.com").rstrip(".")
    zone_id = o.string("zone_id", pattern=_ZONE_ID, hint="a Route53 hosted zone id (Z…)")
    ttl = o.integer("ttl_seconds", 60, minimum=1, maximum=86400)
    strategy = o.string("strategy", "health-check-inversion", choices=outputs.DNS_STRATEGIES)
    if strategy == "record-upsert":
        raise ConfigError(o.key("strategy"), strategy, "the stacks declare failover records (PRIMARY in prod, "
                          "SECONDARY in dr) guarded by a pin check only the runbook moves, and the runbook's "
                          "record-upsert refuses a failover record; use health-check-inversion (record-upsert is "
                          "the sandbox's strategy)")
    h = o.obj("health_check")
    kind = h.string("type", "HTTPS", choices=HEALTH_CHECK_TYPES)
    hc = HealthCheckConfig(
        fqdn=h.string("fqdn", pattern=_FQDN, hint="the host name of the primary region's service endpoint").rstrip("."),
        port=h.integer("port", 443 if kind == "HTTPS" else 80, minimum=1, maximum=65535),
        type=kind,
        resource_path=h.string("resource_path", "/health", pattern=re.compile(r"^/\S*$"), hint="a path starting with /"),
        interval_seconds=h.get("interval_seconds", 30),
        failure_threshold=h.integer("failure_threshold", 3, minimum=1, maximum=10),
    )
    if hc.interval_seconds not in HEALTH_CHECK_INTERVALS or isinstance(hc.interval_seconds, bool):
        raise ConfigError(h.key("interval_seconds"), hc.interval_seconds, "Route53 health checks run every 10 or 30 seconds")
    h.done()
    prefix = o.string("record_prefix", "", pattern=re.compile(r"^([a-z0-9][a-z0-9-]{0,40}-)?$"),
                      hint="lowercase letters, digits and dashes ending in a dash, e.g. drill-42-")
    o.done()
    return DnsConfig(zone_name=zone_name, zone_id=zone_id, ttl_seconds=ttl, strategy=strategy, health_check=hc,
                     record_prefix=prefix)
