"""Prove that the backups restore: restore the latest backup to a temporary instance, check it,
tear it down, and say loudly when it fails.

    python -m runbooks.verify_backup --outputs FILE [--database NAME] [--table T ...]
                                     [--source-region primary|dr] [--dry-run] [--yes]

Per database:

1. reference: on the live source, the chosen tables (default: every ordinary table outside the
   system schemas) are locked against writes (SHARE: reads go on), counted and summed, and the
   database clock is read; the lock is held until the clock has passed that time T. The backups
   restored to T must therefore hold exactly these rows.
2. restore the backups to T into a temporary instance ``verify-<database>-<run>``;
3. integrity: row counts and checksums against the reference; amcheck (heap, and every B-tree
   index with ``heapallindexed``) where the extension is available;
4. teardown of the temporary instance — always, also when a step failed or the run was interrupted.

The result goes into the report, the audit log and the metrics (success 0/1, duration). A failed
verification exits 1 with a sentence that says what did not match."""

from __future__ import annotations

import sys

from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import Reference, TableState
from runbooks.backups.restored import instance_name, raise_if_failed, resolve_region
from runbooks.core import metrics as prom
from runbooks.core.clock import iso, wait_until
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import RunbookError
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--table", action="append", default=[], metavar="NAME",
                   help="table to compare (repeatable; default: every ordinary table outside the system schemas)")
    p.add_argument("--source-region", default="primary", help="whose backups: primary (default), dr, or a region")
    p.add_argument("--lock-timeout", type=float, default=10.0,
                   help="seconds to wait for the SHARE lock on the tables at the reference point (default 10)")
    p.add_argument("--timeout", type=float, default=4 * 3600.0,
                   help="seconds to wait for the backups to cover the reference point and for the restore (default 4 h)")


def _reference_from_journal(ctx, db: str) -> Reference | None:
    for e in reversed(ctx.recorded("reference")):
        if e.get("database") == db:
            return Reference(e["region"], db, e["time"], {t: TableState(**v) for t, v in e["tables"].items()})
    return None


def plan(ctx) -> Plan:
    a = ctx.args
    from runbooks.backups.verify_sql import check_table_names
    check_table_names(a.table)
    region = resolve_region(ctx, a.source_region)
    source = ctx.outputs.primary.name
    steps = []
    for db in ctx.databases:
        name = instance_name("verify", db, ctx.run_id)
        res = ctx.results.setdefault(db, {"name": name, "region": region, "reasons": [], "passed": None,
                                          "started": ctx.clock.monotonic()})
        res["reference"] = _reference_from_journal(ctx, db)
        if not a.dry_run and ctx.ports.backups.window(region, db) is None:
            from runbooks.core.errors import BadInput
            raise BadInput(f"no backup of {db} in {region} to verify; take one first (python -m runbooks.snapshot)")
        steps += [_reference_step(ctx, source, db, res), _restore_step(ctx, region, db, name, res),
                  _integrity_step(ctx, region, db, name, res), _teardown_step(ctx, region, db, name, res)]
    return Plan("verify_backup", [Phase("verify", steps)])


def _reference_step(ctx, source: str, db: str, res: dict) -> Step:
    def check() -> Check:
        ref = res.get("reference")
        if ref is not None:
            return Check.done(f"reference point {iso(ref.time)} with {len(ref.tables)} table(s)")
        return Check.todo(f"no reference point on {source}/{db} yet")

    def apply() -> str:
        tables = list(ctx.args.table)
        ref = ctx.ports.backups.reference(source, db, tables, ctx.args.lock_timeout)
        res["reference"] = ref
        ctx.record("reference", database=db, region=source, time=ref.time,
                   tables={t: {"rows": s.rows, "checksum": s.checksum} for t, s in ref.tables.items()})
        rows = ", ".join(f"{t}: {s.rows} rows" for t, s in ref.tables.items()) or "no tables"
        return f"reference point {iso(ref.time)} on {source}/{db} ({rows})"

    return Step(f"reference:{db}", f"lock, count and sum the tables of {source}/{db} at one instant",
                f"{source}/{db}", check, apply, lane=db)


