"""Kafka and S3 in the failover and the switchover: steps and gates, in lanes of their own.

They join a plan only when the outputs declare streaming (storage with a writer parameter) in
both regions **and** the ports have a Streaming (ObjectStore) adapter; otherwise the plans are
exactly the database plans.

Order. Lanes run side by side; each data store fences its own writers before anything makes its
DR side writable, so no store ever has two writable sides, and a slow one delays no other:

- database lanes: fence the old primary → promote → DNS (plans.py);
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

from runbooks.clock import wait_until
from runbooks.engine import Check, Gate, GateResult, Plan, Step
from runbooks.errors import StepFailed, StepTimeout, Unreachable
from runbooks.ports import PAUSED

DEFAULT_CLIENT_REFRESH_S = 30


def has_kafka(ctx) -> bool:
    regions = (ctx.outputs.regions[ctx.source], ctx.outputs.regions[ctx.target])
    return ctx.ports.streaming is not None and all(r.streaming is not None for r in regions)


def has_objects(ctx) -> bool:
    regions = (ctx.outputs.regions[ctx.source], ctx.outputs.regions[ctx.target])
    return ctx.ports.objects is not None and all(r.storage is not None and r.storage.writer_parameter
                                                 for r in regions)


def _streaming(ctx):
    return ctx.outputs.regions[ctx.target].streaming


def client_parameters(ctx) -> list[str]:
    s = _streaming(ctx)
    return list(s.client_parameters) or ([s.bootstrap_parameter] if s.bootstrap_parameter else [])


def consumer_groups(ctx) -> list[str]:
    return list(_streaming(ctx).consumer_groups)


def _refresh_seconds(ctx) -> float:
    r = _streaming(ctx).client_refresh_seconds if has_kafka(ctx) else None
    return float(DEFAULT_CLIENT_REFRESH_S if r is None else r)


def _writer_parameter(ctx) -> str:
    return ctx.outputs.regions[ctx.target].storage.writer_parameter


def _flow(port):
    try:
        return port.flow()
    except Unreachable:
        return None


def _short(name: str) -> str:
    """A parameter's application part for step names: /regionpair/x/checkout/kafka-bootstrap → checkout."""
    parts = [p for p in name.split("/") if p]
    return parts[-2] if len(parts) >= 2 else name


# --------------------------------------------------------------------------------------------
# Gates
# --------------------------------------------------------------------------------------------


def _rpo_of(ctx, port) -> int:
    """The RPO objective of the component behind ``port`` (Kafka, or object storage)."""
    component = "kafka" if port is ctx.ports.streaming else "object_storage"
    return ctx.outputs.objectives.of(component).rpo_seconds


def _lag_gate(ctx, name: str, port, what: str, unit: str, planned: bool) -> Gate:
    def evaluate() -> GateResult:
        f = _flow(port)
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


