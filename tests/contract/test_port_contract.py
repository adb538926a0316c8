"""One contract, every adapter: the same port behaviour tests run against the in-memory fakes the
runbook unit tests use (tests/fakes.py), the sandbox adapter (real PostgreSQL, DNS and files) and the
AWS adapter (moto in server mode); the clusters' active endpoints against the fake, the sandbox's
stand-in clusters and the kubectl adapter (a stand-in kubectl on PATH). A fake that disagrees with
the adapters lies to every unit test that uses it: the fake is what gets fixed.

Not here yet: the SQL probe has no AWS side to run (moto runs no SQL: the AWS adapter's SQL is
tested against a fake connection in test_aws_sql.py), and streaming has none on moto (moto has no
MSK: the AWS side is tested on Stubber). Objects, backups, metrics, the audit sink and the notifier
have a fake, a sandbox adapter and an AWS adapter, but their common behaviour is not written here as
contract tests yet: each is tested per implementation (tests/unit with the fakes, tests/contract on
moto/Stubber, tests/sandbox and tests/drill).

What moto cannot show (an RDS promotion finishing, a replica `backing-up`, CloudWatch lag) is
tested on botocore's Stubber in test_aws_stubber.py; SQL of the AWS adapter against a fake
connection in test_aws_sql.py, and against real PostgreSQL through the sandbox adapter here.
The destructive test (promotion) is the last of the module: the sandbox is shared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from contract import outputs as contract_outputs
from runbooks.adapters import aws
from runbooks.adapters.sandbox_wiring import sandbox_ports
from runbooks.core.clock import SystemClock
from runbooks.core.errors import LockHeld
from runbooks.core.ports import Ports
from sandbox import control
from tests.contract.aws_helpers import FakeConn
from tests.fakes import FakeWorld, with_endpoints
from tests.helpers.sandbox import base_dir  # noqa: F401  (the sandboxes' base directory fixture)
from tests.samples import pair_document


@dataclass
class Pair:
    kind: str
    ports: Ports
    primary: str
    secondary: str
    db: str = "payments"
    let_time_pass: Callable[[float], None] | None = None
    """Moves the fake's clock (a promotion there takes time); None where time passes by itself."""


@pytest.fixture(scope="module")
def sandbox_pair(base_dir):  # noqa: F811
    sb = control.up(base_dir / "contract")
    ports = sandbox_ports(sb.outputs, SystemClock())
    yield Pair("sandbox", ports, sb.outputs.primary.name, sb.outputs.secondary.name)
    ports.close()
    control.down(sb.dir)


@pytest.fixture(params=["fake", "sandbox", "aws"])
def pair(request, tmp_path):
    if request.param == "fake":
        world = FakeWorld(contract_outputs.from_dict(pair_document()))
        return Pair("fake", world.ports(tmp_path / "lock.json"), world.outputs.primary.name,
                    world.outputs.secondary.name, let_time_pass=world.clock.advance)
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


# ---- the clusters' active endpoints: the sandbox's stand-in clusters, and kubectl (a stand-in on PATH) ----


def clusters_document() -> dict:
    """The sample pair with clusters listing the namespaces and Deployments the sandbox's run."""
    doc = pair_document()
    listed = {"payments": ["payments-api"], "checkout": ["checkout-web"]}  # as the sandbox's clusters run them
    for name, region in doc["regions"].items():
        region["kubernetes"] = {"context": f"ctx-{name}", "namespaces": ["payments", "checkout"],
                                "restart_deployments": listed}
    return doc


@pytest.fixture(params=["fake", "sandbox", "kubectl"])
def clusters(request, tmp_path, monkeypatch):
    """(Endpoints port, outputs) whose clusters start as `sandbox up` and `pulumi up` leave them."""
    if request.param == "fake":
        world = FakeWorld(contract_outputs.from_dict(clusters_document()))
        return with_endpoints(world), world.outputs
    if request.param == "sandbox":
        p = request.getfixturevalue("sandbox_pair")
        sb = p.ports.extras["sandbox"]
        from contract.active_endpoints import initial_data
        from sandbox import clusters as _clusters
        for region in sb.regions:  # as `up` made them, whatever an earlier test did
            _clusters.create(sb.layout, region, initial_data(sb.outputs.primary))
        return p.ports.endpoints, sb.outputs
    from contract import outputs as contract
    from contract.active_endpoints import initial_data
    from runbooks.adapters.kubectl import KubectlEndpoints
    from tests.helpers.kubectl import FakeKubectl
    out = contract.from_dict(clusters_document())
    fake = FakeKubectl.install(tmp_path, monkeypatch)
    for name in out.regions:
        for ns in ("payments", "checkout"):
            fake.seed(f"ctx-{name}", ns, initial_data(out.primary))
            for deployment in out.regions[name].kubernetes.restart_deployments[ns]:
                fake.seed_deployment(f"ctx-{name}", ns, deployment)
    return KubectlEndpoints(out), out


