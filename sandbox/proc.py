"""Processes the sandbox starts: spawning, pid files, liveness, and killing whole process trees.

Every long-running component is spawned in its own session (so a Ctrl-C in the terminal reaches
only the CLI, which then stops what it started) and recorded in ``DIR/run/<component>.pid`` as
JSON with the pid *and* its kernel start time, so a recycled pid is never mistaken for ours.

Killing is done on the whole tree. PostgreSQL's backends call ``setsid()`` and so leave the
postmaster's process group: ``killpg`` would miss them, and a backend that survives its
postmaster for a few milliseconds finishes its in-flight commit and acknowledges it. The tree
is therefore frozen first (SIGSTOP on the root, then on every descendant found, repeatedly until
no new one appears) and only then killed with SIGKILL, so nothing in it runs between the first
and the last kill.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sandbox.errors import SandboxError

# Popen objects of children this process spawned, kept so they can be reaped (no zombies when
# the API is used in a long-lived process such as a test run or a drill).
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class Identity:
    """Who the PostgreSQL server runs as. ``switch`` is true when we are root and must drop."""

    name: str
    uid: int
    gid: int
    switch: bool

    def popen_kwargs(self) -> dict:
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


@dataclass(frozen=True)
class PidRecord:
    component: str
    pid: int
    start_time: int
    argv0: str


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start_time) of a process, or None when there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_alive(pid: int, start_time: int | None = None) -> bool:
    st = _stat(pid)
    if st is None:
        return False
    state, _, started = st
    if state in ("Z", "X"):
        _reap(pid)
        return False
    return start_time is None or started == start_time


def start_time_of(pid: int) -> int:
    st = _stat(pid)
    if st is None:
        raise SandboxError(f"process {pid} vanished right after it was started")
    return st[2]


def _all_ppids() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                out[int(entry.name)] = st[1]
    return out


def descendants(pid: int) -> set[int]:
    ppids = _all_ppids()
    children: dict[int, list[int]] = {}
    for child, parent in ppids.items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def freeze(pid: int) -> set[int]:
    """SIGSTOP a process and every descendant (a server's backends and WAL sender included), so
    nothing in the tree acknowledges or sends anything more. Returns the pids frozen."""
    send_signal(pid, signal.SIGSTOP)
    frozen = {pid}
    for _ in range(20):  # a frozen root forks no more; its children may, until frozen too
        new = descendants(pid) - frozen
        if not new:
            break
        for p in new:
            send_signal(p, signal.SIGSTOP)
        frozen |= new
    return frozen | descendants(pid)


def wait_gone(pids: Iterable[int], deadline_s: float, what: str) -> None:
    pids = set(pids)
    deadline = time.monotonic() + deadline_s
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if is_alive(p)}
        if pids:
            time.sleep(0.01)
    if pids:
        raise SandboxError(f"{what}: processes {sorted(pids)} still exist {deadline_s:.0f} s after they were killed")


def kill_tree(pid: int, start_time: int | None, what: str, deadline_s: float = 10.0) -> set[int]:
    """Freeze then SIGKILL a process and all its descendants; return the pids killed."""
    if not is_alive(pid, start_time):
        return set()
    frozen = freeze(pid)
    for p in frozen:
        send_signal(p, signal.SIGKILL)
    wait_gone(frozen, deadline_s, what)
    return frozen


def terminate(pid: int, start_time: int | None, what: str, sig: int = signal.SIGTERM,
              grace_s: float = 10.0) -> str:
    """Ask a process to stop (``sig``), wait ``grace_s``, then kill its tree. Returns how it ended."""
    if not is_alive(pid, start_time):
        return "not running"
    send_signal(pid, sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not is_alive(pid, start_time):
            return "stopped"
        time.sleep(0.01)
    kill_tree(pid, start_time, what)
    return f"killed (did not stop within {grace_s:.0f} s)"


# ---------------------------------------------------------------------------------------------
# pid files
# ---------------------------------------------------------------------------------------------


def pid_path(run_dir: Path, component: str) -> Path:
    return run_dir / f"{component}.pid"


def write_pid(run_dir: Path, component: str, pid: int, argv0: str) -> PidRecord:
    rec = PidRecord(component=component, pid=pid, start_time=start_time_of(pid), argv0=argv0)
    path = pid_path(run_dir, component)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec.__dict__))
    tmp.replace(path)
    return rec


def read_pid(run_dir: Path, component: str) -> PidRecord | None:
    path = pid_path(run_dir, component)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        raise SandboxError(f"pid file {path} is corrupt; remove it after checking no {component} process runs") from None
    return PidRecord(**data)


def all_pids(run_dir: Path) -> list[PidRecord]:
    if not run_dir.is_dir():
        return []
    return [r for r in (read_pid(run_dir, p.stem) for p in sorted(run_dir.glob("*.pid"))) if r is not None]


def running(run_dir: Path, component: str) -> PidRecord | None:
    rec = read_pid(run_dir, component)
    if rec is not None and is_alive(rec.pid, rec.start_time):
        return rec
    return None


class _Deferred:
    """Ctrl-C / SIGTERM held back in the main thread while a server is started and its pid file
    written: raised as they were (KeyboardInterrupt) once it is recorded. Otherwise an interrupt
    landing between the fork and the pid file (seen: the S3 worker of an `up` interrupted early)
    leaves a process that nothing knows to stop. Other threads get no signals: nothing to do there."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        import threading
        self.pending: list[int] = []
        self.saved: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                old = signal.getsignal(sig)
                if callable(old):  # a Python handler that would raise here: hold it back
                    self.saved[sig] = old
                    signal.signal(sig, lambda signum, _frame: self.pending.append(signum))
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self.saved.items():
            signal.signal(sig, old)
        if self.pending and exc[0] is None:
            self.saved[self.pending[0]](self.pending[0], None)


def spawn(run_dir: Path, component: str, argv: Sequence[str], log_path: Path,
          identity: Identity | None = None, env: Mapping[str, str] | None = None) -> PidRecord:
    """Start a long-running component in its own session, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with _Deferred(), open(log_path, "ab") as log:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=dict(env) if env is not None else None,
                                    cwd="/", **(identity.popen_kwargs() if identity else {}))
        except OSError as exc:
            raise SandboxError(f"{component}: cannot start {argv[0]}: {exc}", component=component,
                               log=log_path) from None
        _CHILDREN[proc.pid] = proc
        return write_pid(run_dir, component, proc.pid, argv[0])


def worker_argv(module: str, *args: str) -> list[str]:
    """The command line of a sandbox worker process: ``python -m <module> ARGS`` in this interpreter."""
    return [sys.executable, "-m", module, *args]


def worker_env() -> dict[str, str]:
    """A worker's environment: ours without AWS credentials, with this checkout on its path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _dies_with_caller(argv: Sequence[str]) -> list[str]:
    """``argv`` under ``setpriv --pdeathsig KILL`` (util-linux), so the command dies with the
    process that runs it, even one SIGKILLed: a pg_basebackup orphaned by a killed runbook would go
    on writing into the data directory that the rerun is clearing for its own copy. Without
    setpriv, the command as it is."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)


def run(argv: Sequence[str], what: str, log_path: Path, identity: Identity | None = None,
        timeout_s: float = 60.0, env: Mapping[str, str] | None = None) -> None:
    """Run a short command to completion, its output appended to ``log_path``; raise naming it.
    It dies with this process (``_dies_with_caller``); servers are started with ``spawn``, which
    they outlive."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(_dies_with_caller(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout_s, cwd="/", env=dict(env) if env is not None else None,
                                  **(identity.popen_kwargs() if identity else {}))
        except subprocess.TimeoutExpired:
            raise SandboxError(f"{what}: `{Path(argv[0]).name}` did not finish within {timeout_s:.0f} s",
                               log=log_path) from None
    if proc.returncode != 0:
        raise SandboxError(f"{what}: `{Path(argv[0]).name}` exited with {proc.returncode}; "
                           f"last lines: {tail(log_path)}", log=log_path)


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return " | ".join(line.strip() for line in text[-lines:]) or "(empty log)"
