"""The SQL of the slot ports, on an open psycopg connection (the sandbox's and AWS's adapters share it)."""

from __future__ import annotations

import json
import re

from contract.slot_backup import CAPTURE_SQL, PublicationDef, SlotDef
from runbooks.core.errors import StepFailed

CREATE_TIMEOUT_MS = 30_000
"""pg_create_logical_replication_slot waits for the transactions running when it starts (it needs a
consistent snapshot); a session left idle in a transaction would hold it forever."""

_IDENT = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
_QUALIFIED = re.compile(rf"^{_IDENT}\.{_IDENT}$")


def capture(conn) -> dict:
    (doc,) = conn.execute(CAPTURE_SQL).fetchone()
    return doc


def existing(conn) -> dict:
    from runbooks.backups.slots import LiveSlot
    rows = conn.execute("SELECT slot_name, plugin, confirmed_flush_lsn::text FROM pg_replication_slots "
                        "WHERE slot_type = 'logical' AND database = current_database()").fetchall()
    return {name: LiveSlot(name, plugin, lsn) for name, plugin, lsn in rows}


def publications(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT pubname FROM pg_publication").fetchall()}


def create(conn, slot: SlotDef, where: str) -> str:
    import psycopg
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {CREATE_TIMEOUT_MS}")
            (lsn,) = conn.execute("SELECT lsn::text FROM pg_create_logical_replication_slot(%s, %s, false, %s)",
                                  (slot.name, slot.plugin, slot.two_phase)).fetchone()
    except psycopg.errors.DuplicateObject:
        (lsn,) = conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                              (slot.name,)).fetchone()
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        if "wal_level" in first:
            hint = (" — the server's wal_level is not logical: on RDS set rds.logical_replication=1 in its parameter "
                    "group (a static parameter: reboot) — database.logical_replication in the stack config")
        elif isinstance(exc, psycopg.errors.QueryCanceled):
            hint = f" — waited {CREATE_TIMEOUT_MS / 1000:.0f} s for running transactions to end; end them and rerun"
        raise StepFailed(f"cannot create slot {slot.name} ({slot.plugin}) on {where}: {first}{hint}") from None
    return lsn


def create_publication(conn, pub: PublicationDef, where: str) -> str:
    from psycopg import sql
    bad = [t for t in pub.tables if not _QUALIFIED.match(t)]
    if bad:
        raise StepFailed(f"publication {pub.name}: table name(s) {bad} are not schema-qualified identifiers as "
                         "the capture writes them; create the publication by hand")
    ops = ", ".join(k for k in ("insert", "update", "delete", "truncate") if getattr(pub, k))
    target = sql.SQL("FOR ALL TABLES") if pub.all_tables else \
        sql.SQL("FOR TABLE ") + sql.SQL(", ").join(sql.SQL(t) for t in pub.tables)  # validated identifiers
    if not pub.all_tables and not pub.tables:
        target = sql.SQL("")
    conn.execute(sql.SQL("CREATE PUBLICATION {} {} WITH (publish = {})").format(
        sql.Identifier(pub.name), target, sql.Literal(ops)))
    return f"publication {pub.name} created on {where} ({'all tables' if pub.all_tables else ', '.join(pub.tables) or 'no tables'})"


class SqlSlotControl:
    """``runbooks.backups.slots.SlotControl`` over SQL, for the adapters: each supplies ``_run(target, fn)``,
    which opens a session on the target, calls ``fn(conn)`` and closes it (RDS over TLS with the
    Secrets Manager password; the sandbox on loopback)."""

    def _run(self, target, fn):  # pragma: no cover - every adapter defines it
        raise NotImplementedError

    def capture(self, target) -> dict:
        doc = self._run(target, capture)
        return json.loads(doc) if isinstance(doc, str) else doc

    def existing(self, target) -> dict:
        return self._run(target, existing)

    def create(self, target, slot) -> str:
        return self._run(target, lambda conn: create(conn, slot, str(target)))

    def publications(self, target) -> set[str]:
        return self._run(target, publications)

    def create_publication(self, target, pub) -> str:
        return self._run(target, lambda conn: create_publication(conn, pub, str(target)))
