"""Backups of the sandbox's PostgreSQL servers and point-in-time restores to new instances.

What stands in for RDS here, per database and region, in ``DIR/pg/<db>/<region>/``:

- ``basebackups/<id>/``: ``base.tar.gz`` (pg_basebackup, tar, gzip level 1, the WAL needed to be
  consistent included) and ``regionpair.json`` (when it started and finished, automated or
  manual, tags, where it was copied from). A backup is restorable from the moment it finished.
- ``archive/``: the server's WAL archive (``archive_command``).
- ``sealed.json``: the newest time up to which the archive is known complete ("sealed": a commit
  stamped then was written, its segment switched and archived). That is the window's upper end.

A restore starts a **new** PostgreSQL server (component ``postgres-restore-<name>``, its own port
on the region's address, a pid file like every other server, so ``down`` stops it) from a base
backup, with ``restore_command`` reading the archive and ``recovery_target_time`` (or none, for
the latest restorable point, or ``immediate`` for a backup's own point), and promotes it at the
target. ``drop_restore`` stops it and removes its files.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import ADMIN_USER, DB_NAME, EAST, REGIONS, REPLICATION_USER, Layout, State, write_json_atomic
from sandbox.postgres import PG_ENV

META = "regionpair.json"
SEAL = "sealed.json"
ARCHIVE_META = "regionpair-archive.json"
RESTORE_PREFIX = "postgres-restore-"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Backups:
    """Base backups, the WAL archive's seal, and restored instances of one sandbox."""

    def __init__(self, layout: Layout, state: State, identity: proc.Identity):
        self.layout = layout
        self.state = state
        self.identity = identity

    # ---- where things are ---------------------------------------------------------------------

    def backups_dir(self, database: str, region: str) -> Path:
        return self.layout.node_dir(database, region) / "basebackups"

    def restores_dir(self) -> Path:
        return self.layout.root / "restores"

    def _chown(self, path: Path) -> None:
        if self.identity.switch:
            import os
            os.chown(path, self.identity.uid, self.identity.gid)

    def _mkdir(self, path: Path, mode: int = 0o700) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        self._chown(path)
        return path

    # ---- base backups ---------------------------------------------------------------------------

    def take(self, node, kind: str = "automated", tags: dict | None = None, backup_id: str | None = None,
             timeout_s: float = 120.0) -> dict:
        """A base backup of ``node`` (a running server) into its region's backups. Returns its metadata.
        With ``backup_id`` it is idempotent: an existing backup of that id is returned as it is."""
        parent = self._mkdir(self.backups_dir(node.database, node.region), 0o755)
        started = time.time()
        backup_id = backup_id or time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + \
            f"{started % 1:.3f}"[1:] + "Z-" + secrets.token_hex(2)
        existing = self.get(node.database, node.region, backup_id)
        if existing is not None:
            return existing
        partial = parent / f".{backup_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        proc.run([str(node.bin / "pg_basebackup"), "-D", str(partial), "-Ft", "-Z", "gzip:1", "-X", "fetch",
                   "-c", "fast", "--no-sync", "-d",
                   f"host={node.address} port={node.db.port} user={REPLICATION_USER} dbname=replication "
                   f"passfile={self.layout.pgpass} connect_timeout=5"],
                  f"{node.component}: base backup", node.log_path, self.identity, timeout_s=timeout_s, env=PG_ENV)
        finished = time.time()
        meta = {"id": backup_id, "database": node.database, "region": node.region, "source_region": node.region,
                "kind": kind, "tags": dict(tags or {}), "started_at": started, "finished_at": finished,
                "started": _iso(started), "finished": _iso(finished),
                "size_bytes": sum(p.stat().st_size for p in partial.iterdir()), "copied_from": None}
        write_json_atomic(partial / META, meta)
        partial.rename(parent / backup_id)
        return meta

    def list(self, database: str, region: str) -> list[dict]:
        """Finished backups of ``database`` held in ``region``, oldest first."""
        out = []
        d = self.backups_dir(database, region)
        if d.is_dir():
            for child in d.iterdir():
                if child.name.startswith(".") or not (child / META).exists():
                    continue  # a partial backup, or one taken before backups carried metadata
                out.append(json.loads((child / META).read_text()))
        return sorted(out, key=lambda m: m["finished_at"])

    def get(self, database: str, region: str, backup_id: str) -> dict | None:
        path = self.backups_dir(database, region) / backup_id / META
        return json.loads(path.read_text()) if path.exists() else None

    def copy(self, database: str, backup_id: str, source_region: str, target_region: str,
             tags: dict | None = None) -> dict:
        """Copy a backup to the other region's backups (idempotent: an existing copy is returned)."""
        existing = self.get(database, target_region, backup_id)
        if existing is not None:
            return existing
        meta = self.get(database, source_region, backup_id)
        if meta is None:
            raise SandboxError(f"no backup {backup_id} of {database} in {source_region}")
        parent = self._mkdir(self.backups_dir(database, target_region), 0o755)
        partial = parent / f".{backup_id}.copy"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(self.backups_dir(database, source_region) / backup_id, partial)
        meta = dict(meta, region=target_region, copied_from=source_region, copied_at=time.time(),
                    tags={**meta.get("tags", {}), **(tags or {})})
        write_json_atomic(partial / META, meta)
        for p in [partial, *partial.iterdir()]:
            self._chown(p)
        partial.rename(parent / backup_id)
        return meta

    def replicate(self, database: str, source: str = EAST) -> str:
        """Copy ``source``'s automated backups of ``database`` and its archived WAL into the other
        region (the runbooks' PITR-in-DR gate reads DR's window; the backup adapter copies more
        whenever it reads a window while the source runs)."""
        target = next(r for r in REGIONS if r != source)
        ids = [m["id"] for m in self.list(database, source)
               if m.get("kind") == "automated" and m.get("copied_from") is None]
        for backup_id in ids:
            self.copy(database, backup_id, source, target)
        wal = self.replicate_archive(database, source, target)
        return f"{database}: {len(ids)} backup(s) and {wal} WAL file(s) replicated {source} → {target}"

    def delete(self, database: str, region: str, backup_id: str) -> bool:
        path = self.backups_dir(database, region) / backup_id
        if not path.is_dir():
            return False
        tomb = path.with_name(f".{backup_id}.deleting")
        path.rename(tomb)  # gone from the listing at once, even if the removal is interrupted
        shutil.rmtree(tomb)
        return True

    # ---- the compliance tier's archive (runbooks/retention.py --archive) -------------------------

    def compliance_dir(self, database: str, region: str) -> Path:
        return self.layout.node_dir(database, region) / "compliance"

    def archive(self, database: str, region: str, backup_id: str, archive_id: str) -> dict:
        """Copy a backup of the region into its compliance archive, read-only (idempotent). The sandbox's
        stand-in for an RDS snapshot export into a COMPLIANCE-locked bucket: no Parquet and no lock —
        file modes, which the sandbox's own user could change (docs/backups.md)."""
        target = self.compliance_dir(database, region) / archive_id
        if (target / ARCHIVE_META).exists():
            return json.loads((target / ARCHIVE_META).read_text())
        if self.get(database, region, backup_id) is None:
            raise SandboxError(f"no backup {backup_id} of {database} in {region} to archive")
        parent = self._mkdir(self.compliance_dir(database, region), 0o755)
        partial = parent / f".{archive_id}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        started = time.time()
        shutil.copytree(self.backups_dir(database, region) / backup_id, partial)
        meta = {"id": archive_id, "source": backup_id, "database": database, "region": region,
                "status": "complete", "started_at": started, "finished_at": time.time()}
        write_json_atomic(partial / ARCHIVE_META, meta)
        for p in partial.iterdir():
            p.chmod(0o444)
        partial.chmod(0o555)
        partial.rename(target)
        return meta

    def archives(self, database: str, region: str) -> list[dict]:
        d = self.compliance_dir(database, region)
        if not d.is_dir():
            return []
        metas = [json.loads((c / ARCHIVE_META).read_text()) for c in d.iterdir()
                 if not c.name.startswith(".") and (c / ARCHIVE_META).exists()]
        return sorted(metas, key=lambda m: m["started_at"])

    def replicate_archive(self, database: str, source_region: str, target_region: str) -> int:
        """Copy the archived WAL (and its seal) that the target region does not have yet: what RDS's
        automated-backup replication does continuously. Returns the number of files copied."""
        src = self.layout.archive_dir(database, source_region)
        dst = self.layout.archive_dir(database, target_region)
        self._mkdir(dst)
        n = 0
        for f in sorted(src.iterdir()) if src.is_dir() else []:
            if f.name.startswith("."):  # a segment the archive command is still writing (sandbox/postgres.py)
                continue
            if not (dst / f.name).exists():
                tmp = dst / f".{f.name}.copy"
                shutil.copyfile(f, tmp)
                self._chown(tmp)
                tmp.rename(dst / f.name)
                n += 1
        seal = self.seal_of(database, source_region)
        mine = self.seal_of(database, target_region)
        if seal and (not mine or seal["time"] > mine["time"]):
            write_json_atomic(self.layout.node_dir(database, target_region) / SEAL, seal)
        return n

    # ---- the archive's seal and the window ---------------------------------------------------------

    def seal(self, node, deadline_s: float = 30.0) -> dict:
        """Make the archive complete up to now: a commit stamped now, a WAL switch, and a wait until
        the switched segment is in the archive. Only on a running primary."""
        with node.connect() as conn:
            (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if in_recovery:
                raise SandboxError(f"{node.component} is a replica; the archive is sealed on the primary",
                                   component=node.component)
            # a transaction with an xid writes a commit record: recovery to any earlier time finds a
            # commit after its target and stops there instead of running off the end of the archive
            # (the xid must be in the select list: an unused column of a subquery is optimised away)
            _xid, sealed_at = conn.execute("SELECT pg_current_xact_id()::text, "
                                           "extract(epoch FROM clock_timestamp())::float8").fetchone()
            (segment,) = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        target = node.archive / segment
        deadline = time.monotonic() + deadline_s
        while not target.exists():
            if time.monotonic() > deadline:
                raise SandboxError(f"WAL segment {segment} not archived {deadline_s:.0f} s after the switch; "
                                   f"see archive_command in the log", component=node.component, log=node.log_path)
            time.sleep(0.02)
        seal = {"time": sealed_at, "at": _iso(sealed_at), "segment": segment, "region": node.region}
        write_json_atomic(self.layout.node_dir(node.database, node.region) / SEAL, seal)
        return seal

    def seal_of(self, database: str, region: str) -> dict | None:
        path = self.layout.node_dir(database, region) / SEAL
        return json.loads(path.read_text()) if path.exists() else None

    def window(self, database: str, region: str) -> tuple[float, float] | None:
        """(earliest, latest) restorable time in ``region``, or None without a backup."""
        backups = self.list(database, region)
        if not backups:
            return None
        seal = self.seal_of(database, region)
        latest = max([b["finished_at"] for b in backups] + ([seal["time"]] if seal else []))
        return backups[0]["finished_at"], latest

    # ---- restored instances -----------------------------------------------------------------------

    def _restore_component(self, name: str) -> str:
        return f"{RESTORE_PREFIX}{name}"

    def restores(self) -> list[dict]:
        out = []
        d = self.restores_dir()
        if d.is_dir():
            for child in sorted(d.iterdir()):
                meta = child / "instance.json"
                if meta.exists():
                    info = json.loads(meta.read_text())
                    rec = proc.running(self.layout.run_dir, self._restore_component(info["name"]))
                    info["state"] = "running" if rec else "stopped"
                    out.append(info)
        return out

    def restore_info(self, name: str) -> dict | None:
        return next((r for r in self.restores() if r["name"] == name), None)

    def restore(self, node, name: str, source_region: str, *, to_time: float | None = None,
                backup_id: str | None = None, deadline_s: float = 120.0, pick_port=None) -> dict:
        """Start a new server ``name`` from ``source_region``'s backups of ``node.database``:
        to ``to_time``, or (None) the end of the archive, or with ``backup_id`` and no time, that
        backup's own consistent point. Returns its description (dsn included) once it is writable."""
        existing = self.restore_info(name)
        if existing is not None and existing["state"] == "running":
            return existing
        if existing is not None:
            self.drop_restore(name)
        backups = self.list(node.database, source_region)
        if backup_id is not None:
            chosen = next((b for b in backups if b["id"] == backup_id), None)
            if chosen is None:
                raise SandboxError(f"no backup {backup_id} of {node.database} in {source_region}")
        else:
            eligible = [b for b in backups if to_time is None or b["finished_at"] <= to_time]
            if not eligible:
                raise SandboxError(f"no backup of {node.database} in {source_region} finished before the target")
            chosen = eligible[-1]
        if not name.replace("-", "").isalnum() or len(name) > 40:
            raise SandboxError(f"restore name {name!r}: use letters, digits and dashes (at most 40)")
        t0 = time.monotonic()
        home = self._mkdir(self.restores_dir() / name, 0o755)
        data = home / "data"
        shutil.rmtree(data, ignore_errors=True)
        self._mkdir(data)
        log_path = self.layout.log(self._restore_component(name))
        backup_dir = self.backups_dir(node.database, source_region) / chosen["id"]
        proc.run(["tar", "-xzf", str(backup_dir / "base.tar.gz"), "-C", str(data)],
                  f"restore {name}: unpack base backup {chosen['id']}", log_path, self.identity, env=PG_ENV)
        port = pick_port()
        archive = self.layout.archive_dir(node.database, source_region)
        if to_time is not None:
            target = [f"recovery_target_time = {_conf(_iso(to_time).replace('Z', '+00'))}",
                      "recovery_target_inclusive = on"]
            restored_to = _iso(to_time)
        elif backup_id is not None:
            target = ["recovery_target = 'immediate'"]
            restored_to = f"backup {chosen['id']} ({chosen['finished']})"
        else:
            target = []
            restored_to = "the end of the archive"
        socket_dir = Layout.socket_dir(self.state, node.region)
        lines = ["# a point-in-time restore of the sandbox (sandbox/backups.py)",
                 f"listen_addresses = {_conf(node.address)}", f"port = {port}",
                 f"unix_socket_directories = {_conf(str(socket_dir))}", f"cluster_name = {_conf(name)}",
                 "max_connections = 40", "shared_buffers = 16MB", "archive_mode = off",
                 "wal_level = logical",  # slots can be recreated on a restore (runbooks.recreate_slots)
                 "restore_command = " + _conf(f'cp "{archive}/%f" "%p"'),
                 "recovery_target_timeline = 'latest'", "recovery_target_action = 'promote'",
                 "hot_standby = on", "primary_conninfo = ''", "primary_slot_name = ''",
                 "logging_collector = off", "log_line_prefix = '%m [%p] %q%u@%d '", *target, ""]
        for fname, text in (("sandbox.conf", "\n".join(lines)), ("sync.conf", ""), ("fence.conf", ""),
                            ("recovery.signal", ""),
                            ("pg_hba.conf", "local all all scram-sha-256\nhost all all 127.0.0.0/8 scram-sha-256\n")):
            path = data / fname
            path.write_text(text)
            path.chmod(0o600)
            self._chown(path)
        for fname in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            (data / fname).unlink(missing_ok=True)
        info = {"name": name, "database": node.database, "region": node.region, "source_region": source_region,
                "address": node.address, "port": port, "backup_id": chosen["id"], "restored_to": restored_to,
                "to_time": to_time, "data_dir": str(data), "created_at": time.time(), "log": str(log_path),
                "dsn": f"host={node.address} port={port} dbname={DB_NAME} user={ADMIN_USER} "
                       f"passfile={self.layout.pgpass} connect_timeout=3",
                "local_dsn": f"host={socket_dir} port={port} dbname={DB_NAME} user={ADMIN_USER} "
                             f"passfile={self.layout.pgpass} connect_timeout=3"}
        write_json_atomic(home / "instance.json", info)
        component = self._restore_component(name)
        rec = proc.spawn(self.layout.run_dir, component, [str(node.bin / "postgres"), "-D", str(data)], log_path,
                          self.identity, env=PG_ENV)
        self._wait_promoted(rec, info, log_path, deadline_s)
        info["seconds"] = round(time.monotonic() - t0, 3)
        info["state"] = "running"
        write_json_atomic(home / "instance.json", info)
        return info

    def _wait_promoted(self, rec, info: dict, log_path: Path, deadline_s: float) -> None:
        import psycopg
        deadline = time.monotonic() + deadline_s
        last = "not started"
        while time.monotonic() < deadline:
            if not proc.is_alive(rec.pid, rec.start_time):
                raise SandboxError(f"the restored server {info['name']} stopped during recovery: "
                                   f"{proc.tail(log_path, 4)}", component=self._restore_component(info["name"]),
                                   log=log_path)
            try:
                status = (Path(info["data_dir"]) / "postmaster.pid").read_text().splitlines()
            except FileNotFoundError:
                status = []
            if len(status) < 8 or status[7].strip() != "ready":  # not before: connecting while it starts up
                last = "recovering"                             # only fills its log with refusals
                time.sleep(0.03)
                continue
            try:
                with psycopg.connect(info["local_dsn"], autocommit=True) as conn:
                    (in_recovery,) = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if not in_recovery:
                        return
                    last = "still in recovery"
            except psycopg.OperationalError as exc:
                last = str(exc).strip().splitlines()[0]
            time.sleep(0.03)
        raise SandboxError(f"the restored server {info['name']} is not writable after {deadline_s:.0f} s ({last})",
                           component=self._restore_component(info["name"]), log=log_path)

    def drop_restore(self, name: str, grace_s: float = 15.0) -> str:
        """Stop a restored server and remove its files (idempotent)."""
        component = self._restore_component(name)
        rec = proc.running(self.layout.run_dir, component)
        how = "was not running"
        if rec is not None:
            # immediate shutdown: its data is removed next, a shutdown checkpoint would only cost time
            how = proc.terminate(rec.pid, rec.start_time, component, sig=signal.SIGQUIT, grace_s=grace_s)
        proc.pid_path(self.layout.run_dir, component).unlink(missing_ok=True)
        home = self.restores_dir() / name
        existed = home.exists()
        shutil.rmtree(home, ignore_errors=True)
        if not existed and rec is None:
            return f"restored instance {name} does not exist (nothing to remove)"
        return f"restored instance {name} {how}; its files are removed"
