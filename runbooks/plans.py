"""The plans: unplanned failover, and planned switchover (of which failback is one, going home).

Every step checks live state before it acts, so the same plan serves a first run, a resumed run
and a rerun after success. Steps of one phase touch one database each and run in parallel.

Unplanned failover (source region presumed lost)::

    fence source (best effort)  →  unfence target  →  promote target  →  [CDC slots]  →  DNS → target  →  verify
                                                            └→  clusters' endpoints → target (plans_endpoints.py)

(The target is unfenced before it is promoted: a replica takes no client writes anyway, and the
promotion's canary write must not meet a fence left by an earlier failback.)

Planned switchover, zero loss (both regions healthy)::

    rebuild target as replica (if it is not one)  →  wait until caught up  →  fence source
    →  wait until target replayed source's last write  →  unfence target  →  promote target
    →  [CDC slots]  →  DNS → target  →  verify  →  rebuild source as a replica of target (protection restored)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from runbooks.clock import iso, wait_until
from runbooks.engine import Check, Gate, GateResult, Phase, Plan, Step
from runbooks.errors import RunbookError, StepFailed, Unreachable
from runbooks.plans_endpoints import add_endpoint_steps
from runbooks.plans_streams import _clients_on, _flow, _writer_parameter, add_stream_steps, has_kafka, has_objects
from runbooks.ports import Ports
from runbooks.slots import slots_phase
from contract.outputs import Outputs


@dataclass
class Timeouts:
    promote: float = 300.0
    """RDS promotion takes minutes; the sandbox's well under a second."""
    catch_up: float = 600.0
    dns: float = 120.0
    rebuild: float = 3600.0
    caught_up_lag_seconds: float = 1.0
    """A replica this close may be switched over to (the zero-loss wait does the rest)."""
    caught_up_flow_seconds: float = 5.0
    """A Kafka or S3 flow this close may be paused and drained. Looser than a replica's: S3
    replication's backlog is seconds old even when healthy (RTC promises 15 minutes), and what
    matters is that the pause drains seconds, not a whole re-seed."""
    flow_plateau_seconds: float = 10.0
    """A flow whose lag has not shrunk by a tenth for this long, within the RPO, is as caught up
    as it gets: clients are paused and the drain copies the rest (a longer pause, never a loss)."""
    checkpoint_wait: float = 10.0
    """How long the ``kafka-checkpoints`` gate judges again a group MirrorMaker 2 has not (recently)
    checkpointed, while the source answers: MirrorMaker 2 checkpoints every second, finds a new group
    within two and needs a few more to start its checkpoint task on a loaded machine."""
    seed_objects: float = 6 * 3600.0
    """A failback's seeding job (AWS: S3 Batch Replication of the DR bucket) may take this long: its
    manifest alone is generated in minutes to hours. At the deadline the step fails, the job goes
    on, and a rerun waits for the same job."""


@dataclass
class Context:
    outputs: Outputs
    ports: Ports
    source: str
    """The region writes move away from."""
    target: str
    """The region writes move to."""
    databases: list[str]
    timeouts: Timeouts = field(default_factory=Timeouts)
    measurements: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    """The journal's run id, set before the plan runs (steps that annotate what they write use it)."""
    confirmations: frozenset[str] = frozenset()
    """What the operator confirmed on the command line for what no adapter can check (e.g.
    ``objects-seeded``: they copied the DR bucket's versions home another way)."""
    journal: Callable[..., Any] | None = None
    """Appends an event to the run's journal (set by the CLI with the run id); see ``note``."""

    def note(self, event: str, **fields: Any) -> None:
        """Record in the journal what a rerun or a person must be able to find (e.g. the id of an
        S3 Batch Replication job a step started), before the step ends."""
        if self.journal is not None:
            self.journal(event, **fields)

    @property
    def rpo_seconds(self) -> int:
        """The database's RPO objective (the service's unless the outputs declare the component's)."""
        return self.outputs.objectives.of("database").rpo_seconds

    @property
    def rto_seconds(self) -> int:
        """The database's RTO objective."""
        return self.outputs.objectives.of("database").rto_seconds