def _restore_step(ctx, region: str, db: str, name: str, res: dict) -> Step:
    def check() -> Check:
        inst = ctx.ports.backups.instance(region, name)
        if inst.status == "available":
            return Check.done(f"temporary instance {name} is available")
        return Check.todo(f"temporary instance {name} is {inst.status}")

    def apply() -> str:
        ref: Reference = res["reference"]
        # the backups must cover the reference point (sandbox: sealed at once; RDS: WAL is
        # uploaded about every 5 minutes)
        wait_until(lambda: (lambda w: w is not None and w.latest >= ref.time)(
                       ctx.ports.backups.window(region, db, seal=True)),
                   what=f"the backups of {db} in {region} to reach {iso(ref.time)}", timeout=ctx.args.timeout,
                   clock=ctx.clock, interval=0.5, max_interval=30.0)
        start = ctx.clock.monotonic()
        ctx.ports.backups.restore(region, db, name, ref.time)
        wait_until(lambda: (lambda i: i if i.status == "available" else raise_if_failed(i))(
                       ctx.ports.backups.instance(region, name)),
                   what=f"{name} to be available", timeout=ctx.args.timeout, clock=ctx.clock, interval=0.5,
                   max_interval=30.0)
        res["restore_seconds"] = ctx.clock.monotonic() - start
        ctx.samples.append(Sample(prom.RESTORE_SECONDS, res["restore_seconds"], {"database": db, "region": region},
                                  prom.HELP[prom.RESTORE_SECONDS], "Seconds"))
        return f"restored {region}'s backups of {db} to {iso(ref.time)} into {name} in {res['restore_seconds']:.1f} s"

    return Step(f"restore:{db}", f"restore the latest backup of {region}/{db} to the reference point into "
                f"the temporary instance {name}", f"{region}/{name}", check, apply, lane=db)


def compare(ref: Reference, got: dict[str, TableState]) -> list[str]:
    reasons = []
    for table, want in sorted(ref.tables.items()):
        have = got.get(table)
        if have is None:
            reasons.append(f"table {table} is missing from the restored instance")
        elif have.rows != want.rows:
            reasons.append(f"table {table}: {have.rows} rows restored, the source had {want.rows} at {iso(ref.time)}")
        elif have.checksum != want.checksum:
            reasons.append(f"table {table}: the {have.rows} rows restored differ in content from the source's "
                           f"(checksum {have.checksum} ≠ {want.checksum})")
    return reasons


def _integrity_step(ctx, region: str, db: str, name: str, res: dict) -> Step:
    def check() -> Check:
        if res.get("passed") is not None:
            return Check.done("checked")
        return Check.todo("not checked yet")

    def apply() -> str:
        ref: Reference = res["reference"]
        inst = ctx.ports.backups.instance(region, name)
        got = ctx.ports.backups.integrity(inst, sorted(ref.tables))
        reasons = compare(ref, got.tables)
        if got.amcheck:
            reasons += [f"amcheck: {p}" for p in got.amcheck]
        res.update(passed=not reasons, amcheck=got.amcheck_note, tables={t: s.rows for t, s in got.tables.items()})
        res["reasons"] += reasons
        ctx.record("verification", database=db, passed=not reasons, reasons=reasons, amcheck=got.amcheck_note)
        if reasons:
            return f"FAILED: {'; '.join(reasons)}"
        return (f"passed: {len(ref.tables)} table(s) match the source at {iso(ref.time)} "
                f"({', '.join(f'{t}: {n} rows' for t, n in res['tables'].items()) or 'no tables'}); {got.amcheck_note}")

    return Step(f"integrity:{db}", "compare row counts and checksums with the reference; amcheck",
                f"{region}/{name}", check, apply, lane=db)


