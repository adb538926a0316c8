"""Backup metrics in the Prometheus text format, in a file the runbooks update (for node_exporter's
textfile collector: the file is replaced atomically, never seen half-written).

Each run updates only its own series; the others in the file are kept, so one file holds the last
backup, verification, restore and lag of every database, whichever runbook wrote them last.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from runbooks.backups import Sample

LAST_BACKUP = "regionpair_backup_last_success_timestamp_seconds"
VERIFY_OK = "regionpair_backup_verification_success"
VERIFY_SECONDS = "regionpair_backup_verification_duration_seconds"
VERIFY_AT = "regionpair_backup_verification_timestamp_seconds"
RESTORE_SECONDS = "regionpair_restore_duration_seconds"
REPLICATION_LAG = "regionpair_replication_lag_seconds"
SLOT_BACKUP_AT = "regionpair_slot_backup_last_success_timestamp_seconds"
SLOT_COUNT = "regionpair_slot_backup_slots"
SLOT_LAG_BYTES = "regionpair_slot_consumer_lag_bytes"
SLOT_GAP_BYTES = "regionpair_slot_recreate_gap_bytes"
CACHE_SNAPSHOT_AT = "regionpair_cache_snapshot_last_success_timestamp_seconds"
CACHE_SNAPSHOT_KEYS = "regionpair_cache_snapshot_keys"
CACHE_VERIFY_OK = "regionpair_cache_verification_success"
CACHE_RESTORE_SECONDS = "regionpair_cache_restore_duration_seconds"

HELP = {
    LAST_BACKUP: "Time of the newest successful backup (snapshot or copy) of the database in the region.",
    VERIFY_OK: "1 if the newest backup verification of the database passed, 0 if it failed.",
    VERIFY_SECONDS: "Duration of the newest backup verification (restore, checks, teardown).",
    VERIFY_AT: "Time the newest backup verification ended.",
    RESTORE_SECONDS: "Duration of the newest restore of the database to a new instance.",
    REPLICATION_LAG: "Replication lag of the database's replica, as measured by the newest backup runbook run.",
    SLOT_BACKUP_AT: "Time of the newest backup of the database's logical replication slot definitions.",
    SLOT_COUNT: "Logical replication slots in the newest slot backup of the database.",
    SLOT_LAG_BYTES: "WAL between the primary's position and what the slot's consumer confirmed, at the newest slot "
                    "backup: at least this much a failover makes the consumer re-read.",
    CACHE_SNAPSHOT_AT: "Time of the newest manual snapshot (kind manual) or export (kind export) of the cache.",
    CACHE_SNAPSHOT_KEYS: "Keys in the newest manual snapshot of the cache.",
    CACHE_VERIFY_OK: "1 if the newest restore of the cache's snapshot held exactly its keys (digest equal), else 0.",
    CACHE_RESTORE_SECONDS: "Duration of the newest restore of the cache's snapshot into a new server.",
    SLOT_GAP_BYTES: "WAL between the consumer's confirmed position and where the recreated slot starts: what the "
                    "consumer must re-read (negative: what it saw that the new server lacks).",
}

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def read(path: Path) -> dict[str, dict[tuple, float]]:
    """The series in a file this module wrote: name → {labels: value}. Comments are skipped."""
    series: dict[str, dict[tuple, float]] = {}
    if not Path(path).exists():
        return series
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line.strip())
        if not m:
            continue  # not ours to judge: it is rewritten from what parses
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m.group(3) or "")}
        series.setdefault(m.group(1), {})[_key(labels)] = float(m.group(4))
    return series


def render(series: dict[str, dict[tuple, float]]) -> str:
    lines = []
    for name in sorted(series):
        lines.append(f"# HELP {name} {HELP.get(name, name)}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in sorted(series[name].items()):
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{text}}} {value!r}" if text else f"{name} {value!r}")
    return "\n".join(lines) + "\n"


def update(path: Path, samples: list[Sample]) -> Path:
    """Merge ``samples`` into the file and replace it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = read(path)
    for s in samples:
        series.setdefault(s.name, {})[_key(s.labels)] = float(s.value)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(series))
    tmp.chmod(0o644)
    tmp.replace(path)
    return path
