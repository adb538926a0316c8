"""The stacks' exports: the outputs contract document (stacks/outputs.py), and the RTO budget.

The document is assembled from resource outputs, validated with `outputs.from_dict` inside an
apply (a malformed export fails the program instead of reaching a runbook), and exported one
top-level key at a time.
"""

from __future__ import annotations

from typing import Any, Callable

import pulumi

from stacks import outputs
from stacks.config import StackConfig


def rto_budget(cfg: StackConfig) -> dict[str, Any]:
    """What the configuration alone costs of the RTO: detection + DNS TTL + expected promotion."""
    detection = cfg.dns.health_check.detection_seconds
    total = detection + cfg.dns.ttl_seconds + cfg.expected_promotion_seconds
    return {"detection_seconds": detection, "dns_ttl_seconds": cfg.dns.ttl_seconds,
            "promotion_seconds": cfg.expected_promotion_seconds, "total_seconds": total,
            "within_objective": total <= cfg.objectives.rto_seconds}


def warn_if_over_budget(cfg: StackConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    budget = rto_budget(cfg)
    if not budget["within_objective"]:
        (log or pulumi.log.warn)(
            f"RTO budget {budget['total_seconds']} s exceeds the declared RTO of {cfg.objectives.rto_seconds} s "
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
        "objectives": {"rto_seconds": cfg.objectives.rto_seconds, "rpo_seconds": cfg.objectives.rpo_seconds},
        "rto_budget": rto_budget(cfg),
        "dns": {"zone_id": cfg.dns.zone_id, "zone_name": cfg.dns.zone_name, "ttl_seconds": cfg.dns.ttl_seconds,
                "strategy": cfg.dns.strategy, "resolver": None,
                "records": {db.name: cfg.dns.record_name(db.name) for db in cfg.databases}},
        # what `snapshot --enforce-retention` keeps unless the operator overrides it
        "backup_policy": {"snapshot_retention_days": cfg.backups.snapshot_retention_days,
                          "snapshot_keep_newest": cfg.backups.snapshot_keep_newest},
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
