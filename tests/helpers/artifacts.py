"""A failing sandbox or drill test keeps the sandbox's logs: the report hook the sandbox and drill
conftests import copies every log file (``DIR/logs/*.log``) of the sandboxes the test touched to
``test-artifacts/<test id>/`` and prints that path."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS_ENV = "REGIONPAIR_TEST_ARTIFACTS"
"""Overrides where the logs go (default: test-artifacts/ at pytest's root directory)."""

STARTED = pytest.StashKey[float]()
KEPT = pytest.StashKey[Path]()
"""A directory holding logs saved from sandboxes deleted during the test (see keep_logs_on_rmtree)."""


def artifacts_root(config: pytest.Config) -> Path:
    return Path(os.environ.get(ARTIFACTS_ENV) or config.rootpath / "test-artifacts")


def artifact_dir_name(nodeid: str) -> str:
    """A test id as one directory name: ``tests/drill/test_x.py::test_y[a-b]`` → ``tests.drill.test_x.py..test_y.a-b``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", ".", nodeid).strip(".")[:200]


def sandboxes_under(root: Path, depth: int = 3) -> Iterator[Path]:
    """Sandbox directories (a ``state.json`` beside a ``logs/``) at most ``depth`` levels below root;
    never walks into PostgreSQL's data directories."""
    try:
        if (root / "state.json").is_file() and (root / "logs").is_dir():
            yield root
            return
        if depth == 0:
            return
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "pg")
    except OSError:
        return
    for child in children:
        yield from sandboxes_under(child, depth - 1)


def touched_since(sandbox: Path, since: float) -> bool:
    try:
        return any(log.stat().st_mtime >= since for log in (sandbox / "logs").iterdir())
    except OSError:
        return False


def copy_logs(sandbox: Path, dest: Path) -> int:
    """Copy ``sandbox/logs/`` to ``dest/logs/``; the number of files copied (never the secrets/)."""
    copied = 0
    for log in sorted((sandbox / "logs").glob("*")):
        if log.is_file():
            (dest / "logs").mkdir(parents=True, exist_ok=True)
            shutil.copy2(log, dest / "logs" / log.name)
            copied += 1
    return copied


def candidate_roots(item: pytest.Item) -> list[Path]:
    """Where the test's sandboxes may be: its fixtures' directories and sandboxes (``base_dir``,
    ``tmp_path``, anything with a ``dir``), and the logs kept from sandboxes deleted meanwhile."""
    roots: list[Path] = []
    for value in getattr(item, "funcargs", {}).values():
        for candidate in (value, getattr(value, "dir", None), getattr(getattr(value, "layout", None), "root", None)):
            if isinstance(candidate, Path) and candidate not in roots:
                roots.append(candidate)
    return roots


def keep_logs(item: pytest.Item) -> tuple[Path, int] | None:
    """Copy the logs of every sandbox the test touched (logs written since its setup began) to the
    test's artefact directory: (that directory, files copied), or None when there was none."""
    since = item.stash.get(STARTED, time.time()) - 1.0
    dest = artifacts_root(item.config) / artifact_dir_name(item.nodeid)
    copied, seen = 0, set()
    for root in candidate_roots(item):
        for sandbox in sandboxes_under(root):
            if sandbox.resolve() not in seen and touched_since(sandbox, since):
                seen.add(sandbox.resolve())
                copied += copy_logs(sandbox, dest / artifact_dir_name(str(sandbox.resolve())))
    kept = item.stash.get(KEPT, None)
    if kept is not None and kept.is_dir():
        for saved in sorted(p for p in kept.iterdir() if p.is_dir()):
            copied += copy_logs(saved, dest / saved.name)
    return (dest, copied) if copied else None


def keep_logs_on_rmtree(monkeypatch: pytest.MonkeyPatch, stash: Path, prefix: str = "regionpair-drill-") -> None:
    """A drill deletes its sandbox (``regionpair-drill-*`` in the temp directory) when it ends: save
    the sandbox's logs into ``stash`` first, so a failing drill test still has them."""
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        target = Path(path)
        if target.name.startswith(prefix):
            for sandbox in sandboxes_under(target):
                copy_logs(sandbox, stash / artifact_dir_name(str(sandbox)))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Imported by tests/sandbox/conftest.py and tests/drill/conftest.py: on a failed setup or
    call, keep the sandboxes' logs and say where (in the failure's report and on the terminal)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "setup":
        item.stash[STARTED] = rep.start
    if not rep.failed or rep.when not in ("setup", "call"):
        return
    kept = keep_logs(item)
    if kept is None:
        return
    dest, count = kept
    line = f"sandbox logs of {item.nodeid} kept: {count} files in {dest}"
    rep.sections.append(("sandbox logs", line))
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
