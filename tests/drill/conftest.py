"""The drill tests use the sandbox tests' fixtures (real sandboxes under /var/tmp,
tests/helpers/sandbox.py); a failing test keeps its sandboxes' logs in test-artifacts/, including a
drill's own sandbox, which the drill deletes when it ends (tests/helpers/artifacts.py)."""

import pytest

from tests.helpers.artifacts import (
    KEPT,
    keep_logs_on_rmtree,
    pytest_runtest_makereport,  # noqa: F401  (the hook)
)
from tests.helpers.sandbox import base_dir, fresh  # noqa: F401  (the fixtures)


@pytest.fixture(autouse=True)
def drill_sandbox_logs_kept(request, monkeypatch, tmp_path_factory):
    """Save the logs of a drill's sandbox before the drill deletes it."""
    stash = tmp_path_factory.mktemp("drill-sandbox-logs")
    request.node.stash[KEPT] = stash
    keep_logs_on_rmtree(monkeypatch, stash)
