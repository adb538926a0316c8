"""The retention runbook's tiers through its real CLI entry point, on the in-memory fakes (tests/fakes.py)."""

from __future__ import annotations

import io
import json

import pytest

from contract import outputs as contract
from runbooks import retention, snapshot
from runbooks.backups.ports import COMPLIANCE, TIER_TAG, ComplianceRefused, Snapshot
from runbooks.core import metrics
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.fakes import FakeBackups, FakeObjectVersions, FakeWorld, backup_ports
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"
LOCKED = {TIER_TAG: COMPLIANCE}


@pytest.fixture
def env(tmp_path):
    doc = pair_document(n_databases=1)
    doc_path = tmp_path / "outputs.json"
    doc_path.write_text(json.dumps(doc))
    world = FakeWorld(contract.load_file(doc_path))
    state = tmp_path / "state"
    backups = FakeBackups(world)
    ports = backup_ports(world, state, backups, FakeObjectVersions(world))

    def run(*extra, module=retention):
        out = io.StringIO()
        code = module.main(["--outputs", str(doc_path), "--state-dir", str(state), "--output", "json", *extra],
                           ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())

    class Env:
        pass
    e = Env()
    e.world, e.run, e.state, e.backups, e.doc_path = world, run, state, backups, doc_path
    return e


def tiers_of_every_kind(env):
    """Both regions: automated 10 and 40 days old, managed manual 20/100/120/130/200 days, compliance
    3000 days (past 7 years) and 400 days, a hand-made snapshot 500 days."""
    b = env.backups
    for region in (P, S):
        b.add_snapshot(region, "payments", "auto-10", 10, managed=False, kind="automated")
        b.add_snapshot(region, "payments", "auto-40", 40, managed=False, kind="automated")
        b.add_snapshot(region, "payments", "auto-50", 50, managed=False, kind="automated")
        for age in (20, 100, 120, 130, 200):
            b.add_snapshot(region, "payments", f"manual-{age}", age)
        b.add_snapshot(region, "payments", "legal-3000", 3000, tags=LOCKED)
        b.add_snapshot(region, "payments", "legal-400", 400, tags=LOCKED)
        b.add_snapshot(region, "payments", "by-hand", 500, managed=False)


def left(env, region):
    return {s.id for s in env.backups.snapshots(region, "payments")}


def test_each_tier_deletes_what_is_past_its_period_in_both_regions_and_says_why_it_kept_the_rest(env):
    tiers_of_every_kind(env)
    code, out = env.run("--yes", "--keep-newest", "2")
    assert code == EXIT_OK, out
    for region in (P, S):
        # automated: 30 days (the newest is within); manual: 90 days, newest 2 kept (manual-20, manual-100)
        assert left(env, region) == {"auto-10", "manual-20", "manual-100", "legal-3000", "legal-400", "by-hand"}
    deleted = sorted(line.split(" ")[0] for line in out["deleted"])
    assert deleted == sorted(f"{r}/{s}" for r in (P, S) for s in ("auto-40", "auto-50", "manual-120", "manual-130",
                                                                  "manual-200"))
    kept = {line.split(" ")[0]: line for line in out["kept"]}
    assert "never deleted by a runbook" in kept[f"{P}/legal-3000"] and "past the compliance period" in kept[f"{P}/legal-3000"]
    assert "one of the newest 2 manual" in kept[f"{S}/manual-100"]
    assert "no regionpair:managed-by tag" in kept[f"{P}/by-hand"]
    assert "within the automated tier's 30 days" in kept[f"{P}/auto-10"]
    audited = [json.loads(x) for x in (env.state / "audit.jsonl").read_text().splitlines()]
    assert sorted(a["target"] for a in audited if a["action"] == "delete-backup") == deleted
    series = metrics.read(env.state / "metrics" / "regionpair_backups.prom")
    assert series[metrics.RETENTION_DELETED][(("database", "payments"), ("region", P), ("tier", "manual"))] == 3
    assert series[metrics.RETENTION_KEPT][(("database", "payments"), ("region", S), ("tier", "compliance"))] == 2
    assert series[metrics.RETENTION_OLDEST][(("database", "payments"), ("region", P), ("tier", "compliance"))] \
        == pytest.approx(3000 * 86400)


def test_a_rerun_deletes_nothing_more(env):
    tiers_of_every_kind(env)
    assert env.run("--yes")[0] == EXIT_OK
    before = env.world.actions[:]
    code, out = env.run("--yes", "--new-run")
    assert code == EXIT_OK and out["deleted"] == [] and env.world.actions == before


