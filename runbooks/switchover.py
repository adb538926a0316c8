"""Planned switchover to the DR region with zero loss (maintenance, or a drill).

    python -m runbooks.switchover --outputs dr-outputs.json [--dry-run] [--yes]

Both regions healthy: wait until DR is caught up, stop writes on the primary, wait until DR has
replayed every write, promote, DNS over, then rebuild the old primary as a replica of DR."""

from __future__ import annotations

import sys

from runbooks.plans import cli
from runbooks.plans.reconcile import after_switchover
from runbooks.plans.switchover import switchover_plan

RUNBOOK = cli.Runbook(
    name="switchover",
    description="Move writes to the DR region (planned, zero loss).",
    plan=lambda ctx: switchover_plan(ctx, "switchover"),
    direction=lambda o: (o.primary.name, o.secondary.name),
    reconcile=after_switchover,
    planned=True,
)

main = RUNBOOK.main


if __name__ == "__main__":
    sys.exit(main())
