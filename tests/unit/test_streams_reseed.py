"""Where the sandbox's replicators start after a region was lost and came back: the decisions
themselves, as pure functions (the drills run them on the real sandbox), and the S3 worker's
bookkeeping when a copy fails."""

from __future__ import annotations

import datetime
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from sandbox.kafka_replication import EARLIEST, decide_start
from sandbox.workers.s3_replication import ObjectReplicator, to_copy_again

E, W = "local-east", "local-west"
TPS = [f"orders:{p}" for p in range(4)]


def stopped_failover(east_incarnation="inc-east-1"):
    """The failover stopped east → west: west's end offsets then, and how far the flow had read east."""
    return {"flow": f"{E}->{W}", "offsets": {tp: 100 for tp in TPS},
            "incarnations": {E: east_incarnation, W: "inc-west-1"},
            "source_positions": {tp: 90 for tp in TPS}}


def ends(n):
    return {tp: (0, n) for tp in TPS}


def test_failback_into_a_cluster_that_came_back_empty_copies_everything_from_the_earliest_offset():
    start, why = decide_start(W, E, stopped=stopped_failover(), running=None, target_incarnation="inc-east-2",
                              target_offsets=ends(0))
    assert start == EARLIEST
    assert "new one (incarnation inc-east-1 → inc-east-2, holding 0 records)" in why


def test_failback_into_the_same_cluster_that_kept_its_data_copies_only_what_dr_took_since_the_stop():
    start, why = decide_start(W, E, stopped=stopped_failover(), running=None, target_incarnation="inc-east-1",
                              target_offsets=ends(95))
    assert start == {tp: 100 for tp in TPS}
    assert "only what local-west took after the flow local-east->local-west stopped" in why


def test_same_incarnation_that_lacks_records_it_had_given_is_reseeded_not_resumed():
    """Data-based, not only identity: a cluster that holds fewer records than the stopped flow had
    read from it cannot be the base of a reverse flow from the recorded offsets."""
    offsets = ends(95)
    offsets["orders:2"] = (0, 40)
    start, why = decide_start(W, E, stopped=stopped_failover(), running=None, target_incarnation="inc-east-1",
                              target_offsets=offsets)
    assert start == EARLIEST and "orders:2 ends at 40 < 90" in why


def test_a_stop_that_recorded_no_offsets_falls_back_to_earliest_never_to_latest():
    stopped = dict(stopped_failover(), offsets={})
    start, why = decide_start(W, E, stopped=stopped, running=None, target_incarnation="inc-east-1",
                              target_offsets=ends(95))
    assert start == EARLIEST and "duplicates" in why


def test_restarting_the_same_flow_resumes_unless_its_target_is_a_new_cluster():
    stopped = stopped_failover()
    assert decide_start(E, W, stopped=stopped, running=None, target_incarnation="inc-west-1",
                        target_offsets=ends(100))[0] is None
    start, _ = decide_start(E, W, stopped=stopped, running=None, target_incarnation="inc-west-2",
                            target_offsets=ends(0))
    assert start == EARLIEST


def test_no_record_and_a_non_empty_target_is_refused_rather_than_guessed():
    assert decide_start(W, E, stopped={}, running=None, target_incarnation="x", target_offsets=ends(0))[0] == EARLIEST
    with pytest.raises(ValueError, match="already hold 40 records"):
        decide_start(W, E, stopped={}, running=None, target_incarnation="x", target_offsets={"orders:0": (0, 40)})


def test_versions_whose_twin_the_recreated_bucket_lost_are_copied_again():
    # west holds: r1 (a copy of east's o1), n1 (written in DR, never copied), c1 (copied to east as e1)
    copies = {"o1": "r1", "c1": "e1"}
    origin = {"r1": "o1", "e1": "c1"}
    west = ["r1", "n1", "c1"]
    assert to_copy_again(west, {"o1", "e1"}, copies, origin) == set()          # east kept its bucket
    assert to_copy_again(west, set(), copies, origin) == {"r1", "c1"}          # east's bucket came back empty
    assert to_copy_again(west, {"e1"}, copies, origin) == {"r1"}


def test_a_failed_copy_in_a_batch_does_not_drop_the_copies_of_the_batch_that_went_through(tmp_path):
    """Copies run eight at once; when one fails, the others of the batch are recorded all the same
    (else the next round copies them again: duplicate versions, later taken for the target's own)."""
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    listing = [{"Key": f"k{i}", "VersionId": f"v{i}", "kind": "version",
                "LastModified": t0 + datetime.timedelta(seconds=i)} for i in range(4)]
    config = tmp_path / "replication-config.json"
    config.write_text(json.dumps({"epoch": 1}))
    worker = object.__new__(ObjectReplicator)
    worker.link = SimpleNamespace(refresh=lambda: None, partitioned=False, latency_s=0.0)
    worker.config_path = config
    worker.copies, worker.origin, worker.reseed = {}, {}, set()
    worker.replicated, worker._cached = 0, None
    worker._pool = ThreadPoolExecutor(max_workers=4)
    worker._versions = lambda region: list(listing)
    attempts: list[str] = []

    def copy(source, target, v):
        attempts.append(v["VersionId"])
        if v["VersionId"] == "v1":
            return None, RuntimeError("connection reset")
        return {"VersionId": f"copy-of-{v['VersionId']}"}, None

    worker._copy = copy
    try:
        worker._list("local-east")
        worker.step({"source": "local-east", "target": "local-west", "epoch": 1})
        assert sorted(attempts) == ["v0", "v1", "v2", "v3"]
        assert worker.copies == {"v0": "copy-of-v0", "v2": "copy-of-v2", "v3": "copy-of-v3"}
        assert worker.origin == {"copy-of-v0": "v0", "copy-of-v2": "v2", "copy-of-v3": "v3"}
        assert worker.replicated == 3
        assert [b["version_id"] for b in worker.backlog] == ["v1"]
        attempts.clear()
        worker._cached = None
        worker.step({"source": "local-east", "target": "local-west", "epoch": 1})
        assert attempts == ["v1"], "the next round copies only the one that failed"
    finally:
        worker._pool.shutdown()
