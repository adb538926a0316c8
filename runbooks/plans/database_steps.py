"""The database steps of the failover and the switchover, one database each, in its own lane:
promote the target, point its DNS name at the target, verify clients reach it; and for a planned
switch, rebuild a replica, wait until it is caught up, and drain the source's last writes."""

from __future__ import annotations

from runbooks.core.clock import wait_until
from runbooks.core.engine import Check, Step
from runbooks.core.errors import StepFailed
from runbooks.plans.context import Context
from runbooks.plans.state import active_writer, is_writer, replication


def promote_step(ctx: Context, db: str) -> Step:
    region = ctx.target

    def check() -> Check:
        st = replication(ctx, region, db)
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
        wait_until(lambda: is_writer(ctx, region, db), what=f"{region}/{db} to leave recovery",
                   timeout=ctx.timeouts.promote, clock=clock, interval=0.02, max_interval=0.5)
        return f"{started}; {region}/{db} writable after {clock.monotonic() - start:.2f} s"

    return Step(f"promote:{db}", f"promote {region}/{db} and wait until it is writable", f"{region}/{db}",
                check, apply, lambda: ctx.ports.sql.canary_write(region, db), lane=db)


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
        if is_writer(ctx, region, db) is not True:
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
        st = replication(ctx, region, db)
        if st is not None and st.in_recovery and d.source_region == source:
            return Check.done(f"{region}/{db} replicates from {source}")
        if d.status == "unreachable":
            return Check.blocked(f"{region}/{db} is unreachable; its region must be healthy to rebuild it")
        if st is not None and not st.in_recovery and not d.fenced:
            # an unfenced writer is never rebuilt: either the switch already happened (a resumed
            # run) or both sides write (split brain), which a human must settle
            if is_writer(ctx, source, db) and not ctx.ports.db.describe(source, db).fenced:
                return Check.blocked(f"both {region}/{db} and {source}/{db} are unfenced writers; fence the one "
                                     "whose writes you give up, then rerun")
            return Check.done(f"{region}/{db} is the active writer; nothing to rebuild")
        return Check.todo(f"{region}/{db} is {d.role}{' (fenced)' if d.fenced else ''}, not a replica of {source}")

    def verify() -> str:
        def streaming():
            st = replication(ctx, region, db)
            return st is not None and st.in_recovery and st.streaming
        wait_until(streaming, what=f"{region}/{db} to stream from {source}", timeout=ctx.timeouts.rebuild,
                   clock=ctx.ports.clock, max_interval=5.0)
        return f"{region}/{db} streams from {source}"

    return Step(f"{name}:{db}", f"rebuild {region}/{db} as a replica of {source}", f"{region}/{db}",
                check, lambda: ctx.ports.db.rebuild_replica(region, db, source), verify, lane=db)


def catch_up_step(ctx: Context, db: str) -> Step:
    region = ctx.target

    def lag_ok() -> bool:
        st = replication(ctx, region, db)
        return st is not None and st.in_recovery and bool(st.streaming) and \
            (st.lag_seconds or 0.0) <= ctx.timeouts.caught_up_lag_seconds

    def check() -> Check:
        if active_writer(ctx, region, db):
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
        src = replication(ctx, source, db)
        dst = replication(ctx, region, db)
        if src is None or dst is None:
            return None
        return src.lsn, (dst.lsn if dst.in_recovery else -1)

    def check() -> Check:
        if active_writer(ctx, region, db):
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
        wait_until(lambda: (replication(ctx, region, db) or _Never).lsn >= final[0],
                   what=f"{region}/{db} to replay up to {final[0]:X}", timeout=ctx.timeouts.catch_up,
                   clock=ctx.ports.clock, interval=0.01, max_interval=0.2)
        return f"{region}/{db} replayed everything {source}/{db} wrote (WAL {final[0]:X})"

    return Step(f"drain:{db}", f"wait until {region}/{db} has replayed every write of {source}/{db}",
                f"{region}/{db}", check, apply, lane=db)


class _Never:
    lsn = -1
