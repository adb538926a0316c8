"""Unplanned failover: the primary region is lost or failing; move every database to DR.

    python -m runbooks.failover --outputs dr-outputs.json [--dry-run] [--yes] [--force]

Gates, then: fence the old primary (best effort when its region is gone; the fence persists, so
it stays fenced when it comes back), promote the DR replica and verify it takes a write, cut DNS
over, verify clients reach DR, report. Nothing ever fails back on its own."""

from __future__ import annotations

import sys

from runbooks.plans import cli
from runbooks.plans.failover import failover_plan
from runbooks.plans.reconcile import after_failover

RUNBOOK = cli.Runbook(
    name="failover",
    description="Fail over from the primary region to the DR region (unplanned).",
    plan=failover_plan,
    direction=lambda o: (o.primary.name, o.secondary.name),
    reconcile=after_failover,
    planned=False,
)

main = RUNBOOK.main


if __name__ == "__main__":
    sys.exit(main())
