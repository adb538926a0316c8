"""The drill tests reuse the sandbox tests' fixtures: real sandboxes under /var/tmp."""

from tests.sandbox.conftest import app_write, base_dir, fresh, has_row, wait_for  # noqa: F401