# --------------------------------------------------------------------------------------------
# Reading state without raising (for gates and checks)
# --------------------------------------------------------------------------------------------


def _replication(ctx: Context, region: str, db: str):
    try:
        return ctx.ports.sql.replication(region, db)
    except Unreachable:
        return None


def _is_writer(ctx: Context, region: str, db: str) -> bool | None:
    st = _replication(ctx, region, db)
    return None if st is None else not st.in_recovery


def _active_writer(ctx: Context, region: str, db: str) -> bool:
    """Out of recovery and not fenced: clients' writes land here (a fenced former primary is not)."""
    return bool(_is_writer(ctx, region, db)) and not ctx.ports.db.describe(region, db).fenced


# --------------------------------------------------------------------------------------------
# Gates
# --------------------------------------------------------------------------------------------


def _gate_region_health(ctx: Context, region: str, why: str) -> Gate:
    def evaluate() -> GateResult:
        h = ctx.ports.health.region(region)
        return GateResult(f"health:{region}", h.healthy, f"{h.sentence}{'' if h.healthy else f' ({why})'}")
    return Gate(f"health:{region}", evaluate)


def _gate_dns_ttl(ctx: Context) -> Gate:
    """The records' TTL alone must not exceed the RTO objective: after the cutover, resolvers keep
    answering the old region for up to the TTL (Route 53 Developer Guide, "Values specific for
    failover records", TTL: a longer TTL makes changes take longer to take effect, and with health
    checks a TTL of 60 s or less is recommended; "Best practices for Amazon Route 53 DNS", choosing
    TTL values: 60 or 120 s for records that change as part of a fast failover). The TTL checked is
    the one the outputs declare (the stacks set it on every record; the sandbox serves it); the
    adapters do not read it back from the live records. ``--force`` overrides (audited)."""

    def evaluate() -> GateResult:
        ttl, rto = ctx.outputs.dns.ttl_seconds, ctx.rto_seconds  # the records move the databases' clients
        records = ", ".join(ctx.outputs.dns.records[db] for db in ctx.databases if db in ctx.outputs.dns.records)
        if ttl is not None and ttl > rto:
            return GateResult("dns-ttl", False, f"the records ({records}) have a TTL of {ttl} s, longer on its own than "
                              f"the RTO objective of {rto} s: clients may keep resolving {ctx.source} for {ttl} s after "
                              "the cutover. Lower the TTL (dns.ttl_seconds in the stack config, then pulumi up, then "
                              "wait one old TTL), or pass --force to accept the longer outage")
        return GateResult("dns-ttl", True, f"record TTL {ttl} s is within the RTO objective of {rto} s")
    return Gate("dns-ttl", evaluate)


