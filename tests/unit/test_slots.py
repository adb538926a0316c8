"""Logical replication slots: the backup document, the recreation and its gap, the failover and
switchover step, and the two runbooks (backup_slots, recreate_slots) on in-memory fakes."""

from __future__ import annotations

import copy
import io
import json

import pytest

from contract import outputs as contract
from contract.slot_backup import SlotBackup, SlotDocumentError, int_to_lsn, lsn_to_int, parse
from runbooks import backup_slots, failover, recreate_slots, switchover
from runbooks.backups.slots import LiveSlot, SlotTarget, recreate, reread_since
from runbooks.core import metrics
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, StepFailed, Unreachable
from tests.fakes import FakeBackups, FakeObjectVersions, FakeWorld, RunbookEnv, backup_ports
from tests.helpers.slots import GOOD
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


# ---- the document ----------------------------------------------------------------------------


def test_a_good_document_parses():
    b = parse(copy.deepcopy(GOOD))
    assert b.slots[0].name == "cdc" and b.slots[0].confirmed_flush_lsn == "0/300"
    assert b.publications[0].tables == ("public.orders",) and b.publications[0].truncate is False
    assert lsn_to_int("1/10") == (1 << 32) + 16 and int_to_lsn(lsn_to_int("1A/FF")) == "1A/FF"


