"""Issue 12, "wrong results today": each runbook says what is true, and changes nothing when there
is nothing to do or the operator's intent differs from the run it would resume."""

from __future__ import annotations

import pytest

from runbooks import failback, failover
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_OK
from tests.fakes import RunbookEnv, with_streams
from tests.helpers.streams import streams_document
from tests.samples import pair_document

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
from runbooks.core.clock import iso  # noqa: E402
from tests.fakes import Crash  # noqa: E402
from tests.helpers.backups import window  # noqa: E402

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

    import drills as drill
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


# ---- the drill's headline RTO is the service's ----------------------------------------------


def _outage_log(path, fault_at):
    """PostgreSQL back in DR at +1.07 s, Kafka's writers at +2.8 s, its consumers at +5.4 s, S3 at +1.5 s."""
    import json
    lines = []
    for i in range(100):  # 10 s of traffic in the primary region before the fault
        t = fault_at - 10 + i * 0.1
        lines += [{"ok": True, "id": f"pg-{i}", "t": t, "region": P, "database": "payments", "system": "postgres"},
                  {"ok": True, "id": f"k-{i}", "t": t, "region": P, "database": "-", "system": "kafka", "partition": 0},
                  {"ok": True, "id": f"s-{i}", "t": t, "region": P, "database": "-", "system": "s3"},
                  {"event": "consumed", "id": f"k-{i}", "t": t + 0.01, "region": P, "group": "ledger"}]
    last = fault_at - 0.1
    lines += [{"ok": True, "id": "pg-dr", "t": last + 1.07, "region": S, "database": "payments", "system": "postgres"},
              {"ok": True, "id": "k-dr", "t": last + 2.8, "region": S, "database": "-", "system": "kafka", "partition": 0},
              {"ok": True, "id": "s-dr", "t": last + 1.5, "region": S, "database": "-", "system": "s3"},
              {"event": "consumed", "id": "k-dr", "t": last + 5.4, "region": S, "group": "ledger"}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    from drills.measure import WorkloadLog
    return WorkloadLog.read(path)


def test_recovery_reports_each_part_and_the_service_as_the_latest(tmp_path):
    from drills.measure import recovery
    fault_at = 1000.0
    wl = _outage_log(tmp_path / "w.jsonl", fault_at)
    r = recovery(wl, fault_at=fault_at, target_region=S, systems=["postgres", "kafka", "s3"])
    parts = r["systems"]
    assert parts["postgres"]["writers"]["seconds"] == pytest.approx(1.07, abs=1e-6)
    assert parts["kafka"]["writers"]["seconds"] == pytest.approx(2.8, abs=1e-6)
    assert parts["kafka"]["consumers"]["seconds"] == pytest.approx(5.4 - 0.01, abs=1e-6)
    assert parts["s3"]["writers"]["seconds"] == pytest.approx(1.5, abs=1e-6)
    assert r["service_seconds"] == pytest.approx(5.4, abs=1e-6) and r["last_back"] == "kafka consumers"
    assert "consumers" not in parts["s3"] and "consumers" not in parts["postgres"]
    # a part that never came back: the service RTO is not measured (the verdict fails it)
    wl.consumed = [c for c in wl.consumed if c.region == P]
    r = recovery(wl, fault_at=fault_at, target_region=S, systems=["postgres", "kafka", "s3"])
    assert r["systems"]["kafka"]["consumers"]["seconds"] is None and r["service_seconds"] is None


def test_drill_report_headline_is_the_service_rto_and_names_replication_per_system(tmp_path):
    import argparse
    import json
    from types import SimpleNamespace

    import drills as drill
    fault_at = 1000.0
    wl = _outage_log(tmp_path / "w.jsonl", fault_at)
    args = argparse.Namespace(scenario="region-outage", replication="sync", link_latency_ms=0, dns_ttl=1, rate=10,
                              failback=False)
    d = drill.SandboxDrill(args, say=lambda line: None)
    d.steps, d.notes, d.endpoints = [], [], {}
    d.notifications = {"failover": [{"subject": "regionpair failover: started: a → b", "message": "run x"}]}
    d.stream_systems = ["kafka", "s3"]
    d.stream_surviving = {"kafka": {a.id for a in wl.acks if a.system == "kafka"},
                          "s3": {a.id for a in wl.acks if a.system == "s3"}}
    d.dir, d.report_dir = tmp_path / "sandbox", tmp_path / "report"
    outputs = SimpleNamespace(objectives=SimpleNamespace(rto_seconds=3, rpo_seconds=0))
    surviving = {"payments": {a.id for a in wl.acks if a.system == "postgres"}}
    rep = d._report(fault_at - 20, fault_at, P, S, outputs, wl, surviving, [], {"runbook": "failover", "steps": []},
                    None, None)
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["rto_seconds"] == pytest.approx(5.4, abs=1e-6), "the headline is the service's, not PostgreSQL's"
    assert saved["rto"]["systems"]["postgres"]["writers"]["seconds"] == pytest.approx(1.07, abs=1e-6)
    assert not rep["passed"] and any("RTO 5.40 s exceeds the objective 3 s" in r for r in rep["reasons"])
    assert saved["replication_modes"]["postgres"].startswith("sync")
    assert saved["replication_modes"]["kafka"].startswith("async") and saved["replication_modes"]["s3"].startswith("async")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| service RTO (s) | 5.40 | 3 |" in md and "| kafka | consumers | 5.39 |" in md
    text = "\n".join(drill.summary_lines(rep))
    assert "service RTO 5.40 s" in text and "postgres writers 1.07 s" in text and "kafka consumers 5.39 s" in text
    assert "replication: postgres sync, kafka async, s3 async (--replication applies to PostgreSQL only)" in text
    assert "- failover: regionpair failover: started: a → b" in md


def test_drill_fails_when_the_runbook_told_nobody(tmp_path):
    import drills as drill
    d = drill.SandboxDrill(None, say=lambda line: None)
    d.notifications = {"failover": []}
    assert d._notification_reasons() == [
        "notifications: the failover told nobody it started (nothing in the sandbox's sink)",
        "notifications: the failover told nobody it ended with its RTO and RPO"]
    d.notifications = {"failover": [{"subject": "regionpair failover: started: a → b"},
                                    {"subject": "regionpair failover: complete, PASSED; RTO 1.00 s; RPO 0.00 s"}]}
    assert d._notification_reasons() == []


# ---- notifications -------------------------------------------------------------------------


import io  # noqa: E402
import json  # noqa: E402

from runbooks.core.errors import EXIT_FAILED, EXIT_REFUSED  # noqa: E402


def subjects(env) -> list[str]:
    return [s for s, _ in env.world.notifier.sent]


def test_failover_notifies_start_and_end_with_the_measured_rto_and_rpo(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK
    sent = env.world.notifier.sent
    assert [n["event"] for n in out["notifications"]] == ["start", "end"]
    assert sent[0][0] == f"regionpair failover: started: {P} → {S}" and out["run_id"] in sent[0][1]
    end_subject, end_message = sent[-1]
    assert "complete, PASSED; RTO" in end_subject and "(objective 900 s); RPO 0.10 s (objective 300 s)" in end_subject
    assert "promote:payments: done" in end_message
    report = json.loads(open(out["report"]["json"]).read())
    assert [n["delivered"] for n in report["notifications"]] == [True, True]


def test_a_gate_refusal_and_a_failed_step_are_notified(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.dbs[(S, "payments")].lag = 1000.0  # far behind: the replication gate refuses
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED
    assert subjects(env)[-1] == "regionpair failover: refused by its gates; nothing was changed"
    assert "replication:payments" in env.world.notifier.sent[-1][1]
    env.world.dbs[(S, "payments")].lag = 0.1
    assert env.run(failover, "--yes")[0] == EXIT_OK
    env.world.dbs[(P, "payments")].fenced = False  # home came back unfenced, and its API fails the re-fence
    env.world.api_down.add(P)
    env.world.notifier.sent.clear()
    code, out = env.run(failback, "--yes")
    assert code == EXIT_FAILED
    assert subjects(env) == ["regionpair failback: started: us-west-2 → us-east-1",
                             "regionpair failback: step refence:payments failed",
                             "regionpair failback: FAILED; rerun to continue from the journal"]


def test_an_undeliverable_notification_never_stops_the_failover_and_is_reported(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.notifier.broken = "topic arn:aws:sns:us-west-2:1:alarms does not answer"
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and out["result"] == "ok"
    assert env.world.dbs[(S, "payments")].role == "primary"
    report = json.loads(open(out["report"]["json"]).read())
    assert [(n["event"], n["delivered"]) for n in report["notifications"]] == [("start", False), ("end", False)]
    assert any("notification not delivered (start" in n and "does not answer" in n for n in report["notes"])
    audit = [json.loads(line) for line in (env.state / "audit.jsonl").read_text().splitlines()]
    assert [a["target"] for a in audit if a["action"] == "notify" and a["result"] == "failed"] == ["start", "end"]
    assert "NOT delivered" in open(out["report"]["markdown"]).read()


def test_notifications_carry_no_secrets():
    from runbooks.core.notify import Notifications
    from tests.fakes import FakeNotifier
    n = FakeNotifier()
    Notifications(n, "failover", "failover-1").send("step-failed", "step promote:payments failed",
                                                   ["connect to postgresql://app:hunter2@db:5432 password=hunter2"])
    (subject, message), = n.sent
    assert "hunter2" not in subject + message and "***" in message


def test_the_operators_decision_wait_is_reported_apart_from_the_rto(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))

    class SlowTyping(io.StringIO):
        def isatty(self):
            return True

        def readline(self, *a):
            env.world.clock.advance(20.0)  # the operator reads the plan and types the region
            return f"{S}\n"

    code, text = env._main(failover, [], stdin=SlowTyping())
    assert code == EXIT_OK, text
    (report,) = (env.state / "reports").glob("*/report.json")
    rep = json.loads(report.read_text())
    assert rep["decision_wait_seconds"] == pytest.approx(20.0)
    assert rep["rto_seconds"] < 5.0, "the operator's typing is not the runbook's recovery time"
    assert "of work (RTO objective 900 s), plus 20.00 s waiting for the operator's decision" in text


def test_backup_runbooks_notify_and_an_undeliverable_notification_is_reported(backup_env):  # noqa: F811
    env = backup_env
    window(env)
    code, out = env.run(restore, "--yes", "--database", "payments")
    assert code == EXIT_OK, out
    (start, _), (end, message) = env.world.notifier.sent
    assert start == "regionpair restore: started: payments (aws)"
    assert end.startswith("regionpair restore: PASSED: payments restored into the new instance restore-payments-")
    assert "restore:payments: done" in message
    env.world.notifier.broken = "no topic answers"
    code, out = env.run(snapshot, "--yes")
    assert code == EXIT_OK and out["passed"]
    assert [n["delivered"] for n in out["notifications"]] == [False, False]
    assert any("notification not delivered" in n for n in json.loads(open(out["report"]["json"]).read())["notes"])


# ---- help that helps ---------------------------------------------------------------------------


def all_parsers():
    import drills as drill
    from runbooks import restore as rs, snapshot as sn, switchover, undelete, verify_backup
    from runbooks.backups import cli as backup_cli
    from runbooks.plans import cli
    from sandbox.__main__ import _parser as sandbox_parser
    parsers = {f"runbooks.{m.RUNBOOK.name}": cli.parser(m.RUNBOOK) for m in (failover, failback, switchover)}
    from runbooks import kafka_offsets, kafka_replay
    parsers.update({f"runbooks.{m.RUNBOOK.name}": backup_cli.parser(m.RUNBOOK)
                    for m in (sn, rs, verify_backup, undelete, kafka_replay, kafka_offsets)})
    parsers.update({"runbooks.drill": drill.parser(), "sandbox": sandbox_parser()})
    return parsers


@pytest.mark.parametrize("name", sorted(all_parsers()))
def test_every_help_gives_meaning_default_required_and_exit_codes(name):
    from runbooks.core.helptext import problems
    parser = all_parsers()[name]
    assert problems(parser) == []
    text = parser.format_help()
    assert "exit codes:\n  0 " in text and "\n  2 " in text


def test_the_help_check_refuses_a_bare_option_and_a_hidden_default():
    import argparse

    from runbooks.core.helptext import Formatter, problems
    bad = argparse.ArgumentParser(prog="x")
    bad.add_argument("--rate", type=int, default=5)
    bad.add_argument("--dir", required=True, help="where")
    assert problems(bad) == ["x: --help does not list the exit codes", "x: --rate has no help"]
    hidden = argparse.ArgumentParser(prog="y", epilog="exit codes:\n  0 ok")  # the plain formatter shows no default
    hidden.add_argument("--rate", type=int, default=5, help="writes per second")
    assert problems(hidden) == ["y: --rate's help does not give its default (5)"]
    good = argparse.ArgumentParser(prog="z", epilog="exit codes:\n  0 ok", formatter_class=Formatter)
    good.add_argument("--rate", type=int, default=5, help="writes per second")
    good.add_argument("--dir", required=True, help="where")
    assert problems(good) == []
    assert "writes per second (default: 5)" in good.format_help() and "where (required)" in good.format_help()


def test_required_options_are_marked_in_the_help():
    parsers = all_parsers()
    assert "--outputs or --stack" in parsers["runbooks.failover"].format_help()
    undelete_help = " ".join(parsers["runbooks.undelete"].format_help().split())
    assert "(required)" in undelete_help and "--bucket BUCKET a bucket" in undelete_help
    assert "required when there are several" in parsers["runbooks.restore"].format_help()


def test_sandbox_up_and_the_drill_agree_on_the_default_systems():
    import drills as drill
    from sandbox.__main__ import _parser as sandbox_parser
    up = sandbox_parser().parse_args(["up", "--dir", "d"]).systems
    drilled = drill.parser().parse_args([]).systems
    assert tuple(up) == tuple(s.strip() for s in drilled.split(",")) == ("postgres", "kafka", "s3")


# ---- console lines from parallel lanes -------------------------------------------------------


def test_progress_lines_from_parallel_lanes_never_run_into_each_other():
    import re
    import threading
    import time

    from runbooks.core.cli import Console
    from runbooks.core.clock import FakeClock

    class SlowTerminal(io.StringIO):
        """A terminal that yields between writes, as a busy one does (print writes text, then end)."""

        def write(self, s):
            n = super().write(s)
            time.sleep(0.0005)
            return n

    out = SlowTerminal()
    console = Console(out, json_mode=False, clock=FakeClock())
    start = threading.Barrier(6)

    def lane(i):
        start.wait()
        for j in range(40):
            console.progress(f"promote:db-{i}: step {j} done")

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 240
    bad = [line for line in lines if not re.fullmatch(r"\[[0-9:.]+\] promote:db-\d: step \d+ done", line)]
    assert bad == []


# ---- the DNS TTL gate --------------------------------------------------------------------------


from runbooks import switchover  # noqa: E402


def ttl_document(ttl: int) -> dict:
    doc = pair_document(n_databases=1)
    doc["dns"]["ttl_seconds"] = ttl  # the objective is 900 s
    return doc


@pytest.mark.parametrize("module", [failover, switchover])
def test_a_record_ttl_longer_than_the_rto_alone_refuses_and_force_overrides(tmp_path, module):
    env = RunbookEnv(tmp_path, ttl_document(901))
    code, out = env.run(module, "--yes")
    assert code == EXIT_REFUSED, out
    assert "dns-ttl" in out["error"] and "TTL of 901 s" in out["error"] and "--force" in out["error"]
    assert env.world.actions == []
    code, out = env.run(module, "--yes", "--force")
    assert code == EXIT_OK, out
    audit = (env.state / "audit.jsonl").read_text()
    assert "overridden with --force" in audit and "dns-ttl" in audit


def test_a_record_ttl_equal_to_the_rto_passes_the_gate(tmp_path):
    env = RunbookEnv(tmp_path, ttl_document(900))
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    (tmp_path / "again").mkdir()
    code, text = RunbookEnv(tmp_path / "again", ttl_document(900)).dry_run(failover)
    assert code == EXIT_OK and "pass  dns-ttl: record TTL 900 s is within the RTO objective of 900 s" in text
