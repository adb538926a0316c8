"""The broker-loss drill: one of the primary region's three Kafka brokers is SIGKILLed while the
writers (acks=all, idempotent) and the consumer group go on; nothing acknowledged may be lost and
nothing may fail over (DNS, the clients' parameters and PostgreSQL stay where they were).

What is measured, from the clients' own log: the longest gap in Kafka acknowledgements around the
kill (the leader-election pause), when every partition was acknowledged again, delivery errors
(outcome unknown, never counted as lost), duplicates (stored twice, processed twice), and that
MirrorMaker 2 kept copying into DR after the election.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from drills.measure import WorkloadLog, analyse_stream, largest_pause
from runbooks.core.clock import iso, wait_until
from runbooks.core.errors import StepFailed
from runbooks.core.redact import scrub
from sandbox.errors import SandboxError

BROKERS = 3
"""Brokers per region in this scenario: the stacks' RF 3 with ``min.insync.replicas`` 2."""


# --------------------------------------------------------------------------------------------
# The sequence (on the sandbox; ``drill`` is the SandboxDrill with its bookkeeping and workload)
# --------------------------------------------------------------------------------------------


def run(drill, sb, t0: float) -> dict:
    a = drill.args
    outputs = sb.outputs
    primary, dr = outputs.primary.name, outputs.secondary.name
    dbs = list(outputs.primary.databases)
    drill.step("workload-start", drill._start_workload)
    drill.step("warm-up", drill._warm_up, sb, primary, dr, dbs)
    before = drill.step("observe-placement", placement, sb, outputs, dbs)
    leaders = drill.step("observe-leaders", sb.kafka_partitions, primary)
    victim = choose_victim(leaders)
    dr_at_fault = _end_total(sb, dr)
    fault_at = time.time()
    drill.step("fault", sb.kill_kafka_broker, primary, victim)
    drill.step("leader-election", _wait_elected, sb, primary, victim, fault_at, drill.clock)
    elected_at = time.time()
    drill.step("verification-kafka", _wait_acked_everywhere, drill, list(leaders), elected_at)
    dr_at_recovery = _end_total(sb, dr)
    drill.step("verification-mirrormaker2", _wait_dr_advances, sb, dr, dr_at_recovery, drill.clock)
    time.sleep(max(0.0, a.broker_down - (time.time() - fault_at)))
    rejoined = None
    if a.restart_broker:
        back_at = time.time()
        drill.step("restart-broker", sb.start_kafka_broker, primary, victim)
        drill.step("broker-rejoined", _wait_rejoined, sb, primary, victim, drill.clock)
        rejoined = time.time() - back_at
    time.sleep(a.settle)
    drill.step("workload-stop", drill._stop_workload)
    wl = WorkloadLog.read(drill.workload_log)
    after = drill.step("observe-placement-after", placement, sb, outputs, dbs)
    surviving = drill.step("count", drill._surviving, sb, dbs)
    held = {s: drill.step(f"count-{s}", drill._surviving_stream, sb, s) for s in drill.stream_systems}
    stored = sum(end - start for start, end in sb.kafka_offsets(primary).values())
    dr_end = _end_total(sb, dr)
    rep = report(wl, fault_at=fault_at, end=time.time(), primary=primary, victim=victim, before=before,
                 after=after, surviving=surviving, held=held, stored_kafka_records=stored,
                 mirrormaker2={"dr_end_offsets_at_fault": dr_at_fault, "dr_end_offsets_at_recovery": dr_at_recovery,
                               "dr_end_offsets_at_end": dr_end},
                 broker_rejoined_seconds=rejoined, stream_systems=drill.stream_systems)
    steps = sorted(drill.steps, key=lambda s: s["start"])
    if any(s.get("status") == "failed" for s in steps):
        rep["passed"] = False
        rep["reasons"].append("a step failed")
    rep.update({"runbook": "drill", "scenario": "broker-loss", "target_kind": "sandbox", "sandbox_dir": str(drill.dir),
                "source": primary, "target": dr, "t0": t0, "started_at": iso(t0), "ended_at": iso(time.time()),
                "fault_at": fault_at, "rate": a.rate, "kafka_rate": a.kafka_rate, "steps": steps,
                "leaders_before": leaders, "notes": drill.notes})
    from runbooks.core import dr_metrics  # the drill's last run and success, as the other scenarios publish them
    metrics_path = drill.report_dir / dr_metrics.FILE_NAME
    rep["notes"] = rep["notes"] + dr_metrics.publish(metrics_path, dr_metrics.drill_samples(rep, time.time()))
    rep["metrics"] = str(metrics_path)
    rep["files"] = write(rep, drill.report_dir)
    return rep


