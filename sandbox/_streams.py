"""Kafka and S3 replication in the sandbox: MirrorMaker 2 between the regions' real Kafka
clusters (sandbox/_kafka.py), an S3 replication worker that behaves like CRR with RTC, and a
parameter store that stands in for SSM Parameter Store.

Each worker runs as its own process (``python -m sandbox._serve replicator | s3-replication
--dir DIR``):

- ``replicator`` supervises Apache Kafka's MirrorMaker 2 (dedicated mode, its child JVM) for the
  configured flow, in the flow's target region: it starts it for a flow (after writing the flow's
  start positions into MirrorMaker 2's own offsets topic when given), stops it, restarts it if it
  dies, and publishes what MirrorMaker 2's own topics on the target say — its tasks' states, its
  committed source positions (hence the lag against the source's end offsets), each group's last
  checkpoint. MirrorMaker 2 reaches the source cluster through the link (sandbox/_kafka.py), so
  the link's latency and partitions hit it as they hit PostgreSQL's replication. Nothing here
  copies a record or translates an offset: MirrorMaker 2 does both.
- ``s3-replication`` copies new object versions and delete markers from the source bucket to the
  target bucket (moto stores a replication configuration but copies nothing), marks what it
  wrote as replicas (never replicated back), and publishes its backlog; it obeys the link's faults
  (it is the one stand-in left).

Control and state are JSON files under ``DIR/kafka`` and ``DIR/s3`` (written atomically): a
``*-config.json`` the API writes (source, target, running, epoch) and a ``*-status.json`` the
worker writes every ~0.1–0.2 s. A worker acknowledges a config change by echoing its ``epoch``.
"""

from __future__ import annotations

import json
import logging
import threading
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sandbox._layout import REGIONS, Layout, State, write_json_atomic
from contract import mirrormaker2

log = logging.getLogger("sandbox.streams")

TOPICS = ("orders",)
"""What the workload produces and MirrorMaker 2 copies (created with 4 partitions by the sandbox in
both regions at every cluster start: auto-creation is off, as on MSK)."""
GROUPS = ("ledger",)
"""The consumer groups MirrorMaker 2 checkpoints and whose offsets it syncs to the target."""
PRODUCER_APP = "checkout"
CONSUMER_APP = "ledger"
PAUSED = "PAUSED"
"""The parameter value that tells clients to stop producing/consuming/writing until it changes
(a planned switchover's fence for Kafka and S3 clients)."""
COPY_BATCH = 8
"""S3 replication copies up to this many versions at once (of distinct keys), as S3 does."""
EARLIEST = "earliest"
"""A flow's start: every record the source still holds (a new or emptied target), as MSK
Replicator's starting position EARLIEST does for a new replicator."""
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
# Kafka: a real cluster per region (sandbox/_kafka.py); where it is
# ---------------------------------------------------------------------------------------------


def cluster_info(layout: Layout, region: str) -> dict | None:
    """What ``up``/``start_region`` recorded once the region's cluster was ready: bootstrap,
    topics, incarnation (the cluster id: a new one at every start), started_at."""
    return read_json(kafka_dir(layout) / f"{region}.json")


def cluster_bootstraps(layout: Layout) -> dict[str, str]:
    out = {}
    for region in REGIONS:
        doc = read_json(kafka_dir(layout) / f"{region}.json")
        if doc:
            out[region] = doc["bootstrap"]
    return out


def _tp_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


# ---------------------------------------------------------------------------------------------
# MirrorMaker 2's own records, read (never recomputed): its source positions and its checkpoints
# ---------------------------------------------------------------------------------------------

SOURCE_CONNECTOR = "MirrorSourceConnector"


def connect_offsets_topic(source: str) -> str:
    """Where dedicated-mode MirrorMaker 2 keeps its source connector's positions, on the target."""
    return f"mm2-offsets.{source}.internal"


