"""One contract, every adapter: the same port behaviour tests run against the sandbox adapter
(real PostgreSQL, DNS and files) and the AWS adapter (moto in server mode).

What moto cannot show (an RDS promotion finishing, a replica `backing-up`, CloudWatch lag) is
tested on botocore's Stubber in test_aws_stubber.py; SQL of the AWS adapter against a fake
connection in test_aws_sql.py, and against real PostgreSQL through the sandbox adapter here.
The destructive test (promotion) is the last of the module: the sandbox is shared."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runbooks.adapters import aws
from runbooks.adapters.sandbox import sandbox_ports
from runbooks.clock import SystemClock
from runbooks.errors import LockHeld
from runbooks.ports import Ports
from sandbox import control
from tests.contract.conftest import build_pair
from tests.contract.test_aws_moto import FakeConn
from tests.sandbox.conftest import base_dir  # noqa: F401  (the sandboxes' base directory fixture)


@dataclass
class Pair:
    kind: str
    ports: Ports
    primary: str
    secondary: str
    db: str = "payments"


@pytest.fixture(scope="module")
def sandbox_pair(base_dir):  # noqa: F811
    sb = control.up(base_dir / "contract")
    ports = sandbox_ports(sb.outputs, SystemClock())
    yield Pair("sandbox", ports, sb.outputs.primary.name, sb.outputs.secondary.name)
    ports.close()
    control.down(sb.dir)


@pytest.fixture(params=["sandbox", "aws"])
def pair(request):
    if request.param == "sandbox":
        return request.getfixturevalue("sandbox_pair")
    moto = request.getfixturevalue("moto_pair")
    ports = aws.aws_ports(moto.outputs, moto.clock, moto.session, connect=lambda info: FakeConn([]))
    return Pair("aws", ports, moto.outputs.primary.name, moto.outputs.secondary.name)


def test_describe_tells_primary_from_replica_and_where_the_replica_comes_from(pair):
    p, s = pair.ports.db.describe(pair.primary, pair.db), pair.ports.db.describe(pair.secondary, pair.db)
    assert (p.role, p.status, p.fenced, p.source_region) == ("primary", "available", False, None)
    assert (s.role, s.status, s.fenced, s.source_region) == ("replica", "available", False, pair.primary)
    assert p.region == pair.primary and p.database == pair.db and p.identifier


def test_fence_is_persistent_idempotent_and_undone_by_unfence(pair):
    db = pair.ports.db
    assert isinstance(db.fence(pair.primary, pair.db), str)
    assert db.describe(pair.primary, pair.db).fenced
    assert isinstance(db.fence(pair.primary, pair.db), str)  # again: no error, still fenced
    assert db.describe(pair.primary, pair.db).fenced
    assert not db.describe(pair.secondary, pair.db).fenced   # only what was named
    db.unfence(pair.primary, pair.db)
    assert not db.describe(pair.primary, pair.db).fenced
    db.unfence(pair.primary, pair.db)                        # again: no error
    assert not db.describe(pair.primary, pair.db).fenced


def test_dns_points_a_service_at_a_region_and_back(pair):
    dns = pair.ports.dns
    assert dns.answer(pair.db) == pair.primary
    assert isinstance(dns.point(pair.db, pair.secondary), str)
    assert dns.answer(pair.db) == pair.secondary
    dns.point(pair.db, pair.primary)
    assert dns.answer(pair.db) == pair.primary


def test_lock_admits_one_run_and_names_the_holder_to_the_next(pair):
    lock = pair.ports.lock
    first = {"run_id": f"contract-{pair.kind}-1", "runbook": "failover", "who": "alice@ops", "since": "t0"}
    assert lock.acquire(first) == "lock taken"
    try:
        with pytest.raises(LockHeld) as held:
            lock.acquire({**first, "run_id": f"contract-{pair.kind}-2", "who": "bob@ops"})
        assert held.value.holder["who"] == "alice@ops"
        assert "alice@ops" in str(held.value) and "t0" in str(held.value)
        lock.release(f"contract-{pair.kind}-2")  # not the holder: the lock stays
        assert lock.holder()["run_id"] == first["run_id"]
    finally:
        lock.release(first["run_id"])
    assert lock.holder() is None


def test_health_of_a_healthy_pair(pair):
    for region in (pair.primary, pair.secondary):
        h = pair.ports.health.region(region)
        assert h.healthy and region in h.sentence


def test_promote_starts_on_a_replica_and_is_harmless_on_a_primary(pair):
    """Last: it changes the shared sandbox for good."""
    db = pair.ports.db
    assert isinstance(db.promote(pair.secondary, pair.db), str)
    assert isinstance(db.promote(pair.primary, pair.db), str)  # already standalone: no error
    if pair.kind == "sandbox":  # moto keeps the replica link after promotion (Stubber covers AWS's end state)
        st = pair.ports.sql.replication(pair.secondary, pair.db)
        assert not st.in_recovery
        assert "canary" in pair.ports.sql.canary_write(pair.secondary, pair.db)
