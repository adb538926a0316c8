"""The sandbox's continuous Kafka topic backup, a worker process (``python -m
sandbox.workers.kafka_backup --dir DIR --topic orders=critical [--region local-east]``, started in
the background by ``python -m sandbox kafka-backup start``): it does what the S3 sink connector
does in AWS (components/kafka_backup.py), against the sandbox's real Kafka (sandbox/kafka_backup.py
describes the store and the watermark)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from contract import kafka_backup as kb
from sandbox import kafka_cluster
from sandbox.errors import SandboxError
from sandbox.kafka_backup import COMPONENT, parse_topics, status_path, store_dir
from sandbox.layout import EAST, Layout, still_ours, write_json_atomic

log = logging.getLogger("sandbox.kafka_backup")


class Worker:
    def __init__(self, layout: Layout, bootstrap: str, topics: dict[str, str], flush_s: float = 1.0,
                 offsets_every_s: float = 10.0, clock=time.time):
        self.layout = layout
        self.bootstrap = bootstrap
        self.topics = topics
        self.flush_s = flush_s
        self.offsets_every_s = offsets_every_s
        self.store = kb.DirStore(store_dir(layout))
        self.clock = clock
        self.buffer: dict[tuple[str, int], list[kb.Record]] = {}
        self.next: dict[str, dict[int, int]] = {}
        self.flushes = 0
        self.records = 0

    def _consumer(self):
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": "regionpair-kafka-backup",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 0,
                         "fetch.wait.max.ms": 100, "enable.partition.eof": False})

    def assign(self, consumer) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition
        parts = []
        md = consumer.list_topics(timeout=10)
        for topic in self.topics:
            t = md.topics.get(topic)
            if t is None or t.error is not None:
                raise SandboxError(f"topic {topic} does not exist on {self.bootstrap}; create it or drop it from "
                                   "--topic", component=COMPONENT)
            wm = kb.read_watermark(self.store, topic)
            self.next[topic] = dict(wm.next_offsets) if wm else {}
            for p in t.partitions:
                start = self.next[topic].get(p)
                parts.append(TopicPartition(topic, p, start if start is not None else OFFSET_BEGINNING))
        consumer.assign(parts)

    def take(self, msg) -> None:
        if msg.error() is not None:
            return
        topic, p = msg.topic(), msg.partition()
        r = kb.Record(p, msg.offset(), msg.timestamp()[1], msg.key(), msg.value(),
                      tuple((k, v) for k, v in (msg.headers() or ())))
        self.buffer.setdefault((topic, p), []).append(r)

    def heads(self, consumer) -> dict[str, dict[int, int]]:
        from confluent_kafka import TopicPartition
        out: dict[str, dict[int, int]] = {}
        md = consumer.list_topics(timeout=5)
        for topic in self.topics:
            t = md.topics.get(topic)
            out[topic] = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1]
                          for p in (t.partitions if t is not None else {})}
        return out

    def flush(self, consumer) -> dict:
        """Write the buffer (one file per partition and hour), then the watermarks; returns the status."""
        t0 = self.clock()
        heads = self.heads(consumer)
        oldest_wait = 0.0
        written = 0
        for (topic, p), recs in sorted(self.buffer.items()):
            by_hour: dict[int, list[kb.Record]] = {}
            for r in recs:
                by_hour.setdefault(int(r.timestamp_ms // 3_600_000), []).append(r)
            for chunk in by_hour.values():
                self.store.put(kb.file_key(topic, p, chunk[0].offset, chunk[0].timestamp_ms), kb.encode(chunk))
                written += len(chunk)
            self.next.setdefault(topic, {})[p] = recs[-1].offset + 1
            oldest_wait = max(oldest_wait, t0 - recs[0].timestamp_ms / 1000.0)
        self.buffer.clear()
        behind = 0
        for topic in self.topics:
            pos = self.next.setdefault(topic, {})
            for p, head in heads[topic].items():
                if head == 0:
                    pos.setdefault(p, 0)  # an empty partition: nothing to back up yet
            caught = all(pos.get(p, -1) >= head for p, head in heads[topic].items())
            behind += sum(max(0, head - pos.get(p, 0)) for p, head in heads[topic].items())
            old = kb.read_watermark(self.store, topic)
            wm = kb.Watermark(topic, pos, t0 if caught else (old.caught_up_at if old else None), self.clock())
            self.store.put(kb.watermark_key(topic), wm.to_json())
        self.flushes += 1
        self.records += written
        status = {"flushed_at": self.clock(), "records_written": written, "records_total": self.records,
                  "records_behind_head": behind, "oldest_wait_s": round(oldest_wait, 3), "flushes": self.flushes,
                  "topics": self.topics, "bootstrap": self.bootstrap}
        path = status_path(self.layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, status)
        return status

    def snapshot_offsets(self) -> str:
        """Every consumer group's committed offsets on the backed-up topics (contract.kafka_backup)."""
        from runbooks.adapters.kafka_client import KafkaTopics
        key, _ = kb.snapshot_offsets(self.store, KafkaTopics(self.bootstrap), self.topics, self.clock(),
                                     source=self.bootstrap)
        return key

    def prune(self) -> int:
        gone = kb.expired(self.store, self.topics, self.clock())
        for key in gone:
            self.store.delete(key)
        return len(gone)

    def run(self, stop: threading.Event, still_ours=lambda: True) -> None:
        consumer = self._consumer()
        try:
            self.assign(consumer)
            last_flush = last_offsets = 0.0
            while not stop.is_set():
                for m in consumer.consume(1000, 0.2):
                    self.take(m)
                now = time.monotonic()
                if now - last_flush >= self.flush_s:
                    self.flush(consumer)
                    last_flush = now
                    if not still_ours():
                        return
                if now - last_offsets >= self.offsets_every_s:
                    try:
                        self.snapshot_offsets()
                        self.prune()
                    except Exception as exc:  # noqa: BLE001 - a snapshot is retried next interval, the log says why
                        log.warning("consumer-group offset snapshot failed: %s", exc)
                    last_offsets = now
            self.flush(consumer)  # what was read before the stop is backed up
        finally:
            consumer.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox.workers.kafka_backup", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True, type=Path, help="the sandbox's directory")
    p.add_argument("--topic", action="append", default=[], help="TOPIC=CLASS to back up (repeatable)")
    p.add_argument("--region", default=EAST, help="whose cluster to read")
    p.add_argument("--flush-s", type=float, default=1.0, help="seconds between writes")
    p.add_argument("--offsets-every-s", type=float, default=10.0, help="seconds between offset snapshots")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    layout = Layout(args.dir)
    try:
        state = layout.read_state()
        topics = parse_topics(args.topic)
    except SandboxError as exc:
        print(f"kafka-backup: {exc}", file=sys.stderr)
        return 2
    worker = Worker(layout, kafka_cluster.bootstrap(state, args.region), topics, args.flush_s, args.offsets_every_s)
    stop_event = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_event.set())
    print(f"kafka-backup: {', '.join(f'{t} ({c})' for t, c in topics.items())} from {worker.bootstrap} into "
          f"{worker.store.describe()}", flush=True)
    worker.run(stop_event, lambda: still_ours(layout, state.instance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
