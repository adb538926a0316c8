"""One contract, every adapter: the same port behaviour tests run against the in-memory fakes the
runbook unit tests use (tests/fakes.py), the sandbox adapter (real PostgreSQL, DNS and files) and the
AWS adapter (moto in server mode); the clusters' active endpoints against the fake, the sandbox's
stand-in clusters and the kubectl adapter (a stand-in kubectl on PATH). A fake that disagrees with
the adapters lies to every unit test that uses it: the fake is what gets fixed.

The backup runbooks' ports run here too: snapshots (BackupControl: a snapshot created is listed
with its tags in its region, deleted once, and a compliance snapshot is refused deletion by its own
tags) over FakeBackups / SandboxBackups (base backups of the sandbox's PostgreSQL) / RdsBackups on
moto; object versions (ObjectVersions: a key's versions and delete markers newest first, as S3's
ListObjectVersions lists them; a delete marker hides the key and deleting it removes exactly that
one; a copy back is the new latest version with the old content; a missing key is an empty list;
a bucket not in the outputs is BadInput, a version that cannot be copied back a RunbookError) over
FakeObjectVersions / the sandbox's backup ports / the AWS backup ports on moto. The sandbox's
object versions are the AWS adapter's S3Versions pointed at the sandbox's own moto S3, so that
column checks the sandbox's wiring and buckets rather than a second implementation. The notifier
and the audit sink (what is written is read back whole, nothing secret-looking passes) run over the
fakes / the sandbox's JSON-lines files / SNS (read back through an SQS queue subscribed to the DR
topic) and the DR backups bucket on moto.

Not here: the SQL probe has no AWS side to run (moto runs no SQL: the AWS adapter's SQL is tested
against a fake connection in test_aws_sql.py), and streaming has none on moto (moto has no MSK:
the AWS side is tested on Stubber). Metrics have no sandbox side to read back (the sandbox's port is
NoMetrics: its metrics are only the Prometheus text files runbooks/core/metrics.py writes), so the
remote metrics port is tested per implementation (FakeMetrics in tests/unit, CloudWatch on moto in
test_aws_backups.py and test_aws_dr_audit.py). Of BackupControl, only snapshots are shared here: a
copy to DR needs a KMS key the sandbox does not have; the restorable window and restores from the
replicated backups are not emulated by moto (Stubber, test_aws_backups.py); exports to the
compliance archive and restores are tested per implementation (tests/unit, tests/contract, tests/drill).

What moto cannot show (an RDS promotion finishing, a replica `backing-up`, CloudWatch lag) is
tested on botocore's Stubber in test_aws_rds.py; SQL of the AWS adapter against a fake
connection in test_aws_sql.py, and against real PostgreSQL through the sandbox adapter here.
The destructive test (promotion) is the last of the module: the sandbox is shared."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from contract import outputs as contract_outputs
from runbooks.adapters import aws
from runbooks.adapters.sandbox_wiring import sandbox_backup_ports, sandbox_ports
from runbooks.backups.ports import COMPLIANCE, MANAGED_TAG, MANAGED_VALUE, TIER_TAG, ComplianceRefused
from runbooks.core import audit as core_audit, notify as core_notify
from runbooks.core.clock import FakeClock, SystemClock
from runbooks.core.errors import BadInput, LockHeld, RunbookError
from runbooks.core.ports import Ports
from sandbox import control
from tests.contract.aws_helpers import FakeConn
from tests.fakes import FakeObjectVersions, FakeWorld, with_endpoints
from tests.helpers.moto import moto_empty, shared_session  # noqa: F401  (moto_empty: a fixture)
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
    moto: Any = None
    """The moto pair (tests/helpers/moto.py) of the AWS side, to read back what its ports wrote."""


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
    return Pair("aws", ports, moto.outputs.primary.name, moto.outputs.secondary.name, moto=moto)


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


# ---- the backup runbooks' ports: snapshots (BackupControl), object versions (ObjectVersions) ----


def test_a_snapshot_is_listed_with_its_tags_in_its_region_and_deleted_once(pair):
    b = pair.ports.backups
    tags = {MANAGED_TAG: MANAGED_VALUE, "regionpair:run-id": f"contract-{pair.kind}-snap"}
    snap = b.create_snapshot(pair.primary, pair.db, "contract-snap-1", tags)
    assert (snap.id, snap.region, snap.database, snap.kind, snap.tags) == (
        "contract-snap-1", pair.primary, pair.db, "manual", tags)
    assert b.create_snapshot(pair.primary, pair.db, "contract-snap-1", tags).id == snap.id  # idempotent by id
    if pair.let_time_pass is not None:
        pair.let_time_pass(60.0)  # the fake's snapshot is `creating` for a while
    (listed,) = [s for s in b.snapshots(pair.primary, pair.db) if s.id == snap.id]  # once, not twice
    assert (listed.status, listed.kind, listed.tags) == ("available", "manual", tags) and listed.created_at
    assert snap.id not in [s.id for s in b.snapshots(pair.secondary, pair.db)]  # held where it was taken
    assert isinstance(b.delete_snapshot(listed), str)
    assert snap.id not in [s.id for s in b.snapshots(pair.primary, pair.db)]
    assert "already gone" in b.delete_snapshot(listed)  # again: no error


def test_a_compliance_snapshot_is_refused_deletion_by_its_own_tags(pair):
    b = pair.ports.backups
    tags = {MANAGED_TAG: MANAGED_VALUE, TIER_TAG: COMPLIANCE}
    b.create_snapshot(pair.primary, pair.db, "contract-snap-compliance", tags)
    if pair.let_time_pass is not None:
        pair.let_time_pass(60.0)
    (listed,) = [s for s in b.snapshots(pair.primary, pair.db) if s.id == "contract-snap-compliance"]
    with pytest.raises(ComplianceRefused, match="contract-snap-compliance"):
        b.delete_snapshot(listed)
    with pytest.raises(ComplianceRefused):  # a caller's stale view without the tag: the snapshot's own tags decide
        b.delete_snapshot(replace(listed, tags={MANAGED_TAG: MANAGED_VALUE}))
    (kept,) = [s for s in b.snapshots(pair.primary, pair.db) if s.id == "contract-snap-compliance"]
    assert kept.tags == tags


@dataclass
class Versions:
    kind: str
    port: Any
    """The ObjectVersions port under test."""
    bucket: str
    prefix: str
    """A prefix of this test's own: the sandbox's buckets are shared by the module's tests."""
    put: Callable[[str, bytes], str]
    """Write an object as a client would (not through the port); returns its version id."""
    delete: Callable[[str], str]
    """Delete a key as a client would; returns the delete marker's version id."""


