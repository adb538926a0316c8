"""Recreate the logical replication slots of a database on a restored instance (or on a region's
database), from the newest slot backup, and report what each consumer must re-read.

    python -m runbooks.recreate_slots --outputs FILE --database NAME (--instance RESTORED | --region R)
                                      [--dry-run] [--yes]

After ``python -m runbooks.restore`` the new instance has no logical slots (they are not in the
WAL). This creates the backed-up slots (and any publication the restore predates) on it. The gap
(runbooks/backups/slots.py): the slot starts at the restored server's position P; the consumer had
confirmed C (newest backup). C < P: re-read the changes in between; C > P: the consumer saw changes
the restore undid, it must discard what it read after P. A failover does the same itself (the
``slots`` step of the failover and switchover plans)."""

from __future__ import annotations

import sys

from runbooks.backups import cli as backup_cli
from runbooks.backups.slots import SlotTarget, missing, newest, recreate
from runbooks.core import metrics as prom
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, Unreachable
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--instance", help="the restored instance to recreate the slots on (runbooks.restore's --name)")
    p.add_argument("--region", help="the instance's region (default: the primary region), or, without --instance, "
                                    "the region whose database gets the slots")


def plan(ctx) -> Plan:
    a = ctx.args
    if ctx.ports.slots is None or ctx.ports.slot_store is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no slot ports")
    if a.instance is None and a.region is None:
        raise BadInput("say where: --instance NAME (a restored instance) or --region R (that region's database)")
    region = a.region or ctx.outputs.primary.name
    if region not in ctx.outputs.regions:
        raise BadInput(f"--region {region}: not in the outputs; known: {', '.join(ctx.outputs.regions)}")
    db = ctx.databases[0]
    if a.instance is not None:
        inst = ctx.ports.backups.instance(region, a.instance)
        if inst.status == "absent":
            raise BadInput(f"--instance {a.instance}: no restored instance of that name in {region}; restore one first "
                           "(python -m runbooks.restore --name …); nothing was changed")
        if inst.database and inst.database != db:
            raise BadInput(f"--instance {a.instance} was restored from {inst.database}, not {db}; nothing was changed")
    try:
        source, history = newest(ctx.ports.slot_store, db)
    except Unreachable as exc:
        raise BadInput(f"no slot backup of {db} can be read: {exc}; nothing was changed") from None
    if source is None:
        raise BadInput(f"no slot backup of {db}: back the slots up first (python -m runbooks.backup_slots) — without "
                       "one nobody knows where the consumers were; nothing was changed")
    target = SlotTarget(region, db, a.instance)
    ctx.results[db] = {"target": str(target), "backup": source.where, "captured_at": source.captured_at}
    return Plan("recreate_slots", [Phase("slots", [_step(ctx, target, source, history)])])


def _step(ctx, target: SlotTarget, source, history) -> Step:
    db = target.database
    res = ctx.results[db]

    def check() -> Check:
        try:
            slots, pubs = missing(ctx.ports.slots, target, source)
        except Unreachable as exc:
            return Check.blocked(f"{target} does not answer: {exc}")
        if not slots and not pubs:
            return Check.done(f"{target} has every slot of the backup ({', '.join(s.name for s in source.slots) or 'none'})")
        return Check.todo(f"create slot(s) {', '.join(s.name for s in slots) or '-'}"
                          + (f", publication(s) {', '.join(p.name for p in pubs)}" if pubs else "")
                          + f" from {source.where} (captured {iso(source.captured_at)})")

    def apply() -> str:
        start = ctx.clock.monotonic()
        gaps, notes = recreate(ctx.ports.slots, target, source, history)
        res.update(gaps=[g.as_dict() for g in gaps], publications_created=notes,
                   seconds=ctx.clock.monotonic() - start)
        for g in gaps:
            if g.created:
                ctx.audit_action("create-slot", f"{target}/{g.slot}", "ok", g.sentence())
                if g.gap_bytes is not None:
                    ctx.samples.append(Sample(prom.SLOT_GAP_BYTES, g.gap_bytes,
                                              {"database": db, "region": target.region, "slot": g.slot},
                                              prom.HELP[prom.SLOT_GAP_BYTES], "Bytes"))
        return "; ".join(notes + [g.sentence() for g in gaps])

    return Step(f"recreate-slots:{db}", f"recreate the logical slots of {db} on {target}", str(target), check, apply,
                lane=db)


def summarize(ctx) -> dict:
    db = ctx.databases[0]
    r = ctx.results.get(db, {})
    gaps = r.get("gaps") or []
    return {"passed": True, "summary": f"{sum(1 for g in gaps if g['created'])} slot(s) recreated on {r.get('target')} "
                                       f"from {r.get('backup')}", "details": [str(g) for g in gaps], "gaps": gaps,
            "target": r.get("target"), "backup": r.get("backup")}


RUNBOOK = backup_cli.BackupRunbook(
    name="recreate_slots", description="Recreate the backed-up logical replication slots on a restored instance.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, one_database=True)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
