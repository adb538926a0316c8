"""The AWS adapters of the Streaming and ObjectStore ports: MSK + MSK Replicator, S3 replication,
SSM parameters for the clients, CloudWatch for the lag.

Imported by ``runbooks.adapters.aws`` (lazily, in ``aws_ports``) and built on its ``Clients``:
the same short timeouts, ``Unreachable`` for a region that does not answer, ``AwsCallFailed``
naming the IAM action for a refusal. Nothing runs at import time. docs/aws-adapters.md says what
each call means and what it cannot know; the short version:

- **Stopping the MSK Replicator.** MSK has no pause. The runbooks stop a flow with
  ``UpdateReplicationInfo``: topics ``.*`` and consumer groups ``.*`` are added to the exclusions
  (the replicator stays, owned by the dr stack), and the exclusions it had before are kept in a
  tag of the replicator (``regionpair:excludes-before-stop``) to restore on ``start_flow``. The
  replicator is never deleted here.
- **Reversing.** The dr stack owns a primary → DR replicator only. A DR → primary flow needs a
  replicator into the primary region that the stacks create (``streaming.replicator_arn`` of the
  primary region); without one, ``start_flow`` fails and says how to create it. S3 replication is
  reversed by a configuration on the DR bucket, with the forward configuration's role.
- **Seeding a failback's home bucket.** S3 replication copies only versions written after its
  rule is enabled; the versions DR took before the reverse rule are copied by an S3 Batch
  Replication job (S3 Batch Operations, operation ``S3ReplicateObject``, manifest generated from
  DR's bucket) that ``start_seeding`` creates with the role the dr stack exports
  (``storage.batch_replication``) and ``seed_job`` reads. The job is found again by the run's
  token (``ListJobs``, and CreateJob's ``ClientRequestToken``), so a rerun never starts a second one.
- **Lag** comes from CloudWatch metrics (1-minute periods, minutes late). While clients are
  paused, a zero counts only from a period that started after every client had re-read its
  parameter (``PAUSED``'s LastModifiedDate + ``client_refresh_seconds``): an earlier zero says
  nothing about the last records written before the pause.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from runbooks.adapters.aws import Clients, _region_of_arn, error_code, fail
from runbooks.clock import Clock
from runbooks.errors import BadInput, StepFailed, Unreachable
from runbooks.ports import PAUSED, FlowState, GroupOffsets, SeedJob, Seeding
from contract.outputs import STOP_PATTERN, BatchReplication, Outputs

log = logging.getLogger(__name__)

EXCLUDES_TAG = "regionpair:excludes-before-stop"
"""Replicator tag: the exclusions it had before the runbooks stopped it (JSON), restored on start."""
TAG_VALUE_MAX = 256
REPLICATION_RULE_ID = "primary-to-dr"
"""The rule id the storage component gives the forward S3 replication rule."""
REVERSE_RULE_ID = "regionpair-failback"
"""The rule id of the reverse (DR → primary) rule the runbooks put on the DR bucket."""
DEFAULT_REFRESH_S = 30
SEED_OPERATION = "S3ReplicateObject"
SEED_STATUSES = ("NONE", "FAILED", "REPLICA")
"""The replication statuses a seeding job's generated manifest takes: never replicated (written
while no rule copied them), failed, and replicas (DR's copies of the primary's own versions, all
of which a home bucket recreated empty lacks). COMPLETED versions are already home."""
_JOB_ENDED_BADLY = ("Failed", "Cancelled")
_REACHABLE_CLUSTER_STATES = ("ACTIVE", "UPDATING", "MAINTENANCE", "HEALING", "REBOOTING_BROKER")


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


def _utc(clients_clock: Clock) -> datetime:
    return datetime.fromtimestamp(clients_clock.time(), timezone.utc)


def _age(now: datetime, ts: datetime | None) -> float | None:
    return None if ts is None else (now - ts).total_seconds()


class Metrics:
    """CloudWatch GetMetricData: the newest datapoint of each query in the window."""

    def __init__(self, clients: Clients, clock: Clock, settings: StreamSettings):
        self.clients = clients
        self.clock = clock
        self.settings = settings

    def newest(self, region: str, namespace: str, dimensions: dict[str, str],
               stats: dict[str, tuple[str, str]], what: str) -> dict[str, tuple[datetime, float] | None]:
        """``stats``: query id → (metric name, statistic). Returns id → (period start, value) or None."""
        now = _utc(self.clock)
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


class Parameters:
    """The SSM parameters clients read, in every region that holds them (the outputs say which:
    a region whose streaming/storage names the parameter; none named → every region)."""

    def __init__(self, outputs: Outputs, clients: Clients):
        self.outputs = outputs
        self.clients = clients

    def regions_of(self, parameter: str) -> list[str]:
        holding = []
        for r in self.outputs.regions.values():
            names = set()
            if r.streaming is not None:
                names |= set(r.streaming.client_parameters) | {r.streaming.bootstrap_parameter}
            if r.storage is not None:
                names.add(r.storage.writer_parameter)
            if parameter in names:
                holding.append(r.name)
        return holding or list(self.outputs.regions)

    def read_all(self, parameter: str) -> dict[str, tuple[str | None, datetime | None]]:
        """Region → (value, LastModifiedDate) for every holding region that answers (None: no such parameter)."""
        found: dict[str, tuple[str | None, datetime | None]] = {}
        for region in self.regions_of(parameter):
            try:
                p = self.clients.call("ssm", region, "get_parameter", Name=parameter)["Parameter"]
            except Unreachable:
                continue
            except ClientError as exc:
                if error_code(exc) == "ParameterNotFound":
                    found[region] = (None, None)
                    continue
                raise fail(exc, f"read parameter {parameter} in {region}") from exc
            found[region] = (p.get("Value"), p.get("LastModifiedDate"))
        return found

    def read(self, parameter: str) -> str | None:
        found = self.read_all(parameter)
        if not found:
            raise Unreachable(f"SSM answers in none of {', '.join(self.regions_of(parameter))}: cannot read {parameter}")
        values = {v for v, _ in found.values()}
        if len(values) == 1:
            return values.pop()
        # clients are split between values: say so (never equal to a value a step wants)
        return "differs by region: " + ", ".join(f"{r}={v}" for r, (v, _) in sorted(found.items()))

    def write(self, parameter: str, value: str) -> str:
        written, missed = [], []
        for region in self.regions_of(parameter):
            try:
                self.clients.call("ssm", region, "put_parameter", Name=parameter, Value=value, Type="String",
                                  Overwrite=True)
            except Unreachable as exc:
                missed.append(f"{region} ({exc})")
                continue
            except ClientError as exc:
                raise fail(exc, f"set parameter {parameter} in {region}") from exc
            written.append(region)
        if not written:
            raise Unreachable(f"SSM answers in none of {', '.join(self.regions_of(parameter))}: {parameter} unchanged")
        result = f"{parameter} = {value} in {', '.join(written)}"
        if missed:
            result += (f"; NOT written in {'; '.join(missed)}: clients there keep the old value until a rerun "
                       "writes it (the step's check will find it different)")
        return result

    def paused_since(self, parameters: list[str]) -> float | None:
        """Epoch seconds of the latest switch to PAUSED among these parameters (None: none paused)."""
        latest = None
        for parameter in parameters:
            for value, modified in self.read_all(parameter).values():
                if value == PAUSED and modified is not None:
                    t = modified.timestamp()
                    latest = t if latest is None else max(latest, t)
        return latest


def _after_pause(point: tuple[datetime, float] | None, paused_at: float | None, refresh: float) -> bool:
    """Is this datapoint's period wholly after every client had seen the pause?"""
    return paused_at is None or (point is not None and point[0].timestamp() >= paused_at + refresh)


