"""The RTO budget per component, as a CrossGuard stack policy: a preview whose configuration alone
costs a component more than its own RTO objective fails (the program only warned).

Planning documents 001 and 004 give RTO/RPO per component (the database, Kafka, object storage);
the stack config declares them under ``objectives.components`` (stacks/config.py), each falling
back to the service's ``objectives``. What the configuration costs before any runbook work:

* database: detection (Route 53 health check interval × failure threshold) + the records' DNS TTL
  + the expected promotion (``expected_promotion_seconds``);
* Kafka and object storage: detection + the clients' parameter refresh (30 s, the client contract).

The same arithmetic runs in the program (stacks/exports.py ``component_budgets``, exported as
``rto_budget.components``); tests/unit/test_policy_objectives.py keeps the two equal. The pack
imports nothing outside policy/ (tests/unit/test_layering.py holds it), so it reads the raw stack config the
CLI hands it and can import neither stacks/ nor contract/ (``COMPONENTS`` repeats
``contract.outputs.COMPONENTS``; tests/unit/test_outputs.py holds them equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

PROJECT = "regionpair"
COMPONENTS = ("database", "kafka", "object_storage")
CLIENT_REFRESH_SECONDS = 30
DEFAULT_INTERVAL, DEFAULT_THRESHOLD, DEFAULT_TTL, DEFAULT_PROMOTION = 30, 3, 60, 300
POLICY_NAME = "rto-budget-within-objective"


from .base import document as _obj


def _int(value: Any, default: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def budgets(config: Mapping[str, Any]) -> Optional[dict[str, dict[str, int]]]:
    """Per component: total (what the config costs) and its RTO objective; None when the config
    declares no objectives (the pack cannot see the stack's config)."""
    objectives = _obj(config.get("objectives"))
    if objectives is None or not isinstance(objectives.get("rto_seconds"), (int, str)):
        return None
    service_rto = _int(objectives.get("rto_seconds"), 0)
    declared = _obj(objectives.get("components")) or {}
    dns = _obj(config.get("dns")) or {}
    hc = _obj(dns.get("health_check")) or {}
    detection = _int(hc.get("interval_seconds"), DEFAULT_INTERVAL) * _int(hc.get("failure_threshold"), DEFAULT_THRESHOLD)
    totals = {"database": detection + _int(dns.get("ttl_seconds"), DEFAULT_TTL)
              + _int(config.get("expected_promotion_seconds"), DEFAULT_PROMOTION),
              "kafka": detection + CLIENT_REFRESH_SECONDS, "object_storage": detection + CLIENT_REFRESH_SECONDS}
    out = {}
    for name, total in totals.items():
        own = _obj(declared.get(name)) or {}
        out[name] = {"total_seconds": total, "rto_seconds": _int(own.get("rto_seconds"), service_rto),
                     "detection_seconds": detection}
    return out


def check_rto_budgets(config: Mapping[str, Any]) -> list[str]:
    """One sentence per component whose budget exceeds its objective, naming the parts and the fixes."""
    found = budgets(config)
    if found is None:
        return []
    problems = []
    for name, b in found.items():
        if b["total_seconds"] <= b["rto_seconds"]:
            continue
        parts = (f"detection {b['detection_seconds']} s + DNS TTL + expected promotion" if name == "database" else
                 f"detection {b['detection_seconds']} s + clients' parameter refresh {CLIENT_REFRESH_SECONDS} s")
        problems.append(f"RTO budget of {name}: {b['total_seconds']} s ({parts}) exceeds its RTO objective of "
                        f"{b['rto_seconds']} s before any runbook work. Fix: lower dns.health_check.interval_seconds or "
                        f"failure_threshold{', dns.ttl_seconds or expected_promotion_seconds' if name == 'database' else ''}"
                        f", or declare the objective you can meet (objectives.components.{name}.rto_seconds).")
    return problems


def config_from_pulumi() -> dict[str, Any]:
    """The running stack's config, which the CLI passes to the policy pack."""
    import pulumi.runtime
    return {key: pulumi.runtime.get_config(f"{PROJECT}:{key}")
            for key in ("objectives", "dns", "expected_promotion_seconds")}


def rto_budget_policy(read: Callable[[], Mapping[str, Any]] = config_from_pulumi) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in check_rto_budgets(read()):
            report_violation(message, None)

    return StackValidationPolicy(
        name=POLICY_NAME, enforcement_level=EnforcementLevel.MANDATORY, validate=validate,
        description="Each component's RTO budget (what the configuration costs before any runbook work) is within "
                    "its own RTO objective (database, Kafka, object storage; planning documents 001 and 004).")


POLICIES = [rto_budget_policy()]
