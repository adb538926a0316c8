"""What a failover drill concludes: per-system loss and recovery, the failback's figures, the
reasons it fails (endpoints, notifications, audit, re-fence), report.json/report.md and the summary."""

from __future__ import annotations

import statistics
import time

from drills.measure import WorkloadLog, analyse, analyse_stream, largest_pause, per_second, recovery
from runbooks.core import report as reports
from runbooks.core.clock import iso
from runbooks.core.report import COMPONENT_OF, component_rto_reasons, objectives_of


class DrillReport:
    """The report half of ``SandboxDrill`` (a mixin): reads what the run recorded on ``self`` —
    ``args``, ``steps``, ``notes``, ``stream_systems``, ``stream_surviving``, ``notifications``,
    ``audited``, ``endpoints``, ``dir``, ``report_dir`` — and judges it."""

    def _refence_reasons(self, failback_out: dict | None) -> list[str]:
        """With --api-down: the failback's first step on every database re-applied home's fence."""
        if not (getattr(self.args, "api_down", False) and failback_out):
            return []
        steps = failback_out.get("steps") or []
        reasons = []
        for db in failback_out.get("databases") or []:
            mine = [s for s in steps if s["name"].endswith(f":{db}")]
            first = min(mine, key=lambda s: s["start"]) if mine else None
            if first is None or first["name"] != f"refence:{db}" or first.get("status") != "done":
                reasons.append(f"re-fence: the failback did not re-fence {db} at home first "
                               f"(first step: {first and first['name']}, {first and first.get('status')})")
        return reasons

    def _audit_reasons(self) -> list[str]:
        """The durable sink holds each runbook's start and end and every fault, unbroken."""
        from runbooks.core.audit import SINK_NAME as AUDIT_SINK, read_sink as read_audit, verify_chain
        sink = self.dir / AUDIT_SINK
        reasons = [] if not sink.exists() else [f"audit: {why}" for why in [verify_chain(sink)] if why]
        for kind, entries in self.audited.items():
            seen = {(e["action"], e["result"].split(",")[0]) for e in entries}
            if not ({("run", "started"), ("run", "resumed")} & seen) or ("run", "complete") not in seen:
                reasons.append(f"audit: the {kind}'s start and end are not both in the sandbox's durable audit sink")
        faults = [e for e in read_audit(sink) if e.get("runbook") == "drill" and e.get("action") == "fault"]
        if self.args.scenario != "switchover" and not faults:
            reasons.append("audit: the drill's fault is not in the sandbox's durable audit sink")
        return reasons

    def _notification_reasons(self) -> list[str]:
        reasons = []
        for kind, sent in self.notifications.items():
            said = [n["subject"] for n in sent]
            if not any(": started:" in s or ": resumed:" in s for s in said):
                reasons.append(f"notifications: the {kind} told nobody it started (nothing in the sandbox's sink)")
            if not any("complete" in s and "RTO" in s for s in said):
                reasons.append(f"notifications: the {kind} told nobody it ended with its RTO and RPO")
        return reasons

    def _endpoint_reasons(self) -> list[str]:
        reasons = []
        for phase, v in getattr(self, "endpoints", {}).items():
            for region, c in v["clusters"].items():
                if region == v["lost"]:
                    continue
                if not c["reachable"]:
                    reasons.append(f"endpoints: {region}'s cluster did not answer after the {phase}")
                elif not c["points_at_active"]:
                    reasons.append(f"endpoints: {region}'s cluster does not send every application to {v['active']} "
                                   f"after the {phase}")
                elif c.get("restarted") is False:
                    reasons.append(f"endpoints: {region}'s listed Deployments were not all restarted after their "
                                   f"copies moved in the {phase}")
        return reasons

    # ---- the report ----------------------------------------------------------------------------

    def _systems(self, wl: WorkloadLog, outcome, runbook_out: dict, objectives: dict, zero_loss: bool,
                 target: str) -> dict:
        """Per data store: acknowledged, acked_lost, and for Kafka the consumer group's view. Zero loss
        is required of every store in a switchover; otherwise the loss must fit the declared RPO."""
        out = {"postgres": {"acknowledged": outcome.acknowledged, "acked_lost": outcome.acked_lost,
                            "rpo_seconds": outcome.rpo_seconds}}
        streams = runbook_out.get("streams") or {}
        outage_start = outcome.outage[0] if outcome.outage else time.time()
        for system in self.stream_systems:
            s = analyse_stream(wl, system, outage_start=outage_start, surviving=self.stream_surviving.get(system))
            reasons = []
            if zero_loss and s["acked_lost"]:
                reasons.append(f"{s['acked_lost']} acknowledged records lost in a zero-loss switchover")
            own = objectives["components"][COMPONENT_OF[system]]["rpo_seconds"]
            if s["rpo_seconds"] > own:
                reasons.append(f"RPO {s['rpo_seconds']:.2f} s exceeds the {COMPONENT_OF[system]} objective {own} s")
            if system == "kafka":
                groups = streams.get("kafka_consumer_groups") or {}
                s["consumer_groups_translated"] = sorted(g for g, v in groups.items() if v.get("translated"))
                s["lag_at_failover"] = streams.get("kafka_lag_at_failover")
                if s.get("skipped"):
                    reasons.append(f"the consumer group skipped {s['skipped']} acknowledged records")
                if outcome.outage and not any(c.region == target and c.t > outage_start for c in wl.consumed):
                    reasons.append(f"the consumer group processed nothing in {target} after the failover")
            else:
                s["pending_at_failover"] = streams.get("objects_pending_at_failover")
            s["reasons"] = reasons
            out[system] = s
        return out

    def _failback_systems(self, wl: WorkloadLog, window: tuple[float, float], dr: str, home: str,
                          surviving: dict[str, set[str]]) -> dict:
        """Per data store, across the failback: the longest pause in acknowledged writes, what was
        acknowledged in DR or after the failback began and how much of it home does not hold — the
        failback is planned, so that must be none whatever the replication mode (what the outage
        lost is the failover's figure) — and for Kafka, records processed again since the failback
        began and whether the group resumed at home."""
        start, end = window
        out = {}
        for system in ["postgres", *self.stream_systems]:
            sub = wl.of(system)
            after = [a for a in sub.acks if a.region == dr or a.t >= start]
            if system == "postgres":
                lost = [a for a in after if a.id not in surviving.get(a.database, set())]
            else:
                held = self.stream_surviving.get(system) or set()
                lost = [a for a in after if a.id not in held]
            pause = largest_pause(sub.acks, start, end)
            s = {"write_pause_seconds": pause[1] - pause[0] if pause else None,
                 "acknowledged_since_failover": len(after), "acked_lost_since_failover": len(lost),
                 "lost_ids": [a.id for a in lost[:20]], "reasons": []}
            if lost:
                s["reasons"].append(f"{len(lost)} writes acknowledged in {dr} or after the failback began are not "
                                    f"at home ({home}): a failback must lose none")
            if not any(a.t > start and a.region == home for a in sub.acks):
                s["reasons"].append(f"no write acknowledged in {home} after the failback")
            if system == "kafka":
                seen: set[str] = set()
                again = 0
                for c in sorted(wl.consumed, key=lambda c: c.t):
                    if c.id in seen and c.t >= start:
                        again += 1
                    seen.add(c.id)
                s["duplicates_since_failback"] = again
                s["consumed_at_home_after_failback"] = sum(1 for c in wl.consumed if c.t > start and c.region == home)
                if not s["consumed_at_home_after_failback"]:
                    s["reasons"].append(f"the consumer group processed nothing in {home} after the failback")
            out[system] = s
        return out

    def _estimate(self, samples: list[dict], wl: WorkloadLog, fault_at: float) -> dict:
        recent = [s for s in samples if s["t"] > fault_at - 1.0] or samples
        if len(recent) < 2:
            return {"seconds": None, "writes": None, "method": "not enough samples"}
        in_flight = statistics.median(max(0, s["primary_lsn"] - s["received_lsn"]) for s in recent)
        span = recent[-1]["t"] - recent[0]["t"]
        wal_bytes = recent[-1]["primary_lsn"] - recent[0]["primary_lsn"]
        acks = sum(1 for a in wl.acks if recent[0]["t"] < a.t <= recent[-1]["t"])
        if wal_bytes <= 0 or acks == 0 or span <= 0:
            return {"seconds": 0.0, "writes": 0.0, "in_flight_wal_bytes": in_flight, "samples": len(recent),
                    "method": "no WAL written during the samples"}
        bytes_per_write = wal_bytes / acks
        return {"seconds": in_flight / (wal_bytes / span), "writes": in_flight / bytes_per_write,
                "in_flight_wal_bytes": in_flight, "wal_bytes_per_write": bytes_per_write, "samples": len(recent),
                "method": "WAL written on the primary and not yet received by DR (median of the last second before "
                          "the fault), in writes at the observed WAL bytes per acknowledged write"}

    def _report(self, t0, fault_at, primary, dr, outputs, wl, surviving, samples, runbook_out, failback_out,
                failback_window) -> dict:
        a = self.args
        outcome = analyse(wl, fault_at=fault_at, target_region=dr, surviving=surviving)
        objectives = objectives_of(outputs)
        runbook_steps = [dict(s, name=f"{runbook_out['runbook']}/{s['name']}") for s in runbook_out.get("steps", [])]
        if failback_out:
            runbook_steps += [dict(s, name=f"failback/{s['name']}") for s in failback_out.get("steps", [])]
        steps = sorted(self.steps + runbook_steps, key=lambda s: s["start"])
        zero_loss = a.replication == "sync" or a.scenario == "switchover"
        # the headline is the service's RTO: until the last of its stores' writers (and Kafka's
        # consumers) worked in DR, not PostgreSQL's alone
        recovered = recovery(wl, fault_at=fault_at, target_region=dr, systems=["postgres", *self.stream_systems],
                             planned=a.scenario == "switchover")
        rto = recovered["service_seconds"]
        passed, reasons = reports.verdict(rto_seconds=rto, rpo_seconds=outcome.rpo_seconds, objectives=objectives,
                                          steps=steps, acked_writes_lost=outcome.acked_lost,
                                          require_zero_loss=zero_loss)
        fb = None
        if failback_window:
            pause = largest_pause(wl.of("postgres").acks, *failback_window)
            fb = {"write_pause_seconds": pause[1] - pause[0] if pause else None, "window": failback_window,
                  "systems": self._failback_systems(wl, failback_window, dr, primary, surviving)}
            for name, s in fb["systems"].items():
                for r in s.pop("reasons"):
                    passed = False
                    reasons.append(f"{name} (failback): {r}")
        estimate = self._estimate(samples, wl, fault_at)
        systems = self._systems(wl, outcome, runbook_out, objectives, zero_loss=a.scenario == "switchover", target=dr)
        for r in component_rto_reasons(recovered, objectives):  # each system against its own RTO objective
            passed = False
            reasons.append(r)
        for name, s in systems.items():
            for r in s.get("reasons", []):
                passed = False
                reasons.append(f"{name}: {r}")
        for r in (self._endpoint_reasons() + self._notification_reasons() + self._audit_reasons()
                  + self._refence_reasons(failback_out)):
            passed = False
            reasons.append(r)
        rep = {
            "runbook": "drill", "scenario": a.scenario, "systems": systems, "run_id": runbook_out.get("run_id"),
            "target_kind": "sandbox", "sandbox_dir": str(self.dir), "source": primary, "target": dr,
            "replication": a.replication,
            "link_latency_ms": a.link_latency_ms, "dns_ttl_seconds": a.dns_ttl, "rate": a.rate,
            "databases": list(surviving), "t0": t0, "started_at": iso(t0), "ended_at": iso(time.time()),
            "fault_at": fault_at,
            "rto_seconds": rto, "rto": recovered, "replication_modes": replication_modes(a.replication, self.stream_systems),
            "rto_definition": ("service RTO: from the first to the last moment any of its parts (each store's writers, "
                               "Kafka's consumer group) was paused around the switchover (each part: its longest pause)"
                               if a.scenario == "switchover" else
                               "service RTO, client-observed: from the first part's last acknowledged write (or "
                               "processed record) before the fault to the moment the last part — each store's writers, "
                               f"Kafka's consumer group — worked in {dr} again"),
            "rpo": {"acked_writes_lost": outcome.acked_lost, "seconds": outcome.rpo_seconds, "estimate": estimate,
                    "runbook_estimate": (runbook_out.get("rpo") or {}).get("estimate"),
                    "lost_ids": [x.id for x in outcome.lost[:50]]},
            "writes": {"acknowledged": outcome.acknowledged, "errors": outcome.errors,
                       "per_database": outcome.per_database},
            "objectives": objectives, "steps": steps, "passed": passed, "reasons": reasons,
            "failback": fb, "notes": self.notes, "endpoints": getattr(self, "endpoints", {}),
            "notified": self.notifications,
            "audited": {kind: len(entries) for kind, entries in self.audited.items()},
        }
        timeline = {"writes_per_second": per_second(wl), "fault_at": fault_at,
                    "systems_per_second": {s: per_second(_as_postgres(wl.of(s))) for s in self.stream_systems},
                    "outage": outcome.outage if a.scenario != "switchover" else largest_pause(wl.acks, fault_at,
                                                                                               fault_at + 60)}
        from runbooks.core import dr_metrics
        metrics_path = self.report_dir / dr_metrics.FILE_NAME
        rep["notes"] = rep["notes"] + dr_metrics.publish(metrics_path, dr_metrics.drill_samples(rep, time.time()))
        rep["metrics"] = str(metrics_path)
        rep["files"] = reports.write(rep, self.report_dir, timeline)
        return rep