def _gate_pitr_in_dr(ctx: Context, db: str) -> Gate:
    """DR's replicated automated backups of ``db`` give a restorable window, so that after the
    failover a point-in-time restore in DR can still go back to before the incident (a failover
    for corruption needs it most). RDS copies the source's snapshots and transaction logs into the
    DR region as they are ready (RDS User Guide, "Replicating automated backups to another AWS
    Region"); ``DescribeDBInstanceAutomatedBackups`` in the DR region gives the replicated backup's
    ``RestoreWindow`` (``EarliestTime``, ``LatestTime``: the earliest and latest time an instance
    can be restored to; RDS API Reference, "RestoreWindow", "DBInstanceAutomatedBackup"). The
    sandbox's equivalent is its base backups and WAL archive copied into the DR region.

    Refuses (``--force`` overrides, audited) when DR holds no restorable window of ``db`` or it
    cannot be read: the stacks declare backup replication, so its absence is a broken invariant
    an operator must see before giving up the primary's own backups. Warns (passes) when the
    window's latest time is older than the RPO objective: normal while the primary region is down
    (nothing more can be copied), but the restorable history in DR ends there. (The search tool
    did not find AWS's statement of how far behind a healthy replicated window runs; the RPO
    objective is this project's threshold.)"""

    def evaluate() -> GateResult:
        name = f"pitr-dr:{db}"
        region = ctx.target
        if ctx.ports.backups is None:
            return GateResult(name, False, f"cannot read {region}'s restorable window of {db}: this adapter has no "
                              "backups port. Pass --force to fail over without knowing it")
        try:
            w = ctx.ports.backups.window(region, db)
        except RunbookError as exc:
            return GateResult(name, False, f"cannot read {region}'s restorable window of {db} ({exc}); pass --force "
                              "to fail over without it")
        if w is None:
            return GateResult(name, False, f"{region} holds no replicated automated backup of {db}: after the failover "
                              f"no point-in-time restore in {region} can go back to before it. Check backup replication "
                              f"(aws rds describe-db-instance-automated-backups --region {region}), or pass --force")
        now = ctx.ports.clock.time()
        behind = now - w.latest
        ctx.measurements.setdefault("pitr_in_dr", {})[db] = {"earliest": w.earliest, "latest": w.latest,
                                                             "latest_age_seconds": behind}
        span = f"{region} can restore {db} from {iso(w.earliest)} to {iso(w.latest)}"
        if behind > ctx.rpo_seconds:
            return GateResult(name, True, f"WARNING: {span}, {behind:.0f} s behind now (more than the RPO objective "
                              f"of {ctx.rpo_seconds} s): restorable history in {region} ends there")
        return GateResult(name, True, span)
    return Gate(f"pitr-dr:{db}", evaluate)


def _gate_replica(ctx: Context, db: str) -> Gate:
    """The target is a replica in a state that can be promoted (not backing-up, not modifying)."""

    def evaluate() -> GateResult:
        name = f"replica:{db}"
        try:
            d = ctx.ports.db.describe(ctx.target, db)
        except Unreachable as exc:
            return GateResult(name, False, f"cannot describe {ctx.target}/{db}: {exc}")
        if d.role == "primary":
            return GateResult(name, True, f"{ctx.target}/{db} is already the primary")
        if d.status == "backing-up":
            return GateResult(name, False, f"{ctx.target}/{db} is backing-up; promoting now waits for the backup "
                              "and can take far longer than the RTO")
        if d.status != "available" or d.role != "replica":
            return GateResult(name, False, f"{ctx.target}/{db} is {d.status} ({d.role}); it must be an available replica")
        return GateResult(name, True, f"{ctx.target}/{db} is an available replica")
    return Gate(f"replica:{db}", evaluate)


def _gate_replication(ctx: Context, db: str, planned: bool) -> Gate:
    """Replication state and lag against the declared RPO; records the pre-promotion estimate."""

    def evaluate() -> GateResult:
        name = f"replication:{db}"
        st = _replication(ctx, ctx.target, db)
        if st is None:
            return GateResult(name, False, f"{ctx.target}/{db} does not answer SQL")
        if not st.in_recovery:
            return GateResult(name, True, f"{ctx.target}/{db} is already out of recovery")
        lag = st.lag_seconds
        ctx.measurements.setdefault("rpo_estimate", {})[db] = {
            "seconds": lag, "last_contact_age_seconds": st.last_contact_age_seconds, "streaming": st.streaming}
        source_up = ctx.ports.health.database(ctx.source, db).healthy
        src = _replication(ctx, ctx.source, db) if source_up else None
        if src is not None and not src.in_recovery:  # the WAL the replica has not replayed (a DR metric)
            ctx.measurements["rpo_estimate"][db]["lag_bytes"] = max(0, src.lsn - st.lsn)
        if planned:
            if not st.streaming:
                return GateResult(name, False, f"{ctx.target}/{db} is not streaming from {ctx.source}; "
                                  "a zero-loss switchover needs live replication")
            return GateResult(name, True, f"streaming, {lag:.2f} s behind" if lag is not None else "streaming")
        if not st.streaming and source_up:
            return GateResult(name, False, f"{ctx.target}/{db} is not streaming although {ctx.source}/{db} is up; "
                              "promoting now loses what the primary still has. Repair replication first")
        if lag is not None and lag > ctx.rpo_seconds:
            return GateResult(name, False, f"{ctx.target}/{db} is {lag:.1f} s behind, more than the declared RPO "
                              f"of {ctx.rpo_seconds} s")
        if st.streaming:
            return GateResult(name, True, f"streaming, {lag:.2f} s behind (RPO {ctx.rpo_seconds} s)"
                              if lag is not None else "streaming")
        age = st.last_contact_age_seconds
        return GateResult(name, True, f"{ctx.source}/{db} unreachable; the replica replays all it received"
                          + (f" (last contact {age:.1f} s ago)" if age is not None else ""))
    return Gate(f"replication:{db}", evaluate)


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def fence_step(ctx: Context, region: str, db: str, best_effort: bool) -> Step:
    def check() -> Check:
        d = ctx.ports.db.describe(region, db)
        if d.fenced:
            return Check.done(f"{region}/{db} is fenced")
        return Check.todo(f"{region}/{db} accepts client writes")

    def verify() -> str:
        if not ctx.ports.db.describe(region, db).fenced:
            raise StepFailed(f"{region}/{db} still reports itself unfenced after fencing")
        return f"{region}/{db} denies client writes"

    return Step(f"fence:{db}", f"deny client writes on {region}/{db}, persistently", f"{region}/{db}",
                check, lambda: ctx.ports.db.fence(region, db), verify, best_effort=best_effort, lane=db)


