"""Fixtures several unit test modules share (their code lives in tests/helpers/)."""

from tests.helpers.backups import (
    env,  # noqa: F401  (the backup runbooks over a fake pair)
    env as backup_env,  # noqa: F401  (the same, by the name other modules use)
)
from tests.helpers.kubernetes_scripts import work  # noqa: F401  (a work directory with stand-in tools)
