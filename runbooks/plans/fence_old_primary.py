"""Fencing: where the failover and the switchover fence the old primary (deny client writes on it,
persistently: best effort when its region is gone), where a later failover rerun or a failback
re-fences it when it came back unfenced, and where the target's own fence (left by an earlier
failback) is lifted before it is promoted."""

from __future__ import annotations

from runbooks.core.engine import Check, Step
from runbooks.core.errors import StepFailed
from runbooks.plans.context import Context
from runbooks.plans.state import active_writer_or_none, replication


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
        if not active_writer_or_none(ctx, dr, db):
            return Check.done(f"{dr}/{db} is not a promoted writer: no fence of {home}/{db} to re-check")
        if ctx.ports.db.describe(home, db).fenced:
            return Check.done(f"{home}/{db} is fenced")
        st = replication(ctx, home, db)
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


def unfence_step(ctx: Context, region: str, db: str) -> Step:
    def check() -> Check:
        d = ctx.ports.db.describe(region, db)
        return Check.todo(f"{region}/{db} is fenced") if d.fenced else Check.done(f"{region}/{db} is not fenced")

    return Step(f"unfence:{db}", f"let clients write to {region}/{db}", f"{region}/{db}",
                check, lambda: ctx.ports.db.unfence(region, db), lane=db)
