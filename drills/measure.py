"""RTO and RPO from what clients saw acknowledged.

The workload logs every acknowledged write (id, time, region) and every error, one JSON line
each. After a failover, the surviving ids are read back from the new primary. Then:

- acknowledged writes lost: acked ids missing from the new primary (the RPO in writes);
- RPO seconds: from the oldest lost write to the start of the outage (0 when nothing was lost);
- RTO: the client-observed write outage, from the last acknowledged write before the fault to
  the first acknowledged write in the target region after it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Ack:
    id: str
    t: float
    region: str
    database: str
    system: str = "postgres"
    """postgres | kafka | s3 (lines without it are PostgreSQL writes: older logs still parse)."""
    partition: int | None = None
    """Kafka: the partition the record went to (the replicator keeps it)."""


@dataclass(frozen=True)
class Consumed:
    id: str
    t: float
    region: str
    group: str


@dataclass
class WorkloadLog:
    acks: list[Ack]
    errors: list[dict]
    consumed: list[Consumed] = field(default_factory=list)
    """Kafka records a consumer group processed (one per processing: a duplicate appears twice)."""

    @classmethod
    def read(cls, path: str | Path) -> "WorkloadLog":
        acks, errors, consumed = [], [], []
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"workload log {p} does not exist; did the workload start?")
        for line in p.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed writer
            if e.get("event") == "consumed":
                consumed.append(Consumed(str(e["id"]), float(e["t"]), e.get("region", "?"), e.get("group", "?")))
            elif e.get("ok"):
                acks.append(Ack(str(e["id"]), float(e["t"]), e.get("region", "?"), e.get("database", "?"),
                                e.get("system", "postgres"), e.get("partition")))
            else:
                errors.append(e)
        acks.sort(key=lambda a: a.t)
        return cls(acks, errors, consumed)

    def of(self, system: str) -> "WorkloadLog":
        """Only one system's acknowledgements and errors."""
        return WorkloadLog([a for a in self.acks if a.system == system],
                           [e for e in self.errors if e.get("system", "postgres") == system],
                           self.consumed if system == "kafka" else [])

    def rate(self, until: float | None = None, window: float = 3.0) -> float:
        """Acknowledged writes per second over the ``window`` seconds before ``until``."""
        if not self.acks:
            return 0.0
        end = until if until is not None else self.acks[-1].t
        n = sum(1 for a in self.acks if end - window < a.t <= end)
        return n / window


@dataclass
class Outcome:
    acknowledged: int
    errors: int
    lost: list[Ack]
    rto_seconds: float | None
    outage: tuple[float, float] | None
    rpo_seconds: float
    per_database: dict[str, dict] = field(default_factory=dict)

    @property
    def acked_lost(self) -> int:
        return len(self.lost)


def analyse(log: WorkloadLog, *, fault_at: float, target_region: str,
            surviving: dict[str, set[str]] | None) -> Outcome:
    """``surviving``: per database, the ids the new primary holds (None: not read back).
    PostgreSQL writes only (see ``analyse_stream`` for Kafka and S3)."""
    log = log.of("postgres")
    before = [a for a in log.acks if a.t <= fault_at]
    after = [a for a in log.acks if a.t > fault_at and a.region == target_region]
    outage_start = before[-1].t if before else fault_at
    rto = (after[0].t - outage_start) if after else None
    lost: list[Ack] = []
    per_db: dict[str, dict] = defaultdict(lambda: {"acknowledged": 0, "acked_lost": 0})
    for a in log.acks:
        per_db[a.database]["acknowledged"] += 1
        if surviving is not None and a.id not in surviving.get(a.database, set()):
            lost.append(a)
            per_db[a.database]["acked_lost"] += 1
    rpo = max(0.0, outage_start - min(a.t for a in lost)) if lost else 0.0
    return Outcome(len(log.acks), len(log.errors), lost, rto,
                   (outage_start, after[0].t) if after else None, rpo, dict(per_db))


