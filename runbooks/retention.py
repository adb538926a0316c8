"""Retention tiers of the database backups (planning document 001, "Data Retention Policy"), enforced
in both regions.

    python -m runbooks.retention --outputs FILE [--database NAME] [--tier automated|manual ...]
                                 [--automated-days 30] [--manual-days 90] [--keep-newest 3]
                                 [--archive] [--dry-run] [--yes]

Every backup of a database held in a region is put in one tier and decided on:

- ``automated`` (30 days): the daily backups. RDS deletes its own automated backups after the
  instance's ``BackupRetentionPeriod`` (at most 35 days), so on AWS the runbook deletes none and
  reports the period RDS holds in each region next to the tier's (a drift is a finding); on the
  sandbox it deletes those older than the period, never the newest (the start of the restorable window).
- ``manual`` (90 days): the snapshot runbook's own snapshots (``regionpair:managed-by`` tag) older
  than the period, never the newest N of a region.
- ``compliance`` (7 years): snapshots tagged ``regionpair:retention-tier=compliance`` and the archive
  they are exported to. **Never deleted** by this or any runbook: ``--tier compliance`` is refused
  (exit 2, nothing changed), and every delete path refuses a compliance backup (exit 3) even when
  asked to delete one; their archive's Object Lock and lifecycle end them (docs/backups.md).
- anything else (made by hand, by AWS Backup, without the managed tag) is kept and said so.

``--archive`` first puts the newest compliance snapshot of each region into that region's compliance
archive (AWS: ``StartExportTask`` into the archive bucket the stacks declare; it runs for hours, a rerun
reports its status), unless it is there already. The archive has no delete in any port.

The plan (and ``--dry-run``) lists each backup with its tier, its age and the decision with its
reason; a run writes the journal, an audit entry per deletion, and the retention metrics."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import (
    COMPLIANCE,
    MANAGED_TAG,
    MANAGED_VALUE,
    TIER_TAG,
    Snapshot,
    is_compliance,
    refuse_compliance,
)
from runbooks.core import metrics as prom
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput

DAY = 86400.0
AUTOMATED_DAYS = 30
"""Planning document 001: automated backups 30 days."""
MANUAL_DAYS = 90
"""Planning document 001: manual snapshots 90 days."""
COMPLIANCE_DAYS = 2557
"""Planning document 001: compliance 7 years (7 × 365 + 2 leap days)."""
KEEP_NEWEST = 3
RDS_MAX_AUTOMATED_DAYS = 35
"""RDS User Guide, "Backup retention period": 0 to 35 days for a DB instance."""
TIERS = ("automated", "manual")
"""The tiers this runbook deletes from (``--tier``); compliance is not one of them."""


@dataclass(frozen=True)
class Policy:
    automated_days: float
    manual_days: float
    keep_newest: int
    compliance_days: float = COMPLIANCE_DAYS


@dataclass(frozen=True)
class Decision:
    snapshot: Snapshot
    tier: str
    """automated, manual, compliance or unmanaged."""
    delete: bool
    why: str

    def line(self, now: float) -> str:
        s = self.snapshot
        age = "" if s.created_at is None else f", {(now - s.created_at) / DAY:.1f} days old"
        return f"{s.region}/{s.id} [{self.tier}{age}]: {'DELETE' if self.delete else 'keep'} — {self.why}"


def tier_of(s: Snapshot) -> str:
    if is_compliance(s):
        return "compliance"
    if s.kind == "automated":
        return "automated"
    if s.kind == "manual" and s.tags.get(MANAGED_TAG) == MANAGED_VALUE:
        return "manual"
    return "unmanaged"


def decide(snapshots: list[Snapshot], now: float, policy: Policy, tiers: tuple[str, ...] = TIERS,
           expires_automated: bool = False) -> list[Decision]:
    """The decision on every backup of one database in one region (``snapshots``: that region's)."""
    out: list[Decision] = []
    by_tier: dict[str, list[Snapshot]] = {}
    for s in snapshots:
        by_tier.setdefault(tier_of(s), []).append(s)
    for tier, group in by_tier.items():
        dated = sorted([s for s in group if s.created_at is not None], key=lambda s: s.created_at or 0.0)
        keep = {"automated": 1, "manual": policy.keep_newest}.get(tier, 0)
        newest = {s.id for s in dated[-keep:]} if keep else set()
        for s in group:
            out.append(_decide_one(s, tier, now, policy, tiers, expires_automated, s.id in newest, keep))
    return sorted(out, key=lambda d: (d.snapshot.created_at or 0.0, d.snapshot.id))


def _decide_one(s: Snapshot, tier: str, now: float, policy: Policy, tiers: tuple[str, ...],
                expires_automated: bool, among_newest: bool, keep: int) -> Decision:
    age = None if s.created_at is None else (now - s.created_at) / DAY
    if tier == "compliance":
        period = policy.compliance_days
        if age is not None and age > period:
            return Decision(s, tier, False, f"past the compliance period of {period:g} days, but the compliance tier "
                                            "is never deleted by a runbook: its archive's lock and lifecycle end it")
        return Decision(s, tier, False, f"compliance tier: kept {period:g} days, never deleted by a runbook")
    if tier == "unmanaged":
        return Decision(s, tier, False, f"not made by the runbooks (no {MANAGED_TAG} tag, kind {s.kind}): never "
                                        "theirs to delete")
    days = policy.automated_days if tier == "automated" else policy.manual_days
    if tier not in tiers:
        return Decision(s, tier, False, f"the {tier} tier is not enforced in this run (--tier)")
    if tier == "automated" and expires_automated:
        return Decision(s, tier, False, "RDS deletes automated backups itself after the instance's backup retention "
                                        "period (checked against the tier below)")
    if s.status != "available":
        return Decision(s, tier, False, f"still {s.status}")
    if age is None:
        return Decision(s, tier, False, "its creation time is unknown")
    if age <= days:
        return Decision(s, tier, False, f"within the {tier} tier's {days:g} days")
    if among_newest:
        what = "the newest automated backup (the start of the restorable window)" if tier == "automated" \
            else f"one of the newest {keep} {tier} snapshots of the region"
        return Decision(s, tier, False, f"past {days:g} days but {what} is always kept")
    return Decision(s, tier, True, f"past the {tier} tier's {days:g} days")


def add_arguments(p) -> None:
    p.add_argument("--tier", action="append", default=[], metavar="TIER",
                   help="enforce only this tier: automated or manual (repeatable; default both). The compliance "
                        "tier is never deleted: asking for it is refused")
    p.add_argument("--automated-days", type=float, default=None,
                   help=f"automated tier's period (default: the outputs' backup_policy, else {AUTOMATED_DAYS})")
    p.add_argument("--manual-days", type=float, default=None,
                   help=f"manual tier's period (default: the outputs' backup_policy, else {MANUAL_DAYS})")
    p.add_argument("--archive", action="store_true",
                   help="first archive the newest compliance snapshot of each region into its compliance archive "
                        "(AWS: an RDS snapshot export into the archive bucket), unless it is there already")
    p.add_argument("--keep-newest", type=int, default=None,
                   help=f"never delete the newest N manual snapshots of a region (default: the outputs' backup_policy, "
                        f"else {KEEP_NEWEST})")


def policy_of(ctx) -> Policy:
    a, bp = ctx.args, ctx.outputs.backup_policy
    automated = a.automated_days if a.automated_days is not None else \
        (bp.automated_retention_days if bp else AUTOMATED_DAYS)
    manual = a.manual_days if a.manual_days is not None else (bp.snapshot_retention_days if bp else MANUAL_DAYS)
    keep = a.keep_newest if a.keep_newest is not None else (bp.snapshot_keep_newest if bp else KEEP_NEWEST)
    compliance = bp.compliance_retention_days if bp else COMPLIANCE_DAYS
    if not 0 < automated <= RDS_MAX_AUTOMATED_DAYS:
        raise BadInput(f"--automated-days {automated:g}: the automated tier is 1 to {RDS_MAX_AUTOMATED_DAYS} days "
                       "(RDS keeps automated backups at most 35 days: RDS User Guide, 'Backup retention period'); "
                       "nothing was changed")
    if manual <= 0:
        raise BadInput(f"--manual-days {manual:g}: the manual tier must keep snapshots more than 0 days; nothing "
                       "was changed")
    if keep < 1:
        raise BadInput(f"--keep-newest {keep}: at least the newest manual snapshot of a region is always kept "
                       "(--keep-newest 1 or more); nothing was changed")
    return Policy(automated, manual, keep, compliance)


def _tiers(ctx) -> tuple[str, ...]:
    asked = tuple(dict.fromkeys(ctx.args.tier)) or TIERS
    if "compliance" in asked:
        raise BadInput("--tier compliance: the compliance tier (7 years, docs/backups.md) is never deleted by a "
                       "runbook, whatever it is told; its archive's Object Lock and lifecycle end it. Nothing was "
                       "changed")
    unknown = [t for t in asked if t not in TIERS]
    if unknown:
        raise BadInput(f"--tier {', '.join(unknown)}: unknown; the tiers a run enforces are {', '.join(TIERS)}. "
                       "Nothing was changed")
    return asked


def plan(ctx) -> Plan:
    policy, tiers = policy_of(ctx), _tiers(ctx)
    regions = list(ctx.outputs.regions)
    backups = ctx.ports.backups
    expires = bool(getattr(backups, "expires_automated", False))
    ctx.results["_policy"] = policy
    dry: list[str] = []
    steps = []
    for db in ctx.databases:
        res = ctx.results.setdefault(db, {"deleted": [], "kept": []})
        now = ctx.clock.time()
        for region in regions:
            dry += [d.line(now) for d in decide(backups.snapshots(region, db), now, policy, tiers, expires)]
            if expires and "automated" in tiers:
                dry.append(_automated_setting(ctx, region, db, policy, res))
        steps.append(_retention_step(ctx, db, regions, policy, tiers, expires, res))
        for region in regions:
            dry += [archive_line(a) for a in _archives(ctx, region, db)]
    if ctx.args.archive:
        targets = {r: backups.archive_target(r) if hasattr(backups, "archive_target") else None for r in regions}
        if not any(targets.values()):
            raise BadInput("--archive: no compliance archive in any region of the outputs (storage.archive); declare "
                           "it (backups.compliance_archive: true in the stack config) and `pulumi up`. Nothing was "
                           "changed")
        steps = [_archive_step(ctx, db, r) for db in ctx.databases for r in regions if targets[r]] + steps
    ctx.results["_dry"] = {"decisions": dry}
    return Plan("retention", [Phase("retention", steps)])


def archive_line(a) -> str:
    return (f"{a.region}/{a.id} [archive of {a.source}, {a.status}]: keep — the compliance archive ({a.location}) "
            "has no delete in any port; its Object Lock and lifecycle end it")


def _archives(ctx, region: str, db: str) -> list:
    port = ctx.ports.backups
    return port.archives(region, db) if hasattr(port, "archives") and port.archive_target(region) else []


def archive_id(snapshot: Snapshot) -> str:
    """RDS export task ids: letters, digits and single hyphens, a letter first; derived from the
    snapshot's id, so a rerun finds the export it started."""
    raw = "".join(c if c.isalnum() else "-" for c in f"archive-{snapshot.id}".lower())
    while "--" in raw:
        raw = raw.replace("--", "-")
    return raw[:60].rstrip("-")


def _archive_step(ctx, db: str, region: str) -> Step:
    def newest() -> Snapshot | None:
        mine = [s for s in ctx.ports.backups.snapshots(region, db) if is_compliance(s) and s.status == "available"
                and s.created_at is not None]
        return max(mine, key=lambda s: s.created_at or 0.0) if mine else None

    def existing(s: Snapshot):
        return next((a for a in ctx.ports.backups.archives(region, db) if a.source == s.id
                     and a.status not in ("failed", "canceled")), None)

    def check() -> Check:
        s = newest()
        if s is None:
            return Check.done(f"no compliance snapshot of {db} in {region} to archive (take one with snapshot "
                              f"--tag {TIER_TAG}={COMPLIANCE})")
        a = existing(s)
        if a is not None:
            return Check.done(f"{region}/{s.id} is in the compliance archive as {a.id} ({a.status})")
        return Check.todo(f"{region}/{s.id} is not in the compliance archive yet")

    def apply() -> str:
        s = newest()
        if s is None:
            return f"no compliance snapshot of {db} in {region}"
        a = ctx.ports.backups.archive(s, archive_id(s))
        ctx.audit_action("archive-backup", f"{region}/{s.id}", "ok", f"into the compliance archive as {a.id} "
                         f"({a.status}, {a.location})")
        ctx.results.setdefault(db, {}).setdefault("archived", []).append(f"{region}/{s.id} → {a.id} ({a.status})")
        return f"archiving {region}/{s.id} as {a.id} ({a.status})"

    return Step(f"archive:{db}:{region}", f"put the newest compliance snapshot of {db} in {region} into the "
                f"region's compliance archive", f"{region}/{db}", check, apply, lane=db)


def _automated_setting(ctx, region: str, db: str, policy: Policy, res: dict) -> str:
    """AWS: the period RDS itself holds automated backups in the region (the instance's, or the
    replicated backups' in DR), compared with the tier's."""
    held = ctx.ports.backups.automated_retention_days(region, db)
    if held is None:
        line = f"{region}/{db} automated backups: no retention period found (no automated backups in {region})"
    elif held == policy.automated_days:
        line = f"{region}/{db} automated backups: RDS keeps them {held} days, as the tier says"
    else:
        line = (f"{region}/{db} automated backups: RDS keeps them {held} days, the tier says "
                f"{policy.automated_days:g}: DRIFT — set backup_retention_days in the stack config and `pulumi up`")
        res.setdefault("drift", []).append(line)
    return line


def _retention_step(ctx, db: str, regions: list[str], policy: Policy, tiers, expires: bool, res: dict) -> Step:
    def decisions() -> list[Decision]:
        now = ctx.clock.time()
        return [d for r in regions for d in decide(ctx.ports.backups.snapshots(r, db), now, policy, tiers, expires)]

    def check() -> Check:
        doomed = [d for d in decisions() if d.delete]
        if not doomed:
            return Check.done(f"nothing of {db} is past its tier's period")
        return Check.todo(f"{len(doomed)} to delete: {', '.join(f'{d.snapshot.region}/{d.snapshot.id}' for d in doomed)}")

    def apply() -> str:
        now = ctx.clock.time()
        found = decisions()
        for d in found:
            if d.delete:
                delete(ctx, d)
                res["deleted"].append(d.line(now))
        _report(ctx, db, regions, found, now, res)
        n = sum(d.delete for d in found)
        return f"deleted {n} backup(s) of {db}, kept {len(found) - n}"

    return Step(f"retention:{db}", f"delete the backups of {db} past their tier's period in "
                f"{' and '.join(regions)}; keep the rest and say why", db, check, apply, lane=db)


def _report(ctx, db: str, regions: list[str], found: list[Decision], now: float, res: dict) -> None:
    """What was kept and why, and the metrics: after the deletions, or (nothing to delete, the step
    done already) at the end of the run."""
    res["kept"] += [d.line(now) for d in found if not d.delete]
    _samples(ctx, db, regions, found, now)
    for region in regions:
        archived = _archives(ctx, region, db)
        res["kept"] += [archive_line(a) for a in archived]
        ctx.samples.append(prom.sample(prom.RETENTION_KEPT, len(archived),
                                       {"database": db, "region": region, "tier": "archive"}, "Count"))
    res["reported"] = True


def delete(ctx, d: Decision) -> None:
    """The runbook's only delete. A compliance backup is refused here whatever the decision said
    (and again by the adapter), before anything is deleted."""
    refuse_compliance(d.snapshot)
    s = d.snapshot
    ctx.ports.backups.delete_snapshot(s)
    ctx.audit_action("delete-backup", f"{s.region}/{s.id}", "ok",
                     f"{d.tier} tier: {d.why} (taken {iso(s.created_at) if s.created_at else '?'})")


def _samples(ctx, db: str, regions: list[str], found: list[Decision], now: float) -> None:
    for region in regions:
        mine = [d for d in found if d.snapshot.region == region]
        for tier in ("automated", "manual", "compliance", "unmanaged"):
            labels = {"database": db, "region": region, "tier": tier}
            of_tier = [d for d in mine if d.tier == tier]
            ctx.samples.append(prom.sample(prom.RETENTION_DELETED, sum(d.delete for d in of_tier), labels, "Count"))
            kept = [d for d in of_tier if not d.delete]
            ctx.samples.append(prom.sample(prom.RETENTION_KEPT, len(kept), labels, "Count"))
            ages = [now - d.snapshot.created_at for d in kept if d.snapshot.created_at is not None]
            if ages:
                ctx.samples.append(prom.sample(prom.RETENTION_OLDEST, max(ages), labels, "Seconds"))
        ctx.samples.append(prom.sample(prom.RETENTION_AT, now, {"database": db, "region": region}))


def summarize(ctx) -> dict:
    deleted, kept, drift, archived = [], [], [], []
    p: Policy = ctx.results["_policy"]
    tiers, expires = _tiers(ctx), bool(getattr(ctx.ports.backups, "expires_automated", False))
    regions = list(ctx.outputs.regions)
    for db in ctx.databases:
        r = ctx.results.setdefault(db, {"deleted": [], "kept": []})
        if not r.get("reported"):  # the step had nothing to delete: still say what was kept and why
            now = ctx.clock.time()
            found = [d for region in regions
                     for d in decide(ctx.ports.backups.snapshots(region, db), now, p, tiers, expires)]
            _report(ctx, db, regions, [d for d in found if not d.delete], now, r)
        deleted += r.get("deleted", [])
        kept += r.get("kept", [])
        drift += r.get("drift", [])
        archived += r.get("archived", [])
    return {"passed": True,
            "summary": f"{len(deleted)} deleted, {len(kept)} kept (automated {p.automated_days:g} d, manual "
                       f"{p.manual_days:g} d, newest {p.keep_newest} manual kept, compliance never deleted)"
                       + (f"; {len(drift)} automated retention drift(s)" if drift else "")
                       + (f"; {len(archived)} archived" if archived else ""),
            "details": archived + deleted + kept + drift, "deleted": deleted, "kept": kept, "drift": drift,
            "archived": archived}


RUNBOOK = backup_cli.BackupRunbook(
    name="retention", description="Retention tiers: delete what is past its tier's period in both regions; the "
                                  "compliance tier never.",
    add_arguments=add_arguments, plan=plan, summarize=summarize)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
