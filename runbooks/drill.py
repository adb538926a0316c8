"""Drills: a whole failover rehearsed and measured from what clients saw acknowledged.

    python -m runbooks.drill [--target sandbox|stacks] [--scenario region-outage|switchover|db-loss]
                             [--replication sync|async] [--failback] [--report-dir DIR]

On the sandbox (the default): sandbox up → workload warm-up → fault → detection by health
probes → failover (or, for ``switchover``, the planned zero-loss switchover) → verification →
optional failback → report → sandbox down, always, also on Ctrl-C or a failure.

RPO is counted, not estimated: every acknowledged write's id is looked for in the new primary.
RTO is the client-observed write outage. The pre-promotion RPO estimate is the WAL the primary
had written that DR had not yet received, sampled on both sides during the warm-up and turned
into writes with the bytes of WAL per acknowledged write.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from runbooks import failback, failover, helptext, report as reports, switchover
from runbooks.report import COMPONENT_OF, component_rto_reasons, objectives_of
from runbooks.clock import SystemClock, iso, wait_until
from runbooks.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunbookError, StepFailed
from runbooks.adapters.kubectl import deployment_state
from runbooks.measure import WorkloadLog, analyse, analyse_stream, largest_pause, per_second, recovery


def _as_postgres(log: WorkloadLog) -> WorkloadLog:
    """A store's acks relabelled so per_second bins them (it counts PostgreSQL writes)."""
    from dataclasses import replace
    return WorkloadLog([replace(a, system="postgres") for a in log.acks], [])

log = logging.getLogger(__name__)

SCENARIOS = ("region-outage", "switchover", "db-loss")
WORKLOAD_TABLE = "drill_writes"  # where sandbox/workload.py writes


DRILL_EXIT_CODES = helptext.exit_codes(
    (0, "the drill passed"),
    (1, "it failed: the report says why (a step, an objective, a loss, an endpoint, a notification)"),
    (2, "bad input: nothing was started"), (130, "interrupted: the sandbox was stopped (drill stacks: destroyed)"))


def parser() -> argparse.ArgumentParser:
    from sandbox._layout import DEFAULT_SYSTEMS
    p = argparse.ArgumentParser(prog="python -m runbooks.drill", description=__doc__.split("\n\n")[0],
                                formatter_class=helptext.Formatter, epilog=DRILL_EXIT_CODES)
    p.add_argument("--target", choices=["sandbox", "stacks"], default="sandbox",
                   help="sandbox: a local region pair started for the drill; stacks: ephemeral AWS drill stacks")
    p.add_argument("--scenario", choices=SCENARIOS, default="region-outage",
                   help="region-outage: the primary region and its link die; switchover: planned, zero loss; "
                        "db-loss: the primary databases die, the region lives")
    p.add_argument("--replication", choices=["sync", "async"], default="sync",
                   help="PostgreSQL's replication only (sync: synchronous commit); Kafka and S3 replicate "
                        "asynchronously whatever this says")
    p.add_argument("--failback", action="store_true", help="return home after the failover, measured too")
    p.add_argument("--api-down", action="store_true",
                   help="region-outage: the home region's control plane goes down with it, so the failover's fence "
                        "cannot be applied; with --failback the drill proves the failback re-fences home first "
                        "(default: off)")
    p.add_argument("--report-dir", type=Path, help="where the report goes (default: reports/drill-<time>)")
    p.add_argument("--output", choices=["text", "json"], default="text",
                   help="text: progress and a summary for people; json: the report document for machines")
    sb = p.add_argument_group("sandbox target")
    sb.add_argument("--warmup", type=float, default=3.0, help="seconds of workload before the fault (default 3)")
    sb.add_argument("--rate", type=int, default=200, help="workload writes per second (default 200)")
    sb.add_argument("--databases", type=int, default=1, help="database pairs (default 1)")
    sb.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                    help="data stores in the drill: postgres plus any of kafka, s3 (default: all three, as "
                         "`python -m sandbox up`)")
    sb.add_argument("--kafka-rate", type=int, default=100, help="Kafka records per second (default 100)")
    sb.add_argument("--s3-rate", type=int, default=20, help="object PUTs per second (default 20)")
    sb.add_argument("--link-latency-ms", type=int, default=0, help="one-way latency between the regions (default 0)")
    sb.add_argument("--dns-ttl", type=int, default=1, help="TTL of the service names (default 1 s)")
    sb.add_argument("--settle", type=float, default=1.0, help="seconds of workload after recovery (default 1)")
    sb.add_argument("--sandbox-dir", type=Path, help="where the sandbox lives (default: a new temporary dir)")
    sb.add_argument("--keep-files", action="store_true", help="keep the sandbox's files after it is stopped")
    st = p.add_argument_group("stacks target (needs the pulumi CLI and AWS credentials)")
    st.add_argument("--prefix", default="drill", help="drill stacks are PREFIX-prod and PREFIX-dr")
    st.add_argument("--project-dir", type=Path, default=Path("."),
                    help="the Pulumi project directory, with Pulumi.prod.yaml and Pulumi.dr.yaml")
    st.add_argument("--primary-region", default="us-east-1", help="AWS region of the drill's prod stack")
    st.add_argument("--dr-region", default="us-west-2", help="AWS region of the drill's dr stack")
    return p


