"""Issue 12, objectives per component in the runbooks and drills: gates and verdicts use each
system's own objectives (database, Kafka, object storage), the service's where none is declared."""

from __future__ import annotations

from contract import outputs as contract
from runbooks import failover
from runbooks.core.errors import EXIT_OK, EXIT_REFUSED
from runbooks.core.report import component_rto_reasons, objectives_of
from tests.fakes import RunbookEnv, with_streams
from tests.helpers.streams import streams_document
from tests.samples import pair_document


def kafka_behind(env) -> None:
    s = env.world.streams
    s.stuck["kafka"] = True
    s.kafka.lag_records, s.kafka.lag_seconds = 50, 2.5


def test_the_kafka_gate_holds_kafka_to_its_own_rpo(tmp_path):
    doc = streams_document()
    env = RunbookEnv(tmp_path, doc, setup=with_streams)
    kafka_behind(env)
    code, out = env.run(failover, "--yes", "--dry-run")
    assert code == EXIT_OK, out  # the service's RPO (300 s) allows 2.5 s
    (tmp_path / "own").mkdir()
    doc["objectives"]["components"] = {"kafka": {"rto_seconds": 900, "rpo_seconds": 1}}
    env = RunbookEnv(tmp_path / "own", doc, setup=with_streams)
    kafka_behind(env)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED, out
    (gate,) = [g for g in out["gates"] if not g["passed"]]
    assert gate["name"] == "kafka-replicator" and "more than its declared RPO of 1 s" in gate["sentence"]
    assert env.world.actions == []


def test_the_dns_ttl_gate_holds_the_records_to_the_database_rto(tmp_path):
    doc = pair_document(n_databases=1)
    doc["objectives"]["components"] = {"database": {"rto_seconds": 45, "rpo_seconds": 300}}  # TTL is 60 s
    env = RunbookEnv(tmp_path, doc)
    code, out = env.run(failover, "--yes")
    assert code == EXIT_REFUSED and "dns-ttl" in out["error"] and "RTO objective of 45 s" in out["error"], out


def test_a_drill_system_back_later_than_its_component_objective_fails_the_drill():
    doc = pair_document()
    doc["objectives"]["components"] = {"kafka": {"rto_seconds": 60, "rpo_seconds": 30}}
    objectives = objectives_of(contract.from_dict(doc))
    assert objectives["components"]["database"] == {"rto_seconds": 900, "rpo_seconds": 300}
    recovered = {"systems": {"postgres": {"writers": {"seconds": 80.0}},
                             "kafka": {"writers": {"seconds": 50.0}, "consumers": {"seconds": 70.0}}}}
    assert component_rto_reasons(recovered, objectives) == [
        "kafka consumers: RTO 70.00 s exceeds the kafka objective 60 s"]
    recovered["systems"]["kafka"]["consumers"]["seconds"] = 60.0
    assert component_rto_reasons(recovered, objectives) == []
