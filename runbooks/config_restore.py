"""Restore a day's Kubernetes configuration export (ConfigMaps; Secrets only with consent) into a
cluster, then restart what reads it and wait for those rollouts.

    python -m runbooks.config_restore --outputs FILE --day YYYY-MM-DD [--region primary|dr|REGION]
        [--namespace NS ...] [--target-namespace NS] [--context CONTEXT] [--include-secrets]
        [--timeout SECONDS] [--dry-run] [--yes]

The export is the one the stacks' CronJob writes to ``--region``'s backups bucket (the newest run of
that day: runbooks/backups/k8s_config_export.py). The cluster is that region's (its ``kubernetes.context`` in the
outputs) unless ``--context`` names another one of the operator's kubeconfig; ``--target-namespace``
restores one namespace's objects into another.

- ``--dry-run`` shows, per object, create / change / left as is, by key NAMES (never a value, of a
  Secret or of anything else), and which workloads would be restarted; it changes nothing.
- Each object is applied server-side as ``regionpair-config-restore`` with the export's keys,
  labels and annotations; keys the live object has and the export has not are kept (and listed).
  The active-endpoints ConfigMap is never restored: the failover runbooks own it.
- Secrets are restored only with ``--include-secrets``; without it the run restores the ConfigMaps
  and says how many Secrets it left. Their values are never printed, journaled, audited or reported.
- Then every Deployment, StatefulSet and DaemonSet of the namespace whose pods read a restored
  object (env, envFrom, volume, projected volume) is restarted as ``kubectl rollout restart`` does,
  and the run waits for each rollout until ``--timeout`` (a deadline on the injected clock).
- Bad input changes nothing: no export that day (the nearest days are listed), a namespace the
  export does not hold or the cluster lacks, an object that cannot be restored in place.
- A rerun continues an unfinished run from its journal: applied objects are checked equal and
  skipped, the restarts it planned are still made (the journal holds what it restored), once.
"""

from __future__ import annotations

import dataclasses
import sys

from contract import active_endpoints as contract
from runbooks.backups import cli as backup_cli, k8s_config_export as kc
from runbooks.backups.restored import resolve_region
from runbooks.core import metrics as prom
from runbooks.core.clock import iso, wait_until
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, StepFailed
from runbooks.core.metrics import Sample

RESTORING = "config-restoring"
"""Journal event written before an object is applied: a resumed run restarts its readers too."""


def add_arguments(p) -> None:
    p.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="the day (UTC) whose export to restore")
    p.add_argument("--region", default="primary",
                   help="whose cluster's export: primary (default), dr, or a region name (its backups bucket)")
    p.add_argument("--namespace", action="append", default=[], metavar="NS",
                   help="restore this namespace of the export (repeatable; default: every namespace it holds)")
    p.add_argument("--target-namespace", metavar="NS", help="restore the one --namespace into this namespace instead")
    p.add_argument("--context", help="kubeconfig context of the cluster to restore into (default: the region's, "
                                     "from the outputs)")
    p.add_argument("--include-secrets", action="store_true",
                   help="also restore the export's Secrets (consent: their values are written, never shown)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds to wait for each restarted workload's rollout (default 600)")


def _cluster(context: str, region: str):
    from runbooks.adapters.kubectl_config import KubectlConfig
    return KubectlConfig(context, region=region)


