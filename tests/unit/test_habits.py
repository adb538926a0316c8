"""The project's habits in the test run: ruff (lint and import order) over the tree and mypy over
the modules [tool.regionpair.typecheck] lists, both configured in pyproject.toml; each test fails
with the tool's own output. The checks are also shown refusing a broken file, so a configuration
that checks nothing cannot pass."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


def tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=240)


def typecheck_modules() -> list[str]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["regionpair"]["typecheck"]["modules"]


def test_ruff_finds_nothing_in_the_tree():
    run = tool("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert run.returncode == 0, f"ruff check found (fix, or `ruff check --fix` for [*]):\n{run.stdout}{run.stderr}"


def test_mypy_finds_nothing_in_the_typed_modules():
    modules = typecheck_modules()
    assert modules, "[tool.regionpair.typecheck] modules is empty: mypy would check nothing"
    for name in modules:  # a module that moved and was not renamed here would be skipped silently
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file() or (ROOT / name.replace(".", "/")).is_dir(), \
            f"[tool.regionpair.typecheck] lists {name}, which does not exist: update the list in pyproject.toml"
    run = tool("mypy", "--config-file", str(PYPROJECT), *[arg for m in modules for arg in ("-m", m)])
    assert run.returncode == 0, f"mypy found:\n{run.stdout}{run.stderr}"


def test_ruff_refuses_an_undefined_name_a_late_bound_loop_variable_and_unsorted_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport json\n\n"
                   "def f(items):\n"
                   "    fs = []\n"
                   "    for item in items:\n"
                   "        fs.append(lambda: item + missing_name)\n"
                   "    return fs, sys, json\n")
    run = tool("ruff", "check", "--no-cache", "--config", str(PYPROJECT), "--output-format", "concise", str(bad),
               cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    for code in ("F821", "B023", "I001"):
        assert code in run.stdout, f"ruff did not report {code}:\n{run.stdout}"
    good = tmp_path / "good.py"
    good.write_text("import json\nimport sys\n\n\ndef f(items):\n    return [json.dumps(i) for i in items], sys\n")
    run = tool("ruff", "check", "--no-cache", "--config", str(PYPROJECT), str(good), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_refuses_a_type_error_with_the_projects_configuration(tmp_path):
    (tmp_path / "typed_bad.py").write_text("def port(region: str) -> int:\n    return region\n")
    run = tool("mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(tmp_path / "cache"), "typed_bad.py",
               cwd=tmp_path)
    assert run.returncode == 1 and "Incompatible return value type" in run.stdout, run.stdout + run.stderr
    (tmp_path / "typed_good.py").write_text("def port(region: str) -> int:\n    return len(region)\n")
    run = tool("mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(tmp_path / "cache"), "typed_good.py",
               cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
