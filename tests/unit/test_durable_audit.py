"""Issue 12, durable audit and the PITR-in-DR gate: every DR action's audit entry also lands in the
adapter's durable sink (AWS: the object-locked backups bucket; sandbox: a hash-chained file), also
for dry runs, declined prompts, --force and nothing-to-do; a sink that cannot be written never stops
a failover and is delivered later. Before a failover, DR must hold a restorable window."""

from __future__ import annotations

import io
import json

from runbooks import failback, failover
from runbooks.core.audit import DurableAudit, JsonlAuditSink, read_sink, verify_chain
from runbooks.core.clock import FakeClock
from runbooks.core.errors import EXIT_DECLINED, EXIT_OK, EXIT_REFUSED
from tests.fakes import RunbookEnv
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


def local(env) -> list[dict]:
    return [json.loads(line) for line in (env.state / "audit.jsonl").read_text().splitlines()]


def strip(entries):
    return [{k: v for k, v in e.items() if k != "prev"} for e in entries]


def test_every_failover_entry_reaches_the_sink_in_order(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    entries = local(env)
    assert env.world.audit_sink.entries == entries  # the same entries, the same order
    what = [(e["action"], e["result"]) for e in entries]
    assert ("run", "started") in what and ("lock", "taken") in what and ("promote", "ok") in what
    assert what[-1][0] == "run" and what[-1][1] == "complete, PASSED" and "RTO" in entries[-1]["detail"]
    assert {e["run_id"] for e in entries} == {out["run_id"]}


def test_a_dry_run_a_declined_prompt_and_nothing_to_do_are_audited_in_the_sink(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    assert env.dry_run(failover)[0] == EXIT_OK
    assert (env.world.audit_sink.entries[-1]["action"], env.world.audit_sink.entries[-1]["result"]) == ("dry-run", "ok")
    assert env.world.audit_sink.entries[-1]["run_id"] == "dry-run"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    code, out = env.run(failover, stdin=Tty("us-east-9\n"))
    assert code == EXIT_DECLINED, out
    last = env.world.audit_sink.entries[-1]
    assert (last["action"], last["result"]) == ("decision", "declined") and "'us-east-9'" in last["detail"]
    assert env.world.actions == []

    code, out = env.run(failback, "--yes")  # the pair never failed over
    assert code == EXIT_OK and out["result"] == "nothing-to-do"
    last = env.world.audit_sink.entries[-1]
    assert (last["runbook"], last["action"], last["result"]) == ("failback", "run", "nothing to do")


def test_force_is_audited_at_the_start_and_where_it_overrode_a_gate(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.dbs[(S, "payments")].lag = 1000.0
    code, out = env.run(failover, "--yes", "--force")
    assert code == EXIT_OK, out
    sink = env.world.audit_sink.entries
    started = next(e for e in sink if e["action"] == "run" and e["result"] == "started")
    assert "--force" in started["detail"]
    overridden = next(e for e in sink if e["action"] == "gates")
    assert overridden["result"] == "overridden with --force" and "replication:payments" in overridden["detail"]


def test_a_sink_that_cannot_be_written_never_stops_the_failover_and_is_delivered_later(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.audit_sink.broken = "s3://dr-backups: Could not connect to the endpoint URL"
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and out["result"] == "ok", out
    assert env.world.dbs[(S, "payments")].role == "primary"
    report = json.loads(open(out["report"]["json"]).read())
    note = next(n for n in report["notes"] if n.startswith("audit:"))
    assert "not yet in the durable audit sink" in note and "Could not connect" in note
    queued = [json.loads(line) for line in (env.state / "audit-undelivered.jsonl").read_text().splitlines()]
    assert queued == local(env)  # every entry of the run waits, none is lost
    # the sink answers again: the next invocation (a dry run) delivers the backlog first, in order
    env.world.audit_sink.broken = None
    assert env.dry_run(failover)[0] == EXIT_OK
    assert env.world.audit_sink.entries == local(env)
    assert not (env.state / "audit-undelivered.jsonl").exists()


def test_the_sandbox_sink_is_a_hash_chain_that_refuses_an_edited_line(tmp_path):
    path = tmp_path / "audit-sink.jsonl"
    audit = DurableAudit(tmp_path / "state" / "audit.jsonl", FakeClock(), "failover", "failover-1",
                         sink=JsonlAuditSink(path))
    for i in range(3):
        audit.record("step", f"db{i}", "ok", "password=hunter2")
    assert verify_chain(path) is None
    assert strip(read_sink(path)) == local_file(tmp_path / "state" / "audit.jsonl")
    assert "hunter2" not in path.read_text()
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"ok"', '"failed"')  # someone rewrites history
    path.write_text("\n".join(lines) + "\n")
    assert "line 3 does not follow line 2" in verify_chain(path)
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # or removes an entry
    assert "line 2 does not follow line 1" in verify_chain(path)


def local_file(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- PITR in DR --------------------------------------------------------------------------------


def test_no_restorable_window_in_dr_refuses_the_failover_and_force_overrides(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    del env.world.backups.windows[(S, "payments-1")]
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED, out
    failed = [g for g in out["gates"] if not g["passed"]]
    assert [g["name"] for g in failed] == ["pitr-dr:payments-1"]
    assert "holds no replicated automated backup of payments-1" in failed[0]["sentence"]
    assert "--force" in failed[0]["sentence"] and env.world.actions == []
    code, out = env.run(failover, "--yes", "--force")
    assert code == EXIT_OK, out
    assert any(e["action"] == "gates" and "pitr-dr:payments-1" in e["detail"] for e in env.world.audit_sink.entries)


def test_a_window_in_dr_passes_and_a_stale_one_only_warns(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    code, text = env.dry_run(failover)
    assert code == EXIT_OK and f"pass  pitr-dr:payments: {S} can restore payments from " in text
    now = env.world.clock.time()
    env.world.backups.windows[(S, "payments")] = (now - 86400.0, now - 3600.0)  # objective RPO is 300 s
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    report = json.loads(open(out["report"]["json"]).read())
    gate = next(g for g in report["gates"] if g["name"] == "pitr-dr:payments")
    assert gate["passed"] and gate["sentence"].startswith("WARNING:") and "3600 s behind now" in gate["sentence"]


def test_an_adapter_without_a_backups_port_cannot_pass_the_gate(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.backups = None
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED and "no backups port" in out["error"], out