def _checkpoint_gate(ctx) -> Gate:
    """Each consumer group has a DR position from MirrorMaker 2, and a recent one.

    Refused (``--force`` overrides), per group, naming it:

    - a partition the group committed on the source has **no checkpoint at all** in the target:
      the group would have no offsets there (its consumers would start from
      ``auto.offset.reset``), and nothing may invent them. The replicator says why (no offset sync
      for the partition yet, the group's offset older than every offset sync MirrorMaker 2 still
      uses, or not checkpointed yet); refused whether or not the source still answers;
    - its last checkpoint trails what it consumed on the source and is older than the RPO, while
      the source answers (its consumers would process again on DR everything since).

    MirrorMaker 2 checkpoints every ``emit.checkpoints.interval.seconds``, finds a new group within
    ``refresh.groups.interval.seconds``, and writes a checkpoint only when a group's translated
    offset moves, so a view read a moment too early (a flow just started, a group just found, a
    supervisor a beat behind) is judged again until ``timeouts.checkpoint_wait`` has passed while
    the source answers, or until the replicator's view of the target was read after the gate began
    when the source is gone (checkpoints live on the target: one written just before the fault
    still counts). Passes when the replicator gives no per-group view (MSK Replicator)."""
    name = "kafka-checkpoints"
    clock = ctx.ports.clock

    def judge(began: float):
        """(result, worth waiting): waiting helps while MirrorMaker 2 can still checkpoint (the source
        answers), or while the view was read from the target before the gate began (a checkpoint
        already written there may not be in it yet)."""
        f = _flow(ctx.ports.streaming)
        if f is None or f.groups is None or not f.running:
            return GateResult(name, True, "no per-group checkpoint view from the replicator"), False
        ctx.measurements.setdefault("streams_at_gate", {})[name] = f.groups
        gone = f.source_reachable is False
        bad, good = [], []
        for group in consumer_groups(ctx):
            g = f.groups.get(group)
            if g is None or not g.get("has_offsets_on_source"):
                good.append(f"{group}: nothing consumed on {f.source} yet")
                continue
            without = g.get("without_checkpoint") or {}
            age, since = g.get("checkpoint_age_s"), g.get("consumed_since_checkpoint") or 0
            if without:
                parts = "; ".join(f"{tp} (committed at {w.get('committed')}): {w.get('reason')}"
                                  for tp, w in sorted(without.items()))
                bad.append(f"{group} has no checkpoint from MirrorMaker 2 in {f.target} for {parts}. On {f.target} it "
                           "would have no offsets there and its consumers would start from auto.offset.reset; "
                           f"set its offsets on {f.target} by hand (kafka-consumer-groups --reset-offsets) or "
                           "rerun with --force to accept that")
            elif gone:
                good.append(f"{group}: {f.source} does not answer; it resumes from its last checkpoint"
                            + (f", {age:.1f} s old" if age is not None else ""))
            elif since and (age is None or age > ctx.rpo_seconds):
                bad.append(f"{group}'s last checkpoint is {'missing' if age is None else f'{age:.1f} s old'} and it "
                           f"consumed {since} records on {f.source} since (threshold: the RPO, {ctx.rpo_seconds} s): "
                           "its consumers would process those records again on DR. Wait for MirrorMaker 2's "
                           "checkpoints to catch up, or rerun with --force to accept the re-processing")
            else:
                good.append(f"{group}: checkpoint {'current' if not since else f'{age:.1f} s old'}")
        if bad:
            read = [g.get("read_at") for g in f.groups.values() if isinstance(g, dict)]
            stale = any(r is not None and r < began for r in read)
            return GateResult(name, False, "; ".join(bad)), not gone or stale
        return GateResult(name, True, "; ".join(good) or "no consumer group declared"), False

    def evaluate() -> GateResult:
        start, began, rounds = clock.monotonic(), clock.time(), 0
        while True:
            result, retry = judge(began)
            rounds += 1
            waited = clock.monotonic() - start
            if result.passed or not retry or waited >= ctx.timeouts.checkpoint_wait:
                if rounds > 1:
                    how = "after" if result.passed else "still, after"
                    result = GateResult(name, result.passed, f"{result.sentence} ({how} waiting {waited:.1f} s "
                                        "for MirrorMaker 2's checkpoints)")
                return result
            clock.sleep(0.25)
    return Gate(name, evaluate)


def stream_gates(ctx, planned: bool) -> list[Gate]:
    gates = []
    if has_kafka(ctx):
        gates.append(_lag_gate(ctx, "kafka-replicator", ctx.ports.streaming, "Kafka replicator", "records", planned))
        gates.append(_checkpoint_gate(ctx))
    if has_objects(ctx):
        gates.append(_lag_gate(ctx, "s3-replication", ctx.ports.objects, "S3 replication", "object versions",
                               planned))
    return gates


# --------------------------------------------------------------------------------------------
# Steps shared by both systems
# --------------------------------------------------------------------------------------------


def stop_flow_step(ctx, lane: str, port, what: str, best_effort: bool = False) -> Step:
    def check() -> Check:
        f = _flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if f.running and (f.source, f.target) == (ctx.source, ctx.target):
            return Check.todo(f"the {what} copies {ctx.source} → {ctx.target}")
        return Check.done(f"the {what} does not copy {ctx.source} → {ctx.target}"
                          + (f" (it runs {f.source} → {f.target})" if f.running else ""))

    def apply() -> str:
        f = _flow(port)
        result = port.stop_flow()
        pending = f"; {f.lag_records} not copied at the stop" if f and f.lag_records else ""
        if lane == "objects" and f is not None:
            ctx.measurements["objects_pending_at_failover"] = {
                "count": f.lag_records, "seconds": f.lag_seconds, "keys": list(f.pending[:50])}
        if lane == "kafka" and f is not None:
            ctx.measurements["kafka_lag_at_failover"] = {"records": f.lag_records, "seconds": f.lag_seconds}
        return result + pending

    def verify() -> str:
        f = _flow(port)
        if f is not None and f.running and (f.source, f.target) == (ctx.source, ctx.target):
            raise StepFailed(f"the {what} still copies {ctx.source} → {ctx.target} after being stopped")
        return f"the {what} copies nothing into {ctx.target}"

    return Step(f"{lane}-stop:replication", f"stop the {what} {ctx.source} → {ctx.target} (no stale data "
                f"interleaves once {ctx.target} takes writes)", what, check, apply, verify, best_effort=best_effort,
                lane=lane)


