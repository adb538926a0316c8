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