def _read_topic(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list:
    """Every record of ``topic`` from the start to its end offsets now ([] when it does not exist)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "regionpair-inspect", "enable.auto.commit": False,
                  "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        md = c.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if md is None or md.error is not None:
            return []
        ends = {}
        for p in md.partitions:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if hi > lo:
                ends[p] = hi
        if not ends:
            return []
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        pos = dict.fromkeys(ends, 0)
        out = []
        deadline = time.monotonic() + timeout_s
        while any(pos[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise KafkaException(f"reading {topic} did not reach its end in {timeout_s} s")
            for m in c.consume(500, timeout=0.2):
                if m.error() is None:
                    pos[m.partition()] = m.offset() + 1
                    out.append(m)
        return out
    finally:
        c.close()


def source_positions(bootstrap: str, source: str, topics=TOPICS) -> dict[str, int]:
    """MirrorMaker 2's committed source positions of the flow from ``source`` (read on the target):
    per partition, the next source offset it will copy."""
    out: dict[str, int] = {}
    for m in _read_topic(bootstrap, connect_offsets_topic(source)):
        try:
            name, part = json.loads(m.key())
        except (TypeError, ValueError):
            continue
        if name != SOURCE_CONNECTOR or part.get("cluster") != source or part.get("topic") not in topics:
            continue
        key = _tp_key(part["topic"], int(part["partition"]))
        out[key] = -1 if m.value() is None else int(json.loads(m.value())["offset"]) + 1
    return {k: v for k, v in out.items() if v >= 0}


def seed_source_positions(bootstrap: str, source: str, start: dict[str, int]) -> None:
    """Make a new flow from ``source`` start at ``start`` (per partition, the first source offset
    to copy): written as MirrorMaker 2's own stored positions (Connect's offsets topic, key
    ``[connector, source partition]``, value ``{"offset": last copied}``), read by its source task
    when it starts. Nothing else positions it: dedicated mode has no offsets API."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = connect_offsets_topic(source)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    n = len(admin.list_topics(timeout=5).brokers)
    # as MirrorMaker 2 creates it (compacted, 25 partitions), so its worker finds it as it expects
    fut = admin.create_topics([NewTopic(topic, 25, min(n, 3), config={"cleanup.policy": "compact"})])[topic]
    try:
        fut.result(10)
    except Exception as exc:  # noqa: BLE001
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise
    # Java's partitioner (murmur2), so each key lands in the partition where MirrorMaker 2's worker
    # will write its later positions: it reads every partition at start, and a stale seed in another
    # partition could otherwise be read after its newer value
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 0, "partitioner": "murmur2_random"})
    for key, off in sorted(start.items()):
        t, part = key.rsplit(":", 1)
        k = json.dumps([SOURCE_CONNECTOR, {"cluster": source, "partition": int(part), "topic": t}],
                       separators=(",", ":"))
        p.produce(topic, key=k.encode(), value=json.dumps({"offset": int(off) - 1}).encode())
    if p.flush(10):
        raise RuntimeError(f"could not write MirrorMaker 2's start positions into {topic}")


def _string(buf: bytes, i: int) -> tuple[str, int]:
    n = struct.unpack_from(">h", buf, i)[0]
    return buf[i + 2:i + 2 + n].decode(), i + 2 + n


def parse_checkpoint(key: bytes, value: bytes) -> dict:
    """One record of ``<source>.checkpoints.internal`` (MirrorMaker 2's Checkpoint: key = group,
    topic, partition; value = version, upstream offset, downstream offset, metadata)."""
    group, i = _string(key, 0)
    topic, i = _string(key, i)
    partition = struct.unpack_from(">i", key, i)[0]
    _version, upstream, downstream = struct.unpack_from(">hqq", value, 0)
    return {"group": group, "topic": topic, "partition": partition, "upstream": upstream, "downstream": downstream}


def checkpoints(bootstrap: str, source: str) -> dict[str, dict]:
    """The last checkpoint of each group and partition MirrorMaker 2 wrote on the target for the
    flow from ``source``: ``{group: {"partitions": {tp: {upstream, downstream}}, "at": newest ts}}``."""
    from contract.mirrormaker2 import checkpoints_topic

    out: dict[str, dict] = {}
    for m in _read_topic(bootstrap, checkpoints_topic(source)):
        if m.value() is None:
            continue
        cp = parse_checkpoint(m.key(), m.value())
        g = out.setdefault(cp["group"], {"partitions": {}, "at": 0.0})
        g["partitions"][_tp_key(cp["topic"], cp["partition"])] = {"upstream": cp["upstream"],
                                                                  "downstream": cp["downstream"]}
        g["at"] = max(g["at"], m.timestamp()[1] / 1000.0)
    return out


