"""The logical replication slot backup: what is captured, where it is kept, how it is read back.

Pure Python (no pulumi, no boto3), shared by the stacks (the CronJob in ``components/kubernetes.py``
runs ``CAPTURE_SQL`` with psql and uploads its one-line JSON result) and the runbooks
(``runbooks/slots.py`` captures the same document, stores it, and recreates slots from it).

Why: a physical replica has none of its primary's logical slots, and a point-in-time restore has
none either (PostgreSQL keeps slots in ``pg_replslot/``, outside the WAL a replica replays; before
PostgreSQL 17 nothing synchronises them). A CDC consumer whose slot is gone after a failover stops,
or, if someone recreates the slot by hand without knowing where the consumer was, silently skips
what changed in between. The document records, per logical slot of the database: name, output
plugin, two-phase flag, and the confirmed flush position (how far the consumer acknowledged), plus
the database's publications (the names a ``pgoutput`` consumer subscribes with) and the server's
WAL position and clock at capture, so a later recreation can say which changes the consumer must
re-read.

Document (``SCHEMA_VERSION`` 1)::

    {"schema_version": 1, "database": "payments", "captured_at": 1764748800.123,
     "server_lsn": "0/3000148", "in_recovery": false, "read_only": false,
     "slots": [{"name": "cdc", "plugin": "pgoutput", "two_phase": false,
                "confirmed_flush_lsn": "0/3000110", "restart_lsn": "0/30000D8", "active": true}],
     "publications": [{"name": "cdc_pub", "all_tables": false, "tables": ["public.orders"],
                       "insert": true, "update": true, "delete": true, "truncate": true}]}

Stored as ``regionpair/slots/<logical database>/<YYYYMMDDTHHMMSS.ffffffZ>.json`` in the backups
bucket of each region (AWS), or the sandbox's ``DIR/slots/<region>/<database>/`` — names sort by
capture time, so the newest is the last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import cast

SCHEMA_VERSION = 1
KEY_PREFIX = "regionpair/slots"

CAPTURE_SQL = """SELECT json_build_object(
  'schema_version', 1,
  'database', current_database(),
  'captured_at', extract(epoch FROM clock_timestamp())::float8,
  'in_recovery', pg_is_in_recovery(),
  'read_only', current_setting('default_transaction_read_only')::bool,
  'server_lsn', CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text,
  'slots', coalesce((SELECT json_agg(json_build_object(
      'name', s.slot_name, 'plugin', s.plugin, 'two_phase', s.two_phase, 'active', s.active,
      'confirmed_flush_lsn', s.confirmed_flush_lsn::text, 'restart_lsn', s.restart_lsn::text) ORDER BY s.slot_name)
    FROM pg_replication_slots s
    WHERE s.slot_type = 'logical' AND NOT s.temporary AND s.database = current_database()), '[]'::json),
  'publications', coalesce((SELECT json_agg(json_build_object(
      'name', p.pubname, 'all_tables', p.puballtables, 'insert', p.pubinsert, 'update', p.pubupdate,
      'delete', p.pubdelete, 'truncate', p.pubtruncate,
      'tables', coalesce((SELECT json_agg(format('%I.%I', t.schemaname, t.tablename)
                                          ORDER BY t.schemaname, t.tablename)
                          FROM pg_publication_tables t WHERE t.pubname = p.pubname), '[]'::json))
      ORDER BY p.pubname)
    FROM pg_publication p), '[]'::json))"""
"""One row, one column: the document. Readable by the RDS master user (and any role that may read
``pg_replication_slots`` and ``pg_publication``); changes nothing."""

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_NAME = re.compile(r"^[a-z0-9_]{1,63}$")
"""PostgreSQL's own rule for slot names: lower-case letters, digits and underscores."""


class SlotDocumentError(ValueError):
    """A slot backup document that is not what ``CAPTURE_SQL`` writes; names the field."""


def lsn_to_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class SlotDef:
    name: str
    plugin: str
    confirmed_flush_lsn: str | None
    """None: the slot never reached a consistent point (nothing confirmed)."""
    restart_lsn: str | None = None
    two_phase: bool = False
    active: bool = False


@dataclass(frozen=True)
class PublicationDef:
    name: str
    all_tables: bool
    tables: tuple[str, ...] = ()
    insert: bool = True
    update: bool = True
    delete: bool = True
    truncate: bool = True