# --------------------------------------------------------------------------------------------
# Streaming on MSK
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Replicator:
    arn: str
    region: str
    name: str
    state: str
    source: str | None
    target: str | None
    stopped: bool
    """Our stop pattern is excluded (topics): the runbooks stopped it."""
    info: dict
    version: str
    tags: dict
    state_message: str = ""


class _StreamPort:
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


class MskStreaming(_StreamPort):
    """Kafka on MSK, the MSK Replicator(s) named in the outputs, and the SSM client parameters."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, settings: StreamSettings | None = None):
        super().__init__(outputs, clients, clock, settings)
        self._bootstrap: dict[str, str] = {}
        self._lock = threading.Lock()

    # ---- reading ---------------------------------------------------------------------------

    def _region_of_cluster(self, cluster_arn: str | None) -> str | None:
        for r in self.outputs.regions.values():
            if r.streaming is not None and r.streaming.cluster_arn == cluster_arn:
                return r.name
        return _region_of_arn(cluster_arn)

    def _replicator_arns(self) -> list[tuple[str, str]]:
        """(region it copies into, ARN) for every replicator the outputs name: the one into DR, and
        the failback's into the primary when the dr stack declares it (``failback_replication``).
        A replicator lives in the region it copies into, which is its ARN's region."""
        out = []
        for r in self.outputs.regions.values():
            if r.streaming is None:
                continue
            if r.streaming.replicator_arn:
                out.append((r.name, r.streaming.replicator_arn))
            if r.streaming.failback_replicator_arn:
                arn = r.streaming.failback_replicator_arn
                into = _region_of_arn(arn) or next((o for o in self.outputs.regions if o != r.name), r.name)
                out.append((into, arn))
        return out

    def _describe(self, arn: str) -> _Replicator | None:
        region = _region_of_arn(arn) or ""
        try:
            d = self.clients.call("kafka", region, "describe_replicator", ReplicatorArn=arn)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise fail(exc, f"describe MSK Replicator {arn}") from exc
        infos = d.get("ReplicationInfoList") or []
        if len(infos) != 1:
            raise StepFailed(f"MSK Replicator {arn} has {len(infos)} replication infos; the runbooks handle one "
                             "source → target pair per replicator")
        info = infos[0]
        aliases = {c.get("KafkaClusterAlias"): (c.get("AmazonMskCluster") or {}).get("MskClusterArn")
                   for c in d.get("KafkaClusters") or []}
        source = self._region_of_cluster(aliases.get(info.get("SourceKafkaClusterAlias")))
        target = self._region_of_cluster(aliases.get(info.get("TargetKafkaClusterAlias")))
        excluded = (info.get("TopicReplication") or {}).get("TopicsToExclude") or []
        return _Replicator(arn, region, d.get("ReplicatorName") or arn.rsplit("/", 2)[-2], d.get("ReplicatorState", ""),
                           source, target, STOP_PATTERN in excluded, info, d.get("CurrentVersion", ""),
                           dict(d.get("Tags") or {}), (d.get("StateInfo") or {}).get("Message") or "")

    def _replicators(self) -> tuple[list[_Replicator], list[str]]:
        found, unknown = [], []
        for region, arn in self._replicator_arns():
            try:
                rep = self._describe(arn)
            except Unreachable as exc:
                unknown.append(f"{arn}: {exc}")
                continue
            if rep is None:
                unknown.append(f"{arn}: no such replicator")
            else:
                found.append(rep)
        return found, unknown

    @staticmethod
    def _running(rep: _Replicator) -> bool:
        return rep.state in ("RUNNING", "UPDATING") and not rep.stopped

    def _source_reachable(self, region: str | None) -> bool | None:
        r = self.outputs.regions.get(region or "")
        if r is None or r.streaming is None:
            return None
        try:
            info = self.clients.call("kafka", r.name, "describe_cluster_v2", ClusterArn=r.streaming.cluster_arn)
        except Unreachable:
            return False
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return False
            raise fail(exc, f"describe MSK cluster {r.streaming.cluster_arn}") from exc
        return (info.get("ClusterInfo") or {}).get("State") in _REACHABLE_CLUSTER_STATES

    def _client_parameters(self) -> list[str]:
        names: list[str] = []
        for r in self.outputs.regions.values():
            if r.streaming is not None:
                for p in r.streaming.client_parameters or (r.streaming.bootstrap_parameter,):
                    if p and p not in names:
                        names.append(p)
        return names

    def flow(self) -> FlowState:
        reps, unknown = self._replicators()
        if not reps:
            if unknown:
                raise Unreachable("no MSK Replicator could be described: " + "; ".join(unknown))
            raise BadInput("stack outputs name no MSK Replicator (streaming.replicator_arn); the dr stack exports it")
        running = [r for r in reps if self._running(r)]
        rep = running[0] if running else reps[0]
        notes = [f"{rep.name} is {rep.state}" + (" with every topic excluded (stopped by the runbooks)"
                                                  if rep.stopped else "")]
        if rep.state_message:
            notes.append(rep.state_message)
        if len(running) > 1:
            notes.append("also running: " + ", ".join(f"{r.name} ({r.source} → {r.target})" for r in running[1:]))
        notes += [f"unknown: {u}" for u in unknown]
        if not running:
            return FlowState(rep.source, rep.target, False, detail="; ".join(notes))
        reachable = self._source_reachable(rep.source)
        m = self.metrics.newest(rep.region, "AWS/Kafka", {"ReplicatorName": rep.name},
                                {"latency": ("ReplicationLatency", "Maximum"), "lag": ("MessageLag", "Sum")},
                                f"the lag of MSK Replicator {rep.name}")
        now = _utc(self.clock)
        latency, lag = m["latency"], m["lag"]
        age = _age(now, latency[0] if latency else None)
        lag_seconds = None if latency is None else latency[1] / 1000.0
        if lag_seconds is not None and reachable and age is not None and age > self.settings.metric_max_age:
            notes.append(f"newest ReplicationLatency is {age:.0f} s old: lag unknown")
            lag_seconds = None
        elif latency is not None:
            notes.append(f"ReplicationLatency {latency[1]:.0f} ms at {latency[0]:%H:%M:%S}Z ({age:.0f} s ago)")
        lag_records = None if lag is None else int(lag[1])
        paused_at = self.params.paused_since(self._client_parameters())
        if lag_records == 0 and not _after_pause(lag, paused_at, self._refresh()):
            notes.append("clients were paused after the newest MessageLag period began: waiting for a later one")
            lag_records = None
        return FlowState(rep.source, rep.target, True, lag_records, lag_seconds, reachable, detail="; ".join(notes))

    # ---- acting ------------------------------------------------------------------------------

    def _update(self, rep: _Replicator, topics_exclude: list[str], groups_exclude: list[str]) -> None:
        t = rep.info.get("TopicReplication") or {}
        g = rep.info.get("ConsumerGroupReplication") or {}
        arns = {c: self._cluster_arn(c) for c in (rep.source, rep.target)}
        params: dict[str, Any] = {
            "ReplicatorArn": rep.arn, "CurrentVersion": rep.version,
            "SourceKafkaClusterArn": arns[rep.source], "TargetKafkaClusterArn": arns[rep.target],
            "TopicReplication": {
                "TopicsToReplicate": list(t.get("TopicsToReplicate") or [STOP_PATTERN]),
                "TopicsToExclude": topics_exclude,
                "CopyTopicConfigurations": bool(t.get("CopyTopicConfigurations", True)),
                "CopyAccessControlListsForTopics": bool(t.get("CopyAccessControlListsForTopics", True)),
                "DetectAndCopyNewTopics": bool(t.get("DetectAndCopyNewTopics", True))},
            "ConsumerGroupReplication": {
                "ConsumerGroupsToReplicate": list(g.get("ConsumerGroupsToReplicate") or [STOP_PATTERN]),
                "ConsumerGroupsToExclude": groups_exclude,
                "SynchroniseConsumerGroupOffsets": bool(g.get("SynchroniseConsumerGroupOffsets", True)),
                "DetectAndCopyNewConsumerGroups": bool(g.get("DetectAndCopyNewConsumerGroups", True))},
        }
        try:
            self.clients.call("kafka", rep.region, "update_replication_info", **params)
        except ClientError as exc:
            raise fail(exc, f"update the replication of MSK Replicator {rep.name}") from exc

    def _cluster_arn(self, region: str | None) -> str:
        r = self.outputs.regions.get(region or "")
        if r is None or r.streaming is None:
            raise BadInput(f"stack outputs: region {region!r} has no streaming.cluster_arn")
        return r.streaming.cluster_arn

    def stop_flow(self) -> str:
        reps, unknown = self._replicators()
        running = [r for r in reps if self._running(r)]
        if not running:
            if unknown and not reps:
                raise Unreachable("no MSK Replicator could be described: " + "; ".join(unknown))
            return "no MSK Replicator copies anything (already stopped)"
        done = []
        for rep in running:
            t = rep.info.get("TopicReplication") or {}
            g = rep.info.get("ConsumerGroupReplication") or {}
            before = {"topics": list(t.get("TopicsToExclude") or []), "groups": list(g.get("ConsumerGroupsToExclude") or [])}
            remembered = json.dumps(before, separators=(",", ":"))
            if len(remembered) > TAG_VALUE_MAX:
                raise StepFailed(f"MSK Replicator {rep.name} has exclusions too long to remember in a tag "
                                 f"({len(remembered)} > {TAG_VALUE_MAX} characters); nothing was changed. Shorten "
                                 "them (one pattern each), or stop it by hand (exclude topic and group '.*')")
            if EXCLUDES_TAG not in rep.tags:  # a rerun after a crash keeps the first record
                try:
                    self.clients.call("kafka", rep.region, "tag_resource", ResourceArn=rep.arn,
                                      Tags={EXCLUDES_TAG: remembered})
                except ClientError as exc:
                    raise fail(exc, f"remember the exclusions of MSK Replicator {rep.name}") from exc
            self._update(rep, before["topics"] + [STOP_PATTERN], before["groups"] + [STOP_PATTERN])
            done.append(f"{rep.name} ({rep.source} → {rep.target})")
        return (f"MSK Replicator {', '.join(done)}: every topic and consumer group excluded (MSK has no pause; "
                "it stays, owned by the dr stack, and applies the update within minutes)")

    def start_flow(self, source: str, target: str) -> str:
        arn = next((a for region, a in self._replicator_arns() if region == target), None)
        if arn is None:
            dr = self.outputs.secondary.stack
            raise StepFailed(
                f"no MSK Replicator copies {source} → {target}: the stacks own replicators, the runbooks never create "
                f"one. For a failback, declare the reverse one with the dr stack once {target} is back: "
                f"`pulumi config set failback_replication true --stack {dr}` and `pulumi up --stack {dr}` "
                "(it copies from the earliest offset), refresh the outputs, then rerun with --resume")
        rep = self._describe(arn)
        if rep is None:
            raise StepFailed(f"MSK Replicator {arn} (named in the outputs) does not exist; run `pulumi up` on the stack "
                             f"of {target}, then rerun with --resume")
        if (rep.source, rep.target) != (source, target):
            raise StepFailed(f"MSK Replicator {rep.name} copies {rep.source} → {rep.target}, not {source} → {target}")
        start = ((rep.info.get("TopicReplication") or {}).get("StartingPosition") or {}).get("Type", "EARLIEST")
        if start != "EARLIEST" and (rep.stopped or target == self.outputs.primary.name):
            # a replicator that starts (or restarts) at LATEST leaves out what the source took before:
            # everything DR took since the failover, and all of it when home came back empty
            raise StepFailed(f"MSK Replicator {rep.name} has starting position {start}: it copies only records "
                             f"{source} takes from when it (re)starts, leaving out what {source} took before (all of "
                             f"it, if {target}'s cluster came back empty). Recreate it with StartingPosition "
                             "EARLIEST in the stack that owns it, then rerun with --resume")
        if not rep.stopped:
            if rep.state == "RUNNING":
                return f"MSK Replicator {rep.name} already copies {source} → {target}"
            raise StepFailed(f"MSK Replicator {rep.name} is {rep.state}{': ' + rep.state_message if rep.state_message else ''}"
                             "; rerun with --resume once it is RUNNING")
        raw = rep.tags.get(EXCLUDES_TAG)
        try:
            before = json.loads(raw) if raw else {"topics": [], "groups": []}
        except json.JSONDecodeError:
            raise StepFailed(f"tag {EXCLUDES_TAG} of MSK Replicator {rep.name} is corrupt; set its exclusions by hand "
                             "(or `pulumi up` the dr stack) and delete the tag") from None
        topics = [p for p in before.get("topics", []) if p != STOP_PATTERN]
        groups = [p for p in before.get("groups", []) if p != STOP_PATTERN]
        self._update(rep, topics, groups)
        try:
            self.clients.call("kafka", rep.region, "untag_resource", ResourceArn=rep.arn, TagKeys=[EXCLUDES_TAG])
        except ClientError as exc:
            raise fail(exc, f"forget the remembered exclusions of MSK Replicator {rep.name}") from exc
        return (f"MSK Replicator {rep.name} copies {source} → {target} again (exclusions restored: "
                f"{topics or 'none'}); where it resumes is MSK's choice, not the runbook's (starting position "
                f"{start}: duplicates possible, see docs/aws-adapters.md)")

    def ensure_group_offsets(self, source: str, target: str, groups: list[str]) -> list[GroupOffsets]:
        """MSK Replicator synchronises offsets itself; the adapter can only confirm that the
        replicator copying source → target is configured to, for each group (reading offsets from
        the clusters needs a Kafka client with IAM auth, which this adapter does not have)."""
        arn = next((a for region, a in self._replicator_arns() if region == target), None)
        rep = self._describe(arn) if arn else None
        if rep is None or (rep.source, rep.target) != (source, target):
            return [GroupOffsets(g, False, f"no MSK Replicator copies {source} → {target}, so nothing translated "
                                 "its offsets") for g in groups]
        g = rep.info.get("ConsumerGroupReplication") or {}
        try:
            before = json.loads(rep.tags.get(EXCLUDES_TAG) or "{}").get("groups")
        except json.JSONDecodeError:
            before = None
        excluded = before if before is not None else g.get("ConsumerGroupsToExclude") or []
        excluded = [p for p in excluded if p != STOP_PATTERN] if before is not None else excluded
        latency = self.metrics.newest(rep.region, "AWS/Kafka", {"ReplicatorName": rep.name},
                                      {"latency": ("ReplicationLatency", "Maximum")},
                                      f"the lag of MSK Replicator {rep.name}")["latency"]
        age = _age(_utc(self.clock), latency[0] if latency else None)
        seen = "no ReplicationLatency datapoint in the last " + f"{self.settings.metric_window:.0f} s" \
            if age is None else f"its newest ReplicationLatency datapoint is {age:.0f} s old"
        out = []
        for group in groups:
            included = any(re.fullmatch(p, group) for p in g.get("ConsumerGroupsToReplicate") or [])
            dropped = any(re.fullmatch(p, group) for p in excluded)
            if not g.get("SynchroniseConsumerGroupOffsets"):
                out.append(GroupOffsets(group, False, f"{rep.name} does not synchronise consumer group offsets"))
            elif not included or dropped:
                out.append(GroupOffsets(group, False, f"{rep.name}'s consumer group patterns do not cover {group}"))
            else:
                out.append(GroupOffsets(group, True, f"translated by the replicator {rep.name} (offset sync on; "
                                        f"{seen}; not read from the cluster)"))
        return out

    def bootstrap(self, region: str) -> str:
        with self._lock:
            if region in self._bootstrap:
                return self._bootstrap[region]
        r = self.outputs.regions.get(region)
        if r is None or r.streaming is None:
            raise BadInput(f"stack outputs: region {region!r} has no streaming")
        try:
            b = self.clients.call("kafka", region, "get_bootstrap_brokers", ClusterArn=r.streaming.cluster_arn)
        except ClientError as exc:
            raise fail(exc, f"read the bootstrap brokers of {r.streaming.cluster_arn}") from exc
        value = b.get("BootstrapBrokerStringSaslIam") or b.get("BootstrapBrokerStringTls")
        if not value:
            raise StepFailed(f"MSK cluster {r.streaming.cluster_arn} has no IAM or TLS listener (no such bootstrap "
                             "string); the streaming component enables IAM over TLS")
        with self._lock:
            self._bootstrap[region] = value
        return value

    def published(self, parameter: str) -> str | None:
        return self.params.read(parameter)

    def publish(self, parameter: str, value: str) -> str:
        return self.params.write(parameter, value)