def placement(sb, outputs, dbs: list[str]) -> dict:
    """Where everything a failover would move points now: the service names (DNS), the clients'
    parameters (Kafka bootstrap, the object writers' bucket) and each database's primary."""
    params = sorted({*(outputs.primary.streaming.client_parameters or ()), outputs.primary.streaming.bootstrap_parameter}
                    - {None}) if outputs.primary.streaming else []
    if outputs.primary.storage and outputs.primary.storage.writer_parameter:
        params.append(outputs.primary.storage.writer_parameter)
    status = sb.status()
    return {"dns": dict(status[outputs.primary.name]["dns"]["names"]),
            "parameters": {p: sb.param(p) for p in params},
            "primaries": {db: sb.current_primary(db) for db in dbs}}


def choose_victim(partitions: dict[str, dict]) -> int:
    """The broker leading the most partitions (the lowest id on a tie): its loss moves the most leaders."""
    counts: dict[int, int] = {}
    for p in partitions.values():
        if p["leader"] >= 0:
            counts[p["leader"]] = counts.get(p["leader"], 0) + 1
    if not counts:
        raise StepFailed(f"no partition has a leader before the fault: {partitions}")
    return min(counts, key=lambda b: (-counts[b], b))


def _end_total(sb, region: str) -> int | None:
    try:
        return sum(end for _, end in sb.kafka_offsets(region).values())
    except SandboxError:  # the cluster did not answer: recorded as not measured
        return None


def _wait_elected(sb, region: str, victim: int, fault_at: float, clock) -> str:
    """Every partition led by a live broker and the dead one out of every ISR (the controller fenced it)."""
    def done():
        try:
            parts = sb.kafka_partitions(region)
        except SandboxError:  # the cluster may not answer mid-election: not yet
            return None
        ok = all(p["leader"] not in (victim, -1) and victim not in p["isr"] for p in parts.values())
        return parts if ok else None
    parts = wait_until(done, what=f"partitions of {region} to elect leaders without broker {victim}", timeout=60,
                       clock=clock, interval=0.1, max_interval=0.2)
    leaders = ", ".join(f"{k}→{p['leader']} (isr {p['isr']})" for k, p in parts.items())
    return f"new leaders +{time.time() - fault_at:.2f} s after the kill: {leaders}"


def _wait_acked_everywhere(drill, partitions: list[str], since: float) -> str:
    """A Kafka write acknowledged on every partition after the election (the writers work again)."""
    want = {int(k.split(":")[1]) for k in partitions}

    def done():
        got = {a.partition for a in drill._acks().acks if a.system == "kafka" and a.t > since}
        return got if want <= got else None
    wait_until(done, what="Kafka writes acknowledged on every partition after the election", timeout=30,
               clock=drill.clock, interval=0.05, max_interval=0.2)
    return f"every partition ({len(want)}) acknowledged a write again"


def _wait_dr_advances(sb, dr: str, mark: int | None, clock) -> str:
    """MirrorMaker 2 copies into DR what was written after the election: DR's end offsets pass ``mark``."""
    def done():
        now = _end_total(sb, dr)
        return now if now is not None and mark is not None and now > mark else None
    now = wait_until(done, what=f"MirrorMaker 2 to copy into {dr} after the election", timeout=30, clock=clock,
                     interval=0.1, max_interval=0.3)
    return f"{dr}'s end offsets {mark} → {now}"


def _wait_rejoined(sb, region: str, broker: int, clock) -> str:
    def done():
        try:
            parts = sb.kafka_partitions(region)
        except SandboxError:  # not answering yet
            return None
        return parts if all(broker in p["isr"] for p in parts.values()) else None
    wait_until(done, what=f"broker {broker} to rejoin every ISR of {region}", timeout=90, clock=clock,
               interval=0.2, max_interval=0.5)
    return f"broker {broker} is back in every partition's ISR"


# --------------------------------------------------------------------------------------------
# The checks (pure: what the drill saw in, figures and a verdict out)
# --------------------------------------------------------------------------------------------


