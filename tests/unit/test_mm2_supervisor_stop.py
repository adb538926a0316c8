"""How MirrorMaker 2's supervisor (sandbox/workers/replicator.py) stops its child: killed when the
source is gone (a graceful stop then hangs 8-11 s on the lost source), terminated gracefully while
the source answers; and which evidence counts as "gone". No Kafka and no JVM here: fakes stand in
for the child process and the source consumer."""

from __future__ import annotations

import json
import time

from sandbox.workers import replicator
from sandbox.workers.replicator import MirrorMakerFlow


class Child:
    pid = 4242

    def __init__(self):
        self.how = None

    def kill(self):
        self.how = self.how or "kill"

    def terminate(self):
        self.how = self.how or "terminate"

    def wait(self, _timeout=None):
        return 0


class Source:
    """The supervisor's consumer of the source: ``answers`` says whether requests get answers."""

    def __init__(self, answers: bool, ends: int = 10):
        self.answers, self.ends, self.asked, self.polled = answers, ends, 0, 0

    def list_topics(self, timeout=None):
        self.asked += 1
        if not self.answers:
            raise RuntimeError("timed out")

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        from confluent_kafka import KafkaException
        if not self.answers:
            raise KafkaException("timed out")
        return (0, self.ends)

    def assign(self, _tps):
        pass

    def poll(self, _timeout):
        self.polled += 1
        return None  # the record it holds does not come

    def close(self):
        pass


def flow(tmp_path, monkeypatch, src: Source, ok_ago: float, failed_ago: float | None) -> MirrorMakerFlow:
    f = object.__new__(MirrorMakerFlow)
    monkeypatch.setattr(replicator.proc, "pid_path", lambda run_dir, comp: tmp_path / "mm2.pid")
    f.layout = type("L", (), {"run_dir": tmp_path})()
    f.kafka = type("K", (), {"MM2_COMPONENT": "mirrormaker2"})()
    f.child, f.src, f.tail, f.source, f.target = Child(), src, None, "local-east", "local-west"
    f.source_ok_at = time.time() - ok_ago
    f.source_failed_at = 0.0 if failed_ago is None else time.time() - failed_ago
    f.config, f.positions, f.last_lag, f.next_groups = {"topics": ["orders"]}, {}, (None, None), 1e18
    f.config_path, f.epoch = tmp_path / "config.json", 1
    f.config_path.write_text(json.dumps({"epoch": 1}))
    return f


def test_a_source_whose_last_request_went_unanswered_is_killed_without_a_second_probe(tmp_path, monkeypatch):
    src = Source(answers=True)  # even if it would answer now: the evidence is the unanswered request
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=0.1)
    child = f.child
    f._stop(record=False)
    assert child.how == "kill" and src.asked == 0


def test_a_source_that_answers_is_stopped_gracefully(tmp_path, monkeypatch):
    """The broken form this refuses: killing MirrorMaker 2 on a live source (its last positions
    and checkpoints unstored) just because an answer is a moment old."""
    src = Source(answers=True)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=None)
    child = f.child
    f._stop(record=False)
    assert child.how == "terminate" and src.asked == 1
    # an older failure, answered since, is not evidence either
    src = Source(answers=True)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.2, failed_ago=0.6)
    child = f.child
    f._stop(record=False)
    assert child.how == "terminate"


def test_without_evidence_a_probe_decides_and_two_silent_seconds_suffice(tmp_path, monkeypatch):
    src = Source(answers=False)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=None)
    child = f.child
    f._stop(record=False)
    assert child.how == "kill" and src.asked == 1
    src = Source(answers=True)
    f = flow(tmp_path, monkeypatch, src, ok_ago=2.5, failed_ago=None)
    child = f.child
    f._stop(record=False)
    assert child.how == "kill" and src.asked == 0


def test_a_record_the_source_holds_that_does_not_come_is_evidence_but_a_drained_flow_polls_nothing(tmp_path,
                                                                                                  monkeypatch):
    src = Source(answers=True, ends=10)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=None)
    f._measure()  # 10 records behind on each partition; the first poll gets nothing
    assert src.polled == 1 and f.source_failed_at >= f.source_ok_at
    src = Source(answers=True, ends=10)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=None)
    f.positions = {f"orders:{p}": 10 for p in range(4)}  # drained, as before a planned stop
    f._measure()
    assert src.polled == 0 and f.source_failed_at < f.source_ok_at


def test_a_waiting_reconfiguration_stops_the_source_probes(tmp_path, monkeypatch):
    src = Source(answers=True, ends=10)
    f = flow(tmp_path, monkeypatch, src, ok_ago=0.5, failed_ago=None)
    f.config_path.write_text(json.dumps({"epoch": 2}))  # a stop was written meanwhile
    before = f.source_ok_at
    f._measure()
    assert src.polled == 0 and f.source_ok_at == before