# --------------------------------------------------------------------------------------------
# ObjectStore on S3
# --------------------------------------------------------------------------------------------


class S3Objects(_StreamPort):
    """The data buckets, their replication configurations and the writers' SSM parameter."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, settings: StreamSettings | None = None):
        super().__init__(outputs, clients, clock, settings)
        self._pending: tuple[float, str, tuple[str, ...]] | None = None

    def _storage(self, region: str):
        r = self.outputs.regions.get(region)
        if r is None or r.storage is None:
            raise BadInput(f"stack outputs: region {region!r} has no storage")
        return r.storage

    def _other(self, region: str) -> str:
        return next(r for r in self.outputs.regions if r != region)

    def bucket(self, region: str) -> str:
        return self._storage(region).data_bucket

    def _config(self, region: str) -> dict | None:
        bucket = self.bucket(region)
        try:
            return self.clients.call("s3", region, "get_bucket_replication", Bucket=bucket)["ReplicationConfiguration"]
        except ClientError as exc:
            if error_code(exc) == "ReplicationConfigurationNotFoundError":
                return None
            raise fail(exc, f"read the replication configuration of {bucket}") from exc

    def _rules_to(self, config: dict | None, target: str) -> list[dict]:
        arn = self._storage(target).data_bucket_arn
        return [r for r in (config or {}).get("Rules") or [] if (r.get("Destination") or {}).get("Bucket") == arn]

    def _directions(self) -> tuple[list[tuple[str, str, dict, list[dict]]], list[str]]:
        """(source, target, config, rules towards target) per region that answers; unreachable regions."""
        found, unreachable = [], []
        for source in self.outputs.regions:
            target = self._other(source)
            try:
                config = self._config(source)
            except Unreachable:
                unreachable.append(source)
                continue
            rules = self._rules_to(config, target)
            if rules:
                found.append((source, target, config, rules))
        return found, unreachable

    def _primary_first(self, items):
        order = [self.outputs.primary.name, self.outputs.secondary.name]
        return sorted(items, key=lambda d: order.index(d[0]))

    def flow(self) -> FlowState:
        found, unreachable = self._directions()
        enabled = self._primary_first([d for d in found if any(r.get("Status") == "Enabled" for r in d[3])])
        if not enabled:
            if unreachable:
                # unknown, so assumed enabled: a rule left on would copy the old primary's backlog over
                # newer versions once its region is back; the stop step must keep trying (rerun)
                s = unreachable[0]
                return FlowState(s, self._other(s), True, source_reachable=False,
                                 detail=f"S3 in {s} does not answer: its bucket's replication rule is unknown and "
                                        f"assumed enabled (it copies nothing while {s} is down)")
            d = (found or [(self.outputs.primary.name, self.outputs.secondary.name, None, [])])[0]
            return FlowState(d[0], d[1], False, detail="no enabled replication rule between the data buckets")
        source, target, _config, rules = enabled[0]
        rule = next(r for r in rules if r.get("Status") == "Enabled")
        notes = [f"rule {rule.get('ID')} on {self.bucket(source)} is enabled"]
        if len(enabled) > 1:
            notes.append(f"also enabled: {enabled[1][0]} → {enabled[1][1]}")
        dims = {"SourceBucket": self.bucket(source), "DestinationBucket": self.bucket(target),
                "RuleId": rule.get("ID") or ""}
        try:
            m = self.metrics.newest(source, "AWS/S3", dims, {
                "ops": ("OperationsPendingReplication", "Maximum"), "bytes": ("BytesPendingReplication", "Maximum"),
                "latency": ("ReplicationLatency", "Maximum")}, f"S3 replication metrics of {self.bucket(source)}")
        except Unreachable as exc:
            return FlowState(source, target, True, source_reachable=False, detail=f"{'; '.join(notes)}; {exc}")
        now = _utc(self.clock)
        ops, latency = m["ops"], m["latency"]
        lag_records = None if ops is None else int(ops[1])
        lag_seconds = None if latency is None else float(latency[1])
        age = _age(now, latency[0] if latency else None)
        if age is not None and age > self.settings.metric_max_age:
            notes.append(f"newest ReplicationLatency is {age:.0f} s old: lag unknown")
            lag_seconds = None
        if ops is None or latency is None:
            notes.append("no replication metric datapoint (S3 publishes them only with RTC metrics on, minutes late)")
        if m["bytes"] is not None:
            notes.append(f"{int(m['bytes'][1])} bytes pending")
        writer = self._storage(target).writer_parameter or self._storage(source).writer_parameter
        paused_at = self.params.paused_since([writer]) if writer else None
        if lag_records == 0 and not _after_pause(ops, paused_at, self._refresh()):
            notes.append("writers were paused after the newest OperationsPendingReplication period began: waiting "
                         "for a later one")
            lag_records = None
        pending = self._pending_sample(source) if lag_records != 0 else ()
        return FlowState(source, target, True, lag_records, lag_seconds, True, pending, detail="; ".join(notes))

    def _pending_sample(self, source: str) -> tuple[str, ...]:
        """Up to ``pending_sample`` keys whose newest versions S3 still reports PENDING (or FAILED).

        Bounded on purpose: one page of versions (key order, so not necessarily the newest of the
        bucket), the newest of them asked with HeadObject. The count comes from the metric; these
        keys are examples for the report, not the complete list (S3 Inventory has that, daily)."""
        now = self.clock.monotonic()
        if self._pending and self._pending[1] == source and now - self._pending[0] < self.settings.pending_refresh:
            return self._pending[2]
        bucket = self.bucket(source)
        try:
            page = self.clients.call("s3", source, "list_object_versions", Bucket=bucket,
                                     MaxKeys=self.settings.pending_list_max)
        except ClientError as exc:
            raise fail(exc, f"list versions of {bucket}") from exc
        versions = sorted((v for v in page.get("Versions") or [] if v.get("IsLatest")),
                          key=lambda v: v["LastModified"], reverse=True)[:self.settings.pending_sample]
        pending = []
        for v in versions:
            try:
                head = self.clients.call("s3", source, "head_object", Bucket=bucket, Key=v["Key"],
                                         VersionId=v["VersionId"])
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion"):
                    continue
                raise fail(exc, f"read the replication status of s3://{bucket}/{v['Key']}") from exc
            if head.get("ReplicationStatus") in ("PENDING", "FAILED"):
                pending.append(f"{v['Key']}@{v['VersionId']}")
        self._pending = (now, source, tuple(pending))
        return self._pending[2]

    def _put(self, region: str, config: dict, what: str) -> None:
        try:
            self.clients.call("s3", region, "put_bucket_replication", Bucket=self.bucket(region),
                              ReplicationConfiguration=config)
        except ClientError as exc:
            raise fail(exc, what) from exc

    @staticmethod
    def _with_status(config: dict, rules: list[dict], status: str) -> dict:
        ids = {id(r) for r in rules}
        return {**config, "Rules": [{**r, "Status": status} if id(r) in ids else r for r in config["Rules"]]}

    def stop_flow(self) -> str:
        """Disable (not delete) the enabled rules: the configuration, its role and RTC stay for a restart."""
        found, unreachable = self._directions()
        done = []
        for source, target, config, rules in found:
            on = [r for r in rules if r.get("Status") == "Enabled"]
            if on:
                self._put(source, self._with_status(config, on, "Disabled"),
                          f"disable replication {source} → {target} on {self.bucket(source)}")
                done.append(f"{self.bucket(source)} → {self.bucket(target)} (rule {', '.join(r.get('ID', '?') for r in on)})")
        if unreachable and not done:
            raise Unreachable(f"S3 in {', '.join(unreachable)} does not answer: its replication rule could not be "
                              "disabled; it copies nothing while the region is down, and must be disabled before the "
                              "region's bucket takes writes again (rerun)")
        if not done:
            return "no S3 replication rule was enabled"
        left = f"; S3 in {', '.join(unreachable)} did not answer" if unreachable else ""
        return f"S3 replication disabled: {'; '.join(done)}{left}"

    def _versioned(self, region: str) -> None:
        bucket = self.bucket(region)
        try:
            status = self.clients.call("s3", region, "get_bucket_versioning", Bucket=bucket).get("Status")
        except ClientError as exc:
            raise fail(exc, f"read the versioning of {bucket}") from exc
        if status != "Enabled":
            raise StepFailed(f"bucket {bucket} ({region}) has versioning {status or 'never enabled'}; replication needs "
                             "it on both buckets: `pulumi up` that region's stack (the Bucket component enables it)")

    def start_flow(self, source: str, target: str) -> str:
        self._versioned(source)
        self._versioned(target)
        config = self._config(source)
        rules = self._rules_to(config, target)
        if rules:
            off = [r for r in rules if r.get("Status") != "Enabled"]
            if not off:
                return f"S3 replication {self.bucket(source)} → {self.bucket(target)} is already enabled"
            self._put(source, self._with_status(config, off, "Enabled"),
                      f"enable replication {source} → {target} on {self.bucket(source)}")
            return (f"S3 replication {self.bucket(source)} → {self.bucket(target)} enabled again (rule "
                    f"{', '.join(r.get('ID', '?') for r in off)}); versions written while it was off are not copied "
                    "(S3 Batch Replication copies existing objects)")
        if config and config.get("Rules"):
            raise StepFailed(f"{self.bucket(source)} has a replication configuration that does not copy to "
                             f"{self.bucket(target)}; the runbooks do not overwrite it. Remove or merge it by hand")
        forward = self._config(target)
        role = (forward or {}).get("Role")
        if not role:
            raise StepFailed(f"no role to replicate {source} → {target}: the runbooks reuse the role of the "
                             f"replication {target} → {source}, and {self.bucket(target)} has none. `pulumi up` the "
                             "dr stack (it owns the replication and its role), then rerun")
        dest_key = self.outputs.regions[target].kms_key_arn
        if not dest_key:
            raise BadInput(f"stack outputs: regions.{target}.kms_key_arn is missing; replicas are encrypted with it")
        rule = {
            "ID": REVERSE_RULE_ID, "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"},
                                        "ReplicaModifications": {"Status": "Enabled"}},
            "Destination": {"Bucket": self._storage(target).data_bucket_arn, "StorageClass": "STANDARD",
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": dest_key},
                            "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                            "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}},
        }
        self._put(source, {"Role": role, "Rules": [rule]},
                  f"put replication {source} → {target} on {self.bucket(source)}")
        return (f"S3 replication {self.bucket(source)} → {self.bucket(target)} configured (rule {REVERSE_RULE_ID}, "
                f"role {role}, replicas encrypted with {dest_key}, RTC 15 min); it copies new versions only")

    def seeding(self, source: str, target: str) -> Seeding:
        """Not knowable by looking, so never claimed: S3 replication copies only versions written
        after its rule is enabled, and a failback's reverse rule is enabled long after DR started
        taking writes (and a home bucket recreated empty holds nothing at all). Copying the existing
        versions is S3 Batch Replication's job: startable when the outputs name the role for it
        (``storage.batch_replication`` of the source region, which the dr stack exports with
        ``failback_replication: true``); otherwise the remedy says how to declare it."""
        src, dst = self.bucket(source), self.bucket(target)
        sentence = (f"S3 replication {src} → {dst} copies only versions written after its rule was enabled: the "
                    f"versions {src} took while nothing copied them to {dst} (everything since the failover), and "
                    f"every version if {dst} was recreated, are not copied by it")
        batch = self._storage(source).batch_replication
        if batch is not None:
            return Seeding(None, f"{sentence}; the runbook copies them with S3 Batch Replication in {source} (role "
                           f"{batch.role_arn})", startable=True)
        stack = self.outputs.regions[source].stack
        return Seeding(
            None, sentence,
            remedy=(f"The stack outputs name no S3 Batch Replication role for {source} "
                    f"(regions.{source}.storage.batch_replication), so the runbook cannot copy them itself and "
                    f"started nothing. Declare it: `pulumi config set failback_replication true --stack {stack}` "
                    f"(with promoted: true) and `pulumi up --stack {stack}`, then rerun the failback with the "
                    f"new outputs. Or copy them yourself with S3 Batch Replication in {source}: a job with a "
                    f"manifest generated from {src} (filter EligibleForReplication, ObjectReplicationStatuses NONE, "
                    "FAILED and REPLICA), operation S3ReplicateObject, and a role trusted by "
                    "batchoperations.s3.amazonaws.com (docs/aws-adapters.md); when it is Complete with no failed "
                    "task, rerun the failback with --resume --objects-seeded (audited)"))

    # ---- S3 Batch Replication (the failback's seeding) --------------------------------------

    def _batch(self, source: str) -> tuple[BatchReplication, str]:
        """The source region's batch replication settings and the account (from the role's ARN)."""
        batch = self._storage(source).batch_replication
        if batch is None:
            raise StepFailed(f"stack outputs: regions.{source}.storage.batch_replication is missing; no S3 Batch "
                             "Replication job can be started (nothing was created). "
                             + self.seeding(source, self._other(source)).remedy)
        return batch, batch.role_arn.split(":")[4]

    @staticmethod
    def _seed_key(token: str, src: str, dst: str) -> str:
        """The run's key for its jobs: derived from the run id and the two buckets, so the same
        run finds its job again and another run never takes it for its own."""
        return hashlib.sha256(f"{token}|{src}|{dst}".encode()).hexdigest()[:24]

    def _seed_jobs(self, source: str, account: str, key: str) -> list[tuple[int, str]]:
        """(attempt, job id) of this run's seeding jobs in the source region, oldest attempt first."""
        marker = re.compile(rf"^regionpair failback seed {key}#(\d+):")
        found: list[tuple[int, str]] = []
        params: dict[str, Any] = {"AccountId": account, "MaxResults": 1000}
        for _ in range(self.settings.seed_job_list_pages):
            try:
                page = self.clients.call("s3control", source, "list_jobs", **params)
            except ClientError as exc:
                raise fail(exc, f"list the S3 Batch Operations jobs in {source}") from exc
            for job in page.get("Jobs") or []:
                m = marker.match(job.get("Description") or "")
                if m and job.get("Operation") == SEED_OPERATION:
                    found.append((int(m.group(1)), job["JobId"]))
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        return sorted(found)

    def start_seeding(self, source: str, target: str, token: str) -> SeedJob:
        batch, account = self._batch(source)
        src, dst = self.bucket(source), self.bucket(target)
        rules = [r for r in self._rules_to(self._config(source), target) if r.get("Status") == "Enabled"]
        if not rules:
            # the job replicates through the bucket's rules: without one its manifest is empty and it
            # would end Complete having copied nothing
            raise StepFailed(f"no enabled replication rule on {src} copies to {dst}: S3 Batch Replication copies "
                             "through the bucket's replication configuration, so a job now would copy nothing. "
                             f"Enable replication {source} → {target} first (the failback's replicate step does), "
                             "then rerun; no job was created")
        key = self._seed_key(token, src, dst)
        jobs = self._seed_jobs(source, account, key)
        attempt = 1
        if jobs:
            last_attempt, job_id = jobs[-1]
            job = self.seed_job(source, job_id, attempt=last_attempt)
            if not (job.status in _JOB_ENDED_BADLY or (job.status == "Complete" and not job.succeeded)):
                return job  # running, finished well, or waiting for a person: never a second job beside it
            attempt = last_attempt + 1
        report_bucket = f"arn:{self._partition(batch)}:s3:::{batch.report_bucket}"
        request = {
            "AccountId": account, "ConfirmationRequired": False, "Priority": self.settings.seed_job_priority,
            "ClientRequestToken": f"regionpair-{key}-{attempt}", "RoleArn": batch.role_arn,
            "Description": f"regionpair failback seed {key}#{attempt}: {src} -> {dst}"[:256],
            "Operation": {SEED_OPERATION: {}},
            "Report": {"Enabled": True, "Bucket": report_bucket, "Prefix": f"{batch.report_prefix}/reports",
                       "Format": "Report_CSV_20180820", "ReportScope": "FailedTasksOnly",
                       "ExpectedBucketOwner": account},
            "ManifestGenerator": {"S3JobManifestGenerator": {
                "ExpectedBucketOwner": account, "SourceBucket": self._storage(source).data_bucket_arn,
                "EnableManifestOutput": True,
                "ManifestOutputLocation": {"ExpectedManifestBucketOwner": account, "Bucket": report_bucket,
                                           "ManifestPrefix": f"{batch.report_prefix}/manifests",
                                           "ManifestFormat": "S3InventoryReport_CSV_20211130"},
                "Filter": {"EligibleForReplication": True, "ObjectReplicationStatuses": list(SEED_STATUSES)}}},
        }
        try:
            job_id = self.clients.call("s3control", source, "create_job", **request)["JobId"]
        except ClientError as exc:
            raise fail(exc, f"start S3 Batch Replication of {src} → {dst} in {source}") from exc
        log.info("S3 Batch Replication job %s created (attempt %d) in %s", job_id, attempt, source)
        again = f" (attempt {attempt}, after job {jobs[-1][1]} ended without copying everything)" if jobs else ""
        return SeedJob(job_id, "New", False, False, f"S3 Batch Replication job {job_id} created in {source}: "
                       f"{src} → {dst}{again}", attempt=attempt, created=True, report=self._report(batch, job_id))

    @staticmethod
    def _partition(batch: BatchReplication) -> str:
        return batch.role_arn.split(":")[1]

    @staticmethod
    def _report(batch: BatchReplication, job_id: str) -> str:
        return f"s3://{batch.report_bucket}/{batch.report_prefix}/reports/job-{job_id}/"

    def seed_job(self, source: str, job_id: str, attempt: int = 1) -> SeedJob:
        batch, account = self._batch(source)
        try:
            job = self.clients.call("s3control", source, "describe_job", AccountId=account, JobId=job_id)["Job"]
        except ClientError as exc:
            raise fail(exc, f"read S3 Batch Operations job {job_id} in {source}") from exc
        status = job.get("Status") or "unknown"
        progress = job.get("ProgressSummary") or {}
        total = progress.get("TotalNumberOfTasks")
        done, failed = progress.get("NumberOfTasksSucceeded") or 0, progress.get("NumberOfTasksFailed") or 0
        report = self._report(batch, job_id)
        name = f"S3 Batch Replication job {job_id} ({source}, attempt {attempt})"
        of = f"{done} of {total if total is not None else 'unknown'} versions replicated, {failed} failed"

        def result(finished: bool, succeeded: bool, sentence: str) -> SeedJob:
            return SeedJob(job_id, status, finished, succeeded, sentence, attempt=attempt, failed_tasks=failed,
                           report=report)
        if status == "Complete" and not failed:
            active = (progress.get("Timers") or {}).get("ElapsedTimeInActiveSeconds")
            return result(True, True, f"{name} is Complete: {of}" + (f" in {active} s active" if active else ""))
        if status == "Complete":
            return result(True, False, f"{name} is Complete with {failed} failed task(s) of "
                          f"{total if total is not None else 'unknown'}: those versions did not reach "
                          f"{self.bucket(self._other(source))}. The completion report lists them: {report}. Fix the "
                          "cause (often a KMS or bucket permission of the replication role), then rerun the failback: "
                          "it starts a new job for the versions still not replicated (or copy them another way and "
                          "rerun with --objects-seeded)")
        if status in _JOB_ENDED_BADLY:
            reasons = ("; ".join(f"{r.get('FailureCode', '?')}: {r.get('FailureReason', '')}"
                                 for r in job.get("FailureReasons") or [])
                       or job.get("StatusUpdateReason") or "no reason given")
            return result(True, False, f"{name} is {status} ({reasons}); {of}. Fix the cause, then rerun the failback: "
                          f"it starts a new job (or copy them another way and rerun with --objects-seeded)")
        if status == "Suspended":
            return result(True, False, f"{name} is Suspended ({job.get('SuspendedCause') or 'no cause given'}): it "
                          "waits for a confirmation the runbook does not give. Confirm it (`aws s3control "
                          f"update-job-status --region {source} --account-id {account} --job-id {job_id} "
                          "--requested-job-status Ready`) or cancel it, then rerun the failback")
        return result(False, False, f"{name} is {status}: {of}")

    def writers(self, parameter: str) -> str | None:
        return self.params.read(parameter)

    def point_writers(self, parameter: str, value: str) -> str:
        return self.params.write(parameter, value)
