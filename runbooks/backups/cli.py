"""What the backup runbooks (snapshot, restore, verify_backup, undelete) share on the command line.

The region-pair runbooks' CLI (``runbooks.plans.cli``) is built around a failover's direction, gates
and lock; these runbooks reuse its outputs loading, console and journal choice, and add what
they need: a plan built after the input is validated (bad input creates nothing, not even a
journal), an audit trail that also goes to the adapter's sink (AWS: the object-locked backups
bucket), the Prometheus metrics file and the adapter's metrics (CloudWatch), a report, and a
``finish`` hook that always runs (verify_backup tears its temporary instance down there).

Exit codes as in ``runbooks.plans.cli``: 0 ok, 1 failed (or a verification failed), 2 bad input,
4 declined, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

from contract.outputs import Outputs
from runbooks.backups.ports import BackupPorts
from runbooks.core import helptext, metrics as prom
from runbooks.core.audit import AuditLog, DurableAudit, operator
from runbooks.core.cli import Console, load_outputs
from runbooks.core.clock import Clock, SystemClock, iso
from runbooks.core.engine import Plan, Runner, Status
from runbooks.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput, Declined, RunbookError, Unreachable
from runbooks.core.journal import Journal, intent_refusal
from runbooks.core.metrics import Sample
from runbooks.core.notify import Notifications
from runbooks.core.ports import LogNotifier
from runbooks.core.redact import scrub

BackupPortsFactory = Callable[[Outputs, Clock], BackupPorts]


TeeAudit = DurableAudit  # the name this module used before the region-pair runbooks shared it


@dataclass
class Ctx:
    args: argparse.Namespace
    outputs: Outputs
    ports: BackupPorts
    databases: list[str]
    run_id: str
    clock: Clock
    resumed: bool = False
    journal: Journal | None = None
    audit: AuditLog | None = None
    results: dict[str, Any] = field(default_factory=dict)
    """Per database: what the steps found (the report's and the metrics' source)."""
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, event: str, **fields: Any) -> None:
        """A structured fact for the journal (a resumed run reads it back with ``recorded``)."""
        if self.journal is not None:
            self.journal.append(event, **fields)

    def recorded(self, event: str) -> list[dict]:
        return self.journal.values(event) if self.journal is not None else []

    def audit_action(self, action: str, target: str, result: str, detail: str = "") -> None:
        if self.audit is not None:
            self.audit.record(action, target, result, detail)


@dataclass
class BackupRunbook:
    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    plan: Callable[[Ctx], Plan]
    """Validate the input (raise BadInput: nothing is created) and build the plan."""
    summarize: Callable[[Ctx], dict]
    """The runbook's result: at least ``passed`` (bool) and ``summary`` (a sentence)."""
    finish: Callable[[Ctx], list[str]] | None = None
    """Always called after the run (success, failure, interrupt); returns what it did."""
    one_database: bool = False
    per_database: bool = True
    """False (undelete): the runbook works on buckets; it takes no --database, so a stray one is
    an error instead of being silently ignored."""
    resume_by_default: bool = True
    """A plain rerun continues an unfinished run. False (verify_backup): only with --resume or
    --run-id; a scheduled verification is a new verification, not yesterday's resumed."""
    not_intent: frozenset[str] = frozenset({"timeout", "lock_timeout", "latest"})
    """Options of ``add_arguments`` that do not change what a run does (how long to wait; restore's
    ``--latest``, which is its default): a resumed run may differ in these, never in the others."""


def intent(rb: BackupRunbook, args: argparse.Namespace, databases: list[str]) -> dict[str, Any]:
    """What a run is for: its databases and the runbook's own options (times normalised to UTC),
    minus ``rb.not_intent``. Recorded when a run starts; a run is resumed only with the same."""
    own = argparse.ArgumentParser(add_help=False)
    rb.add_arguments(own)
    out: dict[str, Any] = {"databases": sorted(databases)}
    for dest in sorted({a.dest for a in own._actions} - rb.not_intent):
        value = getattr(args, dest, None)
        if dest.endswith("to_time") and value:
            value = iso(parse_time(value))
        out[dest] = sorted(value) if isinstance(value, list) else value
    return out


