"""A failing sandbox or drill test keeps the sandbox's logs (tests/helpers/artifacts.py): shown on
inner pytest runs in a subprocess whose tests fail on purpose, beside a passing one that keeps none."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sandbox.layout import Layout
from tests.helpers.artifacts import artifact_dir_name, sandboxes_under

ROOT = Path(__file__).resolve().parents[2]

MAKE_SANDBOX = '''
    import json, os, time
    from pathlib import Path

    def make_sandbox(directory, logs, age_s=0.0):
        """A sandbox directory as `up` leaves it (state.json, logs/<component>.log)."""
        directory = Path(directory)
        (directory / "logs").mkdir(parents=True)
        (directory / "state.json").write_text(json.dumps({"options": {}}))
        (directory / "secrets").mkdir()
        (directory / "secrets" / "pgpass").write_text("*:*:*:admin:never-copied")
        for name, text in logs.items():
            log = directory / "logs" / f"{name}.log"
            log.write_text(text)
            if age_s:
                os.utime(log, (time.time() - age_s, time.time() - age_s))
        return directory
'''


def inner_run(tmp_path: Path, conftest: str, test: str) -> tuple[subprocess.CompletedProcess, Path]:
    work = tmp_path / "inner"
    work.mkdir()
    (work / "conftest.py").write_text(textwrap.dedent(conftest))
    (work / "test_inner.py").write_text(textwrap.dedent(MAKE_SANDBOX) + textwrap.dedent(test))
    artifacts = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REGIONPAIR_TEST_ARTIFACTS": str(artifacts)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(work),
                          str(work)], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    return run, artifacts


def test_the_hooks_idea_of_a_sandbox_is_the_sandboxs_layout(tmp_path):
    layout = Layout(tmp_path / "sb")
    assert layout.log("postgres").parent == layout.logs_dir == layout.root / "logs"
    assert layout.state_file == layout.root / "state.json"
    layout.logs_dir.mkdir(parents=True)
    assert list(sandboxes_under(tmp_path)) == []  # logs/ without state.json: not a sandbox
    layout.state_file.write_text("{}")
    assert list(sandboxes_under(tmp_path)) == [layout.root]


def test_a_failing_sandbox_test_keeps_the_logs_of_the_sandboxes_it_touched_and_prints_where(tmp_path):
    run, artifacts = inner_run(tmp_path, '''
        import pytest
        from tests.helpers.artifacts import pytest_runtest_makereport  # noqa: F401

        @pytest.fixture(scope="session")
        def base_dir(tmp_path_factory):
            return tmp_path_factory.mktemp("sandboxes")
    ''', '''
        def test_fails(base_dir):
            make_sandbox(base_dir / "old", {"postgres": "from an earlier test"}, age_s=3600)
            make_sandbox(base_dir / "mine", {"postgres-us-east-1": "FATAL: the standby is gone", "up": "started"})
            assert False, "on purpose"

        def test_passes(base_dir):
            make_sandbox(base_dir / "other", {"postgres": "fine"})
    ''')
    assert "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    dest = artifacts / artifact_dir_name("test_inner.py::test_fails")
    assert f"sandbox logs of test_inner.py::test_fails kept: 2 files in {dest}" in run.stdout, run.stdout
    kept = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert [k.rsplit("/", 2)[-2:] for k in kept] == [["logs", "postgres-us-east-1.log"], ["logs", "up.log"]], kept
    assert any(p.read_text() == "FATAL: the standby is gone" for p in dest.rglob("postgres-us-east-1.log"))
    assert not list(dest.rglob("pgpass")) and not list(dest.rglob("state.json"))  # logs only, never secrets
    assert sorted(p.name for p in artifacts.iterdir()) == [dest.name]  # the passing test kept nothing


def test_a_failing_drill_test_keeps_the_logs_of_the_sandbox_the_drill_deleted(tmp_path):
    run, artifacts = inner_run(tmp_path, '''
        from tests.drill.conftest import drill_sandbox_logs_kept, pytest_runtest_makereport  # noqa: F401
    ''', '''
        import shutil, tempfile

        def test_drill_fails():
            tmp = Path(tempfile.mkdtemp(prefix="regionpair-drill-"))  # as runbooks/drill.py makes it
            make_sandbox(tmp / "sandbox", {"workload": "1200 writes acknowledged"})
            shutil.rmtree(tmp, ignore_errors=True)  # as the drill ends
            assert not tmp.exists()
            assert False, "on purpose"
    ''')
    assert "1 failed" in run.stdout, run.stdout + run.stderr
    dest = artifacts / artifact_dir_name("test_inner.py::test_drill_fails")
    assert f"kept: 1 files in {dest}" in run.stdout, run.stdout
    assert [p.read_text() for p in dest.rglob("workload.log")] == ["1200 writes acknowledged"]


def test_artifacts_are_gitignored():
    out = subprocess.run(["git", "check-ignore", "-q", "test-artifacts/x/logs/a.log"], cwd=ROOT)
    assert out.returncode == 0, "test-artifacts/ is not in .gitignore"