def analyse_stream(log: WorkloadLog, system: str, *, outage_start: float, surviving: set[str] | None) -> dict:
    """Kafka or S3: acknowledged, lost (acked ids the active region does not hold), the RPO in
    seconds (oldest lost ack to the outage's start) and, for Kafka, what the consumer group saw:
    duplicates (records processed more than once), skipped (held by the active cluster,
    acknowledged, never processed, although the group processed a later record of the same
    partition: it moved past them) and unconsumed (the tail it had not reached when the drill
    ended — a slow group, not a skipping one)."""
    sub = log.of(system)
    lost = [a for a in sub.acks if surviving is not None and a.id not in surviving]
    out = {"acknowledged": len(sub.acks), "acked_lost": len(lost) if surviving is not None else None,
           "errors": len(sub.errors),
           "rpo_seconds": max(0.0, outage_start - min(a.t for a in lost)) if lost else 0.0,
           "lost_ids": [a.id for a in lost[:20]]}
    if system == "kafka":
        seen: dict[str, int] = defaultdict(int)
        for c in log.consumed:
            seen[c.id] += 1
        out["consumed"] = len(log.consumed)
        out["duplicates"] = sum(n - 1 for n in seen.values())
        if surviving is None:
            out["skipped"] = out["unconsumed"] = None
        else:
            reached: dict[int | None, float] = defaultdict(lambda: float("-inf"))
            for a in sub.acks:  # per partition, the newest record the group processed
                if a.id in seen:
                    reached[a.partition] = max(reached[a.partition], a.t)
            missed = [a for a in sub.acks if a.id in surviving and a.id not in seen]
            out["skipped"] = sum(1 for a in missed if a.t < reached[a.partition])
            out["unconsumed"] = len(missed) - out["skipped"]
    return out


def largest_pause(acks: Iterable[Ack], start: float, end: float) -> tuple[float, float] | None:
    """The longest gap between consecutive acknowledged writes that overlaps [start, end]
    (a planned switchover's write pause)."""
    ts = sorted(a.t for a in acks)
    best = None
    for prev, nxt in zip(ts, ts[1:]):
        if nxt < start or prev > end:
            continue
        if best is None or nxt - prev > best[1] - best[0]:
            best = (prev, nxt)
    return best


def per_second(log: WorkloadLog, bucket: float = 0.1) -> dict[str, list[tuple[float, float]]]:
    """Acked writes per second, per region, in ``bucket``-second bins (zeros included)."""
    log = log.of("postgres")
    if not log.acks:
        return {}
    first, last = log.acks[0].t, log.acks[-1].t
    n = int(math.ceil((last - first) / bucket)) + 1
    out = {}
    for region in sorted({a.region for a in log.acks}):
        counts = [0] * n
        for a in log.acks:
            if a.region == region:
                counts[int((a.t - first) / bucket)] += 1
        out[region] = [(first + i * bucket, c / bucket) for i, c in enumerate(counts)]
    return out


def _window(before: list, after: list, fault_at: float) -> dict:
    start = before[-1].t if before else fault_at
    end = after[0].t if after else None
    return {"seconds": None if end is None else end - start, "from": start, "to": end}


def recovery(log: WorkloadLog, *, fault_at: float, target_region: str, systems: Iterable[str],
             planned: bool = False, window: float = 60.0) -> dict:
    """The RTO of each system as its clients saw it, and the service's.

    - writers of each store: from its last acknowledged write before the fault to its first
      acknowledged write in ``target_region`` (planned: the longest pause between its
      acknowledged writes within ``window`` seconds of the fault);
    - Kafka's consumers, where the log has any: from the last record the group processed before
      the fault to the first it processed in ``target_region`` (planned: their longest pause);
    - the service: from the first of those outages to begin to the last to end — the service is
      back when the last of its parts is. None when any part never came back (not measured)."""
    parts: dict[str, dict[str, dict]] = {}
    for system in systems:
        sub = log.of(system)
        feeds = {"writers": sub.acks}
        if system == "kafka" and log.consumed:
            feeds["consumers"] = sorted(log.consumed, key=lambda c: c.t)
        for role, events in feeds.items():
            if planned:
                pause = largest_pause(events, fault_at, fault_at + window)
                w = {"seconds": pause[1] - pause[0], "from": pause[0], "to": pause[1]} if pause else \
                    {"seconds": None, "from": fault_at, "to": None}
            else:
                w = _window([e for e in events if e.t <= fault_at],
                            [e for e in events if e.t > fault_at and e.region == target_region], fault_at)
            parts.setdefault(system, {})[role] = w
    windows = [(f"{system} {role}", w) for system, roles in parts.items() for role, w in roles.items()]
    back = [w for _, w in windows if w["to"] is not None]
    service = None
    if windows and len(back) == len(windows):
        service = max(w["to"] for w in back) - min(w["from"] for _, w in windows)
    slowest = max(windows, key=lambda x: x[1]["to"] if x[1]["to"] is not None else float("inf"))[0] if windows else None
    return {"service_seconds": service, "last_back": slowest, "systems": parts}
