"""snapshot, restore, verify_backup and undelete through their real CLI entry points, on the
in-memory fakes of tests/fakes.py (the same ports the adapters build)."""

from __future__ import annotations

import io
import json
import re

import pytest

from contract import outputs as contract
from runbooks import restore, snapshot, undelete, verify_backup
from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import MANAGED_TAG, ObjectVersion, TableState
from runbooks.core import metrics
from runbooks.core.clock import iso
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, BadInput
from runbooks.core.metrics import Sample
from tests.fakes import Crash, FakeBackups, FakeWorld, backup_ports
from tests.helpers.backups import DAY, P, S, window
from tests.samples import pair_document


def audit(env) -> list[dict]:
    path = env.state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def prom_series(path) -> dict:
    return metrics.read(path)


# ---- snapshot -------------------------------------------------------------------------------


def test_snapshot_copies_to_dr_with_its_key_and_tags_and_a_rerun_does_nothing(env):
    code, out = env.run(snapshot, "--yes", "--tag", "ticket=OPS-1")
    assert code == EXIT_OK, out
    for db in ("payments", "payments-1"):
        sid = out["snapshots"][db]
        (copy,) = [s for s in env.backups.snapshots(S, db) if s.id == sid]
        assert copy.status == "available" and copy.kms_key_id == env.world.outputs.regions[S].kms_key_arn
        assert copy.tags[MANAGED_TAG] == "snapshot-runbook" and copy.tags["ticket"] == "OPS-1"
    assert {a["action"] for a in audit(env)} >= {"snapshot", "copy"}
    assert len(env.ports.audit_sink.entries) == len(audit(env))  # every entry also went to the sink
    series = prom_series(out["metrics"])
    labels = {tuple(sorted(dict(k).items())) for k in series[metrics.LAST_BACKUP]}
    assert (("database", "payments"), ("kind", "manual"), ("region", P)) in labels
    assert (("database", "payments-1"), ("kind", "manual-copy"), ("region", S)) in labels
    before = len(env.world.actions)
    code, out2 = env.run(snapshot, "--yes", "--tag", "ticket=OPS-1", "--run-id", out["run_id"])
    assert code == EXIT_OK and len(env.world.actions) == before, "a rerun of a finished snapshot changes nothing"


def test_retention_deletes_only_old_managed_snapshots_never_the_newest_n_and_says_which(env):
    for i, age in enumerate([100, 90, 80, 70, 2]):
        env.backups.add_snapshot(P, "payments", f"old-{i}", age)
    env.backups.add_snapshot(P, "payments", "hand-made", 400, managed=False)
    env.backups.add_snapshot(P, "payments", "automated", 400, kind="automated")
    code, out = env.run(snapshot, "--yes", "--database", "payments", "--enforce-retention",
                        "--retention-days", "30", "--keep-newest", "3", "--no-copy")
    assert code == EXIT_OK, out
    left = {s.id for s in env.backups.snapshots(P, "payments")}
    # newest 3 managed: the new one, old-4 (2 days) and old-3 (70 days, kept by keep-newest)
    assert left == {out["snapshots"]["payments"], "old-4", "old-3", "hand-made", "automated"}
    assert sorted(d.split(" ")[0] for d in out["deleted"]) == [f"{P}/old-0", f"{P}/old-1", f"{P}/old-2"]
    deletions = [a for a in audit(env) if a["action"] == "delete-snapshot"]
    assert sorted(a["target"] for a in deletions) == [f"{P}/old-0", f"{P}/old-1", f"{P}/old-2"]


def test_retention_refuses_to_keep_nothing(env):
    code, out = env.run(snapshot, "--yes", "--enforce-retention", "--keep-newest", "0")
    assert code == EXIT_BAD_INPUT and "keep-newest" in out["error"]
    assert env.world.actions == []


# ---- restore --------------------------------------------------------------------------------


