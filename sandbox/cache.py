"""The sandbox's cache: real ``redis-server`` processes (Debian's), started on demand, with real
RDB snapshots, an "export" into the other region, and restores into NEW servers — what ElastiCache
does with a replication group, CreateSnapshot, CopySnapshot to S3 (then a copy to the DR region),
and CreateReplicationGroup seeded from the .rdb (docs/backups.md, "Redis snapshots").

Layout, ``DIR/cache/``::

    servers/<name>/{redis.json,data/}           one per server (the cache itself, and each restore)
    snapshots/<region>/<id>.rdb + <id>.json     a snapshot held in a region (taken there, or exported to it)

A snapshot is consistent with what its metadata says: writes are paused (``CLIENT PAUSE … WRITE``)
while the key count and ``DEBUG DIGEST`` are read and ``SAVE`` writes the RDB, then resumed (the
pause is as long as the SAVE: milliseconds for the sandbox's sizes). A restored server loads the RDB
at start; its digest must equal the snapshot's. Servers are started with ``proc.spawn`` (pid files
in the run dir), so ``down`` stops them with everything else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.redis_client import Redis, RespError

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    tmp.replace(path)


class Caches:
    def __init__(self, sb, pick_port):
        self.sb = sb
        self.root = sb.dir / "cache"
        self.pick_port = pick_port

    # ---- servers ------------------------------------------------------------------------------

    def _server_dir(self, name: str) -> Path:
        return self.root / "servers" / name

    def component(self, name: str) -> str:
        return f"redis-{name}"

    def info(self, name: str) -> dict | None:
        path = self._server_dir(name) / "redis.json"
        if not path.exists():
            return None
        info = json.loads(path.read_text())
        info["state"] = "running" if proc.running(self.sb.layout.run_dir, self.component(name)) else "stopped"
        return info

    def servers(self) -> list[dict]:
        d = self.root / "servers"
        return [i for i in (self.info(p.name) for p in sorted(d.iterdir())) if i] if d.is_dir() else []

    def start(self, name: str, region: str, rdb: Path | None = None, restored_from: str | None = None,
              deadline_s: float = 30.0) -> dict:
        """A new redis-server ``name`` on ``region``'s address; with ``rdb``, loaded from that snapshot."""
        if not _NAME.match(name):
            raise SandboxError(f"cache name {name!r}: lower-case letters, digits and dashes, a letter first, at most "
                               "40", component="cache")
        existing = self.info(name)
        if existing is not None and existing["state"] == "running":
            return existing
        redis = shutil.which("redis-server")
        if redis is None:
            raise SandboxError("no redis-server on PATH; run ./scripts/setup.sh (it installs Debian's redis-server)",
                               component="cache")
        home = self._server_dir(name)
        data = home / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        if rdb is not None:
            shutil.copyfile(rdb, data / "dump.rdb")
        if self.sb.identity.switch:
            for p in (self.root, self.root / "servers", home, data, *data.iterdir()):
                os.chown(p, self.sb.identity.uid, self.sb.identity.gid)
        address = self.sb.state.addresses[region]
        port = self.pick_port(address)
        argv = [redis, "--bind", address, "--port", str(port), "--dir", str(data), "--dbfilename", "dump.rdb",
                "--save", "", "--appendonly", "no", "--protected-mode", "no", "--enable-debug-command", "yes",
                "--daemonize", "no", "--logfile", ""]
        info = {"name": name, "region": region, "address": address, "port": port, "data_dir": str(data),
                "restored_from": restored_from, "created_at": time.time()}
        _write_json(home / "redis.json", info)
        t0 = time.monotonic()
        proc.spawn(self.sb.layout.run_dir, self.component(name), argv, self.sb.layout.log(self.component(name)),
                    self.sb.identity)
        deadline = t0 + deadline_s
        last = ""
        while time.monotonic() < deadline:
            try:
                with Redis(address, port, timeout=1.0) as r:
                    if r.command("PING") == b"PONG":
                        info["seconds"] = time.monotonic() - t0
                        _write_json(home / "redis.json", info)
                        return {**info, "state": "running"}
            except (OSError, RespError) as exc:  # refused while starting; LOADING while it reads the RDB
                last = str(exc)
            time.sleep(0.02)
        raise SandboxError(f"redis-server {name} did not answer within {deadline_s:.0f} s ({last})",
                           component=self.component(name), log=self.sb.layout.log(self.component(name)))

    def stop(self, name: str) -> str:
        rec = proc.running(self.sb.layout.run_dir, self.component(name))
        if rec is None:
            return f"cache server {name} is not running"
        how = proc.terminate(rec.pid, rec.start_time, self.component(name))
        proc.pid_path(self.sb.layout.run_dir, self.component(name)).unlink(missing_ok=True)
        return f"cache server {name} {how}"

    def drop(self, name: str) -> str:
        said = self.stop(name)
        shutil.rmtree(self._server_dir(name), ignore_errors=True)
        return f"{said}; its files removed"

    def client(self, name: str) -> Redis:
        info = self.info(name)
        if info is None or info["state"] != "running":
            raise SandboxError(f"cache server {name} is not running", component="cache")
        return Redis(info["address"], info["port"])

    # ---- snapshots ------------------------------------------------------------------------------

    def _snap_dir(self, region: str) -> Path:
        return self.root / "snapshots" / region

    def snapshots(self, region: str) -> list[dict]:
        d = self._snap_dir(region)
        return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.is_dir() else []

    def snapshot_info(self, region: str, snapshot_id: str) -> dict | None:
        path = self._snap_dir(region) / f"{snapshot_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def snapshot(self, name: str, snapshot_id: str, tags: dict | None = None, pause_ms: int = 60_000) -> dict:
        """A consistent RDB of server ``name`` with its key count and digest (idempotent by id)."""
        info = self.info(name)
        if info is None or info["state"] != "running":
            raise SandboxError(f"cache server {name} is not running; cannot snapshot it", component="cache")
        done = self.snapshot_info(info["region"], snapshot_id)
        if done is not None:
            return done
        t0 = time.monotonic()
        info_ = self.info(name)
        with Redis(info_["address"], info_["port"], timeout=pause_ms / 1000) as r:
            r.command("CLIENT", "PAUSE", pause_ms, "WRITE")
            try:
                keys = r.command("DBSIZE")
                digest = r.command("DEBUG", "DIGEST").decode()  # O(keys): most of the pause (docs/backups.md)
                r.command("SAVE")
                paused = time.monotonic() - t0
            finally:
                r.command("CLIENT", "UNPAUSE")
        if paused * 1000 >= pause_ms * 0.95:  # the pause may have lapsed before the SAVE: digest and RDB may differ
            raise SandboxError(f"snapshot {snapshot_id} of {name}: digest and SAVE took {paused:.1f} s, as long as the "
                               f"{pause_ms / 1000:.0f} s write pause; nothing kept (take it when the cache is quieter)",
                               component="cache")
        d = self._snap_dir(info["region"])
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(info["data_dir"]) / "dump.rdb", d / f".{snapshot_id}.rdb.tmp")
        (d / f".{snapshot_id}.rdb.tmp").replace(d / f"{snapshot_id}.rdb")
        meta = {"id": snapshot_id, "cache": name, "region": info["region"], "keys": keys, "digest": digest,
                "taken_at": time.time(), "seconds": time.monotonic() - t0, "tags": dict(tags or {}),
                "bytes": (d / f"{snapshot_id}.rdb").stat().st_size, "exported_from": None}
        _write_json(d / f"{snapshot_id}.json", meta)
        return meta

    def export(self, region: str, snapshot_id: str, target_region: str) -> dict:
        """The snapshot's RDB copied into ``target_region`` (ElastiCache: CopySnapshot to a bucket in the
        snapshot's region, then an S3 copy into the DR region's bucket). Idempotent."""
        meta = self.snapshot_info(region, snapshot_id)
        if meta is None:
            raise SandboxError(f"no snapshot {snapshot_id} in {region}", component="cache")
        done = self.snapshot_info(target_region, snapshot_id)
        if done is not None:
            return done
        d = self._snap_dir(target_region)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._snap_dir(region) / f"{snapshot_id}.rdb", d / f".{snapshot_id}.rdb.tmp")
        (d / f".{snapshot_id}.rdb.tmp").replace(d / f"{snapshot_id}.rdb")
        out = {**meta, "region": target_region, "exported_from": region, "exported_at": time.time()}
        _write_json(d / f"{snapshot_id}.json", out)
        return out

    def delete_snapshot(self, region: str, snapshot_id: str) -> bool:
        gone = False
        for suffix in (".rdb", ".json"):
            p = self._snap_dir(region) / f"{snapshot_id}{suffix}"
            if p.exists():
                p.unlink()
                gone = True
        return gone

    def restore(self, region: str, snapshot_id: str, name: str) -> dict:
        """A NEW server ``name`` in ``region`` loaded from the snapshot held there."""
        meta = self.snapshot_info(region, snapshot_id)
        if meta is None:
            raise SandboxError(f"no snapshot {snapshot_id} in {region}", component="cache")
        return self.start(name, region, rdb=self._snap_dir(region) / f"{snapshot_id}.rdb",
                          restored_from=f"{region}/{snapshot_id}")

    def state(self, name: str) -> dict:
        """Key count and digest of a running server (what a snapshot recorded, to compare)."""
        with self.client(name) as r:
            return {"keys": r.command("DBSIZE"), "digest": r.command("DEBUG", "DIGEST").decode()}
