"""Whole drills on the sandbox, as `python -m runbooks.drill` runs them (CI runs these)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest

import drills as drill
from tests.helpers.sandbox import no_sandbox_left


def run_drill(tmp_path, *extra):
    out = io.StringIO()
    code = drill.main(["--report-dir", str(tmp_path / "report"), "--warmup", "1.5", "--settle", "0.5",
                       "--output", "json", "--systems", "postgres", *extra], stdout=out)
    return code, json.loads(out.getvalue())


def drill_dirs() -> set[str]:
    return {str(p) for p in Path(tempfile.gettempdir()).glob("regionpair-drill-*")}


def test_region_outage_with_sync_replication_loses_no_acknowledged_write(tmp_path):
    code, rep = run_drill(tmp_path, "--scenario", "region-outage", "--replication", "sync")
    assert code == 0, rep.get("reasons") or rep.get("error")
    assert rep["passed"] is True
    assert rep["writes"]["acknowledged"] > 100
    assert rep["rpo"]["acked_writes_lost"] == 0 and rep["rpo"]["seconds"] == 0.0
    assert 0 < rep["rto_seconds"] <= rep["objectives"]["rto_seconds"]
    # the headline is the service's; with PostgreSQL alone, its writers' outage
    assert set(rep["rto"]["systems"]) == {"postgres"} and set(rep["rto"]["systems"]["postgres"]) == {"writers"}
    assert rep["rto_seconds"] == pytest.approx(rep["rto"]["systems"]["postgres"]["writers"]["seconds"])
    assert list(rep["replication_modes"]) == ["postgres"] and rep["replication_modes"]["postgres"].startswith("sync")
    # people were told, through the sandbox's notification sink
    told = [n["subject"] for n in rep["notified"]["failover"]]
    assert told[0].startswith("regionpair failover: started:") and "complete, PASSED; RTO" in told[-1]
    names = [s["name"] for s in rep["steps"]]
    for step in ("sandbox-up", "warm-up", "fault", "detection", "failover/promote:payments",
                 "failover/dns:payments", "verification", "count"):
        assert step in names, step
    assert names.index("fault") < names.index("detection") < names.index("failover/promote:payments")
    report = tmp_path / "report"
    saved = json.loads((report / "report.json").read_text())
    for key in ("scenario", "rto_seconds", "rpo", "writes", "steps", "objectives", "passed"):
        assert key in saved
    assert {"acked_writes_lost", "seconds", "estimate"} <= set(saved["rpo"])
    assert (report / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "acknowledged writes lost | 0" in (report / "report.md").read_text()
    # the applications' endpoints: DR's cluster moved; the lost region's could not be reached
    clusters = rep["endpoints"]["failover"]["clusters"]
    assert clusters["local-west"]["points_at_active"] is True
    assert set(c["ACTIVE_REGION"] for c in clusters["local-west"]["copies"].values()) == {"local-west"}
    assert clusters["local-east"]["reachable"] is False
    assert names.index("failover/promote:payments") < names.index("failover/endpoints:local-west")
    # the Deployments reading the endpoints through envFrom were restarted for the run that moved them
    assert clusters["local-west"]["restarted"] is True
    assert set(clusters["local-west"]["deployments"].values()) == {
        c["updated_by"] for c in clusters["local-west"]["copies"].values()}
    assert names.index("failover/endpoints:local-west") < names.index("failover/restart-deployments:local-west")
    assert "| failover | local-west | yes | checkout: local-west, payments: local-west | yes | yes |" in \
        (report / "report.md").read_text()
    assert no_sandbox_left(rep["sandbox_dir"])


def test_switchover_and_failback_are_zero_loss(tmp_path):
    code, rep = run_drill(tmp_path, "--scenario", "switchover", "--replication", "async", "--failback")
    assert code == 0, rep.get("reasons") or rep.get("error")
    assert rep["rpo"]["acked_writes_lost"] == 0
    assert rep["failback"]["write_pause_seconds"] is not None
    regions = {s["name"]: s for s in rep["steps"]}
    assert "switchover/drain:payments" in regions and "failback/drain:payments" in regions
    for phase, home in (("switchover", "local-west"), ("failback", "local-east")):
        clusters = rep["endpoints"][phase]["clusters"]
        assert all(c["points_at_active"] for c in clusters.values()), (phase, clusters)
        assert all(c["restarted"] for c in clusters.values()), (phase, clusters)
        assert {x["ACTIVE_REGION"] for c in clusters.values() for x in c["copies"].values()} == {home}
    assert no_sandbox_left(rep["sandbox_dir"])


def test_db_loss_with_async_replication_counts_what_was_lost(tmp_path):
    code, rep = run_drill(tmp_path, "--scenario", "db-loss", "--replication", "async", "--link-latency-ms", "25",
                          "--rate", "500")
    lost = rep["rpo"]["acked_writes_lost"]
    assert lost == len(rep["rpo"]["lost_ids"]) or lost > 50
    est = rep["rpo"]["estimate"]
    assert est["writes"] is not None and est["in_flight_wal_bytes"] >= 0
    # an ordinary process kill leaves the link up, so what was on the wire still arrives: the loss
    # cannot exceed what was in flight by much (the region-outage benchmark checks the estimate)
    assert lost <= max(3 * est["writes"], 10)
    assert code == (0 if rep["passed"] else 1)


@pytest.mark.parametrize("argv, message", [
    (["--rate", "0"], "--rate 0"),
    (["--warmup", "0.1"], "--warmup 0.1"),
    (["--target", "stacks", "--scenario", "switchover"], "region-outage only"),
    (["--scenario", "db-loss", "--api-down"], "--api-down: only with --scenario region-outage"),
    (["--scenario", "broker-loss", "--systems", "postgres,s3"], "--scenario broker-loss: needs Kafka"),
    (["--scenario", "broker-loss", "--failback"], "a broker loss fails nothing over"),
    (["--scenario", "switchover", "--restart-broker"], "--restart-broker: only with --scenario broker-loss"),
])
def test_bad_drill_arguments_are_refused_before_anything_starts(tmp_path, argv, message):
    before = drill_dirs()
    out = io.StringIO()
    code = drill.main(["--output", "json", "--report-dir", str(tmp_path / "r"), *argv], stdout=out)
    assert code == 2 and message in json.loads(out.getvalue())["error"]
    assert drill_dirs() - before == set(), "a refused drill created a sandbox directory"


def test_region_outage_with_the_control_plane_down_is_refenced_first_by_the_failback(tmp_path):
    """Issue 12: the fence cannot be applied while home's control plane is down; home comes back as
    an unfenced primary, and the failback re-fences it before anything else. The drill's faults and
    both runbooks' starts and ends are in the sandbox's durable audit sink, unbroken, and the drill's
    DR metrics are in its report folder."""
    code, rep = run_drill(tmp_path, "--scenario", "region-outage", "--api-down", "--failback", "--keep-files")
    try:
        _check_refenced_drill(tmp_path, code, rep)
    finally:
        import shutil
        shutil.rmtree(Path(rep["sandbox_dir"]).parent, ignore_errors=True)


def _check_refenced_drill(tmp_path, code, rep):
    from prometheus_client.parser import text_string_to_metric_families
    assert code == 0, rep.get("reasons") or rep.get("error")
    steps = {s["name"]: s for s in rep["steps"]}
    assert steps["failover/fence:payments"]["status"] == "best-effort-failed"
    assert "control plane does not answer" in steps["failover/fence:payments"]["result"]
    assert "unfenced on return: payments" in steps["restart-home"]["result"]
    failback_steps = sorted((s for s in rep["steps"] if s["name"].startswith("failback/")), key=lambda s: s["start"])
    assert failback_steps[0]["name"] == "failback/refence:payments" and failback_steps[0]["status"] == "done"
    assert rep["audited"]["failover"] > 0 and rep["audited"]["failback"] > 0
    from runbooks.core.audit import read_sink, verify_chain
    sink = Path(rep["sandbox_dir"]) / "audit-sink.jsonl"
    assert verify_chain(sink) is None
    entries = read_sink(sink)
    assert [e["action"] for e in entries if e["runbook"] == "drill"] == ["fault", "heal-link", "restart-home"]
    assert any(e["runbook"] == "failback" and e["action"] == "refence" and e["result"] == "ok" for e in entries)
    fam = {f.name: f.samples for f in text_string_to_metric_families((tmp_path / "report" / "regionpair_dr.prom").read_text())}
    assert [s.value for s in fam["regionpair_dr_drill_success"]] == [1.0]
    assert fam["regionpair_dr_failover_time_seconds"][0].value == pytest.approx(rep["rto_seconds"])
