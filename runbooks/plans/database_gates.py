"""The database gates of the failover and the switchover: the regions' health, the DNS records' TTL
against the RTO, DR's restorable window, each target replica's state and its replication lag
against the RPO. A gate that refuses stops the run before it changes anything (``--force``
overrides, audited)."""

from __future__ import annotations

from runbooks.core.clock import iso
from runbooks.core.engine import Gate, GateResult
from runbooks.core.errors import RunbookError, Unreachable
from runbooks.plans.context import Context
from runbooks.plans.state import replication


def gate_region_health(ctx: Context, region: str, why: str) -> Gate:
    def evaluate() -> GateResult:
        h = ctx.ports.health.region(region)
        return GateResult(f"health:{region}", h.healthy, f"{h.sentence}{'' if h.healthy else f' ({why})'}")
    return Gate(f"health:{region}", evaluate)


def gate_dns_ttl(ctx: Context) -> Gate:
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


def gate_pitr_in_dr(ctx: Context, db: str) -> Gate:
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


def gate_replica(ctx: Context, db: str) -> Gate:
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


def gate_replication(ctx: Context, db: str, planned: bool) -> Gate:
    """Replication state and lag against the declared RPO; records the pre-promotion estimate."""

    def evaluate() -> GateResult:
        name = f"replication:{db}"
        st = replication(ctx, ctx.target, db)
        if st is None:
            return GateResult(name, False, f"{ctx.target}/{db} does not answer SQL")
        if not st.in_recovery:
            return GateResult(name, True, f"{ctx.target}/{db} is already out of recovery")
        lag = st.lag_seconds
        ctx.measurements.setdefault("rpo_estimate", {})[db] = {
            "seconds": lag, "last_contact_age_seconds": st.last_contact_age_seconds, "streaming": st.streaming}
        source_up = ctx.ports.health.database(ctx.source, db).healthy
        src = replication(ctx, ctx.source, db) if source_up else None
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
