"""Shared by the benchmarks: a throw-away sandbox directory the server user can traverse."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


@contextlib.contextmanager
def sandbox(*up_args: str):
    tmp = Path(tempfile.mkdtemp(prefix="regionpair-bench-"))
    tmp.chmod(0o755)
    d = tmp / "sandbox"
    try:
        subprocess.run([sys.executable, "-m", "sandbox", "up", "--dir", str(d), *up_args], check=True,
                       capture_output=True, text=True)
        yield d
    finally:
        subprocess.run([sys.executable, "-m", "sandbox", "down", "--dir", str(d)], capture_output=True, text=True)
        shutil.rmtree(tmp, ignore_errors=True)