def test_endpoints_read_every_copy_and_publish_moves_them_all_and_nothing_else(clusters):
    from contract import active_endpoints as contract
    port, out = clusters
    primary, secondary = out.primary.name, out.secondary.name
    before = port.read(secondary)
    assert before.region == secondary and before.context == out.secondary.kubernetes.context
    assert [c.namespace for c in before.copies] == list(out.secondary.kubernetes.namespaces) and not before.missing
    assert {c.data["ACTIVE_REGION"] for c in before.copies} == {primary}  # Pulumi's: the primary is active
    values = contract.active_values(out.secondary, list(out.secondary.databases))
    assert isinstance(port.publish(secondary, values, "contract-run-1"), str)
    after = port.read(secondary)
    for c in after.copies:
        assert {k: c.data[k] for k in values} == values and c.updated_by == "contract-run-1"
        assert c.data["REGIONPAIR_CONTRACT_VERSION"] == "1"
    assert {c.data["ACTIVE_REGION"] for c in port.read(primary).copies} == {primary}  # only the region named


def test_endpoints_refuse_what_is_not_the_contract_and_change_nothing(clusters):
    from runbooks.core.errors import BadInput
    port, out = clusters
    before = port.read(out.primary.name)
    for values in ({"REGIONPAIR_CONTRACT_VERSION": "2"}, {"OTHER": "x"}, {"ACTIVE_REGION": ""}):
        with pytest.raises(BadInput):
            port.publish(out.primary.name, values, "contract-run-2")
    assert port.read(out.primary.name) == before


def test_listed_deployments_are_read_and_restarted_with_the_run_id_and_nothing_else(clusters):
    port, out = clusters
    primary, secondary = out.primary.name, out.secondary.name
    listed = out.secondary.kubernetes.restart_deployments
    before = port.deployments(secondary)
    assert [(d.namespace, d.name) for d in before] == [(ns, n) for ns, names in listed.items() for n in names]
    assert all(d.exists and d.restarted_for is None and not d.paused and d.rollout for d in before)
    ns, name = before[0].namespace, before[0].name
    assert isinstance(port.restart(secondary, ns, name, "contract-run-3", "2026-11-22T04:00:07Z"), str)
    after = {(d.namespace, d.name): d for d in port.deployments(secondary)}
    assert (after[(ns, name)].restarted_for, after[(ns, name)].restarted_at) == ("contract-run-3", "2026-11-22T04:00:07Z")
    assert all(d.restarted_for is None for key, d in after.items() if key != (ns, name))
    assert all(d.restarted_for is None for d in port.deployments(primary))  # only the region named


def test_a_deployment_the_outputs_do_not_list_is_never_restarted(clusters):
    from runbooks.core.errors import BadInput
    port, out = clusters
    before = port.deployments(out.primary.name)
    for ns, name, run in (("payments", "ledger", "contract-run-4"), ("checkout", "payments-api", "contract-run-4"),
                          ("payments", "payments-api", "")):
        with pytest.raises(BadInput):
            port.restart(out.primary.name, ns, name, run, "2026-11-22T04:00:07Z")
    assert port.deployments(out.primary.name) == before


def test_promote_starts_on_a_replica_and_is_harmless_on_a_primary(pair):
    """Last: it changes the shared sandbox for good."""
    db = pair.ports.db
    assert isinstance(db.promote(pair.secondary, pair.db), str)
    assert isinstance(db.promote(pair.primary, pair.db), str)  # already standalone: no error
    if pair.let_time_pass is not None:
        pair.let_time_pass(60.0)
    if pair.kind != "aws":  # moto keeps the replica link after promotion (Stubber covers AWS's end state)
        st = pair.ports.sql.replication(pair.secondary, pair.db)
        assert not st.in_recovery
        assert "canary" in pair.ports.sql.canary_write(pair.secondary, pair.db)
