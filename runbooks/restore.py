"""Point-in-time restore of a database to a NEW instance.

    python -m runbooks.restore --outputs FILE --database NAME [--to-time T | --latest]
                               [--source-region primary|dr|REGION] [--name NEW] [--dry-run] [--yes]

The time must lie in the restorable window (the error names the window's bounds) and not in the
future. ``--source-region dr`` restores from the automated backups replicated to the DR region
(the way back when the primary region is gone). The source instance is never touched; the new
instance is named by ``--name`` (default ``restore-<database>-<run>``). ``--output json`` names
the new instance (on the sandbox with its libpq ``dsn``, whose password is in a passfile)."""

from __future__ import annotations

import sys

from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import Window
from runbooks.backups.restored import instance_name, raise_if_failed, resolve_region
from runbooks.core import metrics as prom
from runbooks.core.clock import iso, wait_until
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    when = p.add_mutually_exclusive_group()
    when.add_argument("--to-time", metavar="T", help="ISO 8601 time with a timezone (e.g. 2026-11-22T05:30:00Z)")
    when.add_argument("--latest", action="store_true", help="the latest restorable time (the default)")
    p.add_argument("--source-region", default="primary",
                   help="restore from the backups in this region: primary (default), dr, or a region name")
    p.add_argument("--name", help="identifier of the new instance (default restore-<database>-<run>)")
    p.add_argument("--timeout", type=float, default=4 * 3600.0,
                   help="seconds to wait for the new instance to become available (default 4 h)")


def check_time_in_window(ctx, region: str, database: str, to_time: float | None, seal: bool) -> Window:
    """The window, sealed first where that makes newer writes restorable. BadInput when the time
    is in the future, outside the window, or there is no backup. Without ``seal`` (a dry run) a
    time after the window's end counts as inside: the real run seals first."""
    now = ctx.clock.time()
    if to_time is not None and to_time > now:
        raise BadInput(f"--to-time {iso(to_time)} is in the future (now is {iso(now)}); nothing was restored")
    window = ctx.ports.backups.window(region, database, seal=False)
    if seal and (window is None or to_time is None or to_time > window.latest):
        window = ctx.ports.backups.window(region, database, seal=True)
    if window is None:
        raise BadInput(f"no backup of {database} in {region} to restore from; take one first "
                       f"(python -m runbooks.snapshot) or use --source-region with the other region")
    latest = window.latest if seal else max(window.latest, now)
    if to_time is not None and not window.earliest <= to_time <= latest:
        raise BadInput(f"--to-time {iso(to_time)} is outside the restorable window of {database} in {region}: "
                       f"from {iso(window.earliest)} to {iso(window.latest)}; nothing was restored")
    return window


def plan(ctx) -> Plan:
    a = ctx.args
    db = ctx.databases[0]
    region = resolve_region(ctx, a.source_region)
    to_time = backup_cli.parse_time(a.to_time) if a.to_time else None
    name = a.name or instance_name("restore", db, ctx.run_id)
    if not name[:1].isalpha() or not name.replace("-", "").isalnum() or len(name) > 63:
        raise BadInput(f"--name {name!r}: a letter first, then letters, digits and hyphens (at most 63)")
    if name in {d.identifier for r in ctx.outputs.regions.values() for d in r.databases.values()}:
        raise BadInput(f"--name {name}: that is a database of the stacks; a restore always makes a NEW instance")
    res = ctx.results.setdefault(db, {"name": name, "region": region, "to_time": to_time})
    existing = ctx.ports.backups.instance(region, name)
    if existing.status == "absent":
        window = check_time_in_window(ctx, region, db, to_time, seal=not a.dry_run)
        res["window"] = {"earliest": iso(window.earliest), "latest": iso(window.latest), "source": window.source}
        ctx.results["_dry"] = {"window": res["window"], "instance": {"name": name, "region": region}}

    def check() -> Check:
        inst = ctx.ports.backups.instance(region, name)
        if inst.status == "available":
            return Check.done(f"{name} in {region} is available")
        if inst.status == "absent":
            return Check.todo(f"{name} does not exist yet")
        return Check.todo(f"{name} in {region} is {inst.status}")

    def apply() -> str:
        start = ctx.clock.monotonic()
        ctx.ports.backups.restore(region, db, name, to_time)
        inst = wait_until(lambda: (lambda i: i if i.status == "available" else
                                   raise_if_failed(i))(ctx.ports.backups.instance(region, name)),
                          what=f"{name} in {region} to be available", timeout=a.timeout, clock=ctx.clock,
                          interval=0.5, max_interval=30.0)
        seconds = ctx.clock.monotonic() - start
        res.update(seconds=seconds, instance=inst)
        ctx.samples.append(Sample(prom.RESTORE_SECONDS, seconds, {"database": db, "region": region},
                                  prom.HELP[prom.RESTORE_SECONDS], "Seconds"))
        target = iso(to_time) if to_time is not None else "the latest restorable time"
        return f"restored {db} from {region}'s backups to {target} into the new instance {name} in {seconds:.1f} s"

    step = Step(f"restore:{db}", f"restore {region}/{db} to "
                f"{iso(to_time) if to_time is not None else 'the latest restorable time'} into a new instance {name}",
                f"{region}/{name}", check, apply, lane=db)
    return Plan("restore", [Phase("restore", [step])])


def summarize(ctx) -> dict:
    db = ctx.databases[0]
    r = ctx.results[db]
    inst = ctx.ports.backups.instance(r["region"], r["name"])
    out = {"instance": {"name": inst.name, "region": inst.region, "status": inst.status, "endpoint": inst.endpoint,
                        "port": inst.port, "restored_to": inst.restored_to or
                        (iso(r["to_time"]) if r["to_time"] else "latest restorable time")},
           "window": r.get("window")}
    if inst.dsn:
        out["instance"]["dsn"] = inst.dsn
    ok = inst.status == "available"
    out.update(passed=ok, summary=(f"{db} restored into the new instance {inst.name} in {inst.region}"
                                   + (f" ({r['seconds']:.1f} s)" if r.get("seconds") else "")) if ok else
               f"the new instance {inst.name} is {inst.status}",
               details=[f"source: {r['region']}'s backups of {db}", f"target time: {out['instance']['restored_to']}",
                        f"endpoint: {inst.endpoint}:{inst.port}"])
    return out


RUNBOOK = backup_cli.BackupRunbook(
    name="restore", description="Point-in-time restore of a database to a new instance.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, one_database=True)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
