"""Fixtures for the sandbox tests: real sandboxes (real PostgreSQL, DNS, link, moto), no mocks
(tests/helpers/sandbox.py); a failing test keeps its sandboxes' logs in test-artifacts/
(tests/helpers/artifacts.py)."""

from tests.helpers.artifacts import pytest_runtest_makereport  # noqa: F401  (the hook)
from tests.helpers.sandbox import base_dir, fresh, shared  # noqa: F401  (the fixtures)
