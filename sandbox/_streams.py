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
import uuid
from concurrent.futures import ThreadPoolExecutor
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
COPY_BATCH = 8
"""S3 replication copies up to this many versions at once (of distinct keys), as S3 does."""
EARLIEST = "earliest"
"""A flow's start: every record the source still holds (a new or emptied target), as MSK
Replicator's starting position EARLIEST does for a new replicator."""
OFFSET_BEGINNING = -2
"""librdkafka's logical offset for a partition's first retained record."""
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
    # a new cluster every time this process starts (it starts empty): the incarnation tells a
    # replicator that a region came back with a cluster that holds none of what it had
    incarnation = uuid.uuid4().hex[:12]
    write_json_atomic(kafka_dir(layout) / f"{region}.json", {"region": region, "bootstrap": bootstrap,
                                                             "topics": list(TOPICS), "incarnation": incarnation,
                                                             "started_at": time.time()})
    print(f"kafka: mock cluster for {region} (3 brokers) at {bootstrap}; topics {', '.join(TOPICS)}; "
          f"incarnation {incarnation}", flush=True)
    watch()
    return 0


def cluster_info(layout: Layout, region: str) -> dict | None:
    """What the region's Kafka host wrote when it started: bootstrap, topics, incarnation, started_at."""
    return read_json(kafka_dir(layout) / f"{region}.json")


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
        self.stopped_at: dict = saved.get("stopped_at", {})
        self.opened: dict[str, int] = saved.get("opened", {})
        """flow → the config epoch it was last opened for (a restart of this process resumes it)."""
        self.incarnations: dict[str, str | None] = {}
        """The clusters (by incarnation) the open flow copies between."""
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
        epoch = self.config.get("epoch")
        if start and self.opened.get(self.flow) != epoch:
            # a flow (re)started from given offsets: what it copied before is another story. Once
            # opened for this epoch, a restart of this process resumes where it got to instead.
            self.maps[self.flow] = OffsetMap()
            self.positions[self.flow] = {}
            self.groups.pop(self.flow, None)
        if start == EARLIEST:
            # a new or emptied target: everything the source still holds, from its first record
            start = {_tp_key(t, p): OFFSET_BEGINNING for t in self.config.get("topics", TOPICS) for p in range(4)}
        self.opened[self.flow] = epoch
        self.incarnations = {r: (cluster_info(self.layout, r) or {}).get("incarnation") for r in (source, target)}
        self.maps.setdefault(self.flow, OffsetMap())
        pos = self.positions.setdefault(self.flow, {})
        self.last_lag = (None, None)
        self.last_copied_ts = None
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
        elif self.last_copied_ts is not None:
            seconds = max(0.0, self.source_ok_at - self.last_copied_ts)
        else:
            seconds = None  # nothing fetched or copied since the flow opened: how old is not known yet
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
                   "incarnations": self.incarnations if self.consumer is not None else {},
                   "start": "earliest" if self.config.get("start_offsets") == EARLIEST else
                   ("offsets" if self.config.get("start_offsets") else "positions"),
                   "sync_interval_seconds": OFFSET_SYNC_INTERVAL_S}
        write_json_atomic(self.status_path, doc)
        write_json_atomic(self.map_path, {"maps": maps, "positions": doc["positions"], "groups": doc["groups"],
                                          "stopped_at": self.stopped_at, "replicated": self.replicated,
                                          "opened": self.opened})

    def _target_ends(self) -> dict[str, int]:
        ends = end_offsets(self.layout, self.target, topics=self.config.get("topics", TOPICS))
        return {tp: end for tp, (_, end) in ends.items()}

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
                        self.stopped_at = {"flow": self.flow, "offsets": self._target_ends(), "t": time.time(),
                                           "incarnations": dict(self.incarnations),
                                           "source_positions": dict(self.positions.get(self.flow, {}))}
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


