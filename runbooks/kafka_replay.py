"""Replay a time range of a Kafka topic from its backup into a topic of your choice, and prove it exact.

    python -m runbooks.kafka_replay --outputs FILE --topic T --from-time ISO --to-time ISO
                                    --target-topic NEW [--region R] [--allow-non-empty]
                                    [--into-source-topic] [--late-minutes 60] [--dry-run] [--yes]

Reads the topic's Parquet backup (``contract.kafka_backup``: the backups bucket in AWS, the
sandbox's backups store), keeps the records whose own timestamp is in [from, to), and refuses
before changing anything when the backup cannot prove the range complete (an offset missing,
a backup that starts after ``--from-time`` or has not yet reached ``--to-time``). Steps:

1. ``target``: create the target topic with the source's partition count when it does not exist;
2. ``replay``: record the target's end offsets, then write every selected record into the same
   partition with its key, value, headers and timestamp (idempotent producer, acks=all);
3. ``verify``: read the target back from the recorded offsets to its end and compare, per
   partition, the records' digests (key, value, headers, timestamp) with the backup's, in order.
   The replay is exact when every record of the range landed once and nothing else did; the
   counts (expected, landed, missing, extra) are in the result and the report. Exit 1 when not.

The result also gives ``group_offsets_before``: each consumer group's committed offsets on the
topic in the newest offset snapshot taken at or before ``--from-time`` (where the groups were).

Refused (exit 2, nothing changed): the source topic as the target (unless ``--into-source-topic``,
which also needs ``--allow-non-empty``), a target that already holds records (unless
``--allow-non-empty``: the verification then reads only what this run appended), a target with
fewer partitions than the source, an empty range, an unknown topic, ``--from-time`` not before
``--to-time``. A rerun after a crash between steps 2 and 3 verifies what landed; one that finds a
half-written replay refuses to write it twice.
"""

from __future__ import annotations

import sys
from collections import Counter

from contract import kafka_backup as kb
from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import KafkaBackupPort
from runbooks.core import metrics as prom
from runbooks.core.clock import iso
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput, StepBlocked, StepFailed
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--topic", required=True, help="the backed-up topic to replay from")
    p.add_argument("--from-time", required=True, metavar="ISO", help="start of the range, inclusive (ISO 8601 with a "
                                                                     "timezone, or epoch seconds)")
    p.add_argument("--to-time", required=True, metavar="ISO", help="end of the range, exclusive")
    p.add_argument("--target-topic", required=True, help="the topic to replay into (created when absent)")
    p.add_argument("--region", help="the cluster to replay into (default: the region the backup reads)")
    p.add_argument("--allow-non-empty", action="store_true",
                   help="replay into a target that already holds records (only what this run appends is verified)")
    p.add_argument("--into-source-topic", action="store_true",
                   help="allow the target to be the source topic itself (its consumers see the records again)")
    p.add_argument("--late-minutes", type=float, default=60.0,
                   help="how long after its timestamp a record may have been filed in the backup (AWS's connector "
                        "files by its own clock)")


def _times(a) -> tuple[float, float]:
    start = backup_cli.parse_time(a.from_time, "--from-time")
    end = backup_cli.parse_time(a.to_time, "--to-time")
    if start >= end:
        raise BadInput(f"--from-time {iso(start)} is not before --to-time {iso(end)}; the range is [from, to)")
    return start, end