def etag(body: bytes) -> str:
    return f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag of a single-part upload


@pytest.fixture(params=["fake", "sandbox", "aws"])
def versions(request):
    """The object versions port over a versioned data bucket of the outputs (the DR region's): the
    fake; the sandbox's backup ports (S3Versions on the sandbox's moto S3); the AWS backup ports on moto."""
    prefix = f"contract-{uuid.uuid4().hex[:8]}/"
    if request.param == "fake":
        world = FakeWorld(contract_outputs.from_dict(pair_document()))
        objects = FakeObjectVersions(world)
        bucket = world.outputs.secondary.storage.data_bucket
        objects.status[bucket] = "Enabled"

        def put_fake(key: str, body: bytes) -> str:
            world.clock.advance(1.0)
            return objects.put(bucket, key, etag(body), len(body))

        def delete_fake(key: str) -> str:
            world.clock.advance(1.0)
            return objects.delete(bucket, key)
        yield Versions("fake", objects, bucket, prefix, put_fake, delete_fake)
        return
    if request.param == "sandbox":
        import boto3
        sb = request.getfixturevalue("sandbox_pair").ports.extras["sandbox"]
        ports = sandbox_backup_ports(sb.outputs, SystemClock())
        storage = sb.outputs.secondary.storage
        s3 = boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url=storage.endpoint_url,
                                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    else:  # only the bucket, not the whole pair: S3Versions needs no more than the outputs naming it
        request.getfixturevalue("moto_empty")
        outputs = contract_outputs.from_dict(pair_document())
        ports = aws.aws_backup_ports(outputs, FakeClock(), shared_session())
        storage, region = outputs.secondary.storage, outputs.secondary.name
        s3 = shared_session().client("s3", region_name=region)
        s3.create_bucket(Bucket=storage.data_bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=storage.data_bucket, VersioningConfiguration={"Status": "Enabled"})
    bucket = storage.data_bucket
    yield Versions(request.param, ports.objects, bucket, prefix,
                   lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"],
                   lambda key: s3.delete_object(Bucket=bucket, Key=key)["VersionId"])
    ports.close()


