"""Manual snapshot of a cache (Redis), exported to the DR region, and proven by a restore.

    python -m runbooks.cache_backup --outputs FILE --cache NAME [--no-export] [--no-verify] [--tag K=V]
                                    [--dry-run] [--yes]

Steps: snapshot in the cache's region (key count and digest recorded with it) → export into the
other region (ElastiCache: CopySnapshot to the snapshot region's export bucket, then a copy into
the DR region's bucket: an export bucket must be in the snapshot's region) → restore the exported
copy into a temporary NEW cache in the DR region, compare its keys and digest with the snapshot's,
delete it. The temporary cache is deleted also after a failure or an interrupt (``finish``).
Exit 1 when the restore does not hold exactly the snapshot's keys.

ElastiCache makes automatic snapshots once a day only (its snapshot window); the planning
documents' hourly snapshots are this runbook on an hourly schedule (docs/backups.md)."""

from __future__ import annotations

import sys

from runbooks.backups import cli as backup_cli
from runbooks.backups.cache import restore_step, snapshot_id
from runbooks.backups.ports import MANAGED_TAG, MANAGED_VALUE
from runbooks.core import metrics as prom
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--cache", required=True, help="the cache to snapshot")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra tag (repeatable)")
    p.add_argument("--no-export", action="store_true", help="do not export to the DR region (and do not verify)")
    p.add_argument("--no-verify", action="store_true", help="do not prove the export by a restore")


def plan(ctx) -> Plan:
    a = ctx.args
    if ctx.ports.caches is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no cache port yet; nothing was done")
    known = ctx.ports.caches.caches()
    if a.cache not in known:
        raise BadInput(f"--cache {a.cache}: no such cache; known: {', '.join(sorted(known)) or 'none'}")
    tags = {MANAGED_TAG: MANAGED_VALUE, "regionpair:run-id": ctx.run_id}
    for t in a.tag:
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise BadInput(f"--tag {t!r}: give KEY=VALUE")
        tags[k] = v
    region = known[a.cache]
    dr = next((r for r in ctx.outputs.regions if r != region), None)
    sid = snapshot_id(a.cache, ctx.run_id)
    res = ctx.results.setdefault(a.cache, {"snapshot": sid, "region": region})
    steps = [_snapshot_step(ctx, a.cache, region, sid, tags, res)]
    if not a.no_export and dr is not None:
        steps.append(_export_step(ctx, a.cache, region, dr, sid, res))
        if not a.no_verify:
            res["temporary"] = f"verify-{a.cache}-{sid.rsplit('-', 1)[-1]}"[:40]
            steps.append(restore_step(ctx, a.cache, dr, sid, res["temporary"], res, keep=False))
    return Plan("cache_backup", [Phase("cache", steps)])


def _snapshot_step(ctx, cache, region, sid, tags, res) -> Step:
    def check() -> Check:
        s = ctx.ports.caches.snapshot_info(region, sid)
        return Check.done(f"snapshot {sid} in {region} ({s['keys']} keys)") if s else \
            Check.todo(f"no snapshot {sid} of {cache} in {region} yet")

    def apply() -> str:
        s = ctx.ports.caches.snapshot(cache, sid, tags)
        res.update(keys=s["keys"], taken_at=s["taken_at"])
        labels = {"cache": cache, "region": region}
        ctx.samples += [Sample(prom.CACHE_SNAPSHOT_AT, s["taken_at"], {**labels, "kind": "manual"},
                               prom.HELP[prom.CACHE_SNAPSHOT_AT], "Seconds"),
                        Sample(prom.CACHE_SNAPSHOT_KEYS, s["keys"], labels, prom.HELP[prom.CACHE_SNAPSHOT_KEYS], "Count")]
        ctx.audit_action("cache-snapshot", f"{region}/{sid}", "ok", f"{s['keys']} keys of {cache}")
        return f"snapshot {sid} of {cache} in {region}: {s['keys']} keys, digest {s['digest'][:12]}…"

    return Step(f"snapshot:{cache}", f"take manual snapshot {sid} of {cache}", f"{region}/{cache}", check, apply,
                lane=cache)


def _export_step(ctx, cache, region, dr, sid, res) -> Step:
    def check() -> Check:
        return Check.done(f"{sid} is held in {dr}") if ctx.ports.caches.snapshot_info(dr, sid) else \
            Check.todo(f"export {sid} to {dr}")

    def apply() -> str:
        s = ctx.ports.caches.export(region, sid, dr)
        res["exported"] = dr
        ctx.samples.append(Sample(prom.CACHE_SNAPSHOT_AT, s.get("exported_at") or ctx.clock.time(),
                                  {"cache": cache, "region": dr, "kind": "export"}, prom.HELP[prom.CACHE_SNAPSHOT_AT],
                                  "Seconds"))
        ctx.audit_action("cache-export", f"{dr}/{sid}", "ok", f"from {region}")
        return f"{sid} exported from {region} to {dr}"

    return Step(f"export:{cache}", f"export {sid} to {dr}", f"{dr}/{cache}", check, apply, lane=cache)


def finish(ctx) -> list[str]:
    res = ctx.results.get(ctx.args.cache, {})
    name = res.get("temporary")
    if not name or ctx.ports.caches is None or ctx.ports.caches.instance(name) is None:
        return []
    said = ctx.ports.caches.drop(name)
    ctx.audit_action("cache-teardown", name, "ok", said)
    return [f"temporary cache {name}: {said}"]


def summarize(ctx) -> dict:
    r = ctx.results.get(ctx.args.cache, {})
    passed = r.get("verified", True) is not False
    reasons = [f"VERIFICATION FAILED: {r['reason']}"] if not passed else []
    what = f"snapshot {r.get('snapshot')} of {ctx.args.cache} ({r.get('keys')} keys)"
    if r.get("exported"):
        what += f", exported to {r['exported']}"
    if r.get("verified"):
        what += f", restored in {r['restore_seconds']:.2f} s with exactly its keys"
    return {"passed": passed, "summary": what, "reasons": reasons, "snapshot": r.get("snapshot"),
            "keys": r.get("keys"), "verified": r.get("verified"), "restore_seconds": r.get("restore_seconds")}


RUNBOOK = backup_cli.BackupRunbook(
    name="cache_backup", description="Manual snapshot of a cache, exported to DR and proven by a restore.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, finish=finish, per_database=False,
    resume_by_default=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
