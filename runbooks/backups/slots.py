"""Logical replication slots across a failover and a restore: the ports, the recreation and its gap
(the failover's and switchover's step that uses them: ``runbooks.plans.cdc_slots``).

PostgreSQL before 17 keeps logical slots only on the server that created them: a promoted physical
replica and a point-in-time restore start with none, so a CDC consumer breaks after a failover.
The slot definitions are captured on a schedule (``python -m runbooks.backup_slots``, or the
stacks' CronJob, same document: ``contract/slot_backup.py``); a failover or switchover recreates them on
the promoted database right after the promotion, before DNS sends clients there (no client write
can land on the new primary before its slots exist); ``python -m runbooks.recreate_slots`` does the
same on a restored instance.

The gap: a slot created now starts decoding at the server's current WAL position P. A consumer that
had confirmed up to C on the old primary never receives, from the new slot, the changes committed
in WAL between C and P (they replicated physically, so they are in the new primary's tables; they
cannot be decoded without a slot that existed then). Those the consumer must re-read from the
tables (a re-snapshot, whole or bounded by a timestamp column). When C > P, the consumer has seen
changes the new primary does not have (they were lost with the old primary, or undone by the
restore): it must discard them. C comes from the live old primary in a switchover (it is up), from
the newest backup in a failover or a restore (so the more often slots are backed up, the smaller the
bound). The bound in time, ``reread_since``: the capture time of the newest backup whose server
position was at or before C — every change after C was committed after that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contract.slot_backup import PublicationDef, SlotBackup, SlotDef, lsn_to_int
from runbooks.core.clock import iso


@dataclass(frozen=True)
class SlotTarget:
    region: str
    database: str
    """The logical database (as in the outputs)."""
    instance: str | None = None
    """A restored instance's name (``runbooks.restore``); None: the region's own database."""

    def __str__(self) -> str:
        return f"{self.region}/{self.database}" + (f" (restored instance {self.instance})" if self.instance else "")


@dataclass(frozen=True)
class LiveSlot:
    name: str
    plugin: str
    confirmed_flush_lsn: str | None


class SlotControl(Protocol):
    def capture(self, target: SlotTarget) -> dict:
        """Run ``contract.slot_backup.CAPTURE_SQL`` there; the raw document."""

    def existing(self, target: SlotTarget) -> dict[str, LiveSlot]:
        """The logical slots of the target's database, by name."""

    def create(self, target: SlotTarget, slot: SlotDef) -> str:
        """``pg_create_logical_replication_slot`` (its plugin, two-phase flag); the slot's start
        position (its consistent point). Raises StepFailed with the server's reason."""

    def publications(self, target: SlotTarget) -> set[str]: ...

    def create_publication(self, target: SlotTarget, pub: PublicationDef) -> str: ...


class SlotStore(Protocol):
    def put(self, database: str, doc: dict) -> list[str]:
        """Keep the document in every region that can take it (AWS: each backups bucket); where."""

    def backups(self, database: str) -> list[SlotBackup]:
        """Every readable backup of the logical database, oldest first (duplicates across regions
        once). Raises Unreachable when no copy can be read at all."""


@dataclass(frozen=True)
class Gap:
    slot: str
    plugin: str
    confirmed_flush_lsn: str | None
    """How far the consumer had acknowledged (the source of the definitions)."""
    created_at_lsn: str
    """Where the recreated slot starts decoding."""
    gap_bytes: int | None
    """created_at_lsn − confirmed_flush_lsn: WAL the consumer cannot stream from the new slot
    (negative: it saw this much WAL that the new server does not have). None: never confirmed."""
    reread_since: float | None
    """Every change the consumer must re-read was committed after this time (None: unknown, re-read all)."""
    created: bool = True
    """False: the slot already existed there (nothing done, nothing measured)."""

    def sentence(self) -> str:
        if not self.created:
            return f"slot {self.slot} already existed"
        if self.confirmed_flush_lsn is None or self.gap_bytes is None:
            return (f"slot {self.slot} ({self.plugin}) recreated at {self.created_at_lsn}; its consumer had confirmed "
                    "nothing: re-snapshot everything it reads")
        since = f", committed after {iso(self.reread_since)}" if self.reread_since is not None else \
            " (no backup bounds it in time: re-snapshot everything it reads)"
        if self.gap_bytes < 0:
            return (f"slot {self.slot} ({self.plugin}) recreated at {self.created_at_lsn}, BEHIND the consumer's "
                    f"confirmed {self.confirmed_flush_lsn} by {-self.gap_bytes} bytes of WAL: the consumer saw "
                    f"changes this server does not have; it must discard what it read after {self.created_at_lsn}")
        return (f"slot {self.slot} ({self.plugin}) recreated at {self.created_at_lsn}; the consumer had confirmed "
                f"{self.confirmed_flush_lsn}: it must re-read the changes in between ({self.gap_bytes} bytes of WAL"
                f"{since})")

    def as_dict(self) -> dict:
        return {"slot": self.slot, "plugin": self.plugin, "confirmed_flush_lsn": self.confirmed_flush_lsn,
                "created_at_lsn": self.created_at_lsn, "gap_bytes": self.gap_bytes,
                "reread_since": iso(self.reread_since) if self.reread_since is not None else None,
                "created": self.created}


def reread_since(history: list[SlotBackup], confirmed: str | None) -> float | None:
    """The capture time of the newest backup whose server position was at or before ``confirmed``:
    WAL after ``confirmed`` was written after that capture (positions only grow on one timeline)."""
    if confirmed is None:
        return None
    c = lsn_to_int(confirmed)
    times = [b.captured_at for b in history if lsn_to_int(b.server_lsn) <= c]
    return max(times) if times else None


def missing(control: SlotControl, target: SlotTarget, source: SlotBackup) -> tuple[list[SlotDef], list[PublicationDef]]:
    have = control.existing(target)
    pubs = control.publications(target)
    return ([s for s in source.slots if s.name not in have], [p for p in source.publications if p.name not in pubs])


def recreate(control: SlotControl, target: SlotTarget, source: SlotBackup, history: list[SlotBackup]) -> tuple[list[Gap], list[str]]:
    """Create on ``target`` every slot of ``source`` it lacks (and the publications it lacks:
    a restore to before a publication existed); the gap of each. Idempotent."""
    have = control.existing(target)
    notes = []
    pubs = control.publications(target)
    for pub in source.publications:
        if pub.name not in pubs:
            notes.append(control.create_publication(target, pub))
    gaps = []
    for slot in source.slots:
        if slot.name in have:
            gaps.append(Gap(slot.name, slot.plugin, slot.confirmed_flush_lsn, have[slot.name].confirmed_flush_lsn or "",
                            None, None, created=False))
            continue
        at = control.create(target, slot)
        gap = None if slot.confirmed_flush_lsn is None else lsn_to_int(at) - lsn_to_int(slot.confirmed_flush_lsn)
        gaps.append(Gap(slot.name, slot.plugin, slot.confirmed_flush_lsn, at, gap,
                        reread_since(history, slot.confirmed_flush_lsn)))
    return gaps, notes


def newest(store: SlotStore, database: str) -> tuple[SlotBackup | None, list[SlotBackup]]:
    history = store.backups(database)
    usable = [b for b in history if not b.in_recovery and not b.read_only]
    return (usable[-1] if usable else None), usable
