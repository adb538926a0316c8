"""Issue 12, DR metrics (planning document 004's set): the runbooks and drills emit them in the
Prometheus text format through prometheus_client, and to the adapter's remote metrics."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from runbooks import failover, snapshot
from runbooks.core import dr_metrics, metrics as prom
from runbooks.core.errors import EXIT_OK
from tests.fakes import RunbookEnv, with_streams
from tests.helpers.streams import streams_document
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


def families(path) -> dict[str, list]:
    """The file as Prometheus parses it: name → samples (a malformed file raises here)."""
    return {f.name: f.samples for f in text_string_to_metric_families(path.read_text())}


def test_a_failover_writes_its_time_and_the_lag_its_gates_measured(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=2))
    env.world.dbs[(P, "payments")].lsn = 5000  # the replica has replayed 1000: 4000 bytes behind
    env.world.dbs[(S, "payments")].streaming = False  # (a stalled stream: the fake does not catch up)
    code, out = env.run(failover, "--yes", "--force")
    assert code == EXIT_OK, out
    path = env.state / "metrics" / "regionpair_dr.prom"
    assert out["metrics"] == str(path)
    fam = families(path)
    (rto,) = fam["regionpair_dr_failover_time_seconds"]
    assert rto.labels == {"runbook": "failover", "scenario": "failover", "target": "aws"}  # the document's target
    assert abs(rto.value - out["rto_seconds"]) < 1e-9 and rto.value > 0
    lag = {s.labels["database"]: s.value for s in fam["regionpair_postgres_replication_lag_bytes"]}
    assert lag == {"payments": 4000.0, "payments-1": 0.0}
    assert {s.name for s in env.world.metrics.sent} == {prom.FAILOVER_SECONDS, prom.PG_LAG_BYTES}
    assert all(s.unit in ("Seconds", "Bytes") for s in env.world.metrics.sent)


def test_kafka_and_s3_lag_at_the_gates_are_emitted_per_flow(tmp_path):
    env = RunbookEnv(tmp_path, streams_document(), setup=with_streams)
    streams = env.world.streams
    streams.stuck.update(kafka=True, objects=True)
    streams.kafka.lag_records, streams.kafka.lag_seconds = 120, 2.5
    streams.objects.lag_records, streams.objects.lag_seconds = 7, 4.0
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK, out
    fam = families(env.state / "metrics" / "regionpair_dr.prom")
    flow = {"source": P, "target": S}
    assert [(s.labels, s.value) for s in fam["regionpair_kafka_replication_lag_seconds"]] == [(flow, 2.5)]
    assert [(s.labels, s.value) for s in fam["regionpair_kafka_replication_lag_records"]] == [(flow, 120.0)]
    assert [(s.labels, s.value) for s in fam["regionpair_s3_replication_lag_seconds"]] == [(flow, 4.0)]
    assert [(s.labels, s.value) for s in fam["regionpair_s3_replication_lag_objects"]] == [(flow, 7.0)]


def test_remote_metrics_that_do_not_answer_never_fail_the_run_and_are_noted(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    env.world.metrics.broken = "cloudwatch us-west-2: Could not connect to the endpoint URL"
    code, out = env.run(failover, "--yes")
    assert code == EXIT_OK and out["result"] == "ok", out
    report = json.loads(open(out["report"]["json"]).read())
    assert any(n.startswith("metrics not published remotely") and "Could not connect" in n for n in report["notes"])
    assert "regionpair_dr_failover_time_seconds" in families(env.state / "metrics" / "regionpair_dr.prom")


def test_a_rerun_with_nothing_to_do_emits_no_failover_time(tmp_path):
    env = RunbookEnv(tmp_path, pair_document(n_databases=1))
    assert env.run(failover, "--yes")[0] == EXIT_OK
    path = env.state / "metrics" / "regionpair_dr.prom"
    before = path.read_text()
    sent = len(env.world.metrics.sent)
    code, out = env.run(failover, "--yes", "--new-run")
    assert code == EXIT_OK and out["result"] == "nothing-to-do", out
    assert path.read_text() == before and len(env.world.metrics.sent) == sent


def test_snapshot_emits_backup_size_and_last_success(backup_env):  # noqa: F811
    env = backup_env
    code, out = env.run(snapshot, "--yes", "--database", "payments")
    assert code == EXIT_OK, out
    fam = families(env.state / "metrics" / "regionpair_backups.prom")
    sizes = {(s.labels["region"], s.labels["kind"]): s.value for s in fam["regionpair_backup_size_bytes"]}
    assert sizes == {(P, "manual"): 20 * 2.0**30, (S, "manual-copy"): 20 * 2.0**30}
    assert {s.labels["kind"] for s in fam["regionpair_backup_last_success_timestamp_seconds"]} == {"manual",
                                                                                                  "manual-copy"}


def test_drill_samples_say_when_whether_and_how_long(tmp_path):
    path = tmp_path / "regionpair_dr.prom"
    dr_metrics.publish(path, dr_metrics.drill_samples({"scenario": "region-outage", "passed": False,
                                                       "rto_seconds": 5.4}, 1_800_000_000.0))
    dr_metrics.publish(path, dr_metrics.drill_samples({"scenario": "db-loss", "passed": True,
                                                       "rto_seconds": 1.2}, 1_800_000_100.0))
    fam = families(path)
    ok = {s.labels["scenario"]: s.value for s in fam["regionpair_dr_drill_success"]}
    assert ok == {"region-outage": 0.0, "db-loss": 1.0}  # the second drill kept the first one's series
    last = {s.labels["scenario"]: s.value for s in fam["regionpair_dr_drill_last_run_timestamp_seconds"]}
    assert last == {"region-outage": 1_800_000_000.0, "db-loss": 1_800_000_100.0}
    rto = {s.labels["scenario"]: s.value for s in fam["regionpair_dr_failover_time_seconds"]}
    assert rto == {"region-outage": 5.4, "db-loss": 1.2}
    assert "# HELP regionpair_dr_drill_success 1 if the newest DR drill" in path.read_text()
