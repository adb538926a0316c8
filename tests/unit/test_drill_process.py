"""The drill's client process dies with the drill, even when the drill is SIGKILLed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PARENT = r'''
import subprocess, sys, time
from drills.sandbox_drill import die_with_parent as _die_with_parent
p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=_die_with_parent)
print(p.pid, flush=True)
time.sleep(60)
'''


def state_of(pid: int) -> str:
    try:
        return next(line for line in open(f"/proc/{pid}/status") if line.startswith("State")).split()[1]
    except FileNotFoundError:
        return "gone"


def test_the_workload_child_is_killed_when_the_drill_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = int(parent.stdout.readline())
    assert state_of(child) not in ("Z", "gone")  # alive (R, S, or D while it still loads python)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while state_of(child) not in ("Z", "gone") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state_of(child) in ("Z", "gone"), "the child outlived the killed drill"