def start_flow_step(ctx, lane: str, port, what: str, source: str, target: str, name: str, done_when) -> Step:
    """Make sure the flow copies source → target (failback: reversed, before the switch)."""

    def check() -> Check:
        f = _flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if f.running and (f.source, f.target) == (source, target):  # the detail says how it started, if known
            return Check.done(f"the {what} copies {source} → {target}" + (f" ({f.detail})" if f.detail else ""))
        if done_when():
            return Check.done(f"clients already moved; the {what} is settled")
        return Check.todo(f"the {what} is {'running ' + str(f.source) + ' → ' + str(f.target) if f.running else 'stopped'}")

    def verify() -> str:
        f = _flow(port)
        if f is None or not f.running or (f.source, f.target) != (source, target):
            raise StepFailed(f"the {what} does not run {source} → {target} after being started")
        return f"the {what} runs {source} → {target}"

    return Step(f"{lane}-{name}:replication", f"copy {source} → {target} with the {what}", what, check,
                lambda: port.start_flow(source, target), verify, lane=lane)


def drain_flow_step(ctx, lane: str, port, what: str, clients_moved) -> Step:
    """Planned: clients are paused; wait their refresh interval, then until nothing is left to copy."""

    def empty() -> bool:
        f = _flow(port)
        return f is not None and f.running and (f.source, f.target) == (ctx.source, ctx.target) \
            and f.lag_records == 0

    def check() -> Check:
        f = _flow(port)
        if clients_moved():
            return Check.done(f"clients already write to {ctx.target}")
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if not f.running or (f.source, f.target) != (ctx.source, ctx.target):
            return Check.blocked(f"the {what} does not copy {ctx.source} → {ctx.target}; draining needs it")
        return Check.todo(f"{f.lag_records} left to copy")

    def apply() -> str:
        clock = ctx.ports.clock
        refresh = _refresh_seconds(ctx)
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
        f = _flow(port)
        if f is None:
            return Check.blocked(f"cannot read the {what}")
        if not f.running or (f.source, f.target) != (ctx.source, ctx.target):
            return Check.blocked(f"the {what} does not copy {ctx.source} → {ctx.target}; catching up needs it")
        return Check.done(f"the {what} is caught up ({behind(f)})") if caught_up(f) else Check.todo(behind(f))

    def apply() -> str:
        clock = ctx.ports.clock
        start = clock.monotonic()
        first = _flow(port)
        best: list = [None, start]  # the smallest lag seen, and when it last shrank by a tenth

        def ready() -> str | None:
            f = _flow(port)
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
        return f"the {what} {how} (from {behind(first)} to {behind(_flow(port))})"

    return Step(f"{lane}-catch-up:replication", f"wait until the {what} is within {close:g} s of {ctx.source} "
                "(or steady within the RPO)", what, check, apply, lane=lane)


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


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------


def _clients_on(ctx, region: str) -> bool:
    s = ctx.ports.streaming
    try:
        boot = s.bootstrap(region)
        return all(s.published(p) == boot for p in client_parameters(ctx))
    except Unreachable:
        return False


