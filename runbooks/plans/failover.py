"""The unplanned failover's plan (source region presumed lost)::

    fence source (best effort)  →  unfence target  →  promote target  →  [CDC slots]  →  DNS → target  →  verify
                                                            └→  clusters' endpoints → target (kubernetes.py)

(The target is unfenced before it is promoted: a replica takes no client writes anyway, and the
promotion's canary write must not meet a fence left by an earlier failback.) Kafka's and S3's lanes
(kafka.py, s3.py) and the clusters' active endpoints (kubernetes.py) join when declared.

Every step checks live state before it acts, so the same plan serves a first run, a resumed run
and a rerun after success. Steps of one phase touch one database each and run in parallel.
"""

from __future__ import annotations

from runbooks.core.engine import Phase, Plan
from runbooks.plans.cdc_slots import slots_phase
from runbooks.plans.context import Context
from runbooks.plans.database_gates import (
    gate_dns_ttl,
    gate_pitr_in_dr,
    gate_region_health,
    gate_replica,
    gate_replication,
)
from runbooks.plans.database_steps import dns_step, promote_step, verify_step
from runbooks.plans.fence_old_primary import fence_step, refence_step, unfence_step
from runbooks.plans.kafka import add_kafka_lane
from runbooks.plans.kubernetes import add_endpoint_steps
from runbooks.plans.s3 import add_s3_lane


def failover_plan(ctx: Context) -> Plan:
    dbs = ctx.databases
    gates = [gate_region_health(ctx, ctx.target, "the DR side must be healthy to take the writes"), gate_dns_ttl(ctx)]
    for db in dbs:
        gates += [gate_replica(ctx, db), gate_replication(ctx, db, planned=False), gate_pitr_in_dr(ctx, db)]
    plan = Plan("failover", [
        Phase("refence", [refence_step(ctx, db) for db in dbs], before_gates=True),
        Phase("fence", [fence_step(ctx, ctx.source, db, best_effort=True) for db in dbs]),
        Phase("unfence", [unfence_step(ctx, ctx.target, db) for db in dbs]),
        Phase("promote", [promote_step(ctx, db) for db in dbs]),
        *slots_phase(ctx, planned=False),  # CDC slots before clients arrive (cdc_slots.py)
        Phase("dns", [dns_step(ctx, db) for db in dbs]),
        Phase("verify", [verify_step(ctx, db) for db in dbs]),
    ], gates)
    plan = add_kafka_lane(plan, ctx, planned=False)  # when declared
    plan = add_s3_lane(plan, ctx, planned=False)  # when declared
    return add_endpoint_steps(plan, ctx, planned=False)  # the clusters' active endpoints, when declared