def plan(ctx) -> Plan:
    a = ctx.args
    port: KafkaBackupPort | None = ctx.ports.kafka_backups
    if port is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no Kafka backup port; nothing was done")
    start, end = _times(a)
    if a.late_minutes < 0:
        raise BadInput(f"--late-minutes {a.late_minutes}: must be 0 or more")
    try:
        kb.check_topic(a.topic)
        kb.check_topic(a.target_topic)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    region = a.region or port.source_region
    if region not in ctx.outputs.regions:
        raise BadInput(f"--region {region}: not in the outputs; known: {', '.join(ctx.outputs.regions)}")
    known = kb.backed_up_topics(port.store)
    if a.topic not in known:
        raise BadInput(f"--topic {a.topic}: no backup of that topic in {port.store.describe()}; backed up: "
                       f"{', '.join(known) or 'none'}")
    if a.target_topic == a.topic and not a.into_source_topic:
        # in the other region too: there it is the replicator's copy of the source, read by the same applications
        raise BadInput(f"--target-topic {a.target_topic} is the source topic (in {region}): its consumers would read "
                       "the range again; choose another topic, or pass --into-source-topic (and --allow-non-empty) "
                       "if that is what you want; nothing was done")
    sel = kb.select(port.store, a.topic, start, end, late_s=a.late_minutes * 60)
    if sel.problems:
        raise BadInput(f"the backup of {a.topic} cannot prove [{iso(start)}, {iso(end)}) complete: "
                       + "; ".join(sel.problems) + "; nothing was done")
    if sel.count == 0:
        raise BadInput(f"no record of {a.topic} has a timestamp in [{iso(start)}, {iso(end)}) in the backup; "
                       "nothing to replay")
    cluster = port.cluster(region)
    parts = cluster.partitions(a.target_topic)
    res = ctx.results.setdefault(a.topic, {"target": a.target_topic, "region": region, "expected": sel.count,
                                           "from": iso(start), "to": iso(end), "files": sel.files,
                                           "duplicates_in_backup": sel.duplicates,
                                           "partitions": {str(p): v for p, v in sel.per_partition().items()}})
    started = ctx.recorded("replay-start")
    if parts is not None:
        if parts < sel.partitions:
            raise BadInput(f"--target-topic {a.target_topic} has {parts} partitions, the source {sel.partitions}: "
                           "records keep their partition; choose a topic with at least as many, or a new name")
        ends = cluster.end_offsets(a.target_topic)
        if not started and any(ends.values()) and not a.allow_non_empty:
            raise BadInput(f"--target-topic {a.target_topic} already holds {sum(ends.values())} record(s) (end offsets "
                           f"{_fmt(ends)}): a replay into it could not be told apart; choose an empty or new topic, or "
                           "pass --allow-non-empty to verify only what this run appends; nothing was done")
    snap = kb.offsets_at(port.store, start)
    if snap is not None:
        res["group_offsets_before"] = {"at": iso(snap["at"]), "groups": {
            g: t[a.topic] for g, t in snap.get("groups", {}).items() if a.topic in t}}
    ctx.results["_dry"] = {"replay": [f"{a.topic} [{iso(start)}, {iso(end)}): {sel.count} record(s) from {sel.files} "
                                      f"file(s) → {a.target_topic} in {region}"]
                           + [f"partition {p}: {v['count']} record(s), offsets {v['first_offset']}–{v['last_offset']}"
                              for p, v in sel.per_partition().items()]}
    # one phase each: the steps of a phase run in parallel, these three in order
    return Plan("kafka_replay", [Phase("target", [_target_step(ctx, cluster, a.target_topic, sel.partitions, region)]),
                                 Phase("replay", [_replay_step(ctx, cluster, sel, res)]),
                                 Phase("verify", [_verify_step(ctx, cluster, sel, res)])])


def _fmt(offsets: dict[int, int]) -> str:
    return ", ".join(f"{p}:{o}" for p, o in sorted(offsets.items()))


def _target_step(ctx, cluster, topic: str, partitions: int, region: str) -> Step:
    def check() -> Check:
        n = cluster.partitions(topic)
        return Check.done(f"{topic} exists in {region} ({n} partitions)") if n is not None else \
            Check.todo(f"no topic {topic} in {region}")

    def apply() -> str:
        cluster.create_topic(topic, partitions)
        ctx.audit_action("kafka-create-topic", f"{region}/{topic}", "ok", f"{partitions} partitions")
        return f"created {topic} in {region} with {partitions} partitions"

    return Step("target", f"create {topic} with the source's {partitions} partitions when absent", f"{region}/{topic}",
                check, apply)


def _replay_step(ctx, cluster, sel: kb.Selection, res: dict) -> Step:
    topic = ctx.args.target_topic

    def check() -> Check:
        started = ctx.recorded("replay-start")
        if not started:
            return Check.todo(f"write {sel.count} record(s) into {topic}")
        start = {int(p): o for p, o in started[-1]["offsets"].items()}
        now = cluster.end_offsets(topic)
        written = sum(now.get(p, 0) - o for p, o in start.items())
        if written >= sel.count:
            res["start_offsets"] = start
            return Check.done(f"{written} record(s) written into {topic} from offsets {_fmt(start)} by this run")
        return Check.blocked(f"this run began writing into {topic} (from offsets {_fmt(start)}) and {written} of "
                             f"{sel.count} landed: writing again would duplicate them; replay into a new topic")

    def apply() -> str:
        start = cluster.end_offsets(topic)
        ctx.record("replay-start", offsets={str(p): o for p, o in start.items()})
        res["start_offsets"] = start
        records = [r for p in sorted(sel.records) for r in sel.records[p]]
        t0 = ctx.clock.monotonic()
        n = cluster.produce(topic, records)
        seconds = ctx.clock.monotonic() - t0
        res.update(written=n, replay_seconds=seconds, records_per_second=(n / seconds) if seconds > 0 else None)
        labels = {"topic": sel.topic, "target": topic}
        ctx.samples += [Sample(prom.KAFKA_REPLAY_RECORDS, n, labels, prom.HELP[prom.KAFKA_REPLAY_RECORDS], "Count"),
                        Sample(prom.KAFKA_REPLAY_SECONDS, seconds, labels, prom.HELP[prom.KAFKA_REPLAY_SECONDS],
                               "Seconds")]
        ctx.audit_action("kafka-replay", topic, "ok", f"{n} record(s) of {sel.topic} [{iso(sel.start)}, {iso(sel.end)})")
        rate = f", {n / seconds:.0f} records/s" if seconds > 0 else ""
        return f"{n} record(s) written into {topic} in {seconds:.2f} s{rate}"

    return Step("replay", f"write the {sel.count} backed-up record(s) into {topic}", topic, check, apply)