def parse_time(text: str, what: str = "--to-time") -> float:
    """ISO 8601 with a timezone (``2026-11-22T05:30:00Z``, ``…+01:00``) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} {text!r}: not a time; give ISO 8601 with a timezone, e.g. 2026-11-22T05:30:00Z") from None
    if dt.tzinfo is None:
        raise BadInput(f"{what} {text!r} has no timezone; add one (Z for UTC, or e.g. +01:00), a restore to the "
                       "wrong hour is worse than none")
    return dt.astimezone(timezone.utc).timestamp()


def parser(rb: BackupRunbook) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m runbooks.{rb.name}", description=rb.description,
                                formatter_class=helptext.Formatter, epilog=helptext.BACKUP_EXIT_CODES)
    src = p.add_argument_group("where the region pair is described (required: --outputs or --stack, at least one)")
    src.add_argument("--outputs", action="append", metavar="FILE", default=[],
                     help="outputs document (repeatable), or a sandbox's DIR/outputs.json")
    src.add_argument("--stack", action="append", metavar="NAME", default=[],
                     help="read a stack's outputs with `pulumi stack output --json` (repeatable)")
    src.add_argument("--cwd", metavar="DIR", help="the Pulumi project directory for --stack (default: here)")
    if rb.per_database:
        p.add_argument("--database", action="append", metavar="NAME", default=[],
                       help="logical database" + (" (required when there are several)" if rb.one_database
                                                  else " (repeatable; default: all)"))
    else:
        p.set_defaults(database=[])
    p.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--resume", action="store_true", help="continue the newest unfinished run (a plain rerun does too)")
    p.add_argument("--run-id", help="continue (or start) the run with this id")
    p.add_argument("--new-run", action="store_true", help="start a new run even if an unfinished one exists")
    p.add_argument("--state-dir", type=Path, help="journals and audit log (default: the sandbox's dir, or "
                                                  "./.regionpair/PROJECT)")
    p.add_argument("--report-dir", type=Path, help="where report.json and report.md go "
                                                   "(default: STATE_DIR/reports/RUN_ID)")
    p.add_argument("--metrics-file", type=Path, help="Prometheus text file to update (default: "
                                                     "STATE_DIR/metrics/regionpair_backups.prom)")
    p.add_argument("--output", choices=["text", "json"], default="text",
                   help="text: the plan, progress and a summary for people; json: one result document for machines")
    rb.add_arguments(p)
    return p


def _new_run_id(name: str, clock: Clock) -> str:
    stamp = iso(clock.time()).replace(":", "").replace("-", "").split(".")[0]
    return f"{name}-{stamp}-{secrets.token_hex(2)}"


def _pick_run(args, state_dir: Path, name: str, clock: Clock, console: Console,
              resume_by_default: bool = True) -> tuple[str, Journal | None]:
    if args.run_id:
        try:
            j = Journal.open(state_dir, args.run_id, clock)
            return j.run_id, j
        except FileNotFoundError:
            if args.resume:
                raise BadInput(f"--run-id {args.run_id}: no such run in {state_dir / 'runs'}") from None
            return args.run_id, None
    if not args.new_run and (args.resume or resume_by_default):
        unfinished = Journal.unfinished(state_dir, name, clock)
        if unfinished is not None:
            console.line(f"resuming unfinished run {unfinished.run_id} (started {iso(unfinished.started_at)}); "
                         "pass --new-run to start afresh")
            return unfinished.run_id, unfinished
    return _new_run_id(name, clock), None


def render_plan(rb: BackupRunbook, ctx: Ctx, plan: Plan) -> list[str]:
    probe = Runner(plan, journal=None, audit=None, clock=ctx.clock)  # type: ignore[arg-type]
    checks = probe.check_all()
    lines = [f"{rb.name}: databases {', '.join(ctx.databases) or '-'} ({ctx.outputs.target})", "steps:"]
    if not plan.steps:
        lines.append("  (none: nothing to do)")
    for n, step in enumerate(plan.steps, 1):
        c = checks[step.name]
        mark = {Status.DONE: "done ", Status.TODO: "to do", Status.BLOCKED: "BLOCK"}[c.status]
        lines.append(f"  {n:>2}. [{mark}] {step.name}: {step.action} — now: {c.sentence}")
    return lines


def main(rb: BackupRunbook, argv: list[str] | None = None, *, ports_factory: BackupPortsFactory | None = None,
         clock: Clock | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = parser(rb).parse_args(argv)
    clock = clock or SystemClock()
    console = Console(stdout or sys.stdout, args.output == "json", clock)
    result: dict = {"runbook": rb.name}
    try:
        code = _main(rb, args, console, clock, ports_factory, stdin or sys.stdin, result)
    except RunbookError as exc:
        code = exc.exit_code
        result.setdefault("result", {2: "bad-input", 4: "declined", 3: "refused"}.get(code, "failed"))
        result["error"] = scrub(str(exc))
        console.line(f"{rb.name}: {result['result'].upper() if code == EXIT_FAILED else result['result']}: "
                     f"{result['error']}")
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        result.update(result="interrupted", error="interrupted; rerun to continue from the journal")
        console.line(f"{rb.name}: interrupted; rerun (or --resume) to continue from the journal")
    result["exit_code"] = code
    if args.output == "json":
        print(json.dumps(scrub(result), indent=2, sort_keys=True, default=str), file=console.out, flush=True)
    return code


def _main(rb: BackupRunbook, args, console: Console, clock: Clock, ports_factory, stdin, result: dict) -> int:
    outputs = load_outputs(args)
    known = list(outputs.primary.databases)
    unknown = [d for d in args.database if d not in known]
    if unknown:
        raise BadInput(f"--database {', '.join(unknown)}: not in the outputs; known: {', '.join(known)}")
    databases = args.database or known
    if rb.one_database and len(databases) != 1:
        raise BadInput(f"{rb.name} works on one database at a time: pass --database NAME (one of {', '.join(known)})")
    if ports_factory is None:
        from runbooks.adapters import backup_ports_for
        ports_factory = backup_ports_for
    ports = ports_factory(outputs, clock)
    try:
        return _run(rb, args, console, clock, outputs, databases, ports, stdin, result)
    finally:
        ports.close()


def _decision_audit(rb: BackupRunbook, state_dir: Path, clock: Clock, ports: BackupPorts, run_id: str) -> DurableAudit:
    """The audit of a run that changes nothing (a dry run, a declined prompt): local and durable, as
    the failover's (runbooks/plans/cli.py), so the trail shows who looked and who said no."""
    return DurableAudit(state_dir / "audit.jsonl", clock, rb.name, run_id, sink=ports.audit_sink)