def refence_step(ctx: Context, db: str) -> Step:
    """Re-fence on return. A failover fences the old primary at best effort: while its region's API
    is down the fence may not be applied at all (AWS: the security group cannot be changed, the
    instance cannot be stopped). When that region answers again its database comes back as an
    unfenced writer beside the promoted DR one. So every later failover rerun and every failback
    first re-checks home's fence and, if the DR side was promoted and home accepts writes again,
    re-applies it: before the gates (a refused run still leaves home fenced) and before any other
    step. Home is the provisioned primary region; DR's promotion makes it the stale side."""
    home, dr = ctx.outputs.primary.name, ctx.outputs.secondary.name

    def check() -> Check:
        if not _active_writer_or_none(ctx, dr, db):
            return Check.done(f"{dr}/{db} is not a promoted writer: no fence of {home}/{db} to re-check")
        if ctx.ports.db.describe(home, db).fenced:
            return Check.done(f"{home}/{db} is fenced")
        st = _replication(ctx, home, db)
        if st is None:
            return Check.done(f"{home}/{db} does not answer; its fence is re-checked when {home} answers again")
        if st.in_recovery:
            return Check.done(f"{home}/{db} is a replica and takes no writes")
        return Check.todo(f"{home}/{db} is back and accepts writes although {dr}/{db} was promoted (its fence was "
                          f"not applied while {home} was down, or was lifted)")

    def verify() -> str:
        if not ctx.ports.db.describe(home, db).fenced:
            raise StepFailed(f"{home}/{db} still reports itself unfenced after re-fencing")
        return f"{home}/{db} denies client writes again"

    return Step(f"refence:{db}", f"re-check the fence of {home}/{db} and re-apply it if {home} came back unfenced",
                f"{home}/{db}", check, lambda: ctx.ports.db.fence(home, db), verify, lane=db)


def _active_writer_or_none(ctx: Context, region: str, db: str) -> bool:
    try:
        return _active_writer(ctx, region, db)
    except Unreachable:
        return False


