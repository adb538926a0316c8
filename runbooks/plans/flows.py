"""The steps and the gate that Kafka's and S3's lanes share: a replication flow (MirrorMaker 2 or
the MSK Replicator; S3 replication) is started, caught up, drained, stopped, and a parameter that
clients or writers read is set. The Kafka lane is ``kafka.py``, the S3 lane ``s3.py``.

Order. Lanes run side by side; each data store fences its own writers before anything makes its
DR side writable, so no store ever has two writable sides, and a slow one delays no other:

- database lanes: fence the old primary → promote → DNS (fence_old_primary.py, database_steps.py);
- ``kafka``: stop the replicator source → target (nothing stale interleaves once DR takes
  writes) → every consumer group gets DR offsets (translated by the replicator, or computed
  from its offset mapping) → publish the DR bootstrap in every client parameter;
- ``objects``: stop replication (recording what is still pending: versions only the lost region
  has) → point writers at the DR bucket.

A planned switchover (and the failback, which is one) first makes sure the flow runs
source → target (for the failback: reversed, DR → home, starting where the failover stopped it,
or — when home came back with an empty cluster or bucket — re-seeding it with everything DR
holds), waits until the flow is close behind (so the pause that follows is short), then pauses
clients (parameter ``PAUSED``, they produce and write nothing), waits their refresh interval,
drains the flow to zero, stops it, syncs the groups' offsets exactly, publishes the target, and
finally restarts the flow the other way (protection restored). Zero loss: nothing is written
while the flow drains, and nothing is cut over before it is empty. The failback's objects lane
also makes sure the home bucket holds what replication does not copy by itself (versions written
while it was off): the sandbox's worker does; in AWS the step starts an S3 Batch Replication job
with the role the dr stack declares, waits for it and fails loudly on any failed task
(``--objects-seeded`` stays the operator's override when they copied them another way).
"""

from __future__ import annotations

from runbooks.core.clock import wait_until
from runbooks.core.engine import Check, Gate, GateResult, Plan, Step
from runbooks.core.errors import StepFailed
from runbooks.plans.state import read_flow, refresh_seconds


def _short(name: str) -> str:
    """A parameter's application part for step names: /regionpair/x/checkout/kafka-bootstrap → checkout."""
    parts = [p for p in name.split("/") if p]
    return parts[-2] if len(parts) >= 2 else name


def _rpo_of(ctx, port) -> int:
    """The RPO objective of the component behind ``port`` (Kafka, or object storage)."""
    component = "kafka" if port is ctx.ports.streaming else "object_storage"
    return ctx.outputs.objectives.of(component).rpo_seconds


def lag_gate(ctx, name: str, port, what: str, unit: str, planned: bool) -> Gate:
    def evaluate() -> GateResult:
        f = read_flow(port)
        if f is None:
            return GateResult(name, False, f"cannot read the {what}")
        ctx.measurements.setdefault("streams_at_gate", {})[name] = {
            "running": f.running, "lag_records": f.lag_records, "lag_seconds": f.lag_seconds,
            "source_reachable": f.source_reachable, "source": f.source, "target": f.target}
        if not f.running:
            return GateResult(name, True, f"the {what} is stopped ({f.source} → {f.target})")
        if (f.source, f.target) == (ctx.target, ctx.source):
            return GateResult(name, True, f"the {what} already runs {ctx.target} → {ctx.source}")
        if planned and f.source_reachable is False:
            return GateResult(name, False, f"the {what} cannot reach {f.source}; a zero-loss switchover needs it")
        if f.lag_seconds is None:
            if f.source_reachable is False:
                return GateResult(name, True, f"the {what} lost {f.source}; its lag is unknown "
                                  f"({f.lag_records if f.lag_records is not None else 'unknown'} {unit} not copied)")
            return GateResult(name, False, f"the {what}'s lag is unknown although {f.source} answers")
        rpo = _rpo_of(ctx, port)
        if not planned and f.lag_seconds > rpo:
            return GateResult(name, False, f"the {what} is {f.lag_seconds:.1f} s behind ({f.lag_records} {unit}), "
                              f"more than its declared RPO of {rpo} s")
        return GateResult(name, True, f"the {what} is {f.lag_seconds:.2f} s behind ({f.lag_records} {unit}; "
                          f"RPO {rpo} s)")
    return Gate(name, evaluate)


