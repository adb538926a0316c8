"""The runbook engine: a plan of steps behind gates, journaled, resumable, parallel where independent.

A step reads current state first (``check``: done / to do / blocked, with a sentence), acts
(``apply``) and verifies (``verify``). Because every step checks before it acts, a rerun after a
crash — or after success — does only what is still to do. Phases run in order; the steps of one
phase are independent (e.g. one per database) and run in parallel.
"""

from __future__ import annotations

import enum
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from runbooks.core.audit import AuditLog
from runbooks.core.clock import Clock
from runbooks.core.errors import GateFailed, RunbookError, StepBlocked, StepFailed
from runbooks.core.journal import Journal

log = logging.getLogger(__name__)


class Status(str, enum.Enum):
    DONE = "done"
    TODO = "to do"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Check:
    status: Status
    sentence: str

    @classmethod
    def done(cls, sentence: str) -> "Check":
        return cls(Status.DONE, sentence)

    @classmethod
    def todo(cls, sentence: str) -> "Check":
        return cls(Status.TODO, sentence)

    @classmethod
    def blocked(cls, sentence: str) -> "Check":
        return cls(Status.BLOCKED, sentence)


@dataclass
class Step:
    name: str
    """Unique in the plan, e.g. ``promote:payments``."""
    action: str
    """What apply does, in words (shown in the plan and dry-run)."""
    target: str
    """What it touches (for the audit log)."""
    check: Callable[[], Check]
    apply: Callable[[], str]
    verify: Callable[[], str] | None = None
    best_effort: bool = False
    """A failure (or a blocked check) is recorded and the run goes on — e.g. fencing a primary
    whose region is gone. Only RunbookErrors are tolerated; anything unexpected still stops."""
    lane: str | None = None
    """Steps of one lane (e.g. one database) run in phase order; lanes run side by side without
    waiting for each other, so a slow promotion of one database delays no other database's
    cutover. A plan whose steps all have lanes runs lane by lane; otherwise phase by phase."""
    after: tuple[str, ...] = ()
    """Steps of other lanes that must have ended (done, already done, or failed best effort) before
    this one starts: e.g. the applications' endpoints move only once every database is promoted.
    If one of them fails, this step does not start; the run fails and a rerun continues."""


@dataclass
class Phase:
    name: str
    steps: list[Step]
    before_gates: bool = False
    """Runs before the gates are evaluated, also when they then refuse: only for steps that make
    the pair safer whatever happens next (re-fencing a former primary that came back unfenced)."""


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    sentence: str


@dataclass
class Gate:
    name: str
    evaluate: Callable[[], GateResult]


@dataclass
class Plan:
    runbook: str
    phases: list[Phase]
    gates: list[Gate] = field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return [s for p in self.phases for s in p.steps]


@dataclass
class StepOutcome:
    name: str
    status: str  # done | skipped | failed | best-effort-failed
    start: float
    end: float
    result: str


@dataclass
class RunResult:
    run_id: str
    outcomes: list[StepOutcome]
    gates: list[GateResult]
    nothing_to_do: bool
    resumed: bool
    forced: bool


Progress = Callable[[str], None]