def test_dry_run_lists_every_decision_and_deletes_nothing(env):
    tiers_of_every_kind(env)
    code, out = env.run("--dry-run")
    assert code == EXIT_OK and env.world.actions == []
    lines = out["decisions"]
    assert any(line.startswith(f"{S}/manual-200 [manual") and "DELETE" in line for line in lines)
    assert any(line.startswith(f"{P}/legal-3000 [compliance") and ": keep" in line for line in lines)
    assert len(lines) == 2 * 11


def test_asking_for_the_compliance_tier_is_refused_and_changes_nothing(env):
    tiers_of_every_kind(env)
    code, out = env.run("--yes", "--tier", "compliance")
    assert code == EXIT_BAD_INPUT and "never deleted by a runbook" in out["error"]
    assert env.world.actions == [] and not (env.state / "runs").exists()
    assert {"legal-3000", "legal-400"} <= left(env, P)


def test_the_runbooks_delete_refuses_a_compliance_backup_even_when_its_decision_says_delete(env):
    """A bug upstream (or a forged decision) that marks a compliance backup for deletion is refused at
    the only delete, before the port is called."""
    env.backups.add_snapshot(P, "payments", "legal", 3000, tags=LOCKED)
    legal = env.backups.snapshots(P, "payments")[0]

    class Ctx:
        ports = type("Ports", (), {"backups": env.backups})
        audit_action = staticmethod(lambda *a: pytest.fail("nothing may be audited as deleted"))
    with pytest.raises(ComplianceRefused, match="no runbook deletes it"):
        retention.delete(Ctx, retention.Decision(legal, "manual", True, "told to"))
    assert env.world.actions == [] and left(env, P) == {"legal"}


def test_a_compliance_snapshot_made_by_the_snapshot_runbook_is_never_deleted_by_its_retention(env):
    env.backups.add_snapshot(P, "payments", "legal-managed", 400, tags=LOCKED)  # managed tag AND compliance
    env.backups.add_snapshot(P, "payments", "plain-old", 400)
    code, out = env.run("--yes", "--enforce-retention", "--retention-days", "1", "--keep-newest", "1", "--no-copy",
                        module=snapshot)
    assert code == EXIT_OK, out
    assert "legal-managed" in left(env, P) and "plain-old" not in left(env, P)


@pytest.mark.parametrize("extra, message", [
    (["--automated-days", "36"], "at most 35"),
    (["--automated-days", "0"], "1 to 35"),
    (["--manual-days", "0"], "more than 0 days"),
    (["--keep-newest", "0"], "--keep-newest 1 or more"),
    (["--tier", "weekly"], "unknown"),
    (["--database", "nope"], "not in the outputs"),
])
def test_bad_input_names_what_is_wrong_and_changes_nothing(env, extra, message):
    tiers_of_every_kind(env)
    code, out = env.run("--yes", *extra)
    assert code == EXIT_BAD_INPUT and message in out["error"], out
    assert env.world.actions == [] and not (env.state / "runs").exists()


def test_only_the_tier_asked_for_is_enforced(env):
    tiers_of_every_kind(env)
    code, out = env.run("--yes", "--tier", "manual")
    assert code == EXIT_OK
    assert {"auto-40", "auto-50"} <= left(env, P)
    assert "manual-200" not in left(env, P)


def test_where_the_backend_expires_automated_backups_none_is_deleted_and_drift_is_reported(env):
    """AWS: RDS deletes automated backups itself; the runbook compares the period it holds with the tier."""
    tiers_of_every_kind(env)
    env.backups.expires_automated = True
    env.backups.automated_days = {(P, "payments"): 30, (S, "payments"): 7}
    code, out = env.run("--yes")
    assert code == EXIT_OK
    assert {"auto-40", "auto-50"} <= left(env, P) | left(env, S)
    assert out["drift"] == [f"{S}/payments automated backups: RDS keeps them 7 days, the tier says 30: DRIFT — set "
                            "backup_retention_days in the stack config and `pulumi up`"]
    assert "1 automated retention drift" in out["summary"]


def test_the_tiers_follow_the_outputs_backup_policy(env, tmp_path):
    doc = json.loads(env.doc_path.read_text())
    doc["backup_policy"] = {"snapshot_retention_days": 150, "snapshot_keep_newest": 1, "automated_retention_days": 45}
    with pytest.raises(contract.OutputsError, match="automated_retention_days"):
        contract.from_dict(doc)
    doc["backup_policy"]["automated_retention_days"] = 35
    env.doc_path.write_text(json.dumps(doc))
    tiers_of_every_kind(env)
    env.backups.add_snapshot(P, "payments", "auto-33", 33, managed=False, kind="automated")
    code, out = env.run("--yes")
    assert code == EXIT_OK
    # 35 automated days keep auto-33 (30 would not); 150 manual days keep up to manual-130
    assert left(env, P) == {"auto-10", "auto-33", "manual-20", "manual-100", "manual-120", "manual-130",
                            "legal-3000", "legal-400", "by-hand"}