def stop_flow_step(ctx, lane: str, port, what: str, best_effort: bool = False) -> Step:
    def check() -> Check:
        f = read_flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if f.running and (f.source, f.target) == (ctx.source, ctx.target):
            return Check.todo(f"the {what} copies {ctx.source} → {ctx.target}")
        return Check.done(f"the {what} does not copy {ctx.source} → {ctx.target}"
                          + (f" (it runs {f.source} → {f.target})" if f.running else ""))

    def apply() -> str:
        f = read_flow(port)
        result = port.stop_flow()
        pending = f"; {f.lag_records} not copied at the stop" if f and f.lag_records else ""
        if lane == "objects" and f is not None:
            ctx.measurements["objects_pending_at_failover"] = {
                "count": f.lag_records, "seconds": f.lag_seconds, "keys": list(f.pending[:50])}
        if lane == "kafka" and f is not None:
            ctx.measurements["kafka_lag_at_failover"] = {"records": f.lag_records, "seconds": f.lag_seconds}
        return result + pending

    def verify() -> str:
        f = read_flow(port)
        if f is not None and f.running and (f.source, f.target) == (ctx.source, ctx.target):
            raise StepFailed(f"the {what} still copies {ctx.source} → {ctx.target} after being stopped")
        return f"the {what} copies nothing into {ctx.target}"

    return Step(f"{lane}-stop:replication", f"stop the {what} {ctx.source} → {ctx.target} (no stale data "
                f"interleaves once {ctx.target} takes writes)", what, check, apply, verify, best_effort=best_effort,
                lane=lane)


def start_flow_step(ctx, lane: str, port, what: str, source: str, target: str, name: str, done_when) -> Step:
    """Make sure the flow copies source → target (failback: reversed, before the switch)."""

    def check() -> Check:
        f = read_flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if f.running and (f.source, f.target) == (source, target):  # the detail says how it started, if known
            return Check.done(f"the {what} copies {source} → {target}" + (f" ({f.detail})" if f.detail else ""))
        if done_when():
            return Check.done(f"clients already moved; the {what} is settled")
        return Check.todo(f"the {what} is {'running ' + str(f.source) + ' → ' + str(f.target) if f.running else 'stopped'}")

    def verify() -> str:
        f = read_flow(port)
        if f is None or not f.running or (f.source, f.target) != (source, target):
            raise StepFailed(f"the {what} does not run {source} → {target} after being started")
        return f"the {what} runs {source} → {target}"

    return Step(f"{lane}-{name}:replication", f"copy {source} → {target} with the {what}", what, check,
                lambda: port.start_flow(source, target), verify, lane=lane)


def drain_flow_step(ctx, lane: str, port, what: str, clients_moved) -> Step:
    """Planned: clients are paused; wait their refresh interval, then until nothing is left to copy."""

    def empty() -> bool:
        f = read_flow(port)
        return f is not None and f.running and (f.source, f.target) == (ctx.source, ctx.target) \
            and f.lag_records == 0

    def check() -> Check:
        f = read_flow(port)
        if clients_moved():
            return Check.done(f"clients already write to {ctx.target}")
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if not f.running or (f.source, f.target) != (ctx.source, ctx.target):
            return Check.blocked(f"the {what} does not copy {ctx.source} → {ctx.target}; draining needs it")
        return Check.todo(f"{f.lag_records} left to copy")

    def apply() -> str:
        clock = ctx.ports.clock
        refresh = refresh_seconds(ctx)
        clock.sleep(refresh)  # every client has re-read its parameter and stopped by now
        start = clock.monotonic()
        wait_until(empty, what=f"the {what} to copy everything", timeout=ctx.timeouts.catch_up, clock=clock,
                   interval=0.05, max_interval=1.0)
        return (f"waited {refresh:g} s for clients to pause, then {clock.monotonic() - start:.2f} s until the "
                f"{what} had copied everything to {ctx.target}")

    return Step(f"{lane}-drain:replication", f"wait until the {what} has copied everything to {ctx.target}",
                what, check, apply, lane=lane)


