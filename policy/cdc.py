"""Policy checks of the CDC (logical replication) area: pure functions over a resource of
``policy.base`` (``type``, ``label``, ``props`` with provider property names). ``policy/rules.py``
wraps them into ``POLICIES``; this module imports nothing of the pack."""

from __future__ import annotations

from typing import Any

RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
LOGICAL_REPLICATION = "rds.logical_replication"

LOGICAL_REPLICATION_DESCRIPTION = (
    "rds.logical_replication in an RDS parameter group is 0 or 1 and applied pending-reboot: it is a static "
    "parameter (AWS Knowledge Center, 'How do I use logical replication with Amazon RDS for PostgreSQL': "
    "static, takes effect after a reboot, then wal_level is logical), and ModifyDBParameterGroup accepts the "
    "apply method immediate for dynamic parameters only (Amazon RDS API Reference, ModifyDBParameterGroup, "
    "Parameters). Logical slots need it (RDS User Guide, 'Performing logical replication for Amazon RDS for "
    "PostgreSQL').")


def check_logical_replication_parameter(r: Any) -> list[str]:
    if r.type != RDS_PARAMETER_GROUP:
        return []
    problems = []
    for i, p in enumerate(r.props.get("parameters") or []):
        if not isinstance(p, dict) or p.get("name") != LOGICAL_REPLICATION:
            continue
        value, method = p.get("value"), p.get("applyMethod")
        if isinstance(value, str) and value not in ("0", "1"):
            problems.append(f"{r.label}: parameters[{i}] {LOGICAL_REPLICATION} = {value!r}; RDS takes 0 or 1. "
                            "Fix: value=\"1\" to allow logical replication slots (CDC), \"0\" to forbid them.")
        if isinstance(method, str) and method != "pending-reboot":
            problems.append(f"{r.label}: parameters[{i}] {LOGICAL_REPLICATION} has apply_method={method!r}, but it is "
                            "a static parameter: RDS applies static parameters only at a reboot and refuses "
                            "'immediate' for them. Fix: apply_method=\"pending-reboot\", then reboot the instance "
                            "in a maintenance window.")
    return problems
