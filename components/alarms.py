"""CloudWatch alarms and the KMS-encrypted SNS topic they notify, one set per region.

The thresholds derive from the declared objectives: replica lag and replicator latency alarm at
half the RPO, so someone hears of it while there is still time to act before the RPO is broken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components._common import child, require, slug

TYPE = "regionpair:alarms:Alarms"
FREE_STORAGE_FRACTION = 0.10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    """Alarm name (unique in the region). Required."""
    description: str
    """What it means and what to do. Required."""
    namespace: str
    """CloudWatch namespace. Required."""
    metric_name: str
    """Metric. Required."""
    dimensions: Mapping[str, pulumi.Input[str]]
    """Metric dimensions. Required."""
    threshold: float
    """Threshold. Required."""
    comparison: str = "GreaterThanThreshold"
    """Comparison operator. Default: GreaterThanThreshold."""
    statistic: str = "Maximum"
    """Statistic. Default: Maximum."""
    period_seconds: int = 60
    """Period. Default: 60 s."""
    evaluation_periods: int = 3
    """Periods that must breach. Default: 3."""
    treat_missing_data: str = "breaching"
    """Missing data counts as a breach. Default: breaching (silence from a replica is bad news)."""


def replica_lag(identifier: str, rpo_seconds: int) -> AlarmSpec:
    threshold = max(1, rpo_seconds // 2)
    return AlarmSpec(
        name=f"{identifier}-replica-lag",
        description=f"Replica {identifier} lags more than {threshold} s, half the declared RPO of {rpo_seconds} s. "
                    "A failover now would lose more than the objective allows once it doubles.",
        namespace="AWS/RDS", metric_name="ReplicaLag", dimensions={"DBInstanceIdentifier": identifier},
        threshold=threshold)


def replicator_lag(replicator_name: str, rpo_seconds: int) -> AlarmSpec:
    threshold_ms = max(1, rpo_seconds // 2) * 1000
    return AlarmSpec(
        name=f"{replicator_name}-latency",
        description=f"MSK Replicator {replicator_name} is more than {threshold_ms // 1000} s behind, half the declared "
                    f"RPO of {rpo_seconds} s.",
        namespace="AWS/Kafka", metric_name="ReplicationLatency", dimensions={"ReplicatorName": replicator_name},
        threshold=threshold_ms)


def replicator_failure(replicator_name: str) -> AlarmSpec:
    """MSK Developer Guide, MSK Replicator "Metrics reference": ReplicatorFailure, "number of failures
    that the replicator is experiencing", dimension ReplicatorName, unit Count, aggregated with Sum,
    in AWS/Kafka of the target's region. A quiet replicator publishes no failures: missing data is
    not a breach here (the latency alarm is the one that hears silence)."""
    return AlarmSpec(
        name=f"{replicator_name}-failure",
        description=f"MSK Replicator {replicator_name} reports failures (ReplicatorFailure > 0 for 5 minutes): "
                    "replication to DR may have stopped. Check its AuthError and KafkaClusterPingSuccessCount "
                    "metrics, the service execution role and the source cluster's policy.",
        namespace="AWS/Kafka", metric_name="ReplicatorFailure", dimensions={"ReplicatorName": replicator_name},
        threshold=0, comparison="GreaterThanThreshold", statistic="Sum", period_seconds=60, evaluation_periods=5,
        treat_missing_data="notBreaching")


def free_storage(identifier: str, allocated_gb: int) -> AlarmSpec:
    threshold = int(allocated_gb * FREE_STORAGE_FRACTION * 1024 ** 3)
    return AlarmSpec(
        name=f"{identifier}-free-storage",
        description=f"{identifier} has less than {int(FREE_STORAGE_FRACTION * 100)}% of its {allocated_gb} GiB free; "
                    "a full disk stops writes and replication.",
        namespace="AWS/RDS", metric_name="FreeStorageSpace", dimensions={"DBInstanceIdentifier": identifier},
        threshold=threshold, comparison="LessThanThreshold", statistic="Minimum", period_seconds=300,
        evaluation_periods=1)


@dataclass(frozen=True)
class AlarmsArgs:
    topic_name: str
    """SNS topic name. Required."""
    kms_key_arn: pulumi.Input[str]
    """Customer key of the topic (its policy lets CloudWatch use it). Required."""
    alarms: Sequence[AlarmSpec] = ()
    """The alarms. Default: none (just the topic)."""
    email: str | None = None
    """Subscribe this address (it must confirm). Default: no subscription."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


class Alarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    alarm_names: list[str]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None):
        require(TYPE, "topic_name", args.topic_name, bool(re.match(r"^[A-Za-z0-9_-]{1,256}$", args.topic_name)),
                "letters, digits, _ and -")
        if args.email is not None:
            require(TYPE, "email", args.email, bool(_EMAIL.match(args.email)), "an e-mail address")
        names = [a.name for a in args.alarms]
        require(TYPE, "alarms", names, len(names) == len(set(names)), "alarm names must be unique")
        for a in args.alarms:
            # a count alarm fires on the first failure (> 0); anything else needs a positive threshold
            require(TYPE, f"alarms[{a.name}].threshold", a.threshold,
                    a.threshold > 0 or (a.threshold == 0 and a.comparison == "GreaterThanThreshold"),
                    "a positive threshold (or 0 with GreaterThanThreshold, for a count of failures)")
        super().__init__(TYPE, name, None, opts)
        tags = dict(args.tags)

        topic = aws.sns.Topic(f"{name}-topic", aws.sns.TopicArgs(
            name=args.topic_name, kms_master_key_id=args.kms_key_arn, tags=tags), opts=child(self))
        if args.email is not None:
            aws.sns.TopicSubscription(f"{name}-email", aws.sns.TopicSubscriptionArgs(
                topic=topic.arn, protocol="email", endpoint=args.email), opts=child(self))
        for a in args.alarms:
            aws.cloudwatch.MetricAlarm(f"{name}-{slug(a.name)}", aws.cloudwatch.MetricAlarmArgs(
                name=a.name, alarm_description=a.description, namespace=a.namespace, metric_name=a.metric_name,
                dimensions=dict(a.dimensions), statistic=a.statistic, period=a.period_seconds,
                evaluation_periods=a.evaluation_periods, threshold=a.threshold, comparison_operator=a.comparison,
                treat_missing_data=a.treat_missing_data, alarm_actions=[topic.arn], ok_actions=[topic.arn], tags=tags),
                opts=child(self))
        self.topic_arn = topic.arn
        self.alarm_names = names
        self.register_outputs({"topic_arn": self.topic_arn})