def catch_up_flow_step(ctx, lane: str, port, what: str, unit: str, clients_moved) -> Step:
    """Planned, before clients pause: wait until the flow source → target is close behind, so the
    pause that follows lasts a drain of the last seconds, not a copy of everything (a failback
    after an outage re-seeds a home cluster or bucket that came back empty). A flow whose lag is
    steady within the RPO but above the threshold counts as caught up; one stuck beyond the RPO
    times out the step before anyone is paused."""
    close = ctx.timeouts.caught_up_flow_seconds

    def caught_up(f) -> bool:
        return f is not None and f.running and (f.source, f.target) == (ctx.source, ctx.target) \
            and f.lag_records is not None and (f.lag_records == 0 or (f.lag_seconds is not None
                                                                     and f.lag_seconds <= close))

    def behind(f) -> str:
        if f is None:
            return f"the {what} unreadable"
        secs = "unknown" if f.lag_seconds is None else f"{f.lag_seconds:.2f} s"
        recs = "unknown" if f.lag_records is None else f.lag_records
        return f"{recs} {unit} left to copy, {secs} behind"

    def check() -> Check:
        if clients_moved():
            return Check.done(f"clients already write to {ctx.target}")
        f = read_flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if not f.running or (f.source, f.target) != (ctx.source, ctx.target):
            return Check.blocked(f"the {what} does not copy {ctx.source} → {ctx.target}; catching up needs it")
        return Check.done(f"the {what} is caught up ({behind(f)})") if caught_up(f) else Check.todo(behind(f))

    def apply() -> str:
        clock = ctx.ports.clock
        start = clock.monotonic()
        first = read_flow(port)
        best: list = [None, start]  # the smallest lag seen, and when it last shrank by a tenth

        def ready() -> str | None:
            f = read_flow(port)
            if caught_up(f):
                return f"caught up in {clock.monotonic() - start:.2f} s"
            now = clock.monotonic()
            if f is None or f.lag_seconds is None or not f.running:
                return None
            if best[0] is None or f.lag_seconds < best[0] * 0.9:
                best[0], best[1] = f.lag_seconds, now
            elif now - best[1] >= ctx.timeouts.flow_plateau_seconds and f.lag_seconds <= _rpo_of(ctx, port):
                # its steady lag is above the threshold but within the RPO (S3's lag is coarse):
                # waiting longer shortens nothing; the drain after the pause copies the rest. A flow
                # stuck beyond the RPO is not paused for: the step times out, clients keep writing
                return (f"no longer gaining after {now - start:.2f} s ({f.lag_seconds:.1f} s behind, within the "
                        f"RPO of {_rpo_of(ctx, port)} s); the drain copies the rest")
            return None
        how = wait_until(ready, what=f"the {what} to catch up with {ctx.source}", timeout=ctx.timeouts.catch_up,
                         clock=clock, interval=0.05, max_interval=1.0)
        return f"the {what} {how} (from {behind(first)} to {behind(read_flow(port))})"

    return Step(f"{lane}-catch-up:replication", f"wait until the {what} is within {close:g} s of {ctx.source} "
                "(or steady within the RPO)", what, check, apply, lane=lane)


def parameter_step(ctx, lane: str, name: str, parameter: str, value, read, write, why: str) -> Step:
    def check() -> Check:
        want = value()
        now = read(parameter)
        if now == want:
            return Check.done(f"{parameter} = {now}")
        return Check.todo(f"{parameter} = {now}")

    def apply() -> str:
        return write(parameter, value())

    def verify() -> str:
        now = read(parameter)
        if now != value():
            raise StepFailed(f"{parameter} reads {now!r} after it was set")
        return f"{parameter} reads back {now}"

    return Step(f"{name}:{_short(parameter)}", why, parameter, check, apply, verify, lane=lane)


def extend_phases(plan: Plan, by_phase: dict[str, list[Step]]) -> None:
    """Add a lane's steps to the plan's phases of the same names."""
    phases = {p.name: p for p in plan.phases}
    for phase_name, steps in by_phase.items():
        phases[phase_name].steps.extend(steps)
