"""What the plans read, without raising (for gates and checks): each database's replication state
and role, a Kafka or S3 flow's state, where Kafka's clients point; and what the outputs declare
about Kafka and S3 (whether they join the plan, their client and writer parameters)."""

from __future__ import annotations

from runbooks.core.errors import Unreachable
from runbooks.plans.context import Context

# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


def replication(ctx: Context, region: str, db: str):
    try:
        return ctx.ports.sql.replication(region, db)
    except Unreachable:
        return None


def is_writer(ctx: Context, region: str, db: str) -> bool | None:
    st = replication(ctx, region, db)
    return None if st is None else not st.in_recovery


def active_writer(ctx: Context, region: str, db: str) -> bool:
    """Out of recovery and not fenced: clients' writes land here (a fenced former primary is not)."""
    return bool(is_writer(ctx, region, db)) and not ctx.ports.db.describe(region, db).fenced


def active_writer_or_none(ctx: Context, region: str, db: str) -> bool:
    try:
        return active_writer(ctx, region, db)
    except Unreachable:
        return False


# --------------------------------------------------------------------------------------------
# Kafka and S3: what the outputs declare, and the flows' state
# --------------------------------------------------------------------------------------------

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


def refresh_seconds(ctx) -> float:
    r = _streaming(ctx).client_refresh_seconds if has_kafka(ctx) else None
    return float(DEFAULT_CLIENT_REFRESH_S if r is None else r)


def writer_parameter(ctx) -> str:
    return ctx.outputs.regions[ctx.target].storage.writer_parameter


def read_flow(port):
    try:
        return port.flow()
    except Unreachable:
        return None


def clients_on(ctx, region: str) -> bool:
    s = ctx.ports.streaming
    try:
        boot = s.bootstrap(region)
        return all(s.published(p) == boot for p in client_parameters(ctx))
    except Unreachable:
        return False
