"""Kafka and S3 replication in the sandbox: a Kafka cluster per region, a replicator that behaves
like MSK Replicator, an S3 replication worker that behaves like CRR with RTC, and a parameter
store that stands in for SSM Parameter Store.

Each runs as its own process (``python -m sandbox._serve kafka REGION | replicator | s3-replication
--dir DIR``). They are stand-ins for managed services **in the sandbox only**:

- ``kafka REGION`` hosts librdkafka's mock cluster (``test.mock.num.brokers=3``) for one region.
  The cluster lives and dies with this process, so killing it is losing the region's Kafka. Its
  brokers listen on 127.0.0.1 (the mock cluster cannot bind another address): the region is told
  by the port, and ``DIR/kafka/<region>.json`` says which bootstrap servers are whose.
- ``replicator`` copies every record of the configured topics from the source cluster to the
  target cluster with the same topic name, partition, key, headers and timestamp, asynchronously;
  it keeps the offset mapping (source offset → target offset, as per-partition checkpoints of the
  offset delta), translates and commits consumer-group offsets on the target at an interval
  (never moving a group backwards), and publishes its lag. It does not go through the link's TCP
  relay (the mock cluster's brokers advertise their own ports), but it obeys the link's faults:
  while the link is partitioned it copies nothing and drops what it had fetched and not yet
  written, and it holds each record back by the link's one-way latency.
- ``s3-replication`` copies new object versions and delete markers from the source bucket to the
  target bucket (moto stores a replication configuration but copies nothing), marks what it
  wrote as replicas (never replicated back), and publishes its backlog; it obeys the link too.

Control and state are JSON files under ``DIR/kafka`` and ``DIR/s3`` (written atomically): a
``*-config.json`` the API writes (source, target, running, epoch) and a ``*-status.json`` the
worker writes every ~0.1 s. A worker acknowledges a config change by echoing its ``epoch``.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from pathlib import Path

from sandbox._layout import REGIONS, Layout, State, write_json_atomic

log = logging.getLogger("sandbox.streams")

TOPICS = ("orders",)
"""What the workload produces and the replicator copies (the mock cluster auto-creates topics
with 4 partitions; it cannot create_topics)."""
GROUPS = ("ledger",)
"""The consumer groups whose offsets the replicator synchronises."""
PRODUCER_APP = "checkout"
CONSUMER_APP = "ledger"
PAUSED = "PAUSED"
"""The parameter value that tells clients to stop producing/consuming/writing until it changes
(a planned switchover's fence for Kafka and S3 clients)."""
OFFSET_SYNC_INTERVAL_S = 1.0
STATUS_INTERVAL_S = 0.1


def kafka_dir(layout: Layout) -> Path:
    return layout.root / "kafka"


def s3_dir(layout: Layout) -> Path:
    return layout.root / "s3"


def params_dir(layout: Layout) -> Path:
    return layout.root / "params"


def bootstrap_parameter(app: str) -> str:
    return f"/regionpair/sandbox/{app}/kafka-bootstrap"


def bucket_parameter(app: str = PRODUCER_APP) -> str:
    return f"/regionpair/sandbox/{app}/objects-bucket"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------------------------
# The parameter store (SSM Parameter Store's stand-in)
# ---------------------------------------------------------------------------------------------


def _param_path(layout: Layout, name: str) -> Path:
    if not name.startswith("/") or ".." in name:
        raise ValueError(f"parameter name {name!r}: must start with / and hold no '..'")
    return params_dir(layout) / (name.strip("/").replace("/", "__") + ".json")


def put_param(layout: Layout, name: str, value: str) -> int:
    """Write a parameter (overwrite); returns its new version."""
    path = _param_path(layout, name)
    before = read_json(path) or {}
    version = int(before.get("version", 0)) + 1
    write_json_atomic(path, {"name": name, "value": value, "version": version, "t": time.time()})
    return version


def get_param(layout: Layout, name: str) -> str | None:
    doc = read_json(_param_path(layout, name))
    return None if doc is None else doc.get("value")


class ParamWatch:
    """A client's view of one parameter: re-read when the file changes (a stat per call)."""

    def __init__(self, layout: Layout, name: str):
        self.path = _param_path(layout, name)
        self._key = None
        self.value: str | None = None

    def get(self) -> str | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self.value
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            doc = read_json(self.path)
            if doc is not None:
                self.value, self._key = doc.get("value"), key
        return self.value


# ---------------------------------------------------------------------------------------------
# The link's faults, as the replication workers see them
# ---------------------------------------------------------------------------------------------


class LinkView:
    def __init__(self, layout: Layout):
        self.path = layout.link_file
        self._key = None
        self.partitioned = False
        self.latency_s = 0.0

    def refresh(self) -> "LinkView":
        try:
            st = self.path.stat()
            key = (st.st_ino, st.st_mtime_ns)
            if key != self._key:
                doc = read_json(self.path) or {}
                self.partitioned = bool(doc.get("partitioned", False))
                self.latency_s = int(doc.get("latency_ms", 0)) / 1000.0
                self._key = key
        except FileNotFoundError:
            pass
        return self


# ---------------------------------------------------------------------------------------------
# Kafka: one cluster per region
# ---------------------------------------------------------------------------------------------


def serve_kafka(layout: Layout, state: State, region: str, stop: threading.Event, watch) -> int:
    from confluent_kafka import Producer

    # the mock cluster belongs to this client instance: it lives as long as this process
    host = Producer({"test.mock.num.brokers": 3, "log_level": 4})
    md = host.list_topics(timeout=10)
    bootstrap = ",".join(sorted(f"{b.host}:{b.port}" for b in md.brokers.values()))
    for topic in TOPICS:  # auto-create them now, so both regions have them before any client
        host.list_topics(topic, timeout=10)
    write_json_atomic(kafka_dir(layout) / f"{region}.json", {"region": region, "bootstrap": bootstrap,
                                                             "topics": list(TOPICS)})
    print(f"kafka: mock cluster for {region} (3 brokers) at {bootstrap}; topics {', '.join(TOPICS)}", flush=True)
    watch()
    return 0


def cluster_bootstraps(layout: Layout) -> dict[str, str]:
    out = {}
    for region in REGIONS:
        doc = read_json(kafka_dir(layout) / f"{region}.json")
        if doc:
            out[region] = doc["bootstrap"]
    return out


# ---------------------------------------------------------------------------------------------
# The replicator (MSK Replicator's stand-in)
# ---------------------------------------------------------------------------------------------


class OffsetMap:
    """Source offset → target offset per partition, as checkpoints where the delta changes."""

    def __init__(self, doc: dict | None = None):
        self.points: dict[str, list[list[int]]] = {k: [list(p) for p in v] for k, v in (doc or {}).items()}
        self.last: dict[str, list[int]] = {}
        for k, pts in self.points.items():
            if pts:
                self.last[k] = list(pts[-1])

    def add(self, key: str, src: int, tgt: int) -> None:
        pts = self.points.setdefault(key, [])
        last = self.last.get(key)
        if last is None or tgt - src != last[1] - last[0] or src < last[0]:
            pts.append([src, tgt])
        self.last[key] = [src, tgt]

    def translate(self, key: str, committed: int) -> int | None:
        """The target offset a consumer at source offset ``committed`` (its next record) resumes
        from: never past a record it has not consumed (so nothing is skipped)."""
        pts = self.points.get(key)
        if not pts or committed < 0:
            return None
        i = bisect.bisect_right([p[0] for p in pts], committed - 1) - 1
        if i < 0:
            return pts[0][1]  # before everything we copied: from the first copied record
        src0, tgt0 = pts[i]
        last_src, last_tgt = self.last[key]
        if committed - 1 >= last_src:
            return last_tgt + 1  # consumed all we copied (and maybe more that never arrived)
        return tgt0 + (committed - src0)

    def to_doc(self) -> dict:
        return {k: v for k, v in self.points.items()}


def _tp_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class Replicator:
    def __init__(self, layout: Layout, state: State):
        self.layout = layout
        self.state = state
        self.dir = kafka_dir(layout)
        self.config_path = self.dir / "replicator-config.json"
        self.status_path = self.dir / "replicator-status.json"
        self.map_path = self.dir / "offset-map.json"
        self.link = LinkView(layout)
        saved = read_json(self.map_path) or {}
        self.maps: dict[str, OffsetMap] = {flow: OffsetMap(doc) for flow, doc in saved.get("maps", {}).items()}
        self.positions: dict[str, dict[str, int]] = saved.get("positions", {})
        self.groups: dict[str, dict] = saved.get("groups", {})
        self.stopped_at: dict[str, int] = saved.get("stopped_at", {})
        self.config: dict = {}
        self.consumer = None
        self.producer = None
        self.flow = None
        self.pending: list = []
        self.inflight = 0
        self.source_ok_at = 0.0
        self.source_errors = 0
        self.last_sync = 0.0
        self.replicated = saved.get("replicated", 0)
        self.last_lag: tuple[int | None, float | None] = (None, None)
        self.last_copied_ts: float | None = None
        self._lock = threading.Lock()

    # ---- clients -------------------------------------------------------------------------

    def _open(self, source: str, target: str) -> None:
        from confluent_kafka import Consumer, Producer, TopicPartition

        self._close()
        boots = cluster_bootstraps(self.layout)
        self.flow = f"{source}->{target}"
        start = self.config.get("start_offsets") or {}
        if start:  # a flow (re)started from given offsets: what it copied before is another story
            self.maps[self.flow] = OffsetMap()
            self.positions[self.flow] = {}
        self.maps.setdefault(self.flow, OffsetMap())
        pos = self.positions.setdefault(self.flow, {})
        self.last_lag = (None, None)
        self.source_ok_at = time.time()
        self.consumer = Consumer({"bootstrap.servers": boots[source], "group.id": "regionpair-replicator",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "error_cb": self._source_error, "socket.timeout.ms": 2000,
                                  "fetch.wait.max.ms": 20, "log_level": 3})
        self.producer = Producer({"bootstrap.servers": boots[target], "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 2, "log_level": 3})
        tps = []
        for topic in self.config.get("topics", TOPICS):
            for p in range(4):
                key = _tp_key(topic, p)
                off = pos.get(key, start.get(key, 0))
                tps.append(TopicPartition(topic, p, off))
        self.consumer.assign(tps)
        self.source, self.target = source, target
        log.info("replicating %s from %s", self.flow, {t.partition: t.offset for t in tps})

    def _source_error(self, err) -> None:
        self.source_errors += 1

    def _close(self) -> None:
        if self.producer is not None:
            self.producer.flush(5)
        if self.consumer is not None:
            self.consumer.close()
        self.consumer = self.producer = None

    # ---- copying ---------------------------------------------------------------------------

    def _delivered(self, err, msg, src_offset: int, src_ts: float) -> None:
        self.inflight -= 1
        if err is not None:
            log.error("replicating %s[%s]@%s failed: %s", msg.topic(), msg.partition(), src_offset, err)
            self._rewind = True
            return
        key = _tp_key(msg.topic(), msg.partition())
        self.last_copied_ts = src_ts
        with self._lock:
            self.maps[self.flow].add(key, src_offset, msg.offset())
            pos = self.positions[self.flow]
            pos[key] = max(pos.get(key, 0), src_offset + 1)
            self.replicated += 1

    def _copy(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        self._rewind = False
        if self.link.partitioned:
            if self.pending:  # a blackhole swallows what was fetched and not yet written
                self.pending.clear()
                self._seek_to_positions()
            time.sleep(0.05)
            return
        msgs = self.consumer.consume(500, timeout=0.05)
        now = time.time()
        for m in msgs:
            if m.error():
                continue
            self.source_ok_at = now
            self.pending.append((now + self.link.latency_s, m))
        while self.pending and self.pending[0][0] <= time.time():
            _, m = self.pending.pop(0)
            ts_type, ts = m.timestamp()
            self.inflight += 1
            self.producer.produce(m.topic(), m.value(), m.key(), partition=m.partition(), headers=m.headers(),
                                  timestamp=ts if ts > 0 else 0,
                                  on_delivery=lambda err, msg, off=m.offset(), t=ts / 1000.0:
                                  self._delivered(err, msg, off, t))
        self.producer.poll(0)
        if self._rewind:
            self.producer.flush(5)
            self.pending.clear()
            self._seek_to_positions()
        if not msgs:
            # a probe of the source's liveness that costs nothing when it is up
            try:
                self.consumer.get_watermark_offsets(TopicPartition(TOPICS[0], 0), timeout=0.3, cached=False)
                self.source_ok_at = time.time()
            except KafkaException as exc:  # the source does not answer: shown in the status
                log.debug("source watermark: %s", exc)

    def _seek_to_positions(self) -> None:
        from confluent_kafka import TopicPartition
        pos = self.positions[self.flow]
        tps = [TopicPartition(t, p, pos.get(_tp_key(t, p), 0)) for t in self.config.get("topics", TOPICS)
               for p in range(4)]
        self.consumer.assign(tps)

    # ---- offsets ---------------------------------------------------------------------------

    def sync_groups(self, final: bool = False) -> dict:
        """Translate each group's committed source offsets and commit them on the target (only
        forward). Returns {group: {"source": {...}, "target": {...}}}."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        boots = cluster_bootstraps(self.layout)
        out = {}
        tps = [TopicPartition(t, p) for t in self.config.get("topics", TOPICS) for p in range(4)]
        for group in self.config.get("groups", GROUPS):
            src = Consumer({"bootstrap.servers": boots[self.source], "group.id": group, "log_level": 2,
                            "socket.timeout.ms": 1000})
            try:
                committed = {_tp_key(t.topic, t.partition): t.offset for t in src.committed(tps, timeout=1.5)}
            except KafkaException as exc:
                log.info("offset sync of %s: source does not answer (%s)", group, exc)
                continue
            finally:
                src.close()
            dst = Consumer({"bootstrap.servers": boots[self.target], "group.id": group, "log_level": 2})
            try:
                current = {_tp_key(t.topic, t.partition): t.offset for t in dst.committed(tps, timeout=3)}
                fmap = self.maps[self.flow]
                new = []
                translated = {}
                for key, off in committed.items():
                    t = fmap.translate(key, off) if off >= 0 else None
                    if t is None:
                        continue
                    translated[key] = t
                    if t > current.get(key, -1):
                        topic, p = key.rsplit(":", 1)
                        new.append(TopicPartition(topic, int(p), t))
                if new:
                    try:
                        dst.commit(offsets=new, asynchronous=False)
                    except KafkaException as exc:  # e.g. the group is active on the target: leave it be
                        log.info("offset sync of %s not committed: %s", group, exc)
            finally:
                dst.close()
            out[group] = {"source": committed, "translated": translated, "synced_at": time.time()}
            with self._lock:
                self.groups.setdefault(self.flow, {})[group] = out[group]
        return out

    # ---- status ---------------------------------------------------------------------------

    def lag(self) -> tuple[int | None, float | None]:
        """(records, seconds) not yet copied. While the source does not answer, the lag at the
        last contact (what an outage loses is fixed when the region goes dark)."""
        from confluent_kafka import KafkaException, TopicPartition

        if self.consumer is None:
            return None, None
        if time.time() - self.source_ok_at > 1.0 and self.last_lag[0] is not None:
            return self.last_lag
        total = 0
        for t in self.config.get("topics", TOPICS):
            for p in range(4):
                try:
                    _lo, hi = self.consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
                except KafkaException:  # no cached watermark yet
                    return self.last_lag
                if hi is None or hi < 0:
                    continue
                total += max(0, hi - self.positions[self.flow].get(_tp_key(t, p), 0))
        oldest = min((m.timestamp()[1] / 1000.0 for _, m in self.pending if m.timestamp()[1] > 0), default=None)
        if total == 0:
            seconds = 0.0
        elif oldest is not None:
            seconds = max(0.0, self.source_ok_at - oldest)
        else:
            seconds = max(0.0, self.source_ok_at - (self.last_copied_ts or self.source_ok_at))
        self.last_lag = (total, seconds)
        return self.last_lag

    def write_status(self, epoch) -> None:
        lag_records, lag_seconds = self.lag() if self.config.get("running") else (None, None)
        with self._lock:
            maps = {k: v.to_doc() for k, v in self.maps.items()}
            doc = {"epoch": epoch, "t": time.time(), "running": bool(self.config.get("running")),
                   "source": self.config.get("source"), "target": self.config.get("target"),
                   "lag_records": lag_records, "lag_seconds": lag_seconds,
                   "source_reachable": time.time() - self.source_ok_at < 2.0 if self.consumer else None,
                   "link_partitioned": self.link.partitioned, "replicated": self.replicated,
                   "positions": self.positions, "groups": self.groups, "stopped_at": self.stopped_at,
                   "sync_interval_seconds": OFFSET_SYNC_INTERVAL_S}
        write_json_atomic(self.status_path, doc)
        write_json_atomic(self.map_path, {"maps": maps, "positions": doc["positions"], "groups": doc["groups"],
                                          "stopped_at": self.stopped_at, "replicated": self.replicated})

    def _target_ends(self) -> dict[str, int]:
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": cluster_bootstraps(self.layout)[self.target], "group.id": "x",
                      "log_level": 2})
        try:
            return {_tp_key(t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=3)[1]
                    for t in self.config.get("topics", TOPICS) for p in range(4)}
        finally:
            c.close()

    def run(self, stop: threading.Event, still_ours) -> None:
        from confluent_kafka import KafkaException

        epoch = None
        next_status = 0.0
        next_watch = time.time() + 2.0
        while not stop.is_set():
            cfg = read_json(self.config_path) or {}
            if cfg.get("epoch") != epoch:
                was_running = self.consumer is not None
                if was_running and (not cfg.get("running") or (cfg.get("source"), cfg.get("target")) !=
                                    (self.source, self.target)):
                    self.producer.flush(10)
                    if self.pending:
                        log.warning("stopping with %d fetched records not written", len(self.pending))
                        self.pending.clear()
                    try:
                        self.stopped_at = {"flow": self.flow, "offsets": self._target_ends(), "t": time.time()}
                    except KafkaException as exc:  # recorded in the log; the flow stops anyway
                        log.error("cannot read the target's end offsets: %s", exc)
                    self._close()
                self.config = cfg
                if cfg.get("running") and self.consumer is None:
                    self._open(cfg["source"], cfg["target"])
                epoch = cfg.get("epoch")
                self.write_status(epoch)
            self.link.refresh()
            if self.consumer is not None:
                self._copy()
                if time.time() - self.last_sync >= OFFSET_SYNC_INTERVAL_S and not self.link.partitioned:
                    self.last_sync = time.time()
                    self.sync_groups()
            else:
                stop.wait(0.05)
            if time.time() >= next_status:
                self.write_status(epoch)
                next_status = time.time() + STATUS_INTERVAL_S
            if time.time() >= next_watch:
                next_watch = time.time() + 2.0
                if not still_ours():
                    break
        self._close()
        self.write_status(epoch)


def serve_replicator(layout: Layout, state: State, stop: threading.Event, still_ours) -> int:
    rep = Replicator(layout, state)
    print("replicator: MSK Replicator stand-in (sandbox only), config "
          f"{rep.config_path}", flush=True)
    rep.run(stop, still_ours)
    return 0


# ---------------------------------------------------------------------------------------------
# S3 replication (CRR with RTC's stand-in)
# ---------------------------------------------------------------------------------------------


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="sandbox",
                        aws_secret_access_key="sandbox",
                        config=Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}))


class ObjectReplicator:
    def __init__(self, layout: Layout, state: State):
        from sandbox._serve import bucket_name
        self.layout = layout
        self.state = state
        self.bucket = bucket_name
        self.dir = s3_dir(layout)
        self.config_path = self.dir / "replication-config.json"
        self.status_path = self.dir / "replication-status.json"
        self.state_path = self.dir / "replication-state.json"
        saved = read_json(self.state_path) or {}
        self.done: set[str] = set(saved.get("done", []))
        """Source version ids copied (or that are themselves replicas)."""
        self.replicas: set[str] = set(saved.get("replicas", []))
        """Version ids this worker created: never replicated back."""
        self.link = LinkView(layout)
        self.clients = {r: s3_client(f"http://{state.addresses[r]}:{state.moto_port}") for r in REGIONS}
        self.backlog: list[dict] = []
        self.source_ok = None
        self.replicated = saved.get("replicated", 0)
        self._saved = self.replicated

    def _versions(self, region: str) -> list[dict]:
        client, bucket = self.clients[region], self.bucket(region)
        out = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out += [dict(v, kind="version") for v in page.get("Versions", [])]
            out += [dict(v, kind="delete-marker") for v in page.get("DeleteMarkers", [])]
        return sorted(out, key=lambda v: v["LastModified"])

    def step(self, source: str, target: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versions = self._versions(source)
            self.source_ok = True
        except (BotoCoreError, ClientError) as exc:
            self.source_ok = False
            log.debug("cannot list %s: %s", source, exc)
            return
        todo = [v for v in versions if v["VersionId"] not in self.done and v["VersionId"] not in self.replicas]
        self.backlog = [{"key": v["Key"], "version_id": v["VersionId"], "kind": v["kind"],
                         "modified": v["LastModified"].timestamp()} for v in todo]
        epoch = (read_json(self.config_path) or {}).get("epoch")
        for v in todo:
            self.link.refresh()
            if self.link.partitioned:
                return
            if (read_json(self.config_path) or {}).get("epoch") != epoch:
                return  # stopped or reversed meanwhile: take the change now, not after the whole backlog
            if self.link.latency_s and time.time() - v["LastModified"].timestamp() < self.link.latency_s:
                return
            try:
                if v["kind"] == "version":
                    body = self.clients[source].get_object(Bucket=self.bucket(source), Key=v["Key"],
                                                           VersionId=v["VersionId"])["Body"].read()
                    put = self.clients[target].put_object(Bucket=self.bucket(target), Key=v["Key"], Body=body,
                                                          Metadata={"replica-of": f"{source}/{v['VersionId']}"})
                else:
                    put = self.clients[target].delete_object(Bucket=self.bucket(target), Key=v["Key"])
            except (BotoCoreError, ClientError) as exc:
                log.info("copying %s %s failed (retried next round): %s", v["Key"], v["VersionId"], exc)
                return
            self.done.add(v["VersionId"])
            if put.get("VersionId"):
                self.replicas.add(put["VersionId"])
            self.replicated += 1
            self.backlog = self.backlog[1:]

    def write_status(self, cfg: dict) -> None:
        oldest = min((b["modified"] for b in self.backlog), default=None)
        write_json_atomic(self.status_path, {
            "epoch": cfg.get("epoch"), "t": time.time(), "running": bool(cfg.get("running")),
            "source": cfg.get("source"), "target": cfg.get("target"), "backlog_objects": len(self.backlog),
            "backlog_seconds": 0.0 if oldest is None else time.time() - oldest,
            "pending": self.backlog[:200], "source_reachable": self.source_ok,
            "link_partitioned": self.link.partitioned, "replicated": self.replicated})
        if self.replicated != self._saved:  # the copied-versions record grows with the bucket: write it on change
            write_json_atomic(self.state_path, {"done": sorted(self.done), "replicas": sorted(self.replicas),
                                                "replicated": self.replicated})
            self._saved = self.replicated

    def run(self, stop: threading.Event, still_ours) -> None:
        next_watch = time.time() + 2.0
        while not stop.is_set():
            cfg = read_json(self.config_path) or {}
            self.link.refresh()
            if cfg.get("running") and not self.link.partitioned:
                self.step(cfg["source"], cfg["target"])
            elif not cfg.get("running"):
                self.source_ok = None
            self.write_status(cfg)
            stop.wait(STATUS_INTERVAL_S)
            if time.time() >= next_watch:
                next_watch = time.time() + 2.0
                if not still_ours():
                    break


def serve_s3_replication(layout: Layout, state: State, stop: threading.Event, still_ours) -> int:
    print("s3-replication: CRR stand-in (sandbox only)", flush=True)
    ObjectReplicator(layout, state).run(stop, still_ours)
    return 0


# ---------------------------------------------------------------------------------------------
# The API's side: configure a flow and wait for the worker to take it
# ---------------------------------------------------------------------------------------------


def configure(layout: Layout, kind: str, **config) -> int:
    """Write a worker's config with a new epoch; returns the epoch to wait for in its status."""
    path = (kafka_dir(layout) / "replicator-config.json") if kind == "kafka" else \
        (s3_dir(layout) / "replication-config.json")
    before = read_json(path) or {}
    epoch = int(before.get("epoch", 0)) + 1
    doc = {k: v for k, v in before.items() if k not in ("start_offsets",)}
    doc.update(config, epoch=epoch)
    write_json_atomic(path, doc)
    return epoch


def status(layout: Layout, kind: str) -> dict | None:
    path = (kafka_dir(layout) / "replicator-status.json") if kind == "kafka" else \
        (s3_dir(layout) / "replication-status.json")
    return read_json(path)


def translate_groups(layout: Layout, source: str, target: str, groups: list[str] | None = None,
                     timeout_s: float = 2.0) -> dict:
    """For each group: the source's committed offsets (now, or as the replicator last synced them
    when the source does not answer), translated through the offset mapping of the flow
    source → target, committed on the target when ahead of what it has. Returns per group
    ``{"method", "committed_on_target": {tp: off}, "behind_source_records": n | None}`` where the
    last figure counts records the group consumed on the source after the offsets it resumes from
    on the target: the duplicates its consumers will see."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    saved = read_json(kafka_dir(layout) / "offset-map.json") or {}
    flow = f"{source}->{target}"
    fmap = OffsetMap(saved.get("maps", {}).get(flow))
    synced = saved.get("groups", {}).get(flow, {})
    boots = cluster_bootstraps(layout)
    tps = [TopicPartition(t, p) for t in TOPICS for p in range(4)]
    out = {}
    for group in groups or list(GROUPS):
        method = "mapping, source committed offsets read now"
        src_committed = None
        src = Consumer({"bootstrap.servers": boots[source], "group.id": group, "log_level": 0,
                        "socket.timeout.ms": 1000})
        try:
            src_committed = {_tp_key(t.topic, t.partition): t.offset for t in src.committed(tps, timeout=timeout_s)}
        except KafkaException:
            pass  # the source region is gone: what the replicator synced last is all there is
        finally:
            src.close()
        if src_committed is None:
            method = "replicator's last offset sync (the source does not answer)"
            src_committed = (synced.get(group) or {}).get("source") or {}
        dst = Consumer({"bootstrap.servers": boots[target], "group.id": group, "log_level": 0})
        try:
            current = {_tp_key(t.topic, t.partition): t.offset for t in dst.committed(tps, timeout=timeout_s)}
            before = dict(current)
            new = []
            for key, off in src_committed.items():
                t = fmap.translate(key, off) if off >= 0 else None
                if t is not None and t > current.get(key, -1):
                    topic, p = key.rsplit(":", 1)
                    new.append(TopicPartition(topic, int(p), t))
                    current[key] = t
            refused = None
            if new:
                try:
                    dst.commit(offsets=new, asynchronous=False)
                except KafkaException as exc:  # the group still has a member there (e.g. not yet expired)
                    refused = str(exc)[:160]
                    for tp in new:
                        current.pop(_tp_key(tp.topic, tp.partition), None)
                    current.update(before)
        finally:
            dst.close()
        if refused:
            method += f"; the commit was refused ({refused}), the target keeps its own offsets"
        # consumed on the source beyond the exact translation of its committed offsets: none when
        # the translation is exact; the mapping has no entry for records never replicated
        behind = 0
        for key, off in src_committed.items():
            last = fmap.last.get(key)
            if last is not None and off - 1 > last[0]:
                behind += off - 1 - last[0]  # consumed on the source, never copied: lost to the group
        wanted = [k for k, v in src_committed.items() if v >= 0]
        out[group] = {"method": method, "translated": bool(wanted) and all(current.get(k, -1) >= 0 for k in wanted),
                      "committed_on_target": {k: v for k, v in current.items() if v >= 0},
                      "consumed_not_replicated": behind}
    return out


def record_ids(layout: Layout, region: str, timeout_s: float = 10.0) -> set[str]:
    """Every record id in the region's topics, read from the start to the end offsets now."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": cluster_bootstraps(layout)[region], "group.id": "regionpair-count",
                  "enable.auto.commit": False, "log_level": 0})
    ids: set[str] = set()
    try:
        ends = {}
        for t in TOPICS:
            for p in range(4):
                lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=timeout_s)
                if hi > lo:
                    ends[(t, p)] = hi
        c.assign([TopicPartition(t, p, 0) for (t, p) in ends])
        position = {k: 0 for k in ends}
        deadline = time.monotonic() + timeout_s
        while any(position[k] < ends[k] for k in ends) and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=0.2):
                if m.error():
                    continue
                position[(m.topic(), m.partition())] = m.offset() + 1
                ids.add(json.loads(m.value())["id"])
        short = {f"{t}:{p}": ends[(t, p)] - position[(t, p)] for (t, p) in ends if position[(t, p)] < ends[(t, p)]}
        if short:
            raise TimeoutError(f"reading {region}'s topics did not reach their end in {timeout_s} s: {short}")
    finally:
        c.close()
    return ids


def object_keys(layout: Layout, state: State, region: str) -> set[str]:
    from sandbox._serve import bucket_name
    client = s3_client(f"http://{state.addresses[region]}:{state.moto_port}")
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(region)):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    return keys
