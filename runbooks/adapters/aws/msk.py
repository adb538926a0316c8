"""The Streaming port on MSK and the MSK Replicator: the flow's state and lag, stopping and
starting it, consumer group offsets, and the bootstrap servers the clients read from SSM.

- **Stopping the MSK Replicator.** MSK has no pause. The runbooks stop a flow with
  ``UpdateReplicationInfo``: topics ``.*`` and consumer groups ``.*`` are added to the exclusions
  (the replicator stays, owned by the dr stack), and the exclusions it had before are kept in a
  tag of the replicator (``regionpair:excludes-before-stop``) to restore on ``start_flow``. The
  replicator is never deleted here.
- **Reversing.** The dr stack owns a primary → DR replicator only. A DR → primary flow needs a
  replicator into the primary region that the stacks create (``streaming.replicator_arn`` of the
  primary region); without one, ``start_flow`` fails and says how to create it.
- **Lag** comes from CloudWatch metrics (replication_flows.py says when a zero counts).
docs/aws-adapters.md says what each call means and what it cannot know.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from contract.outputs import STOP_PATTERN, Outputs
from runbooks.adapters.aws.clients import TAG_VALUE_MAX, Clients, age_s, error_code, fail, region_of_arn, utc_now
from runbooks.adapters.aws.replication_flows import FlowPort, StreamSettings, after_pause
from runbooks.core.clock import Clock
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import FlowState, GroupOffsets

EXCLUDES_TAG = "regionpair:excludes-before-stop"
"""Replicator tag: the exclusions it had before the runbooks stopped it (JSON), restored on start."""
_REACHABLE_CLUSTER_STATES = ("ACTIVE", "UPDATING", "MAINTENANCE", "HEALING", "REBOOTING_BROKER")


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


class MskStreaming(FlowPort):
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
        return region_of_arn(cluster_arn)

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
                into = region_of_arn(arn) or next((o for o in self.outputs.regions if o != r.name), r.name)
                out.append((into, arn))
        return out

    def _describe(self, arn: str) -> _Replicator | None:
        region = region_of_arn(arn) or ""
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
        now = utc_now(self.clock)
        latency, lag = m["latency"], m["lag"]
        age = age_s(now, latency[0] if latency else None)
        lag_seconds = None if latency is None else latency[1] / 1000.0
        if lag_seconds is not None and reachable and age is not None and age > self.settings.metric_max_age:
            notes.append(f"newest ReplicationLatency is {age:.0f} s old: lag unknown")
            lag_seconds = None
        elif latency is not None:
            notes.append(f"ReplicationLatency {latency[1]:.0f} ms at {latency[0]:%H:%M:%S}Z ({age:.0f} s ago)")
        lag_records = None if lag is None else int(lag[1])
        paused_at = self.params.paused_since(self._client_parameters())
        if lag_records == 0 and not after_pause(lag, paused_at, self._refresh()):
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
        age = age_s(utc_now(self.clock), latency[0] if latency else None)
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