@pytest.mark.parametrize("mutate, named", [
    (lambda d: d.pop("slots"), "slot backup.slots is missing"),
    (lambda d: d.update(schema_version=2), "schema_version = 2"),
    (lambda d: d["slots"][0].update(confirmed_flush_lsn="yesterday"), "slots[0].confirmed_flush_lsn"),
    (lambda d: d["slots"][0].update(name="CDC; drop table x"), "slots[0].name"),
    (lambda d: d.update(server_lsn=None), "server_lsn"),
    (lambda d: d.update(captured_at="today"), "captured_at"),
])
def test_a_broken_document_is_refused_naming_the_field(mutate, named):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(SlotDocumentError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse(doc)


# ---- the recreation and its gap ----------------------------------------------------------------


class FakeSlots:
    """SlotControl over a FakeWorld: per server (region, database, instance) its logical slots and
    publications; a replica refuses to create a slot as PostgreSQL 15 does."""

    def __init__(self, world: FakeWorld | None = None):
        self.world = world
        self.servers: dict[tuple, dict] = {}
        self.created: list[tuple] = []
        self.lsn = 0x1000

    def server(self, t: SlotTarget) -> dict:
        if self.world is not None and t.instance is None:
            self.world.db(t.region, t.database)  # Unreachable when the region is down
        return self.servers.setdefault((t.region, t.database, t.instance), {"slots": {}, "pubs": set()})

    def capture(self, t: SlotTarget) -> dict:
        s = self.server(t)
        d = self.world.db(t.region, t.database) if self.world else None
        return {"schema_version": 1, "database": "app", "captured_at": self.world.clock.time() if self.world else 1.0,
                "server_lsn": int_to_lsn(self.lsn), "in_recovery": bool(d and d.role == "replica"),
                "read_only": bool(d and d.fenced),
                "slots": [{"name": n, "plugin": x.plugin, "confirmed_flush_lsn": x.confirmed_flush_lsn}
                          for n, x in sorted(s["slots"].items())],
                "publications": [{"name": p, "all_tables": True} for p in sorted(s["pubs"])]}

    def existing(self, t):
        return dict(self.server(t)["slots"])

    def create(self, t, slot):
        s = self.server(t)
        if self.world is not None and t.instance is None and self.world.db(t.region, t.database).role == "replica":
            raise StepFailed("logical decoding cannot be used while in recovery")
        self.lsn += 0x40
        s["slots"][slot.name] = LiveSlot(slot.name, slot.plugin, int_to_lsn(self.lsn))
        self.created.append((t, slot.name))
        return int_to_lsn(self.lsn)

    def publications(self, t):
        return set(self.server(t)["pubs"])

    def create_publication(self, t, pub):
        self.server(t)["pubs"].add(pub.name)
        return f"publication {pub.name} created"


class ListStore:
    def __init__(self, docs=()):
        self.docs = [parse(d, f"doc{i}") for i, d in enumerate(docs)]
        self.down = False

    def put(self, database, doc):
        self.docs.append(parse(doc, f"doc{len(self.docs)}"))
        return [f"store/{database}/{len(self.docs)}"]

    def backups(self, database):
        if self.down:
            raise Unreachable("every copy is unreachable")
        return sorted(self.docs, key=lambda b: b.captured_at)


def backup(captured_at: float, server_lsn: str, confirmed: str | None) -> SlotBackup:
    doc = copy.deepcopy(GOOD)
    doc.update(captured_at=captured_at, server_lsn=server_lsn)
    doc["slots"][0]["confirmed_flush_lsn"] = confirmed
    return parse(doc)


def test_the_gap_is_the_wal_between_what_the_consumer_confirmed_and_where_the_new_slot_starts():
    control = FakeSlots()
    control.lsn = 0x800  # the promoted server is at 0/800; the new slot starts at 0/840
    history = [backup(100.0, "0/100", "0/80"), backup(200.0, "0/280", "0/250"), backup(300.0, "0/500", "0/300")]
    gaps, notes = recreate(control, SlotTarget(S, "payments"), history[-1], history)
    (g,) = gaps
    assert (g.created_at_lsn, g.gap_bytes) == ("0/840", 0x840 - 0x300)
    assert g.reread_since == 200.0, "the newest capture whose server position was at or before 0/300"
    assert "re-read" in g.sentence() and notes == ["publication cdc_pub created"]
    again, _ = recreate(control, SlotTarget(S, "payments"), history[-1], history)
    assert not again[0].created and len(control.created) == 1, "a rerun creates nothing"


def test_a_consumer_ahead_of_the_new_server_is_told_to_discard_and_an_unbounded_gap_to_resnapshot():
    control = FakeSlots()
    control.lsn = 0x100
    gaps, _ = recreate(control, SlotTarget(S, "payments"), backup(300.0, "0/500", "0/300"), [])
    assert gaps[0].gap_bytes < 0 and "discard" in gaps[0].sentence()
    control2 = FakeSlots()
    control2.lsn = 0x900
    gaps, _ = recreate(control2, SlotTarget(S, "payments"), backup(300.0, "0/500", "0/300"),
                       [backup(300.0, "0/500", "0/300")])
    assert gaps[0].reread_since is None and "re-snapshot everything" in gaps[0].sentence()
    assert reread_since([backup(1.0, "0/10", None)], None) is None


# ---- the failover and switchover step ----------------------------------------------------------


def slot_env(tmp_path, store: ListStore) -> tuple[RunbookEnv, FakeSlots]:
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    control = FakeSlots(env.world)
    make = env.world.ports

    def ports(lock_path):
        p = make(lock_path)
        p.slots, p.slot_store = control, store
        return p
    env.world.ports = ports
    return env, control


def test_failover_recreates_the_backed_up_slots_after_the_promotion_before_dns(tmp_path):
    store = ListStore([dict(GOOD, database="app", captured_at=0.0)])
    env, control = slot_env(tmp_path, store)
    env.world.kill_region(P)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    names = [s["name"] for s in out["steps"]]
    assert names.index("promote:payments") < names.index("slots:payments") < names.index("dns:payments")
    assert control.created == [(SlotTarget(S, "payments"), "cdc")]
    (gap,) = out["cdc_slots"]["payments"]["gaps"]
    assert gap["confirmed_flush_lsn"] == "0/300" and gap["gap_bytes"] == lsn_to_int(gap["created_at_lsn"]) - 0x300
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and len(control.created) == 1, "a rerun recreates nothing"


def test_a_slot_that_cannot_be_created_never_holds_up_the_failover(tmp_path):
    store = ListStore([GOOD])
    env, control = slot_env(tmp_path, store)

    def refuse(t, slot):
        raise StepFailed("logical decoding requires wal_level >= logical")
    control.create = refuse
    env.world.kill_region(P)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    step = next(s for s in out["steps"] if s["name"] == "slots:payments")
    assert step["status"] == "best-effort-failed" and "wal_level" in step["result"]
    assert env.world.dns["payments"] == S


def test_switchover_takes_the_live_definitions_of_the_fenced_source(tmp_path):
    store = ListStore([dict(GOOD, captured_at=0.0)])  # an old backup: the live slot is fresher
    env, control = slot_env(tmp_path, store)
    control.servers[(P, "payments", None)] = {"slots": {"cdc": LiveSlot("cdc", "test_decoding", "0/900")},
                                              "pubs": set()}
    code, out = env.run(switchover, "--yes")
    assert code == EXIT_OK, out
    (gap,) = out["cdc_slots"]["payments"]["gaps"]
    assert gap["confirmed_flush_lsn"] == "0/900" and gap["plugin"] == "test_decoding"
    assert "live slots" in out["cdc_slots"]["payments"]["definitions_from"]


def test_without_the_slot_ports_the_plans_have_no_slot_step(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and not any(s["name"].startswith("slots:") for s in out["steps"])


# ---- backup_slots and recreate_slots through their CLIs ------------------------------------------


@pytest.fixture
def benv(tmp_path):
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(pair_document(n_databases=1)))
    world = FakeWorld(contract.load_file(doc_path))
    state = tmp_path / "state"
    ports = backup_ports(world, state, FakeBackups(world), FakeObjectVersions(world))
    ports.slots, ports.slot_store = FakeSlots(world), ListStore()
    ports.slots.servers[(P, "payments", None)] = {"slots": {"cdc": LiveSlot("cdc", "pgoutput", "0/F00")},
                                                  "pubs": {"cdc_pub"}}

    def run(module, *extra):
        out = io.StringIO()
        code = module.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json", *extra],
                           ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())
    return run, world, ports, state


