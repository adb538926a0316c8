"""One failover or failback at a time per region pair.

The lock holds who took it, for which run, and since when. A run that crashed can be taken over
by its own rerun (same run id, its process gone); anybody else is refused and told who holds it.
The sandbox and tests use FileLock (the sandbox's directory); AWS uses the S3 lock of the aws
adapter, in a bucket both regions can reach."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Protocol

from runbooks.core.errors import LockHeld


class Lock(Protocol):
    def acquire(self, info: dict, break_lock: bool = False) -> str:
        """Take the lock for ``info['run_id']`` or raise LockHeld. Returns a sentence."""

    def release(self, run_id: str) -> None: ...

    def holder(self) -> dict | None: ...


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def may_take_over(holder: dict, info: dict) -> bool:
    """A crashed run's own rerun may take its lock over: same run id, same host, process gone."""
    return (holder.get("run_id") == info.get("run_id") and holder.get("host") == socket.gethostname()
            and not _pid_alive(int(holder.get("pid", 0) or 0)))


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return {"run_id": "?", "who": "?", "since": "?", "note": f"unreadable lock file {self.path}"}

    def acquire(self, info: dict, break_lock: bool = False) -> str:
        info = dict(info, host=socket.gethostname(), pid=os.getpid())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(info, sort_keys=True).encode()
        # The lock appears whole or not at all: its content goes into a file of this process's own, which
        # is then hard-linked to the lock's name (fails if the name exists). A run killed between
        # creating the lock and writing it used to leave an empty lock file that no rerun could take over.
        mine = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(mine, self.path)
        except FileExistsError:
            holder = self.holder() or {}
            if holder.get("run_id") == info["run_id"] and holder.get("pid") == info["pid"]:
                return "lock already held by this run"
            if not (break_lock or may_take_over(holder, info)):
                raise LockHeld(holder) from None
            os.replace(mine, self.path)
            why = "broken by --break-lock" if break_lock else "taken over from the crashed run"
            return f"lock {why} (was {holder.get('run_id')} by {holder.get('who')} since {holder.get('since')})"
        finally:
            mine.unlink(missing_ok=True)
        return "lock taken"

    def release(self, run_id: str) -> None:
        holder = self.holder()
        if holder and holder.get("run_id") == run_id:
            self.path.unlink(missing_ok=True)
