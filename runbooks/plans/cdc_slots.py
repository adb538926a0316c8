"""The ``slots`` step of the failover and switchover plans: recreate the logical replication (CDC)
slots on the promoted database before DNS sends clients there, and report what each consumer must
re-read (the slot ports, the recreation and its gap: ``runbooks.backups.slots``)."""

from __future__ import annotations

from typing import Any

from contract.slot_backup import SlotBackup, parse
from runbooks.backups.slots import SlotControl, SlotStore, SlotTarget, missing, newest, recreate
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Step
from runbooks.core.errors import StepFailed, Unreachable


def slots_phase(ctx: Any, planned: bool) -> list[Phase]:
    """Recreate the logical slots on the promoted database, when the adapter has the slot ports.
    Best effort: a CDC consumer's slots never hold up a failover; a failure is in the report."""
    if getattr(ctx.ports, "slots", None) is None or getattr(ctx.ports, "slot_store", None) is None:
        return []
    return [Phase("slots", [slots_step(ctx, db, planned) for db in ctx.databases])]


def slots_step(ctx: Any, db: str, planned: bool) -> Step:
    control: SlotControl = ctx.ports.slots
    store: SlotStore = ctx.ports.slot_store
    target = SlotTarget(ctx.target, db)
    found: dict[str, Any] = {}

    def definitions() -> tuple[SlotBackup | None, list[SlotBackup], str]:
        if "source" in found:
            return found["source"], found["history"], found["from"]
        source, history, origin = None, [], ""
        try:
            source, history = newest(store, db)
            if source is not None:
                origin = (f"backup {source.where} (captured {iso(source.captured_at)}, "
                          f"{ctx.ports.clock.time() - source.captured_at:.0f} s before this step)")
        except Unreachable as exc:
            origin = f"no slot backup readable ({exc})"
        if planned:  # the old primary is up (fenced): its slots are the freshest definitions
            try:
                live = parse(control.capture(SlotTarget(ctx.source, db)), f"live slots of {ctx.source}/{db}")
                if live.in_recovery:  # a resumed run after the source was rebuilt as a replica: no slots there
                    origin += f"; {ctx.source}/{db} is a replica now, its (absent) slots are not the definitions"
                else:
                    source, origin = live, f"the live slots of {ctx.source}/{db} (fenced, read at this step)"
                    history = history + [live]
            except Unreachable as exc:
                origin += f"; {ctx.source}/{db} unreachable ({exc})"
        found.update(source=source, history=history, **{"from": origin})
        return source, history, origin

    def check() -> Check:
        source, _, origin = definitions()
        if source is None:
            return Check.done(f"no logical slot definitions of {db} known ({origin or 'no backup'}); nothing to "
                              "recreate. If a CDC consumer reads this database, back its slots up on a schedule "
                              "(python -m runbooks.backup_slots)")
        if not source.slots:
            return Check.done(f"{db} had no logical slots ({origin})")
        try:
            slots, pubs = missing(control, target, source)
        except Unreachable as exc:
            return Check.blocked(f"{target} does not answer: {exc}")
        if not slots and not pubs:
            return Check.done(f"every logical slot of {db} exists on {ctx.target} "
                              f"({', '.join(s.name for s in source.slots)})")
        return Check.todo(f"{ctx.target}/{db} lacks slot(s) {', '.join(s.name for s in slots) or '-'}"
                          + (f" and publication(s) {', '.join(p.name for p in pubs)}" if pubs else "")
                          + f" (definitions from {origin})")

    def apply() -> str:
        source, history, origin = definitions()
        if source is None:
            return "nothing to recreate"
        gaps, notes = recreate(control, target, source, history)
        ctx.measurements.setdefault("cdc_slots", {})[db] = {
            "definitions_from": origin, "gaps": [g.as_dict() for g in gaps], "publications_created": notes}
        return "; ".join(notes + [g.sentence() for g in gaps])

    def verify() -> str:
        source, _, _ = definitions()
        if source is None:
            return "nothing to verify"
        slots, pubs = missing(control, target, source)
        if slots or pubs:
            raise StepFailed(f"{target} still lacks {', '.join([s.name for s in slots] + [p.name for p in pubs])}")
        return f"{target} has every logical slot of the definitions"

    return Step(f"slots:{db}", f"recreate the logical replication slots of {db} on {ctx.target} and report the "
                "changes their consumers must re-read", f"{ctx.target}/{db}", check, apply, verify,
                best_effort=True, lane=db)
