"""The sandbox's run lock (runbooks/core/lock.py FileLock) appears whole or not at all. A fresh-clone
run killed a failover right after its first journal line, between creating the lock file and writing
it: the empty file read as "held by ? since ?" and the rerun was refused. The lock is now written
into a file of the process's own and hard-linked to its name."""

from __future__ import annotations

import json
import os

import pytest

from runbooks.core import lock as lock_module
from runbooks.core.lock import FileLock, LockHeld


def test_the_lock_name_only_ever_holds_a_whole_document(tmp_path, monkeypatch):
    seen = []
    real_link = os.link

    def link(src, dst):
        seen.append(json.loads(open(src).read()))  # what the lock's name will hold, at the moment it appears
        real_link(src, dst)

    monkeypatch.setattr(lock_module.os, "link", link)
    lock = FileLock(tmp_path / "lock.json")
    assert lock.acquire({"run_id": "r1", "who": "sre"}) == "lock taken"
    assert seen and seen[0]["run_id"] == "r1" and seen[0]["pid"] == os.getpid()
    assert lock.holder()["run_id"] == "r1"
    assert [p.name for p in tmp_path.iterdir()] == ["lock.json"], "no file of its own left behind"


def test_a_run_killed_before_the_link_leaves_no_lock_and_the_rerun_takes_it(tmp_path, monkeypatch):
    def killed(src, dst):
        raise KeyboardInterrupt  # stands for the SIGKILL between writing its own file and linking it

    monkeypatch.setattr(lock_module.os, "link", killed)
    lock = FileLock(tmp_path / "lock.json")
    with pytest.raises(KeyboardInterrupt):
        lock.acquire({"run_id": "r1", "who": "sre"})
    assert lock.holder() is None
    monkeypatch.undo()
    assert lock.acquire({"run_id": "r1", "who": "sre"}) == "lock taken"


def test_a_lock_held_by_another_live_run_is_refused_and_kept(tmp_path):
    lock = FileLock(tmp_path / "lock.json")
    (tmp_path / "lock.json").write_text(json.dumps({"run_id": "other", "who": "sre", "since": "t", "host": "h",
                                                    "pid": os.getpid()}))
    with pytest.raises(LockHeld):
        lock.acquire({"run_id": "r2", "who": "sre"})
    assert lock.holder()["run_id"] == "other"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock.json"]