def test_versions_of_a_key_are_listed_newest_first_and_a_delete_marker_hides_it(versions):
    v = versions
    key, other = v.prefix + "a.json", v.prefix + "b.json"
    first, second = v.put(key, b"one"), v.put(key, b"two!")
    v.put(other, b"x")
    marker = v.delete(key)
    listed = v.port.versions(v.bucket, key)
    assert {x.key for x in listed} == {key}
    data, markers = [x for x in listed if not x.delete_marker], [x for x in listed if x.delete_marker]
    assert [(x.version_id, x.size, x.etag) for x in data] == [(second, 4, etag(b"two!")), (first, 3, etag(b"one"))]
    assert [(x.version_id, x.size) for x in markers] == [(marker, None)]
    assert [x.version_id for x in listed if x.is_latest] == [marker]  # the key reads as deleted
    assert markers[0].last_modified >= data[0].last_modified >= data[1].last_modified
    whole = v.port.versions(v.bucket, v.prefix)
    assert sorted({x.key for x in whole}) == [key, other] and len(whole) == 4
    assert [x.is_latest for x in whole if x.key == other] == [True]


def test_undelete_removes_exactly_the_marker_named_and_a_copy_back_is_the_new_latest(versions):
    v = versions
    key = v.prefix + "a.json"
    first, second = v.put(key, b"one"), v.put(key, b"two!")
    older, newer = v.delete(key), v.delete(key)
    assert v.port.delete_version(v.bucket, key, newer) is None
    listed = v.port.versions(v.bucket, key)
    assert sorted(x.version_id for x in listed) == sorted([first, second, older])
    assert [x.version_id for x in listed if x.is_latest] == [older]  # one marker left: still deleted
    v.port.delete_version(v.bucket, key, older)
    listed = v.port.versions(v.bucket, key)
    assert [x.version_id for x in listed] == [second, first] and [x.is_latest for x in listed] == [True, False]
    v.port.delete_version(v.bucket, key, older)  # gone already: no error, nothing else changes
    assert v.port.versions(v.bucket, key) == listed
    new = v.port.restore_version(v.bucket, key, first)
    listed = v.port.versions(v.bucket, key)
    assert new not in (first, second) and [x.version_id for x in listed] == [new, second, first]
    assert (listed[0].is_latest, listed[0].size, listed[0].etag) == (True, 3, etag(b"one"))  # first's content


def test_a_missing_key_is_an_empty_list_and_bad_requests_are_refused_changing_nothing(versions):
    v = versions
    assert v.port.versions(v.bucket, v.prefix + "nothing/") == []
    assert v.port.versioning(v.bucket) == "Enabled"
    key = v.prefix + "a.json"
    v.put(key, b"one")
    marker = v.delete(key)
    before = v.port.versions(v.bucket, v.prefix)
    stranger = "someone-elses-bucket"
    for call in (lambda: v.port.versioning(stranger), lambda: v.port.versions(stranger, ""),
                 lambda: v.port.delete_version(stranger, key, marker),
                 lambda: v.port.restore_version(stranger, key, marker)):
        with pytest.raises(BadInput, match=stranger):
            call()
    for version_id in (marker, "no-such-version"):  # a delete marker has no content to copy back
        with pytest.raises(RunbookError, match=version_id):
            v.port.restore_version(v.bucket, key, version_id)
    assert v.port.versions(v.bucket, v.prefix) == before


# ---- the notifier and the audit sink: what is written is read back whole, nothing secret-looking ----

