"""Reports: report.json for machines, report.md for people, timeline.png where there is a workload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbooks.core.clock import iso
from runbooks.core.redact import scrub


def verdict(*, rto_seconds: float | None, rpo_seconds: float | None, objectives: dict, steps: list[dict],
            acked_writes_lost: int | None = None, require_zero_loss: bool = False) -> tuple[bool, list[str]]:
    """Passed, and the reasons it did not."""
    reasons = []
    if any(s.get("status") == "failed" for s in steps):
        reasons.append("a step failed")
    if rto_seconds is None:
        reasons.append("RTO was not measured")
    elif rto_seconds > objectives["rto_seconds"]:
        reasons.append(f"RTO {rto_seconds:.2f} s exceeds the objective {objectives['rto_seconds']} s")
    if rpo_seconds is not None and rpo_seconds > objectives["rpo_seconds"]:
        reasons.append(f"RPO {rpo_seconds:.2f} s exceeds the objective {objectives['rpo_seconds']} s")
    if require_zero_loss and acked_writes_lost:
        reasons.append(f"{acked_writes_lost} acknowledged writes lost in a zero-loss scenario")
    return not reasons, reasons


def write(report: dict[str, Any], directory: Path, timeline: dict[str, Any] | None = None) -> dict[str, str]:
    """Write report.json, report.md and (with a timeline) timeline.png. Returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    report = scrub(report)
    paths = {"json": str(directory / "report.json"), "markdown": str(directory / "report.md")}
    if timeline:
        png = directory / "timeline.png"
        plot_timeline(report, timeline, png)
        paths["png"] = str(png)
        report = dict(report, files=paths)
    Path(paths["json"]).write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    Path(paths["markdown"]).write_text(markdown(report))
    return paths


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def markdown(report: dict[str, Any]) -> str:
    obj = report.get("objectives", {})
    rpo = report.get("rpo", {})
    est = rpo.get("estimate") or {}
    lines = [
        f"# {report.get('runbook', 'runbook')} report: {report.get('scenario')}",
        "",
        f"**{'PASSED' if report.get('passed') else 'FAILED'}**"
        + ("" if report.get("passed") else " — " + "; ".join(report.get("reasons", []))),
        "",
        f"Run `{report.get('run_id')}`, {report.get('started_at')} → {report.get('ended_at')}, "
        f"from {report.get('source')} to {report.get('target')} ({report.get('target_kind')}).",
        "",
        "| measure | measured | objective |",
        "|---|---|---|",
        f"| {'service ' if report.get('rto') else ''}RTO (s) | {_fmt(report.get('rto_seconds'))} | "
        f"{obj.get('rto_seconds')} |",
        f"| RPO (s) | {_fmt(rpo.get('seconds'))} | {obj.get('rpo_seconds')} |",
        f"| acknowledged writes lost | {_fmt(rpo.get('acked_writes_lost'))} | |",
        f"| RPO estimate before promotion (s) | {_fmt(est.get('seconds'))} | |",
        f"| RPO estimate before promotion (writes) | {_fmt(est.get('writes'))} | |",
        f"| writes acknowledged | {_fmt((report.get('writes') or {}).get('acknowledged'))} | |",
        "",
    ]
    if report.get("rto_definition"):
        lines += [f"RTO here: {report['rto_definition']}", ""]
    if report.get("decision_wait_seconds"):
        lines += [f"Waiting for the operator's decision at the prompt: {_fmt(report['decision_wait_seconds'])} s "
                  "(not counted in the RTO).", ""]
    if report.get("notifications"):
        lines += ["## Notifications", ""] + [
            f"- {n['event']}: {n['subject']} — " + ("delivered" if n.get("delivered") else f"NOT delivered: {n.get('error')}")
            for n in report["notifications"]] + [""]
    if report.get("notified"):
        lines += ["## What people were told (the notification sink)", ""] + [
            f"- {kind}: {n.get('subject')}" for kind, sent in report["notified"].items() for n in sent] + [""]
    rto = report.get("rto") or {}
    if rto.get("systems"):
        lines += ["## RTO per system", "", "| system | who | outage (s) | from (+s) | to (+s) |", "|---|---|---|---|---|"]
        t0 = report.get("t0") or 0.0
        for system, roles in rto["systems"].items():
            for role, w in roles.items():
                lines.append(f"| {system} | {role} | {_fmt(w.get('seconds'))} | {_fmt(w['from'] - t0)} | "
                             f"{_fmt(None if w.get('to') is None else w['to'] - t0)} |")
        lines += ["", f"Service RTO {_fmt(rto.get('service_seconds'), ' s')}: the latest of these (last back: "
                  f"{rto.get('last_back')}).", ""]
    if report.get("replication_modes"):
        lines += ["Replication: " + "; ".join(f"{k}: {v}" for k, v in report["replication_modes"].items()), ""]
    systems = report.get("systems")
    if systems:
        lines += ["## Per system", "", "| system | acknowledged | acked lost | RPO (s) | duplicates | "
                  "skipped by consumers | consumer groups translated |", "|---|---|---|---|---|---|---|"]
        for name, s in systems.items():
            groups = s.get("consumer_groups_translated")
            lines.append(f"| {name} | {_fmt(s.get('acknowledged'))} | {_fmt(s.get('acked_lost'))} | "
                         f"{_fmt(s.get('rpo_seconds'))} | {_fmt(s.get('duplicates'))} | {_fmt(s.get('skipped'))} | "
                         f"{', '.join(groups) if groups else ('none' if groups is not None else 'n/a')} |")
        pending = (systems.get("s3") or {}).get("pending_at_failover")
        if pending:
            lines += ["", f"S3 object versions pending replication at failover: {_fmt(pending.get('count'))}"
                      + (f" ({', '.join(pending.get('keys', [])[:10])})" if pending.get("keys") else "")]
        lines.append("")
    endpoints = report.get("endpoints")
    if endpoints:
        lines += ["## Applications' endpoints (each region's cluster)", "",
                  "| after | cluster | answered | ACTIVE_REGION per namespace | all point at the writer | "
                  "listed Deployments restarted since |",
                  "|---|---|---|---|---|---|"]
        for phase, v in endpoints.items():
            for region, c in v.get("clusters", {}).items():
                copies = ", ".join(f"{ns}: {x.get('ACTIVE_REGION')}" for ns, x in c.get("copies", {}).items())
                ok = "n/a" if c.get("points_at_active") is None else ("yes" if c["points_at_active"] else "NO")
                restarted = "n/a" if c.get("restarted") is None else ("yes" if c["restarted"] else "NO")
                lines.append(f"| {phase} | {region} | {'yes' if c.get('reachable') else 'no (region down)'} | "
                             f"{copies or 'n/a'} | {ok} | {restarted} |")
        lines.append("")
    fb_systems = (report.get("failback") or {}).get("systems")
    if fb_systems:
        lines += ["## Failback, per system", "", "| system | longest write pause (s) | acknowledged in DR or since the "
                  "failback | of those not at home | processed again since the failback |", "|---|---|---|---|---|"]
        for name, s in fb_systems.items():
            lines.append(f"| {name} | {_fmt(s.get('write_pause_seconds'))} | {_fmt(s.get('acknowledged_since_failover'))} "
                         f"| {_fmt(s.get('acked_lost_since_failover'))} | {_fmt(s.get('duplicates_since_failback'))} |")
        lines.append("")
    lines += ["## Steps", "", "| step | start (+s) | duration (s) | status | result |", "|---|---|---|---|---|"]
    t0 = report.get("t0") or 0.0
    for s in report.get("steps", []):
        start = s.get("start")
        end = s.get("end")
        lines.append(f"| {s['name']} | {_fmt(None if start is None else start - t0)} | "
                     f"{_fmt(None if (start is None or end is None) else end - start)} | {s.get('status')} | "
                     f"{str(s.get('result') or '').replace('|', '/')} |")
    lines.append("")
    if report.get("gates"):
        lines += ["## Gates", ""] + [f"- {'pass' if g['passed'] else 'FAIL'} `{g['name']}`: {g['sentence']}"
                                     for g in report["gates"]] + [""]
    if report.get("reconcile"):
        lines += ["## Bring the stacks in line", "", "```"] + report["reconcile"] + ["```", ""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def plot_timeline(report: dict[str, Any], timeline: dict[str, Any], path: Path) -> None:
    """Writes per second through the outage, the steps, and the RTO window."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = report.get("t0") or 0.0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for region, series in sorted((timeline.get("writes_per_second") or {}).items()):
        xs = [t - t0 for t, _ in series]
        ys = [n for _, n in series]
        ax1.step(xs, ys, where="post", label=f"acked writes/s in {region}")
    for system, per_region in sorted((timeline.get("systems_per_second") or {}).items()):
        for region, series in sorted(per_region.items()):
            ax1.plot([t - t0 for t, _ in series], [n for _, n in series], linewidth=0.8, alpha=0.7,
                     label=f"acked {system}/s in {region}")
    window = timeline.get("outage")
    if window:
        ax1.axvspan(window[0] - t0, window[1] - t0, color="tab:red", alpha=0.15,
                    label=f"client-observed outage {window[1] - window[0]:.2f} s")
    if timeline.get("fault_at"):
        ax1.axvline(timeline["fault_at"] - t0, color="tab:red", linestyle="--", label="fault")
    ax1.set_ylabel("writes/s")
    ax1.legend(loc="upper right", fontsize=8)
    lost = ", ".join(f"{name} {_fmt(s.get('acked_lost'))}" for name, s in (report.get("systems") or {}).items())
    ax1.set_title(f"{report.get('scenario')}: RTO {_fmt(report.get('rto_seconds'), ' s')}, acked lost: "
                  + (lost or _fmt((report.get("rpo") or {}).get("acked_writes_lost"))), fontsize=9)
    steps = [s for s in report.get("steps", []) if s.get("start") is not None and s.get("end") is not None]
    for i, s in enumerate(steps):
        ax2.barh(i, max(s["end"] - s["start"], 0.005), left=s["start"] - t0,
                 color="tab:green" if s.get("status") in ("done", "skipped") else "tab:orange")
    ax2.set_yticks(range(len(steps)))
    ax2.set_yticklabels([s["name"] for s in steps], fontsize=7)
    ax2.set_xlabel(f"seconds since {iso(t0)}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


COMPONENT_OF = {"postgres": "database", "kafka": "kafka", "s3": "object_storage"}
"""The drill's systems → the components the objectives name (planning documents 001 and 004)."""


def objectives_of(outputs) -> dict:
    """The service's objectives and each component's (its own, or the service's)."""
    o = outputs.objectives
    of = getattr(o, "of", None) or (lambda c: o)  # (an objectives record without components: the service's)
    return {"rto_seconds": o.rto_seconds, "rpo_seconds": o.rpo_seconds,
            "components": {c: {"rto_seconds": of(c).rto_seconds, "rpo_seconds": of(c).rpo_seconds}
                           for c in ("database", "kafka", "object_storage")}}


def component_rto_reasons(recovered: dict, objectives: dict) -> list[str]:
    """A system (its writers, or Kafka's consumers) back later than its component's RTO objective."""
    reasons = []
    for system, roles in (recovered.get("systems") or {}).items():
        component = COMPONENT_OF.get(system)
        if component is None:
            continue
        own = objectives["components"][component]["rto_seconds"]
        for role, w in roles.items():
            if w.get("seconds") is not None and w["seconds"] > own:
                reasons.append(f"{system} {role}: RTO {w['seconds']:.2f} s exceeds the {component} objective {own} s")
    return reasons
