"""Issue 12, "wrong results today": each runbook says what is true, and changes nothing when there
is nothing to do or the operator's intent differs from the run it would resume."""

from __future__ import annotations

import pytest

from runbooks import failback, failover
from runbooks.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.fakes import RunbookEnv, with_streams
from tests.samples import pair_document
from tests.unit.test_runbooks_streams import streams_document

P, S = "us-east-1", "us-west-2"


# ---- failback on a pair that never failed over ---------------------------------------------


@pytest.mark.parametrize("doc,setup", [(pair_document(n_databases=2), None), (streams_document(), with_streams)],
                         ids=["databases", "databases-kafka-s3"])
def test_failback_on_a_pair_that_never_failed_over_changes_nothing(tmp_path, doc, setup):
    env = RunbookEnv(tmp_path, doc, setup=setup)
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK, out
    assert env.world.actions == []
    assert out["result"] == "nothing-to-do"
    assert "nothing to fail back" in out["note"] and "never failed over" in out["note"]
    assert not any(d.fenced for d in env.world.dbs.values())
    code, text = env.dry_run(failback)
    assert code == EXIT_OK and "nothing to fail back" in text and env.world.actions == []


def test_failback_after_a_failover_is_not_mistaken_for_nothing_to_do(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    assert env.run(failover, "--yes")[0] == EXIT_OK
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK and out["result"] == "ok"
    assert ("fence", S, "payments") in env.world.actions


def test_failback_with_one_database_still_on_dr_fails_it_back(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    assert env.run(failover, "--yes", "--database", "payments-1")[0] == EXIT_OK
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK and out["result"] == "ok", out
    assert env.world.dbs[(P, "payments-1")].role == "primary" and env.world.dns["payments-1"] == P


# ---- a run id is never resumed with a different intent --------------------------------------


from runbooks import restore, snapshot  # noqa: E402
from runbooks.clock import iso  # noqa: E402
from tests.fakes import Crash  # noqa: E402
from tests.unit.test_backup_runbooks import env as backup_env  # noqa: E402,F401  (the fixture)
from tests.unit.test_backup_runbooks import window  # noqa: E402

DAY = 86400.0


def test_restore_rerun_with_another_time_is_refused_not_resumed(backup_env):  # noqa: F811
    env = backup_env
    window(env)
    now = env.world.clock.time()
    t1, t2 = iso(now - 3600), iso(now - 1800)
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", t1, "--timeout", "5")
    assert code == 1 and "available" in out["error"], out  # the restore to T1 timed out
    first = out["run_id"]
    restores = [a for a in env.world.actions if a[0] == "restore"]
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", t2)
    assert code == EXIT_BAD_INPUT, out
    assert first in out["error"] and f"to_time: the run has {t1}, this invocation {t2}" in out["error"]
    assert "--new-run" in out["error"] and "nothing was changed" in out["error"]
    assert [a for a in env.world.actions if a[0] == "restore"] == restores
    # the same intent (the time written another way) resumes it; --new-run starts a new restore to T2
    same = iso(now - 3600).replace("Z", "+00:00")
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", same)
    assert code == EXIT_OK and out["run_id"] == first, out
    code, out = env.run(restore, "--yes", "--database", "payments", "--to-time", t2, "--new-run")
    assert code == EXIT_OK and out["run_id"] != first
    assert env.backups.instances[(P, out["instance"]["name"])]["to_time"] == pytest.approx(now - 1800, abs=0.001)


def test_snapshot_rerun_for_another_database_is_refused_not_resumed(backup_env):  # noqa: F811
    env = backup_env
    env.world.crash_on = ("copy_snapshot", 1)
    with pytest.raises(Crash):
        env.run(snapshot, "--yes", "--database", "payments")
    before = list(env.world.actions)
    code, out = env.run(snapshot, "--yes", "--database", "payments-1")
    assert code == EXIT_BAD_INPUT and "databases: the run has payments, this invocation payments-1" in out["error"]
    assert env.world.actions == before


def test_failover_rerun_for_other_databases_is_refused_not_resumed(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    env.world.crash_on = ("promote", 1)
    with pytest.raises(Crash):
        env.run(failover, "--yes", "--database", "payments")
    before = list(env.world.actions)
    code, out = env.run(failover, "--yes")  # all databases: payments-1's gates would be skipped
    assert code == EXIT_BAD_INPUT, out
    assert "databases: the run has payments, this invocation payments, payments-1" in out["error"]
    assert env.world.actions == before
    code, out = env.run(failover, "--yes", "--database", "payments")
    assert code == EXIT_OK and out["result"] == "ok"


# ---- the stacks drill without the Pulumi CLI -------------------------------------------------


def _drill(argv):
    import io
    import json
    from runbooks import drill
    out = io.StringIO()
    code = drill.main(argv + ["--output", "json"], stdout=out)
    return code, json.loads(out.getvalue())


def test_stacks_drill_without_the_pulumi_cli_refuses_up_front(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no pulumi on it
    report = tmp_path / "report"
    code, out = _drill(["--target", "stacks", "--report-dir", str(report)])
    assert code == EXIT_BAD_INPUT, out
    assert "pulumi CLI is not on PATH" in out["error"] and "--target sandbox" in out["error"]
    assert not report.exists()


def test_stacks_drill_outside_the_project_refuses_up_front(tmp_path, monkeypatch):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pulumi").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    report = tmp_path / "report"
    code, out = _drill(["--target", "stacks", "--report-dir", str(report), "--project-dir", str(tmp_path)])
    assert code == EXIT_BAD_INPUT and "Pulumi.prod.yaml" in out["error"] and "--project-dir" in out["error"], out
    assert not report.exists()
