"""The AWS Streaming adapter when the dr stack runs MirrorMaker 2 on MSK Connect
(``streaming.mirrormaker2`` of the DR region in the outputs) instead of the MSK Replicator.

What differs from ``MskStreaming`` (everything else — bootstrap servers, client parameters, the
failback's reverse MSK Replicator — is inherited):

- **Stopping the flow** deletes the source connector (nothing is copied any more) and the heartbeat
  connector. MSK Connect's API has no pause for the connectors the stacks declare, and the dr stack
  declares none once ``promoted: true``; deleting is what that end state is. The checkpoint
  connector is left to ``pulumi up -s dr`` with ``promoted: true`` (the failover report's commands):
  until then it keeps committing translated offsets for groups with no member on DR, from the offset
  syncs already copied — never beyond what DR holds.
- **Lag**: MSK Connect publishes no replication lag for MirrorMaker 2 (its ``replication-latency-ms``
  is a JMX metric of the workers), so ``flow()`` reports the connector's state and its
  ``ErroredTaskCount``/``RunningTaskCount`` and leaves the lag unknown — the readiness gate then
  refuses unless ``--force``, saying so.
- **Group offsets**: MirrorMaker 2 translates them (checkpoint connector, ``sync.group.offsets``);
  this adapter confirms that the checkpoint connector is configured to and covers each group. It does
  not read ``<source alias>.checkpoints.internal``: that needs a Kafka client with IAM
  authentication, which the AWS adapters do not have (the sandbox's runbook reads it).
- **Starting the flow again** (source → DR) is the stack's: the runbooks never create connectors.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from runbooks.adapters.aws.clients import age_s, error_code, fail, utc_now
from runbooks.adapters.aws.msk import MskStreaming
from runbooks.core.errors import StepFailed
from runbooks.core.ports import FlowState, GroupOffsets

RUNNING_STATES = ("RUNNING", "UPDATING")
GONE_STATES = ("DELETING",)
STOPS = ("source", "heartbeat")
"""The connectors a stop deletes, in this order (the copying stops first)."""


class MirrorMaker2Streaming(MskStreaming):
    """Kafka on MSK with MirrorMaker 2 on MSK Connect into DR (and the MSK Replicator of a failback)."""

    def _mm2(self) -> tuple[str, str, Any] | None:
        """(source region, target region, the flow) when the outputs declare MirrorMaker 2."""
        for r in self.outputs.regions.values():
            if r.streaming is not None and r.streaming.mirrormaker2 is not None:
                source = next((o for o in self.outputs.regions if o != r.name), r.name)
                return source, r.name, r.streaming.mirrormaker2
        return None

    def _connector(self, region: str, arn: str) -> dict | None:
        try:
            return self.clients.call("kafkaconnect", region, "describe_connector", connectorArn=arn)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise fail(exc, f"describe MSK Connect connector {arn}") from exc

    @staticmethod
    def _name(arn: str, described: dict | None) -> str:
        return (described or {}).get("connectorName") or arn.rsplit("/", 2)[-2]

    # ---- reading ---------------------------------------------------------------------------

    def flow(self) -> FlowState:
        mm2 = self._mm2()
        if mm2 is None:
            return super().flow()
        source, target, flow = mm2
        arn = flow.connector_arns.get("source")
        if arn is None:
            if self._replicator_arns():  # the failback's reverse MSK Replicator
                return super().flow()
            return FlowState(source, target, False, detail="MirrorMaker 2's connectors are not declared (the dr stack "
                             "is promoted): nothing copies into " + target)
        c = self._connector(target, arn)
        name = self._name(arn, c)
        state = (c or {}).get("connectorState", "")
        if c is None or state in GONE_STATES:
            return FlowState(source, target, False, detail=f"source connector {name} is deleted (stopped by the "
                             "runbooks); nothing copies")
        if state not in RUNNING_STATES:
            message = ((c.get("stateDescription") or {}).get("message") or "").strip()
            return FlowState(source, target, False, detail=f"source connector {name} is {state}"
                             + (f": {message}" if message else ""))
        m = self.metrics.newest(target, "AWS/KafkaConnect", {"ConnectorName": name},
                                {"errored": ("ErroredTaskCount", "Maximum"), "tasks": ("RunningTaskCount", "Minimum")},
                                f"the tasks of MSK Connect connector {name}")
        now = utc_now(self.clock)
        notes = [f"source connector {name} is {state}"]
        errored, tasks = m["errored"], m["tasks"]
        if errored is not None and errored[1] > 0:
            return FlowState(source, target, False, source_reachable=self._source_reachable(source),
                             detail=f"{notes[0]} but {errored[1]:.0f} task(s) errored "
                                    f"({age_s(now, errored[0]):.0f} s ago): nothing is being copied; read its worker logs")
        if tasks is not None:
            notes.append(f"{tasks[1]:.0f} running task(s) {age_s(now, tasks[0]):.0f} s ago")
        notes.append("MSK Connect publishes no replication lag for MirrorMaker 2: lag unknown")
        return FlowState(source, target, True, None, None, self._source_reachable(source), detail="; ".join(notes))

    # ---- acting ------------------------------------------------------------------------------

    def stop_flow(self) -> str:
        mm2 = self._mm2()
        if mm2 is None:
            return super().stop_flow()
        source, target, flow = mm2
        done = []
        for kind in STOPS:
            arn = flow.connector_arns.get(kind)
            if arn is None:
                continue
            c = self._connector(target, arn)
            name = self._name(arn, c)
            if c is None or c.get("connectorState") in GONE_STATES:
                done.append(f"{kind} connector {name} already deleted")
                continue
            try:
                self.clients.call("kafkaconnect", target, "delete_connector", connectorArn=arn)
            except ClientError as exc:
                if error_code(exc) != "NotFoundException":
                    raise fail(exc, f"delete MSK Connect connector {name} (stops MirrorMaker 2 {source} → {target})") \
                        from exc
            done.append(f"{kind} connector {name} deleted")
        out = ("MirrorMaker 2 " + f"{source} → {target}: " + ("; ".join(done) if done else "no connector declared")
               + " (MSK Connect has no pause; the checkpoint connector stays until `pulumi up` of the dr stack with "
               "promoted: true removes it)")
        if any(self._running(r) for r in self._replicators()[0]):
            out += "; " + super().stop_flow()
        return out

    def start_flow(self, source: str, target: str) -> str:
        mm2 = self._mm2()
        if mm2 is None or (source, target) != mm2[:2]:
            return super().start_flow(source, target)
        arn = mm2[2].connector_arns.get("source")
        c = self._connector(target, arn) if arn else None
        if c is not None and c.get("connectorState") in RUNNING_STATES:
            return f"MirrorMaker 2 already copies {source} → {target} ({self._name(arn, c)})"
        dr = self.outputs.secondary.stack
        raise StepFailed(f"MirrorMaker 2 {source} → {target} has no running source connector, and the runbooks never "
                         f"create connectors: the dr stack owns them. `pulumi config set promoted false --stack {dr}` "
                         f"(if it was promoted) and `pulumi up --stack {dr}`, refresh the outputs, then rerun with "
                         "--resume")

    def ensure_group_offsets(self, source: str, target: str, groups: list[str]) -> list[GroupOffsets]:
        mm2 = self._mm2()
        if mm2 is None or (source, target) != mm2[:2]:
            return super().ensure_group_offsets(source, target, groups)
        flow = mm2[2]
        arn = flow.connector_arns.get("checkpoint")
        c = self._connector(target, arn) if arn else None
        if c is None or c.get("connectorState") in GONE_STATES:
            return [GroupOffsets(g, False, f"MirrorMaker 2's checkpoint connector into {target} is gone, so this adapter "
                                 f"cannot confirm a translation; {flow.checkpoints_topic} on {target} holds the last "
                                 "checkpoints (read them with a Kafka client with IAM)") for g in groups]
        name = self._name(arn, c)
        config = c.get("connectorConfiguration") or {}
        patterns = [p.strip() for p in (config.get("groups") or "").split(",") if p.strip()]
        excluded = [p.strip() for p in (config.get("groups.exclude") or "").split(",") if p.strip()]
        every = config.get("sync.group.offsets.interval.seconds", "60")
        out = []
        for group in groups:
            if config.get("sync.group.offsets.enabled") != "true":
                out.append(GroupOffsets(group, False, f"{name} does not synchronise group offsets "
                                        "(sync.group.offsets.enabled is not true)"))
            elif not any(re.fullmatch(p, group) for p in patterns) or any(re.fullmatch(p, group) for p in excluded):
                out.append(GroupOffsets(group, False, f"{name}'s groups {patterns} do not cover {group}"))
            else:
                out.append(GroupOffsets(group, True, f"translated by MirrorMaker 2's checkpoint connector {name} "
                                        f"(group offset sync every {every} s into {target}, for a group with no member "
                                        f"there; checkpoints in {flow.checkpoints_topic}, not read by this adapter)"))
        return out
