"""MirrorMaker 2's supervisor, a worker process (``python -m sandbox.workers.serve replicator
--dir DIR``): it runs Apache Kafka's MirrorMaker 2 (dedicated mode, its child JVM) for the
configured flow in the flow's target region — starts it (after writing the flow's start positions
into MirrorMaker 2's own offsets topic when given), stops it, restarts it if it dies — and
publishes what MirrorMaker 2's own topics on the target say: its tasks' states, its committed
source positions (hence the lag against the source's end offsets), each group's last checkpoint.
MirrorMaker 2 reaches the source cluster through the link (sandbox/kafka_cluster.py), so the link's
latency and partitions hit it as they hit PostgreSQL's replication. Nothing here copies a record
or translates an offset: MirrorMaker 2 does both."""

from __future__ import annotations

import json
import logging
import threading
import time

from contract import mirrormaker2
from sandbox import kafka_cluster, proc
from sandbox.flows import GROUPS, STATUS_INTERVAL_S, TOPICS, kafka_dir
from sandbox.kafka_replication import (
    SOURCE_CONNECTOR,
    cluster_info,
    connect_offsets_topic,
    end_offsets,
    no_checkpoint_reason,
    offset_syncs,
    parse_checkpoint,
    seed_source_positions,
    split_tp_key,
    sync_floors,
    tp_key,
)
from sandbox.layout import Layout, State, read_json, write_json_atomic

log = logging.getLogger("sandbox.streams")


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
        self.kafka = kafka_cluster
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
        self.source_failed_at = 0.0
        """When a request to the source last went unanswered (``_measure``): later than
        ``source_ok_at`` means the last word from the source is a timeout."""
        self.last_lag: tuple[int | None, float | None] = (None, None)
        self.restarts = 0
        self.epoch = None
        """The configuration epoch being served (``run``)."""

    def _reconfigured(self) -> bool:
        """A new configuration waits (a stop, a reverse): the source's probes give way to it."""
        return (read_json(self.config_path) or {}).get("epoch") != self.epoch

    # ---- MirrorMaker 2, the child ------------------------------------------------------------

    def _start(self, source: str, target: str) -> None:
        import subprocess

        from confluent_kafka import Consumer


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
        proc.write_pid(self.layout.run_dir, k.MM2_COMPONENT, self.child.pid, argv[0])
        self.incarnations = {r: (cluster_info(self.layout, r) or {}).get("incarnation") for r in (source, target)}
        self.positions, self.tasks = {}, {}
        from contract.mirrormaker2 import checkpoints_topic
        self.tail = _TopicTail(tboot, [connect_offsets_topic(source), f"mm2-status.{source}.internal",
                                       checkpoints_topic(source)])
        self.checkpoints, self.committed, self.next_groups = {}, {}, 0.0
        self.syncs_read, self.read_at = (0.0, {}), None
        self.src = Consumer({"bootstrap.servers": k.bootstrap_via_link(self.state, source), "group.id": "regionpair-lag",
                             "enable.auto.commit": False, "log_level": 0, "socket.timeout.ms": 800})
        self.source_ok_at, self.source_failed_at = time.time(), 0.0
        self.last_lag = (None, None)
        log.info("MirrorMaker 2 %s -> %s started (pid %s, start %s)", source, target, self.child.pid,
                 "given offsets" if isinstance(start, dict) and start else "its stored positions or earliest")

    def _stop(self, record: bool = True) -> None:
        """Stop MirrorMaker 2 (it stores its positions as it stops); ``record``: note where the
        flow stopped (the target's end offsets, what it had copied), for a reverse flow's start."""

        if self.child is None:
            return
        began = time.time()
        # gone: the last request to the source already went unanswered (a watermark request's
        # whole timeout, the same evidence a fresh probe would give, 0.8 s later), or it has been
        # silent for 2 s, or a probe now goes unanswered
        gone = self.source_failed_at > self.source_ok_at or time.time() - self.source_ok_at >= 2.0 \
            or not self._source_answers()
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
        log.info("MirrorMaker 2 %s -> %s stopped (%s) in %.2f s", self.source, self.target,
                 "killed: its source does not answer" if gone else "gracefully", time.time() - began)
        proc.pid_path(self.layout.run_dir, self.kafka.MM2_COMPONENT).unlink(missing_ok=True)
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
                    g["partitions"][tp_key(cp["topic"], cp["partition"])] = cp["upstream"]
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
                self.positions[tp_key(part["topic"], int(part["partition"]))] = int(json.loads(m.value())["offset"]) + 1
        if self.tail is not None:
            self.read_at = polled

    def _measure(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        self._read_tail()
        topics = self.config.get("topics", TOPICS)
        try:
            ends = {}
            for t in topics:
                for p in range(4):
                    if self._reconfigured():
                        return
                    ends[tp_key(t, p)] = self.src.get_watermark_offsets(TopicPartition(t, p), timeout=0.8,
                                                                       cached=False)[1]
        except KafkaException as exc:  # the source does not answer (partition, region lost): frozen
            log.debug("source: %s", exc)
            self.source_failed_at = time.time()
            return
        self.source_ok_at = time.time()
        behind = {k: (self.positions.get(k, 0), hi) for k, hi in ends.items() if hi > self.positions.get(k, 0)}
        total = sum(hi - pos for pos, hi in behind.values())
        oldest = None
        for k, (pos, _hi) in behind.items():  # the first record not copied, per partition: its time
            if self._reconfigured():
                return
            t, p = split_tp_key(k)
            self.src.assign([TopicPartition(t, p, pos)])
            m = self.src.poll(0.3)
            if m is None:  # a record the source just said it holds did not come: it stopped answering
                self.source_failed_at = time.time()  # (a drained flow, a planned stop's, polls nothing)
                return
            if m.error() is None and m.timestamp()[1] > 0:
                oldest = min(oldest or 1e18, m.timestamp()[1] / 1000.0)
        seconds = 0.0 if total == 0 else (max(0.0, self.source_ok_at - oldest) if oldest else self.last_lag[1])
        self.last_lag = (total, seconds)
        if time.time() >= self.next_groups and not self._reconfigured():
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
                self.source_failed_at = time.time()
                return
            self.committed[group] = {tp_key(t, p): off for (t, p), off in got.items()}

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
                epoch = self.epoch = cfg.get("epoch")
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
                if not self._reconfigured():  # else: serve the change first
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