@dataclass(frozen=True)
class SlotBackup:
    database: str
    """The PostgreSQL database the slots decode (``current_database()`` at capture)."""
    captured_at: float
    server_lsn: str
    in_recovery: bool
    slots: tuple[SlotDef, ...]
    read_only: bool = False
    """``default_transaction_read_only`` was on: a fenced server (the sandbox's fence)."""
    publications: tuple[PublicationDef, ...] = ()
    where: str = ""
    """Where it was read from (set by the store)."""
    raw: dict = field(default_factory=dict, compare=False, repr=False)


def _need(doc: dict, key: str, kind, where: str):
    if key not in doc:
        raise SlotDocumentError(f"{where}.{key} is missing")
    value = doc[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool) and kind is not object):
        raise SlotDocumentError(f"{where}.{key} = {value!r} is not {getattr(kind, '__name__', kind)}")
    return value


def _lsn(value, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _LSN.match(value):
        raise SlotDocumentError(f"{where} = {value!r} is not a WAL position such as 0/3000148")
    return value


def parse(doc: dict, where: str = "slot backup") -> SlotBackup:
    """The document as written by ``CAPTURE_SQL``; SlotDocumentError names what is wrong."""
    if not isinstance(doc, dict):
        raise SlotDocumentError(f"{where}: not a JSON object")
    version = _need(doc, "schema_version", int, where)
    if version != SCHEMA_VERSION:
        raise SlotDocumentError(f"{where}.schema_version = {version}: this version reads {SCHEMA_VERSION}")
    slots = []
    for i, s in enumerate(_need(doc, "slots", list, where)):
        at = f"{where}.slots[{i}]"
        if not isinstance(s, dict):
            raise SlotDocumentError(f"{at}: not an object")
        name = _need(s, "name", str, at)
        if not _NAME.match(name):
            raise SlotDocumentError(f"{at}.name = {name!r}: slot names are lower-case letters, digits and "
                                    "underscores (at most 63)")
        slots.append(SlotDef(name=name, plugin=_need(s, "plugin", str, at),
                             confirmed_flush_lsn=_lsn(s.get("confirmed_flush_lsn"), f"{at}.confirmed_flush_lsn", True),
                             restart_lsn=_lsn(s.get("restart_lsn"), f"{at}.restart_lsn", True),
                             two_phase=bool(s.get("two_phase", False)), active=bool(s.get("active", False))))
    pubs = []
    for i, p in enumerate(doc.get("publications") or []):
        at = f"{where}.publications[{i}]"
        if not isinstance(p, dict):
            raise SlotDocumentError(f"{at}: not an object")
        pubs.append(PublicationDef(name=_need(p, "name", str, at), all_tables=bool(p.get("all_tables")),
                                   tables=tuple(p.get("tables") or ()),
                                   **{k: bool(p.get(k, True)) for k in ("insert", "update", "delete", "truncate")}))
    captured = doc.get("captured_at")
    if not isinstance(captured, (int, float)) or isinstance(captured, bool):
        raise SlotDocumentError(f"{where}.captured_at = {captured!r} is not epoch seconds")
    return SlotBackup(database=_need(doc, "database", str, where), captured_at=float(captured),
                      server_lsn=cast(str, _lsn(doc.get("server_lsn"), f"{where}.server_lsn")),  # required: never None
                      in_recovery=bool(doc.get("in_recovery", False)), slots=tuple(slots),
                      read_only=bool(doc.get("read_only", False)),
                      publications=tuple(pubs), raw=doc)


def loads(text: str, where: str) -> SlotBackup:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlotDocumentError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    backup = parse(doc, where)
    return SlotBackup(**{**backup.__dict__, "where": where})


def stamp(captured_at: float) -> str:
    """The sortable file/object name of a capture (UTC, microseconds)."""
    micros = int(captured_at * 1_000_000)  # floor, as the CronJob's jq does
    whole = datetime.fromtimestamp(micros // 1_000_000, timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{whole}.{micros % 1_000_000:06d}Z.json"


def key(logical_database: str, captured_at: float) -> str:
    return f"{KEY_PREFIX}/{logical_database}/{stamp(captured_at)}"