def test_decide_keeps_what_is_not_available_or_undated():
    now = 1000 * 86400.0
    policy = retention.Policy(30, 90, 1)
    snaps = [Snapshot("creating", P, "db", "creating", 0.0, "manual", {"regionpair:managed-by": "snapshot-runbook"}),
             Snapshot("undated", P, "db", "available", None, "manual", {"regionpair:managed-by": "snapshot-runbook"}),
             Snapshot("newest", P, "db", "available", now - 86400, "manual", {"regionpair:managed-by": "snapshot-runbook"})]
    why = {d.snapshot.id: (d.delete, d.why) for d in retention.decide(snaps, now, policy)}
    assert why["creating"] == (False, "still creating")
    assert why["undated"] == (False, "its creation time is unknown")
    assert why["newest"][0] is False


# ---- --archive: the compliance archive ------------------------------------------------------------


def test_archive_puts_the_newest_compliance_snapshot_of_each_region_into_its_archive_once(env):
    tiers_of_every_kind(env)
    code, out = env.run("--yes", "--archive")
    assert code == EXIT_OK, out
    archived = [a for a in env.world.actions if a[0] == "archive"]
    # legal-400 is newer than legal-3000: it is the one archived, in each region
    assert sorted(archived) == [("archive", P, "legal-400", "archive-legal-400"),
                                ("archive", S, "legal-400", "archive-legal-400")]
    assert len(out["archived"]) == 2
    assert any(line.startswith(f"{S}/archive-legal-400 [archive of legal-400") and ": keep" in line
               for line in out["kept"])
    audited = [json.loads(x) for x in (env.state / "audit.jsonl").read_text().splitlines()]
    assert sorted(a["target"] for a in audited if a["action"] == "archive-backup") == [f"{P}/legal-400", f"{S}/legal-400"]
    code, again = env.run("--yes", "--archive", "--new-run")
    assert code == EXIT_OK and [a for a in env.world.actions if a[0] == "archive"] == archived
    assert again["archived"] == [] and {"legal-3000", "legal-400"} <= left(env, P)


def test_archive_without_any_archive_in_the_outputs_is_refused_and_changes_nothing(env):
    tiers_of_every_kind(env)
    env.backups.archive_regions = ()
    code, out = env.run("--yes", "--archive")
    assert code == EXIT_BAD_INPUT and "no compliance archive" in out["error"]
    assert env.world.actions == []


def test_archive_with_no_compliance_snapshot_says_how_to_take_one(env):
    env.backups.add_snapshot(P, "payments", "manual-1", 1)
    code, out = env.run("--dry-run", "--archive")
    assert code == EXIT_OK and env.world.actions == []
    [step] = [s for s in out["steps"] if s["name"] == f"archive:payments:{P}"]
    assert "snapshot --tag regionpair:retention-tier=compliance" in step["now"]


def test_archive_ids_are_valid_export_task_ids():
    s = Snapshot("Regionpair_payments--20261122T053000.123Z-ab12", P, "payments", "available", 0.0)
    aid = retention.archive_id(s)
    assert aid == "archive-regionpair-payments-20261122t053000-123z-ab12"
    assert len(retention.archive_id(Snapshot("x" * 100, P, "payments", "available", 0.0))) <= 60


def test_a_run_with_nothing_to_delete_still_says_what_it_kept_and_why_and_sets_the_metrics(env):
    env.backups.add_snapshot(P, "payments", "manual-5", 5)
    env.backups.add_snapshot(S, "payments", "legal", 3000, tags=LOCKED)
    code, out = env.run("--yes")
    assert code == EXIT_OK and out["deleted"] == []
    assert sorted(line.split(" ")[0] for line in out["kept"]) == [f"{P}/manual-5", f"{S}/legal"]
    series = metrics.read(env.state / "metrics" / "regionpair_backups.prom")
    assert series[metrics.RETENTION_KEPT][(("database", "payments"), ("region", S), ("tier", "compliance"))] == 1


def test_a_run_killed_between_two_deletions_is_finished_by_a_rerun(env):
    tiers_of_every_kind(env)
    env.world.crash_on = ("delete_snapshot", 3)
    from tests.fakes import Crash
    with pytest.raises(Crash):
        env.run("--yes", "--keep-newest", "2")
    assert len([a for a in env.world.actions if a[0] == "delete_snapshot"]) == 2
    code, out = env.run("--yes", "--keep-newest", "2")  # a plain rerun continues the unfinished run
    assert code == EXIT_OK, out
    for region in (P, S):
        assert left(env, region) == {"auto-10", "manual-20", "manual-100", "legal-3000", "legal-400", "by-hand"}
    deletes = [a for a in env.world.actions if a[0] == "delete_snapshot"]
    assert len(deletes) == 10 and len(set(deletes)) == 10, "each backup deleted once"
