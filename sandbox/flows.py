"""The replication flows (Kafka by MirrorMaker 2, S3 by the replication worker): what the Kafka
flow replicates, and the flows' control files — a ``*-config.json`` the controller writes (source,
target, running, epoch; ``set_flow``) and a ``*-status.json`` the worker writes every ~0.1–0.2 s,
under ``DIR/kafka`` and ``DIR/s3``. A worker acknowledges a change by echoing its ``epoch``."""

from __future__ import annotations

from pathlib import Path

from sandbox import kafka_cluster, proc
from sandbox.errors import SandboxError
from sandbox.layout import Layout, State, read_json, write_json_atomic
from sandbox.probes import deadline_loop

TOPICS = ("orders",)
"""What the workload produces and MirrorMaker 2 copies (created with 4 partitions by the sandbox in
both regions at every cluster start: auto-creation is off, as on MSK)."""
GROUPS = ("ledger",)
"""The consumer groups MirrorMaker 2 checkpoints and whose offsets it syncs to the target."""
STATUS_INTERVAL_S = 0.1
KAFKA_DEADLINE_S = 60.0
"""A JVM's start-up on a loaded 2-core machine: several seconds each, several JVMs per sandbox."""


def kafka_dir(layout: Layout) -> Path:
    return layout.root / "kafka"


def s3_dir(layout: Layout) -> Path:
    return layout.root / "s3"


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


def set_flow(layout: Layout, state: State, kind: str, source: str, target: str, running: bool,
             start_offsets: dict | str | None = None, deadline_s: float = 15.0, why: str | None = None) -> str:
    """Start, stop or reverse a replication flow; returns once its worker has taken the change.
    Kafka's ``start_offsets``: per partition, or ``"earliest"`` (every record the source holds);
    None resumes the flow's own positions."""
    comp = "replicator" if kind == "kafka" else "s3-replication"
    if proc.running(layout.run_dir, comp) is None:
        raise SandboxError(f"the {comp} process is not running", component=comp, log=layout.log(comp))
    config = {"source": source, "target": target, "running": running}
    if kind == "kafka":
        config.update(topics=list(TOPICS), groups=list(GROUPS))
        if start_offsets:
            config["start_offsets"] = start_offsets
        config["why"] = why  # echoed in the status: a rerun that finds the flow running says why it started
    epoch = configure(layout, kind, **config)
    deadline_loop(deadline_s, f"the {comp} to take epoch {epoch}",
                  lambda: None if (status(layout, kind) or {}).get("epoch") == epoch
                  else "not yet", comp, layout.log(comp), comp, layout.run_dir)
    if kind == "kafka" and running:  # started = MirrorMaker 2's source task runs (a JVM: seconds)
        mm2 = kafka_cluster.MM2_COMPONENT

        def copying() -> str | None:
            st = status(layout, kind) or {}
            return None if st.get("epoch") == epoch and st.get("copying") else \
                (f"MirrorMaker 2's tasks: {st.get('tasks') or 'none running yet'}; its log: "
                 f"{layout.log(mm2)}: {proc.tail(layout.log(mm2), 2)}")
        # the supervisor's liveness and log (MirrorMaker 2 is its child; its log is in the problem)
        deadline_loop(max(deadline_s, KAFKA_DEADLINE_S), "MirrorMaker 2's source task", copying, comp,
                      layout.log(comp), comp, layout.run_dir)
    what = "Kafka topics" if kind == "kafka" else "S3 object versions"
    return f"{what} {'replicate' if running else 'no longer replicate'} {source} → {target}"
