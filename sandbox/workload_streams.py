"""The drill workload's Kafka and S3 clients (beside the PostgreSQL clients of ``workload.py``).

Clients find their endpoints the way applications do in AWS: they read a parameter (the
sandbox's stand-in for an SSM parameter, ``sandbox/param_store.py``) and re-read it at every tick
(a stat of a file). The value ``PAUSED`` means: produce, consume and write nothing until it
changes (a planned switchover's fence for these clients).

- producer (application ``checkout``): idempotent, ``acks=all``, to topic ``orders``, keys spread
  over 16 values. It keeps a **warm standby** producer connected to the other region's cluster
  (``StandbyProducer``): when its parameter names that cluster, it produces there at once instead
  of creating a producer then, whose idempotent init (librdkafka's ProducerId request, retried on
  a timer while no broker is up yet) took 0.1-0.5 s before the first acknowledgement. Every
  delivery report is a log line
  ``{"system": "kafka", "id", "t", "region", "database": "orders", "partition", "offset", "ok": true}``,
  a failed delivery ``{"system": "kafka", "id", "ok": false, "error"}`` (outcome unknown);
- consumer (application ``ledger``, group ``ledger``): logs every record it processes as
  ``{"event": "consumed", "system": "kafka", "id", "t", "region", "group", "partition", "offset"}``
  and commits (asynchronously) after each batch, so what is committed was logged first;
- object writer (application ``checkout``): ``PUT drill/<id>`` into the bucket its parameter
  names; ``{"system": "s3", "id", "t", "region", "database": "objects", "version", "ok": true}``.
"""

from __future__ import annotations

import json
import threading
import time

from sandbox import buckets, flows, kafka_replication, param_store
from sandbox.buckets import bucket_name
from sandbox.layout import REGIONS, Layout, State

KAFKA_TOPIC = flows.TOPICS[0]


def _region_of_bootstrap(layout: Layout, bootstrap: str) -> str:
    for region, boot in kafka_replication.cluster_bootstraps(layout).items():
        if boot == bootstrap:
            return region
    return "?"


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()[:160]}"


def _producer(bootstrap: str, **extra):
    """The drills' producer: idempotent, ``acks=all`` (the same settings whether warm or not)."""
    from confluent_kafka import Producer
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "message.timeout.ms": 5000, "log_level": 0, **extra})


def _discard(producer) -> None:
    """Let a producer go without holding the caller: flushed (with nothing queued, at once) and
    destroyed in a thread of its own."""
    threading.Thread(target=producer.flush, args=(1,), name="discard-producer", daemon=True).start()


class StandbyProducer:
    """A producer created ahead of need against the cluster clients are not on (the application
    knows both regions' bootstrap brokers; in AWS a second parameter would name the standby's).
    librdkafka asks for its ProducerId and connects at creation, so when the parameter moves to
    that cluster the first record is sent at once. It produces nothing until then.

    It is used only while it can be trusted: it is dropped (and made again, at most every
    ``RETRY_S``) when all its brokers went down (``_ALL_BROKERS_DOWN``) or any error is fatal, when
    the region's cluster is another incarnation than the one it was made for (a region that came
    back with a new, empty cluster does not know its ProducerId), and after ``MAX_AGE_S`` (the
    broker expires idle ProducerIds after ``producer.id.expiration.ms``, a day by default)."""

    RETRY_S = 2.0
    CHECK_S = 0.5
    MAX_AGE_S = 600.0

    def __init__(self, layout: Layout):
        self.layout = layout
        self.producer = None
        self.bootstrap = self.region = self.incarnation = None
        self.made_at = self.checked_at = 0.0
        self.down = False

    def _error(self, err) -> None:
        from confluent_kafka import KafkaError
        if err.code() == KafkaError._ALL_BROKERS_DOWN or err.fatal():
            self.down = True

    def _drop(self) -> None:
        if self.producer is not None:
            _discard(self.producer)
        self.producer, self.bootstrap, self.region, self.incarnation = None, None, None, None

    def keep(self, active_region: str | None) -> None:
        """Called at every tick: serve its callbacks; every ``CHECK_S`` make sure it stands by on
        the cluster of the region clients are not on (none while they are on none)."""
        if self.producer is not None:
            self.producer.poll(0)
        now = time.time()
        if now - self.checked_at < self.CHECK_S:
            return
        self.checked_at = now
        others = [r for r in REGIONS if r != active_region] if active_region in REGIONS else []
        info = (kafka_replication.cluster_info(self.layout, others[0]) or {}) if others else {}
        if self.producer is not None and (self.region not in others or self.down
                                          or info.get("incarnation") != self.incarnation
                                          or now - self.made_at > self.MAX_AGE_S):
            self._drop()
        if self.producer is None and info.get("bootstrap") and now - self.made_at >= self.RETRY_S:
            self.producer, self.down, self.made_at = _producer(info["bootstrap"], error_cb=self._error), False, now
            self.bootstrap, self.region, self.incarnation = info["bootstrap"], others[0], info.get("incarnation")

    def take(self, bootstrap: str):
        """The standby producer if it stands by on ``bootstrap`` and can be trusted (it is then the
        caller's), else None."""
        if self.producer is None or self.bootstrap != bootstrap or self.down:
            return None
        info = kafka_replication.cluster_info(self.layout, self.region) or {}
        if info.get("incarnation") != self.incarnation:
            return None
        producer, self.producer = self.producer, None
        self.bootstrap = self.region = self.incarnation = None
        self.made_at = 0.0
        return producer

    def close(self) -> None:
        self._drop()


