"""The runbooks' and drills' metrics in the Prometheus text format, in files they update (for
node_exporter's textfile collector), written and read through ``prometheus_client``: the file
is replaced atomically (``write_to_textfile``), never seen half-written.

Each run updates only its own series; the others in the file are kept, so one file holds the last
backup, verification, restore and lag of every database, whichever runbook wrote them last.

Planning document 004 ("Monitoring & Alerts", "Disaster Recovery Metrics") names the DR set;
here each carries the ``regionpair_`` prefix and a unit suffix (Prometheus naming), and the drill
series are labelled by scenario rather than by date (a label per drill date would add a series
per drill forever):

==========================================  =========================================  ======================
document 004                                 here                                       written by
==========================================  =========================================  ======================
backup_last_success_timestamp{component}     regionpair_backup_last_success_timestamp_   snapshot
                                             seconds{database,region,kind}
backup_size_bytes{component}                 regionpair_backup_size_bytes{database,      snapshot
                                             region,kind}
postgres_replication_lag_bytes               regionpair_postgres_replication_lag_bytes   failover, failback,
                                             {database,region}                           switchover, backups
kafka_mirrormaker_lag_seconds{source,target} regionpair_kafka_replication_lag_seconds    failover, failback,
                                             {source,target} (+ _records)                switchover
s3_replication_lag_seconds                   regionpair_s3_replication_lag_seconds       failover, failback,
                                             {source,target} (+ _objects)                switchover
dr_drill_last_run_timestamp                  regionpair_dr_drill_last_run_timestamp_     drill
                                             seconds{scenario,target}
dr_drill_success{drill_date}                 regionpair_dr_drill_success{scenario,       drill
                                             target}
dr_failover_time_seconds{drill_date}         regionpair_dr_failover_time_seconds         failover, failback,
                                             {runbook,scenario,target}                   switchover, drill
==========================================  =========================================  ======================

monitoring/alerts.yml holds the alert rules on them; monitoring/alerts_test.yml their unit tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    """Prometheus-style name, e.g. ``regionpair_backup_last_success_timestamp_seconds``."""
    value: float
    labels: dict[str, str]
    help: str
    unit: str = "None"
    """CloudWatch unit (Seconds, Count, None)."""


class Metrics(Protocol):
    """The remote metrics port (the adapters' ``metrics``)."""

    def put(self, samples: list[Sample]) -> str:
        """Publish samples (CloudWatch PutMetricData in AWS; nothing more on the sandbox)."""


class NoMetrics:
    def put(self, samples: list[Sample]) -> str:
        return "no remote metrics on this target (the Prometheus file has them)"


LAST_BACKUP = "regionpair_backup_last_success_timestamp_seconds"
BACKUP_SIZE = "regionpair_backup_size_bytes"
VERIFY_OK = "regionpair_backup_verification_success"
VERIFY_SECONDS = "regionpair_backup_verification_duration_seconds"
VERIFY_AT = "regionpair_backup_verification_timestamp_seconds"
RESTORE_SECONDS = "regionpair_restore_duration_seconds"
REPLICATION_LAG = "regionpair_replication_lag_seconds"
RETENTION_DELETED = "regionpair_retention_deleted_backups"
RETENTION_KEPT = "regionpair_retention_kept_backups"
RETENTION_OLDEST = "regionpair_retention_oldest_backup_age_seconds"
RETENTION_AT = "regionpair_retention_last_success_timestamp_seconds"
PG_LAG_BYTES = "regionpair_postgres_replication_lag_bytes"
KAFKA_LAG_SECONDS = "regionpair_kafka_replication_lag_seconds"
KAFKA_LAG_RECORDS = "regionpair_kafka_replication_lag_records"
S3_LAG_SECONDS = "regionpair_s3_replication_lag_seconds"
S3_LAG_OBJECTS = "regionpair_s3_replication_lag_objects"
DRILL_LAST_RUN = "regionpair_dr_drill_last_run_timestamp_seconds"
DRILL_SUCCESS = "regionpair_dr_drill_success"
FAILOVER_SECONDS = "regionpair_dr_failover_time_seconds"
SLOT_BACKUP_AT = "regionpair_slot_backup_last_success_timestamp_seconds"
SLOT_COUNT = "regionpair_slot_backup_slots"
SLOT_LAG_BYTES = "regionpair_slot_consumer_lag_bytes"
SLOT_GAP_BYTES = "regionpair_slot_recreate_gap_bytes"
CACHE_SNAPSHOT_AT = "regionpair_cache_snapshot_last_success_timestamp_seconds"
CACHE_SNAPSHOT_KEYS = "regionpair_cache_snapshot_keys"
CACHE_VERIFY_OK = "regionpair_cache_verification_success"
CACHE_RESTORE_SECONDS = "regionpair_cache_restore_duration_seconds"
KAFKA_REPLAY_RECORDS = "regionpair_kafka_replay_records"
KAFKA_REPLAY_SECONDS = "regionpair_kafka_replay_duration_seconds"
KAFKA_REPLAY_EXACT = "regionpair_kafka_replay_exact"
KAFKA_OFFSETS_SNAPSHOT_AT = "regionpair_kafka_offsets_snapshot_timestamp_seconds"
CONFIG_RESTORE_SECONDS = "regionpair_k8s_config_restore_duration_seconds"

HELP = {
    RETENTION_DELETED: "Backups of the database in the region that the newest retention run deleted, per tier.",
    RETENTION_KEPT: "Backups of the database in the region that the newest retention run kept, per tier.",
    RETENTION_OLDEST: "Age of the oldest backup of the tier the newest retention run kept (compliance: may pass "
                      "its period; the runbook never deletes it).",
    RETENTION_AT: "Time the newest retention run of the database ended.",
    LAST_BACKUP: "Time of the newest successful backup (snapshot or copy) of the database in the region.",
    BACKUP_SIZE: "Size of the newest successful backup of the database in the region (AWS: the snapshot's "
                 "allocated storage).",
    VERIFY_OK: "1 if the newest backup verification of the database passed, 0 if it failed.",
    VERIFY_SECONDS: "Duration of the newest backup verification (restore, checks, teardown).",
    VERIFY_AT: "Time the newest backup verification ended.",
    RESTORE_SECONDS: "Duration of the newest restore of the database to a new instance.",
    REPLICATION_LAG: "Replication lag of the database's replica, as measured by the newest backup runbook run.",
    PG_LAG_BYTES: "WAL bytes the database's replica in the region had not replayed, as the newest runbook run "
                  "measured them.",
    KAFKA_LAG_SECONDS: "Age of the oldest Kafka record not yet replicated from source to target.",
    KAFKA_LAG_RECORDS: "Kafka records not yet replicated from source to target.",
    S3_LAG_SECONDS: "Age of the oldest object version not yet replicated from the source bucket to the target.",
    S3_LAG_OBJECTS: "Object versions pending replication from the source bucket to the target.",
    DRILL_LAST_RUN: "Time the newest DR drill of the scenario ended.",
    DRILL_SUCCESS: "1 if the newest DR drill of the scenario passed, 0 if it failed.",
    FAILOVER_SECONDS: "Measured RTO of the newest failover, failback or switchover (a drill: the service RTO its "
                      "clients saw).",
    SLOT_BACKUP_AT: "Time of the newest backup of the database's logical replication slot definitions.",
    SLOT_COUNT: "Logical replication slots in the newest slot backup of the database.",
    SLOT_LAG_BYTES: "WAL between the primary's position and what the slot's consumer confirmed, at the newest slot "
                    "backup: at least this much a failover makes the consumer re-read.",
    CACHE_SNAPSHOT_AT: "Time of the newest manual snapshot (kind manual) or export (kind export) of the cache.",
    CACHE_SNAPSHOT_KEYS: "Keys in the newest manual snapshot of the cache.",
    CACHE_VERIFY_OK: "1 if the newest restore of the cache's snapshot held exactly its keys (digest equal), else 0.",
    CACHE_RESTORE_SECONDS: "Duration of the newest restore of the cache's snapshot into a new server.",
    KAFKA_REPLAY_RECORDS: "Records the newest replay of a topic's backup wrote into its target topic.",
    KAFKA_REPLAY_SECONDS: "Duration of the newest replay of a topic's backup (producing until every record was acknowledged).",
    KAFKA_REPLAY_EXACT: "1 if the newest replay landed exactly the backup's records of the range (no missing, no extra), else 0.",
    KAFKA_OFFSETS_SNAPSHOT_AT: "Time of the newest consumer-group offset snapshot kept in the backups bucket.",
    CONFIG_RESTORE_SECONDS: "Duration of the newest Kubernetes configuration restore from the region's export "
                            "(apply, restarts, rollouts).",
    SLOT_GAP_BYTES: "WAL between the consumer's confirmed position and where the recreated slot starts: what the "
                    "consumer must re-read (negative: what it saw that the new server lacks).",
}

Series = dict[str, dict[tuple, float]]


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def read(path: Path) -> Series:
    """The series in a file: name → {labels: value}, parsed by prometheus_client."""
    series: Series = {}
    p = Path(path)
    if not p.exists():
        return series
    for family in text_string_to_metric_families(p.read_text()):
        for s in family.samples:
            series.setdefault(s.name, {})[_key(s.labels)] = float(s.value)
    return series


class _Snapshot:
    """A collector of fixed series (what the file will hold), for ``write_to_textfile``."""

    def __init__(self, series: Series):
        self.series = series

    def collect(self):
        for name in sorted(self.series):
            m = Metric(name, HELP.get(name, name), "gauge")
            for labels, value in sorted(self.series[name].items()):
                m.add_sample(name, dict(labels), value)
            yield m


def render(series: Series) -> str:
    from prometheus_client import generate_latest
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(series))
    return generate_latest(registry).decode()


def update(path: Path, samples: list[Sample]) -> Path:
    """Merge ``samples`` into the file and replace it atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series = read(path)
    for s in samples:
        series.setdefault(s.name, {})[_key(s.labels)] = float(s.value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(series))
    write_to_textfile(str(path), registry)
    os.chmod(path, 0o644)
    return path


def sample(name: str, value: float, labels: dict[str, str], unit: str = "None") -> Sample:
    """A sample of one of the series above, with its help (CloudWatch unit: Seconds, Bytes, Count, None)."""
    return Sample(name, float(value), {k: str(v) for k, v in labels.items()}, HELP[name], unit)