def test_backup_slots_keeps_the_writable_primarys_slots_with_metrics_and_audit(benv):
    run, world, ports, state = benv
    code, out = run(backup_slots, "--yes")
    assert code == EXIT_OK, out
    assert out["captures"]["payments"]["region"] == P and out["captures"]["payments"]["slots"] == ["cdc"]
    (kept,) = ports.slot_store.docs
    assert kept.slots[0].confirmed_flush_lsn == "0/F00"
    series = metrics.read(out["metrics"])
    assert series[metrics.SLOT_COUNT][(("database", "payments"), ("region", P))] == 1
    assert series[metrics.SLOT_LAG_BYTES][(("database", "payments"), ("region", P), ("slot", "cdc"))] == 0x1000 - 0xF00
    entries = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    assert any(e["action"] == "backup-slots" and e["target"] == f"{P}/payments" for e in entries)


def test_backup_slots_refuses_two_writable_primaries_and_keeps_nothing(benv):
    run, world, ports, state = benv
    world.dbs[(S, "payments")].role = "primary"  # split brain
    code, out = run(backup_slots, "--yes")
    assert code == EXIT_FAILED and "both writable primaries" in out["error"], out
    assert ports.slot_store.docs == []


def test_backup_slots_skips_a_fenced_former_primary(benv):
    run, world, ports, state = benv
    world.dbs[(P, "payments")].fenced = True
    world.dbs[(S, "payments")].role = "primary"
    code, out = run(backup_slots, "--yes")
    assert code == EXIT_OK and out["captures"]["payments"]["region"] == S, out


def test_backup_slots_bad_region_is_bad_input_with_nothing_written(benv):
    run, world, ports, state = benv
    code, out = run(backup_slots, "--yes", "--region", "mars-1")
    assert code == EXIT_BAD_INPUT and "--region mars-1" in out["error"]
    assert ports.slot_store.docs == [] and not (state / "runs").exists()


def test_recreate_slots_refuses_without_a_backup_or_an_instance_and_changes_nothing(benv):
    run, world, ports, state = benv
    code, out = run(recreate_slots, "--yes", "--database", "payments", "--instance", "restore-payments-1")
    assert code == EXIT_BAD_INPUT and "no restored instance" in out["error"], out
    code, out = run(recreate_slots, "--yes", "--database", "payments", "--region", P)
    assert code == EXIT_BAD_INPUT and "no slot backup of payments" in out["error"], out
    code, out = run(recreate_slots, "--yes", "--database", "payments")
    assert code == EXIT_BAD_INPUT and "--instance NAME" in out["error"]
    assert ports.slots.created == [] and not (state / "runs").exists()


def test_recreate_slots_on_a_restored_instance_creates_them_and_reports_the_gap(benv, monkeypatch):
    run, world, ports, state = benv
    assert run(backup_slots, "--yes")[0] == EXIT_OK
    from runbooks.backups.ports import Instance
    monkeypatch.setattr(ports.backups, "instance",
                        lambda region, name: Instance(name, region, "payments", "available"))
    code, out = run(recreate_slots, "--yes", "--database", "payments", "--instance", "restore-payments-1")
    assert code == EXIT_OK, out
    assert ports.slots.created == [(SlotTarget(P, "payments", "restore-payments-1"), "cdc")]
    (gap,) = out["gaps"]
    assert gap["created"] and gap["gap_bytes"] == lsn_to_int(gap["created_at_lsn"]) - 0xF00
    code, out = run(recreate_slots, "--yes", "--database", "payments", "--instance", "restore-payments-1", "--new-run")
    assert code == EXIT_OK and len(ports.slots.created) == 1


def test_a_switchover_resumed_after_the_source_became_a_replica_uses_the_backup(tmp_path):
    store = ListStore([dict(GOOD, captured_at=0.0)])
    env, control = slot_env(tmp_path, store)
    env.world.dbs[(P, "payments")].role = "replica"  # as after the protect phase of an earlier run
    from runbooks.plans.cdc_slots import slots_step
    from runbooks.plans.context import Context
    ports = env.world.ports(env.state / "lock.json")
    ctx = Context(outputs=env.world.outputs, ports=ports, source=P, target=S, databases=["payments"])
    step = slots_step(ctx, "payments", planned=True)
    c = step.check()
    assert "definitions from backup" in c.sentence and "replica now" in c.sentence, c.sentence
