"""Manual snapshot of each database, copied to the DR region with the DR key and tags; optionally
enforce the retention of manual snapshots.

    python -m runbooks.snapshot --outputs FILE [--database NAME] [--tag KEY=VALUE]
                                [--enforce-retention [--retention-days D] [--keep-newest N]] [--dry-run] [--yes]

Per database: snapshot in the primary region (wait until available) → copy to the DR region
encrypted with the DR region's key, tags copied (wait until available) → with
``--enforce-retention``, delete in both regions the manual snapshots this runbook made that are
older than D days, never the newest N of a region, and say which. Snapshots made by anyone else
(no ``regionpair:managed-by`` tag) are never deleted. A rerun continues the same snapshot."""

from __future__ import annotations

import sys
from typing import Callable

from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import MANAGED_TAG, MANAGED_VALUE, Snapshot, is_compliance
from runbooks.core import metrics as prom
from runbooks.core.clock import iso, wait_until
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, StepFailed
from runbooks.core.metrics import Sample

DEFAULT_RETENTION_DAYS = 90
"""The manual tier (planning document 001; runbooks/retention.py)."""
DEFAULT_KEEP_NEWEST = 3


def add_arguments(p) -> None:
    p.add_argument("--source-region", help="region to snapshot (default: the primary region)")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra tag (repeatable)")
    p.add_argument("--no-copy", action="store_true", help="do not copy to the DR region")
    p.add_argument("--enforce-retention", action="store_true",
                   help="delete this runbook's manual snapshots older than the retention (never the newest N)")
    p.add_argument("--retention-days", type=float, default=None,
                   help="retention of manual snapshots in days (default: the outputs' backup_policy, "
                        f"else {DEFAULT_RETENTION_DAYS})")
    p.add_argument("--keep-newest", type=int, default=None,
                   help="never delete the newest N manual snapshots of a region (default: the outputs' "
                        f"backup_policy, else {DEFAULT_KEEP_NEWEST})")
    p.add_argument("--timeout", type=float, default=4 * 3600.0,
                   help="seconds to wait for a snapshot or a copy to become available (default 4 h)")


def snapshot_id(database: str, run_id: str) -> str:
    """RDS snapshot ids: a letter first, letters, digits and single hyphens. Derived from the run id,
    so a resumed run finds the snapshot it started."""
    stamp = run_id.split("-", 1)[1] if "-" in run_id else run_id
    return f"regionpair-{database}-{stamp}".lower().replace("_", "-").replace("--", "-")


def _find(ctx, region: str, database: str, sid: str) -> Snapshot | None:
    return next((s for s in ctx.ports.backups.snapshots(region, database) if s.id == sid), None)


def _wait_available(ctx, region: str, database: str, sid: str) -> Snapshot:
    def ready():
        s = _find(ctx, region, database, sid)
        if s is not None and s.status in ("failed", "error", "incompatible-restore"):
            raise StepFailed(f"snapshot {sid} in {region} is {s.status}")
        return s if s is not None and s.status == "available" else None
    return wait_until(ready, what=f"snapshot {sid} in {region} to be available", timeout=ctx.args.timeout,
                      clock=ctx.clock, interval=0.5, max_interval=30.0)


def retention_candidates(snapshots: list[Snapshot], now: float, days: float, keep: int) -> list[Snapshot]:
    """Managed manual snapshots older than ``days``, except the newest ``keep`` managed ones; never one
    of the compliance tier (runbooks/retention.py)."""
    managed = sorted([s for s in snapshots if s.kind == "manual" and s.tags.get(MANAGED_TAG) == MANAGED_VALUE
                      and s.created_at is not None and not is_compliance(s)], key=lambda s: s.created_at)
    protected = {s.id for s in managed[-keep:]} if keep > 0 else set()
    return [s for s in managed if s.id not in protected and now - s.created_at > days * 86400]


def plan(ctx) -> Plan:
    a = ctx.args
    src = a.source_region or ctx.outputs.primary.name
    if src not in ctx.outputs.regions:
        raise BadInput(f"--source-region {src}: not in the outputs; known: {', '.join(ctx.outputs.regions)}")
    dst = next((r for r in ctx.outputs.regions if r != src), None)
    tags = {MANAGED_TAG: MANAGED_VALUE, "regionpair:run-id": ctx.run_id}
    for t in a.tag:
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise BadInput(f"--tag {t!r}: give KEY=VALUE")
        tags[k] = v
    policy = ctx.outputs.backup_policy  # the stacks' config, when they export it
    days = a.retention_days if a.retention_days is not None else \
        (policy.snapshot_retention_days if policy else DEFAULT_RETENTION_DAYS)
    keep = a.keep_newest if a.keep_newest is not None else \
        (policy.snapshot_keep_newest if policy else DEFAULT_KEEP_NEWEST)
    if days <= 0 or keep < 1:
        raise BadInput(f"--retention-days {days} / --keep-newest {keep}: retention must be more than 0 days and at "
                       "least the newest snapshot is always kept (--keep-newest 1 or more)")
    steps: list[Step] = []
    for db in ctx.databases:
        sid = snapshot_id(db, ctx.run_id)
        res = ctx.results.setdefault(db, {"snapshot": sid})
        steps.append(_snapshot_step(ctx, src, db, sid, tags, res))
        if not a.no_copy and dst is not None:
            steps.append(_copy_step(ctx, src, dst, db, sid, tags, res))
        if a.enforce_retention:
            steps.append(_retention_step(ctx, [src] + ([dst] if dst else []), db, days, keep, res))
    ctx.results["_retention"] = {"days": days, "keep_newest": keep}
    return Plan("snapshot", [Phase("snapshot", steps)])