def promote_step(ctx: Context, db: str) -> Step:
    region = ctx.target

    def check() -> Check:
        st = _replication(ctx, region, db)
        if st is None:
            return Check.blocked(f"{region}/{db} does not answer SQL; cannot promote it")
        if not st.in_recovery:
            if ctx.ports.db.describe(region, db).fenced:
                return Check.todo(f"{region}/{db} is a fenced former primary, not the promoted replica")
            return Check.done(f"{region}/{db} is out of recovery")
        return Check.todo(f"{region}/{db} is a replica")

    def apply() -> str:
        clock = ctx.ports.clock
        start = clock.monotonic()
        started = ctx.ports.db.promote(region, db)
        wait_until(lambda: _is_writer(ctx, region, db), what=f"{region}/{db} to leave recovery",
                   timeout=ctx.timeouts.promote, clock=clock, interval=0.02, max_interval=0.5)
        return f"{started}; {region}/{db} writable after {clock.monotonic() - start:.2f} s"

    return Step(f"promote:{db}", f"promote {region}/{db} and wait until it is writable", f"{region}/{db}",
                check, apply, lambda: ctx.ports.sql.canary_write(region, db), lane=db)


def unfence_step(ctx: Context, region: str, db: str) -> Step:
    def check() -> Check:
        d = ctx.ports.db.describe(region, db)
        return Check.todo(f"{region}/{db} is fenced") if d.fenced else Check.done(f"{region}/{db} is not fenced")

    return Step(f"unfence:{db}", f"let clients write to {region}/{db}", f"{region}/{db}",
                check, lambda: ctx.ports.db.unfence(region, db), lane=db)


def dns_step(ctx: Context, service: str) -> Step:
    region = ctx.target

    def check() -> Check:
        now = ctx.ports.dns.answer(service)
        if now == region:
            return Check.done(f"{service} answers {region}")
        return Check.todo(f"{service} answers {now}")

    def verify() -> str:
        wait_until(lambda: ctx.ports.dns.answer(service) == region, what=f"{service} to answer {region}",
                   timeout=ctx.timeouts.dns, clock=ctx.ports.clock, interval=0.05, max_interval=2.0)
        return f"{service} answers {region}"

    return Step(f"dns:{service}", f"send {service} clients to {region} ({ctx.outputs.dns.strategy})",
                ctx.outputs.dns.records[service], check, lambda: ctx.ports.dns.point(service, region), verify,
                lane=service)


def verify_step(ctx: Context, db: str) -> Step:
    region = ctx.target

    def reach() -> str | None:
        if ctx.ports.dns.answer(db) != region:
            return None
        if _is_writer(ctx, region, db) is not True:
            return None
        h = ctx.ports.health.database(region, db)
        return f"clients resolving {ctx.outputs.dns.records[db]} reach the writable {region}/{db}" if h.healthy else None

    def check() -> Check:
        sentence = reach()
        return Check.done(sentence) if sentence else Check.todo(f"clients of {db} do not reach {region} yet")

    def apply() -> str:
        return wait_until(reach, what=f"clients of {db} to reach {region}", timeout=ctx.timeouts.dns,
                          clock=ctx.ports.clock)

    return Step(f"verify:{db}", f"check that clients of {db} reach {region}", f"{region}/{db}", check, apply,
                lane=db)


def rebuild_step(ctx: Context, region: str, source: str, db: str, name: str) -> Step:
    """Make ``region``'s database a streaming replica of ``source``'s."""

    def check() -> Check:
        d = ctx.ports.db.describe(region, db)
        st = _replication(ctx, region, db)
        if st is not None and st.in_recovery and d.source_region == source:
            return Check.done(f"{region}/{db} replicates from {source}")
        if d.status == "unreachable":
            return Check.blocked(f"{region}/{db} is unreachable; its region must be healthy to rebuild it")
        if st is not None and not st.in_recovery and not d.fenced:
            # an unfenced writer is never rebuilt: either the switch already happened (a resumed
            # run) or both sides write (split brain), which a human must settle
            if _is_writer(ctx, source, db) and not ctx.ports.db.describe(source, db).fenced:
                return Check.blocked(f"both {region}/{db} and {source}/{db} are unfenced writers; fence the one "
                                     "whose writes you give up, then rerun")
            return Check.done(f"{region}/{db} is the active writer; nothing to rebuild")
        return Check.todo(f"{region}/{db} is {d.role}{' (fenced)' if d.fenced else ''}, not a replica of {source}")

    def verify() -> str:
        def streaming():
            st = _replication(ctx, region, db)
            return st is not None and st.in_recovery and st.streaming
        wait_until(streaming, what=f"{region}/{db} to stream from {source}", timeout=ctx.timeouts.rebuild,
                   clock=ctx.ports.clock, max_interval=5.0)
        return f"{region}/{db} streams from {source}"

    return Step(f"{name}:{db}", f"rebuild {region}/{db} as a replica of {source}", f"{region}/{db}",
                check, lambda: ctx.ports.db.rebuild_replica(region, db, source), verify, lane=db)


