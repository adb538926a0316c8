"""The DR metrics of planning document 004 that the region-pair runbooks and the drills emit
(names and labels: runbooks/core/metrics.py): into a Prometheus textfile-collector file (through
``prometheus_client``) and, where the adapter has one, the remote metrics port (AWS: CloudWatch,
namespace ``RegionPair/DR``, in the DR region).

What a run measured is what it emits: replication lag as its gates saw it (a resumed run that
skips its gates emits none), the failover time as its report measured it. Publishing never fails
a run: a remote that does not answer is a note in the report."""

from __future__ import annotations

from pathlib import Path

from runbooks.core import metrics as prom
from runbooks.core.errors import RunbookError
from runbooks.core.metrics import Sample

FILE_NAME = "regionpair_dr.prom"


def runbook_samples(runbook: str, rep: dict, measurements: dict, target_kind: str, dr_region: str) -> list[Sample]:
    """A failover's, failback's or switchover's samples: its RTO (when it did something) and the
    replication lag its gates measured."""
    out: list[Sample] = []
    if rep.get("rto_seconds") is not None:
        out.append(prom.sample(prom.FAILOVER_SECONDS, rep["rto_seconds"],
                               {"runbook": runbook, "scenario": runbook, "target": target_kind}, "Seconds"))
    for db, m in (measurements.get("rpo_estimate") or {}).items():
        if m.get("lag_bytes") is not None:
            out.append(prom.sample(prom.PG_LAG_BYTES, m["lag_bytes"], {"database": db, "region": dr_region}, "Bytes"))
    for gate, m in (measurements.get("streams_at_gate") or {}).items():
        names = {"kafka-replicator": (prom.KAFKA_LAG_SECONDS, prom.KAFKA_LAG_RECORDS),
                 "s3-replication": (prom.S3_LAG_SECONDS, prom.S3_LAG_OBJECTS)}.get(gate)
        if names is None or not m.get("running"):
            continue
        labels = {"source": m.get("source") or "?", "target": m.get("target") or "?"}
        if m.get("lag_seconds") is not None:
            out.append(prom.sample(names[0], m["lag_seconds"], labels, "Seconds"))
        if m.get("lag_records") is not None:
            out.append(prom.sample(names[1], m["lag_records"], labels, "Count"))
    return out


def drill_samples(result: dict, ended_at: float, target_kind: str = "sandbox") -> list[Sample]:
    """A drill's samples: when it ran, whether it passed, and the service RTO its clients saw."""
    labels = {"scenario": str(result.get("scenario")), "target": target_kind}
    out = [prom.sample(prom.DRILL_LAST_RUN, ended_at, labels, "Seconds"),
           prom.sample(prom.DRILL_SUCCESS, 1.0 if result.get("passed") else 0.0, labels, "Count")]
    if result.get("rto_seconds") is not None:
        out.append(prom.sample(prom.FAILOVER_SECONDS, result["rto_seconds"],
                               {"runbook": "drill", **labels}, "Seconds"))
    return out


def publish(path: Path, samples: list[Sample], remote=None) -> list[str]:
    """Write the samples into the file (merged with what it holds) and to ``remote``; returns notes."""
    if not samples:
        return []
    prom.update(path, samples)
    notes = [f"metrics: {len(samples)} sample(s) in {path}"]
    if remote is not None:
        try:
            notes.append(f"metrics: {remote.put(samples)}")
        except RunbookError as exc:
            notes.append(f"metrics not published remotely: {exc}")
    return notes