SECRET, DSN_SECRET, TOKEN = "hunter2-contract", "s3cr3t-contract", "tok3n-contract"


def notifications(pair: Pair) -> Callable[[], list[tuple[str, str]]]:
    """Start listening to the pair's notifier; the returned call gives what arrived since, in order
    (AWS: what an SQS queue subscribed to the DR region's alarm topic, the first one notified, got)."""
    n = pair.ports.notifier
    if pair.kind == "fake":
        start = len(n.sent)
        return lambda: list(n.sent[start:])
    if pair.kind == "sandbox":
        start = len(core_notify.read_sink(n.path))
        return lambda: [(e["subject"], e["message"]) for e in core_notify.read_sink(n.path)[start:]]
    dr = pair.moto.outputs.secondary
    sqs = pair.moto.client("sqs", dr.name)
    queue = sqs.create_queue(QueueName="contract-ops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pair.moto.client("sns", dr.name).subscribe(TopicArn=dr.alarm_topic_arn, Protocol="sqs", Endpoint=arn)

    def heard() -> list[tuple[str, str]]:
        bodies = [json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10).get("Messages") or []]
        return [(b["Subject"], b["Message"]) for b in bodies]
    return heard


def test_a_notification_is_read_back_whole_and_nothing_secret_passes(pair):
    heard = notifications(pair)
    plain = ("regionpair failover: started", f"failover run contract-{pair.kind}: started\nus-east-1 -> us-west-2")
    pair.ports.notifier.notify(*plain)
    pair.ports.notifier.notify(f"regionpair failover: step failed token={TOKEN}",
                               f"connecting with password={SECRET} to postgresql://app:{DSN_SECRET}@db:5432/app failed")
    got = heard()
    assert len(got) == 2 and plain in got  # every line of it
    (subject, message), = [g for g in got if g != plain]
    assert subject.startswith("regionpair failover: step failed token=")
    assert message.startswith("connecting with password=") and message.endswith("@db:5432/app failed")
    assert SECRET not in str(got) and DSN_SECRET not in str(got) and TOKEN not in str(got)


def audit_entries(pair: Pair) -> Callable[[], list[dict]]:
    """What the pair's audit sink holds from now on, oldest first (the sandbox's chain field ``prev``
    dropped; AWS: the entries' objects in the DR backups bucket, whose keys sort by time)."""
    sink = pair.ports.audit_sink
    if pair.kind == "fake":
        start = len(sink.entries)
        return lambda: list(sink.entries[start:])
    if pair.kind == "sandbox":
        start = len(core_audit.read_sink(sink.path))
        return lambda: [{k: e[k] for k in e if k != "prev"} for e in core_audit.read_sink(sink.path)[start:]]
    dr = pair.moto.outputs.secondary
    s3, bucket = pair.moto.client("s3", dr.name), dr.storage.backups_bucket

    def held() -> list[dict]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="regionpair/audit/").get("Contents") or []
        return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
    return held


def test_an_audit_entry_is_read_back_whole_and_nothing_secret_passes(pair):
    held = audit_entries(pair)
    run = f"contract-{pair.kind}-audit"
    plain = {"at": "2026-11-22T05:00:00.000Z", "who": "alice@ops", "runbook": "failover", "run_id": run,
             "action": "fence", "target": f"{pair.primary}/{pair.db}", "result": "ok", "detail": "ingress revoked"}
    leaky = {**plain, "at": "2026-11-22T05:00:01.000Z", "action": "connect", "password": SECRET,
             "detail": f"dsn postgresql://app_admin:{DSN_SECRET}@db:5432/app password={SECRET}"}
    for entry in (plain, leaky):
        where = pair.ports.audit_sink.write(entry)
        assert isinstance(where, str) and where
    got = held()
    assert len(got) == 2 and got[0] == plain  # every field, as written
    assert {k: got[1][k] for k in plain if k != "detail"} == {k: leaky[k] for k in plain if k != "detail"}
    assert got[1]["detail"].startswith("dsn postgresql://app_admin:") and "password" in got[1]
    assert SECRET not in json.dumps(got) and DSN_SECRET not in json.dumps(got)


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