def _run(rb: BackupRunbook, args, console: Console, clock: Clock, outputs: Outputs, databases: list[str],
         ports: BackupPorts, stdin, result: dict) -> int:
    state_dir = args.state_dir or Path(ports.extras.get("state_dir") or Path(".regionpair") / outputs.project)
    run_id, journal = (("dry-run", None) if args.dry_run else _pick_run(args, state_dir, rb.name, clock, console, rb.resume_by_default))
    ctx = Ctx(args, outputs, ports, databases, run_id, clock, resumed=journal is not None, journal=journal)
    plan = rb.plan(ctx)  # validates: BadInput here has created nothing
    result.update(databases=databases)
    wanted = intent(rb, args, databases)
    if journal is not None:
        refusal = intent_refusal(journal, wanted, rb.name)
        if refusal:
            raise BadInput(refusal)

    what = ", ".join(databases) or "buckets"
    if args.dry_run:
        for line in render_plan(rb, ctx, plan):
            console.line(line)
        for key, value in ctx.results.get("_dry", {}).items():
            console.line(f"{key}:" + ("".join(f"\n  {v}" for v in value) if isinstance(value, list) else f" {value}"))
        console.line("dry run: nothing was changed")
        probe = Runner(plan, journal=None, audit=None, clock=clock)  # type: ignore[arg-type]
        result.update(result="dry-run", steps=[{"name": n, "status": c.status.value, "now": c.sentence}
                                               for n, c in probe.check_all().items()], **ctx.results.get("_dry", {}))
        _decision_audit(rb, state_dir, clock, ports, "dry-run").record("dry-run", what, "ok", "nothing was changed")
        return EXIT_OK

    if not args.yes:
        for line in render_plan(rb, ctx, plan):
            console.line(line)
        if not stdin.isatty():
            _decision_audit(rb, state_dir, clock, ports, "no-run").record(
                "decision", what, "declined", "no terminal to confirm and no --yes; nothing was changed")
            raise BadInput("no terminal to ask for confirmation: pass --yes to act, or --dry-run to look")
        console.line(f"Type {rb.name} to proceed: ")
        answer = stdin.readline().strip()
        if answer != rb.name:
            _decision_audit(rb, state_dir, clock, ports, "no-run").record(
                "decision", what, "declined", f"answered {answer!r} at the prompt; nothing was changed")
            raise Declined(f"declined (answered {answer!r}); nothing was changed")

    if journal is None:
        journal = Journal.create(state_dir, rb.name, clock, run_id=run_id)
        journal.record_intent(wanted)
    ctx.journal = journal
    ctx.audit = DurableAudit(state_dir / "audit.jsonl", clock, rb.name, journal.run_id, sink=ports.audit_sink)
    result["run_id"] = journal.run_id
    journal.append("context", databases=databases, target_kind=outputs.target,
                   argv=[a for a in sys.argv[1:] if not a.startswith("--outputs")])
    runner = Runner(plan, journal, ctx.audit, clock, progress=console.progress)
    tell = Notifications(ports.notifier or LogNotifier(logging.getLogger(__name__)), rb.name, journal.run_id,
                         ctx.audit.record)
    result["notifications"] = tell.sent
    tell.send("start", f"{'resumed' if ctx.resumed else 'started'}: {', '.join(databases) or 'buckets'} "
                       f"({outputs.target})", [f"by {operator()}"])
    runner.on_failure = lambda step, why: tell.send("step-failed", f"step {step} failed", [why])
    failure: BaseException | None = None
    try:
        run = runner.run()
        if run.nothing_to_do:
            ctx.notes.append("nothing to do: every step was already done")
    except RunbookError as exc:
        failure = exc
        journal.append("run-end", result="failed", error=str(exc))
    except KeyboardInterrupt:
        tell.send("end", "interrupted; rerun to continue from the journal")
        raise
    finally:
        if rb.finish is not None:
            for line in rb.finish(ctx):
                console.progress(line)
                ctx.notes.append(line)

    summary = rb.summarize(ctx)
    passed = summary.get("passed", failure is None) and failure is None
    if failure is not None:
        summary.setdefault("reasons", []).append(str(failure))
    _lag_samples(ctx)
    metrics_path = args.metrics_file or state_dir / "metrics" / "regionpair_backups.prom"
    if ctx.samples:
        prom.update(metrics_path, ctx.samples)
        try:
            ctx.notes.append(ports.metrics.put(ctx.samples))
        except RunbookError as exc:
            ctx.notes.append(f"metrics not published remotely: {exc}")
    rep = _report(rb, ctx, journal, summary, passed)
    tell.send("end", f"{'PASSED' if passed else 'FAILED'}: {summary.get('summary', '')}"
              + (f" ({rep['duration_seconds']:.1f} s)" if rep.get("duration_seconds") is not None else ""),
              list(summary.get("reasons") or []) + [f"{s['name']}: {s.get('status')}" for s in rep["steps"]])
    rep["notifications"] = tell.sent
    rep["notes"] = rep["notes"] + tell.undelivered_notes() + ctx.audit.notes()
    paths = write_report(rep, args.report_dir or state_dir / "reports" / journal.run_id)
    result.update(result="ok" if passed else "failed", passed=passed, report=paths, metrics=str(metrics_path),
                  steps=rep["steps"], **{k: v for k, v in summary.items() if k not in ("passed",)})
    if passed:
        console.line(f"{rb.name}: {summary.get('summary', 'complete')}; report: {paths['markdown']}")
        return EXIT_OK
    why = "; ".join(summary.get("reasons") or []) or "see the report"
    console.line(f"{rb.name}: FAILED: {summary.get('summary', '')} — {why}; report: {paths['markdown']}")
    if failure is not None:
        raise failure
    result["error"] = f"{summary.get('summary', 'failed')}: {why}"
    return EXIT_FAILED