def plan(ctx) -> Plan:
    a = ctx.args
    store = ctx.ports.config_exports
    if store is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no Kubernetes configuration exports (the sandbox's "
                       "clusters are a stand-in without the export CronJob: docs/kubernetes.md); nothing was changed")
    region = resolve_region(ctx, a.region)
    try:
        day = kc.day_of(a.day)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    k = ctx.outputs.regions[region].kubernetes
    context = a.context or (k.context if k is not None else None)
    if not context:
        raise BadInput(f"stack outputs: {region} declares no cluster (regions.{region}.kubernetes); name the cluster "
                       "to restore into with --context")
    stamps = store.stamps(region)
    stamp = kc.pick(stamps, day)
    if stamp is None:
        near = kc.nearest_days(stamps, day)
        raise BadInput(f"--day {day}: {region}'s cluster has no configuration export of that day; "
                       + (f"the nearest days with one: {', '.join(near)}" if near else "it has none at all")
                       + "; nothing was changed")
    try:
        export = store.load(region, stamp)
    except kc.ExportDamaged as exc:
        raise StepFailed(f"{exc}; nothing was changed") from None
    namespaces = list(dict.fromkeys(a.namespace)) or export.namespaces
    unknown = [ns for ns in namespaces if ns not in export.namespaces]
    if unknown:
        raise BadInput(f"--namespace {', '.join(unknown)}: not in the export of {stamp} ({export.location}); it holds "
                       f"{', '.join(export.namespaces) or 'no namespace'}; nothing was changed")
    if a.target_namespace and len(namespaces) != 1:
        raise BadInput("--target-namespace takes exactly one --namespace (whose objects go there); nothing was changed")
    cluster = _cluster(context, region)
    targets = {ns: a.target_namespace or ns for ns in namespaces}
    missing = [t for t in dict.fromkeys(targets.values()) if not cluster.namespace_exists(t)]
    if missing:
        raise BadInput(f"namespace(s) {', '.join(missing)} do not exist in context {context}: create them first "
                       "(with what else they need: quotas, service accounts) or pick --target-namespace; "
                       "nothing was changed")

    res = ctx.results.setdefault("config", {"region": region, "stamp": stamp, "location": export.location,
                                            "context": context, "changes": [], "skipped": [], "restarts": []})
    held = {ns: len(export.secrets.get(ns, ())) for ns in namespaces}
    if sum(held.values()) and not a.include_secrets:
        res["secrets_left"] = (f"the export holds {sum(held.values())} Secret(s) in "
                               f"{', '.join(ns for ns, n in held.items() if n)}: NOT restored, only ConfigMaps are; "
                               "pass --include-secrets to restore them too (their values are never shown)")
        ctx.notes.append(res["secrets_left"])
    recorded = {(e["namespace"], e["kind"], e["name"]) for e in ctx.recorded(RESTORING)}
    phases_apply: list[Step] = []
    phases_restart: list[Step] = []
    phases_wait: list[Step] = []
    blocked = []
    for ns, target in targets.items():
        kinds = ["ConfigMap"] + (["Secret"] if a.include_secrets else [])
        wanted = []
        for kind in kinds:
            live = cluster.objects(kind, target)
            for obj in (export.configmaps if kind == "ConfigMap" else export.secrets).get(ns, ()):
                obj = dataclasses.replace(obj, namespace=target)
                why = kc.skipped(obj)
                if why:
                    res["skipped"].append(why)
                    continue
                change = kc.diff(obj, live.get(obj.name))
                res["changes"].append(change.sentence())
                if change.action == "blocked":
                    blocked.append(change.sentence())
                wanted.append(change)
        restored = {(c.obj.kind, c.obj.name) for c in wanted if c.action in ("create", "change")}
        restored |= {(kind, name) for rns, kind, name in recorded if rns == target}
        for c in wanted:
            phases_apply.append(_apply_step(ctx, cluster, c.obj))
        for reader in kc.readers(cluster.workloads(target), target, restored):
            res["restarts"].append(f"{reader.ref} reads {', '.join(reader.reads)}")
            phases_restart.append(_restart_step(ctx, cluster, reader))
            phases_wait.append(_rollout_step(ctx, cluster, reader, a.timeout))
    if blocked and not a.dry_run:
        raise BadInput("cannot restore in place: " + "; ".join(blocked) + "; nothing was changed")
    ctx.results["_dry"] = {"export": f"{export.location} ({region}'s cluster, {stamp}) into context {context}",
                           "diff": res["changes"] or ["(no object to restore)"],
                           "restart": res["restarts"] or ["(nothing reads a changed object)"],
                           **({"left": res["skipped"]} if res["skipped"] else {}),
                           **({"secrets": res["secrets_left"]} if res.get("secrets_left") else {})}
    return Plan("config_restore", [Phase("apply", phases_apply), Phase("restart", phases_restart),
                                   Phase("rollout", phases_wait)])


def _apply_step(ctx, cluster, obj: kc.Obj) -> Step:
    def live():
        return cluster.objects(obj.kind, obj.namespace).get(obj.name)

    def check() -> Check:
        change = kc.diff(obj, live())
        if change.action == "as is":
            return Check.done(change.sentence())
        if change.action == "blocked":
            return Check.blocked(change.sentence())
        return Check.todo(change.sentence())

    def apply() -> str:
        change = kc.diff(obj, live())
        ctx.record(RESTORING, namespace=obj.namespace, kind=obj.kind, name=obj.name)  # names only
        cluster.apply(obj, obj.namespace)
        return change.sentence(done=True)

    def verify() -> str:
        change = kc.diff(obj, live())
        if change.action != "as is":
            raise StepFailed(f"{obj.ref} still differs from the export after the apply: {change.sentence()}")
        return f"{obj.ref} equals the export"

    return Step(f"apply:{obj.kind.lower()}/{obj.namespace}/{obj.name}", f"restore {obj.ref} from the export",
                obj.ref, check, apply, verify, lane=obj.namespace)


