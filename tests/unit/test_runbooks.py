"""Failover, failback and switchover through their real CLI entry points, on in-memory fakes."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest

from runbooks import failback, failover, switchover
from runbooks.core.audit import AuditLog
from runbooks.core.clock import FakeClock, SystemClock
from runbooks.core.engine import Check, Phase, Plan, Runner, Step
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_DECLINED, EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from runbooks.core.journal import Journal
from tests.fakes import Crash, FakeWorld, RunbookEnv
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def env(tmp_path):
    return RunbookEnv(tmp_path, pair_document(n_databases=2))


def failed_over(world: FakeWorld) -> bool:
    return all(world.dbs[(S, db)].role == "primary" and not world.dbs[(S, db)].fenced
               and world.dbs[(P, db)].fenced and world.dns[db] == S for db in ("payments", "payments-1"))


def test_failover_moves_every_database_and_reports(env):
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    assert failed_over(env.world)
    assert out["result"] == "ok"
    names = [s["name"] for s in out["steps"]]
    assert names.index("fence:payments") < names.index("promote:payments") < names.index("dns:payments")
    promote = next(s for s in out["steps"] if s["name"] == "promote:payments")
    assert "writable after" in promote["result"] and "canary written" in promote["result"]
    report = json.loads(open(out["report"]["json"]).read())
    for key in ("scenario", "rto_seconds", "rpo", "writes", "steps", "objectives", "passed"):
        assert key in report
    assert report["rpo"]["estimate"]["seconds"] == pytest.approx(0.1)
    assert report["reconcile"][0].startswith("pulumi refresh --stack dr --yes")
    assert report["reconcile"][1:] == ["pulumi config set promoted true --stack dr", "pulumi up --stack dr --yes"]
    assert "Bring the stacks in line" in open(out["report"]["markdown"]).read()
    audit = [json.loads(line) for line in (env.state / "audit.jsonl").read_text().splitlines()]
    assert {a["action"] for a in audit} >= {"lock", "fence", "promote", "dns"}
    assert all(a["who"] and a["run_id"] == out["run_id"] for a in audit)
    assert not (env.state / "lock.json").exists()


def test_rerun_after_success_changes_nothing(env):
    assert env.run(failover, "--yes")[0] == EXIT_OK
    before = list(env.world.actions)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    assert env.world.actions == before


def test_dry_run_changes_nothing_and_shows_gates(env):
    code, text = env.dry_run(failover)
    assert code == EXIT_OK
    assert env.world.actions == []
    assert "pass  replication:payments" in text and "[to do] promote:payments" in text
    assert not (env.state / "runs").exists()


def test_lagging_replica_is_refused_then_forced(env):
    env.world.dbs[(S, "payments")].lag = 900.0
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED
    assert "900.0 s behind" in out["error"] and "--force" in out["error"]
    assert env.world.actions == []
    assert not (env.state / "lock.json").exists()
    code, out = env.run(failover, "--yes", "--force")
    assert code == EXIT_OK and failed_over(env.world)
    audit = (env.state / "audit.jsonl").read_text()
    assert "overridden with --force" in audit


def test_backing_up_replica_is_refused(env):
    env.world.dbs[(S, "payments-1")].status = "backing-up"
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED and "backing-up" in out["error"]
    assert env.world.actions == []


def test_broken_replication_with_live_primary_is_refused(env):
    env.world.dbs[(S, "payments")].streaming = False
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED and "not streaming although" in out["error"]


def test_region_outage_failover_keeps_old_primary_fenced_when_it_returns(env):
    env.world.kill_region(P)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    env.world.region_up[P] = True  # the region comes back
    assert env.world.dbs[(P, "payments")].fenced
    assert env.world.dns["payments"] == S
    gate = next(g for g in json.load(open(out["report"]["json"]))["gates"] if g["name"] == "replication:payments")
    assert "unreachable" in gate["sentence"]


@pytest.mark.parametrize("action,nth", [("fence", 1), ("fence", 2), ("promote", 1), ("promote", 2),
                                        ("canary", 1), ("unfence", 1), ("dns", 1), ("dns", 2)])
def test_crash_at_any_point_then_rerun_finishes(env, action, nth):
    env.world.dbs[(S, "payments")].fenced = True  # an earlier failback left DR fenced: unfence must run
    env.world.crash_on = (action, nth)
    with pytest.raises(Crash):
        env.run(failover, "--yes")
    code, out = env.run(failover, "--yes")  # a plain rerun resumes the crashed run
    assert code == EXIT_OK, out
    assert failed_over(env.world)
    assert len([a for a in env.world.actions if a[0] == "promote"]) == 2  # once per database
    assert len([a for a in env.world.actions if a[0] == "dns"]) == 2
    runs = list((env.state / "runs").glob("failover-*.jsonl"))
    assert len(runs) == 1, "the rerun continued the crashed run instead of starting another"


def test_second_concurrent_run_is_refused(env):
    lock = env.state / "lock.json"
    lock.write_text(json.dumps({"run_id": "failover-other", "who": "alice@ops", "since": "2026-11-22T04:00:00Z",
                                "host": "elsewhere", "pid": 1}))
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED
    assert "alice@ops" in out["error"] and "2026-11-22T04:00:00Z" in out["error"]
    assert env.world.actions == []


def test_bad_input_changes_nothing(env, tmp_path):
    bad = tmp_path / "bad.json"
    doc = pair_document()
    del doc["regions"][S]["databases"]["payments"]["port"]
    bad.write_text(json.dumps(doc))
    out = io.StringIO()
    code = failover.main(["--outputs", str(bad), "--yes", "--state-dir", str(env.state)],
                         ports_factory=lambda o, c: env.world.ports(env.state / "lock.json"), stdout=out)
    assert code == EXIT_BAD_INPUT and f"regions.{S}.databases.payments.port" in out.getvalue()
    code, out = env.run(failover, "--yes", "--database", "ledger")
    assert code == EXIT_BAD_INPUT and "ledger" in out["error"]
    with pytest.raises(SystemExit) as exit_:
        failover.main(["--outputs", str(env.doc_path), "--output", "yaml"])
    assert exit_.value.code == EXIT_BAD_INPUT
    assert env.world.actions == []


def test_without_yes_it_asks_and_a_wrong_answer_declines(env):
    code, out = env.run(failover)
    assert code == EXIT_BAD_INPUT and "--yes" in out["error"]
    code, out = env.run(failover, stdin=Tty("yes\n"))
    assert code == EXIT_DECLINED and env.world.actions == []
    code, out = env.run(failover, stdin=Tty(f"{S}\n"))
    assert code == EXIT_OK and failed_over(env.world)


def test_failback_after_failover_is_zero_loss_and_restores_protection(env):
    assert env.run(failover, "--yes")[0] == EXIT_OK
    failover_actions = len(env.world.actions)
    env.world.dbs[(S, "payments")].lsn = 5000  # DR took writes while it was primary
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK, out
    w = env.world
    for db in ("payments", "payments-1"):
        assert w.dbs[(P, db)].role == "primary" and not w.dbs[(P, db)].fenced
        assert w.dbs[(S, db)].role == "replica" and w.dbs[(S, db)].source_region == P
        assert w.dns[db] == P
    assert w.dbs[(P, "payments")].lsn >= 5000
    back = [a for a in w.actions[failover_actions:] if a[0] != "dns" and a[2] == "payments"]
    assert back == [("rebuild", P, "payments", S), ("fence", S, "payments"), ("unfence", P, "payments"),
                    ("promote", P, "payments"), ("canary", P, "payments"), ("rebuild", S, "payments", P)]
    assert "pulumi config set promoted false --stack dr" in out["reconcile"]


@pytest.mark.parametrize("action,nth", [("rebuild", 1), ("rebuild", 3), ("fence", 2), ("unfence", 1),
                                        ("promote", 2), ("canary", 1), ("dns", 2), ("rebuild", 4)])
def test_failback_crash_at_any_point_then_rerun_finishes(env, action, nth):
    assert env.run(failover, "--yes")[0] == EXIT_OK
    env.world._counts.clear()
    env.world.crash_on = (action, nth)
    with pytest.raises(Crash):
        env.run(failback, "--yes")
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK, out
    for db in ("payments", "payments-1"):
        assert env.world.dbs[(P, db)].role == "primary" and not env.world.dbs[(P, db)].fenced
        assert env.world.dbs[(S, db)].role == "replica" and env.world.dbs[(S, db)].fenced
        assert env.world.dns[db] == P


def test_split_brain_is_refenced_before_anything_else(env):
    assert env.run(failover, "--yes")[0] == EXIT_OK
    env.world.dbs[(P, "payments")].fenced = False  # somebody unfenced the old primary by hand
    env.world.actions.clear()
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK, out
    # DR is the writer of record since the failover: home is fenced again first (the rebuild then
    # keeps its instance aside in AWS: writes it took while unfenced are not destroyed)
    assert env.world.actions[0] == ("fence", P, "payments")
    assert next(s for s in out["steps"] if s["name"] == "refence:payments")["status"] == "done"


def test_failback_refused_while_home_region_is_down(env):
    env.world.kill_region(P)
    assert env.run(failover, "--yes")[0] == EXIT_OK
    actions = len(env.world.actions)
    code, out = env.run(failback, "--yes")
    assert code == EXIT_REFUSED and f"health:{P}" in out["error"]
    assert len(env.world.actions) == actions


def test_switchover_waits_for_the_replica_to_replay_everything(env):
    code, out = env.run(switchover, "--yes")
    assert code == EXIT_OK, out
    drain = next(s for s in out["steps"] if s["name"] == "drain:payments")
    assert drain["status"] in ("done", "skipped")
    assert env.world.dbs[(P, "payments")].role == "replica"  # protection restored the other way


def test_failed_step_leaves_a_resumable_journal(env):
    env.world.promote_seconds = 10_000  # promotion never completes within the deadline
    code, out = env.run(failover, "--yes", "--promote-timeout", "5")
    assert code == EXIT_FAILED and "timed out" in out["error"]
    assert (env.state / "lock.json").exists(), "a half-done failover keeps the lock for its rerun"
    env.world.promote_seconds = 0.1
    for d in env.world.dbs.values():
        if d.promote_at is not None:
            d.promote_at = env.world.clock.monotonic()
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and failed_over(env.world)


def test_steps_of_one_phase_run_in_parallel(tmp_path):
    intervals = {}
    lock = threading.Lock()

    def make(i):
        def apply():
            start = time.monotonic()
            time.sleep(0.2)
            with lock:
                intervals[i] = (start, time.monotonic())
            return "slept"
        return Step(f"s:{i}", "sleep", "t", lambda: Check.todo("x"), apply)

    plan = Plan("t", [Phase("p", [make(i) for i in range(5)])])
    clock = SystemClock()
    journal = Journal.create(tmp_path, "t", clock)
    Runner(plan, journal, AuditLog(tmp_path / "a.jsonl", clock, "t", journal.run_id), clock).run()
    latest_start = max(s for s, _ in intervals.values())
    earliest_end = min(e for _, e in intervals.values())
    assert latest_start < earliest_end, "the five steps did not overlap"


def _lane_runner(tmp_path, steps):
    clock = SystemClock()
    journal = Journal.create(tmp_path, "t", clock)
    return Runner(Plan("t", [Phase("p", steps)]), journal, AuditLog(tmp_path / "a.jsonl", clock, "t", journal.run_id),
                  clock)


def test_a_step_waits_for_the_steps_of_other_lanes_it_names(tmp_path):
    order = []

    def step(name, lane, delay=0.0, after=(), fail=False):
        def apply():
            time.sleep(delay)
            if fail:
                from runbooks.core.errors import StepFailed
                raise StepFailed(f"{name} broke")
            order.append(name)
            return name
        return Step(name, name, "t", lambda: Check.todo("x"), apply, lane=lane, after=after)

    _lane_runner(tmp_path, [step("slow", "a", 0.2), step("quick", "b"),
                            step("last", "c", after=("slow", "quick"))]).run()
    assert order == ["quick", "slow", "last"]

    order.clear()
    from runbooks.core.errors import StepFailed
    with pytest.raises(StepFailed) as err:
        _lane_runner(tmp_path, [step("broken", "a", fail=True), step("next", "a"),
                                step("waits", "b", after=("next",)), step("free", "c")]).run()
    assert order == ["free"], "a step whose prerequisite never ran does not start"
    assert "waits: not started because next did not finish" in str(err.value) and "broken broke" in str(err.value)


def test_every_lane_runs_at_once_however_many_databases(tmp_path):
    """Fifty lanes that each wait (as a promotion waits minutes in AWS) all wait together: a worker
    cap would run them in waves (16 workers made 50 databases take four promotions' time)."""
    lanes = 50
    together = threading.Barrier(lanes, timeout=10)

    def step(i):
        def apply():
            together.wait()  # breaks (BrokenBarrierError) unless all fifty are waiting at once
            return "met"
        return Step(f"promote:{i}", "wait", "t", lambda: Check.todo("x"), apply, lane=f"db{i}")

    result = _lane_runner(tmp_path, [step(i) for i in range(lanes)]).run()
    assert sorted(o.status for o in result.outcomes) == ["done"] * lanes


def test_a_plan_whose_steps_wait_in_a_circle_is_refused(tmp_path):
    def step(name, lane, after=()):
        return Step(name, name, "t", lambda: Check.todo("x"), lambda: "x", lane=lane, after=after)
    with pytest.raises(ValueError, match="wait for each other"):
        _lane_runner(tmp_path, [step("a1", "a", after=("b2",)), step("b1", "b", after=("a1",)), step("b2", "b")])
    with pytest.raises(ValueError, match="unknown steps"):
        _lane_runner(tmp_path, [step("a1", "a", after=("nope",))])


def test_journal_ignores_a_torn_last_line(tmp_path):
    clock = FakeClock()
    j = Journal.create(tmp_path, "failover", clock)
    j.append("step-start", step="fence:x")
    with open(j.path, "a") as f:
        f.write('{"t": 1, "event": "step-e')
    assert [e["event"] for e in j.events()] == ["run-start", "step-start"]
    assert Journal.unfinished(tmp_path, "failover", clock).run_id == j.run_id


def test_journal_and_audit_hold_no_password(tmp_path):
    clock = FakeClock()
    j = Journal.create(tmp_path, "failover", clock)
    j.append("step-end", step="x", result="connected to host=a password=hunter2 dbname=app")
    AuditLog(tmp_path / "audit.jsonl", clock, "failover", j.run_id).record(
        "promote", "t", "ok", "postgresql://admin:hunter2@db:5432/app")
    assert "hunter2" not in j.path.read_text()
    assert "hunter2" not in (tmp_path / "audit.jsonl").read_text()


def test_reconcile_runs_the_stack_commands_only_when_asked(env, monkeypatch):
    import subprocess as sp
    ran = []

    def runner(cmd, **kw):
        ran.append(cmd)
        return sp.CompletedProcess(cmd, 0, "", "")
    out = io.StringIO()
    code = failover.main(["--outputs", str(env.doc_path), "--state-dir", str(env.state), "--yes", "--output", "json",
                          "--reconcile"], ports_factory=lambda o, c: env.world.ports(env.state / "lock.json"),
                         clock=env.world.clock, stdout=out, reconcile_runner=runner)
    result = json.loads(out.getvalue())
    assert code == EXIT_OK
    assert ran[1:] == ["pulumi config set promoted true --stack dr", "pulumi up --stack dr --yes"]
    assert ran[0].startswith("pulumi refresh --stack dr")
    assert "ran: pulumi up --stack dr --yes" in json.load(open(result["report"]["json"]))["notes"]


def test_reconcile_without_the_cli_says_what_to_run(monkeypatch):
    import subprocess as sp

    from runbooks.plans import cli
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    lines = cli.run_reconcile(["pulumi up --stack dr --yes"], runner=sp.run)
    assert lines == ["the pulumi CLI is not on PATH: run these yourself:", "pulumi up --stack dr --yes"]


def test_people_get_a_final_table_of_steps_and_the_verdict(env):
    out = io.StringIO()
    code = failover.main(["--outputs", str(env.doc_path), "--state-dir", str(env.state), "--yes"],
                         ports_factory=lambda o, c: env.world.ports(env.state / "lock.json"),
                         clock=env.world.clock, stdout=out)
    text = out.getvalue()
    assert code == EXIT_OK
    table = text[text.index("step "):]
    assert "promote:payments-1" in table and "done" in table and "PASSED" in table
    assert "RTO objective 900 s" in table