def to_copy_again(source_versions: list[str], target_versions: set[str], copies: dict[str, str | None],
                  origin: dict[str, str | None]) -> set[str]:
    """The source versions whose twin in the target is gone: a copy this worker made of them
    (``copies``), or the original they are a copy of (``origin``), no longer among the target's
    versions — its bucket was recreated (or versions deleted there). They must be copied again;
    versions never copied either way are the ordinary backlog."""
    out = set()
    for vid in source_versions:
        twin = copies.get(vid) or origin.get(vid)
        if twin is not None and twin not in target_versions:
            out.add(vid)
    return out


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
        self.copies: dict[str, str | None] = dict(saved.get("copies", {}))
        """Source version id → the version id of its copy in the other bucket (None: not known)."""
        self.origin: dict[str, str | None] = dict(saved.get("origin", {}))
        """Version id this worker created → the version it copies (never replicated back)."""
        self.link = LinkView(layout)
        self.clients = {r: s3_client(f"http://{state.addresses[r]}:{state.moto_port}") for r in REGIONS}
        self.backlog: list[dict] = []
        self.source_ok = None
        self.target_ok = None
        self.replicated = saved.get("replicated", 0)
        self._saved = self.replicated
        self.checked_epoch = None
        """The config epoch whose target bucket was checked for what it lacks."""
        self.reseed: set[str] = set()
        """Source versions copied before (or replicas of the target's own) whose counterpart the
        target no longer holds (its bucket was recreated): copied again."""
        self.seed: dict = saved.get("seed", {})
        """What the last check of a target found: {epoch, flow, target_versions, missing, versioning}."""
        self.listed_fresh = False
        """Nothing was copied since the source was last listed (so an empty backlog means empty)."""
        self._cached: tuple[float, object, list[dict]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=COPY_BATCH, thread_name_prefix="copy")
        self._saved_at = 0.0

    def _versions(self, region: str) -> list[dict]:
        client, bucket = self.clients[region], self.bucket(region)
        out = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out += [dict(v, kind="version") for v in page.get("Versions", [])]
            out += [dict(v, kind="delete-marker") for v in page.get("DeleteMarkers", [])]
        return sorted(out, key=lambda v: v["LastModified"])

    def _copied(self, vid: str) -> bool:
        """Copied by this worker, or itself a copy this worker made (never replicated back)."""
        return vid in self.copies or vid in self.origin

    def check_target(self, source: str, target: str, epoch) -> bool:
        """At the start of a flow: does the target still hold a counterpart of every source version
        that was copied either way? A bucket recreated empty (its region lost and back) does not;
        those versions are copied again, with the rest of the backlog, before the flow counts as
        drained — what S3 Batch Replication does for existing objects in AWS. Returns False when
        the target does not answer (checked again next round, nothing copied meanwhile)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versioning = self.clients[target].get_bucket_versioning(Bucket=self.bucket(target)).get("Status")
            held = {v["VersionId"] for v in self._versions(target)}
            versions = self._versions(source)
        except (BotoCoreError, ClientError) as exc:
            self.target_ok = False
            log.info("cannot check %s's bucket before copying into it: %s", target, exc)
            return False
        self.target_ok = True
        self.reseed = to_copy_again([v["VersionId"] for v in versions], held, self.copies, self.origin)
        self.seed = {"epoch": epoch, "flow": f"{source}->{target}", "t": time.time(), "target_versions": len(held),
                     "missing": len(self.reseed), "versioning": versioning}
        if self.reseed:
            log.warning("%s's bucket lacks %d versions %s holds copies or originals of (recreated?): copying them "
                        "again", target, len(self.reseed), source)
        self.checked_epoch = epoch
        return True

    def step(self, cfg: dict) -> None:
        """List the source, copy what the target lacks (oldest first), reporting as it goes."""
        source, target, epoch = cfg["source"], cfg["target"], cfg.get("epoch")
        cached, self._cached = self._cached, None
        if cached is not None and cached[1] == epoch and time.time() - cached[0] < 2 * STATUS_INTERVAL_S:
            todo = cached[2]  # the listing that ended the previous round, a moment ago: used once
        else:
            todo = self._list(source)
        if todo is None:
            return
        next_status = time.time() + STATUS_INTERVAL_S
        i = 0
        while i < len(todo):
            self.link.refresh()
            if self.link.partitioned:
                return
            if (read_json(self.config_path) or {}).get("epoch") != epoch:
                return  # stopped or reversed meanwhile: take the change now, not after the whole backlog
            # a batch of copies at once, one version per key (a key's versions are copied in order)
            batch, keys = [], set()
            for v in todo[i:i + COPY_BATCH]:
                if v["Key"] in keys or (self.link.latency_s and
                                        time.time() - v["LastModified"].timestamp() < self.link.latency_s):
                    break
                batch.append(v)
                keys.add(v["Key"])
            if not batch:
                return  # the oldest left is younger than the link's latency: next round
            results = list(self._pool.map(lambda v: self._copy(source, target, v), batch))
            # every copy that went through is recorded, even when another of the batch failed (each
            # is of a different key): one left out would be copied again next round, a duplicate
            # version in the target, and later taken for a version of the target's own
            done, failed = set(), False
            for v, (put, exc) in zip(batch, results):
                if exc is not None:
                    log.info("copying %s %s failed (retried next round): %s", v["Key"], v["VersionId"], exc)
                    failed = True
                    continue
                copy = put.get("VersionId")
                self.copies[v["VersionId"]] = copy
                if copy:
                    self.origin[copy] = v["VersionId"]
                self.reseed.discard(v["VersionId"])
                self.replicated += 1
                done.add(v["VersionId"])
            if done:
                self.backlog = [b for b in self.backlog if b["version_id"] not in done]
                # what was written to the source since the listing is not in this backlog: an empty
                # one means nothing only once the next listing says so
                self.listed_fresh = False
            if failed:
                return
            i += len(batch)
            if time.time() >= next_status:  # a long backlog (a bucket re-seeded) reports its progress
                self.write_status(cfg)
                next_status = time.time() + STATUS_INTERVAL_S
        if todo:
            # list again: the backlog reported now must include what was written while copying, or
            # an empty one would claim a drained flow that is not (and the next round starts from it)
            again = self._list(source)
            if again is not None:
                self._cached = (time.time(), epoch, again)

    def _copy(self, source: str, target: str, v: dict):
        """Copy one version or delete marker: (the target's answer, None) or (None, the error)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if v["kind"] == "version":
                body = self.clients[source].get_object(Bucket=self.bucket(source), Key=v["Key"],
                                                       VersionId=v["VersionId"])["Body"].read()
                return self.clients[target].put_object(Bucket=self.bucket(target), Key=v["Key"], Body=body,
                                                       Metadata={"replica-of": f"{source}/{v['VersionId']}"}), None
            return self.clients[target].delete_object(Bucket=self.bucket(target), Key=v["Key"]), None
        except (BotoCoreError, ClientError) as exc:
            return None, exc

    def _list(self, source: str) -> list[dict] | None:
        """List the source now; the backlog becomes what it holds that the target lacks."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versions = self._versions(source)
            self.source_ok = True
        except (BotoCoreError, ClientError) as exc:
            self.source_ok = False
            self.listed_fresh = False
            log.debug("cannot list %s: %s", source, exc)
            return None
        todo = [v for v in versions if v["VersionId"] in self.reseed or not self._copied(v["VersionId"])]
        self.backlog = [{"key": v["Key"], "version_id": v["VersionId"], "kind": v["kind"],
                         "modified": v["LastModified"].timestamp()} for v in todo]
        self.listed_fresh = True
        return todo

    def write_status(self, cfg: dict) -> None:
        oldest = min((b["modified"] for b in self.backlog), default=None)
        running = bool(cfg.get("running"))
        # an empty backlog counts only from a listing after the last copy; while the source does not
        # answer, what was left at the last contact is all there is (as the Kafka lag is)
        known = not running or (self.checked_epoch == cfg.get("epoch") and
                                (self.backlog or self.listed_fresh or self.source_ok is False))
        write_json_atomic(self.status_path, {
            "epoch": cfg.get("epoch"), "t": time.time(), "running": running,
            "source": cfg.get("source"), "target": cfg.get("target"),
            "backlog_objects": len(self.backlog) if known else None,
            "backlog_seconds": 0.0 if oldest is None else time.time() - oldest,
            "pending": self.backlog[:200], "source_reachable": self.source_ok, "target_reachable": self.target_ok,
            "link_partitioned": self.link.partitioned, "replicated": self.replicated,
            "seed": dict(self.seed, left=len(self.reseed))})
        # the copied-versions record grows with the bucket: written on change, at most once a second
        # while copying (a restart copies again what the last second copied: duplicates, not loss)
        if self.replicated != self._saved and (not running or time.time() - self._saved_at >= 1.0):
            write_json_atomic(self.state_path, {"copies": self.copies, "origin": self.origin,
                                                "replicated": self.replicated, "seed": self.seed})
            self._saved, self._saved_at = self.replicated, time.time()

    def run(self, stop: threading.Event, still_ours) -> None:
        next_watch = time.time() + 2.0
        while not stop.is_set():
            cfg = read_json(self.config_path) or {}
            self.link.refresh()
            if cfg.get("running") and not self.link.partitioned:
                if self.checked_epoch == cfg.get("epoch") or \
                        self.check_target(cfg["source"], cfg["target"], cfg.get("epoch")):
                    self.step(cfg)
            elif not cfg.get("running"):
                self.source_ok = self.target_ok = None
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


def end_offsets(layout: Layout, region: str, timeout_s: float = 3.0,
                topics: tuple[str, ...] | list[str] = TOPICS) -> dict[str, tuple[int, int]]:
    """Per partition of ``topics`` (default: the replicated ones): (earliest retained offset, end
    offset), asked now. Raises KafkaException when the region's cluster does not answer."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": cluster_bootstraps(layout)[region], "group.id": "regionpair-offsets",
                  "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        return {_tp_key(t, p): tuple(c.get_watermark_offsets(TopicPartition(t, p), timeout=timeout_s))
                for t in topics for p in range(4)}
    finally:
        c.close()


