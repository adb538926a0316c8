"""Short commands the sandbox runs (pg_basebackup, pg_rewind, initdb, cp) die with the process
that runs them, even when it is SIGKILLed: a runbook killed mid-rebuild leaves no orphan writing
into the data directory its rerun clears."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import proc as _proc

ROOT = Path(__file__).resolve().parents[2]

RUNNER = r'''
import sys, threading
from pathlib import Path
from sandbox import proc as _proc
log = Path(sys.argv[1])
# from a worker thread, as the runbook engine's steps do
t = threading.Thread(target=_proc.run, args=(["sh", "-c", "echo $$ > " + sys.argv[2] + "; exec sleep 60"],
                                            "a long command", log), kwargs={"timeout_s": 120})
t.start()
t.join()
'''


def alive(pid: int) -> bool:
    try:
        state = next(line for line in open(f"/proc/{pid}/status") if line.startswith("State")).split()[1]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(_proc.shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_short_command_dies_with_the_sigkilled_process_that_runs_it(tmp_path):
    pidfile = tmp_path / "pid"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path / "log"), str(pidfile)], cwd=ROOT)
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(pidfile.read_text())
    assert alive(child)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child), "the command outlived the killed process that ran it"


def test_a_short_command_still_reports_its_failure(tmp_path):
    with pytest.raises(_proc.SandboxError, match="exited with 3"):
        _proc.run(["sh", "-c", "exit 3"], "a failing command", tmp_path / "log")
