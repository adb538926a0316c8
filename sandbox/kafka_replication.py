"""Kafka replication between the regions, as the controller reads it: where each region's cluster
is, MirrorMaker 2's own records on the target (its source positions, checkpoints and offset
syncs, read, never recomputed), the group translation a failover applies, and where a new flow
must start (``decide_start``, ``choose_start``). What the flow copies is in ``sandbox.flows``."""

from __future__ import annotations

import json
import struct
import time
from concurrent.futures import ThreadPoolExecutor

from contract import mirrormaker2
from sandbox import kafka_cluster
from sandbox.errors import SandboxError
from sandbox.flows import GROUPS, TOPICS, status
from sandbox.layout import REGIONS, Layout, read_json

EARLIEST = "earliest"
"""A flow's start: every record the source still holds (a new or emptied target), as MSK
Replicator's starting position EARLIEST does for a new replicator."""


def cluster_info(layout: Layout, region: str) -> dict | None:
    """What ``up``/``start_region`` recorded once the region's cluster was ready: bootstrap,
    topics, incarnation (the cluster id: a new one at every start), started_at."""
    return read_json(kafka_cluster.info_path(layout, region))


def cluster_bootstraps(layout: Layout) -> dict[str, str]:
    out = {}
    for region in REGIONS:
        doc = read_json(kafka_cluster.info_path(layout, region))
        if doc:
            out[region] = doc["bootstrap"]
    return out


def bootstrap_of(layout: Layout, region: str) -> str:
    """The region's bootstrap brokers as recorded when its cluster was ready (SandboxError if none)."""
    boots = cluster_bootstraps(layout)
    if region not in boots:
        raise SandboxError(f"no Kafka cluster recorded for {region}", component=f"kafka-{region}")
    return boots[region]


def tp_key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def split_tp_key(key: str) -> tuple[str, int]:
    topic, p = key.rsplit(":", 1)
    return topic, int(p)


# ---------------------------------------------------------------------------------------------
# MirrorMaker 2's own records, read (never recomputed): its source positions and its checkpoints
# ---------------------------------------------------------------------------------------------

SOURCE_CONNECTOR = "MirrorSourceConnector"


def connect_offsets_topic(source: str) -> str:
    """Where dedicated-mode MirrorMaker 2 keeps its source connector's positions, on the target."""
    return f"mm2-offsets.{source}.internal"


def read_topic(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list:
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
    for m in read_topic(bootstrap, connect_offsets_topic(source)):
        try:
            name, part = json.loads(m.key())
        except (TypeError, ValueError):
            continue
        if name != SOURCE_CONNECTOR or part.get("cluster") != source or part.get("topic") not in topics:
            continue
        key = tp_key(part["topic"], int(part["partition"]))
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
    for m in read_topic(bootstrap, checkpoints_topic(source)):
        if m.value() is None:
            continue
        cp = parse_checkpoint(m.key(), m.value())
        g = out.setdefault(cp["group"], {"partitions": {}, "at": 0.0})
        g["partitions"][tp_key(cp["topic"], cp["partition"])] = {"upstream": cp["upstream"],
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
    return tp_key(topic, partition), up, down


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
    for m in read_topic(bootstrap, offset_syncs_topic(source)):
        tp, up, down = parse_offset_sync(m.key(), m.value())
        out.setdefault(tp, []).append((up, down))
    return out


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

    state = layout.read_state()
    tboot = kafka_cluster.bootstrap(state, target)
    # MirrorMaker 2's three topics on the target, read side by side (each read is its own consumer,
    # ~0.3 s here; one after the other they held a failover's clients 0.9 s)
    with ThreadPoolExecutor(3, thread_name_prefix="mm2-topics") as pool:
        reads = [pool.submit(fn, tboot, source) for fn in (checkpoints, source_positions, offset_syncs)]
        cps, copied, syncs = (r.result() for r in reads)
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
            src = Consumer({"bootstrap.servers": kafka_cluster.bootstrap_via_link(state, source), "group.id": group,
                            "log_level": 0, "socket.timeout.ms": 1000})
            try:
                src_committed = {tp_key(t.topic, t.partition): t.offset
                                 for t in src.committed(tps, timeout=timeout_s)}
            except KafkaException:
                pass  # the source is gone: the checkpoint is all there is
            finally:
                src.close()
        dst = Consumer({"bootstrap.servers": tboot, "group.id": group, "log_level": 0})
        refused = None
        try:
            current = {tp_key(t.topic, t.partition): t.offset for t in dst.committed(tps, timeout=timeout_s)}
            new = [TopicPartition(*split_tp_key(k), v["downstream"]) for k, v in cp["partitions"].items()
                   if v["downstream"] > current.get(k, -1)]
            if new:
                try:
                    dst.commit(offsets=new, asynchronous=False)
                    current.update({tp_key(t.topic, t.partition): t.offset for t in new})
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

def end_offsets(layout: Layout, region: str, timeout_s: float = 3.0,
                topics: tuple[str, ...] | list[str] = TOPICS) -> dict[str, tuple[int, int]]:
    """Per partition of ``topics`` (default: the replicated ones): (earliest retained offset, end
    offset), asked now. Raises KafkaException when the region's cluster does not answer."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": cluster_bootstraps(layout)[region], "group.id": "regionpair-offsets",
                  "log_level": 0, "socket.timeout.ms": int(timeout_s * 1000)})
    try:
        return {tp_key(t, p): tuple(c.get_watermark_offsets(TopicPartition(t, p), timeout=timeout_s))
                for t in topics for p in range(4)}
    finally:
        c.close()

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
