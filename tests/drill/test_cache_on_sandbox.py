"""The cache runbooks on real redis-server (Debian's): an RDB snapshot taken with writes paused,
exported to the DR region, restored into NEW servers, keys compared one by one; a swapped RDB
fails the verification; bad input changes nothing. One sandbox and one cache for the module."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from runbooks import cache_backup, cache_restore
from runbooks.core import metrics
from sandbox import control, proc as _proc
from sandbox.redis_client import Redis

EAST, WEST = "local-east", "local-west"
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (scripts/setup.sh)")


@pytest.fixture(scope="module")
def sb(base_dir):
    sandbox = control.up(base_dir / "cache", )
    sandbox.caches.start("sessions", EAST)
    yield sandbox
    control.down(sandbox.dir)


def run(module, sb, *args) -> tuple[int, dict]:
    out = io.StringIO()
    code = module.main(["--outputs", str(sb.dir / "outputs.json"), "--output", "json", "--yes", *args], stdout=out)
    return code, json.loads(out.getvalue())


def fill(sb, prefix: str, n: int) -> None:
    with sb.caches.client("sessions") as r:
        for i in range(n):
            r.command("SET", f"{prefix}:s:{i}", f"value-{i}" * (1 + i % 5))
            r.command("HSET", f"{prefix}:h:{i % 50}", f"f{i}", i)
            r.command("RPUSH", f"{prefix}:l:{i % 20}", i)
            r.command("ZADD", f"{prefix}:z", i, f"m{i}")
            r.command("SADD", f"{prefix}:set", i % 97)


def contents(info: dict) -> dict[bytes, bytes]:
    """Every key and its serialized value (DUMP): equal maps mean the same keys with the same values."""
    with Redis(info["address"], info["port"]) as r:
        return {k: r.command("DUMP", k) for k in r.scan_all()}


def redis_pids(sb) -> list[str]:
    return sorted(r.component for r in _proc.all_pids(sb.layout.run_dir) if r.component.startswith("redis-"))


def test_snapshot_export_and_a_verified_restore_leave_no_temporary_server(sb):
    fill(sb, "a", 400)
    code, out = run(cache_backup, sb, "--cache", "sessions")
    assert code == 0, out
    assert out["verified"] is True and out["keys"] == sb.caches.state("sessions")["keys"] > 400
    sid = out["snapshot"]
    assert sb.caches.snapshot_info(EAST, sid) and sb.caches.snapshot_info(WEST, sid)["exported_from"] == EAST
    assert redis_pids(sb) == ["redis-sessions"], "the temporary restore was not torn down"
    series = metrics.read(out["metrics"])
    assert series[metrics.CACHE_VERIFY_OK][(("cache", "sessions"), ("region", WEST))] == 1.0
    assert (("cache", "sessions"), ("kind", "export"), ("region", WEST)) in series[metrics.CACHE_SNAPSHOT_AT]


def test_restore_into_a_new_cache_holds_exactly_the_keys_at_the_snapshot(sb):
    fill(sb, "b", 300)
    code, out = run(cache_backup, sb, "--cache", "sessions", "--no-verify")
    assert code == 0, out
    at_snapshot = contents(sb.caches.info("sessions"))
    fill(sb, "c", 50)  # written after the snapshot: must not be in the restore
    code, res = run(cache_restore, sb, "--cache", "sessions", "--snapshot", out["snapshot"], "--name", "sessions-dr")
    assert code == 0, res
    restored = sb.caches.info("sessions-dr")
    assert restored["region"] == WEST and restored["state"] == "running"
    got = contents(restored)
    assert got == at_snapshot, f"{len(got)} keys restored, {len(at_snapshot)} at the snapshot"
    assert not any(k.startswith(b"c:") for k in got)
    with Redis(restored["address"], restored["port"]) as r:  # a new, writable cache
        assert r.command("SET", "after-restore", "1") == b"OK"
    sb.caches.drop("sessions-dr")


def test_bad_input_creates_no_cache(sb):
    before = redis_pids(sb)
    code, out = run(cache_restore, sb, "--cache", "sessions", "--snapshot", "no-such", "--name", "x1")
    assert code == 2 and "no snapshot of sessions" in out["error"], out
    code, out = run(cache_backup, sb, "--cache", "nope")
    assert code == 2 and "no such cache" in out["error"], out
    code, out = run(cache_restore, sb, "--cache", "sessions", "--snapshot", "no-such", "--name", "sessions")
    assert code == 2, out
    assert redis_pids(sb) == before and sb.caches.info("x1") is None


def test_a_swapped_rdb_fails_the_verification_and_the_temporary_cache_is_removed(sb, monkeypatch):
    code, first = run(cache_backup, sb, "--cache", "sessions", "--no-verify")
    assert code == 0, first
    fill(sb, "d", 20)
    from sandbox.cache import Caches
    real_export = Caches.export

    def export_the_older_rdb(self, region, snapshot_id, target_region):
        meta = real_export(self, region, snapshot_id, target_region)
        shutil.copyfile(self._snap_dir(region) / f"{first['snapshot']}.rdb", self._snap_dir(target_region) /
                        f"{snapshot_id}.rdb")  # the export's bytes are not the snapshot's
        return meta
    monkeypatch.setattr(Caches, "export", export_the_older_rdb)
    code, out = run(cache_backup, sb, "--cache", "sessions")
    assert code == 1 and out["verified"] is False, out
    assert "VERIFICATION FAILED" in json.dumps(out)
    assert redis_pids(sb) == ["redis-sessions"]
    series = metrics.read(out["metrics"])
    assert series[metrics.CACHE_VERIFY_OK][(("cache", "sessions"), ("region", WEST))] == 0.0
