"""Kafka in the failover and the switchover: the ``kafka`` lane (stop or reverse the replicator,
give every consumer group offsets in the target, publish the target's bootstrap servers in every
client parameter) and its gates (the replicator's lag, MirrorMaker 2's checkpoints). It joins a
plan only when the outputs declare streaming in both regions and the ports have a Streaming
adapter."""

from __future__ import annotations

from runbooks.core.engine import Check, Gate, GateResult, Plan, Step
from runbooks.core.errors import StepFailed
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
from runbooks.plans.state import client_parameters, clients_on, consumer_groups, has_kafka, read_flow


def checkpoint_gate(ctx) -> Gate:
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
        f = read_flow(ctx.ports.streaming)
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


def offsets_step(ctx) -> Step:
    s = ctx.ports.streaming
    groups = consumer_groups(ctx)

    def check() -> Check:
        if not groups:
            return Check.done("no consumer group declared")
        if clients_on(ctx, ctx.target):
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
    moved = lambda: clients_on(ctx, ctx.target)  # noqa: E731
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


def add_kafka_lane(plan: Plan, ctx, planned: bool) -> Plan:
    """Add the Kafka lane to a database plan (by phase name) and its gates, when Kafka is declared."""
    if has_kafka(ctx):
        extend_phases(plan, kafka_switchover_steps(ctx) if planned else kafka_failover_steps(ctx))
        plan.gates.append(lag_gate(ctx, "kafka-replicator", ctx.ports.streaming, "Kafka replicator", "records",
                                   planned))
        plan.gates.append(checkpoint_gate(ctx))
    return plan
