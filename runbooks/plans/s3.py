"""S3 in the failover and the switchover: the ``objects`` lane (stop or reverse S3 replication,
point writers at the target's bucket; in a failback first make sure the home bucket holds every
version DR holds, with an S3 Batch Replication job where the adapter needs one) and its gate (the
replication's lag). It joins a plan only when the outputs declare storage with a writer parameter
in both regions and the ports have an ObjectStore adapter."""

from __future__ import annotations

from runbooks.core.clock import wait_until
from runbooks.core.engine import Check, Plan, Step
from runbooks.core.errors import StepFailed, StepTimeout, Unreachable
from runbooks.core.ports import PAUSED
from runbooks.plans.flows import (
    catch_up_flow_step,
    drain_flow_step,
    extend_phases,
    lag_gate,
    parameter_step,
    start_flow_step,
    stop_flow_step,
)
from runbooks.plans.state import has_objects, writer_parameter


def objects_seed_step(ctx, clients_moved) -> Step:
    """Failback: the home bucket must hold every version DR holds before writers move home — also
    those S3 replication does not copy by itself (written while it was off, or all of them when
    the home bucket came back empty). Where the adapter cannot see that by looking (AWS: CRR
    copies only new versions), it starts a job that copies them (S3 Batch Replication), waits for
    it and fails on any failed task; where it cannot start one either (no role in the outputs),
    the step refuses, changing nothing. ``--objects-seeded`` (audited) is the operator's word that
    they copied them another way, and skips the job."""
    o = ctx.ports.objects
    confirmed = "objects-seeded" in ctx.confirmations

    def check() -> Check:
        if clients_moved():
            return Check.done(f"writers already write to {ctx.target}")
        try:
            s = o.seeding(ctx.source, ctx.target)
        except Unreachable as exc:
            return Check.blocked(f"cannot tell what {ctx.target}'s bucket lacks: {exc}")
        return Check.done(s.sentence) if s.complete else Check.todo(s.sentence)

    def apply() -> str:
        s = o.seeding(ctx.source, ctx.target)
        if s.complete is None:
            if confirmed:
                return f"confirmed by the operator (--objects-seeded): {s.sentence}"
            if not s.startable:
                raise StepFailed(f"{s.sentence}. {s.remedy}")
            return seed_with_job(ctx, o)
        clock = ctx.ports.clock
        start = clock.monotonic()

        def seeded():
            state = o.seeding(ctx.source, ctx.target)
            return state if state.complete else None

        done = wait_until(seeded, what=f"{ctx.target}'s bucket to receive every version of {ctx.source}",
                          timeout=ctx.timeouts.catch_up, clock=clock, interval=0.05, max_interval=1.0)
        return f"{done.sentence} (waited {clock.monotonic() - start:.2f} s)"

    return Step("objects-seed:replication", f"make sure {ctx.target}'s bucket holds every version {ctx.source}'s "
                "holds, also those replication does not copy by itself", "S3 replication", check, apply,
                lane="objects")


def seed_with_job(ctx, o) -> str:
    """Start (or find again, by the run id) the adapter's seeding job, record it in the journal,
    wait for it on the runbook's clock within ``timeouts.seed_objects``, and succeed only when it
    finished with every task done."""
    if not ctx.run_id:
        # the run id keys the job: without one, every run would take the others' jobs for its own
        raise StepFailed("no run id to key the seeding job by; run the failback through its CLI")
    clock = ctx.ports.clock
    start = clock.monotonic()
    job = o.start_seeding(ctx.source, ctx.target, ctx.run_id)
    ctx.note("objects-seed-job", job_id=job.job_id, attempt=job.attempt, created=job.created, status=job.status,
             report=job.report)
    last = [job]

    def finished():
        try:
            j = o.seed_job(ctx.source, job.job_id, attempt=job.attempt)
        except Unreachable:
            return None  # the region's API hiccuped: the deadline decides
        last[0] = j
        return j if j.finished else None

    try:
        done = job if job.finished else wait_until(
            finished, what=f"seeding job {job.job_id} to finish", timeout=ctx.timeouts.seed_objects, clock=clock,
            interval=5.0, max_interval=60.0)
    except StepTimeout:
        raise StepTimeout(f"{last[0].sentence}: not finished after {ctx.timeouts.seed_objects:g} s; it goes on "
                          "without the runbook. Rerun the failback: it waits for this same job") from None
    if not done.succeeded:
        raise StepFailed(done.sentence)
    how = "started" if job.created else "found again (started earlier in this run)"
    return f"{done.sentence}; {how}, waited {clock.monotonic() - start:.2f} s"


def objects_failover_steps(ctx, planned: bool = False) -> dict[str, list[Step]]:
    o = ctx.ports.objects
    p = writer_parameter(ctx)
    # failover: in AWS the rule lives on the lost region's bucket; like fencing the lost primary,
    # disabling it is best effort (recorded; a rerun once the region answers disables it)
    return {"fence": [stop_flow_step(ctx, "objects", o, "S3 replication", best_effort=not planned)],
            "dns": [parameter_step(ctx, "objects", "objects-writers", p, lambda: o.bucket(ctx.target), o.writers,
                                   o.point_writers, f"point writers at {ctx.target}'s bucket ({p})")]}


def objects_switchover_steps(ctx, failback: bool = False) -> dict[str, list[Step]]:
    o = ctx.ports.objects
    p = writer_parameter(ctx)
    what = "S3 replication"
    moved = lambda: o.writers(p) == o.bucket(ctx.target)  # noqa: E731
    steps = objects_failover_steps(ctx, planned=True)
    return {
        "rebuild": [start_flow_step(ctx, "objects", o, what, ctx.source, ctx.target, "replicate", moved)],
        "catch-up": ([objects_seed_step(ctx, moved)] if failback else [])
        + [catch_up_flow_step(ctx, "objects", o, what, "object versions", moved)],
        "fence": [parameter_step(ctx, "objects", "objects-pause", p,
                                 lambda: o.bucket(ctx.target) if moved() else PAUSED, o.writers, o.point_writers,
                                 f"pause the writers of {p}")],
        "drain": [drain_flow_step(ctx, "objects", o, what, moved)],
        "promote": steps["fence"],
        "dns": steps["dns"],
        "protect": [start_flow_step(ctx, "objects", o, what, ctx.target, ctx.source, "protect", lambda: False)],
    }


def add_s3_lane(plan: Plan, ctx, planned: bool, failback: bool = False) -> Plan:
    """Add the S3 lane to a database plan (by phase name) and its gate, when object storage is declared."""
    if has_objects(ctx):
        extend_phases(plan, objects_switchover_steps(ctx, failback) if planned else objects_failover_steps(ctx))
        plan.gates.append(lag_gate(ctx, "s3-replication", ctx.ports.objects, "S3 replication", "object versions",
                                   planned))
    return plan