def validate(args) -> None:
    problems = []
    if args.warmup < 0.5:
        problems.append(f"--warmup {args.warmup}: at least 0.5 s, so the lag estimate has samples")
    if not 1 <= args.rate <= 5000:
        problems.append(f"--rate {args.rate}: from 1 to 5000 writes/s")
    if not 1 <= args.databases <= 20:
        problems.append(f"--databases {args.databases}: from 1 to 20")
    if not 0 <= args.link_latency_ms <= 5000:
        problems.append(f"--link-latency-ms {args.link_latency_ms}: from 0 to 5000")
    if not 0 <= args.dns_ttl <= 300:
        problems.append(f"--dns-ttl {args.dns_ttl}: from 0 to 300")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "postgres" not in systems or any(s not in ("postgres", "kafka", "s3") for s in systems):
        problems.append(f"--systems {args.systems}: postgres plus any of kafka, s3 (e.g. postgres,kafka,s3)")
    if args.api_down and args.scenario != "region-outage":
        problems.append(f"--api-down: only with --scenario region-outage (the region and its control plane go down)")
    if args.target == "stacks" and args.scenario != "region-outage":
        problems.append(f"--scenario {args.scenario}: drill stacks rehearse region-outage only")
    if problems:
        raise BadArgs("; ".join(problems))


class BadArgs(RunbookError):
    exit_code = EXIT_BAD_INPUT


