"""The command line of the region-pair runbooks (failover, switchover, failback): load and validate
the outputs, pick the adapters, show the plan, ask, lock, run, journal, report, exit with a
meaningful code.

Exit codes: 0 success (also: nothing to do), 1 failure (the journal lets a rerun finish the
job), 2 bad input (nothing changed), 3 refused by a gate or the lock (nothing changed),
4 declined at the prompt, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from contract.outputs import Outputs
from runbooks.core import dr_metrics, helptext, report as reports
from runbooks.core.audit import DurableAudit, operator
from runbooks.core.cli import Console, load_outputs
from runbooks.core.clock import Clock, SystemClock, iso
from runbooks.core.engine import Plan, Runner, Status
from runbooks.core.errors import EXIT_INTERRUPTED, EXIT_OK, BadInput, Declined, GateFailed, LockHeld, RunbookError
from runbooks.core.journal import Journal, intent_refusal
from runbooks.core.notify import Notifications, measured
from runbooks.core.ports import Ports
from runbooks.plans.context import Context, Timeouts

log = logging.getLogger(__name__)

PortsFactory = Callable[[Outputs, Clock], Ports]


@dataclass
class Runbook:
    name: str
    description: str
    plan: Callable[[Context], Plan]
    direction: Callable[[Outputs], tuple[str, str]]
    """(source, target) regions for this runbook, from the provisioned roles."""
    reconcile: Callable[[Outputs], list[str]]
    """The commands that bring the stacks in line with what the runbook did."""
    planned: bool
    settled: Callable[[Context], str | None] | None = None
    """Read before anything else: a sentence when the pair is in a state where this runbook has
    nothing to do (e.g. a failback on a pair that never failed over); the run then changes
    nothing, says so and exits 0."""

    def main(self, argv: list[str] | None = None, **kwargs) -> int:
        """This runbook's command line: each runbook module's ``main``."""
        return main(self, argv, **kwargs)


def parser(runbook: Runbook) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m runbooks.{runbook.name}", description=runbook.description,
                                formatter_class=helptext.Formatter, epilog=helptext.RUNBOOK_EXIT_CODES)
    src = p.add_argument_group("where the region pair is described (required: --outputs or --stack, at least one)")
    src.add_argument("--outputs", action="append", metavar="FILE", default=[],
                     help="outputs document (repeatable: prod's and dr's, or the dr stack's alone, or a sandbox's "
                          "DIR/outputs.json)")
    src.add_argument("--stack", action="append", metavar="NAME", default=[],
                     help="read a stack's outputs with `pulumi stack output --json` (repeatable)")
    src.add_argument("--cwd", metavar="DIR", help="the Pulumi project directory for --stack (default: here)")
    p.add_argument("--database", action="append", metavar="NAME", default=[],
                   help="only these logical databases (default: all of them)")
    p.add_argument("--dry-run", action="store_true", help="show the plan and the gate results; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="go on although a gate refused (the override is audited)")
    p.add_argument("--resume", action="store_true",
                   help="continue the newest unfinished run (a plain rerun does so too)")
    p.add_argument("--run-id", help="continue (or start) the run with this id")
    p.add_argument("--new-run", action="store_true", help="start a new run even if an unfinished one exists")
    p.add_argument("--break-lock", action="store_true",
                   help="take the pair's lock from another run (only when you know it is dead)")
    p.add_argument("--state-dir", type=Path, help="journals, audit log, lock (default: the sandbox's dir, or "
                                                  "./.regionpair/PROJECT)")
    p.add_argument("--report-dir", type=Path, help="where report.json and report.md go "
                                                   "(default: STATE_DIR/reports/RUN_ID)")
    p.add_argument("--metrics-file", type=Path,
                   help="Prometheus textfile-collector file for the DR metrics this run measured (default: "
                        "STATE_DIR/metrics/regionpair_dr.prom); also to CloudWatch RegionPair/DR in AWS")
    p.add_argument("--reconcile", action="store_true",
                   help="after success, run the commands that bring the stacks in line (needs the pulumi CLI)")
    p.add_argument("--promote-timeout", type=float, help="seconds to wait for a promotion (default 300)")
    if runbook.name == "failback":
        p.add_argument("--objects-seeded", action="store_true",
                       help="you copied the DR bucket's existing versions home yourself (after the failback enabled "
                            "the reverse rule): the objects lane trusts it and starts no S3 Batch Replication job "
                            "(audited); AWS only — the sandbox checks it itself")
    p.add_argument("--output", choices=["text", "json"], default="text",
                   help="text: the plan, progress and a table for people; json: one result document for machines")
    return p


def render_plan(runbook: Runbook, ctx: Context, plan: Plan, runner: Runner, gates) -> list[str]:
    checks = runner.check_all()
    lines = [f"{runbook.name}: {ctx.source} → {ctx.target}, databases: {', '.join(ctx.databases)}", "gates:"]
    lines += [f"  {'pass' if g.passed else 'FAIL'}  {g.name}: {g.sentence}" for g in gates] or ["  (none)"]
    lines.append("steps (each is checked again when reached; [later] = done now, but after a step still to do):")
    n = 0
    pending_lanes: set = set()
    pending_steps: set = set()
    for phase in plan.phases:
        for step in phase.steps:
            n += 1
            c = checks[step.name]
            mark = {Status.DONE: "done ", Status.TODO: "to do", Status.BLOCKED: "BLOCK"}[c.status]
            if c.status is Status.DONE and (step.lane in pending_lanes or pending_steps.intersection(step.after)):
                mark = "later"
                pending_steps.add(step.name)
            elif c.status is not Status.DONE:
                pending_lanes.add(step.lane)
                pending_steps.add(step.name)
            extra = " (best effort)" if step.best_effort else ""
            lines.append(f"  {n:>2}. [{mark}] {step.name}: {step.action}{extra} — now: {c.sentence}")
    return lines


def _journal_for(args, state_dir: Path, runbook: str, clock: Clock, console: Console) -> tuple[Journal, bool]:
    if args.run_id:
        try:
            j = Journal.open(state_dir, args.run_id, clock)
            console.line(f"continuing run {j.run_id}")
            return j, True
        except FileNotFoundError:
            if args.resume:
                raise BadInput(f"--run-id {args.run_id}: no such run in {state_dir / 'runs'}") from None
            return Journal.create(state_dir, runbook, clock, run_id=args.run_id), False
    if not args.new_run:
        unfinished = Journal.unfinished(state_dir, runbook, clock)
        if unfinished is not None:
            console.line(f"resuming unfinished run {unfinished.run_id} (started {iso(unfinished.started_at)}); "
                         "pass --new-run to start afresh")
            return unfinished, True
    if args.resume:
        console.line("nothing to resume: starting a new run")
    return Journal.create(state_dir, runbook, clock), False


def run_reconcile(commands: list[str], runner=subprocess.run, cwd=None) -> list[str]:
    if shutil.which("pulumi") is None and runner is subprocess.run:
        return ["the pulumi CLI is not on PATH: run these yourself:"] + commands
    done = []
    for cmd in commands:
        proc = runner(cmd, shell=True, cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RunbookError(f"reconcile command failed ({proc.returncode}): {cmd}: "
                               f"{(proc.stderr or '').strip().splitlines()[-1:]}")
        done.append(f"ran: {cmd}")
    return done


def main(runbook: Runbook, argv: list[str] | None = None, *, ports_factory: PortsFactory | None = None,
         clock: Clock | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         reconcile_runner=subprocess.run) -> int:
    args = parser(runbook).parse_args(argv)
    clock = clock or SystemClock()
    console = Console(stdout or sys.stdout, args.output == "json", clock)
    result: dict = {"runbook": runbook.name}
    try:
        code = _main(runbook, args, console, clock, ports_factory, stdin or sys.stdin, result, reconcile_runner)
    except RunbookError as exc:
        code = exc.exit_code
        result.setdefault("result", {3: "refused", 2: "bad-input", 4: "declined"}.get(code, "failed"))
        result["error"] = str(exc)
        if isinstance(exc, GateFailed):
            result["gates"] = [g.__dict__ for g in exc.results]
        if isinstance(exc, LockHeld):
            result["lock_holder"] = exc.holder
        console.line(f"{runbook.name}: {result['result']}: {exc}")
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        result.update(result="interrupted", error="interrupted; rerun to continue from the journal")
        console.line(f"{runbook.name}: interrupted; rerun (or --resume) to continue from the journal")
    result["exit_code"] = code
    if args.output == "json":
        print(json.dumps(result, indent=2, sort_keys=True, default=str), file=console.out, flush=True)
    return code


def _main(runbook: Runbook, args, console: Console, clock: Clock, ports_factory, stdin, result: dict,
          reconcile_runner) -> int:
    outputs = load_outputs(args)
    unknown = [d for d in args.database if d not in outputs.primary.databases]
    if unknown:
        raise BadInput(f"--database {', '.join(unknown)}: not in the outputs; known: "
                       f"{', '.join(outputs.primary.databases)}")
    databases = args.database or list(outputs.primary.databases)
    if ports_factory is None:
        from runbooks.adapters import ports_for
        ports_factory = ports_for
    ports = ports_factory(outputs, clock)
    try:
        return _run(runbook, args, console, clock, outputs, databases, ports, stdin, result, reconcile_runner)
    finally:
        ports.close()


def _run(runbook: Runbook, args, console: Console, clock: Clock, outputs: Outputs, databases: list[str],
         ports: Ports, stdin, result: dict, reconcile_runner) -> int:
    source, target = runbook.direction(outputs)
    timeouts = Timeouts(**({"promote": args.promote_timeout} if args.promote_timeout else {}))
    confirmations = frozenset(["objects-seeded"] if getattr(args, "objects_seeded", False) else [])
    ctx = Context(outputs, ports, source, target, databases, timeouts, confirmations=confirmations)
    plan = runbook.plan(ctx)
    state_dir = args.state_dir or Path(ports.extras.get("state_dir") or Path(".regionpair") / outputs.project)
    result.update(source=source, target=target, databases=databases)

    # every invocation leaves an audit entry, also those that change nothing (dry run, nothing to
    # do, declined, refused): the run id is the journal's once there is one
    audit = DurableAudit(state_dir / "audit.jsonl", clock, runbook.name, "dry-run" if args.dry_run else "no-run",
                         sink=ports.audit_sink)
    result["audit"] = str(audit.path)
    what = f"{source} → {target}"

    why = runbook.settled(ctx) if runbook.settled is not None else None
    if why:
        audit.record("run", what, "nothing to do", why)
        result.update(result="nothing-to-do", note=why)
        console.line(f"{runbook.name}: {why}. Nothing was changed.")
        return EXIT_OK

    if args.dry_run:
        probe = Runner(plan, journal=None, audit=None, clock=clock)  # type: ignore[arg-type]
        gates = probe.evaluate_gates()
        for line in render_plan(runbook, ctx, plan, probe, gates):
            console.line(line)
        would_refuse = not all(g.passed for g in gates) and not args.force
        result.update(result="dry-run", gates=[g.__dict__ for g in gates],
                      steps=[{"name": n, "status": c.status.value, "now": c.sentence}
                             for n, c in probe.check_all().items()])
        console.line("dry run: nothing was changed" + ("; the gates would refuse this run" if would_refuse else ""))
        audit.record("dry-run", what, "gates would refuse" if would_refuse else "ok",
                     f"databases: {', '.join(databases)}; " + "; ".join(
                         f"{g.name}: {'pass' if g.passed else 'FAIL'}" for g in gates)
                     + ("; --force given" if args.force else ""))
        result["audit_notes"] = audit.notes()
        return 3 if would_refuse else EXIT_OK

    journal, resumed = _journal_for(args, state_dir, runbook.name, clock, console)
    # what decides the run's effect: a rerun that would resume it with other databases (whose
    # gates the resumed run would skip) or another direction is refused. A confirmation such as
    # --objects-seeded is not: a failed step asks for it, and the rerun that adds it finishes the run
    intent = {"databases": sorted(databases), "source": source, "target": target}
    if resumed:
        refusal = intent_refusal(journal, intent, runbook.name)
        if refusal:
            raise BadInput(refusal)
    else:
        journal.record_intent(intent)
    ctx.run_id = journal.run_id
    ctx.journal = journal.append
    audit.run_id = journal.run_id
    runner = Runner(plan, journal, audit, clock, progress=console.progress)
    result["run_id"] = journal.run_id

    if not args.yes:
        gates = runner.evaluate_gates() if not journal.gates_passed() else []
        for line in render_plan(runbook, ctx, plan, runner, gates):
            console.line(line)
        if not stdin.isatty():
            journal.append("run-end", result="declined", reason="no terminal to confirm and no --yes")
            audit.record("decision", what, "declined", "no terminal to confirm and no --yes; nothing was changed")
            raise BadInput("no terminal to ask for confirmation: pass --yes to act, or --dry-run to look")
        console.line(f"Type the target region ({target}) to proceed: ")
        asked = clock.monotonic()
        answer = stdin.readline().strip()
        # the operator's decision is not the runbook's work: the report keeps it apart from the RTO
        journal.append("decision", answer_matches=answer == target, waited_seconds=clock.monotonic() - asked)
        if answer != target:
            journal.append("run-end", result="declined")
            audit.record("decision", what, "declined", f"answered {answer!r}; nothing was changed")
            raise Declined(f"declined (answered {answer!r}); nothing was changed")

    holder = {"run_id": journal.run_id, "runbook": runbook.name, "who": operator(), "since": iso(clock.time())}
    try:
        console.progress(ports.lock.acquire(holder, break_lock=args.break_lock))
    except LockHeld as exc:
        audit.record("lock", outputs.project, "refused", str(exc))
        raise
    audit.record("lock", outputs.project, "taken (--break-lock)" if args.break_lock else "taken")
    audit.record("run", what, "resumed" if resumed else "started",
                 f"databases: {', '.join(databases)}" + ("; --force: gates may be overridden" if args.force else ""))
    journal.append("context", source=source, target=target, databases=databases, target_kind=outputs.target)
    tell = Notifications(ports.notifier, runbook.name, journal.run_id, audit.record)
    result["notifications"] = tell.sent
    tell.send("start", f"{'resumed' if resumed else 'started'}: {source} → {target}",
              [f"databases: {', '.join(databases)}", f"by {operator()}"] + (["--force: gates may be overridden"]
                                                                             if args.force else []))
    runner.on_failure = lambda step, why: tell.send("step-failed", f"step {step} failed", [why])
    try:
        run = runner.run(force=args.force, resumed=resumed)
    except GateFailed as exc:
        ports.lock.release(journal.run_id)
        audit.record("lock", outputs.project, "released (refused by the gates)")
        tell.send("refused", "refused by its gates; nothing was changed",
                  [f"{g.name}: {g.sentence}" for g in exc.results if not g.passed] + ["--force overrides (audited)"])
        raise
    except RunbookError as exc:
        journal.append("run-end", result="failed", error=str(exc))
        audit.record("run", what, "failed", str(exc))
        tell.send("end", "FAILED; rerun to continue from the journal", [str(exc)])
        raise
    except KeyboardInterrupt:
        audit.record("run", what, "interrupted", "rerun to continue from the journal")
        tell.send("end", "interrupted; rerun to continue from the journal")
        raise
    if ctx.measurements:
        journal.append("measurements", **ctx.measurements)
    ports.lock.release(journal.run_id)
    audit.record("lock", outputs.project, "released")

    rep = build_report(runbook, ctx, journal, outputs)
    reconcile = rep["reconcile"]
    if args.reconcile and reconcile and not run.nothing_to_do:
        rep["notes"] += run_reconcile(reconcile, reconcile_runner, cwd=args.cwd)
    tell.send("end", ("nothing to do, already complete" if run.nothing_to_do else
                      f"complete, {'PASSED' if rep['passed'] else 'FAILED'}; "
                      + measured(rep["rto_seconds"], rep["rpo"]["seconds"], rep["objectives"])),
              [f"{s['name']}: {s.get('status')}" for s in rep["steps"]] + rep.get("reasons", []))
    audit.record("run", what, "nothing to do" if run.nothing_to_do else
                 f"complete, {'PASSED' if rep['passed'] else 'FAILED'}",
                 measured(rep["rto_seconds"], rep["rpo"]["seconds"], rep["objectives"]))
    rep["notifications"] = tell.sent
    if not run.nothing_to_do:
        metrics_path = args.metrics_file or state_dir / "metrics" / dr_metrics.FILE_NAME
        rep["notes"] += dr_metrics.publish(metrics_path, dr_metrics.runbook_samples(
            runbook.name, rep, ctx.measurements, outputs.target, outputs.secondary.name), ports.metrics)
        result["metrics"] = str(metrics_path)
    rep["notes"] += tell.undelivered_notes() + audit.notes()
    paths = reports.write(rep, args.report_dir or state_dir / "reports" / journal.run_id)
    result.update(result="nothing-to-do" if run.nothing_to_do else "ok", report=paths,
                  rto_seconds=rep["rto_seconds"], decision_wait_seconds=rep["decision_wait_seconds"],
                  rpo=rep["rpo"], passed=rep["passed"],
                  steps=rep["steps"], reconcile=reconcile, streams=rep["streams"], cdc_slots=rep["cdc_slots"])
    for line in final_table(rep):
        console.line(line)
    console.line(f"{runbook.name}: {'nothing to do, already complete' if run.nothing_to_do else 'complete'}; "
                 f"report: {paths['markdown']}")
    if reconcile and not run.nothing_to_do:
        console.line("bring the stacks in line with:\n  " + "\n  ".join(reconcile))
    return EXIT_OK


def final_table(rep: dict) -> list[str]:
    """The run at a glance, for people: every step's status and duration, then RTO and RPO."""
    steps = rep.get("steps") or []
    if not steps:
        return []
    width = max(len(s["name"]) for s in steps)
    lines = ["", f"{'step':<{width}}  {'status':<18}  {'seconds':>7}", f"{'-' * width}  {'-' * 18}  {'-' * 7}"]
    for s in steps:
        took = "" if s.get("end") is None or s.get("start") is None else f"{s['end'] - s['start']:7.2f}"
        lines.append(f"{s['name']:<{width}}  {str(s.get('status')):<18}  {took:>7}")
    obj = rep.get("objectives", {})
    rpo = (rep.get("rpo") or {}).get("seconds")
    waited = rep.get("decision_wait_seconds") or 0.0
    lines.append(f"run took {rep['rto_seconds']:.2f} s of work (RTO objective {obj.get('rto_seconds')} s)"
                 + (f", plus {waited:.2f} s waiting for the operator's decision" if waited else "") + "; RPO estimate "
                 f"{'n/a' if rpo is None else f'{rpo:.2f} s'} (objective {obj.get('rpo_seconds')} s); "
                 f"{'PASSED' if rep.get('passed') else 'FAILED: ' + '; '.join(rep.get('reasons', []))}")
    return lines


