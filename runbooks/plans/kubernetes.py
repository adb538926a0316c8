"""Kubernetes in the failover and the switchover: the applications' active-endpoints ConfigMap in each
region's cluster, and the restart of the Deployments that read it — the runbooks' side of the
active-endpoints contract (docs/kubernetes.md, "What a failover runbook must do").

The steps join a plan only when some region of the outputs declares a cluster (``kubernetes``)
and the ports have an Endpoints adapter; otherwise the plans are exactly what they were.

- ``endpoints:<region>``, one per cluster, target first, in a lane of their own (``endpoints``):
  every copy of the ConfigMap gets the new writer's values (``ACTIVE_REGION``, each moved
  database's ``DB_<NAME>_HOST``/``_PORT``, ``KAFKA_BOOTSTRAP_SERVERS``, ``DATA_BUCKET``; the
  version key stays Pulumi's) and the run id in ``regionpair.io/updated-by``. Each waits until
  every database is promoted and Kafka's clients and S3's writers are moved (``Step.after``),
  and goes with the DNS cutover. In an unplanned failover the lost region's cluster is best
  effort: it is recorded that it could not be reached, and that its copies must be corrected
  before any failback.
- ``endpoints-current:<region>`` (planned runs only: switchover and failback), before anything
  moves: every copy points at the CURRENT writer. After a failover whose lost region's cluster
  could not be reached, that region's copies still send its applications to the fenced old
  primary; the failback corrects them first, while it rebuilds the replicas, since the region
  is healthy by then. Otherwise (every copy already current) it is done at once.

- ``restart-deployments:<region>``, only for a cluster whose outputs list Deployments
  (``restart_deployments``: those that read the ConfigMap through ``envFrom`` and see a change
  only in new pods), in a lane of its own once ``endpoints:<region>`` has ended: what ``kubectl
  rollout restart`` does, to each listed Deployment whose namespace's copy the runbooks wrote
  since its last restart. The pod template gets ``kubectl.kubernetes.io/restartedAt`` and
  ``regionpair.io/restarted-for`` = the copy's ``regionpair.io/updated-by`` (the run id of the
  write), which is how ``check`` knows, in this run or a later one, that the restart happened: a
  rerun restarts nothing twice. It does not wait for the rollout; ``verify`` reads the annotations
  back and reports how far each rollout is. Best effort where ``endpoints:<region>`` is.

A gate reads the target's cluster before any change (and, in a planned run, the source's too):
a missing kubectl, a context that does not exist, an unreachable cluster, one without a copy, or
a listed Deployment that does not exist (or may not be read) refuses the run with what to do,
instead of failing it after the promotion.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Mapping

from contract import active_endpoints as contract
from runbooks.core.engine import Check, Gate, GateResult, Phase, Plan, Step
from runbooks.core.errors import RunbookError, StepFailed
from runbooks.core.ports import ClusterEndpoints, DeploymentState
from runbooks.plans.state import active_writer

LANE = "endpoints"
RESTART = "restart-deployments"
"""The restart steps' name prefix; each region's is a lane of its own (it waits for its cluster's
endpoints step only, not for the other cluster's)."""
WAIT_FOR = ("promote:", "kafka-clients:", "objects-writers:")
"""The steps (by name prefix) after which the applications' endpoints move."""


def has_endpoints(ctx) -> bool:
    return ctx.ports.endpoints is not None and any(r.kubernetes is not None for r in ctx.outputs.regions.values())


def clusters(ctx) -> list[str]:
    """The regions with a cluster, the target's first (the region applications must reach now)."""
    return [r for r in (ctx.target, ctx.source) if ctx.outputs.regions[r].kubernetes is not None]


def values_for(ctx, region: str) -> dict[str, str]:
    """The contract values when ``region`` holds the writers of the run's databases."""
    return contract.active_values(ctx.outputs.regions[region], ctx.databases)


def _read(ctx, region: str) -> tuple[ClusterEndpoints | None, str | None]:
    try:
        return ctx.ports.endpoints.read(region), None
    except RunbookError as exc:
        return None, str(exc)


def _stale(cluster: ClusterEndpoints, values: Mapping[str, str]) -> list:
    return [c for c in cluster.copies if any(c.data.get(k) != v for k, v in values.items())]


def _where(copies) -> str:
    return ", ".join(f"{c.namespace}/{c.name}" for c in copies)


def _missing(cluster: ClusterEndpoints) -> str:
    return (f"; no copy in namespace(s) {', '.join(cluster.missing)} (the stack creates them, the runbooks never "
            "do)") if cluster.missing else ""


def _no_copy(ctx, region: str, cluster: ClusterEndpoints) -> str:
    k = ctx.outputs.regions[region].kubernetes
    return (f"{region}'s cluster (context {cluster.context}) has no ConfigMap {k.configmap} labelled "
            f"{contract.SELECTOR} in {', '.join(k.namespaces)}; `pulumi up` of the "
            f"{ctx.outputs.regions[region].stack} stack creates them")


# --------------------------------------------------------------------------------------------
# Gates
# --------------------------------------------------------------------------------------------


def _gate(ctx, region: str, why: str) -> Gate:
    name = f"endpoints:{region}"

    def evaluate() -> GateResult:
        cluster, err = _read(ctx, region)
        if cluster is None:
            return GateResult(name, False, f"cannot read the active endpoints in {region}'s cluster ({why}): {err}")
        if not cluster.copies:
            return GateResult(name, False, _no_copy(ctx, region, cluster))
        active = sorted({c.data.get(contract.ACTIVE_REGION) or "?" for c in cluster.copies})
        restart = ""
        if _listed(ctx, region):
            deployments, err = _deployments(ctx, region)
            if deployments is None:
                return GateResult(name, False, f"cannot read the Deployments to restart in {region}'s cluster "
                                  f"(context {cluster.context}): {err}")
            absent = [d for d in deployments if not d.exists]
            if absent:
                return GateResult(name, False, _absent(ctx, region, cluster.context, absent))
            restart = f"; Deployments to restart after the move: {_where(deployments)}"
        return GateResult(name, True, f"{len(cluster.copies)} copies readable in {region}'s cluster (context "
                          f"{cluster.context}), ACTIVE_REGION {', '.join(active)}{_missing(cluster)}{restart}")
    return Gate(name, evaluate)


def endpoint_gates(ctx, planned: bool) -> list[Gate]:
    regions = clusters(ctx) if planned else [r for r in clusters(ctx) if r == ctx.target]
    return [_gate(ctx, r, "the applications there must be moved" if r == ctx.target else
                  "a planned switch moves the applications of both regions") for r in regions]


# --------------------------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------------------------


def publish_step(ctx, region: str, name: str, active: str, action: str, *, best_effort: bool = False,
                 after: tuple[str, ...] = (), settled: Callable[[], str | None] | None = None) -> Step:
    """Point every copy of ``region``'s cluster at ``active``'s endpoints (``settled``: a sentence
    when the step has nothing left to do whatever the copies say)."""
    unreachable_hint = (f"; its copies still send applications to {ctx.source}: correct them before any failback "
                        f"(rerun the failover once {region} answers, it does only what is left; the failback "
                        "corrects them first)") if best_effort else ""

    def check() -> Check:
        if settled is not None:
            why = settled()
            if why:
                return Check.done(why)
        cluster, err = _read(ctx, region)
        if cluster is None:
            return Check.blocked(f"cannot reach {region}'s cluster: {err}{unreachable_hint}")
        if not cluster.copies:
            return Check.blocked(_no_copy(ctx, region, cluster))
        stale = _stale(cluster, values_for(ctx, active))
        if not stale:
            return Check.done(f"every copy in {region}'s cluster ({_where(cluster.copies)}) already sends applications "
                              f"to {active}{_missing(cluster)}")
        now = ", ".join(f"{c.namespace}: {c.data.get(contract.ACTIVE_REGION) or '?'}" for c in stale)
        return Check.todo(f"{len(stale)} of {len(cluster.copies)} copies in {region}'s cluster do not send "
                          f"applications to {active} (ACTIVE_REGION {now})")

    def apply() -> str:
        if not ctx.run_id:
            raise StepFailed(f"{name}: no run id to annotate the copies with (the runbook CLI sets it)")
        try:
            return ctx.ports.endpoints.publish(region, values_for(ctx, active), ctx.run_id)
        except RunbookError as exc:
            if best_effort:
                raise StepFailed(f"{exc}{unreachable_hint}") from exc
            raise

    def verify() -> str:
        cluster, err = _read(ctx, region)
        if cluster is None:
            raise StepFailed(f"cannot read back {region}'s copies: {err}")
        stale = _stale(cluster, values_for(ctx, active))
        if stale:
            raise StepFailed(f"{_where(stale)} in {region} do not read back {active}'s endpoints after they were set")
        return f"{_where(cluster.copies)} in {region} read back ACTIVE_REGION={active}"

    k = ctx.outputs.regions[region].kubernetes
    return Step(name, action, f"{k.context} ({', '.join(k.namespaces)})", check, apply, verify,
                best_effort=best_effort, lane=LANE, after=after)


# --------------------------------------------------------------------------------------------
# Restarting the Deployments that read the ConfigMap through envFrom
# --------------------------------------------------------------------------------------------


def _listed(ctx, region: str) -> bool:
    k = ctx.outputs.regions[region].kubernetes
    return k is not None and bool(k.restart_deployments)


def _deployments(ctx, region: str) -> tuple[tuple[DeploymentState, ...] | None, str | None]:
    try:
        return ctx.ports.endpoints.deployments(region), None
    except RunbookError as exc:
        return None, str(exc)


def _absent(ctx, region: str, context: str, absent) -> str:
    return (f"{region}'s cluster (context {context}) has no Deployment {_where(absent)}, which "
            f"kubernetes.restart_deployments of the {ctx.outputs.regions[region].stack} stack lists: create it, or "
            "remove it from that list and `pulumi up` the stack (the runbooks' Role names each listed Deployment); "
            "--force runs without restarting it")


def _owed(cluster: ClusterEndpoints, deployments, values: Mapping[str, str]):
    """(Deployments to restart now, each with the run id of its copy's write; those whose copy does
    not carry ``values`` yet; the others left alone, in words). A Deployment is owed a restart once
    its namespace's copy carries ``values`` and was written by the runbooks (``updated_by``) after
    its last restart for such a write (``restarted_for``)."""
    copies = {c.namespace: c for c in cluster.copies}
    stale = {c.namespace for c in _stale(cluster, values)}
    owed, early, aside = [], [], []
    for d in deployments:
        copy = copies.get(d.namespace)
        if not d.exists:
            aside.append(f"{d.namespace}/{d.name} does not exist")
        elif copy is None:
            aside.append(f"{d.namespace}/{d.name}: no copy in {d.namespace}")
        elif d.namespace in stale:
            early.append(d)
        elif copy.updated_by and d.restarted_for != copy.updated_by:
            owed.append((d, copy.updated_by))
    return owed, early, aside


def restart_step(ctx, region: str, active: str, *, best_effort: bool = False, after: tuple[str, ...] = ()) -> Step:
    """Restart, in ``region``'s cluster, each listed Deployment whose copy moved to ``active`` since it last restarted."""
    name = f"{RESTART}:{region}"
    unreachable_hint = (f"; its Deployments still run with {ctx.source}'s endpoints: rerun the failover once {region} "
                        "answers (it does only what is left), or restart them by hand") if best_effort else ""

    def read():
        cluster, err = _read(ctx, region)
        if cluster is None:
            return None, None, f"cannot reach {region}'s cluster: {err}{unreachable_hint}"
        deployments, err = _deployments(ctx, region)
        if deployments is None:
            return None, None, f"cannot read the Deployments to restart in {region}'s cluster: {err}{unreachable_hint}"
        return cluster, deployments, None

    def check() -> Check:
        cluster, deployments, err = read()
        if err:
            return Check.blocked(err)
        owed, early, aside = _owed(cluster, deployments, values_for(ctx, active))
        also = f" ({'; '.join(aside)})" if aside else ""
        if early:
            return Check.todo(f"{_where(early)} in {region}'s cluster: restarted once their copy carries {active}'s "
                              f"endpoints{also}")
        if owed:
            return Check.todo(f"{_where(d for d, _ in owed)} in {region}'s cluster started before their copy was set "
                              f"to {active}'s endpoints{also}")
        return Check.done(f"every listed Deployment in {region}'s cluster started after its copy was last set: "
                          f"{_where(d for d in deployments if d.exists) or 'none'}{also}")

    def apply() -> str:
        cluster, deployments, err = read()
        if err:
            raise StepFailed(err)
        owed, early, aside = _owed(cluster, deployments, values_for(ctx, active))
        aside += [f"{d.namespace}/{d.name}: its copy does not carry {active}'s endpoints" for d in early]
        at = datetime.fromtimestamp(ctx.ports.clock.time(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for d, run in owed:  # one at a time: after a crash, a rerun's check finds the others
            ctx.ports.endpoints.restart(region, d.namespace, d.name, run, at)
        done = (f"rollout restart of {_where(d for d, _ in owed)} in {region}'s cluster ({contract.RESTARTED_AT}={at})"
                if owed else f"no Deployment in {region}'s cluster to restart")
        return done + (f"; not restarted: {'; '.join(aside)}" if aside else "")

    def verify() -> str:
        cluster, deployments, err = read()
        if err:
            raise StepFailed(f"cannot read back the restarts in {region}'s cluster: {err}")
        owed, _, _ = _owed(cluster, deployments, values_for(ctx, active))
        if owed:
            raise StepFailed(f"{_where(d for d, _ in owed)} in {region} do not read back the restart annotation "
                             f"{contract.RESTARTED_FOR} after it was set")
        # the rollout itself is the cluster's: reported, never waited for
        return "; ".join(f"{d.namespace}/{d.name}: " + ("paused, rolls out when resumed" if d.paused else
                                                         d.rollout or "restart requested")
                         for d in deployments if d.exists)

    k = ctx.outputs.regions[region].kubernetes
    return Step(name, f"restart the Deployments that read the endpoints through envFrom in {region}'s cluster",
                f"{k.context} ({', '.join(f'{ns}/{n}' for ns, n in k.listed_deployments)})",
                check, apply, verify, best_effort=best_effort, lane=name, after=after)


def _switch_under_way(ctx) -> str | None:
    """A sentence once a target database is the active writer: from then on only the last step moves copies."""
    for db in ctx.databases:
        try:
            if active_writer(ctx, ctx.target, db):
                return (f"{ctx.target}/{db} already takes the writes; the copies move to {ctx.target} with the "
                        "switch itself")
        except RunbookError:
            continue
    return None


def add_endpoint_steps(plan: Plan, ctx, planned: bool) -> Plan:
    """Add the endpoints lane to a failover or switchover plan (after its Kafka and S3 lanes are in)."""
    if not has_endpoints(ctx):
        return plan
    regions = clusters(ctx)
    after = tuple(s.name for s in plan.steps if s.name.startswith(WAIT_FOR))
    moves = [publish_step(ctx, r, f"endpoints:{r}", ctx.target,
                          f"point the applications in {r}'s cluster at {ctx.target}",
                          best_effort=not planned and r == ctx.source, after=after) for r in regions]
    names = [p.name for p in plan.phases]
    plan.phases.insert(names.index("dns") + 1, Phase("endpoints", moves))
    restarts = [restart_step(ctx, r, ctx.target, best_effort=not planned and r == ctx.source,
                             after=(f"endpoints:{r}",)) for r in regions if _listed(ctx, r)]
    if restarts:
        plan.phases.insert(names.index("dns") + 2, Phase(RESTART, restarts))
    if planned:
        current = [publish_step(ctx, r, f"endpoints-current:{r}", ctx.source,
                                f"make sure the applications in {r}'s cluster use the current writer, {ctx.source}, "
                                "until the switch", settled=lambda: _switch_under_way(ctx)) for r in regions]
        next(p for p in plan.phases if p.name == "rebuild").steps.extend(current)
    plan.gates.extend(endpoint_gates(ctx, planned))
    return plan