def offsets_step(ctx) -> Step:
    s = ctx.ports.streaming
    groups = consumer_groups(ctx)

    def check() -> Check:
        if not groups:
            return Check.done("no consumer group declared")
        if _clients_on(ctx, ctx.target):
            return Check.done(f"consumers already read {ctx.target}")
        return Check.todo(f"{len(groups)} consumer group(s) to give {ctx.target} offsets: {', '.join(groups)}")

    def apply() -> str:
        results = s.ensure_group_offsets(ctx.source, ctx.target, groups)
        missing = [r.group for r in results if not r.translated]
        ctx.measurements["kafka_consumer_groups"] = {
            r.group: {"translated": r.translated, "method": r.method, "duplicates_expected": r.duplicates,
                      "consumed_not_replicated": r.skipped} for r in results}
        if missing:
            raise StepFailed(f"consumer group(s) {', '.join(missing)} have no offsets in {ctx.target} and none "
                             "could be computed; their consumers would start from auto.offset.reset. Set them by "
                             "hand (kafka-consumer-groups --reset-offsets) or pass them over, then rerun ("
                             + "; ".join(f"{r.group}: {r.method}" for r in results if not r.translated) + ")")
        return "; ".join(f"{r.group}: offsets in {ctx.target} ({r.method})"
                         + (f", about {r.duplicates} records will be seen again" if r.duplicates else "")
                         for r in results)

    return Step("kafka-offsets:groups", f"make sure every consumer group has offsets in {ctx.target}",
                ",".join(groups) or "-", check, apply, lane="kafka")


def kafka_failover_steps(ctx) -> dict[str, list[Step]]:
    s = ctx.ports.streaming
    what = "Kafka replicator"
    publish = [parameter_step(ctx, "kafka", "kafka-clients", p, lambda: s.bootstrap(ctx.target), s.published,
                              s.publish, f"publish {ctx.target}'s bootstrap brokers in {p}")
               for p in client_parameters(ctx)]
    return {"fence": [stop_flow_step(ctx, "kafka", s, what)], "promote": [offsets_step(ctx)], "dns": publish}


def kafka_switchover_steps(ctx) -> dict[str, list[Step]]:
    s = ctx.ports.streaming
    what = "Kafka replicator"
    moved = lambda: _clients_on(ctx, ctx.target)  # noqa: E731
    pause = [parameter_step(ctx, "kafka", "kafka-pause", p,
                            lambda: s.bootstrap(ctx.target) if moved() else PAUSED, s.published, s.publish,
                            f"pause the clients of {p} (they produce and consume nothing)")
             for p in client_parameters(ctx)]
    steps = kafka_failover_steps(ctx)
    return {
        "rebuild": [start_flow_step(ctx, "kafka", s, what, ctx.source, ctx.target, "replicate", moved)],
        "catch-up": [catch_up_flow_step(ctx, "kafka", s, what, "records", moved)],
        "fence": pause,
        "drain": [drain_flow_step(ctx, "kafka", s, what, moved)],
        "promote": steps["fence"] + steps["promote"],
        "dns": steps["dns"],
        "protect": [start_flow_step(ctx, "kafka", s, what, ctx.target, ctx.source, "protect", lambda: False)],
    }


# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------


def objects_failover_steps(ctx, planned: bool = False) -> dict[str, list[Step]]:
    o = ctx.ports.objects
    p = _writer_parameter(ctx)
    # failover: in AWS the rule lives on the lost region's bucket; like fencing the lost primary,
    # disabling it is best effort (recorded; a rerun once the region answers disables it)
    return {"fence": [stop_flow_step(ctx, "objects", o, "S3 replication", best_effort=not planned)],
            "dns": [parameter_step(ctx, "objects", "objects-writers", p, lambda: o.bucket(ctx.target), o.writers,
                                   o.point_writers, f"point writers at {ctx.target}'s bucket ({p})")]}


def objects_switchover_steps(ctx, failback: bool = False) -> dict[str, list[Step]]:
    o = ctx.ports.objects
    p = _writer_parameter(ctx)
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


def add_stream_steps(plan: Plan, ctx, planned: bool, failback: bool = False) -> Plan:
    """Add the Kafka and S3 lanes to a database plan (by phase name) and their gates."""
    extra: list[dict[str, list[Step]]] = []
    if has_kafka(ctx):
        extra.append(kafka_switchover_steps(ctx) if planned else kafka_failover_steps(ctx))
    if has_objects(ctx):
        extra.append(objects_switchover_steps(ctx, failback) if planned else objects_failover_steps(ctx))
    phases = {p.name: p for p in plan.phases}
    for by_phase in extra:
        for phase_name, steps in by_phase.items():
            phases[phase_name].steps.extend(steps)
    plan.gates.extend(stream_gates(ctx, planned))
    return plan
