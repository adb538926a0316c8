"""The DR alert rules (monitoring/alerts.yml) and their unit tests (monitoring/alerts_test.yml),
checked with the real promtool that scripts/setup.sh builds into .tools/ (pinned). Without it these
tests fail, never skip: CI runs setup first, so a missing promtool is a broken setup."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from runbooks.core import metrics as prom

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "alerts.yml"
RULE_TESTS = ROOT / "monitoring" / "alerts_test.yml"


def promtool() -> str:
    for candidate in (os.environ.get("PROMTOOL"), str(ROOT / ".tools" / "promtool"), shutil.which("promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("promtool is missing: run scripts/setup.sh (it builds the pinned promtool into .tools/ with Go), "
                "or point PROMTOOL at one")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules_accepts_the_rules():
    proc = run("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {n} rules found" in proc.stdout + proc.stderr


def test_promtool_test_rules_passes_the_rule_unit_tests():
    proc = run("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace("regionpair_postgres_replication_lag_bytes > 100e6",
                                                "regionpair_postgres_replication_lag_bytes > > 100e6"))
    proc = run("check", "rules", str(broken))
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_the_rule_unit_tests_catch_a_changed_threshold(tmp_path):
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace("> 100e6", "> 300e6"))
    shutil.copy(RULE_TESTS, tmp_path / "alerts_test.yml")
    proc = run("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert proc.returncode != 0 and "RegionPairPostgresReplicationLag" in proc.stdout + proc.stderr


def test_every_alert_watches_a_metric_the_runbooks_emit_and_every_dr_metric_is_watched():
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in re.findall(r"\bregionpair_[a-z0-9_]+", e)}
    assert used <= set(prom.HELP), used - set(prom.HELP)
    dr_set = {prom.LAST_BACKUP, prom.BACKUP_SIZE, prom.PG_LAG_BYTES, prom.KAFKA_LAG_SECONDS, prom.S3_LAG_SECONDS,
              prom.DRILL_LAST_RUN, prom.DRILL_SUCCESS, prom.FAILOVER_SECONDS}  # planning document 004's set
    assert dr_set <= used, dr_set - used