def _restart_step(ctx, cluster, reader: kc.Reader) -> Step:
    def check() -> Check:
        w = cluster.workload(reader.kind, reader.namespace, reader.name)
        if w is None:
            return Check.done(f"{reader.ref} no longer exists; nothing to restart")
        if w["annotations"].get(contract.RESTARTED_FOR) == ctx.run_id:
            return Check.done(f"{reader.ref} was restarted by this run")
        return Check.todo(f"{reader.ref} reads {', '.join(reader.reads)}")

    def apply() -> str:
        said = cluster.restart(reader.kind, reader.namespace, reader.name, ctx.run_id, iso(ctx.clock.time()))
        ctx.results["config"].setdefault("_restarted", {})[reader.ref] = ctx.clock.monotonic()
        return said

    return Step(f"restart:{reader.kind}/{reader.namespace}/{reader.name}",
                f"restart {reader.ref} (kubectl rollout restart): it reads {', '.join(reader.reads)}",
                reader.ref, check, apply, lane=reader.namespace)


def _rollout_step(ctx, cluster, reader: kc.Reader, timeout: float) -> Step:
    def state():
        w = cluster.workload(reader.kind, reader.namespace, reader.name)
        if w is None:
            return True, "no longer exists"
        if w["annotations"].get(contract.RESTARTED_FOR) != ctx.run_id:
            return False, "not restarted by this run yet"
        return kc.rollout(reader.kind, w)

    def measured(start: float) -> float:
        """Seconds from this run's restart of the workload (when this process made it) to now: a real
        controller can finish before the wait step first looks, and that rollout has a duration too."""
        seconds = ctx.clock.monotonic() - ctx.results["config"].get("_restarted", {}).get(reader.ref, start)
        ctx.results["config"].setdefault("rollout_seconds", {}).setdefault(reader.ref, seconds)
        return seconds

    def check() -> Check:
        done, words = state()
        if done and reader.ref in ctx.results["config"].get("_restarted", {}):
            measured(ctx.clock.monotonic())
        return Check.done(f"{reader.ref}: rolled out ({words})") if done else Check.todo(f"{reader.ref}: {words}")

    def apply() -> str:
        start = ctx.clock.monotonic()
        wait_until(lambda: state()[0], what=f"the rollout of {reader.ref}", timeout=timeout, clock=ctx.clock,
                   interval=0.5, max_interval=5.0)
        seconds = measured(start)
        return f"{reader.ref} rolled out in {seconds:.1f} s ({state()[1]})"

    return Step(f"rollout:{reader.kind}/{reader.namespace}/{reader.name}",
                f"wait up to {timeout:g} s for the rollout of {reader.ref}", reader.ref, check, apply,
                lane=reader.namespace)


def summarize(ctx) -> dict:
    r = ctx.results.get("config") or {}
    restored = sorted({f"{e['kind'].lower()} {e['namespace']}/{e['name']}" for e in ctx.recorded(RESTORING)})
    restarted = r.get("restarts", [])
    history = list(ctx.journal.step_history().values()) if ctx.journal else []
    starts, ends = [s["start"] for s in history if s.get("start")], [s["end"] for s in history if s.get("end")]
    if restored and starts and ends:
        ctx.samples.append(Sample(prom.CONFIG_RESTORE_SECONDS, max(ends) - min(starts), {"region": r.get("region", "")},
                                  prom.HELP[prom.CONFIG_RESTORE_SECONDS], "Seconds"))
    if not restored and not restarted:
        summary = (f"nothing to do: context {r.get('context')} already holds the export {r.get('stamp')} of "
                   f"{r.get('region')}'s cluster; nothing was changed")
    else:
        summary = (f"{len(restored)} object(s) restored from {r.get('location')} into context {r.get('context')}, "
                   f"{len(restarted)} workload(s) restarted and rolled out")
    return {"passed": True, "summary": summary, "export": r.get("location"), "stamp": r.get("stamp"),
            "restored": restored, "restarted": restarted,
            "details": r.get("changes", []) + [f"restart: {x}" for x in restarted] + r.get("skipped", [])
            + ([r["secrets_left"]] if r.get("secrets_left") else []),
            "rollout_seconds": r.get("rollout_seconds", {})}


RUNBOOK = backup_cli.BackupRunbook(
    name="config_restore", description="Restore a day's Kubernetes configuration export into a cluster.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, per_database=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