class KafkaProducerClient:
    def __init__(self, layout: Layout, log, interval: float, run_id: str):
        self.layout = layout
        self.log = log
        self.interval = interval
        self.run_id = run_id
        self.watch = param_store.ParamWatch(layout, param_store.bootstrap_parameter(param_store.PRODUCER_APP))
        self.producer = None
        self.bootstrap = None
        self.region = None
        self.flushing: list[threading.Thread] = []
        self.standby = StandbyProducer(layout)
        self.warm_switches = 0
        """Moves that took the warm standby producer (the others created one then)."""

    def _switch(self, value: str | None) -> None:
        old, self.producer = self.producer, None
        if old is not None:
            # what the old cluster never confirms fails within message.timeout.ms and is logged as an
            # unknown outcome; flushed beside, so a dead cluster does not hold the move for 5 s
            t = threading.Thread(target=old.flush, args=(6,), name="flush-old-producer", daemon=True)
            t.start()
            self.flushing.append(t)
        self.bootstrap = value
        if value and value != param_store.PAUSED:
            self.region = _region_of_bootstrap(self.layout, value)
            self.producer = self.standby.take(value)
            if self.producer is not None:
                self.warm_switches += 1
            else:
                self.producer = _producer(value)

    def _report(self, err, msg, wid: str, region: str) -> None:
        if err is None:
            self.log.write({"system": "kafka", "id": wid, "t": time.time(), "region": region, "database": KAFKA_TOPIC,
                            "partition": msg.partition(), "offset": msg.offset(), "ok": True})
        else:
            self.log.write({"system": "kafka", "id": wid, "t": time.time(), "ok": False, "database": KAFKA_TOPIC,
                            "error": str(err)[:200]})

    def run(self, start: float, end: float, stop: threading.Event) -> None:
        from confluent_kafka import KafkaException

        seq = 0
        for _ in paced(start, end, self.interval, stop):
            value = self.watch.get()
            if value != self.bootstrap:
                self._switch(value)
            # paused (a switchover), it stands by on the cluster clients move to next
            self.standby.keep(self.region if self.bootstrap else None)
            if self.producer is None:
                continue
            seq += 1
            wid = f"{self.run_id}-k-{seq}"
            region = self.region
            try:
                self.producer.produce(KAFKA_TOPIC, json.dumps({"id": wid}).encode(), f"key-{seq % 16}".encode(),
                                      on_delivery=lambda err, msg, w=wid, r=region: self._report(err, msg, w, r))
            except (KafkaException, BufferError) as exc:
                self.log.write({"system": "kafka", "id": wid, "t": time.time(), "ok": False, "database": KAFKA_TOPIC,
                                "error": _short(exc)})
            self.producer.poll(0)
        self.standby.close()
        if self.producer is not None:
            self.producer.flush(6)
        for t in self.flushing:
            t.join(6)


