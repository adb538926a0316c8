"""A Kafka cluster as the topic replay sees it, through confluent-kafka (librdkafka).

The same class serves both targets: the sandbox passes its brokers' plain bootstrap servers; AWS
passes MSK's IAM bootstrap servers and ``msk_iam_config`` (SASL/OAUTHBEARER over TLS with a token
from the MSK IAM SASL signer: the clusters' only client authentication, components/streaming.py).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from contract.kafka_backup import Record
from runbooks.core.errors import StepFailed, Unreachable


def msk_iam_config(region: str) -> dict[str, Any]:
    """librdkafka settings for MSK with IAM access control (port 9098, TLS): an OAUTHBEARER token
    signed with the caller's AWS credentials (MSK Developer Guide, "IAM access control": non-Java
    clients use the aws-msk-iam-sasl-signer library)."""
    def token(_config):
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        value, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return value, expiry_ms / 1000.0
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER", "oauth_cb": token}


def committed_offsets(config: dict[str, Any], group: str, partitions: list[tuple[str, int]],
                      timeout_s: float) -> dict[tuple[str, int], int]:
    """``group``'s committed offsets on ``partitions``: {(topic, partition): offset}, partitions with
    none left out. Read by a consumer carrying the group's id that never subscribes (so it joins no
    group and moves nothing): its OffsetFetch is the group coordinator's answer.

    Not the admin client's ``list_consumer_group_offsets``: when the coordinator answers
    NOT_COORDINATOR (it moves, or is still loading, e.g. while brokers start), librdkafka's handler
    asks the client's consumer-group handle to look the coordinator up again, and an admin client
    has none: its main thread dereferences a null pointer and the process dies (librdkafka issue
    #5040; seen here as the sandbox's MirrorMaker 2 supervisor dying, core dump: rd_kafka_cgrp_op
    under rd_kafka_ListConsumerGroupOffsetsResponse_parse). A consumer has that handle and retries."""
    from confluent_kafka import Consumer, TopicPartition
    if not partitions:
        return {}
    c = Consumer({**config, "group.id": group, "enable.auto.commit": False, "log_level": 0})
    try:
        got = c.committed([TopicPartition(t, p) for t, p in partitions], timeout=timeout_s)
    finally:
        c.close()
    return {(tp.topic, tp.partition): tp.offset for tp in got if tp.error is None and tp.offset >= 0}


LEADER_MOVING = ("NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART")
"""Errors a partition answers while its leader is not yet elected or is moving: asked again."""


class KafkaTopics:
    def __init__(self, bootstrap: str, config: dict[str, Any] | None = None, timeout_s: float = 10.0):
        self.bootstrap = bootstrap
        self.config = {"bootstrap.servers": bootstrap, "log_level": 0, **(config or {})}
        self.timeout_s = timeout_s

    def _admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient(dict(self.config))

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count, None when it does not exist."""
        try:
            md = self._admin().list_topics(topic=topic, timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - KafkaException and librdkafka's transport errors
            raise Unreachable(f"Kafka at {self.bootstrap} does not answer: {exc}") from None
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return len(t.partitions)

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition the next offset to be written (the high watermark)."""
        from confluent_kafka import Consumer, TopicPartition
        n = self.partitions(topic)
        if n is None:
            return {}
        c = Consumer({**self.config, "group.id": "regionpair-replay-probe", "enable.auto.commit": False})
        try:
            return {p: self._high_watermark(c, TopicPartition(topic, p)) for p in range(n)}
        finally:
            c.close()

    def _high_watermark(self, consumer, tp) -> int:
        """The partition's high watermark; a partition whose leader is moving or not yet elected (a topic
        just created, a broker just lost) is asked again until ``timeout_s``, then named in the failure."""
        from confluent_kafka import KafkaException
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return consumer.get_watermark_offsets(tp, timeout=self.timeout_s, cached=False)[1]
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                name = err.name() if hasattr(err, "name") else str(exc)
                if name in LEADER_MOVING and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise StepFailed(f"reading the end offset of {tp.topic} partition {tp.partition} on {self.bootstrap}: "
                                 f"{err.str() if hasattr(err, 'str') else exc}") from None

    def create_topic(self, topic: str, partitions: int, replication_factor: int | None = None) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import NewTopic
        new = NewTopic(topic, partitions, replication_factor if replication_factor is not None else -1)
        admin = self._admin()  # held until the futures resolve: a collected client cancels them
        for name, fut in admin.create_topics([new], request_timeout=self.timeout_s).items():
            try:
                fut.result(self.timeout_s)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise StepFailed(f"creating topic {name} on {self.bootstrap}: {exc}") from None
        deadline = time.monotonic() + self.timeout_s
        while not self._leaders_elected(admin, topic, partitions):
            if time.monotonic() > deadline:
                raise StepFailed(f"topic {topic} was created but its {partitions} partitions do not all have a leader "
                                 f"after {self.timeout_s:.0f} s")
            time.sleep(0.1)

    def _leaders_elected(self, admin, topic: str, partitions: int) -> bool:
        """Every one of the topic's ``partitions`` is in the metadata with a leader (a topic just created
        answers NOT_LEADER_FOR_PARTITION until then), asked through the client that created it."""
        try:
            md = admin.list_topics(topic=topic, timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - KafkaException and librdkafka's transport errors
            raise Unreachable(f"Kafka at {self.bootstrap} does not answer: {exc}") from None
        t = md.topics.get(topic)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.error is None and p.leader >= 0 for p in t.partitions.values()))

    def produce(self, topic: str, records: list[Record], progress: Callable[[int], None] | None = None) -> int:
        """Write each record into its own partition with its key, value, headers and timestamp,
        idempotently and acknowledged by every in-sync replica; returns how many were acknowledged."""
        from confluent_kafka import Producer
        p = Producer({**self.config, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                      "compression.type": "zstd"})
        acked = [0]
        failed: list[str] = []

        def done(err, _msg):
            if err is not None:
                failed.append(str(err))
            else:
                acked[0] += 1

        for i, r in enumerate(records):
            while True:
                try:
                    p.produce(topic, value=r.value, key=r.key, partition=r.partition, timestamp=r.timestamp_ms,
                              headers=list(r.headers) or None, on_delivery=done)
                    break
                except BufferError:
                    p.poll(0.1)
            if i % 1000 == 0:
                p.poll(0)
                if progress:
                    progress(acked[0])
        left = p.flush(max(30.0, self.timeout_s))
        if left or failed:
            raise StepFailed(f"{len(failed)} record(s) refused by {topic} ({'; '.join(sorted(set(failed))[:3])}) and "
                             f"{left} unacknowledged; {acked[0]} were written (a rerun verifies what landed)")
        return acked[0]

    def read(self, topic: str, start: dict[int, int], end: dict[int, int], deadline_s: float = 60.0) -> dict[int, list[Record]]:
        """Every record of ``topic`` from ``start`` up to (not including) ``end``, per partition."""
        from confluent_kafka import Consumer, TopicPartition
        want = {p: (start.get(p, 0), e) for p, e in end.items() if e > start.get(p, 0)}
        out: dict[int, list[Record]] = {p: [] for p in end}
        if not want:
            return out
        c = Consumer({**self.config, "group.id": "regionpair-replay-verify", "enable.auto.commit": False,
                      "enable.partition.eof": False, "isolation.level": "read_committed"})
        try:
            c.assign([TopicPartition(topic, p, s) for p, (s, _) in want.items()])
            remaining = dict(want)
            deadline = time.monotonic() + deadline_s
            while remaining:
                if time.monotonic() > deadline:
                    raise StepFailed(f"reading {topic} back: partitions {sorted(remaining)} did not reach their end "
                                     f"offsets within {deadline_s:.0f} s")
                for m in c.consume(500, 0.5):
                    if m.error() is not None:
                        continue
                    p, off = m.partition(), m.offset()
                    if p not in remaining or off >= remaining[p][1]:
                        continue
                    out[p].append(Record(p, off, m.timestamp()[1], m.key(), m.value(),
                                         tuple((k, v) for k, v in (m.headers() or ()))))
                    if off + 1 >= remaining[p][1]:
                        del remaining[p]
        finally:
            c.close()
        return out

    def group_offsets(self, topics) -> dict[str, dict[str, dict[str, int]]]:
        """Every consumer group's committed offsets on ``topics``: {group: {topic: {partition: offset}}}
        (groups with no committed offset on them are left out; the runbooks' own regionpair-* groups too)."""
        admin = self._admin()
        try:
            listed = admin.list_consumer_groups(request_timeout=self.timeout_s).result(self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - KafkaException and librdkafka's transport errors
            raise Unreachable(f"Kafka at {self.bootstrap} does not list its consumer groups: {exc}") from None
        try:
            md = admin.list_topics(timeout=self.timeout_s).topics
        except Exception as exc:  # noqa: BLE001 - KafkaException and librdkafka's transport errors
            raise Unreachable(f"Kafka at {self.bootstrap} does not answer for its topics: {exc}") from None
        partitions = [(t, p) for t in sorted(set(topics)) if t in md for p in sorted(md[t].partitions)]
        out: dict[str, dict[str, dict[str, int]]] = {}
        for g in sorted(x.group_id for x in listed.valid if not x.group_id.startswith("regionpair-")):
            try:
                got = committed_offsets({**self.config, "bootstrap.servers": self.bootstrap}, g, partitions,
                                        self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - KafkaException and librdkafka's transport errors
                raise Unreachable(f"Kafka at {self.bootstrap} does not give group {g}'s offsets: {exc}") from None
            for (t, p), off in sorted(got.items()):
                out.setdefault(g, {}).setdefault(t, {})[str(p)] = off
        return out
