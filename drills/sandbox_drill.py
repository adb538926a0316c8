"""The scenario sequence of a drill on the sandbox, and what it observes while it runs.

On the sandbox (the default target of `python -m runbooks.drill`): sandbox up → workload warm-up → fault → detection by health
probes → failover (or, for ``switchover``, the planned zero-loss switchover) → verification →
optional failback → report → sandbox down, always, also on Ctrl-C or a failure.

RPO is counted, not estimated: every acknowledged write's id is looked for in the new primary.
RTO is the client-observed write outage. The pre-promotion RPO estimate is the WAL the primary
had written that DR had not yet received, sampled on both sides during the warm-up and turned
into writes with the bytes of WAL per acknowledged write.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drills import broker_loss
from drills.measure import WorkloadLog
from drills.report import DrillReport
from runbooks import failback, failover, switchover
from runbooks.adapters.kubectl import deployment_state
from runbooks.core.clock import SystemClock, iso, wait_until
from runbooks.core.errors import EXIT_OK, StepFailed

log = logging.getLogger(__name__)

WORKLOAD_TABLE = "drill_writes"  # where sandbox/workload.py writes


# --------------------------------------------------------------------------------------------
# The sandbox drill
# --------------------------------------------------------------------------------------------


def die_with_parent() -> None:
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


class SandboxDrill(DrillReport):
    def __init__(self, args, say=print):
        self.args = args
        self.say = say
        self.clock = SystemClock()
        self.steps: list[dict] = []
        self.notes: list[str] = []
        self.workload: subprocess.Popen | None = None
        self.notifications: dict[str, list[dict]] = {}
        self.audit = None
        """The sandbox's audit (runbooks.core.audit.sandbox_audit), once it is up: the drill's faults and
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
                  "--databases", str(a.databases), "--systems", a.systems,
                  *(["--kafka-brokers", str(broker_loss.BROKERS)] if a.scenario == "broker-loss" else []))
        from runbooks.adapters.sandbox_wiring import sandbox_ports
        from sandbox.control import Sandbox
        sb = Sandbox.open(self.dir)
        from runbooks.core.audit import sandbox_audit
        self.audit = sandbox_audit(self.dir, self.clock, "drill", self.report_dir.name)
        outputs = sb.outputs
        primary, dr = outputs.primary.name, outputs.secondary.name
        ports = sandbox_ports(outputs, self.clock)
        dbs = list(outputs.primary.databases)

        self.stream_systems = [s for s in ("kafka", "s3") if s in a.systems.split(",")]
        if a.scenario == "broker-loss":
            return broker_loss.run(self, sb, t0)
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
            stdout=subprocess.DEVNULL, stderr=self.workload_err.open("w"), preexec_fn=die_with_parent)
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
        from runbooks.adapters.sandbox_wiring import sandbox_ports
        out = io.StringIO()
        code = module.main(["--outputs", str(self.dir / "outputs.json"), "--yes", "--output", "json",
                            "--report-dir", str(self.report_dir / kind)], ports_factory=sandbox_ports, stdout=out)
        result = json.loads(out.getvalue())
        if code != EXIT_OK:
            raise StepFailed(f"{module.RUNBOOK.name} exited {code}: {result.get('error')}")
        # what people were told: the sandbox's notification sink, read back for this run
        from runbooks.core.notify import SINK_NAME, read_sink
        run_id = result.get("run_id") or "-"
        self.notifications[kind] = [n for n in read_sink(self.dir / SINK_NAME) if run_id in n.get("message", "")]
        from runbooks.core.audit import SINK_NAME as AUDIT_SINK, read_sink as read_audit
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
        from contract import active_endpoints as contract
        from sandbox.errors import SandboxError

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
        if system == "kafka":  # the producers' parameter (the outputs name it; every region's is the same)
            region = self._region_of_bootstrap(sb, sb.param(sb.outputs.primary.streaming.bootstrap_parameter))
            return sb.kafka_record_ids(region)
        bucket = sb.param(sb.outputs.primary.storage.writer_parameter)
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