def kafka_figures(wl: WorkloadLog, *, fault_at: float, end: float, held: set[str] | None,
                  stored_records: int | None) -> dict:
    """Kafka across the broker loss: acknowledged, acked_lost (acknowledged ids the primary cluster
    does not hold), stored duplicates (records stored minus distinct ids), consumer duplicates and
    skips, delivery errors after the kill, the longest acknowledgement gap and, per partition, when
    it was acknowledged again."""
    s = analyse_stream(wl, "kafka", outage_start=fault_at, surviving=held)
    acks = wl.of("kafka").acks
    gap = largest_pause(acks, fault_at, end)
    per_partition = {}
    for p in sorted({a.partition for a in acks}, key=lambda x: -1 if x is None else x):
        mine = [a for a in acks if a.partition == p]
        g = largest_pause(mine, fault_at, end)
        per_partition[str(p)] = {"longest_gap_seconds": None if g is None else g[1] - g[0],
                                 "acknowledged_again_after_kill_seconds": None if g is None else g[1] - fault_at,
                                 "acknowledged_after_kill": sum(1 for a in mine if a.t > fault_at)}
    again = [v["acknowledged_again_after_kill_seconds"] for v in per_partition.values()]
    s.update({
        "errors_after_kill": sum(1 for e in wl.of("kafka").errors if e.get("t", 0) >= fault_at and "id" in e),
        "acknowledged_after_kill": sum(1 for a in acks if a.t > fault_at),
        "longest_ack_gap_seconds": None if gap is None else gap[1] - gap[0],
        "longest_ack_gap": None if gap is None else {"from": gap[0] - fault_at, "to": gap[1] - fault_at},
        "acknowledged_again_seconds": None if (not again or None in again) else max(again),
        "per_partition": per_partition,
        "stored_records": stored_records,
        "stored_duplicates": None if (stored_records is None or held is None) else stored_records - len(held),
    })
    return s


def failover_reasons(before: dict, after: dict) -> list[str]:
    """What moved between two ``placement`` readings: in a broker loss, nothing may."""
    reasons = []
    for kind, what in (("dns", "DNS name"), ("parameters", "client parameter"), ("primaries", "primary of")):
        for k, v in before.get(kind, {}).items():
            now = after.get(kind, {}).get(k)
            if now != v:
                reasons.append(f"a failover happened: {what} {k} moved from {v} to {now}")
    return reasons


def report(wl: WorkloadLog, *, fault_at: float, end: float, primary: str, victim: int, before: dict, after: dict,
           surviving: dict[str, set[str]], held: dict[str, set[str]], stored_kafka_records: int | None,
           mirrormaker2: dict, broker_rejoined_seconds: float | None, stream_systems: list[str]) -> dict:
    """The broker-loss report's figures and verdict. Fails on any acknowledged record or write lost,
    any failover, Kafka writers never acknowledged again, or MirrorMaker 2 not copying after the kill."""
    reasons: list[str] = []
    kafka = kafka_figures(wl, fault_at=fault_at, end=end, held=held.get("kafka"), stored_records=stored_kafka_records)
    if kafka["acked_lost"]:
        reasons.append(f"kafka: {kafka['acked_lost']} acknowledged records lost with one broker of {BROKERS} "
                       f"(acks=all, min.insync.replicas 2 must lose none): {', '.join(kafka['lost_ids'][:5])}")
    if kafka["acked_lost"] is None:
        reasons.append("kafka: the primary cluster's records were not read back, so loss was not counted")
    if kafka["acknowledged_again_seconds"] is None:
        reasons.append("kafka: the writers were not acknowledged again on every partition after the kill")
    if kafka["skipped"]:
        reasons.append(f"kafka: the consumer group skipped {kafka['skipped']} acknowledged records")
    pg = wl.of("postgres")
    lost_pg = [x for x in pg.acks if x.id not in surviving.get(x.database, set())]
    pause = largest_pause(pg.acks, fault_at, end)
    systems = {"postgres": {"acknowledged": len(pg.acks), "acked_lost": len(lost_pg),
                            "lost_ids": [x.id for x in lost_pg[:20]],
                            "longest_write_pause_seconds": None if pause is None else pause[1] - pause[0]},
               "kafka": kafka}
    if lost_pg:
        reasons.append(f"postgres: {len(lost_pg)} acknowledged writes lost although no database was touched")
    for s in stream_systems:
        if s != "kafka":
            systems[s] = analyse_stream(wl, s, outage_start=fault_at, surviving=held.get(s))
            if systems[s]["acked_lost"]:
                reasons.append(f"{s}: {systems[s]['acked_lost']} acknowledged writes lost")
    reasons += failover_reasons(before, after)
    mm = dict(mirrormaker2)
    at_fault, at_rec, at_end = (mm.get("dr_end_offsets_at_fault"), mm.get("dr_end_offsets_at_recovery"),
                                mm.get("dr_end_offsets_at_end"))
    mm["kept_replicating"] = at_rec is not None and at_end is not None and at_end > at_rec
    if not mm["kept_replicating"]:
        reasons.append(f"mirrormaker2: DR's end offsets did not advance after the election "
                       f"({at_fault} at the kill, {at_rec} after the election, {at_end} at the end)")
    return {"passed": not reasons, "reasons": reasons, "killed_broker": {"region": primary, "broker": victim},
            "broker_rejoined_seconds": broker_rejoined_seconds, "systems": systems, "mirrormaker2": mm,
            "failover": {"happened": bool(failover_reasons(before, after)), "before": before, "after": after}}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _f(v, unit: str = "") -> str:
    return "n/a" if v is None else (f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}")


