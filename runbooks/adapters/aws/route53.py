"""The DNS port on Route 53: where a service's name answers, and moving it by the pin health
check's inversion (the stacks' failover records) or by a record UPSERT (the sandbox's).
"""

from __future__ import annotations

import logging
import threading

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, fail
from runbooks.core.clock import SystemClock
from runbooks.core.errors import BadInput, StepFailed

log = logging.getLogger(__name__)


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower()


class Route53Dns:
    """``health-check-inversion``: the PRIMARY failover record is guarded by the stacks' pin check
    (components/dns.py): a CALCULATED check with threshold 0, declared ``Disabled``, which Route53
    always considers healthy, so nothing but this runbook moves the name. Sending clients to the
    secondary inverts it (``Disabled`` and ``Inverted``: "always unhealthy" whatever anything does,
    also after the primary comes back); sending them to the primary clears the inversion and keeps
    it ``Disabled`` (always healthy again). The runbook never enables a check: an enabled check
    would move the name on its own. A check of an older stack that probes the endpoint is left
    disabled by the restore too, which is what makes it safe.

    ``record-upsert``: the service's record is a simple CNAME; pointing UPSERTs it to the target
    region's database endpoint with the declared TTL."""

    control_region = "us-east-1"
    """Route53 is global; its control plane answers through us-east-1."""

    read_max_age = 1.0
    """Seconds a read of the pin check is shared between the lanes. Route 53's API quota is per
    account (50 requests burst, 10 per second, all operations together): fifty databases each polling
    the one check that guards them all would spend it several times over (benchmarks/aws_scale/)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients
        self._zone_id = outputs.dns.zone_id
        self._reads: dict[tuple, tuple[float, dict]] = {}
        self._reads_lock = threading.Lock()
        self._pin_lock = threading.Lock()
        """One lane at a time reads and moves the pin check, so the others find it moved."""

    def _call(self, op: str, what: str, **params) -> dict:
        try:
            result = self.clients.call("route53", self.control_region, op, **params)
        except ClientError as exc:
            raise fail(exc, what) from exc
        if not op.startswith(("get_", "list_")):
            with self._reads_lock:
                self._reads.clear()  # a change: no read from before it is shared after it
        return result

    def _read(self, op: str, what: str, **params) -> dict:
        """A read shared by every lane for ``read_max_age`` seconds (cleared by any change made here)."""
        clock = self.clients.clock or SystemClock()
        key = (op, tuple(sorted(params.items())))
        with self._reads_lock:
            found = self._reads.get(key)
            if found is not None and clock.monotonic() - found[0] < self.read_max_age:
                return found[1]
        result = self._call(op, what, **params)
        with self._reads_lock:
            self._reads[key] = (clock.monotonic(), result)
        return result

    def _record(self, service: str) -> str:
        try:
            return self.outputs.dns.records[service]
        except KeyError:
            raise BadInput(f"service {service!r} has no record in the stack outputs' dns.records "
                           f"({', '.join(self.outputs.dns.records)})") from None

    def zone_id(self) -> str:
        if self._zone_id is None:
            zones = self._call("list_hosted_zones_by_name", f"find hosted zone {self.outputs.dns.zone_name}",
                               DNSName=self.outputs.dns.zone_name)["HostedZones"]
            matches = [z for z in zones if _fqdn(z["Name"]) == _fqdn(self.outputs.dns.zone_name)]
            if len(matches) != 1:
                raise BadInput(f"stack outputs: dns.zone_id is not set and {len(matches)} hosted zones are named "
                               f"{self.outputs.dns.zone_name}; export the zone id")
            self._zone_id = matches[0]["Id"].rsplit("/", 1)[-1]
        return self._zone_id

    def _record_sets(self, name: str) -> list[dict]:
        found = self._call("list_resource_record_sets", f"read record {name}", HostedZoneId=self.zone_id(),
                           StartRecordName=name, StartRecordType="CNAME", MaxItems="10")
        return [r for r in found["ResourceRecordSets"] if _fqdn(r["Name"]) == _fqdn(name) and r["Type"] == "CNAME"]

    def _health_check_id(self) -> str:
        hc = self.outputs.primary.dns.health_check_id
        if not hc:
            raise BadInput(f"stack outputs: regions.{self.outputs.primary.name}.dns.health_check_id is missing; "
                           "the health-check-inversion strategy flips the check guarding the PRIMARY record")
        return hc

    # ---- answer ------------------------------------------------------------------------------

    def answer(self, service: str) -> str | None:
        record = self._record(service)
        if self.outputs.dns.strategy == "record-upsert":
            return self._answer_upsert(service, record)
        return self._answer_inversion()

    def _answer_inversion(self) -> str | None:
        hc_id = self._health_check_id()
        config = self._read("get_health_check", f"read health check {hc_id}",
                            HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
        inverted = bool(config.get("Inverted"))
        if config.get("Disabled"):
            healthy = not inverted  # Route53: a disabled check is healthy; inverted, unhealthy
        else:
            observations = self._read("get_health_check_status", f"read status of health check {hc_id}",
                                      HealthCheckId=hc_id)["HealthCheckObservations"]
            if not observations:
                return None
            ok = sum(1 for o in observations if o.get("StatusReport", {}).get("Status", "").startswith("Success"))
            # Route53 considers an endpoint healthy when more than 18% of its checkers do
            healthy = (ok / len(observations) > 0.18) != inverted
        return self.outputs.primary.name if healthy else self.outputs.secondary.name

    def _answer_upsert(self, service: str, record: str) -> str | None:
        sets = [r for r in self._record_sets(record) if "SetIdentifier" not in r]
        if not sets:
            return None
        values = {_fqdn(v["Value"]) for v in sets[0].get("ResourceRecords") or []}
        for region in self.outputs.regions.values():
            db = region.databases.get(service)
            if db is not None and _fqdn(db.endpoint) in values:
                return region.name
        log.warning("record %s points at %s, which is no database endpoint of the outputs", record, sorted(values))
        return None

    # ---- point -------------------------------------------------------------------------------

    def point(self, service: str, region: str) -> str:
        record = self._record(service)
        if region not in self.outputs.regions:
            raise BadInput(f"region {region!r} is not in the stack outputs")
        if self.outputs.dns.strategy == "record-upsert":
            return self._point_upsert(service, record, region)
        return self._point_inversion(service, record, region)

    def _point_inversion(self, service: str, record: str, region: str) -> str:
        hc_id = self._health_check_id()
        primary = [r for r in self._record_sets(record) if r.get("Failover") == "PRIMARY"]
        if not primary or primary[0].get("HealthCheckId") != hc_id:
            raise StepFailed(f"the PRIMARY failover record {record} is not guarded by health check {hc_id}, so "
                             "flipping that check would not move it; fix the dns component's records")
        to_secondary = region == self.outputs.secondary.name
        with self._pin_lock:
            config = self._read("get_health_check", f"read health check {hc_id}",
                                HealthCheckId=hc_id)["HealthCheck"]["HealthCheckConfig"]
            if config.get("Disabled") and bool(config.get("Inverted")) == to_secondary:
                # another database's lane moved it already: the check guards every PRIMARY record
                return (f"health check {hc_id} is already {'pinned unhealthy' if to_secondary else 'restored'} "
                        f"(disabled{', inverted' if to_secondary else ', not inverted'}): {record} answers "
                        f"{'the SECONDARY' if to_secondary else 'PRIMARY'} record ({region})")
            # Disabled always: a disabled check is healthy, and inverted unhealthy, whatever the endpoint does
            self._call("update_health_check", f"{'pin' if to_secondary else 'restore'} health check {hc_id}",
                       HealthCheckId=hc_id, Disabled=True, Inverted=to_secondary)
        if to_secondary:
            return (f"health check {hc_id} pinned unhealthy (disabled + inverted): {record} answers the SECONDARY "
                    f"record ({region}), also after the primary comes back; every record guarded by this check moves")
        return (f"health check {hc_id} restored (disabled, not inverted: always healthy): {record} answers PRIMARY "
                f"({region}) until a runbook pins it again; no health check moves it on its own")

    def _point_upsert(self, service: str, record: str, region: str) -> str:
        db = self.outputs.regions[region].databases.get(service)
        if db is None:
            raise BadInput(f"record-upsert moves database records only; {service!r} is no database of {region}")
        if any("SetIdentifier" in r for r in self._record_sets(record)):
            raise StepFailed(f"{record} is a failover/routing-policy record; the record-upsert strategy needs a simple "
                             "CNAME (or use the health-check-inversion strategy)")
        change = {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": record, "Type": "CNAME", "TTL": self.outputs.dns.ttl_seconds,
            "ResourceRecords": [{"Value": db.endpoint}]}}
        info = self._call("change_resource_record_sets", f"point {record} at {db.endpoint}",
                          HostedZoneId=self.zone_id(),
                          ChangeBatch={"Comment": f"regionpair: {service} to {region}", "Changes": [change]})
        return (f"{record} CNAME → {db.endpoint} ({region}), TTL {self.outputs.dns.ttl_seconds} s "
                f"(change {info['ChangeInfo']['Id'].rsplit('/', 1)[-1]})")