class Runner:
    def __init__(self, plan: Plan, journal: Journal, audit: AuditLog, clock: Clock,
                 progress: Progress | None = None, max_workers: int = 16):
        self.plan = plan
        self.journal = journal
        self.audit = audit
        self.clock = clock
        self.progress = progress or (lambda line: None)
        self.on_failure: Callable[[str, str], object] | None = None
        """Called with (step name, why) for every step that fails, best effort or not (the CLI
        notifies); it must not raise."""
        self.max_workers = max_workers
        names = [s.name for s in plan.steps]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"plan {plan.runbook} has duplicate step names: {sorted(duplicates)}")
        self._check_order()

    def _check_order(self) -> None:
        """Every prerequisite exists and can end before its dependant starts (no cycle through lanes;
        phase by phase, it is in an earlier phase)."""
        steps = self.plan.steps
        known = {s.name for s in steps}
        for s in steps:
            unknown = [a for a in s.after if a not in known]
            if unknown:
                raise ValueError(f"plan {self.plan.runbook}: step {s.name} waits for unknown steps {unknown}")
        if not all(s.lane for s in steps):
            phase_of = {s.name: i for i, p in enumerate(self.plan.phases) for s in p.steps}
            for s in steps:
                late = [a for a in s.after if phase_of[a] >= phase_of[s.name]]
                if late:
                    raise ValueError(f"plan {self.plan.runbook}: step {s.name} waits for {late}, which are not in "
                                     "an earlier phase")
            return
        needs: dict[str, list[str]] = {s.name: list(s.after) for s in steps}
        last: dict[str, str] = {}
        for s in steps:  # in a lane, a step also waits for the one before it
            if s.lane in last:
                needs[s.name].append(last[s.lane])
            last[s.lane] = s.name
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError(f"plan {self.plan.runbook}: steps wait for each other: {' → '.join(path + (name,))}")
            state[name] = 1
            for other in needs[name]:
                visit(other, path + (name,))
            state[name] = 2

        for s in steps:
            visit(s.name, ())

    # ---- read-only ---------------------------------------------------------------------------

    def _parallel(self, fns: list[Callable]) -> list:
        """Call independent read-only functions at once (checks and gates of N databases)."""
        if len(fns) <= 1:
            return [fn() for fn in fns]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(fns)), thread_name_prefix="read") as pool:
            return list(pool.map(lambda fn: fn(), fns))

    def check_all(self) -> dict[str, Check]:
        steps = self.plan.steps
        return dict(zip((s.name for s in steps), self._parallel([s.check for s in steps])))

    def evaluate_gates(self) -> list[GateResult]:
        return self._parallel([g.evaluate for g in self.plan.gates])

    # ---- acting ------------------------------------------------------------------------------

    def run(self, force: bool = False, resumed: bool = False) -> RunResult:
        checks = self.check_all()
        if all(c.status is Status.DONE for c in checks.values()):
            for name, c in checks.items():
                self.progress(f"{name}: already done ({c.sentence})")
            self.journal.append("run-end", result="ok", note="nothing to do: every step was already done")
            return RunResult(self.journal.run_id, [], [], True, resumed, force)

        outcomes: list[StepOutcome] = []
        for phase in self.plan.phases:
            if phase.before_gates:
                outcomes.extend(self._run_phase(phase))

        gates: list[GateResult] = []
        if self.journal.gates_passed():
            self.progress("gates: passed earlier in this run; resuming without re-evaluating them")
        else:
            gates = self.evaluate_gates()
            passed = all(g.passed for g in gates)
            for g in gates:
                self.progress(f"gate {g.name}: {'pass' if g.passed else 'FAIL'}: {g.sentence}")
            self.journal.append("gates", passed=passed or force, forced=force and not passed,
                                results=[g.__dict__ for g in gates])
            if not passed:
                if not force:
                    self.journal.append("run-end", result="refused", reason="gates")
                    self.audit.record("gates", self.plan.runbook, "refused",
                                      "; ".join(f"{g.name}: {g.sentence}" for g in gates if not g.passed))
                    raise GateFailed(gates)
                self.audit.record("gates", self.plan.runbook, "overridden with --force",
                                  "; ".join(f"{g.name}: {g.sentence}" for g in gates if not g.passed))

        if all(s.lane for s in self.plan.steps):
            outcomes.extend(self._run_lanes())
        else:
            for phase in self.plan.phases:
                if not phase.before_gates:
                    outcomes.extend(self._run_phase(phase))
        self.journal.append("run-end", result="ok")
        return RunResult(self.journal.run_id, outcomes, gates, False, resumed, force)

    def _run_lanes(self) -> list[StepOutcome]:
        lanes: dict[str, list[Step]] = {}
        early = {s.name for p in self.plan.phases if p.before_gates for s in p.steps}
        for step in self.plan.steps:
            if step.name not in early:  # (those ran before the gates)
                lanes.setdefault(step.lane, []).append(step)
        ended = {s.name: threading.Event() for s in self.plan.steps}
        finished: set[str] = set(early)  # ended without stopping their lane
        for name in early:
            ended[name].set()

        def run_lane(steps: list[Step]) -> tuple[list[StepOutcome], BaseException | None]:
            done = []
            try:
                for step in steps:
                    for name in step.after:
                        ended[name].wait()  # set by its lane, whatever happens there (finally below)
                        if name not in finished:
                            self.progress(f"{step.name}: not started: {name} did not finish")
                            return done, StepBlocked(f"{step.name}: not started because {name} did not finish; "
                                                     "rerun to continue")
                    outcome, exc = self._run_step_capturing(step)
                    if exc is not None:
                        return done, exc  # this lane stops; the others go on
                    finished.add(step.name)
                    ended[step.name].set()
                    done.append(outcome)
                return done, None
            finally:
                for step in steps:  # what this lane will never run: its waiters must not wait forever
                    ended[step.name].set()

        # every lane gets its own worker: a lane spends its time waiting (on a promotion that takes
        # minutes in AWS, or on a prerequisite in another lane), so a cap would run the databases in
        # waves: 50 databases through 16 workers took four promotions' time (benchmarks/aws_scale.py)
        if len(lanes) == 1:
            results = [run_lane(next(iter(lanes.values())))]
        else:
            with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="lane") as pool:
                results = list(pool.map(run_lane, lanes.values()))
        self._raise_failures([exc for _, exc in results], "lanes")
        return [o for outcomes, _ in results for o in outcomes]

    def _run_phase(self, phase: Phase) -> list[StepOutcome]:
        if len(phase.steps) == 1:
            results = [self._run_step_capturing(phase.steps[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_workers, len(phase.steps)),
                                    thread_name_prefix=f"phase-{phase.name}") as pool:
                results = list(pool.map(self._run_step_capturing, phase.steps))
        self._raise_failures([exc for _, exc in results], f"phase {phase.name}")
        return [outcome for outcome, _ in results]

    @staticmethod
    def _raise_failures(excs: list[BaseException | None], where: str) -> None:
        failures = [exc for exc in excs if exc is not None]
        if failures:
            unexpected = [e for e in failures if not isinstance(e, RunbookError)]
            if unexpected:
                raise unexpected[0]
            if len(failures) == 1:
                raise failures[0]
            raise StepFailed(f"{len(failures)} steps failed ({where}): " + "; ".join(str(e) for e in failures))

    def _run_step_capturing(self, step: Step) -> tuple[StepOutcome | None, BaseException | None]:
        try:
            return self._run_step(step), None
        except BaseException as exc:  # recorded in the journal by _run_step; re-raised by the phase
            return None, exc

    def _run_step(self, step: Step) -> StepOutcome:
        start = self.clock.time()
        self.journal.append("step-start", step=step.name, action=step.action)
        try:
            check = step.check()
            if check.status is Status.DONE:
                return self._end(step, start, "skipped", f"already done: {check.sentence}")
            if check.status is Status.BLOCKED:
                raise StepBlocked(f"{step.name}: {check.sentence}")
            self.progress(f"{step.name}: {step.action} …")
            result = step.apply()
            if step.verify is not None:
                result = f"{result}; verified: {step.verify()}"
            self.audit.record(step.name.split(":")[0], step.target, "ok", result)
            return self._end(step, start, "done", result)
        except RunbookError as exc:
            if step.best_effort:
                self.audit.record(step.name.split(":")[0], step.target, "best-effort failed", str(exc))
                return self._end(step, start, "best-effort-failed", str(exc))
            self._end(step, start, "failed", str(exc))
            self.audit.record(step.name.split(":")[0], step.target, "failed", str(exc))
            raise
        except BaseException as exc:
            self._end(step, start, "failed", f"{type(exc).__name__}: {exc}")
            self.audit.record(step.name.split(":")[0], step.target, "failed", f"{type(exc).__name__}: {exc}")
            raise

    def _end(self, step: Step, start: float, status: str, result: str) -> StepOutcome:
        end = self.clock.time()
        self.journal.append("step-end", step=step.name, status=status, result=result)
        self.progress(f"{step.name}: {status}: {result} ({end - start:.2f} s)")
        if status in ("failed", "best-effort-failed") and self.on_failure is not None:
            self.on_failure(step.name, result)
        return StepOutcome(step.name, status, start, end, result)