def catch_up_step(ctx: Context, db: str) -> Step:
    region = ctx.target

    def lag_ok() -> bool:
        st = _replication(ctx, region, db)
        return st is not None and st.in_recovery and bool(st.streaming) and \
            (st.lag_seconds or 0.0) <= ctx.timeouts.caught_up_lag_seconds

    def check() -> Check:
        if _active_writer(ctx, region, db):
            return Check.done(f"{region}/{db} is already the writer")
        return Check.done(f"{region}/{db} is caught up") if lag_ok() else Check.todo(f"{region}/{db} is behind")

    def apply() -> str:
        wait_until(lag_ok, what=f"{region}/{db} to catch up", timeout=ctx.timeouts.catch_up, clock=ctx.ports.clock,
                   max_interval=2.0)
        return f"{region}/{db} is within {ctx.timeouts.caught_up_lag_seconds:g} s"

    return Step(f"catch-up:{db}", f"wait until {region}/{db} is caught up", f"{region}/{db}", check, apply,
                lane=db)


def drain_step(ctx: Context, db: str) -> Step:
    """Zero loss: after writes stopped on the source, wait until the target replayed all of it."""
    region, source = ctx.target, ctx.source

    def positions() -> tuple[int, int] | None:
        src = _replication(ctx, source, db)
        dst = _replication(ctx, region, db)
        if src is None or dst is None:
            return None
        return src.lsn, (dst.lsn if dst.in_recovery else -1)

    def check() -> Check:
        if _active_writer(ctx, region, db):
            return Check.done(f"{region}/{db} is already the writer")
        pos = positions()
        if pos is None:
            return Check.blocked(f"cannot read WAL positions of {source}/{db} and {region}/{db}; "
                                 "a zero-loss switchover needs both")
        if pos[1] < 0:
            return Check.todo(f"{region}/{db} is not a replica of {source} yet")
        return Check.done(f"{region}/{db} replayed up to {source}'s last write") if pos[1] >= pos[0] else \
            Check.todo(f"{region}/{db} is {pos[0] - pos[1]} bytes of WAL behind")

    def apply() -> str:
        final = positions()
        if final is None:
            raise StepFailed(f"lost sight of {source}/{db} while draining; rerun to continue")
        wait_until(lambda: (_replication(ctx, region, db) or _Never).lsn >= final[0],
                   what=f"{region}/{db} to replay up to {final[0]:X}", timeout=ctx.timeouts.catch_up,
                   clock=ctx.ports.clock, interval=0.01, max_interval=0.2)
        return f"{region}/{db} replayed everything {source}/{db} wrote (WAL {final[0]:X})"

    return Step(f"drain:{db}", f"wait until {region}/{db} has replayed every write of {source}/{db}",
                f"{region}/{db}", check, apply, lane=db)


class _Never:
    lsn = -1


# --------------------------------------------------------------------------------------------
# Nothing to do
# --------------------------------------------------------------------------------------------


