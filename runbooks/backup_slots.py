"""Back up the logical replication slot definitions of each database (name, plugin, confirmed flush
position, the database's publications), from its writable primary, into the slot store.

    python -m runbooks.backup_slots --outputs FILE [--database NAME] [--region R] [--dry-run] [--yes]

Run it on a schedule (every 5 minutes: the stacks' CronJob runs the same capture,
``components/kubernetes.py``): the consumer's confirmed position in the newest backup bounds what
it must re-read after a failover (runbooks/backups/slots.py). Every reachable region is asked; the capture
is kept only from the one writable, unfenced primary — a replica has no slots, and two writable
primaries (split brain) are refused with both named. Metrics: the capture time, the number of
slots, and each consumer's lag in bytes."""

from __future__ import annotations

import sys

from contract.slot_backup import SlotDocumentError, lsn_to_int, parse
from runbooks.backups import cli as backup_cli
from runbooks.backups.slots import SlotTarget
from runbooks.core import metrics as prom
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--region", help="capture only from this region (default: whichever holds the writable primary)")


def plan(ctx) -> Plan:
    if ctx.ports.slots is None or ctx.ports.slot_store is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no slot ports")
    regions = list(ctx.outputs.regions)
    if ctx.args.region is not None:
        if ctx.args.region not in regions:
            raise BadInput(f"--region {ctx.args.region}: not in the outputs; known: {', '.join(regions)}")
        regions = [ctx.args.region]
    return Plan("backup_slots", [Phase("capture", [_capture_step(ctx, db, regions) for db in ctx.databases])])


def _capture_step(ctx, db: str, regions: list[str]) -> Step:
    res = ctx.results.setdefault(db, {})

    def check() -> Check:
        done = [e for e in ctx.recorded("slot-capture") if e.get("database") == db]
        if done:
            res.update(done[-1])
            return Check.done(f"captured from {done[-1]['region']} at {iso(done[-1]['captured_at'])} in this run")
        return Check.todo(f"capture the logical slots of {db} from its writable primary ({', '.join(regions)})")

    def apply() -> str:
        writers, seen = [], []
        for region in regions:
            try:
                doc = ctx.ports.slots.capture(SlotTarget(region, db))
            except Unreachable as exc:
                seen.append(f"{region}: unreachable ({exc})")
                continue
            try:
                b = parse(doc, f"slot capture of {region}/{db}")
            except SlotDocumentError as exc:
                raise StepFailed(str(exc)) from None
            if b.in_recovery or b.read_only:
                seen.append(f"{region}: {'a replica' if b.in_recovery else 'fenced (read-only)'}, skipped")
                continue
            writers.append((region, doc, b))
        if not writers:
            raise StepFailed(f"no writable primary of {db} answered: {'; '.join(seen)}")
        if len(writers) > 1:
            raise StepFailed(f"{' and '.join(r for r, _, _ in writers)} are both writable primaries of {db} "
                             "(split brain?); settle it, or pass --region to capture from one of them")
        region, doc, b = writers[0]
        where = ctx.ports.slot_store.put(db, doc)
        names = [s.name for s in b.slots]
        ctx.record("slot-capture", database=db, region=region, captured_at=b.captured_at, slots=names, where=where)
        res.update(region=region, captured_at=b.captured_at, slots=names, where=where)
        labels = {"database": db, "region": region}
        ctx.samples += [Sample(prom.SLOT_BACKUP_AT, b.captured_at, labels, prom.HELP[prom.SLOT_BACKUP_AT], "Seconds"),
                        Sample(prom.SLOT_COUNT, len(names), labels, prom.HELP[prom.SLOT_COUNT], "Count")]
        lags = []
        for s in b.slots:
            if s.confirmed_flush_lsn is not None:
                lag = lsn_to_int(b.server_lsn) - lsn_to_int(s.confirmed_flush_lsn)
                lags.append(f"{s.name} {lag} bytes behind")
                ctx.samples.append(Sample(prom.SLOT_LAG_BYTES, lag, {**labels, "slot": s.name},
                                          prom.HELP[prom.SLOT_LAG_BYTES], "Bytes"))
        ctx.audit_action("backup-slots", f"{region}/{db}", "ok",
                         f"{len(names)} slot(s) {', '.join(names) or '-'}; kept in {', '.join(where)}")
        return (f"{len(names)} logical slot(s) of {region}/{db} captured at {b.server_lsn} "
                f"({', '.join(names) or 'none'}{'; ' + ', '.join(lags) if lags else ''}), kept in {len(where)} place(s)"
                + (f"; {'; '.join(seen)}" if seen else ""))

    return Step(f"capture-slots:{db}", f"capture the logical slot definitions of {db} and keep them in every region",
                db, check, apply, lane=db)


def summarize(ctx) -> dict:
    details = []
    for db in ctx.databases:
        r = ctx.results.get(db, {})
        if r.get("region"):
            details.append(f"{db}: {len(r.get('slots') or [])} slot(s) ({', '.join(r.get('slots') or []) or 'none'}) "
                           f"from {r['region']} at {iso(r['captured_at'])}")
    return {"passed": True, "summary": f"slot definitions of {len(details)} database(s) backed up",
            "details": details, "captures": {db: ctx.results.get(db, {}) for db in ctx.databases}}


RUNBOOK = backup_cli.BackupRunbook(
    name="backup_slots", description="Back up the logical replication slot definitions (for CDC consumers).",
    add_arguments=add_arguments, plan=plan, summarize=summarize, resume_by_default=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