def _as_postgres(log: WorkloadLog) -> WorkloadLog:
    """A store's acks relabelled so per_second bins them (it counts PostgreSQL writes)."""
    from dataclasses import replace
    return WorkloadLog([replace(a, system="postgres") for a in log.acks], [])



def replication_modes(postgres: str, stream_systems: list[str]) -> dict[str, str]:
    """Which replication applies to which store: ``--replication`` is PostgreSQL's alone; Kafka's
    replicator and S3 replication copy after the acknowledgement, always."""
    modes = {"postgres": f"{postgres} (streaming replication{', synchronous commit' if postgres == 'sync' else ''})"}
    names = {"kafka": "async (the replicator copies after the broker acknowledged)",
             "s3": "async (bucket replication copies after the PUT was acknowledged)"}
    modes.update({s: names[s] for s in stream_systems})
    return modes


def summary_lines(result: dict) -> list[str]:
    """The drill's closing lines for people: verdict, the service RTO with each part's, loss per
    system, and which replication mode applies to which system."""
    rpo = result["rpo"]
    est = rpo["estimate"].get("writes")
    per_system = "; ".join(f"{name} lost {s.get('acked_lost')} of {s.get('acknowledged')} acked"
                           + (f", {s['duplicates']} duplicates" if s.get("duplicates") is not None else "")
                           for name, s in (result.get("systems") or {}).items()) or \
        f"acked writes lost {rpo['acked_writes_lost']} of {result['writes']['acknowledged']}"
    rto = result.get("rto") or {}
    parts = ", ".join(f"{system} {role} {_seconds(w.get('seconds'))}"
                      for system, roles in (rto.get("systems") or {}).items() for role, w in roles.items())
    modes = ", ".join(f"{k} {v.split(' ')[0]}" for k, v in (result.get("replication_modes") or {}).items())
    lines = [f"drill {result['scenario']}: {'PASSED' if result['passed'] else 'FAILED'}; "
             f"service RTO {_seconds(result.get('rto_seconds'))}"
             + (f" (the latest of: {parts}; last back: {rto.get('last_back')})" if parts else "")
             + f"; {per_system}; PostgreSQL loss estimated before promotion "
             f"{'n/a' if est is None else f'{est:.1f}'} writes"]
    if modes:
        lines.append(f"  replication: {modes} (--replication applies to PostgreSQL only)")
    lines.append(f"  report {result['files']['markdown']}")
    return lines


def _seconds(value) -> str:
    return "not measured" if value is None else f"{value:.2f} s"
