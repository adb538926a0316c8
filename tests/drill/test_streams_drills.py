"""Drills with all three data stores on the real sandbox: PostgreSQL, Kafka (a mock cluster per
region, the replicator between them) and S3 (moto per region, the replication worker)."""

from __future__ import annotations

import io
import json
from collections import Counter

from runbooks import drill
from tests.drill.test_drills import no_sandbox_left


def run_drill(tmp_path, *extra):
    out = io.StringIO()
    code = drill.main(["--report-dir", str(tmp_path / "report"), "--warmup", "1.5", "--settle", "0.5",
                       "--output", "json", "--systems", "postgres,kafka,s3", *extra], stdout=out)
    return code, json.loads(out.getvalue())


def consumer_view(tmp_path):
    lines = [json.loads(x) for x in (tmp_path / "report" / "workload.jsonl").read_text().splitlines() if x.strip()]
    consumed = [e for e in lines if e.get("event") == "consumed"]
    acked = {e["id"] for e in lines if e.get("ok") and e.get("system") == "kafka"}
    return consumed, acked


def test_switchover_moves_all_three_with_nothing_lost_and_duplicates_counted_exactly(tmp_path):
    code, rep = run_drill(tmp_path, "--scenario", "switchover", "--replication", "async")
    assert code == 0, rep.get("reasons") or rep.get("error")
    systems = rep["systems"]
    assert set(systems) == {"postgres", "kafka", "s3"}
    for name, s in systems.items():
        assert s["acknowledged"] > 10, name
        assert s["acked_lost"] == 0, (name, s)
    consumed, acked = consumer_view(tmp_path)
    counts = Counter(e["id"] for e in consumed)
    assert systems["kafka"]["duplicates"] == sum(n - 1 for n in counts.values())
    assert systems["kafka"]["consumer_groups_translated"] == ["ledger"]
    # the group resumed on DR from the translated offsets and skipped no acknowledged record
    assert {e["region"] for e in consumed} == {"local-east", "local-west"}
    assert systems["kafka"]["skipped"] == 0 and acked <= set(counts)
    assert systems["s3"]["pending_at_failover"]["count"] == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| kafka |" in md and "| s3 |" in md and "consumer groups translated" in md
    assert no_sandbox_left()


def test_region_outage_with_async_replicators_counts_loss_per_system_within_the_rpo(tmp_path):
    code, rep = run_drill(tmp_path, "--scenario", "region-outage", "--replication", "async")
    rpo = rep["objectives"]["rpo_seconds"]
    systems = rep["systems"]
    for name, s in systems.items():
        assert s["acked_lost"] is not None, name
        assert s["rpo_seconds"] <= rpo, (name, s)
    assert code == 0, rep.get("reasons") or rep.get("error")
    kafka = systems["kafka"]
    assert kafka["consumer_groups_translated"] == ["ledger"]
    assert kafka["skipped"] == 0, "the group skipped records the DR cluster holds"
    consumed, _ = consumer_view(tmp_path)
    assert any(e["region"] == "local-west" for e in consumed), "the group never resumed on DR"
    pending = systems["s3"]["pending_at_failover"]
    assert pending is not None and pending["count"] is not None
    names = [s["name"] for s in rep["steps"]]
    assert "failover/kafka-stop:replication" in names and "failover/objects-writers:checkout" in names
    assert no_sandbox_left()
