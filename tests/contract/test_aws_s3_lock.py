"""The run lock in S3 (runbooks/adapters/aws/s3_lock.py): conditional writes, release and takeover
on moto; a conflicting conditional write and a missing bucket on botocore's Stubber."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

import pytest
from botocore.response import StreamingBody

from runbooks.core.errors import BadInput, LockHeld
from tests.contract.aws_helpers import (
    Stubs,
    ports,
)
from tests.helpers.moto import S
from tests.samples import pair_document


def test_lock_conditional_put_refuses_a_second_run_and_releases_only_its_own(moto_pair):
    lock = ports(moto_pair).lock
    info = {"run_id": "r1", "runbook": "failover", "who": "alice", "since": "2026-01-01T00:00:00Z"}
    assert lock.acquire(info) == "lock taken"
    assert lock.acquire(info) == "lock already held by this run"
    with pytest.raises(LockHeld) as held:
        lock.acquire({**info, "run_id": "r2", "who": "bob"})
    assert held.value.holder["who"] == "alice" and held.value.holder["host"] == socket.gethostname()
    lock.release("r2")  # not the holder: nothing happens
    assert lock.holder()["run_id"] == "r1"
    lock.release("r1")
    assert lock.holder() is None


def test_lock_takeover_by_the_crashed_runs_rerun_and_break_lock(moto_pair):
    lock = ports(moto_pair).lock
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = {"run_id": "r1", "runbook": "failover", "who": "alice", "since": "t0", "host": socket.gethostname(),
               "pid": dead.pid}
    s3 = moto_pair.client("s3", S)
    s3.put_object(Bucket=moto_pair.outputs.secondary.storage.backups_bucket, Key=lock.key, Body=json.dumps(crashed))
    with pytest.raises(LockHeld):
        lock.acquire({"run_id": "r2", "runbook": "failover", "who": "bob", "since": "t1"})
    assert "taken over from the crashed run" in lock.acquire({"run_id": "r1", "runbook": "failover", "who": "alice",
                                                             "since": "t1"})
    assert lock.holder()["pid"] == os.getpid()
    assert "broken by --break-lock" in lock.acquire({"run_id": "r3", "runbook": "failback", "who": "carol",
                                                    "since": "t2"}, break_lock=True)
    assert lock.holder()["run_id"] == "r3"


def test_lock_conflicting_conditional_write_is_refused_with_the_winner():
    s = Stubs()
    s3 = s.stub("s3", S)
    s3.add_client_error("put_object", "ConditionalRequestConflict", "conflict", 409)
    body = b'{"run_id": "other", "who": "bob", "since": "t0", "host": "h", "pid": 1}'
    s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"e1"'},
                    {"Bucket": "regionpair-dr-backups", "Key": "regionpair/locks/regionpair.json"})
    with pytest.raises(LockHeld) as held:
        s.ports().lock.acquire({"run_id": "mine", "runbook": "failover", "who": "alice", "since": "t1"})
    assert held.value.holder["who"] == "bob"


def test_lock_needs_the_dr_backups_bucket():
    doc = pair_document()
    doc["regions"][S]["storage"]["backups_bucket"] = None
    with pytest.raises(BadInput, match="storage.backups_bucket is missing"):
        Stubs(doc).ports().lock.holder()