def summary_lines(rep: dict) -> list[str]:
    k = rep["systems"]["kafka"]
    b = rep["killed_broker"]
    lines = [f"drill broker-loss: {'PASSED' if rep['passed'] else 'FAILED'}; killed broker {b['broker']} of "
             f"{b['region']}; kafka lost {_f(k['acked_lost'])} of {k['acknowledged']} acked, longest ack gap "
             f"{_f(k['longest_ack_gap_seconds'], ' s')}, every partition acked again "
             f"{_f(k['acknowledged_again_seconds'], ' s')} after the kill, {k['errors_after_kill']} delivery errors, "
             f"duplicates stored {_f(k['stored_duplicates'])} / processed {_f(k['duplicates'])}",
             f"  mirrormaker2 kept replicating: {'yes' if rep['mirrormaker2']['kept_replicating'] else 'NO'}; "
             f"failover: {'YES' if rep['failover']['happened'] else 'none'}; postgres lost "
             f"{rep['systems']['postgres']['acked_lost']} of {rep['systems']['postgres']['acknowledged']}"
             + (f"; broker back in every ISR {_f(rep['broker_rejoined_seconds'], ' s')} after its restart"
                if rep.get("broker_rejoined_seconds") is not None else "")]
    if rep.get("files"):
        lines.append(f"  report {rep['files']['markdown']}")
    return lines


def markdown(rep: dict) -> str:
    k = rep["systems"]["kafka"]
    lines = ["# drill report: broker-loss", "",
             f"**{'PASSED' if rep['passed'] else 'FAILED'}**" + ("" if rep["passed"] else " — " + "; ".join(rep["reasons"])),
             "", *summary_lines(dict(rep, files=None)), "",
             "| kafka measure | measured |", "|---|---|"]
    for key in ("acknowledged", "acked_lost", "acknowledged_after_kill", "errors_after_kill", "longest_ack_gap_seconds",
                "acknowledged_again_seconds", "stored_records", "stored_duplicates", "consumed", "duplicates", "skipped",
                "unconsumed"):
        lines.append(f"| {key.replace('_', ' ')} | {_f(k.get(key))} |")
    lines += ["", "| partition | longest ack gap (s) | acked again after the kill (s) |", "|---|---|---|"]
    lines += [f"| {p} | {_f(v['longest_gap_seconds'])} | {_f(v['acknowledged_again_after_kill_seconds'])} |"
              for p, v in k["per_partition"].items()]
    lines += ["", "## Steps", "", "| step | start (+s) | duration (s) | status | result |", "|---|---|---|---|---|"]
    for s in rep.get("steps", []):
        lines.append(f"| {s['name']} | {_f(s['start'] - rep['t0'])} | {_f(s['end'] - s['start'])} | {s['status']} | "
                     f"{str(s.get('result') or '').replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write(rep: dict, directory: Path) -> dict[str, str]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rep = scrub(rep)
    paths = {"json": str(directory / "report.json"), "markdown": str(directory / "report.md")}
    Path(paths["json"]).write_text(json.dumps(dict(rep, files=paths), indent=2, sort_keys=True, default=str) + "\n")
    Path(paths["markdown"]).write_text(markdown(rep))
    return paths
