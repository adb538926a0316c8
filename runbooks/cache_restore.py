"""Restore a cache snapshot into a NEW cache and verify it holds exactly the snapshot's keys.

    python -m runbooks.cache_restore --outputs FILE --cache NAME --snapshot ID --name NEW
                                     [--region R] [--dry-run] [--yes]

``--region``: where the snapshot is held (default: the DR region, where cache_backup exports to).
The new cache is kept (its endpoint is in the result); a restore whose keys differ from the
snapshot's is exit 1. Bad input (no such snapshot there, a name already in use) changes nothing."""

from __future__ import annotations

import sys

from runbooks.backups import cli as backup_cli
from runbooks.backups.cache import restore_step
from runbooks.core.engine import Phase, Plan
from runbooks.core.errors import BadInput


def add_arguments(p) -> None:
    p.add_argument("--cache", required=True, help="the cache the snapshot was taken of")
    p.add_argument("--snapshot", required=True, help="the snapshot id (cache_backup's result)")
    p.add_argument("--name", required=True, help="the new cache's name")
    p.add_argument("--region", help="where the snapshot is held (default: the DR region)")


def plan(ctx) -> Plan:
    a = ctx.args
    control = ctx.ports.caches
    if control is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no cache port yet; nothing was done")
    region = a.region or ctx.outputs.secondary.name
    if region not in ctx.outputs.regions:
        raise BadInput(f"--region {region}: not in the outputs; known: {', '.join(ctx.outputs.regions)}")
    snap = control.snapshot_info(region, a.snapshot)
    if snap is None or snap.get("cache") != a.cache:
        held = [s["id"] for s in control.snapshots(region) if s.get("cache") == a.cache]
        raise BadInput(f"--snapshot {a.snapshot}: no snapshot of {a.cache} with that id in {region}; held there: "
                       f"{', '.join(held) or 'none'}; nothing was restored")
    existing = control.instance(a.name)
    if existing is not None and existing.get("restored_from") != f"{region}/{a.snapshot}":
        raise BadInput(f"--name {a.name}: a cache of that name exists already "
                       f"({existing.get('restored_from') or 'not a restore'}); choose another; nothing was restored")
    res = ctx.results.setdefault(a.cache, {"snapshot": a.snapshot, "region": region})
    return Plan("cache_restore", [Phase("cache", [restore_step(ctx, a.cache, region, a.snapshot, a.name, res,
                                                               keep=True)])])


def summarize(ctx) -> dict:
    r = ctx.results.get(ctx.args.cache, {})
    passed = r.get("verified", True) is not False
    return {"passed": passed, "summary": f"{ctx.args.name} restored from {r.get('region')}/{r.get('snapshot')}"
            + (f": {r.get('restored_keys')} keys, equal to the snapshot" if passed else ""),
            "reasons": [] if passed else [f"VERIFICATION FAILED: {r.get('reason')}"], "endpoint": r.get("endpoint"),
            "restore_seconds": r.get("restore_seconds"), "keys": r.get("restored_keys")}


RUNBOOK = backup_cli.BackupRunbook(
    name="cache_restore", description="Restore a cache snapshot into a new cache and verify its keys.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, per_database=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