def _available_check(ctx, region, db, sid, what: str) -> Callable[[], Check]:
    """Done once ``sid`` is available in ``region`` (``what``: "snapshot" or "copy")."""
    def check() -> Check:
        s = _find(ctx, region, db, sid)
        if s is None:
            return Check.todo(f"no {what} {sid} in {region} yet")
        if s.status == "available":
            return Check.done(f"{what} {sid} in {region} is available")
        return Check.todo(f"{what} {sid} in {region} is {s.status}")
    return check


def _snapshot_step(ctx, region, db, sid, tags, res) -> Step:
    check = _available_check(ctx, region, db, sid, "snapshot")

    def apply() -> str:
        ctx.ports.backups.create_snapshot(region, db, sid, tags)
        s = _wait_available(ctx, region, db, sid)
        res["snapshot_at"] = s.created_at
        ctx.samples.append(Sample(prom.LAST_BACKUP, s.created_at or ctx.clock.time(),
                                  {"database": db, "region": region, "kind": "manual"}, prom.HELP[prom.LAST_BACKUP]))
        if s.size_bytes is not None:
            ctx.samples.append(prom.sample(prom.BACKUP_SIZE, s.size_bytes,
                                           {"database": db, "region": region, "kind": "manual"}, "Bytes"))
        return f"snapshot {sid} of {db} in {region} is available (taken {iso(s.created_at)})"

    return Step(f"snapshot:{db}", f"take manual snapshot {sid} of {region}/{db}", f"{region}/{db}", check, apply,
                lane=db)


def _copy_step(ctx, src, dst, db, sid, tags, res) -> Step:
    key = ctx.outputs.regions[dst].kms_key_arn
    check = _available_check(ctx, dst, db, sid, "copy")

    def apply() -> str:
        source = _find(ctx, src, db, sid)
        if source is None or source.status != "available":
            raise StepFailed(f"snapshot {sid} in {src} is not available to copy")
        ctx.ports.backups.copy_snapshot(source, dst, tags)
        s = _wait_available(ctx, dst, db, sid)
        res["copy_at"] = ctx.clock.time()
        ctx.samples.append(Sample(prom.LAST_BACKUP, s.created_at or ctx.clock.time(),
                                  {"database": db, "region": dst, "kind": "manual-copy"}, prom.HELP[prom.LAST_BACKUP]))
        if s.size_bytes is not None:
            ctx.samples.append(prom.sample(prom.BACKUP_SIZE, s.size_bytes,
                                           {"database": db, "region": dst, "kind": "manual-copy"}, "Bytes"))
        return (f"copied {sid} to {dst}" + (f" encrypted with {key}" if key else " (no KMS key on this target)")
                + f", tags copied ({', '.join(sorted(tags))})")

    return Step(f"copy:{db}", f"copy {sid} to {dst} with {dst}'s key and the tags", f"{dst}/{db}", check, apply,
                lane=db)


def _retention_step(ctx, regions, db, days, keep, res) -> Step:
    def candidates() -> list[Snapshot]:
        now = ctx.clock.time()
        return [s for r in regions for s in retention_candidates(ctx.ports.backups.snapshots(r, db), now, days, keep)]

    def check() -> Check:
        c = candidates()
        if not c:
            return Check.done(f"no managed snapshot of {db} older than {days:g} days beyond the newest {keep}")
        return Check.todo(f"{len(c)} to delete: {', '.join(f'{s.region}/{s.id}' for s in c)}")

    def apply() -> str:
        deleted = []
        for s in candidates():
            ctx.ports.backups.delete_snapshot(s)
            ctx.audit_action("delete-snapshot", f"{s.region}/{s.id}", "ok",
                             f"older than {days:g} days (taken {iso(s.created_at)}), retention of {db}")
            deleted.append(f"{s.region}/{s.id} (taken {iso(s.created_at)})")
        res["deleted"] = deleted
        return f"deleted {len(deleted)} snapshot(s): {', '.join(deleted)}" if deleted else "nothing to delete"

    return Step(f"retention:{db}", f"delete managed manual snapshots of {db} older than {days:g} days, "
                f"keeping the newest {keep} per region", db, check, apply, lane=db)


def summarize(ctx) -> dict:
    details, deleted = [], []
    for db in ctx.databases:
        r = ctx.results.get(db, {})
        details.append(f"{db}: snapshot {r.get('snapshot')}" + (" copied to DR" if r.get("copy_at") else ""))
        deleted += r.get("deleted", [])
    if ctx.args.enforce_retention:
        details.append("retention deleted: " + (", ".join(deleted) if deleted else "nothing"))
    return {"passed": True, "summary": f"{len(ctx.databases)} snapshot(s) taken"
            + ("" if ctx.args.no_copy else " and copied") + (f", {len(deleted)} deleted by retention"
                                                             if ctx.args.enforce_retention else ""),
            "details": details, "deleted": deleted,
            "snapshots": {db: ctx.results.get(db, {}).get("snapshot") for db in ctx.databases}}


RUNBOOK = backup_cli.BackupRunbook(
    name="snapshot", description="Manual snapshot, copied to the DR region; optional retention.",
    add_arguments=add_arguments, plan=plan, summarize=summarize)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
