"""Failback: return to the primary region after a failover, with zero loss.

    python -m runbooks.failback --outputs dr-outputs.json [--dry-run] [--yes]

Only with the home region healthy: rebuild the old primary as a replica of the current one and
wait until it is caught up, then a planned switchover (stop writes on DR, wait until home has
replayed every write, promote, DNS back), and rebuild DR as a replica again."""

from __future__ import annotations

import sys

from runbooks.plans import cli
from runbooks.plans.reconcile import after_failback
from runbooks.plans.switchover import never_failed_over, switchover_plan

RUNBOOK = cli.Runbook(
    name="failback",
    description="Return writes to the primary region (planned, zero loss).",
    plan=lambda ctx: switchover_plan(ctx, "failback"),
    direction=lambda o: (o.secondary.name, o.primary.name),
    reconcile=after_failback,
    planned=True,
    settled=never_failed_over,
)

main = RUNBOOK.main


if __name__ == "__main__":
    sys.exit(main())