def test_restore_to_a_time_in_the_window_makes_a_new_instance_and_names_it(env):
    window(env)
    t = env.world.clock.time() - 3600
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", iso(t))
    assert code == EXIT_OK, out
    inst = out["instance"]
    assert inst["name"].startswith("restore-payments-") and inst["status"] == "available" and inst["region"] == P
    (call,) = [a for a in env.world.actions if a[0] == "restore"]
    assert call[1:] == (P, "payments", inst["name"], pytest.approx(t, abs=0.001))
    assert (("database", "payments"), ("region", P)) in prom_series(out["metrics"])[metrics.RESTORE_SECONDS]


@pytest.mark.parametrize("when, message", [
    (+3600, "is in the future"),
    (-30 * DAY, "outside the restorable window"),
])
def test_restore_outside_the_window_is_refused_with_its_bounds_and_creates_nothing(env, when, message):
    window(env)
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", iso(env.world.clock.time() + when))
    assert code == EXIT_BAD_INPUT and message in out["error"]
    if "window" in message:
        w = env.backups.windows[(P, "payments")]
        assert iso(w[0]) in out["error"] and iso(w[1]) in out["error"]
    assert env.backups.instances == {} and not (env.state / "runs").exists()


def test_restore_of_a_time_after_the_window_seals_first_then_restores(env):
    window(env, latest_ago=600)
    t = env.world.clock.time() - 60  # after the window's end, before now: sealing makes it restorable
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", iso(t))
    assert code == EXIT_OK, out


def test_restore_bad_input_names_what_is_wrong(env):
    window(env)
    cases = [(["--database", "nope"], "nope: not in the outputs"),
             ([], "one database at a time"),
             (["--database", "payments", "--to-time", "2026-01-01T00:00:00"], "no timezone"),
             (["--database", "payments", "--to-time", "yesterday"], "not a time"),
             (["--database", "payments", "--name", "prod-payments"], "a database of the stacks"),
             (["--database", "payments-1"], "no backup of payments-1")]
    for args, message in cases:
        code, out = env.run(restore, "--yes", *args)
        assert code == EXIT_BAD_INPUT and message in out["error"], (args, out)
    assert env.backups.instances == {} and [a for a in env.world.actions if a[0] == "restore"] == []


def test_restore_from_dr_uses_the_replicated_backups_in_dr(env):
    window(env, region=S)
    code, out = env.run(restore, "--yes", "--database", "payments", "--source-region", "dr", "--latest")
    assert code == EXIT_OK, out
    assert out["instance"]["region"] == S
    (call,) = [a for a in env.world.actions if a[0] == "restore"]
    assert call[1] == S and call[4] is None  # latest restorable time


def test_restore_killed_half_way_is_finished_by_a_rerun_without_a_second_instance(env):
    window(env)
    env.world.crash_on = ("restore", 1)
    with pytest.raises(Crash):
        env.run(restore, "--yes", "--database", "payments")
    code, out = env.run(restore, "--yes", "--database", "payments")
    assert code == EXIT_OK, out
    assert len(env.backups.instances) == 1


def test_restore_dry_run_shows_window_and_creates_nothing(env):
    window(env)
    code, out = env.run(restore, "--dry-run", "--database", "payments")
    assert code == EXIT_OK and out["result"] == "dry-run" and out["window"]["latest"]
    assert env.backups.instances == {} and env.world.actions == []
    # who looked is on the durable trail too, as for the failover
    [entry] = audit(env)
    assert (entry["action"], entry["target"], entry["result"]) == ("dry-run", "payments", "ok")
    assert env.ports.audit_sink.entries == [entry]


def test_a_declined_backup_runbook_is_audited_and_changes_nothing(env):
    window(env)
    code, out = env.run(restore, "--database", "payments")  # no --yes, no terminal to ask
    assert code != EXIT_OK and env.backups.instances == {}
    [entry] = audit(env)
    assert (entry["action"], entry["result"]) == ("decision", "declined") and "nothing was changed" in entry["detail"]
    assert env.ports.audit_sink.entries == [entry]


# ---- verify_backup --------------------------------------------------------------------------


