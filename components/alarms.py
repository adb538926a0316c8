"""CloudWatch alarms and the KMS-encrypted SNS topic they notify, one set per region.

The thresholds derive from the declared objectives: replica lag and replicator latency alarm at
half the RPO, so someone hears of it while there is still time to act before the RPO is broken.

An alarm must not lie. RDS computes a PostgreSQL replica's `ReplicaLag` as
`now() - pg_last_xact_replay_timestamp()` (RDS User Guide, "Monitoring and tuning the replication
process"): it grows while the source commits nothing, and a quiet source shows a saw-tooth of up
to five minutes (issue 10; the figure is not in a page the search tool found) that a plain
"above half the RPO" alarm reports as lag every quiet night. The stacks run no writer that could
keep a heartbeat, so the replica-lag alarm needs the lag above the threshold in every one of
`IDLE_LAG_SECONDS` / 60 + 1 consecutive minutes, by the minute's *minimum*: the idle saw-tooth
drops to zero inside that window, a replica that has stopped or fallen behind does not. The price:
it fires about six minutes after the lag passed the threshold.

S3 replication has its own alarms (`ReplicationLatency`, `OperationsFailedReplication`; namespace
AWS/S3, dimensions SourceBucket, DestinationBucket, RuleId), created in the destination bucket's
region, where S3 publishes the replication metrics (S3 User Guide, "Using S3 Replication metrics").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import child, require, slug

TYPE = "regionpair:alarms:Alarms"
FREE_STORAGE_FRACTION = 0.10
IDLE_LAG_SECONDS = 300
"""How high a quiet source's ReplicaLag climbs before something writes (issue 10: up to five minutes)."""
S3_RTC_SECONDS = 15 * 60
"""S3 Replication Time Control's threshold: most objects in seconds, 99.99 % within 15 minutes."""
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
"""CloudWatch's TreatMissingData values (CloudWatch User Guide, "Configuring how CloudWatch alarms
treat missing data")."""
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
    datapoints_to_alarm: int | None = None
    """M of the N evaluation periods that must breach. Default: all of them."""


def replica_lag(identifier: str, rpo_seconds: int) -> AlarmSpec:
    threshold = max(1, rpo_seconds // 2)
    periods = IDLE_LAG_SECONDS // 60 + 1
    return AlarmSpec(
        name=f"{identifier}-replica-lag",
        description=f"Replica {identifier} has lagged more than {threshold} s (half the declared RPO of {rpo_seconds} s) "
                    f"through {periods} whole minutes, longer than a quiet source's lag saw-tooth ({IDLE_LAG_SECONDS} s): "
                    "replication is stalled or behind, not idle. A failover now would lose more than the objective allows.",
        namespace="AWS/RDS", metric_name="ReplicaLag", dimensions={"DBInstanceIdentifier": identifier},
        threshold=threshold, statistic="Minimum", evaluation_periods=periods, datapoints_to_alarm=periods)


def s3_replication_latency(name_prefix: str, source_bucket: pulumi.Input[str], destination_bucket: pulumi.Input[str],
                           rule_id: str, rpo_seconds: int) -> AlarmSpec:
    """Create it in the destination bucket's region (where S3 publishes the metric)."""
    threshold = min(S3_RTC_SECONDS, max(60, rpo_seconds // 2))
    return AlarmSpec(
        name=f"{name_prefix}-s3-{rule_id}-latency",
        description=f"S3 replication rule {rule_id} is more than {threshold} s behind (ReplicationLatency, 3 minutes "
                    f"running); the objects written since are not in DR yet. RTC promises 15 minutes.",
        namespace="AWS/S3", metric_name="ReplicationLatency",
        dimensions={"SourceBucket": source_bucket, "DestinationBucket": destination_bucket, "RuleId": rule_id},
        threshold=threshold, statistic="Maximum", evaluation_periods=3,
        # S3 publishes replication metrics only while something replicates: silence is a quiet bucket
        treat_missing_data="notBreaching")


def s3_replication_failures(name_prefix: str, source_bucket: pulumi.Input[str],
                            destination_bucket: pulumi.Input[str], rule_id: str) -> AlarmSpec:
    """Create it in the destination bucket's region (where S3 publishes the metric)."""
    return AlarmSpec(
        name=f"{name_prefix}-s3-{rule_id}-failed",
        description=f"S3 replication rule {rule_id} failed to replicate objects (OperationsFailedReplication); they "
                    "will not reach DR by themselves (permissions, keys, object lock): see the replication failure "
                    "reasons in the S3 User Guide and re-replicate them with S3 Batch Replication.",
        namespace="AWS/S3", metric_name="OperationsFailedReplication",
        dimensions={"SourceBucket": source_bucket, "DestinationBucket": destination_bucket, "RuleId": rule_id},
        threshold=0, statistic="Sum", evaluation_periods=1, treat_missing_data="notBreaching")


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
            require(TYPE, f"alarms[{a.name}].threshold", a.threshold,
                    a.threshold > 0 or (a.threshold == 0 and a.comparison == "GreaterThanThreshold"),
                    "a positive threshold (or 0 with GreaterThanThreshold: any occurrence)")
            require(TYPE, f"alarms[{a.name}].treat_missing_data", a.treat_missing_data,
                    a.treat_missing_data in TREAT_MISSING_DATA, " | ".join(TREAT_MISSING_DATA))
            require(TYPE, f"alarms[{a.name}].period_seconds", a.period_seconds,
                    a.period_seconds >= 60 and a.period_seconds % 60 == 0,
                    "60 or a multiple of 60: AWS metrics have one-minute resolution at best (10/20/30 are for "
                    "high-resolution custom metrics only)")
            limit = 86400 if a.period_seconds < 3600 else 604800
            require(TYPE, f"alarms[{a.name}].evaluation_periods", a.evaluation_periods,
                    1 <= a.evaluation_periods and a.period_seconds * a.evaluation_periods <= limit,
                    f"period × evaluation periods at most {limit} s (CloudWatch PutMetricAlarm)")
            if a.datapoints_to_alarm is not None:
                require(TYPE, f"alarms[{a.name}].datapoints_to_alarm", a.datapoints_to_alarm,
                        1 <= a.datapoints_to_alarm <= a.evaluation_periods, "1 to evaluation_periods")
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
                evaluation_periods=a.evaluation_periods, datapoints_to_alarm=a.datapoints_to_alarm,
                threshold=a.threshold, comparison_operator=a.comparison,
                treat_missing_data=a.treat_missing_data, alarm_actions=[topic.arn], ok_actions=[topic.arn], tags=tags),
                opts=child(self))
        self.topic_arn = topic.arn
        self.alarm_names = names
        self.register_outputs({"topic_arn": self.topic_arn})