# --------------------------------------------------------------------------------------------
# The sandbox drill
# --------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the workload child: get SIGKILL when the drill dies, even by SIGKILL (Linux prctl), so
    no client outlives its drill and keeps writing for an hour."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _sandbox_cli(*args: str, timeout: float = 120.0) -> str:
    proc = subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise StepFailed(f"`python -m sandbox {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


class SandboxDrill:
    def __init__(self, args, say=print):
        self.args = args
        self.say = say
        self.clock = SystemClock()
        self.steps: list[dict] = []
        self.notes: list[str] = []
        self.workload: subprocess.Popen | None = None
        self.notifications: dict[str, list[dict]] = {}
        self.audit = None
        """The sandbox's audit (runbooks.audit.sandbox_audit), once it is up: the drill's faults and
        restarts are audited where the runbooks audit theirs."""
        self.audited: dict[str, list[dict]] = {}
        """Per runbook run of the drill: what reached the sandbox's durable audit sink."""

    FAULTS = ("fault", "heal-link", "restart-home")

    # ---- bookkeeping ---------------------------------------------------------------------------

    def step(self, name: str, fn, *a, **kw):
        start = time.time()
        self.say(f"[{iso(start)[11:23]}] {name} …")
        try:
            result = fn(*a, **kw)
        except BaseException as exc:
            self.steps.append({"name": name, "start": start, "end": time.time(), "status": "failed",
                               "result": f"{type(exc).__name__}: {exc}"})
            if self.audit is not None and name in self.FAULTS:
                self.audit.record(name, self.args.scenario, "failed", f"{type(exc).__name__}: {exc}")
            raise
        text = result if isinstance(result, str) else ""
        if isinstance(result, dict) and "run_id" in result:
            text = f"{result.get('result')}: run {result['run_id']}, report {result.get('report', {}).get('markdown')}"
        self.steps.append({"name": name, "start": start, "end": time.time(), "status": "done", "result": text})
        if self.audit is not None and name in self.FAULTS:
            self.audit.record(name, self.args.scenario, "injected", text)
        self.say(f"[{iso(time.time())[11:23]}] {name}: {text or 'done'} ({time.time() - start:.2f} s)")
        return result

    # ---- the run -------------------------------------------------------------------------------

    def run(self) -> dict:
        args = self.args
        self.tmp = None
        if args.sandbox_dir:
            self.dir = args.sandbox_dir.resolve()
        else:
            self.tmp = Path(tempfile.mkdtemp(prefix="regionpair-drill-"))
            self.tmp.chmod(0o755)  # the PostgreSQL server user must traverse it
            self.dir = self.tmp / "sandbox"
        self.report_dir = (args.report_dir or Path("reports") / f"drill-{time.strftime('%Y%m%dT%H%M%S')}").resolve()
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.workload_log = self.report_dir / "workload.jsonl"
        self.workload_log.unlink(missing_ok=True)
        try:
            return self._run()
        finally:
            if self.workload is not None and self.workload.poll() is None:
                self.workload.kill()
                self.workload.wait()
            try:
                self.say(f"sandbox down: {_sandbox_cli('down', '--dir', str(self.dir)) or 'stopped'}")
            finally:
                if self.tmp is not None and not args.keep_files:
                    shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self) -> dict:
        a = self.args
        t0 = time.time()
        self.step("sandbox-up", _sandbox_cli, "up", "--dir", str(self.dir), "--replication", a.replication,
                  "--link-latency-ms", str(a.link_latency_ms), "--dns-ttl", str(a.dns_ttl),
                  "--databases", str(a.databases), "--systems", a.systems)
        from runbooks.adapters.sandbox import sandbox_ports
        from sandbox.control import Sandbox
        sb = Sandbox.open(self.dir)
        from runbooks.audit import sandbox_audit
        self.audit = sandbox_audit(self.dir, self.clock, "drill", self.report_dir.name)
        outputs = sb.outputs
        primary, dr = outputs.primary.name, outputs.secondary.name
        ports = sandbox_ports(outputs, self.clock)
        dbs = list(outputs.primary.databases)

        self.stream_systems = [s for s in ("kafka", "s3") if s in a.systems.split(",")]
        self.step("workload-start", self._start_workload)
        samples = self.step("warm-up", self._warm_up, sb, primary, dr, dbs)

        runbook_module = switchover if a.scenario == "switchover" else failover
        fault_at = time.time()
        if a.scenario == "region-outage":
            if getattr(a, "api_down", False):
                from runbooks.adapters.sandbox import api_down_marker
                marker = api_down_marker(self.dir, primary)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("down\n")
            # the region and its network go dark together: WAL still on the wire to DR is lost too
            self.step("fault", sb.kill_region, primary, cut_link=True)
        elif a.scenario == "db-loss":
            self.step("fault", lambda: "; ".join(sb.kill_database(primary, db) for db in dbs))
        if a.scenario != "switchover":
            self.step("detection", self._detect, ports, primary, dbs)
        runbook_out = self.step("failover" if a.scenario != "switchover" else "switchover",
                                self._runbook, runbook_module, "failover")
        self.step("verification", self._wait_for_acks_in, dr, fault_at)
        for system in self.stream_systems:
            self.step(f"verification-{system}", self._wait_for_acks_in, dr, fault_at, system)
        self.endpoints: dict[str, dict] = {}
        self.step("verification-endpoints", self._endpoints, sb, outputs,
                  "switchover" if a.scenario == "switchover" else "failover", dr,
                  primary if a.scenario == "region-outage" else None)
        if "kafka" in self.stream_systems:
            self.step("verification-kafka-consumer", self._wait_for_consumed_in, dr, fault_at)
        time.sleep(a.settle)

        failback_window = None
        failback_out = None
        if a.failback:
            if a.scenario == "region-outage":
                self.step("heal-link", sb.heal)
                # the region returns: its databases with their data, its Kafka and S3 empty (they
                # lived in the killed processes): the failback re-seeds them before the switch
                self.step("restart-home", self._restart_home, sb, primary)
            elif a.scenario == "db-loss":
                self.step("restart-home", lambda: "; ".join(sb.start_database(primary, db) for db in dbs))
            fb_start = time.time()
            failback_out = self.step("failback", self._runbook, failback, "failback")
            self.step("failback-verification", self._wait_for_acks_in, primary, fb_start)
            for system in self.stream_systems:
                self.step(f"failback-verification-{system}", self._wait_for_acks_in, primary, fb_start, system)
            # sb.outputs, not the failover's: a region restarted after an outage has new Kafka ports
            self.step("failback-verification-endpoints", self._endpoints, sb, sb.outputs, "failback", primary, None)
            if "kafka" in self.stream_systems:
                self.step("failback-verification-kafka-consumer", self._wait_for_consumed_in, primary, fb_start)
            failback_window = (fb_start, time.time())
            time.sleep(a.settle)

        self.step("workload-stop", self._stop_workload)
        wl = WorkloadLog.read(self.workload_log)
        surviving = self.step("count", self._surviving, sb, dbs)
        self.stream_surviving = {}
        for system in self.stream_systems:
            self.stream_surviving[system] = self.step(f"count-{system}", self._surviving_stream, sb, system)
        return self._report(t0, fault_at, primary, dr, outputs, wl, surviving, samples, runbook_out,
                            failback_out, failback_window)

    # ---- pieces ----------------------------------------------------------------------------------

    def _start_workload(self) -> str:
        # the clients are a process of their own, as clients are: they share no interpreter lock
        # with the fault injection, so the fault lands when the drill says
        self.workload_err = self.report_dir / "workload.stderr"
        self.workload = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "workload", "--dir", str(self.dir), "--seconds", "3600",
             "--rate", str(self.args.rate), "--log", str(self.workload_log),
             "--kafka-rate", str(self.args.kafka_rate), "--s3-rate", str(self.args.s3_rate)],
            stdout=subprocess.DEVNULL, stderr=self.workload_err.open("w"), preexec_fn=_die_with_parent)
        return f"{self.args.rate} writes/s through the sandbox's DNS names (pid {self.workload.pid})"

    def _stop_workload(self) -> str:
        proc = self.workload
        if proc.poll() is not None:
            raise StepFailed(f"the workload exited early ({proc.returncode}): "
                             f"{self.workload_err.read_text().strip()[-500:]}")
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)  # a Kafka consumer drains up to 10 s
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise StepFailed("the workload did not stop within 30 s of SIGINT; killed it") from None
        return "stopped"

    def _acks(self) -> WorkloadLog:
        return WorkloadLog.read(self.workload_log) if self.workload_log.exists() else WorkloadLog([], [])

    def _warm_up(self, sb, primary: str, dr: str, dbs: list[str]) -> list[dict]:
        """Let the workload run, and sample WAL written on the primary but not yet received by DR."""
        import psycopg
        wait_until(lambda: self._acks().acks, what="the first acknowledged write", timeout=15, clock=self.clock)
        if "kafka" in self.stream_systems:  # a consumer group that has not joined yet tests nothing
            wait_until(lambda: self._acks().consumed, what="the consumer group's first record", timeout=20,
                       clock=self.clock, interval=0.1, max_interval=0.2)
            # nor does one MirrorMaker 2 has not checkpointed yet (it finds groups every few seconds)
            groups = sb.outputs.regions[dr].streaming.consumer_groups
            wait_until(lambda: set(groups) <= set(sb.kafka_checkpoints(primary, dr)),
                       what="MirrorMaker 2's first checkpoint of every consumer group", timeout=60,
                       clock=self.clock, interval=0.2, max_interval=0.5)
        end = time.time() + self.args.warmup
        samples = []
        p_node, s_node = sb.node(primary, dbs[0]), sb.node(dr, dbs[0])
        with psycopg.connect(p_node.dsn(admin=True, local=True), autocommit=True) as pc, \
                psycopg.connect(s_node.dsn(admin=True, local=True), autocommit=True) as sc:
            while time.time() < end:
                t = time.time()
                (p_lsn,) = pc.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").fetchone()
                (s_lsn,) = sc.execute("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint").fetchone()
                samples.append({"t": t, "primary_lsn": int(p_lsn), "received_lsn": int(s_lsn or 0)})
                time.sleep(0.02)
        return samples

    def _detect(self, ports, primary: str, dbs: list[str]) -> str:
        """Health probes every 50 ms; down after three failures in a row (no fixed sleep)."""
        misses = {db: 0 for db in dbs}

        def down() -> bool:
            for db in dbs:
                misses[db] = 0 if ports.health.database(primary, db).healthy else misses[db] + 1
            return all(m >= 3 for m in misses.values())
        wait_until(down, what=f"health probes to see {primary} down", timeout=30, clock=self.clock,
                   interval=0.05, max_interval=0.05)
        return f"{primary} declared down after 3 failed probes at 50 ms"

    def _runbook(self, module, kind: str) -> dict:
        from runbooks.adapters.sandbox import sandbox_ports
        out = io.StringIO()
        code = module.main(["--outputs", str(self.dir / "outputs.json"), "--yes", "--output", "json",
                            "--report-dir", str(self.report_dir / kind)], ports_factory=sandbox_ports, stdout=out)
        result = json.loads(out.getvalue())
        if code != EXIT_OK:
            raise StepFailed(f"{module.RUNBOOK.name} exited {code}: {result.get('error')}")
        # what people were told: the sandbox's notification sink, read back for this run
        from runbooks.notify import SINK_NAME, read_sink
        run_id = result.get("run_id") or "-"
        self.notifications[kind] = [n for n in read_sink(self.dir / SINK_NAME) if run_id in n.get("message", "")]
        from runbooks.audit import SINK_NAME as AUDIT_SINK, read_sink as read_audit
        self.audited[kind] = [e for e in read_audit(self.dir / AUDIT_SINK) if e.get("run_id") == run_id]
        return result

    def _restart_home(self, sb, primary: str) -> str:
        said = sb.start_region(primary)
        if getattr(self.args, "api_down", False):
            from runbooks.adapters.sandbox import api_down_marker
            api_down_marker(self.dir, primary).unlink(missing_ok=True)
            unfenced = [db for db in sb.databases if not sb.is_fenced(primary, db)]
            said += f"; its control plane answers again; unfenced on return: {', '.join(unfenced) or 'none'}"
        return said

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
        from runbooks.audit import SINK_NAME as AUDIT_SINK, read_sink as read_audit, verify_chain
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

    def _wait_for_acks_in(self, region: str, since: float, system: str = "postgres") -> str:
        def seen():
            return next((a for a in self._acks().acks if a.t > since and a.region == region and a.system == system),
                        None)
        first = wait_until(seen, what=f"clients' {system} writes acknowledged in {region}", timeout=30,
                           clock=self.clock, interval=0.05, max_interval=0.2)
        return f"first acknowledged {system} write in {region} at +{first.t - since:.2f} s"

    def _endpoints(self, sb, outputs, phase: str, active: str, lost: str | None) -> str:
        """What each region's cluster tells its applications now (read from the sandbox, not through
        the runbook): every copy must carry ``active``'s endpoints, except in ``lost``'s cluster, which
        was down during the failover."""
        from sandbox.errors import SandboxError
        from contract import active_endpoints as contract

        want = contract.active_values(outputs.regions[active], list(outputs.regions[active].databases))
        seen, said = {}, []
        for region in sb.regions:
            try:
                held = sb.configmaps(region)
            except SandboxError:
                seen[region] = {"reachable": False, "copies": {}, "points_at_active": None}
                said.append(f"{region}: cluster down" + (" (its copies are corrected before any failback)"
                                                         if region == lost else ""))
                continue
            copies = {ns: c[contract.CONFIGMAP_NAME]["data"] for ns, c in held.items() if contract.CONFIGMAP_NAME in c}
            moved = [ns for ns, data in copies.items() if all(data.get(k) == v for k, v in want.items())]
            wrote = {ns: held[ns][contract.CONFIGMAP_NAME]["annotations"].get(contract.UPDATED_BY) for ns in copies}
            # the listed Deployments (envFrom) must have been restarted for the write their copy got
            kube = outputs.regions[region].kubernetes
            listed = kube.listed_deployments if kube else ()
            running = sb.deployments(region) if listed else {}
            restarted = {f"{ns}/{name}": deployment_state(ns, name, running.get(ns, {}).get(name)).restarted_for
                         for ns, name in listed}
            fresh = [f"{ns}/{name}" for ns, name in listed if restarted[f"{ns}/{name}"] == wrote.get(ns)]
            seen[region] = {"reachable": True, "points_at_active": len(moved) == len(copies) > 0,
                            "copies": {ns: {"ACTIVE_REGION": data.get(contract.ACTIVE_REGION),
                                            "updated_by": wrote[ns]} for ns, data in copies.items()},
                            "deployments": restarted, "restarted": len(fresh) == len(restarted) if listed else None}
            said.append(f"{region}: {len(moved)}/{len(copies)} copies send applications to {active}"
                        + (f", {len(fresh)}/{len(restarted)} listed Deployments restarted since" if listed else ""))
        self.endpoints[phase] = {"active": active, "lost": lost, "clusters": seen}
        return "; ".join(said)

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

    def _wait_for_consumed_in(self, region: str, since: float) -> str:
        """The consumer group processes records in ``region`` again (its first join on a cluster
        takes the mock's ~3 s rebalance delay): a group that never resumes fails the drill here,
        and one that resumes is measured, not cut short by the next phase."""
        def seen():
            return next((c for c in self._acks().consumed if c.t > since and c.region == region), None)
        first = wait_until(seen, what=f"the consumer group to process records in {region}", timeout=30,
                           clock=self.clock, interval=0.1, max_interval=0.2)
        return f"consumer group {first.group} processed its first record in {region} at +{first.t - since:.2f} s"

    def _surviving_stream(self, sb, system: str) -> set[str]:
        """Ids the active region holds: every record of its Kafka topics, or its bucket's keys."""
        from sandbox import _streams
        if system == "kafka":
            region = self._region_of_bootstrap(sb, sb.param(_streams.bootstrap_parameter(_streams.PRODUCER_APP)))
            return sb.kafka_record_ids(region)
        bucket = sb.param(_streams.bucket_parameter())
        region = next(r for r in sb.regions if sb.outputs.regions[r].storage.data_bucket == bucket)
        return {k.split("/", 1)[1] for k in sb.object_keys(region) if k.startswith("drill/")}

    @staticmethod
    def _region_of_bootstrap(sb, bootstrap: str) -> str:
        for region in sb.regions:
            if sb.kafka_bootstrap(region) == bootstrap:
                return region
        raise StepFailed(f"clients read the bootstrap {bootstrap!r}, which is no region's cluster")

    def _surviving(self, sb, dbs: list[str]) -> dict[str, set[str]]:
        import psycopg
        out = {}
        for db in dbs:
            region = sb.current_primary(db)
            if region is None or "," in region:
                raise StepFailed(f"cannot count {db}: current primary is {region!r}")
            with psycopg.connect(sb.dsn(region, db, admin=True, local=True), autocommit=True) as conn:
                out[db] = {str(r[0]) for r in conn.execute(f"SELECT id FROM {WORKLOAD_TABLE}").fetchall()}
        return out

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
            return {"seconds": 0.0, "writes": 0.0, "method": "no WAL written during the samples"}
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
        from runbooks import dr_metrics
        metrics_path = self.report_dir / dr_metrics.FILE_NAME
        rep["notes"] = rep["notes"] + dr_metrics.publish(metrics_path, dr_metrics.drill_samples(rep, time.time()))
        rep["metrics"] = str(metrics_path)
        rep["files"] = reports.write(rep, self.report_dir, timeline)
        return rep


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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None, stdout=None) -> int:
    args = parser().parse_args(argv)
    out = stdout or sys.stdout
    json_mode = args.output == "json"

    def say(line: str) -> None:
        if not json_mode:
            print(line, file=out, flush=True)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    result: dict
    try:
        validate(args)
        if args.target == "stacks":
            from runbooks import drill_stacks
            result = drill_stacks.main_for_drill(args, say)
        else:
            result = SandboxDrill(args, say).run()
        code = EXIT_OK if result.get("passed") else EXIT_FAILED
    except RunbookError as exc:
        code, result = exc.exit_code, {"error": str(exc), "passed": False}
        say(f"drill: {exc}")
    except KeyboardInterrupt:
        code, result = EXIT_INTERRUPTED, {"error": "interrupted; the sandbox was stopped", "passed": False}
        say("drill: interrupted; the sandbox was stopped")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if json_mode:
        print(json.dumps(result, indent=2, sort_keys=True, default=str), file=out, flush=True)
    elif "files" in result:
        for line in summary_lines(result):
            say(line)
        for r in result.get("reasons", []):
            say(f"  - {r}")
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