def offset_syncs_topic(source: str) -> str:
    """Where MirrorMaker 2 writes the flow's offset syncs (``offset-syncs.topic.location = target``)."""
    return f"mm2-offset-syncs.{source}.internal"


def parse_offset_sync(key: bytes, value: bytes) -> tuple[str, int, int]:
    """One offset sync (key = topic, partition; value = upstream offset, downstream offset)."""
    topic, i = _string(key, 0)
    partition = struct.unpack_from(">i", key, i)[0]
    up, down = struct.unpack_from(">qq", value, 0)
    return _tp_key(topic, partition), up, down


def sync_floors(syncs: dict[str, list[tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    """Per partition, from MirrorMaker 2's offset syncs in the order written: (floor, last upstream
    offset). The floor is the oldest offset it can still translate from: its first sync, or the
    first after an upstream rewind (a restarted source task copying again from its stored
    positions), where its OffsetSyncStore drops every older sync."""
    out = {}
    for tp, pairs in syncs.items():
        floor = last = None
        for up, _down in pairs:
            if last is None or up < last:
                floor = up
            last = up
        if last is not None:
            out[tp] = (floor, last)
    return out


def no_checkpoint_reason(committed: int, floor: int | None, last: int | None) -> str:
    """Why MirrorMaker 2 (4.1) has written no checkpoint for a group's partition, from its own offset
    syncs (never a translation of ours). Its checkpoint task translates a group's offset only from
    an offset sync at or before it, and its OffsetSyncStore drops every sync older than the first of
    its current run or of the last upstream rewind (Apache Kafka, OffsetSyncStore; KAFKA-14666)."""
    settings = (f"checkpoints every {mirrormaker2.CHECKPOINT_INTERVAL_S} s, new groups found within "
                f"{mirrormaker2.REFRESH_GROUPS_S} s")
    if last is None:
        return ("MirrorMaker 2 has written no offset sync for it (it has copied no record of this partition in "
                "this flow yet: one per offset.lag.max = "
                f"{mirrormaker2.OFFSET_LAG_MAX} records copied, and at each offset flush), so it has nothing to "
                "translate the group's offset with")
    if floor is not None and committed < floor:
        return (f"the group's offset {committed} is older than MirrorMaker 2's oldest usable offset sync (upstream "
                f"{floor}, where its copying began or last started again): MirrorMaker 2 translates no offset "
                "older than that, until the group's consumers pass it")
    return f"MirrorMaker 2 has not checkpointed it yet ({settings})"


def offset_syncs(bootstrap: str, source: str) -> dict[str, list[tuple[int, int]]]:
    """MirrorMaker 2's offset syncs of the flow from ``source`` (``mm2-offset-syncs.<source>.internal``
    on the target, where ``offset-syncs.topic.location = target`` puts them): per partition, the
    (upstream, downstream) pairs it recorded, oldest first. Key = topic, partition; value =
    upstream offset, downstream offset."""
    out: dict[str, list[tuple[int, int]]] = {}
    for m in _read_topic(bootstrap, offset_syncs_topic(source)):
        tp, up, down = parse_offset_sync(m.key(), m.value())
        out.setdefault(tp, []).append((up, down))
    return out


# ---------------------------------------------------------------------------------------------
# The flow's supervisor: runs MirrorMaker 2 for the configured flow and publishes its lag
# ---------------------------------------------------------------------------------------------


class _TopicTail:
    """Follows whole topics on one cluster from their first record (MirrorMaker 2's compacted
    internal topics): ``poll()`` returns what arrived since the last call. Topics that do not exist
    yet (MirrorMaker 2 creates them when it starts) are looked for again at each poll.

    One consumer per topic, assigned once, when every partition of the topic has a leader: a
    consumer whose assignment changed while MirrorMaker 2 created its topics (incremental_assign(),
    then assign() of the grown set) is where librdkafka's main thread segfaulted ("rdk:main
    segfault at 58 … in librdkafka", kernel log), killing the supervisor as MirrorMaker 2 started."""

    def __init__(self, bootstrap_servers: str, topics: list[str]):
        from confluent_kafka.admin import AdminClient

        self.bootstrap_servers, self.topics = bootstrap_servers, topics
        self.consumers: dict = {}
        self.admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0, "socket.timeout.ms": 2000})

    def _consumer(self, topic: str, partitions) -> object:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap_servers, "group.id": "regionpair-tail",
                      "enable.auto.commit": False, "log_level": 0, "socket.timeout.ms": 2000,
                      "fetch.wait.max.ms": 200})  # an empty fetch answered at most 5 times a second
        c.assign([TopicPartition(topic, p, 0) for p in sorted(partitions)])
        return c

    def poll(self) -> list:
        missing = [t for t in self.topics if t not in self.consumers]
        if missing:
            try:
                md = self.admin.list_topics(timeout=1.0).topics
            except Exception:  # noqa: BLE001 - the cluster does not answer: nothing new
                md = {}
            for t in missing:
                tm = md.get(t)
                if tm is None or tm.error is not None or not tm.partitions:
                    continue
                if any(p.error is not None or p.leader < 0 for p in tm.partitions.values()):
                    continue  # being created: its partitions' leaders are not elected yet
                self.consumers[t] = self._consumer(t, tm.partitions)
        out = []
        for c in self.consumers.values():
            while True:
                batch = c.consume(1000, timeout=0.02)
                out += [m for m in batch if m.error() is None]
                if len(batch) < 1000:
                    break
        return out

    def close(self) -> None:
        for c in self.consumers.values():
            c.close()
        self.consumers = {}


