"""Issue 12, re-fence on return: a failover fences the old primary at best effort; when its region
(and API) answers again, the next failover rerun or the failback re-checks the fence and re-applies
it before anything else (before the gates, so even a refused run leaves home fenced)."""

from __future__ import annotations

import json

from runbooks import failback, failover, switchover
from runbooks.core.errors import EXIT_OK, EXIT_REFUSED
from tests.fakes import RunbookEnv
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


def outage_with_api_down(tmp_path, n=2) -> RunbookEnv:
    """A failover while home and its control plane are down: the fence could not be applied."""
    env = RunbookEnv(tmp_path, pair_document(n_databases=n))
    env.world.kill_region(P)
    env.world.api_down.add(P)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    assert {s["name"]: s["status"] for s in out["steps"]}["fence:payments"] == "best-effort-failed"
    assert not env.world.dbs[(P, "payments")].fenced
    return env


def region_returns(env) -> None:
    env.world.region_up[P] = True  # its databases come back as they were: unfenced primaries
    env.world.api_down.discard(P)
    env.world.actions.clear()


def test_a_failover_rerun_refences_home_before_anything_else(tmp_path):
    env = outage_with_api_down(tmp_path)
    region_returns(env)
    code, out = env.run(failover, "--yes", "--new-run")
    assert code == EXIT_OK, out
    assert sorted(env.world.actions) == [("fence", P, "payments"), ("fence", P, "payments-1")]
    assert all(env.world.dbs[(P, db)].fenced for db in ("payments", "payments-1"))
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["refence:payments"]["status"] == "done" and steps["fence:payments"]["status"] == "skipped"
    assert steps["refence:payments"]["end"] <= min(s["start"] for n, s in steps.items() if not n.startswith("refence"))
    audit = [json.loads(line) for line in (env.state / "audit.jsonl").read_text().splitlines()]
    assert sorted((a["target"], a["result"]) for a in audit if a["action"] == "refence") == [
        (f"{P}/payments", "ok"), (f"{P}/payments-1", "ok")]


def test_the_failback_refences_first_then_returns_home(tmp_path):
    env = outage_with_api_down(tmp_path, n=1)
    region_returns(env)
    code, out = env.run(failback, "--yes")
    assert code == EXIT_OK, out
    assert env.world.actions[0] == ("fence", P, "payments")
    assert ("rebuild", P, "payments", S) in env.world.actions
    assert env.world.dbs[(P, "payments")].role == "primary" and env.world.dns["payments"] == P


def test_the_refence_happens_even_when_the_gates_then_refuse(tmp_path):
    env = outage_with_api_down(tmp_path, n=1)
    region_returns(env)
    doc = json.loads(env.doc_path.read_text())
    doc["dns"]["ttl_seconds"] = 10_000  # the DNS TTL gate will refuse the failback
    env.doc_path.write_text(json.dumps(doc))
    code, out = env.run(failback, "--yes")
    assert code == EXIT_REFUSED and "dns-ttl" in out["error"], out
    assert env.world.actions == [("fence", P, "payments")] and env.world.dbs[(P, "payments")].fenced


def test_a_dry_run_shows_the_refence_and_changes_nothing(tmp_path):
    env = outage_with_api_down(tmp_path, n=1)
    region_returns(env)
    code, text = env.dry_run(failback)
    assert code == EXIT_OK, text
    assert f"[to do] refence:payments: re-check the fence of {P}/payments" in text
    assert f"now: {P}/payments is back and accepts writes although {S}/payments was promoted" in text
    assert env.world.actions == [] and not env.world.dbs[(P, "payments")].fenced


def test_nothing_to_refence_on_a_healthy_pair_or_while_home_is_down(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    code, text = env.dry_run(switchover)  # DR was never promoted
    assert "[done ] refence:payments: " in text and f"{S}/payments is not a promoted writer" in text
    (tmp_path / "outage").mkdir()
    env = outage_with_api_down(tmp_path / "outage", n=1)
    env.world.actions.clear()
    code, out = env.run(failover, "--yes", "--new-run")  # home still down: nothing to re-fence yet
    assert code == EXIT_OK and env.world.actions == [], out
