"""The MirrorMaker 2 supervisor's per-group view, which the `kafka-checkpoints` gate judges: which
partitions a group committed on the source have no checkpoint, and why, read from MirrorMaker 2's
own offset syncs (no Kafka here: the records are built as MirrorMaker 2 writes them)."""

from __future__ import annotations

import struct

from sandbox.kafka_replication import no_checkpoint_reason, parse_offset_sync, sync_floors
from sandbox.workers.replicator import MirrorMakerFlow


def sync_record(topic: str, partition: int, up: int, down: int) -> tuple[bytes, bytes]:
    """An offset sync as MirrorMaker 2 serialises it: key = topic (short-prefixed), partition;
    value = upstream, downstream."""
    t = topic.encode()
    return struct.pack(">h", len(t)) + t + struct.pack(">i", partition), struct.pack(">qq", up, down)


class Msg:
    def __init__(self, topic, key, value, ts=0):
        self._t, self._k, self._v, self._ts = topic, key, value, ts

    def topic(self): return self._t
    def key(self): return self._k
    def value(self): return self._v
    def timestamp(self): return (0, self._ts)


def flow_with(records) -> MirrorMakerFlow:
    f = object.__new__(MirrorMakerFlow)
    f.config, f.source, f.positions, f.tasks = {"topics": ["orders"]}, "local-east", {}, {}
    f.checkpoints, f.committed, f.syncs_read, f.read_at = {}, {}, (0.0, {}), None
    f.tail = type("Tail", (), {"poll": lambda self: list(records)})()
    return f


def test_offset_syncs_are_parsed_as_mirrormaker_2_writes_them():
    assert parse_offset_sync(*sync_record("orders", 3, 120, 118)) == ("orders:3", 120, 118)


def test_each_reason_names_what_mirrormaker_2_lacks():
    assert "no offset sync" in no_checkpoint_reason(40, None, None)
    older = no_checkpoint_reason(40, floor=75, last=200)
    assert "offset 40 is older than MirrorMaker 2's oldest usable offset sync (upstream 75" in older
    assert "not checkpointed it yet" in no_checkpoint_reason(90, floor=75, last=200)


def test_a_rewind_in_the_offset_syncs_moves_the_floor_and_the_view_names_the_partitions_left_out():
    # orders:0: syncs 0..33, then MirrorMaker 2 started again and copies again from its stored
    # position 25: its store drops every older sync, so 25 is now the oldest it translates from
    syncs = {"orders:0": [(up, up) for up in (0, 11, 22, 33)] + [(25, 34), (36, 45)], "orders:1": [(0, 0)]}
    assert sync_floors(syncs) == {"orders:0": (25, 36), "orders:1": (0, 0)}
    f = flow_with([])
    f._sync_floors = lambda: sync_floors(syncs)
    f.checkpoints = {"ledger": {"partitions": {"orders:1": 5}, "at": 1.0}}
    f.committed = {"ledger": {"orders:0": 20, "orders:1": 9, "orders:2": 7}}
    view = f._groups_view()["ledger"]
    assert view["consumed_since_checkpoint"] == 4, "only the checkpointed partition counts there"
    assert set(view["without_checkpoint"]) == {"orders:0", "orders:2"}
    assert "older than MirrorMaker 2's oldest usable offset sync (upstream 25" in \
        view["without_checkpoint"]["orders:0"]["reason"]
    assert "no offset sync" in view["without_checkpoint"]["orders:2"]["reason"]
    assert view["committed"] == {"orders:0": 20, "orders:1": 9, "orders:2": 7}


def test_a_group_checkpointed_everywhere_has_nothing_left_out():
    f = flow_with([])
    f.checkpoints = {"ledger": {"partitions": {"orders:0": 10, "orders:1": 12}, "at": 1.0}}
    f.committed = {"ledger": {"orders:0": 10, "orders:1": 15}}
    view = f._groups_view()["ledger"]
    assert view["without_checkpoint"] == {} and view["consumed_since_checkpoint"] == 3
