"""Real sandboxes for the sandbox, drill and contract tests (no mocks): the fixtures that make
them and the probes the tests poll them with.

The sandbox's PostgreSQL runs as an unprivileged user when the tests run as root, so every
sandbox lives under a base directory in /var/tmp that this user can traverse (pytest's own
tmp_path, /tmp/pytest-of-root, is 0700 and would be refused by `up` with a clear error).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from sandbox import control


@pytest.fixture(scope="session")
def base_dir():
    base = Path(tempfile.mkdtemp(prefix="regionpair-sandbox-tests-", dir="/var/tmp"))
    base.chmod(0o755)
    yield base
    for child in base.iterdir():  # whatever a failed test left running
        control.down(child)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(base_dir):
    """One sandbox for the read-only tests of a module."""
    sb = control.up(base_dir / "shared")
    yield sb
    control.down(sb.dir)


@pytest.fixture()
def fresh(base_dir, request):
    """A sandbox of its own for a destructive test."""
    # a directory of its own even for parametrised tests (their names share a long prefix)
    sb = control.up(Path(tempfile.mkdtemp(prefix=request.node.name[:30] + "-", dir=base_dir)))
    yield sb
    control.down(sb.dir)


def wait_for(predicate, deadline_s: float, what: str, interval_s: float = 0.02):
    """Poll until ``predicate()`` is truthy; fail the test naming ``what`` after the deadline."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"{what}: not true after {deadline_s} s (last: {last!r})")


def app_write(sb, region: str, row_id: str, database: str = "payments") -> str:
    with psycopg.connect(sb.dsn(region, database, admin=False), autocommit=True) as conn:
        return conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES (%s, now(), "
                            "current_setting('cluster_name')) RETURNING region", (row_id,)).fetchone()[0]


def has_row(sb, region: str, row_id: str, database: str = "payments") -> bool:
    with psycopg.connect(sb.dsn(region, database, local=True), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM drill_writes WHERE id = %s", (row_id,)).fetchone()[0] == 1


def no_sandbox_left(sandbox_dir: str) -> bool:
    """No process of this drill's sandbox is left (other sandboxes may run on the machine)."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sandbox_dir not in ps and not Path(sandbox_dir).exists()
