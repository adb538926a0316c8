"""In-memory fakes of the runbook ports: a region pair whose state tests can read and break.

No patching: the runbooks get these through the same Ports bundle the adapters build."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbooks.clock import FakeClock
from runbooks.errors import Unreachable
from runbooks.lock import FileLock
from runbooks.ports import DbInstance, Health, Ports, ReplicationState


class Crash(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way catches it."""


@dataclass
class FakeDb:
    role: str  # primary | replica
    source_region: str | None = None
    status: str = "available"
    fenced: bool = False
    lsn: int = 1000
    streaming: bool = True
    lag: float = 0.1
    promote_at: float | None = None
    writes: list = field(default_factory=list)


class FakeWorld:
    def __init__(self, outputs, clock: FakeClock | None = None, promote_seconds: float = 0.4):
        self.outputs = outputs
        self.clock = clock or FakeClock()
        self.promote_seconds = promote_seconds
        self.region_up = {name: True for name in outputs.regions}
        self.dbs: dict[tuple[str, str], FakeDb] = {}
        p, s = outputs.primary.name, outputs.secondary.name
        for db in outputs.primary.databases:
            self.dbs[(p, db)] = FakeDb("primary")
            self.dbs[(s, db)] = FakeDb("replica", source_region=p)
        self.dns = {service: p for service in outputs.dns.records}
        self.actions: list[tuple] = []
        self.crash_on: tuple[str, int] | None = None
        self._counts: dict[str, int] = {}

    # ---- test controls -------------------------------------------------------------------

    def kill_region(self, region: str) -> None:
        self.region_up[region] = False
        for (r, db), d in self.dbs.items():
            if r != region:
                for (r2, db2), other in self.dbs.items():
                    if db2 == db and r2 == region:
                        d.streaming = False

    def _act(self, name: str, *args) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1
        if self.crash_on and self.crash_on[0] == name and self.crash_on[1] == self._counts[name]:
            self.crash_on = None
            raise Crash(f"killed during {name}")
        self.actions.append((name, *args))

    def db(self, region: str, db: str) -> FakeDb:
        if not self.region_up[region]:
            raise Unreachable(f"{region} is down")
        return self.dbs[(region, db)]

    def _settle(self, d: FakeDb) -> None:
        if d.promote_at is not None and self.clock.monotonic() >= d.promote_at:
            d.role, d.source_region, d.promote_at, d.streaming = "primary", None, None, False

    def ports(self, lock_path) -> Ports:
        return Ports(db=FakeDbControl(self), sql=FakeSql(self), dns=FakeDns(self), health=FakeHealth(self),
                     lock=FileLock(lock_path), notifier=FakeNotifier(), clock=self.clock,
                     extras={"state_dir": str(lock_path.parent)})


class FakeDbControl:
    def __init__(self, world: FakeWorld):
        self.w = world

    def describe(self, region, database):
        if not self.w.region_up[region]:
            d = self.w.dbs[(region, database)]
            return DbInstance(region, database, f"{region}-{database}", "unreachable", "unknown", d.fenced)
        d = self.w.dbs[(region, database)]
        self.w._settle(d)
        return DbInstance(region, database, f"{region}-{database}", d.status, d.role, d.fenced, d.source_region)

    def fence(self, region, database):
        self.w._act("fence", region, database)
        # like denying security-group ingress: a control-plane change that holds while the region is down
        self.w.dbs[(region, database)].fenced = True
        return f"fenced {region}/{database}"

    def unfence(self, region, database):
        self.w._act("unfence", region, database)
        self.w.db(region, database).fenced = False
        return f"unfenced {region}/{database}"

    def promote(self, region, database):
        d = self.w.db(region, database)
        self.w._act("promote", region, database)
        if d.role != "replica":
            raise Unreachable(f"{region}/{database} is not a replica")
        d.promote_at = self.w.clock.monotonic() + self.w.promote_seconds
        return f"promotion of {region}/{database} started"

    def rebuild_replica(self, region, database, source_region):
        d = self.w.db(region, database)
        if d.role == "primary" and not d.fenced:
            raise AssertionError(f"the runbook tried to rebuild the unfenced writer {region}/{database}")
        self.w._act("rebuild", region, database, source_region)
        src = self.w.db(source_region, database)
        d.role, d.source_region, d.streaming, d.lsn, d.lag = "replica", source_region, True, src.lsn, 0.0
        return f"{region}/{database} rebuilt from {source_region}"


class FakeSql:
    def __init__(self, world: FakeWorld):
        self.w = world

    def replication(self, region, database):
        d = self.w.db(region, database)
        self.w._settle(d)
        if d.role == "primary":
            return ReplicationState(in_recovery=False, lsn=d.lsn)
        src = self.w.dbs[(d.source_region, database)]
        if d.streaming and self.w.region_up[d.source_region]:
            d.lsn = src.lsn  # the fake replicates instantly while streaming
        return ReplicationState(in_recovery=True, lsn=d.lsn, receive_lsn=d.lsn, streaming=d.streaming,
                                lag_seconds=d.lag, last_contact_age_seconds=0.0 if d.streaming else 5.0)

    def canary_write(self, region, database):
        d = self.w.db(region, database)
        self.w._settle(d)
        if d.role != "primary" or d.fenced:
            raise Unreachable(f"{region}/{database} is read-only ({'fenced' if d.fenced else d.role})")
        self.w._act("canary", region, database)
        d.writes.append("canary")
        d.lsn += 1
        return f"canary written to {region}/{database}"


class FakeDns:
    def __init__(self, world: FakeWorld):
        self.w = world

    def answer(self, service):
        return self.w.dns.get(service)

    def point(self, service, region):
        self.w._act("dns", service, region)
        self.w.dns[service] = region
        return f"{service} → {region}"


class FakeHealth:
    def __init__(self, world: FakeWorld):
        self.w = world

    def region(self, region):
        up = self.w.region_up[region]
        return Health(up, f"{region} {'answers' if up else 'does not answer'}")

    def database(self, region, database):
        up = self.w.region_up[region] and not self.w.dbs[(region, database)].fenced
        return Health(up, f"{region}/{database} {'accepts' if up else 'refuses'} connections")


class FakeNotifier:
    def __init__(self):
        self.sent = []

    def notify(self, subject, message):
        self.sent.append((subject, message))