def test_verify_passes_tears_down_and_records_result_and_duration(env):
    window(env)
    window(env, db="payments-1")
    code, out = env.run(verify_backup, "--yes")
    assert code == EXIT_OK, out
    assert out["passed"] and all(v["passed"] for v in out["verification"].values())
    assert env.backups.instances == {}, "temporary instances torn down"
    series = prom_series(out["metrics"])
    assert set(series[metrics.VERIFY_OK].values()) == {1.0}
    assert all(v > 0 for v in series[metrics.VERIFY_SECONDS].values())
    assert {a["result"] for a in audit(env) if a["action"] == "verification"} == {"passed"}
    (ref,) = [a for a in env.world.actions if a[0] == "reference" and a[2] == "payments"]
    restores = [a for a in env.world.actions if a[0] == "restore" and a[2] == "payments"]
    assert restores[0][4] is not None and restores[0][3].startswith("verify-payments-")


def test_verify_fails_loudly_on_a_backup_that_differs_and_still_tears_down(env):
    window(env)
    env.backups.restored_tables = {"public.drill_writes": TableState(99, "12000")}
    env.backups.amcheck_problems = ["index drill_writes_pkey lacks a heap tuple"]
    code, out = env.run(verify_backup, "--yes", "--database", "payments")
    assert code == EXIT_FAILED
    assert "VERIFICATION FAILED" in out["error"] and "99 rows restored, the source had 100" in out["error"]
    assert "amcheck" in out["error"]
    assert env.backups.instances == {}
    assert set(prom_series(out["metrics"])[metrics.VERIFY_OK].values()) == {0.0}
    assert [a["result"] for a in audit(env) if a["action"] == "verification"] == ["FAILED"]


def test_verify_whose_restore_fails_tears_down_and_fails(env):
    window(env)
    env.backups.fail_restore = "corrupt"
    code, out = env.run(verify_backup, "--yes", "--database", "payments")
    assert code == EXIT_FAILED and "failed" in out["error"]
    assert env.backups.instances == {}
    assert ("delete_instance", P, next(a[3] for a in env.world.actions if a[0] == "restore")) in env.world.actions


def test_verify_interrupted_between_steps_tears_the_instance_down_anyway(env):
    window(env)
    env.world.crash_on = ("integrity", 1)
    with pytest.raises(Crash):
        env.run(verify_backup, "--yes", "--database", "payments")
    assert env.backups.instances == {}, "the temporary instance outlived an interrupted run"


def test_verify_without_any_backup_is_bad_input(env):
    code, out = env.run(verify_backup, "--yes", "--database", "payments")
    assert code == EXIT_BAD_INPUT and "no backup of payments" in out["error"]


# ---- undelete -------------------------------------------------------------------------------


def _v(key, vid, t, latest=False, marker=False, etag=None):
    return ObjectVersion(key, vid, t, latest, marker, None if marker else 1, etag)


def test_plan_keys_deleted_overwritten_created_later_and_unchanged():
    t = 100.0
    versions = [
        _v("a", "a1", 50), _v("a", "a-del", 150, latest=True, marker=True),                 # deleted after T
        _v("b", "b1", 50, etag="1"), _v("b", "b2", 150, latest=True, etag="2"),                 # overwritten
        _v("c", "c1", 150, latest=True),                                                        # created after
        _v("d", "d1", 50, latest=True),                                                         # unchanged
        _v("e", "e1", 40), _v("e", "e-del", 60, marker=True), _v("e", "e2", 150, latest=True),  # deleted at T
        _v("f", "f1", 50), _v("f", "f-d1", 120, marker=True), _v("f", "f-d2", 130, latest=True, marker=True),
    ]
    plans = {p.key: p for p in undelete.plan_keys(versions, t)}
    # a deleted key is copied back over its delete markers, which stay: the runbook role may not delete versions
    assert plans["a"].action == "copy-back" and plans["a"].markers == ("a-del",) and "delete marker" in plans["a"].why
    assert plans["b"].action == "copy-back" and plans["b"].version.version_id == "b1"
    assert plans["c"].action == "leave" and "created after" in plans["c"].why
    assert plans["d"].action == "leave" and "unchanged" in plans["d"].why
    assert plans["e"].action == "leave" and "already deleted" in plans["e"].why
    assert plans["f"].action == "copy-back" and set(plans["f"].markers) == {"f-d1", "f-d2"}
    assert plans["f"].version.version_id == "f1"


