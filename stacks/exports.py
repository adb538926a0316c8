"""The stacks' exports: the outputs contract document (contract/outputs/), and the RTO budget.

The document is assembled from resource outputs, validated with `outputs.from_dict` inside an
apply (a malformed export fails the program instead of reaching a runbook), and exported one
top-level key at a time.
"""

from __future__ import annotations

from typing import Any, Callable

import pulumi

from contract import outputs
from stacks.config import COMPONENTS, StackConfig

CLIENT_REFRESH_SECONDS = 30
"""How often Kafka and object-storage clients re-read the parameter that names their region (the
client contract's default, contract/outputs/ ``client_refresh_seconds``)."""


def component_budgets(cfg: StackConfig) -> dict[str, dict[str, Any]]:
    """What the configuration alone costs of each component's RTO, against its own objective:
    database = detection + DNS TTL + expected promotion; Kafka and object storage = detection +
    the clients' parameter refresh. (policy/objectives.py computes the same from the raw config
    and fails the preview when one is over; a test keeps the two equal.)"""
    detection = cfg.dns.health_check.detection_seconds
    totals = {"database": detection + cfg.dns.ttl_seconds + cfg.expected_promotion_seconds,
              "kafka": detection + CLIENT_REFRESH_SECONDS, "object_storage": detection + CLIENT_REFRESH_SECONDS}
    return {name: {"total_seconds": total, "rto_seconds": cfg.objectives.of(name)[0],
                   "within_objective": total <= cfg.objectives.of(name)[0]} for name, total in totals.items()}


def rto_budget(cfg: StackConfig) -> dict[str, Any]:
    """What the configuration alone costs of the RTO: detection + DNS TTL + expected promotion (the
    database's, against the database's objective), and every component's."""
    detection = cfg.dns.health_check.detection_seconds
    components = component_budgets(cfg)
    return {"detection_seconds": detection, "dns_ttl_seconds": cfg.dns.ttl_seconds,
            "promotion_seconds": cfg.expected_promotion_seconds, "total_seconds": components["database"]["total_seconds"],
            "within_objective": components["database"]["within_objective"], "components": components}


def warn_if_over_budget(cfg: StackConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Warn in the program's output; the policy pack (policy/objectives.py) is what fails the preview."""
    budget = rto_budget(cfg)
    for name, c in budget["components"].items():
        if name != "database" and not c["within_objective"]:
            (log or pulumi.log.warn)(
                f"RTO budget of {name} {c['total_seconds']} s exceeds its RTO objective of {c['rto_seconds']} s before "
                f"any runbook work: detection {budget['detection_seconds']} s + clients' refresh "
                f"{CLIENT_REFRESH_SECONDS} s. Lower the health check interval or threshold, or declare the RTO you can meet.")
    if not budget["within_objective"]:
        (log or pulumi.log.warn)(
            f"RTO budget {budget['total_seconds']} s exceeds the declared RTO of {cfg.objectives.of('database')[0]} s "
            f"before any runbook work: detection {budget['detection_seconds']} s (health check every "
            f"{cfg.dns.health_check.interval_seconds} s x {cfg.dns.health_check.failure_threshold} failures) + DNS TTL "
            f"{budget['dns_ttl_seconds']} s + expected promotion {budget['promotion_seconds']} s. Lower the TTL, the "
            "interval or the threshold, or declare the RTO you can meet.")
    return budget


def envelope(cfg: StackConfig) -> dict[str, Any]:
    """Everything of the document except `regions`."""
    return {
        "schema_version": outputs.SCHEMA_VERSION,
        "project": cfg.project,
        "stack": cfg.stack,
        "target": "aws",
        "sandbox_dir": None,
        "objectives": {"rto_seconds": cfg.objectives.rto_seconds, "rpo_seconds": cfg.objectives.rpo_seconds,
                       "components": {name: dict(zip(("rto_seconds", "rpo_seconds"), cfg.objectives.of(name)))
                                      for name in COMPONENTS}},
        "rto_budget": rto_budget(cfg),
        "dns": {"zone_id": cfg.dns.zone_id, "zone_name": cfg.dns.zone_name, "ttl_seconds": cfg.dns.ttl_seconds,
                "strategy": cfg.dns.strategy, "resolver": None,
                "records": {db.name: cfg.dns.record_name(db.name) for db in cfg.databases}},
        # what `snapshot --enforce-retention` keeps unless the operator overrides it
        "backup_policy": {"snapshot_retention_days": cfg.backups.snapshot_retention_days,
                          "snapshot_keep_newest": cfg.backups.snapshot_keep_newest,
                          # the retention tiers (runbooks/retention.py): automated is the longest the
                          # databases declare; compliance is never deleted by a runbook
                          "automated_retention_days": max((db.backup_retention_days for db in cfg.databases),
                                                          default=30),
                          "compliance_retention_days": cfg.backups.compliance_retention_days},
    }


def validated(doc: dict[str, Any]) -> dict[str, Any]:
    """Refuse a malformed document (raises OutputsError naming the field); return it as plain data."""
    outputs.from_dict(doc)
    return doc


def export(cfg: StackConfig, regions: pulumi.Input[dict[str, Any]]) -> pulumi.Output[dict[str, Any]]:
    """Validate and export the whole document, one top-level key per stack output."""
    doc = pulumi.Output.from_input(regions).apply(lambda r: validated({**envelope(cfg), "regions": r}))
    for key in ("schema_version", "project", "stack", "target", "sandbox_dir", "objectives", "rto_budget", "dns",
                "backup_policy", "regions"):
        pulumi.export(key, doc.apply(lambda d, key=key: d[key]))
    return doc
