"""The slot store of the AWS adapter on moto (server mode): captures kept in every region's backups
bucket that exists, read back newest last, a damaged one refused naming it. (The slots' SQL is the
one the sandbox runs on real PostgreSQL: runbooks/slots_sql.py, tests/drill/test_slots_on_sandbox.py.)"""

from __future__ import annotations

import copy

import pytest

from contract.slot_backup import key
from runbooks.adapters import aws
from runbooks.core.errors import StepFailed
from tests.helpers.moto import S
from tests.helpers.slots import GOOD


def test_captures_are_kept_in_the_backups_buckets_and_read_back_in_order(moto_pair):
    store = aws.aws_backup_ports(moto_pair.outputs, moto_pair.clock, moto_pair.session).slot_store
    first, second = copy.deepcopy(GOOD), copy.deepcopy(GOOD)
    second.update(captured_at=2000.5, server_lsn="0/900")
    where = store.put("payments", second)
    store.put("payments", first)
    bucket = moto_pair.doc["regions"][S]["storage"]["backups_bucket"]
    assert f"s3://{bucket}/{key('payments', 2000.5)}" in where
    # the primary region's backups bucket does not exist in this pair: said, not fatal
    assert any(w.startswith("NOT in") and "NoSuchBucket" in w for w in where), where
    got = store.backups("payments")
    assert [b.captured_at for b in got] == [1000.0, 2000.5] and got[-1].server_lsn == "0/900"
    assert store.backups("payments-2") == []


def test_a_damaged_capture_is_refused_naming_the_object_and_an_unreadable_one_is_never_kept(moto_pair):
    store = aws.aws_backup_ports(moto_pair.outputs, moto_pair.clock, moto_pair.session).slot_store
    bucket = moto_pair.doc["regions"][S]["storage"]["backups_bucket"]
    moto_pair.client("s3", S).put_object(Bucket=bucket, Key=key("payments", 5.0), Body=b'{"schema_version": 1}')
    with pytest.raises(StepFailed, match=r"slot backup s3://.*is damaged: .*slots is missing"):
        store.backups("payments")
    bad = copy.deepcopy(GOOD)
    bad["slots"][0]["confirmed_flush_lsn"] = "nowhere"
    with pytest.raises(ValueError, match="confirmed_flush_lsn"):
        store.put("payments", bad)
