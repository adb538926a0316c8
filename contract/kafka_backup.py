"""Kafka topic backups in the backups bucket: the layout, the Parquet files, and what a replay reads.

Layout (keys under the backups bucket, or the sandbox's backups directory, the same either way)::

    kafka/topic=<t>/year=YYYY/month=MM/day=DD/hour=HH/<t>+<partition>+<first offset, 20 digits>.parquet
    kafka/topic=<t>/_watermark.json        the backup's position: per partition the next offset to back
                                           up, and the time at which that position was the head
    kafka/offsets/year=…/hour=HH/groups-<epoch ms>.json   consumer-group offset snapshots

The hour is the record's own timestamp (UTC) on the sandbox; in AWS the S3 sink connector names
files by the time it writes them (Aiven's ``{{timestamp:unit=…}}`` is the connector's wall clock),
so a record may sit in a later hour than its timestamp, never an earlier one. A replay therefore
reads every hour from the hour of ``--from-time`` up to the hour of ``--to-time`` plus a late
allowance, and filters each record by its own timestamp: the same answer for both layouts.

Each file holds records of one partition, in offset order, with the columns of ``SCHEMA``: the
partition, offset, timestamp (ms), key and value (bytes, null kept), and headers. A record's
identity for "exactly the same" is ``record_digest``: SHA-256 over key, value, headers and
timestamp, each length-prefixed (a null is distinct from empty).

Retention per topic class (planning documents 003 and 004): ``critical`` 30 days (004: "30 days
for critical topics"), ``standard`` 30 days (003's table: Kafka topic backups kept 30 days), and
consumer-group offset snapshots 7 days (003's table: "Consumer Offsets … 7 days"). In AWS these
are lifecycle rules on the backups bucket per prefix (``components/kafka_backup.py``); on the
sandbox ``prune`` applies them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Protocol

PREFIX = "kafka"
OFFSETS = f"{PREFIX}/offsets"
RETENTION_DAYS = {"critical": 30, "standard": 30}
"""Per topic class, days a topic's backup files are kept (documents 004 and 003)."""
OFFSETS_RETENTION_DAYS = 7
"""Consumer-group offset snapshots (document 003)."""
MIN_CRITICAL_DAYS = 30
"""Document 004: critical topics are kept 30 days; a shorter setting is refused."""
_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_FILE = re.compile(r"^(?P<topic>[a-zA-Z0-9._-]+)\+(?P<partition>\d+)\+(?P<offset>\d{20})\.parquet$")


class BackupFormatError(ValueError):
    """A file in the backup is not what this layout writes (named in the message)."""


def check_topic(topic: str) -> str:
    """Kafka's own rule for topic names (legal characters, at most 249), which also keeps them
    safe inside an S3 key."""
    if not _TOPIC.match(topic) or topic in (".", ".."):
        raise ValueError(f"topic {topic!r}: Kafka topic names are 1-249 of a-z A-Z 0-9 . _ -")
    return topic


def topic_prefix(topic: str) -> str:
    return f"{PREFIX}/topic={check_topic(topic)}/"


def hour_prefix(topic: str, hour_start: float) -> str:
    t = datetime.fromtimestamp(hour_start, tz=timezone.utc)
    return f"{topic_prefix(topic)}year={t:%Y}/month={t:%m}/day={t:%d}/hour={t:%H}/"


def file_key(topic: str, partition: int, first_offset: int, timestamp_ms: int) -> str:
    return f"{hour_prefix(topic, timestamp_ms / 1000.0)}{topic}+{partition}+{first_offset:020d}.parquet"


def watermark_key(topic: str) -> str:
    return f"{topic_prefix(topic)}_watermark.json"


def offsets_key(at: float) -> str:
    t = datetime.fromtimestamp(at, tz=timezone.utc)
    return f"{OFFSETS}/year={t:%Y}/month={t:%m}/day={t:%d}/hour={t:%H}/groups-{int(at * 1000)}.json"


def parse_file_key(key: str) -> tuple[str, int, int]:
    """(topic, partition, first offset) of a backup file's key."""
    m = _FILE.match(key.rsplit("/", 1)[-1])
    if not m:
        raise BackupFormatError(f"{key}: not a backup file name (<topic>+<partition>+<20-digit offset>.parquet)")
    return m.group("topic"), int(m.group("partition")), int(m.group("offset"))


