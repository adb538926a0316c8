"""The Metrics port on CloudWatch: PutMetricData in the DR region (the one that answers when the
primary does not).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import Clients, fail


class CloudWatchMetrics:
    """Metrics port on CloudWatch (namespace ``RegionPair/Backups``), in the DR region: it is the one
    that is up when the primary is not."""

    NAMESPACE = "RegionPair/Backups"
    DR_NAMESPACE = "RegionPair/DR"
    """The DR runbooks' and drills' metrics (replication lag, failover time, drills)."""

    def __init__(self, outputs: Outputs, clients: Clients, namespace: str = NAMESPACE):
        self.outputs = outputs
        self.clients = clients
        self.namespace = namespace

    def put(self, samples: list) -> str:
        region = self.outputs.secondary.name
        data = [{"MetricName": s.name, "Value": float(s.value), "Unit": s.unit,
                 "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(s.labels.items())][:30]}
                for s in samples]
        for i in range(0, len(data), 500):  # PutMetricData takes at most 1000 datums per call
            try:
                self.clients.call("cloudwatch", region, "put_metric_data", Namespace=self.namespace,
                                  MetricData=data[i:i + 500])
            except ClientError as exc:
                raise fail(exc, f"publish {len(data)} metrics to CloudWatch {self.namespace} in {region}") from exc
        return f"{len(data)} metric(s) published to CloudWatch {self.namespace} in {region}"
