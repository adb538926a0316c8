"""What the Kafka (MSK) and S3 replication adapters share: their settings, the CloudWatch
reader of the newest lag datapoint, the base that holds both with the SSM client parameters, and
the rule for when a zero lag counts after the clients were paused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, fail, utc_now
from runbooks.adapters.aws.ssm_parameters import Parameters
from runbooks.core.clock import Clock

DEFAULT_REFRESH_S = 30


@dataclass(frozen=True)
class StreamSettings:
    metric_window: float = 600.0
    """Seconds of CloudWatch history read for a lag (the newest datapoint in it counts)."""
    metric_max_age: float = 300.0
    """A lag datapoint older than this is not the current lag while the source answers."""
    pending_sample: int = 20
    """S3: at most this many of the newest source versions are asked for their replication status."""
    pending_list_max: int = 1000
    """S3: versions listed (one page) to find the newest; the sample is of these, in key order."""
    pending_refresh: float = 30.0
    """S3: seconds between two samples of pending keys (the drain polls often)."""
    seed_job_priority: int = 10
    """S3 Batch Replication: the job's priority among the account's Batch Operations jobs in the region."""
    seed_job_list_pages: int = 10
    """S3 Batch Replication: at most this many ListJobs pages (1000 jobs each) are read to find a run's job."""


class Metrics:
    """CloudWatch GetMetricData: the newest datapoint of each query in the window."""

    def __init__(self, clients: Clients, clock: Clock, settings: StreamSettings):
        self.clients = clients
        self.clock = clock
        self.settings = settings

    def newest(self, region: str, namespace: str, dimensions: dict[str, str],
               stats: dict[str, tuple[str, str]], what: str) -> dict[str, tuple[datetime, float] | None]:
        """``stats``: query id → (metric name, statistic). Returns id → (period start, value) or None."""
        now = utc_now(self.clock)
        dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
        queries = [{"Id": qid, "ReturnData": True,
                    "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
                                   "Period": 60, "Stat": stat}} for qid, (name, stat) in stats.items()]
        try:
            answer = self.clients.call("cloudwatch", region, "get_metric_data", MetricDataQueries=queries,
                                       StartTime=now - timedelta(seconds=self.settings.metric_window), EndTime=now,
                                       ScanBy="TimestampDescending")
        except ClientError as exc:
            raise fail(exc, f"read {what} in {region}") from exc
        out: dict[str, tuple[datetime, float] | None] = {qid: None for qid in stats}
        for result in answer.get("MetricDataResults") or []:
            points = sorted(zip(result.get("Timestamps") or [], result.get("Values") or []), reverse=True)
            if points and result.get("Id") in out:
                out[result["Id"]] = points[0]
        return out


def after_pause(point: tuple[datetime, float] | None, paused_at: float | None, refresh: float) -> bool:
    """Is this datapoint's period wholly after every client had seen the pause?"""
    return paused_at is None or (point is not None and point[0].timestamp() >= paused_at + refresh)


class FlowPort:
    """What both stream adapters read through: the outputs, CloudWatch metrics, SSM parameters."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, settings: StreamSettings | None = None):
        self.outputs = outputs
        self.clients = clients
        self.clock = clock
        self.settings = settings or StreamSettings()
        self.metrics = Metrics(clients, clock, self.settings)
        self.params = Parameters(outputs, clients)

    def _refresh(self) -> float:
        values = [r.streaming.client_refresh_seconds for r in self.outputs.regions.values()
                  if r.streaming is not None and r.streaming.client_refresh_seconds is not None]
        return float(max(values) if values else DEFAULT_REFRESH_S)
