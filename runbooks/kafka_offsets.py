"""Snapshot every consumer group's committed offsets on chosen topics into the backups bucket.

    python -m runbooks.kafka_offsets --outputs FILE --topic T [--topic T2 …] [--region R] [--dry-run] [--yes]

The same snapshot the sandbox's backup worker takes on its own schedule
(``kafka/offsets/year=…/hour=HH/groups-<ms>.json``, kept 7 days: planning document 003), for a
target where nothing takes it continuously (AWS: the S3 sink connector backs up records, not
offsets): run it on a schedule. ``kafka_replay`` reports, for a replayed range, each group's offsets
from the newest snapshot before it. Refused with nothing written: a topic that does not exist in
the region's cluster, an adapter without the port.
"""

from __future__ import annotations

import sys

from contract import kafka_backup as kb
from runbooks.backups import cli as backup_cli
from runbooks.backups.ports import KafkaBackupPort
from runbooks.core import metrics as prom
from runbooks.core.engine import Check, Phase, Plan, Step
from runbooks.core.errors import BadInput
from runbooks.core.metrics import Sample


def add_arguments(p) -> None:
    p.add_argument("--topic", action="append", default=[], required=True,
                   help="a topic whose consumer groups' offsets to keep (repeatable)")
    p.add_argument("--region", help="the cluster to read (default: the region the backup reads)")


def plan(ctx) -> Plan:
    a = ctx.args
    port: KafkaBackupPort | None = ctx.ports.kafka_backups
    if port is None:
        raise BadInput(f"the {ctx.outputs.target} adapter has no Kafka backup port; nothing was done")
    region = a.region or port.source_region
    if region not in ctx.outputs.regions:
        raise BadInput(f"--region {region}: not in the outputs; known: {', '.join(ctx.outputs.regions)}")
    try:
        topics = sorted({kb.check_topic(t) for t in a.topic})
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    cluster = port.cluster(region)
    missing = [t for t in topics if cluster.partitions(t) is None]
    if missing:
        raise BadInput(f"--topic {', '.join(missing)}: no such topic in {region}'s cluster; nothing was written")
    res = ctx.results.setdefault("offsets", {"region": region, "topics": topics})

    def check() -> Check:
        return Check.done(f"snapshot {res['key']} written in this run") if res.get("key") else \
            Check.todo(f"read the consumer groups' offsets on {', '.join(topics)} in {region}")

    def apply() -> str:
        at = ctx.clock.time()
        key, doc = kb.snapshot_offsets(port.store, cluster, topics, at, source=region)
        res.update(key=key, groups=doc["groups"], at=at)
        ctx.samples.append(Sample(prom.KAFKA_OFFSETS_SNAPSHOT_AT, at, {"region": region},
                                  prom.HELP[prom.KAFKA_OFFSETS_SNAPSHOT_AT], "Seconds"))
        ctx.audit_action("kafka-offsets-snapshot", f"{port.store.describe()}/{key}", "ok",
                         f"{len(doc['groups'])} group(s) on {', '.join(topics)}")
        return f"{len(doc['groups'])} group(s) on {', '.join(topics)} kept in {port.store.describe()}/{key}"

    return Plan("kafka_offsets", [Phase("offsets", [Step("offsets", "snapshot the consumer groups' offsets",
                                                         f"{region}/{','.join(topics)}", check, apply)])])


def summarize(ctx) -> dict:
    r = ctx.results.get("offsets", {})
    groups = r.get("groups") or {}
    return {"passed": "key" in r, "summary": f"{len(groups)} consumer group(s) on {', '.join(r.get('topics', []))} "
                                             f"kept as {r.get('key')}",
            "details": [f"{g}: {t}" for g, t in sorted(groups.items())], "key": r.get("key"), "groups": groups}


RUNBOOK = backup_cli.BackupRunbook(
    name="kafka_offsets", description="Snapshot every consumer group's committed offsets on chosen topics into "
                                      "the backups bucket.",
    add_arguments=add_arguments, plan=plan, summarize=summarize, per_database=False, resume_by_default=False)


def main(argv=None, **kwargs) -> int:
    return backup_cli.main(RUNBOOK, argv, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