def _lag_samples(ctx: Ctx) -> None:
    """Replication lag of each database's replica, as one more metric of every backup run."""
    if ctx.ports.sql is None:
        return
    region = ctx.outputs.secondary.name
    for db in ctx.databases:
        try:
            st = ctx.ports.sql.replication(region, db)
        except (Unreachable, RunbookError) as exc:
            ctx.notes.append(f"replication lag of {region}/{db} not measured: {exc}")
            continue
        if st.in_recovery and st.lag_seconds is not None:
            ctx.samples.append(Sample(prom.REPLICATION_LAG, st.lag_seconds, {"database": db, "region": region},
                                      prom.HELP[prom.REPLICATION_LAG], "Seconds"))


def _report(rb: BackupRunbook, ctx: Ctx, journal: Journal, summary: dict, passed: bool) -> dict:
    steps = sorted(journal.step_history().values(), key=lambda s: s["start"])
    events = journal.events()
    t0 = events[0]["t"] if events else None
    t_end = max((s["end"] for s in steps if s.get("end")), default=t0)
    return {"runbook": rb.name, "run_id": journal.run_id, "target_kind": ctx.outputs.target,
            "databases": ctx.databases, "who": operator(), "started_at": iso(t0) if t0 else None,
            "ended_at": iso(t_end) if t_end else None, "t0": t0,
            "duration_seconds": None if t0 is None or t_end is None else t_end - t0,
            "passed": passed, "summary": summary, "steps": steps, "notes": ctx.notes,
            "metrics": [{"name": s.name, "labels": s.labels, "value": s.value} for s in ctx.samples]}


