"""cache_backup and cache_restore through their CLIs on an in-memory cache port: the plan, the
teardown of the temporary cache after a failure, bad input changing nothing, an adapter without
the port refused."""

from __future__ import annotations

import io
import json

import pytest

from contract import outputs as contract
from runbooks import cache_backup, cache_restore
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, StepFailed
from tests.fakes import FakeWorld, backup_ports
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


class FakeCaches:
    def __init__(self):
        self.servers = {"sessions": {"name": "sessions", "region": P, "keys": 10, "digest": "d1", "restored_from": None}}
        self.snaps: dict[tuple[str, str], dict] = {}
        self.fail_restore = False
        self.actions: list[tuple] = []

    def caches(self):
        return {n: s["region"] for n, s in self.servers.items() if not s["restored_from"]}

    def snapshot_info(self, region, sid):
        return self.snaps.get((region, sid))

    def snapshots(self, region):
        return [s for (r, _), s in self.snaps.items() if r == region]

    def snapshot(self, cache, sid, tags):
        src = self.servers[cache]
        self.actions.append(("snapshot", sid))
        return self.snaps.setdefault((src["region"], sid), {"id": sid, "cache": cache, "region": src["region"],
                                                            "keys": src["keys"], "digest": src["digest"],
                                                            "taken_at": 100.0})

    def export(self, region, sid, target):
        self.actions.append(("export", sid, target))
        return self.snaps.setdefault((target, sid), {**self.snaps[(region, sid)], "region": target,
                                                     "exported_at": 101.0})

    def restore(self, region, sid, name):
        self.actions.append(("restore", name))
        snap = self.snaps[(region, sid)]
        self.servers[name] = {"name": name, "region": region, "keys": snap["keys"], "digest": snap["digest"],
                              "restored_from": f"{region}/{sid}", "address": "10.0.0.1", "port": 6379}
        if self.fail_restore:
            raise StepFailed("the new cache did not answer")
        return self.servers[name]

    def instance(self, name):
        return self.servers.get(name)

    def state(self, name):
        s = self.servers[name]
        return {"keys": s["keys"], "digest": s["digest"]}

    def drop(self, name):
        self.actions.append(("drop", name))
        del self.servers[name]
        return f"{name} deleted"


@pytest.fixture
def env(tmp_path):
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(pair_document()))
    world = FakeWorld(contract.load_file(doc_path))
    state = tmp_path / "state"
    ports = backup_ports(world, state)
    ports.caches = FakeCaches()

    def run(module, *extra):
        out = io.StringIO()
        code = module.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json", "--yes", *extra],
                           ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())
    return run, ports.caches, state, ports


def test_snapshot_export_restore_and_teardown_in_that_order(env):
    run, caches, state, _ = env
    code, out = run(cache_backup, "--cache", "sessions")
    assert code == EXIT_OK and out["verified"] is True, out
    kinds = [a[0] for a in caches.actions]
    assert kinds == ["snapshot", "export", "restore", "drop"], kinds
    assert set(caches.servers) == {"sessions"}


def test_a_failed_restore_still_removes_the_temporary_cache(env):
    run, caches, state, _ = env
    caches.fail_restore = True
    code, out = run(cache_backup, "--cache", "sessions")
    assert code == EXIT_FAILED, out
    assert caches.actions[-1][0] == "drop" and set(caches.servers) == {"sessions"}


def test_a_restore_with_other_keys_is_a_failed_verification(env):
    run, caches, state, _ = env
    real = caches.restore

    def other(region, sid, name):
        inst = real(region, sid, name)
        caches.servers[name]["digest"] = "different"
        return inst
    caches.restore = other
    code, out = run(cache_backup, "--cache", "sessions")
    assert code == EXIT_FAILED and out["verified"] is False and "VERIFICATION FAILED" in json.dumps(out)


def test_bad_input_changes_nothing(env):
    run, caches, state, _ = env
    code, out = run(cache_backup, "--cache", "nope")
    assert code == EXIT_BAD_INPUT and "no such cache" in out["error"]
    code, out = run(cache_restore, "--cache", "sessions", "--snapshot", "missing", "--name", "new")
    assert code == EXIT_BAD_INPUT and "no snapshot of sessions" in out["error"]
    assert caches.actions == [] and not (state / "runs").exists()


def test_an_adapter_without_the_cache_port_refuses(env):
    run, caches, state, ports = env
    ports.caches = None
    code, out = run(cache_backup, "--cache", "sessions")
    assert code == EXIT_BAD_INPUT and "no cache port" in out["error"]