class MirrorMakerFlow:
    """Runs (as its child) the dedicated-mode MirrorMaker 2 of the configured flow, and every
    ~0.2 s writes its status: its tasks' states (its status topic), its committed source positions
    (its offsets topic), and the lag — records: the source's end offsets against those positions;
    seconds: the age of the oldest source record not copied — as at the last contact with the
    source, which it reaches through the link as MirrorMaker 2 does."""

    def __init__(self, layout: Layout, state: State):
        from sandbox import _kafka

        self.kafka = _kafka
        self.layout, self.state = layout, state
        self.dir = kafka_dir(layout)
        self.config_path = self.dir / "replicator-config.json"
        self.status_path = self.dir / "replicator-status.json"
        saved = read_json(self.status_path) or {}
        self.stopped_at: dict = saved.get("stopped_at", {})
        self.config: dict = {}
        self.child = None
        self.source = self.target = None
        self.incarnations: dict = {}
        self.positions: dict[str, int] = {}
        self.tasks: dict[str, str] = {}
        self.tail: _TopicTail | None = None
        self.src = None
        self.checkpoints: dict[str, dict] = {}
        self.committed: dict[str, dict[str, int]] = {}
        self.syncs_read: tuple[float, dict] = (0.0, {})
        """When MirrorMaker 2's offset syncs were last read (only while a group lacks a checkpoint,
        to say why), and per partition (floor, last) from them (``sync_floors``)."""
        self.read_at: float | None = None
        """When MirrorMaker 2's topics on the target were last read to their end (the view's age)."""
        self.next_groups = 0.0
        self.source_ok_at = 0.0
        self.last_lag: tuple[int | None, float | None] = (None, None)
        self.restarts = 0

    # ---- MirrorMaker 2, the child ------------------------------------------------------------

    def _start(self, source: str, target: str) -> None:
        import subprocess

        from confluent_kafka import Consumer

        from sandbox import _proc

        k = self.kafka
        self.source, self.target = source, target
        tboot = k.bootstrap(self.state, target)
        start = self.config.get("start_offsets")
        if isinstance(start, dict) and start:
            seed_source_positions(tboot, source, start)
        path = k.write_mm2_config(self.layout, self.state, source, target, self.config.get("topics", TOPICS),
                                  self.config.get("groups", GROUPS))
        argv = k.jvm_argv(k.java_bin(), k.classpath(), path.parent / "log4j2.properties",
                      "org.apache.kafka.connect.mirror.MirrorMaker", str(path), "--clusters", target)
        log_path = self.layout.log(k.MM2_COMPONENT)
        with open(log_path, "ab") as out:
            out.write(f"\n--- {time.strftime('%H:%M:%S')} MirrorMaker 2 {source} -> {target}\n".encode())
            out.flush()
            self.child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          cwd="/")
        _proc.write_pid(self.layout.run_dir, k.MM2_COMPONENT, self.child.pid, argv[0])
        self.incarnations = {r: (cluster_info(self.layout, r) or {}).get("incarnation") for r in (source, target)}
        self.positions, self.tasks = {}, {}
        from contract.mirrormaker2 import checkpoints_topic
        self.tail = _TopicTail(tboot, [connect_offsets_topic(source), f"mm2-status.{source}.internal",
                                       checkpoints_topic(source)])
        self.checkpoints, self.committed, self.next_groups = {}, {}, 0.0
        self.syncs_read, self.read_at = (0.0, {}), None
        self.src = Consumer({"bootstrap.servers": k.bootstrap_via_link(self.state, source), "group.id": "regionpair-lag",
                             "enable.auto.commit": False, "log_level": 0, "socket.timeout.ms": 800})
        self.source_ok_at = time.time()
        self.last_lag = (None, None)
        log.info("MirrorMaker 2 %s -> %s started (pid %s, start %s)", source, target, self.child.pid,
                 "given offsets" if isinstance(start, dict) and start else "its stored positions or earliest")

    def _stop(self, record: bool = True) -> None:
        """Stop MirrorMaker 2 (it stores its positions as it stops); ``record``: note where the
        flow stopped (the target's end offsets, what it had copied), for a reverse flow's start."""
        from sandbox import _proc

        if self.child is None:
            return
        gone = time.time() - self.source_ok_at >= 2.0 or not self._source_answers()
        if gone:
            # the source does not answer (a region lost): its tasks hang on it and can store
            # nothing more (a graceful stop took 8-11 s there, and failed its last store); what
            # it stored (every 0.5 s) is where a later flow resumes: duplicates, never a gap
            self.child.kill()
        else:
            self.child.terminate()  # a planned stop: 1.3-1.6 s measured here
        try:
            self.child.wait(10)
        except Exception:  # noqa: BLE001
            self.child.kill()
            self.child.wait(5)
        log.info("MirrorMaker 2 %s -> %s stopped (%s)", self.source, self.target,
                 "killed: its source does not answer" if gone else "gracefully")
        _proc.pid_path(self.layout.run_dir, self.kafka.MM2_COMPONENT).unlink(missing_ok=True)
        flow = f"{self.source}->{self.target}"
        if record:
            self._read_tail()
            try:
                self.stopped_at = {"flow": flow, "t": time.time(), "incarnations": dict(self.incarnations),
                                   "offsets": {k: hi for k, (_lo, hi) in end_offsets(self.layout, self.target).items()},
                                   "source_positions": dict(self.positions), "source_lost": gone}
            except Exception as exc:  # noqa: BLE001 - recorded; the flow stops anyway
                log.error("cannot record where %s stopped: %s", flow, exc)
                self.stopped_at = {"flow": flow, "t": time.time(), "incarnations": dict(self.incarnations),
                                   "source_lost": gone}
        for c in (self.tail, self.src):
            if c is not None:
                c.close()
        self.child = self.tail = self.src = None

    def _sync_floors(self) -> dict[str, tuple[int, int]]:
        """MirrorMaker 2's offset syncs of this flow, read at most every 2 s by a short-lived
        consumer: only a group without a checkpoint needs them (``_groups_view``)."""
        at, floors = self.syncs_read
        if time.time() - at >= 2.0:
            try:
                floors = sync_floors(offset_syncs(self.kafka.bootstrap(self.state, self.target), self.source))
            except Exception as exc:  # noqa: BLE001 - the reason is then "not checkpointed yet"
                log.debug("offset syncs: %s", exc)
            self.syncs_read = (time.time(), floors)
        return floors

    def _source_answers(self, timeout_s: float = 0.8) -> bool:
        """One metadata request to the source through the link, now (a partitioned link drops it)."""
        try:
            self.src.list_topics(timeout=timeout_s)
            return True
        except Exception:  # noqa: BLE001 - any client error: it does not answer
            return False

    # ---- what MirrorMaker 2 says, and the lag ----------------------------------------------------

    def _read_tail(self) -> None:
        topics = self.config.get("topics", TOPICS)
        polled = time.time()
        for m in self.tail.poll() if self.tail else []:
            key = m.key() or b""
            if m.topic().endswith(".checkpoints.internal"):
                if m.value() is not None:
                    cp = parse_checkpoint(key, m.value())
                    g = self.checkpoints.setdefault(cp["group"], {"partitions": {}, "at": 0.0})
                    g["partitions"][_tp_key(cp["topic"], cp["partition"])] = cp["upstream"]
                    g["at"] = max(g["at"], m.timestamp()[1] / 1000.0)
                continue
            if m.topic().startswith("mm2-status."):
                name = key.decode(errors="replace")
                if name.startswith("status-task-") and m.value() is not None:
                    self.tasks[name[len("status-task-"):]] = json.loads(m.value()).get("state")
                continue
            try:
                name, part = json.loads(key)
            except (TypeError, ValueError):
                continue
            if name == SOURCE_CONNECTOR and part.get("cluster") == self.source and part.get("topic") in topics \
                    and m.value() is not None:
                self.positions[_tp_key(part["topic"], int(part["partition"]))] = int(json.loads(m.value())["offset"]) + 1
        if self.tail is not None:
            self.read_at = polled

    def _measure(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        self._read_tail()
        topics = self.config.get("topics", TOPICS)
        try:
            ends = {_tp_key(t, p): self.src.get_watermark_offsets(TopicPartition(t, p), timeout=0.8, cached=False)[1]
                    for t in topics for p in range(4)}
        except KafkaException as exc:  # the source does not answer (partition, region lost): frozen
            log.debug("source: %s", exc)
            return
        self.source_ok_at = time.time()
        behind = {k: (self.positions.get(k, 0), hi) for k, hi in ends.items() if hi > self.positions.get(k, 0)}
        total = sum(hi - pos for pos, hi in behind.values())
        oldest = None
        for k, (pos, _hi) in behind.items():  # the first record not copied, per partition: its time
            t, p = _split(k)
            self.src.assign([TopicPartition(t, p, pos)])
            m = self.src.poll(0.3)
            if m is not None and m.error() is None and m.timestamp()[1] > 0:
                oldest = min(oldest or 1e18, m.timestamp()[1] / 1000.0)
        seconds = 0.0 if total == 0 else (max(0.0, self.source_ok_at - oldest) if oldest else self.last_lag[1])
        self.last_lag = (total, seconds)
        if time.time() >= self.next_groups:
            self.next_groups = time.time() + 1.0
            self._measure_groups()

    def _measure_groups(self) -> None:
        """Each group's committed offsets on the source (through the link), kept as last seen: the
        status compares them with the checkpoints read since, even once the source is gone."""
        from runbooks.adapters.kafka_client import committed_offsets

        config = {"bootstrap.servers": self.kafka.bootstrap_via_link(self.state, self.source), "socket.timeout.ms": 800}
        topics = self.config.get("topics", TOPICS)
        for group in self.config.get("groups", GROUPS):
            try:
                got = committed_offsets(config, group, [(t, p) for t in topics for p in range(4)], timeout_s=1.0)
            except Exception as exc:  # noqa: BLE001 - the source does not answer: keep the last view
                log.debug("group %s: %s", group, exc)
                return
            self.committed[group] = {_tp_key(t, p): off for (t, p), off in got.items()}

    def _groups_view(self) -> dict:
        """Per group: its last checkpoint's age, how far it trails what the group had consumed on the
        source (as last seen) on the partitions MirrorMaker 2 checkpointed, and the partitions it
        committed on the source that have no checkpoint, each with why (``no_checkpoint_reason``).
        A group that consumed nothing since its checkpoint is current, however old the checkpoint
        (MirrorMaker 2 writes one only when a group's translated offset moves)."""
        out = {}
        floors: dict | None = None
        for group, committed in self.committed.items():
            cp = self.checkpoints.get(group) or {"partitions": {}, "at": None}
            done = {k: off for k, off in committed.items() if k in cp["partitions"]}
            if floors is None and len(done) < len(committed):
                floors = self._sync_floors()
            out[group] = {"checkpoint_age_s": None if not cp["at"] else round(time.time() - cp["at"], 3),
                          "consumed_since_checkpoint": sum(max(0, off - cp["partitions"][k]) for k, off in done.items()),
                          "has_offsets_on_source": bool(committed), "committed": dict(committed),
                          "read_at": self.read_at,
                          "without_checkpoint": {
                              k: {"committed": off, "reason": no_checkpoint_reason(
                                  off, *(floors or {}).get(k, (None, None)))}
                              for k, off in sorted(committed.items()) if k not in cp["partitions"]}}
        return out

    def write_status(self, epoch) -> None:
        running = bool(self.config.get("running"))
        alive = self.child is not None and self.child.poll() is None
        write_json_atomic(self.status_path, {
            "epoch": epoch, "t": time.time(), "running": running, "engine": "mirrormaker2",
            "kafka_version": self.kafka.kafka_version(), "mirrormaker2_running": alive, "tasks": self.tasks,
            "copying": alive and self.tasks.get(f"{SOURCE_CONNECTOR}-0") == "RUNNING",
            "mirrormaker2_restarts": self.restarts,
            "source": self.config.get("source"), "target": self.config.get("target"), "why": self.config.get("why"),
            "lag_records": self.last_lag[0] if running else None, "lag_seconds": self.last_lag[1] if running else None,
            "source_reachable": (time.time() - self.source_ok_at < 2.0) if running else None,
            "replicated": sum(self.positions.values()), "positions": self.positions,
            "groups": self._groups_view(),
            "checkpoint_interval_s": mirrormaker2.CHECKPOINT_INTERVAL_S,
            "stopped_at": self.stopped_at, "incarnations": self.incarnations if running else {},
            "start": "offsets" if isinstance(self.config.get("start_offsets"), dict) and self.config["start_offsets"]
            else "earliest or its stored positions"})

    def run(self, stop: threading.Event, still_ours) -> None:
        epoch = None
        next_watch = time.time() + 2.0
        while not stop.is_set():
            cfg = read_json(self.config_path) or {}
            if cfg.get("epoch") != epoch:
                if self.child is not None and (not cfg.get("running") or
                                               (cfg.get("source"), cfg.get("target")) != (self.source, self.target)):
                    self._stop()
                self.config = cfg
                if cfg.get("running") and self.child is None:
                    self._start(cfg["source"], cfg["target"])
                epoch = cfg.get("epoch")
                self.write_status(epoch)
            if self.child is not None and self.child.poll() is not None:
                log.error("MirrorMaker 2 exited with %s; restarting it (log: %s)", self.child.returncode,
                          self.layout.log(self.kafka.MM2_COMPONENT))
                self.child = None
                self.restarts += 1
                self.config = dict(self.config, start_offsets=None)  # resume from its own positions
                stop.wait(1.0)
                self._start(self.config["source"], self.config["target"])
            if self.child is not None:
                # the target's side first (MirrorMaker 2's positions and checkpoints live there), and
                # published at once: probing a source that is gone can take seconds
                self._read_tail()
                self.write_status(epoch)
                self._measure()
            self.write_status(epoch)
            stop.wait(STATUS_INTERVAL_S)
            if time.time() >= next_watch:
                next_watch = time.time() + 2.0
                if not still_ours():
                    break
        self._stop(record=False)  # the sandbox is going down: nothing to record
        self.write_status(epoch)


def serve_replicator(layout: Layout, state: State, stop: threading.Event, still_ours) -> int:
    flow = MirrorMakerFlow(layout, state)
    print(f"replicator: MirrorMaker 2 {flow.kafka.kafka_version()} supervisor, config {flow.config_path}", flush=True)
    flow.run(stop, still_ours)
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
    """Give each group on ``target`` the offsets MirrorMaker 2 translated for it: the last
    checkpoint of the flow source → target (``<source>.checkpoints.internal`` on the target, what
    ``RemoteClusterUtils.translateOffsets`` reads), committed on the target where it is ahead of
    what the group has there (``sync.group.offsets`` usually did it already; a group with members
    on the target is refused by the broker and keeps its own). Nothing is computed here.

    Per group: ``{"method", "translated", "committed_on_target": {tp: off}, "checkpoint_age_s",
    "checkpoints": {tp: {upstream, downstream}}, "reprocess_records": n | None,
    "consumed_not_replicated": n | None}``; ``reprocess_records`` counts the records the group's
    consumers see again on the target: consumed on the source (asked now; at the checkpoint when
    the source does not answer, then a lower bound) but at or after the offset it resumes from."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from sandbox import _kafka

    state = layout.read_state()
    tboot = _kafka.bootstrap(state, target)
    cps = checkpoints(tboot, source)
    copied = source_positions(tboot, source)
    syncs = offset_syncs(tboot, source)
    tps = [TopicPartition(t, p) for t in TOPICS for p in range(4)]
    st = status(layout, "kafka") or {}
    same_flow = (st.get("source"), st.get("target")) == (source, target)
    last_seen = (st.get("groups") or {}) if same_flow else {}
    # the supervisor's last word on the source, as the flow stopped: asking a lost region again
    # costs the failover a timeout (2 s) before the clients move
    stopped = st.get("stopped_at") or {}
    source_gone = same_flow and (st.get("source_reachable") is False if st.get("running") else
                                 stopped.get("flow") == f"{source}->{target}" and bool(stopped.get("source_lost")))
    out = {}
    for group in groups or list(GROUPS):
        cp = cps.get(group) or {"partitions": {}, "at": None}
        age = None if not cp["at"] else round(time.time() - cp["at"], 3)
        src_committed = None
        if source_gone:
            pass  # the supervisor lost it (a region outage): not asked again, the checkpoint is all there is
        else:
            src = Consumer({"bootstrap.servers": _kafka.bootstrap_via_link(state, source), "group.id": group,
                            "log_level": 0, "socket.timeout.ms": 1000})
            try:
                src_committed = {_tp_key(t.topic, t.partition): t.offset
                                 for t in src.committed(tps, timeout=timeout_s)}
            except KafkaException:
                pass  # the source is gone: the checkpoint is all there is
            finally:
                src.close()
        dst = Consumer({"bootstrap.servers": tboot, "group.id": group, "log_level": 0})
        refused = None
        try:
            current = {_tp_key(t.topic, t.partition): t.offset for t in dst.committed(tps, timeout=timeout_s)}
            new = [TopicPartition(*_split(k), v["downstream"]) for k, v in cp["partitions"].items()
                   if v["downstream"] > current.get(k, -1)]
            if new:
                try:
                    dst.commit(offsets=new, asynchronous=False)
                    current.update({_tp_key(t.topic, t.partition): t.offset for t in new})
                except KafkaException as exc:  # the group has members on the target
                    refused = str(exc)[:160]
        finally:
            dst.close()
        method = (f"MirrorMaker 2's checkpoints ({source}.checkpoints.internal on {target})"
                  + (f", the last {age:.1f} s old" if age is not None else ": none written for this group yet"))
        if refused:
            method += f"; the commit was refused ({refused}), the target keeps its own offsets"
        # records the group will see again: from the offset it resumes at on the target up to what it
        # had consumed on the source (now, or at its checkpoint when the source is gone); the offset
        # syncs say which source offset that target offset holds (MirrorMaker 2 translates
        # conservatively: up to offset.lag.max records before the group's position)
        reprocess = 0 if cp["partitions"] else None
        for k, v in cp["partitions"].items():
            synced = [d for d in syncs.get(k, []) if d[0] <= v["upstream"]]
            if not synced:
                reprocess = None
                break
            up0, down0 = synced[-1]
            consumed = src_committed.get(k, -1) if src_committed is not None else v["upstream"]
            reprocess += max(0, max(consumed, v["upstream"]) - (up0 + (v["downstream"] - down0)))
        # consumed on the source beyond what MirrorMaker 2 had copied (its committed positions): those
        # records never reached the target, so the group skips them there (None: the source is gone)
        skipped = None if src_committed is None else \
            sum(max(0, off - copied.get(k, 0)) for k, off in src_committed.items() if off >= 0)
        # every partition the group committed on the source (asked now; as the supervisor last saw
        # it when the source is gone) needs an offset on the target: one MirrorMaker 2 never
        # checkpointed is named, never filled in
        view = last_seen.get(group) or {}
        seen = src_committed if src_committed is not None else (view.get("committed") or {})
        lacking = sorted(k for k, off in seen.items() if off >= 0 and current.get(k, -1) < 0)
        if lacking:
            why = view.get("without_checkpoint") or {}
            method += f"; no checkpoint and no offset in {target} for " + ", ".join(
                k + (f" ({why[k]['reason']})" if k in why else "") for k in lacking)
        out[group] = {"method": method, "translated": bool(cp["partitions"]) and not lacking and
                      all(current.get(k, -1) >= 0 for k in cp["partitions"]),
                      "without_offsets": lacking,
                      "committed_on_target": {k: v for k, v in current.items() if v >= 0},
                      "checkpoints": cp["partitions"], "checkpoint_age_s": age, "reprocess_records": reprocess,
                      "consumed_not_replicated": skipped}
    return out


def _split(key: str) -> tuple[str, int]:
    topic, p = key.rsplit(":", 1)
    return topic, int(p)


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
