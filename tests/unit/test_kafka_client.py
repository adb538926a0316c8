"""The runbooks' Kafka client waits out a partition whose leader is not yet elected (a topic just
created answers NOT_LEADER_FOR_PARTITION for a moment: a fresh-clone run of the replay test crashed on
it) and names the partition when it does not settle; a topic is created only once every partition has
a leader. librdkafka is replaced at its boundary (the Consumer's and AdminClient's answers)."""

from __future__ import annotations

from types import SimpleNamespace

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException

from runbooks.adapters import kafka_client
from runbooks.adapters.kafka_client import KafkaTopics
from runbooks.core.errors import StepFailed


class FakeConsumer:
    """Answers each partition's watermark with the errors queued for it first."""

    def __init__(self, errors: dict[int, list[int]], high: dict[int, int]):
        self.errors, self.high, self.asked = errors, high, []

    def __call__(self, _config):
        return self

    def get_watermark_offsets(self, tp, timeout, cached):
        self.asked.append(tp.partition)
        queued = self.errors.get(tp.partition) or []
        if queued:
            raise KafkaException(KafkaError(queued.pop(0)))
        return 0, self.high[tp.partition]

    def close(self):
        pass


def topics(monkeypatch, consumer, timeout_s=2.0) -> KafkaTopics:
    monkeypatch.setattr(confluent_kafka, "Consumer", consumer)
    monkeypatch.setattr(kafka_client.time, "sleep", lambda s: None)
    t = KafkaTopics("127.0.0.1:1", timeout_s=timeout_s)
    monkeypatch.setattr(t, "partitions", lambda topic: 2)
    return t


def test_a_partition_without_a_leader_yet_is_asked_again(monkeypatch):
    c = FakeConsumer({0: [KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE]}, {0: 5, 1: 7})
    assert topics(monkeypatch, c).end_offsets("orders-replay") == {0: 5, 1: 7}
    assert c.asked == [0, 0, 0, 1]


def test_a_leader_that_never_comes_is_a_failed_step_naming_the_partition(monkeypatch):
    clock = iter(range(0, 1000))
    monkeypatch.setattr(kafka_client.time, "monotonic", lambda: float(next(clock)))
    c = FakeConsumer({1: [KafkaError.NOT_LEADER_FOR_PARTITION] * 50}, {0: 5, 1: 7})
    with pytest.raises(StepFailed, match="end offset of orders-replay partition 1 on 127.0.0.1:1: Broker: Not leader"):
        topics(monkeypatch, c).end_offsets("orders-replay")


def test_another_kafka_error_is_not_retried(monkeypatch):
    c = FakeConsumer({0: [KafkaError.TOPIC_AUTHORIZATION_FAILED]}, {0: 5, 1: 7})
    with pytest.raises(StepFailed, match="partition 0"):
        topics(monkeypatch, c).end_offsets("orders-replay")
    assert c.asked == [0]


def metadata(leaders: list[int]):
    parts = {i: SimpleNamespace(error=None, leader=leader) for i, leader in enumerate(leaders)}
    return SimpleNamespace(topics={"orders-replay": SimpleNamespace(error=None, partitions=parts)})


def test_a_created_topic_is_ready_only_when_every_partition_has_a_leader(monkeypatch):
    answers = [metadata([1, -1]), metadata([1, -1]), metadata([1, 2])]
    done = SimpleNamespace(result=lambda timeout: None)
    admin = SimpleNamespace(create_topics=lambda new, request_timeout: {"orders-replay": done},
                            list_topics=lambda topic, timeout: answers.pop(0))
    t = KafkaTopics("127.0.0.1:1", timeout_s=2.0)
    monkeypatch.setattr(t, "_admin", lambda: admin)
    monkeypatch.setattr(kafka_client.time, "sleep", lambda s: None)
    t.create_topic("orders-replay", 2)
    assert answers == [], "it asked until both partitions had a leader"


def test_a_created_topic_whose_leaders_never_come_is_a_failed_step(monkeypatch):
    clock = iter(range(0, 1000))
    monkeypatch.setattr(kafka_client.time, "monotonic", lambda: float(next(clock)))
    done = SimpleNamespace(result=lambda timeout: None)
    admin = SimpleNamespace(create_topics=lambda new, request_timeout: {"orders-replay": done},
                            list_topics=lambda topic, timeout: metadata([1, -1]))
    t = KafkaTopics("127.0.0.1:1", timeout_s=2.0)
    monkeypatch.setattr(t, "_admin", lambda: admin)
    monkeypatch.setattr(kafka_client.time, "sleep", lambda s: None)
    with pytest.raises(StepFailed, match="do not all have a leader"):
        t.create_topic("orders-replay", 2)