def choose_start(layout: Layout, source: str, target: str) -> tuple[dict | str | None, str]:
    """Where the replicator must start copying source → target (``decide_start``), from its status,
    the target cluster's incarnation and the target's offsets asked now. Raises KafkaException
    when the target does not answer (nothing is decided blind), ValueError when nothing safe is
    known."""
    st = status(layout, "kafka") or {}
    return decide_start(source, target, stopped=st.get("stopped_at") or {},
                        running=(st.get("source"), st.get("target")) if st.get("running") else None,
                        target_incarnation=(cluster_info(layout, target) or {}).get("incarnation"),
                        target_offsets=end_offsets(layout, target))


def decide_start(source: str, target: str, *, stopped: dict, running: tuple | None, target_incarnation: str | None,
                 target_offsets: dict[str, tuple[int, int]]) -> tuple[dict | str | None, str]:
    """Where a flow source → target must start so that the target ends up with everything the
    source holds, and why: (per-partition start offsets, EARLIEST, or None = resume the flow's own
    positions; a sentence).

    - The reverse of a flow that was stopped cleanly (a failback after a failover, the protect
      step after a switchover): from the source's end offsets at that stop — the target already
      holds everything before them, because that is where they were copied from. Only if the
      target is that same cluster (its incarnation) and still holds every record the stopped
      flow had read from it.
    - When the target is a new cluster, or lacks what was copied from it (a region lost and back:
      its cluster came back empty): from the earliest retained offset of every partition, as a new
      MSK Replicator with starting position EARLIEST does. Never from the latest offset: that
      would leave out everything the source took while the target was gone.
    - The same flow again: from its own positions, unless the target is another cluster now.
    ``stopped``: the replicator's record of the last stop ({flow, offsets, incarnations,
    source_positions}); ``target_offsets``: per partition (earliest, end) on the target now."""
    held = sum(hi - lo for lo, hi in target_offsets.values())
    reverse, same = f"{target}->{source}", f"{source}->{target}"
    seen = (stopped.get("incarnations") or {}).get(target) if stopped.get("flow") in (reverse, same) else None
    if seen is not None and target_incarnation is not None and seen != target_incarnation:
        return EARLIEST, (f"{target}'s Kafka cluster is a new one (incarnation {seen} → {target_incarnation}, holding "
                          f"{held} records): it gets every record {source} holds, from the earliest offset")
    if stopped.get("flow") == reverse:
        need = stopped.get("source_positions") or {}
        short = {k: (target_offsets.get(k, (0, 0))[1], n) for k, n in need.items()
                 if target_offsets.get(k, (0, 0))[1] < n}
        if short:
            detail = ", ".join(f"{k} ends at {have} < {n}" for k, (have, n) in sorted(short.items()))
            return EARLIEST, (f"{target}'s Kafka cluster lacks records the flow {reverse} had copied from it "
                              f"({detail}): it gets every record {source} holds, from the earliest offset")
        if not stopped.get("offsets"):
            return EARLIEST, (f"{source}'s end offsets were not recorded when the flow {reverse} stopped: every "
                              f"record {source} holds is copied, from the earliest offset ({target} sees duplicates)")
        return stopped["offsets"], (f"{target} still holds what was copied from it: only what {source} took after "
                                    f"the flow {reverse} stopped is copied")
    if stopped.get("flow") == same or running == (source, target):
        return None, f"the flow {same} resumes from its own positions"
    if held == 0:
        return EARLIEST, f"{target}'s topics are empty: every record {source} holds is copied, from the earliest offset"
    raise ValueError(f"no record of where {same} should start, and {target}'s topics already hold {held} records: "
                     "copying from the earliest offset would duplicate them and from the latest would lose what "
                     f"{source} holds. Empty {target}'s topics, or start the flow by hand with start offsets")


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
