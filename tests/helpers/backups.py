"""The backup runbooks over a fake region pair: the env fixture (tests/unit/conftest.py imports it) and a replicated backup window."""

from __future__ import annotations

import io
import json

import pytest

from contract import outputs as contract
from tests.fakes import FakeBackups, FakeObjectVersions, FakeWorld, backup_ports
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"
DAY = 86400.0


@pytest.fixture
def env(tmp_path):
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(pair_document(n_databases=2)))
    world = FakeWorld(contract.load_file(doc_path))
    state = tmp_path / "state"
    backups, objects = FakeBackups(world), FakeObjectVersions(world)
    ports = backup_ports(world, state, backups, objects)

    def run(module, *extra):
        out = io.StringIO()
        code = module.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json", *extra],
                           ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())

    class Env:
        pass
    e = Env()
    e.world, e.run, e.state, e.backups, e.objects, e.ports = world, run, state, backups, objects, ports
    return e


def window(env, db="payments", region=P, earliest_ago=7 * DAY, latest_ago=300.0):
    now = env.world.clock.time()
    env.backups.windows[(region, db)] = (now - earliest_ago, now - latest_ago)