def _teardown_step(ctx, region: str, db: str, name: str, res: dict) -> Step:
    def check() -> Check:
        inst = ctx.ports.backups.instance(region, name)
        if inst.status in ("absent", "deleting"):
            return Check.done(f"temporary instance {name} is {inst.status}")
        return Check.todo(f"temporary instance {name} is {inst.status}")

    return Step(f"teardown:{db}", f"delete the temporary instance {name}", f"{region}/{name}", check,
                lambda: ctx.ports.backups.delete_instance(region, name), lane=db)


def finish(ctx) -> list[str]:
    """Always: no temporary instance outlives the run, whatever happened."""
    done = []
    for db in ctx.databases:
        res = ctx.results.get(db) or {}
        name, region = res.get("name"), res.get("region")
        if not name:
            continue
        if ctx.args.dry_run:
            continue
        try:
            inst = ctx.ports.backups.instance(region, name)
            if inst.status not in ("absent", "deleting"):
                done.append(f"teardown after the run: {ctx.ports.backups.delete_instance(region, name)}")
                ctx.audit_action("teardown", f"{region}/{name}", "ok", "temporary instance removed after the run")
        except RunbookError as exc:
            done.append(f"TEARDOWN FAILED for {region}/{name}: {exc}; delete it by hand")
            ctx.audit_action("teardown", f"{region}/{name}", "failed", str(exc))
        seconds = ctx.clock.monotonic() - res.get("started", ctx.clock.monotonic())
        passed = res.get("passed") is True
        if res.get("passed") is None and not res.get("reasons"):
            res["reasons"].append("the verification did not complete (see the failed step)")
        res["seconds"] = seconds
        ctx.audit_action("verification", f"{region}/{db}", "passed" if passed else "FAILED",
                         "; ".join(res.get("reasons") or []) or f"backups of {db} restore and match the source")
        labels = {"database": db, "region": region}
        ctx.samples += [Sample(prom.VERIFY_OK, 1.0 if passed else 0.0, labels, prom.HELP[prom.VERIFY_OK], "Count"),
                        Sample(prom.VERIFY_SECONDS, seconds, labels, prom.HELP[prom.VERIFY_SECONDS], "Seconds"),
                        Sample(prom.VERIFY_AT, ctx.clock.time(), labels, prom.HELP[prom.VERIFY_AT], "Seconds")]
    return done


def summarize(ctx) -> dict:
    failed = [db for db in ctx.databases if ctx.results.get(db, {}).get("passed") is not True]
    reasons = [f"{db}: {r}" for db in failed for r in ctx.results.get(db, {}).get("reasons", [])]
    details = []
    for db in ctx.databases:
        r = ctx.results.get(db, {})
        ref = r.get("reference")
        details.append(f"{db}: {'passed' if r.get('passed') else 'FAILED'}"
                       + (f", reference {iso(ref.time)}" if ref else "")
                       + (f", tables {r.get('tables')}" if r.get("tables") else "")
                       + (f", {r.get('amcheck')}" if r.get("amcheck") else "")
                       + (f", {r['seconds']:.1f} s" if r.get("seconds") is not None else ""))
    summary = (f"backups of {', '.join(ctx.databases)} restore and match the source" if not failed else
               f"VERIFICATION FAILED for {', '.join(failed)}")
    return {"passed": not failed, "summary": summary, "reasons": reasons, "details": details,
            "verification": {db: {"passed": ctx.results.get(db, {}).get("passed") is True,
                                  "seconds": ctx.results.get(db, {}).get("seconds"),
                                  "reasons": ctx.results.get(db, {}).get("reasons", [])} for db in ctx.databases}}


RUNBOOK = backup_cli.BackupRunbook(
    name="verify_backup", description="Restore the latest backup to a temporary instance, check it, tear it down.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, finish=finish, resume_by_default=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