def hours(start: float, end: float) -> list[float]:
    """The start of every UTC hour that overlaps [start, end]."""
    first = int(start // 3600) * 3600
    return [float(h) for h in range(first, int(end) + 1, 3600)]


# ---- records and Parquet -----------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    def digest(self) -> str:
        return record_digest(self.key, self.value, self.headers, self.timestamp_ms)


def _field(h, data: bytes | None) -> None:
    if data is None:
        h.update(b"\xff")
    else:
        h.update(b"\x00" + struct.pack(">Q", len(data)) + data)


def record_digest(key: bytes | None, value: bytes | None, headers, timestamp_ms: int) -> str:
    """What makes two records the same for a replay: key, value, headers (in order) and timestamp."""
    h = hashlib.sha256()
    _field(h, key)
    _field(h, value)
    h.update(struct.pack(">Q", len(headers or ())))
    for name, data in headers or ():
        _field(h, name.encode())
        _field(h, data)
    h.update(struct.pack(">q", int(timestamp_ms)))
    return h.hexdigest()


def _schema():
    import pyarrow as pa
    return pa.schema([
        ("partition", pa.int32()), ("offset", pa.int64()), ("timestamp_ms", pa.int64()),
        ("key", pa.binary()), ("value", pa.binary()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
    ])


def encode(records: list[Record]) -> bytes:
    """One Parquet file (zstd) of records of one partition, in offset order."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    if not records:
        raise ValueError("no records to encode")
    if len({r.partition for r in records}) != 1:
        raise ValueError("a backup file holds one partition's records")
    table = pa.table({
        "partition": [r.partition for r in records], "offset": [r.offset for r in records],
        "timestamp_ms": [r.timestamp_ms for r in records], "key": [r.key for r in records],
        "value": [r.value for r in records],
        "headers": [[{"key": k, "value": v} for k, v in r.headers] for r in records],
    }, schema=_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def decode(data: bytes, key: str = "?", partition: int | None = None) -> list[Record]:
    """Records of one backup file. Besides this module's own columns it reads a connector's
    ``offset, timestamp, key, value[, headers]`` (Aiven's field names; the partition then comes from
    the file name, ``partition``): that shape is written here from the connector's documented field
    list, not from a file the connector wrote (docs/backups.md)."""
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise BackupFormatError(f"{key}: not a readable Parquet file ({exc})") from None
    names = table.column_names
    n = table.num_rows
    parts: list[Any] | None
    if "partition" not in names and partition is not None:
        parts = [partition] * n
    else:
        parts = table.column("partition").to_pylist() if "partition" in names else None
    ts_col = "timestamp_ms" if "timestamp_ms" in names else "timestamp" if "timestamp" in names else None
    missing = [c for c, ok in (("partition", parts is not None), ("offset", "offset" in names),
                               ("timestamp_ms", ts_col is not None), ("key", "key" in names),
                               ("value", "value" in names)) if not ok]
    if missing or parts is None:
        raise BackupFormatError(f"{key}: Parquet file without column(s) {', '.join(missing)}")
    stamps = [int(t.timestamp() * 1000) if hasattr(t, "timestamp") else t for t in table.column(ts_col).to_pylist()]
    headers = table.column("headers").to_pylist() if "headers" in names else [None] * n

    def raw(v):
        return v.encode() if isinstance(v, str) else v
    return [Record(p, o, t, raw(k), raw(v), tuple((h["key"], raw(h["value"])) for h in (hs or ())))
            for p, o, t, k, v, hs in zip(parts, table.column("offset").to_pylist(), stamps,
                                         table.column("key").to_pylist(), table.column("value").to_pylist(), headers)]


# ---- where backups are stored ------------------------------------------------------------------


class BackupStore(Protocol):
    """The backups bucket (AWS: S3; the sandbox: its backups directory), by key."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """None when there is no such key."""

    def list(self, prefix: str) -> list[str]:
        """Every key under the prefix, sorted."""

    def delete(self, key: str) -> None: ...

    def describe(self) -> str:
        """Where this is, for messages (``s3://bucket``, a directory)."""


@dataclass
class Watermark:
    """Per partition the next offset to back up, and the time (epoch s) at which the backup had
    caught up to the head (its position was the topic's end offsets then)."""

    topic: str
    next_offsets: dict[int, int]
    caught_up_at: float | None
    written_at: float

    def to_json(self) -> bytes:
        return json.dumps({"topic": self.topic, "next_offsets": {str(p): o for p, o in self.next_offsets.items()},
                           "caught_up_at": self.caught_up_at, "written_at": self.written_at}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Watermark":
        d = json.loads(data)
        return cls(d["topic"], {int(p): int(o) for p, o in d["next_offsets"].items()}, d.get("caught_up_at"),
                   d["written_at"])


def read_watermark(store: BackupStore, topic: str) -> Watermark | None:
    data = store.get(watermark_key(topic))
    return Watermark.from_json(data) if data is not None else None


def offsets_at(store: BackupStore, at: float) -> dict | None:
    """The newest consumer-group offset snapshot taken at or before ``at`` (None: none kept)."""
    best = None
    for key in store.list(OFFSETS + "/"):
        m = re.search(r"groups-(\d+)\.json$", key)
        if m and int(m.group(1)) / 1000.0 <= at and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), key)
    if best is None:
        return None
    data = store.get(best[1])
    return json.loads(data) if data is not None else None


def snapshot_offsets(store: BackupStore, cluster, topics, at: float, source: str = "") -> tuple[str, dict]:
    """Write every consumer group's committed offsets on ``topics`` (``cluster.group_offsets``) as one
    snapshot under ``kafka/offsets/…/groups-<ms>.json``; returns its key and document."""
    doc = {"at": at, "source": source, "topics": sorted(topics), "groups": cluster.group_offsets(sorted(topics))}
    key = offsets_key(at)
    store.put(key, json.dumps(doc, sort_keys=True).encode())
    return key, doc


def backed_up_topics(store: BackupStore) -> list[str]:
    out = set()
    for key in store.list(f"{PREFIX}/topic="):
        out.add(key[len(f"{PREFIX}/topic="):].split("/", 1)[0])
    return sorted(out)


# ---- what a replay reads -------------------------------------------------------------------------


@dataclass
class Selection:
    """The records of a topic's backup whose timestamp is in [start, end), and what proves the
    backup covers the whole range (or why it does not)."""

    topic: str
    start: float
    end: float
    records: dict[int, list[Record]] = field(default_factory=dict)
    """Per partition, in offset order, each offset once."""
    files: int = 0
    partitions: int = 0
    """The source topic's partition count as the backup knows it (highest partition + 1, or the watermark's)."""
    problems: list[str] = field(default_factory=list)
    """Why the backup cannot prove the range complete (empty: it can)."""
    duplicates: int = 0
    """Records held twice (a backup file rewritten after a crash); kept once."""

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.records.values())

    def per_partition(self) -> dict[int, dict]:
        return {p: {"count": len(rs), "first_offset": rs[0].offset, "last_offset": rs[-1].offset}
                for p, rs in sorted(self.records.items()) if rs}


def select(store: BackupStore, topic: str, start: float, end: float, late_s: float = 3600.0) -> Selection:
    """Read the topic's backup files of every hour from ``start``'s to ``end + late_s``, keep the
    records with ``start <= timestamp < end``, and check the backup covers the range:

    - per partition, no offset is missing between the first and last record kept;
    - the backup begins no later than ``start``: in each partition, a record older than ``start``
      is held, or its first record is offset 0 (nothing was before it);
    - the backup reaches past ``end``: in each partition a record at or after ``end`` is held, or
      the watermark says the backup had caught up with the head at or after ``end``."""
    sel = Selection(topic, start, end)
    wm = read_watermark(store, topic)
    first_seen: dict[int, Record] = {}
    last_seen: dict[int, Record] = {}
    kept: dict[int, dict[int, Record]] = {}
    for hour in hours(start, end + late_s):
        for key in store.list(hour_prefix(topic, hour)):
            if not key.endswith(".parquet"):
                continue
            t, partition, _ = parse_file_key(key)
            data = store.get(key)
            if data is None:
                continue  # expired between list and get
            sel.files += 1
            for r in decode(data, key, partition):
                if r.partition != partition:
                    raise BackupFormatError(f"{key}: holds a record of partition {r.partition}")
                if partition not in first_seen or r.offset < first_seen[partition].offset:
                    first_seen[partition] = r
                if partition not in last_seen or r.offset > last_seen[partition].offset:
                    last_seen[partition] = r
                if start * 1000 <= r.timestamp_ms < end * 1000:
                    held = kept.setdefault(partition, {})
                    if r.offset in held:
                        sel.duplicates += 1
                    held[r.offset] = r
    sel.records = {p: [rs[o] for o in sorted(rs)] for p, rs in sorted(kept.items())}
    known = set(first_seen) | set(wm.next_offsets if wm else ())
    sel.partitions = (max(known) + 1) if known else 0
    for p, rs in sel.records.items():
        offsets = [r.offset for r in rs]
        holes = (offsets[-1] - offsets[0] + 1) - len(offsets)
        if holes:
            sel.problems.append(f"partition {p}: {holes} offset(s) between {offsets[0]} and {offsets[-1]} are not "
                                "in the backup (compaction, transactions, or files lost)")
    # the range's low end: the scan starts at start's hour, so an older record may sit in an earlier
    # hour; a partition whose first scanned record is newer than start and not offset 0 needs one
    for p in sorted(first_seen):
        first = first_seen[p]
        if first.timestamp_ms >= start * 1000 and first.offset > 0 and not _older_held(store, topic, p, start, first):
            sel.problems.append(f"partition {p}: the backup's oldest record from {_iso(start)} on is offset "
                                f"{first.offset} and nothing older is held: records before it were never backed "
                                "up or have expired")
    for p in range(sel.partitions):
        reached = last_seen.get(p)
        if reached is not None and reached.timestamp_ms >= end * 1000:
            continue
        if wm is not None and wm.caught_up_at is not None and wm.caught_up_at >= end:
            continue
        seen = f"its newest record is {_iso(reached.timestamp_ms / 1000)}" if reached else "it holds no record"
        caught = f"; the backup was last caught up at {_iso(wm.caught_up_at)}" if wm and wm.caught_up_at else ""
        sel.problems.append(f"partition {p}: the backup does not reach {_iso(end)} yet ({seen}{caught})")
    return sel


def _older_held(store: BackupStore, topic: str, partition: int, start: float, first: Record) -> bool:
    """Whether an hour before ``start``'s holds a file of the partition (the record just before the
    range): the files are named by first offset, so one with a smaller offset is enough."""
    prefix = topic_prefix(topic)
    for key in store.list(prefix):
        if not key.endswith(".parquet"):
            continue
        _, p, off = parse_file_key(key)
        if p == partition and off < first.offset:
            return True
    return False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- retention ----------------------------------------------------------------------------------


def retention_days(topic_class: str, classes: dict[str, int] | None = None) -> int:
    classes = classes or RETENTION_DAYS
    if topic_class not in classes:
        raise ValueError(f"topic class {topic_class!r}: one of {', '.join(sorted(classes))}")
    return classes[topic_class]


def check_classes(classes: dict[str, int]) -> dict[str, int]:
    """Retention days per class: whole days ≥ 1, and ``critical`` at least 30 (document 004)."""
    for name, days in classes.items():
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValueError(f"retention of topic class {name!r}: {days!r} is not a whole number of days ≥ 1")
    if "critical" in classes and classes["critical"] < MIN_CRITICAL_DAYS:
        raise ValueError(f"retention of topic class 'critical': {classes['critical']} days; planning document 004 "
                         f"keeps critical topics {MIN_CRITICAL_DAYS} days; set at least {MIN_CRITICAL_DAYS}")
    return classes


def expired(store: BackupStore, topics: dict[str, str], now: float, classes: dict[str, int] | None = None,
            offsets_days: int = OFFSETS_RETENTION_DAYS) -> list[str]:
    """The keys older than their class's retention (by the hour in the key): what S3's lifecycle
    expiry would remove (it counts days from the object's creation; the hour is that here)."""
    out = []
    for topic, cls in topics.items():
        limit = now - retention_days(cls, classes) * 86400
        out += [k for k in store.list(topic_prefix(topic)) if k.endswith(".parquet") and _key_hour(k) + 3600 <= limit]
    limit = now - offsets_days * 86400
    out += [k for k in store.list(OFFSETS + "/") if _key_hour(k) + 3600 <= limit]
    return out


def _key_hour(key: str) -> float:
    m = re.search(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/", key)
    if not m:
        raise BackupFormatError(f"{key}: no year=/month=/day=/hour= in the key")
    y, mo, d, h = (int(g) for g in m.groups())
    return datetime(y, mo, d, h, tzinfo=timezone.utc).timestamp()


def group_records(records: Iterable[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


class DirStore:
    """The sandbox's backups store: keys as files under a directory (``DIR/backups``), written
    atomically (a reader never sees half a file)."""

    def __init__(self, root):
        from pathlib import Path
        self.root = Path(root)

    def _path(self, key: str):
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"key {key!r}: not a relative key")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        import os
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for p in base.rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                key = p.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.root)
