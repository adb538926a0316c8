"""The SQL of backup verification, shared by the adapters (any DB-API-like connection with
``execute(...).fetchone()/fetchall()`` in autocommit mode: psycopg 3).

- ``reference``: on the live source, lock the chosen tables against writes (SHARE: readers go on,
  writers wait), sum them, read the database clock, and hold the lock until the clock has passed
  the restore time. A restore to that time then holds exactly the summed rows.
- ``table_states`` and ``amcheck`` on the restored instance.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import psycopg

from runbooks.backups.ports import TableState
from runbooks.core.errors import BadInput

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def check_table_names(tables: list[str]) -> None:
    for t in tables:
        if not _TABLE.match(t):
            raise BadInput(f"--table {t!r}: give a table as name or schema.name (lowercase letters, digits, _)")


def _ident(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


def table_state(conn: Any, table: str) -> TableState:
    """Row count and an order-independent digest (sum of the first 64 bits of each row's md5)."""
    rows, digest = conn.execute(
        f"SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text "
        f"FROM {_ident(table)} t").fetchone()
    return TableState(rows=int(rows), checksum=str(digest))


def missing_tables(conn: Any, tables: list[str]) -> list[str]:
    return [t for t in tables if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]


def user_tables(conn: Any, limit: int = 200) -> list[str]:
    """Ordinary tables outside the system schemas (schema.name), at most ``limit``."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_%%' ORDER BY 1 LIMIT %s", (limit,)).fetchall()
    return [r[0] for r in rows]


def reference(conn: Any, tables: list[str], granularity: float, lock_timeout_s: float,
              sleep=time.sleep) -> tuple[float, dict[str, TableState]]:
    """(restore time, table states). ``granularity``: the restore API's time resolution in
    seconds (RDS takes whole seconds: the time is rounded up and the lock held past it).
    No tables given: every ordinary table outside the system schemas."""
    tables = list(tables) or user_tables(conn)
    if not tables:
        (now,) = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        return now, {}
    missing = missing_tables(conn, tables)
    if missing:
        raise BadInput(f"table(s) {', '.join(missing)} do not exist in the source database; "
                       "choose tables with --table")
    conn.execute("BEGIN")
    try:
        conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
        conn.execute(f"LOCK TABLE {', '.join(_ident(t) for t in tables)} IN SHARE MODE")
        states = {t: table_state(conn, t) for t in tables}
        (now,) = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        at = math.ceil(now / granularity) * granularity if granularity > 0 else now
        for _ in range(100):  # bounded: the clock passes ``at`` within granularity + a little
            (clock,) = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
            if clock > at + 0.005:
                break
            sleep(min(max(at + 0.01 - clock, 0.005), 0.5))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return at, states


def amcheck(conn: Any, tables: list[str]) -> tuple[list[str] | None, str]:
    """Problems found by amcheck (heap and every B-tree index of the tables, with heapallindexed),
    or None when the extension is not available."""
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
    except psycopg.Error as exc:  # not installed / not allowed here: said in the report, not fatal
        return None, f"amcheck not available: {str(exc).strip().splitlines()[0]}"
    problems: list[str] = []
    checked = 0
    for t in tables:
        for blkno, offnum, attnum, msg in conn.execute(
                "SELECT blkno, offnum, attnum, msg FROM verify_heapam(%s::regclass)", (t,)).fetchall():
            problems.append(f"{t}: heap block {blkno} offset {offnum}: {msg}")
        for (index,) in conn.execute(
                "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = 'btree'",
                (t,)).fetchall():
            checked += 1
            try:
                conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
            except psycopg.Error as exc:  # amcheck reports corruption as an error: that is the finding
                problems.append(f"{t}: index {index}: {str(exc).strip().splitlines()[0]}")
    return problems, f"amcheck: heap of {len(tables)} table(s) and {checked} B-tree index(es) checked"
