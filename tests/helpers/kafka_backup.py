"""A Kafka cluster in memory and backups of its records, for the Kafka backup tests (unit and AWS contract)."""

from __future__ import annotations

from contract import kafka_backup as kb

T0 = 1_780_000_000  # an hour boundary is not needed: ranges below cross hours on purpose


def rec(p, o, t_s, key=None):
    return kb.Record(p, o, int(t_s * 1000), (key or f"k{p}-{o}").encode(), f"v{p}-{o}".encode(), (("h", b"1"),))


class FakeCluster:
    """Topics as lists of records per partition; ``drop_every`` loses records on produce."""

    def __init__(self):
        self.topics: dict[str, dict[int, list[kb.Record]]] = {}
        self.actions: list[tuple] = []
        self.drop_every = 0
        self.groups: dict[str, dict[str, dict[str, int]]] = {}

    def partitions(self, topic):
        return len(self.topics[topic]) if topic in self.topics else None

    def end_offsets(self, topic):
        return {p: len(rs) for p, rs in self.topics.get(topic, {}).items()}

    def create_topic(self, topic, partitions, replication_factor=None):
        self.actions.append(("create", topic, partitions))
        self.topics[topic] = {p: [] for p in range(partitions)}

    def produce(self, topic, records, progress=None):
        self.actions.append(("produce", topic, len(records)))
        n = 0
        for i, r in enumerate(records):
            if self.drop_every and i % self.drop_every == 0:
                continue
            part = self.topics[topic][r.partition]
            part.append(kb.Record(r.partition, len(part), r.timestamp_ms, r.key, r.value, r.headers))
            n += 1
        return n

    def group_offsets(self, topics):
        return {g: {t: o for t, o in per.items() if t in topics} for g, per in self.groups.items()
                if any(t in topics for t in per)}

    def read(self, topic, start, end):
        return {p: [r for r in rs if start.get(p, 0) <= r.offset < end.get(p, 0)]
                for p, rs in self.topics.get(topic, {}).items()}


def backup(store, topic, records, caught_up_at=None):
    """Back records up as the worker does: one file per partition and hour, then the watermark."""
    for p, rs in kb.group_records(records).items():
        by_hour: dict[int, list] = {}
        for r in rs:
            by_hour.setdefault(r.timestamp_ms // 3_600_000, []).append(r)
        for chunk in by_hour.values():
            store.put(kb.file_key(topic, p, chunk[0].offset, chunk[0].timestamp_ms), kb.encode(chunk))
    nxt = {p: rs[-1].offset + 1 for p, rs in kb.group_records(records).items()}
    store.put(kb.watermark_key(topic), kb.Watermark(topic, nxt, caught_up_at, T0).to_json())


def source_records(n_per_partition=50, partitions=2, step_s=120.0):
    """Records every ``step_s`` seconds in each partition from T0 - 1 h: the range crosses hours."""
    return [rec(p, o, T0 - 3600 + o * step_s) for p in range(partitions) for o in range(n_per_partition)]