class KafkaConsumerClient:
    def __init__(self, layout: Layout, log, group: str = flows.GROUPS[0]):
        self.layout = layout
        self.log = log
        self.group = group
        self.watch = param_store.ParamWatch(layout, param_store.bootstrap_parameter(param_store.CONSUMER_APP))
        self.consumer = None
        self.bootstrap = None
        self.region = None

    def _close(self) -> None:
        from confluent_kafka import KafkaException
        if self.consumer is not None:
            try:
                self.consumer.close()
            except KafkaException as exc:
                self.log.write({"system": "kafka", "t": time.time(), "ok": False, "error": _short(exc)})
            self.consumer = None

    def _abandon(self) -> None:
        """Let go of the consumer of the cluster clients are leaving without waiting for it: its
        close() tries to leave the group on that cluster, which, when the region is gone, can block
        for as long as the clients stay on the old cluster (seen: a drill whose group never resumed
        on DR)."""
        old, self.consumer = self.consumer, None
        if old is not None:
            threading.Thread(target=self._close_quietly, args=(old,), name="close-old-consumer",
                             daemon=True).start()

    def _close_quietly(self, consumer) -> None:
        from confluent_kafka import KafkaException
        try:
            consumer.close()
        except KafkaException as exc:
            self.log.write({"system": "kafka", "t": time.time(), "ok": False, "error": _short(exc)})

    def _switch(self, value: str | None) -> None:
        self._abandon()
        self.bootstrap = value
        if value and value != param_store.PAUSED:
            from confluent_kafka import Consumer
            self.region = _region_of_bootstrap(self.layout, value)
            self.consumer = Consumer({"bootstrap.servers": value, "group.id": self.group,
                                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                      "on_commit": self._committed, "log_level": 0})
            self.consumer.subscribe([KAFKA_TOPIC])

    def _committed(self, err, partitions) -> None:
        if err is not None:
            self.log.write({"system": "kafka", "t": time.time(), "ok": False, "error": f"commit: {str(err)[:160]}"})

    def run(self, start: float, end: float, stop: threading.Event) -> None:
        from confluent_kafka import KafkaException

        idle_since = None
        drain_until = None
        while time.time() < end + 30:
            if stop.is_set():
                # drain: the producers have stopped; process what is left, then leave
                drain_until = drain_until or time.time() + 10.0
                if time.time() > drain_until or (idle_since is not None and time.time() - idle_since > 1.5):
                    break
            value = self.watch.get()
            if value != self.bootstrap:
                self._switch(value)
            if self.consumer is None:
                stop.wait(0.05)
                continue
            try:
                msgs = self.consumer.consume(200, timeout=0.1)
            except KafkaException as exc:
                self.log.write({"system": "kafka", "t": time.time(), "ok": False, "error": _short(exc)})
                continue
            done = 0
            if msgs or not self.consumer.assignment():
                idle_since = None  # still joining the group is not idle
            else:
                idle_since = idle_since or time.time()
            for m in msgs:
                if m.error():
                    continue
                wid = json.loads(m.value())["id"]
                self.log.write({"event": "consumed", "system": "kafka", "id": wid, "t": time.time(),
                                "region": self.region, "group": self.group, "partition": m.partition(),
                                "offset": m.offset()})
                done += 1
            if done:
                # asynchronous: the commit is sent at once by librdkafka's own threads (on a live
                # cluster it lands within milliseconds, long before a switchover reads the group's
                # offsets), and a cluster that dies mid-commit cannot hold this loop: a synchronous
                # commit to a region frozen and killed under it was seen to block for good, and the
                # group never resumed in DR. A commit that fails is logged by _committed; the next
                # consumer re-reads those records (duplicates, counted).
                try:
                    self.consumer.commit(asynchronous=True)
                except KafkaException as exc:
                    self.log.write({"system": "kafka", "t": time.time(), "ok": False, "error": _short(exc)})
            if time.time() >= end and not msgs:
                break
        self._close()


class ObjectWriterClient:
    def __init__(self, layout: Layout, state: State, log, interval: float, run_id: str):
        self.layout = layout
        self.log = log
        self.interval = interval
        self.run_id = run_id
        self.watch = param_store.ParamWatch(layout, param_store.bucket_parameter())
        self.clients = {bucket_name(r): (r, buckets.s3_client(f"http://{state.addresses[r]}:{state.moto_port}"))
                        for r in REGIONS}

    def run(self, start: float, end: float, stop: threading.Event) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        seq = 0
        for _ in paced(start, end, self.interval, stop):
            bucket = self.watch.get()
            if bucket not in self.clients:  # PAUSED (or nothing published yet): write nothing
                continue
            region, client = self.clients[bucket]
            seq += 1
            wid = f"{self.run_id}-s-{seq}"
            try:
                put = client.put_object(Bucket=bucket, Key=f"drill/{wid}", Body=wid.encode())
                self.log.write({"system": "s3", "id": wid, "t": time.time(), "region": region, "database": "objects",
                                "version": put.get("VersionId"), "ok": True})
            except (BotoCoreError, ClientError) as exc:
                self.log.write({"system": "s3", "id": wid, "t": time.time(), "ok": False, "database": "objects",
                                "error": _short(exc)})


def paced(start: float, end: float, interval: float, stop: threading.Event):
    """One tick every ``interval`` s from ``start`` until ``end`` or ``stop``. After a stall it skips
    ticks rather than bursting (never more than 1 s behind), so the rate stays the rate."""
    next_t = start
    while not stop.is_set() and next_t < end:
        if next_t > time.time() and stop.wait(next_t - time.time()):
            return
        next_t = max(next_t + interval, time.time() - 1.0)
        yield


def stream_workers(layout: Layout, state: State, log, run_id: str, kafka_rate: float, s3_rate: float) -> list:
    """The Kafka and S3 clients this sandbox has systems for (none without kafka/s3)."""
    systems = state.extra.get("systems", [])
    workers = []
    if "kafka" in systems and kafka_rate > 0:
        workers += [KafkaProducerClient(layout, log, 1.0 / kafka_rate, run_id), KafkaConsumerClient(layout, log)]
    if "s3" in systems and s3_rate > 0:
        workers.append(ObjectWriterClient(layout, state, log, 1.0 / s3_rate, run_id))
    return workers