def test_undelete_brings_back_deleted_and_overwritten_objects(env):
    bucket = "regionpair-prod-data"
    o = env.objects
    o.status[bucket] = "Enabled"
    o.put(bucket, "orders/1.json", "e1")
    o.put(bucket, "orders/2.json", "e2")
    o.put(bucket, "other/3.json", "e3")
    env.world.clock.advance(60)
    t = env.world.clock.time()
    env.world.clock.advance(60)
    o.delete(bucket, "orders/1.json")
    o.put(bucket, "orders/2.json", "e2-bad")
    o.delete(bucket, "other/3.json")
    code, out = env.run(undelete, "--dry-run", "--bucket", bucket, "--prefix", "orders/", "--to-time", iso(t))
    assert code == EXIT_OK and len(out["steps"]) == 2 and len(out["listing"]) == 2
    assert not [a for a in env.world.actions if a[0] in ("delete_version", "copy_version")], "dry run changed nothing"
    code, out = env.run(undelete, "--yes", "--bucket", bucket, "--prefix", "orders/", "--to-time", iso(t))
    assert code == EXIT_OK, out
    current = {v.key: v for v in o.versions(bucket, "") if v.is_latest}
    assert not current["orders/1.json"].delete_marker and current["orders/1.json"].etag == "e1"
    assert current["orders/2.json"].etag == "e2"
    assert current["other/3.json"].delete_marker, "outside the prefix: untouched"
    # no version deleted, not even a delete marker: the runbook role has no s3:DeleteObjectVersion
    assert not [a for a in env.world.actions if a[0] == "delete_version"]
    assert sorted(a[2] for a in env.world.actions if a[0] == "copy_version") == ["orders/1.json", "orders/2.json"]
    code, out = env.run(undelete, "--yes", "--bucket", bucket, "--prefix", "orders/", "--to-time", iso(t),
                        "--new-run")
    assert code == EXIT_OK and out["summary"].startswith("0 object(s)")


@pytest.mark.parametrize("status", [None, "Suspended"])
def test_undelete_refuses_a_bucket_without_versioning_and_changes_nothing(env, status):
    bucket = "regionpair-prod-data"
    env.objects.status[bucket] = status
    code, out = env.run(undelete, "--yes", "--bucket", bucket, "--to-time", iso(env.world.clock.time() - 60))
    assert code == EXIT_BAD_INPUT and "no versioning" in out["error"]
    assert env.world.actions == [] and not (env.state / "runs").exists()


def test_undelete_refuses_a_time_in_the_future_and_an_unknown_bucket(env):
    env.objects.status["regionpair-prod-data"] = "Enabled"
    code, out = env.run(undelete, "--yes", "--bucket", "regionpair-prod-data",
                        "--to-time", iso(env.world.clock.time() + 60))
    assert code == EXIT_BAD_INPUT and "in the future" in out["error"]
    code, out = env.run(undelete, "--yes", "--bucket", "somebody-elses", "--to-time", iso(env.world.clock.time()))
    assert code == EXIT_BAD_INPUT and "somebody-elses" in out["error"]


def test_undelete_takes_no_database_option(env, capsys):
    # it works on a bucket: a --database would be silently ignored, so it is refused instead
    with pytest.raises(SystemExit) as exc:
        undelete.main(["--bucket", "regionpair-prod-data", "--to-time", "2026-11-22T05:30:00Z",
                       "--database", "payments"])
    assert exc.value.code == 2 and "--database" in capsys.readouterr().err
    assert env.world.actions == []
    assert "--database" not in backup_cli.parser(undelete.RUNBOOK).format_help()