def build_report(runbook: Runbook, ctx: Context, journal: Journal, outputs: Outputs) -> dict:
    """The runbook's own report. Without a workload the RTO is the run's duration (from the first
    event of the journal, so a resumed run counts its whole time) and the RPO is the pre-promotion
    estimate; a drill replaces both with what its clients saw."""
    events = journal.events()
    steps = sorted(journal.step_history().values(), key=lambda s: s["start"])
    t0 = events[0]["t"] if events else None
    t_end = max((s["end"] for s in steps if s.get("end")), default=t0)
    measurements = {}
    for e in journal.values("measurements"):
        measurements.update({k: v for k, v in e.items() if k not in ("t", "at", "run_id", "event")})
    estimate = measurements.get("rpo_estimate") or {}
    est_seconds = max((v.get("seconds") or 0.0 for v in estimate.values()), default=None) if estimate else None
    gates = []
    for e in journal.values("gates"):
        gates = e.get("results", [])
    objectives = reports.objectives_of(outputs)
    waited = sum(e.get("waited_seconds") or 0.0 for e in journal.values("decision"))
    rto = None if t0 is None or t_end is None else t_end - t0 - waited
    passed, reasons = reports.verdict(rto_seconds=rto, rpo_seconds=est_seconds, objectives=objectives, steps=steps)
    notes = [f"{s['name']}: {s['result']}" for s in steps if s.get("status") == "best-effort-failed"]
    if outputs.target == "aws":
        reconcile = runbook.reconcile(outputs)
    else:
        reconcile = []
        notes.append("sandbox target: there are no stacks to reconcile")
    return {
        "runbook": runbook.name, "scenario": runbook.name, "run_id": journal.run_id,
        "source": ctx.source, "target": ctx.target, "target_kind": outputs.target, "databases": ctx.databases,
        "t0": t0, "started_at": iso(t0) if t0 else None, "ended_at": iso(t_end) if t_end else None,
        "rto_seconds": rto, "decision_wait_seconds": waited,
        "rto_definition": "time from the run's start to its last step, less the wait for the operator's decision at "
                          "the prompt (no client workload)",
        "rpo": {"acked_writes_lost": None, "seconds": est_seconds,
                "estimate": {"seconds": est_seconds, "writes": None, "per_database": estimate}},
        "writes": {"acknowledged": None},
        "objectives": objectives, "steps": steps, "gates": gates, "passed": passed, "reasons": reasons,
        "reconcile": reconcile, "notes": notes,
        "cdc_slots": measurements.get("cdc_slots") or {},
        "streams": {k: v for k, v in measurements.items()
                    if k in ("kafka_consumer_groups", "kafka_lag_at_failover", "objects_pending_at_failover",
                             "streams_at_gate")},
    }
