"""The sandbox's continuous Kafka topic backup: a worker process that does what the S3 sink
connector does in AWS (components/kafka_backup.py), against the sandbox's real Kafka.

    python -m sandbox kafka-backup start --dir DIR --topic orders=critical [--flush-s 1]   (in the background)
    python -m sandbox.workers.kafka_backup --dir DIR --topic orders=critical [--region local-east]  (in the foreground)

It reads the chosen topics of one region's cluster (``assign`` to every partition, from the
backup's own watermark, so a restarted worker continues where the backup ends, never from a
consumer group's position), and every ``--flush-s`` writes what it read as Parquet files into the
sandbox's backups store ``DIR/backups`` (layout: ``contract.kafka_backup``), then the watermark:
files first, so a crash in between writes the same records again under the same first offset
(the replay keeps each offset once). Every ``--offsets-every-s`` it snapshots every consumer
group's committed offsets with the topics' end offsets. Retention per topic class is applied on
each snapshot (the lifecycle rules' stand-in). ``DIR/kafka-backup/status.json`` has the backup's
lag behind the head after each flush (records, and how long the newest record waited).

The worker itself is ``sandbox/workers/kafka_backup.py``; this module is the controller's side:
its store, its status, and ``start``/``stop`` (component ``kafka-backup``, a pid file like every
other process of the sandbox, so ``down`` stops it); the worker also exits when the sandbox is gone."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

from contract import kafka_backup as kb
from sandbox import kafka_cluster, proc
from sandbox.errors import SandboxError
from sandbox.layout import EAST, REGIONS, Layout

COMPONENT = "kafka-backup"
log = logging.getLogger("sandbox.kafka_backup")


def store_dir(layout: Layout) -> Path:
    return layout.root / "backups"


def status_path(layout: Layout) -> Path:
    return layout.root / COMPONENT / "status.json"


def parse_topics(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        topic, sep, cls = spec.partition("=")
        cls = cls if sep else "standard"
        try:
            kb.check_topic(topic)
            kb.retention_days(cls)
        except ValueError as exc:
            raise SandboxError(f"--topic {spec!r}: {exc}; give TOPIC=CLASS (critical or standard)",
                               component=COMPONENT) from None
        out[topic] = cls
    if not out:
        raise SandboxError("no --topic to back up; give TOPIC=CLASS", component=COMPONENT)
    return out


def start(sb, topics: dict[str, str], region: str = EAST, flush_s: float = 1.0, offsets_every_s: float = 10.0) -> str:
    """Start the backup worker of the sandbox ``sb`` (a running sandbox with Kafka)."""
    if region not in REGIONS:
        raise SandboxError(f"region {region!r}: one of {', '.join(REGIONS)}", component=COMPONENT)
    kafka_cluster.settings(sb.state)  # refuses a sandbox without Kafka, naming the fix
    stop(sb)
    argv = proc.worker_argv("sandbox.workers.kafka_backup", "--dir", str(sb.layout.root), "--region", region,
                             "--flush-s", str(flush_s), "--offsets-every-s", str(offsets_every_s))
    for t, c in topics.items():
        argv += ["--topic", f"{t}={c}"]
    rec = proc.spawn(sb.layout.run_dir, COMPONENT, argv, sb.layout.log(COMPONENT), env=proc.worker_env())
    return f"Kafka backup of {', '.join(topics)} ({region}) into {store_dir(sb.layout)} (pid {rec.pid})"


def stop(sb) -> str:
    rec = proc.running(sb.layout.run_dir, COMPONENT)
    if rec is None:
        return "the Kafka backup is not running"
    how = proc.terminate(rec.pid, rec.start_time, COMPONENT, sig=signal.SIGTERM, grace_s=15.0)
    proc.pid_path(sb.layout.run_dir, COMPONENT).unlink(missing_ok=True)
    return f"Kafka backup {how}"


def status(layout: Layout) -> dict | None:
    try:
        return json.loads(status_path(layout).read_text())
    except (FileNotFoundError, ValueError):
        return None
