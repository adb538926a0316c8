"""What the runbooks that restore to a NEW instance share (restore, verify_backup; config_restore for
the region): the region a ``--source-region``/``--region`` names, the new instance's name, and the
statuses that mean its restore failed."""

from __future__ import annotations

from runbooks.core.errors import BadInput, StepFailed


def resolve_region(ctx, text: str) -> str:
    if text == "primary":
        return ctx.outputs.primary.name
    if text == "dr":
        return ctx.outputs.secondary.name
    if text not in ctx.outputs.regions:
        raise BadInput(f"--source-region {text}: use primary, dr or one of {', '.join(ctx.outputs.regions)}")
    return text


def instance_name(prefix: str, database: str, run_id: str) -> str:
    stamp = run_id.split("-", 1)[1] if "-" in run_id else run_id
    return f"{prefix}-{database}-{stamp}".lower().replace("_", "-")[:60].rstrip("-")


def raise_if_failed(inst):
    """A wait predicate's refusal: the new instance is in a state it never leaves for ``available``."""
    if inst.status in ("failed", "incompatible-restore", "incompatible-parameters", "storage-full"):
        raise StepFailed(f"the new instance {inst.name} is {inst.status}")
    return None