# ---- shared: time parsing, metrics file, confirmation ------------------------------------------


def test_parse_time_wants_a_timezone():
    assert backup_cli.parse_time("2026-11-22T05:30:00Z") == backup_cli.parse_time("2026-11-22T06:30:00+01:00")
    with pytest.raises(BadInput, match="no timezone"):
        backup_cli.parse_time("2026-11-22T05:30:00")


_PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                        r'[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$')


def test_metrics_file_is_valid_text_format_and_keeps_other_series(tmp_path):
    path = tmp_path / "m.prom"
    metrics.update(path, [Sample(metrics.VERIFY_OK, 1, {"database": "a", "region": "r"}, "h"),
                          Sample(metrics.LAST_BACKUP, 1795325734.7950954, {"database": 'we"ird', "region": "r"}, "h")])
    metrics.update(path, [Sample(metrics.VERIFY_OK, 0, {"database": "b", "region": "r"}, "h")])
    text = path.read_text()
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _PROM_LINE.match(line), line
    series = metrics.read(path)
    assert series[metrics.VERIFY_OK] == {(("database", "a"), ("region", "r")): 1.0,
                                         (("database", "b"), ("region", "r")): 0.0}
    assert series[metrics.LAST_BACKUP][(("database", 'we"ird'), ("region", "r"))] == 1795325734.7950954
    assert not list(tmp_path.glob(".*tmp")), "written through a temporary file, renamed"


def test_no_yes_and_no_terminal_is_refused_before_anything_is_done(env):
    window(env)
    code, out = env.run(restore, "--database", "payments")
    assert code == EXIT_BAD_INPUT and "--yes" in out["error"]
    assert env.backups.instances == {}


# ---- the outputs' optional backup_policy ----------------------------------------------------------


def test_backup_policy_is_optional_validated_and_survives_merge():
    doc = pair_document()
    assert contract.from_dict(doc).backup_policy is None
    doc["backup_policy"] = {"snapshot_retention_days": 14, "snapshot_keep_newest": 2}
    parsed = contract.from_dict(doc)
    assert parsed.backup_policy == contract.BackupPolicy(14, 2)
    assert contract.from_dict(json.loads(parsed.to_json())) == parsed
    prod = json.loads(json.dumps(doc))
    del prod["regions"][S]
    prod["stack"] = "prod"
    assert contract.merge(contract.from_dict(prod), parsed).backup_policy == parsed.backup_policy
    doc["backup_policy"]["snapshot_keep_newest"] = 0
    with pytest.raises(contract.OutputsError, match="backup_policy.snapshot_keep_newest"):
        contract.from_dict(doc)


def test_retention_follows_the_outputs_policy_unless_overridden(tmp_path):
    doc = pair_document()
    doc["backup_policy"] = {"snapshot_retention_days": 10, "snapshot_keep_newest": 1}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    world = FakeWorld(contract.load_file(path))
    backups = FakeBackups(world)
    for sid, age in (("a", 20), ("b", 5)):
        backups.add_snapshot(P, "payments", sid, age)
    ports = backup_ports(world, tmp_path / "state", backups)

    def run(*extra):
        out = io.StringIO()
        code = snapshot.main(["--outputs", str(path), "--state-dir", str(tmp_path / "state"), "--output", "json",
                              "--yes", "--no-copy", "--enforce-retention", *extra],
                             ports_factory=lambda o, c: ports, clock=world.clock, stdin=io.StringIO(), stdout=out)
        return code, json.loads(out.getvalue())
    code, out = run()
    assert code == EXIT_OK and [d.split(" ")[0] for d in out["deleted"]] == [f"{P}/a"]  # 20 days > 10
    code, out = run("--retention-days", "1", "--new-run")
    assert code == EXIT_OK and [d.split(" ")[0] for d in out["deleted"]] == [f"{P}/b"]  # keep newest 1 only
