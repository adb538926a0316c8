"""The drill workload's warm standby producer (sandbox/workload_streams.py): made ahead of need on
the cluster clients are not on, handed over only while it can be trusted. A fake stands in for
librdkafka's Producer; the clusters' records (their bootstrap and incarnation) are real files."""

from __future__ import annotations

import json

import pytest

from sandbox import kafka_cluster, workload_streams
from sandbox.layout import EAST, WEST, Layout


class FakeProducer:
    def __init__(self, bootstrap, error_cb=None):
        self.bootstrap, self.error_cb = bootstrap, error_cb
        self.polled = self.flushed = 0

    def poll(self, _timeout):
        self.polled += 1

    def flush(self, _timeout):
        self.flushed += 1


class FakeError:
    def __init__(self, code, fatal=False):
        self._code, self._fatal = code, fatal

    def code(self):
        return self._code

    def fatal(self):
        return self._fatal


@pytest.fixture
def layout(tmp_path, monkeypatch):
    lay = Layout(tmp_path)
    (tmp_path / "kafka").mkdir()
    record(lay, EAST, "127.0.1.1:9092", "east-1")
    record(lay, WEST, "127.0.2.1:9092", "west-1")
    made = []
    monkeypatch.setattr(workload_streams, "_producer",
                        lambda boot, **kw: made.append(FakeProducer(boot, **kw)) or made[-1])
    monkeypatch.setattr(workload_streams, "_discard", lambda p: p.flush(0))
    lay.made = made
    return lay


def record(layout, region, bootstrap, incarnation):
    kafka_cluster.info_path(layout, region).write_text(json.dumps({"bootstrap": bootstrap,
                                                                   "incarnation": incarnation}))


def standing_by(layout, on=EAST) -> workload_streams.StandbyProducer:
    s = workload_streams.StandbyProducer(layout)
    s.keep(on)
    return s


def test_it_stands_by_on_the_other_region_and_is_handed_over_for_that_bootstrap(layout):
    s = standing_by(layout, on=EAST)
    assert [p.bootstrap for p in layout.made] == ["127.0.2.1:9092"]
    assert s.take("127.0.1.1:9092") is None  # not the cluster it stands by on
    p = s.take("127.0.2.1:9092")
    assert p is layout.made[0] and p.flushed == 0
    assert s.take("127.0.2.1:9092") is None  # handed over once


def test_it_is_refused_once_all_its_brokers_went_down_and_made_again_later(layout):
    from confluent_kafka import KafkaError

    s = standing_by(layout)
    layout.made[0].error_cb(FakeError(KafkaError._TRANSPORT))
    assert s.take("127.0.2.1:9092") is layout.made[0]  # one broker's connection: still trusted
    s = standing_by(layout)
    layout.made[1].error_cb(FakeError(KafkaError._ALL_BROKERS_DOWN))
    assert s.take("127.0.2.1:9092") is None
    s.checked_at = s.made_at = 0.0  # as if RETRY_S had passed
    s.keep(EAST)
    assert layout.made[1].flushed == 1 and len(layout.made) == 3
    assert s.take("127.0.2.1:9092") is layout.made[2]


def test_it_is_refused_after_a_fatal_error(layout):
    s = standing_by(layout)
    layout.made[0].error_cb(FakeError(-1, fatal=True))
    assert s.take("127.0.2.1:9092") is None


def test_it_is_refused_when_its_region_came_back_as_another_cluster(layout):
    """A region restarted with a new, empty cluster (same address) does not know its ProducerId."""
    s = standing_by(layout)
    record(layout, WEST, "127.0.2.1:9092", "west-2")
    assert s.take("127.0.2.1:9092") is None
    s.checked_at = s.made_at = 0.0
    s.keep(EAST)
    assert s.take("127.0.2.1:9092") is layout.made[1]


def test_it_follows_the_clients_and_stands_by_nowhere_without_a_region(layout):
    s = standing_by(layout, on=EAST)
    s.checked_at = 0.0
    s.keep(WEST)  # clients moved to west: the standby on west is dropped, one on east is made
    assert layout.made[0].flushed == 1
    s.checked_at = s.made_at = 0.0
    s.keep(WEST)
    assert layout.made[-1].bootstrap == "127.0.1.1:9092"
    s.checked_at = 0.0
    s.keep(None)
    assert s.producer is None and layout.made[-1].flushed == 1