def write_report(report: dict, directory: Path) -> dict[str, str]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    report = scrub(report)
    paths = {"json": str(directory / "report.json"), "markdown": str(directory / "report.md")}
    Path(paths["json"]).write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    s = report["summary"]
    lines = [f"# {report['runbook']} report", "",
             f"**{'PASSED' if report['passed'] else 'FAILED'}** — {s.get('summary', '')}", ""]
    if s.get("reasons"):
        lines += ["Why it failed:", ""] + [f"- {r}" for r in s["reasons"]] + [""]
    lines += [f"Run `{report['run_id']}` by {report['who']}, {report['started_at']} → {report['ended_at']} "
              f"({report['target_kind']}), databases: {', '.join(report['databases'])}.", ""]
    for key, title in (("details", "Details"), ("listing", "Listing")):
        if s.get(key):
            lines += [f"## {title}", ""] + [f"- {d}" for d in s[key]] + [""]
    lines += ["## Steps", "", "| step | duration (s) | status | result |", "|---|---|---|---|"]
    for st in report["steps"]:
        dur = "" if not (st.get("start") and st.get("end")) else f"{st['end'] - st['start']:.2f}"
        lines.append(f"| {st['name']} | {dur} | {st.get('status')} | {str(st.get('result') or '').replace('|', '/')} |")
    lines.append("")
    if report["metrics"]:
        lines += ["## Metrics", ""] + [f"- `{m['name']}` {m['labels']} = {m['value']}" for m in report["metrics"]] + [""]
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    Path(paths["markdown"]).write_text("\n".join(lines))
    return paths
