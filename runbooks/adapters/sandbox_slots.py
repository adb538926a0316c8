"""The slot ports on the sandbox: SQL on the local servers (and restored ones) over the admin's
socket; slot backups as files in each region's directory, ``DIR/slots/<region>/<database>/``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg

from contract.slot_backup import SlotBackup, SlotDocumentError, loads, parse, stamp
from runbooks.backups import slots_sql
from runbooks.backups.slots import SlotTarget
from runbooks.core.errors import StepFailed, Unreachable


class SandboxSlots(slots_sql.SqlSlotControl):
    def __init__(self, sb, conns):
        self.sb = sb
        self.conns = conns

    def _run(self, target: SlotTarget, fn):
        if target.instance is None:
            return self.conns.run(target.region, target.database, fn)
        info = self.sb.backups.restore_info(target.instance)
        if info is None or info.get("state") != "running":
            raise Unreachable(f"restored instance {target.instance} is not running")
        try:
            with psycopg.connect(info["local_dsn"], autocommit=True) as conn:
                return fn(conn)
        except psycopg.OperationalError as exc:
            raise Unreachable(f"restored instance {target.instance} does not answer: "
                              f"{str(exc).strip().splitlines()[0]}") from None


class FileSlotStore:
    """One file per capture in every region's directory (a region's copy is what survives the other)."""

    def __init__(self, root: Path, regions: list[str]):
        self.root = Path(root)
        self.regions = list(regions)

    def put(self, database: str, doc: dict) -> list[str]:
        parse(doc, f"slot capture of {database}")  # never store what cannot be read back
        where = []
        for region in self.regions:
            d = self.root / region / database
            d.mkdir(parents=True, exist_ok=True)
            path = d / stamp(doc["captured_at"])
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, sort_keys=True) + "\n")
            tmp.replace(path)
            where.append(str(path))
        return where

    def backups(self, database: str) -> list[SlotBackup]:
        seen: dict[str, SlotBackup] = {}
        for region in self.regions:
            d = self.root / region / database
            for path in sorted(d.glob("*.json")) if d.is_dir() else []:
                if path.name in seen:
                    continue
                try:
                    seen[path.name] = loads(path.read_text(), str(path))
                except SlotDocumentError as exc:
                    raise StepFailed(f"slot backup {path} is damaged: {exc}; move it away and rerun") from None
        return [seen[k] for k in sorted(seen)]