def never_failed_over(ctx: Context) -> str | None:
    """A failback's precondition, read before anything else: None when there is something to fail
    back; otherwise why not. Nothing to fail back means: for every database, home (``ctx.target``)
    is an unfenced writer, DR (``ctx.source``) an unfenced replica of home, and its name answers
    home; Kafka's clients and replicator, and S3's writers and replication, where declared, run
    home → DR. (Every failover and every failback fences DR's side before home takes writes, so a
    pair in that state was never failed over, or was made whole again by hand.) Without this the
    switchover plan would fence the healthy DR replica and report success."""
    home, dr = ctx.target, ctx.source
    for db in ctx.databases:
        at_home, at_dr = _replication(ctx, home, db), _replication(ctx, dr, db)
        if at_home is None or at_dr is None or at_home.in_recovery or not at_dr.in_recovery:
            return None
        h, d = ctx.ports.db.describe(home, db), ctx.ports.db.describe(dr, db)
        if h.fenced or d.fenced or d.source_region != home or ctx.ports.dns.answer(db) != home:
            return None
    if has_kafka(ctx):
        flow = _flow(ctx.ports.streaming)
        if not _clients_on(ctx, home) or flow is None or flow.source != home:
            return None
    if has_objects(ctx):
        o = ctx.ports.objects
        flow = _flow(o)
        if o.writers(_writer_parameter(ctx)) != o.bucket(home) or flow is None or flow.source != home:
            return None
    return (f"nothing to fail back: {home} is the unfenced writer of {', '.join(ctx.databases)} and {dr} an "
            f"unfenced replica of it; the pair never failed over (to move writes to {dr}, run the switchover "
            "or the failover)")


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------


def failover_plan(ctx: Context) -> Plan:
    dbs = ctx.databases
    gates = [_gate_region_health(ctx, ctx.target, "the DR side must be healthy to take the writes"), _gate_dns_ttl(ctx)]
    for db in dbs:
        gates += [_gate_replica(ctx, db), _gate_replication(ctx, db, planned=False), _gate_pitr_in_dr(ctx, db)]
    plan = Plan("failover", [
        Phase("refence", [refence_step(ctx, db) for db in dbs], before_gates=True),
        Phase("fence", [fence_step(ctx, ctx.source, db, best_effort=True) for db in dbs]),
        Phase("unfence", [unfence_step(ctx, ctx.target, db) for db in dbs]),
        Phase("promote", [promote_step(ctx, db) for db in dbs]),
        *slots_phase(ctx, planned=False),  # CDC slots before clients arrive (runbooks/slots.py)
        Phase("dns", [dns_step(ctx, db) for db in dbs]),
        Phase("verify", [verify_step(ctx, db) for db in dbs]),
    ], gates)
    plan = add_stream_steps(plan, ctx, planned=False)  # Kafka and S3 lanes, when declared
    return add_endpoint_steps(plan, ctx, planned=False)  # the clusters' active endpoints, when declared


def switchover_plan(ctx: Context, runbook: str = "switchover") -> Plan:
    dbs = ctx.databases
    gates = [_gate_region_health(ctx, ctx.target, "a planned switchover needs the destination healthy"),
             _gate_region_health(ctx, ctx.source, "a zero-loss switchover drains the current primary"),
             _gate_dns_ttl(ctx)]
    plan = Plan(runbook, [
        Phase("refence", [refence_step(ctx, db) for db in dbs], before_gates=True),
        Phase("rebuild", [rebuild_step(ctx, ctx.target, ctx.source, db, "rebuild") for db in dbs]),
        Phase("catch-up", [catch_up_step(ctx, db) for db in dbs]),
        Phase("fence", [fence_step(ctx, ctx.source, db, best_effort=False) for db in dbs]),
        Phase("drain", [drain_step(ctx, db) for db in dbs]),
        Phase("unfence", [unfence_step(ctx, ctx.target, db) for db in dbs]),
        Phase("promote", [promote_step(ctx, db) for db in dbs]),
        *slots_phase(ctx, planned=True),  # from the fenced source's live slots (runbooks/slots.py)
        Phase("dns", [dns_step(ctx, db) for db in dbs]),
        Phase("verify", [verify_step(ctx, db) for db in dbs]),
        Phase("protect", [rebuild_step(ctx, ctx.source, ctx.target, db, "protect") for db in dbs]),
    ], gates)
    plan = add_stream_steps(plan, ctx, planned=True, failback=runbook == "failback")  # Kafka and S3 lanes
    return add_endpoint_steps(plan, ctx, planned=True)  # the clusters' active endpoints, when declared