def _verify_step(ctx, cluster, sel: kb.Selection, res: dict) -> Step:
    topic = ctx.args.target_topic

    def check() -> Check:
        if res.get("exact") is not None:
            return Check.done(f"verified in this run: {'exact' if res['exact'] else 'NOT exact'}")
        return Check.todo(f"read {topic} back and compare with the backup's {sel.count} record(s)")

    def apply() -> str:
        start = res.get("start_offsets")
        if start is None:
            raise StepBlocked("no recorded start offsets of the replay: run the replay step first")
        start = {int(p): o for p, o in start.items()}
        end = cluster.end_offsets(topic)
        landed = cluster.read(topic, start, end)
        missing = extra = 0
        per: dict[str, dict] = {}
        for p in sorted(set(sel.records) | {q for q, rs in landed.items() if rs}):
            want = [r.digest() for r in sel.records.get(p, [])]
            got = [r.digest() for r in landed.get(p, [])]
            cw, cg = Counter(want), Counter(got)
            m, x = sum((cw - cg).values()), sum((cg - cw).values())
            missing += m
            extra += x
            per[str(p)] = {"expected": len(want), "landed": len(got), "missing": m, "extra": x,
                           "in_order": want == got}
        n_landed = sum(len(v) for v in landed.values())
        exact = missing == 0 and extra == 0 and all(v["in_order"] for v in per.values())
        res.update(exact=exact, landed=n_landed, missing=missing, extra=extra, verify=per)
        ctx.samples.append(Sample(prom.KAFKA_REPLAY_EXACT, 1.0 if exact else 0.0,
                                  {"topic": sel.topic, "target": topic}, prom.HELP[prom.KAFKA_REPLAY_EXACT], "Count"))
        ctx.audit_action("kafka-replay-verify", topic, "ok" if exact else "FAILED",
                         f"expected {sel.count}, landed {n_landed}, missing {missing}, extra {extra}")
        if not exact:
            res["reason"] = (f"{topic} holds {n_landed} record(s) after the replay start, the backup's range "
                             f"{sel.count}: {missing} missing, {extra} extra"
                             + ("" if all(v["in_order"] for v in per.values()) else ", or out of order"))
            raise StepFailed(f"VERIFICATION FAILED: {res['reason']}")
        counts = ", ".join(f"{p}={v['landed']}" for p, v in per.items())
        return (f"exact: {n_landed} record(s) in {topic}, each of the backup's {sel.count} once, none else "
                f"(per partition: {counts})")

    return Step("verify", f"read {topic} back and compare each record with the backup", topic, check, apply)


def summarize(ctx) -> dict:
    a = ctx.args
    r = ctx.results.get(a.topic, {})
    passed = r.get("exact") is True
    what = (f"{a.topic} [{r.get('from')}, {r.get('to')}) → {a.target_topic}: expected {r.get('expected')}, "
            f"landed {r.get('landed')}, missing {r.get('missing')}, extra {r.get('extra')}")
    if r.get("records_per_second"):
        what += f"; written at {r['records_per_second']:.0f} records/s"
    details = [f"partition {p}: expected {v['expected']}, landed {v['landed']}, missing {v['missing']}, extra "
               f"{v['extra']}" for p, v in (r.get("verify") or {}).items()]
    return {"passed": passed, "summary": ("exact replay: " if passed else "") + what, "details": details,
            "reasons": [f"VERIFICATION FAILED: {r['reason']}"] if r.get("reason") else [],
            **{k: r.get(k) for k in ("expected", "landed", "missing", "extra", "exact", "written", "replay_seconds",
                                     "records_per_second", "target", "region", "files", "duplicates_in_backup",
                                     "group_offsets_before")}}


RUNBOOK = backup_cli.BackupRunbook(
    name="kafka_replay", description="Replay a time range of a Kafka topic from its backup into a topic of your "
                                     "choice, and prove the replay exact.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, per_database=False, resume_by_default=False,
    not_intent=frozenset({"timeout", "lock_timeout", "late_minutes"}))


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
