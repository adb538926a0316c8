"""Failback: return to the primary region after a failover, with zero loss.

    python -m runbooks.failback --outputs dr-outputs.json [--dry-run] [--yes]

Only with the home region healthy: rebuild the old primary as a replica of the current one and
wait until it is caught up, then a planned switchover (stop writes on DR, wait until home has
replayed every write, promote, DNS back), and rebuild DR as a replica again."""

from __future__ import annotations

import sys

from runbooks import cli
from runbooks.plans import never_failed_over, switchover_plan


def reconcile(outputs) -> list[str]:
    prod, dr = outputs.primary.stack, outputs.secondary.stack
    return [f"pulumi refresh --stack {prod} --yes", f"pulumi config set promoted false --stack {dr}",
            f"pulumi config rm failback_replication --stack {dr}", f"pulumi up --stack {dr} --yes"]


RUNBOOK = cli.Runbook(
    name="failback",
    description="Return writes to the primary region (planned, zero loss).",
    plan=lambda ctx: switchover_plan(ctx, "failback"),
    direction=lambda o: (o.secondary.name, o.primary.name),
    reconcile=reconcile,
    planned=True,
    settled=never_failed_over,
)

main = RUNBOOK.main


if __name__ == "__main__":
    sys.exit(main())
