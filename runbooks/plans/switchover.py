"""The planned switchover's plan, zero loss (both regions healthy), of which the failback is one,
going home::

    rebuild target as replica (if it is not one)  →  wait until caught up  →  fence source
    →  wait until target replayed source's last write  →  unfence target  →  promote target
    →  [CDC slots]  →  DNS → target  →  verify  →  rebuild source as a replica of target (protection restored)

Kafka's and S3's lanes (kafka.py, s3.py) and the clusters' active endpoints (kubernetes.py) join
when declared. ``never_failed_over``: the failback's precondition, read before anything else.
"""

from __future__ import annotations

from runbooks.core.engine import Phase, Plan
from runbooks.plans.cdc_slots import slots_phase
from runbooks.plans.context import Context
from runbooks.plans.database_gates import gate_dns_ttl, gate_region_health
from runbooks.plans.database_steps import catch_up_step, dns_step, drain_step, promote_step, rebuild_step, verify_step
from runbooks.plans.fence_old_primary import fence_step, refence_step, unfence_step
from runbooks.plans.kafka import add_kafka_lane
from runbooks.plans.kubernetes import add_endpoint_steps
from runbooks.plans.s3 import add_s3_lane
from runbooks.plans.state import clients_on, has_kafka, has_objects, read_flow, replication, writer_parameter


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
        at_home, at_dr = replication(ctx, home, db), replication(ctx, dr, db)
        if at_home is None or at_dr is None or at_home.in_recovery or not at_dr.in_recovery:
            return None
        h, d = ctx.ports.db.describe(home, db), ctx.ports.db.describe(dr, db)
        if h.fenced or d.fenced or d.source_region != home or ctx.ports.dns.answer(db) != home:
            return None
    if has_kafka(ctx):
        flow = read_flow(ctx.ports.streaming)
        if not clients_on(ctx, home) or flow is None or flow.source != home:
            return None
    if has_objects(ctx):
        o = ctx.ports.objects
        flow = read_flow(o)
        if o.writers(writer_parameter(ctx)) != o.bucket(home) or flow is None or flow.source != home:
            return None
    return (f"nothing to fail back: {home} is the unfenced writer of {', '.join(ctx.databases)} and {dr} an "
            f"unfenced replica of it; the pair never failed over (to move writes to {dr}, run the switchover "
            "or the failover)")


def switchover_plan(ctx: Context, runbook: str = "switchover") -> Plan:
    dbs = ctx.databases
    gates = [gate_region_health(ctx, ctx.target, "a planned switchover needs the destination healthy"),
             gate_region_health(ctx, ctx.source, "a zero-loss switchover drains the current primary"),
             gate_dns_ttl(ctx)]
    plan = Plan(runbook, [
        Phase("refence", [refence_step(ctx, db) for db in dbs], before_gates=True),
        Phase("rebuild", [rebuild_step(ctx, ctx.target, ctx.source, db, "rebuild") for db in dbs]),
        Phase("catch-up", [catch_up_step(ctx, db) for db in dbs]),
        Phase("fence", [fence_step(ctx, ctx.source, db, best_effort=False) for db in dbs]),
        Phase("drain", [drain_step(ctx, db) for db in dbs]),
        Phase("unfence", [unfence_step(ctx, ctx.target, db) for db in dbs]),
        Phase("promote", [promote_step(ctx, db) for db in dbs]),
        *slots_phase(ctx, planned=True),  # from the fenced source's live slots (cdc_slots.py)
        Phase("dns", [dns_step(ctx, db) for db in dbs]),
        Phase("verify", [verify_step(ctx, db) for db in dbs]),
        Phase("protect", [rebuild_step(ctx, ctx.source, ctx.target, db, "protect") for db in dbs]),
    ], gates)
    plan = add_kafka_lane(plan, ctx, planned=True)  # when declared
    plan = add_s3_lane(plan, ctx, planned=True, failback=runbook == "failback")  # when declared
    return add_endpoint_steps(plan, ctx, planned=True)  # the clusters' active endpoints, when declared
