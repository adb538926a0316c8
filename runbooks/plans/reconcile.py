"""The commands that bring the stacks in line after a runbook (printed in the report, run with
``--reconcile``). Three rules, from issue 10 (points 6 and 7):

* **refresh first, and only where the runbook acted.** A stack's state still says what was true
  before the run (a replica, the old instance). Each stack's databases are refreshed (targeted by
  URN, so the refresh reads the database instances only, never a resource in a region that is
  down) before anything is planned against them.
* **after a failover nothing touches the primary region.** The prod stack is not named at all;
  the dr stack's own declarations keep every resource of prod's region unchanged when promoted
  (tests/unit/test_stacks_promoted.py), and the runbook already promoted: `replicateSourceDb` is in
  the instance's `ignore_changes`, so `pulumi up -s dr` never promotes again.
* **a rebuilt replica is tracked again.** The AWS adapter's `rebuild_replica` renames the old
  instance aside and creates a new one under the original identifier; pulumi-aws tracks an
  `aws.rds.Instance` by its resource id (`db-…`), so the stack's state would keep following the
  renamed instance and the next `up` would rename it back. `python -m runbooks.retrack` points the
  state's resource at the live instance under the identifier (its resource id, read from RDS) and
  refreshes it; idempotent, so it runs for every database of a region the runbook may have rebuilt.
  No database is deleted or replaced by any of this: the renamed instance is left to the operator.
"""

from __future__ import annotations

import shlex

from contract.outputs import Outputs, Region

INSTANCE_TYPE = "regionpair:database:ReplicatedPostgres$aws:rds/instance:Instance"


def stack_name(qualified: str) -> str:
    """``org/project/dr`` → ``dr`` (a URN names the stack by its short name)."""
    return qualified.rsplit("/", 1)[-1]


def instance_urn(outputs: Outputs, region: Region, database: str) -> str:
    """The URN of a database's aws.rds.Instance (components/database.py: `<database>-instance`)."""
    return f"urn:pulumi:{stack_name(region.stack)}::{outputs.project}::{INSTANCE_TYPE}::{database}-instance"


def refresh_databases(outputs: Outputs, region: Region) -> str:
    targets = " ".join(f"--target {shlex.quote(instance_urn(outputs, region, db))}" for db in sorted(region.databases))
    return f"pulumi refresh --stack {region.stack} --yes --skip-preview {targets}"


def retrack(outputs: Outputs, region: Region) -> list[str]:
    return [f"python -m runbooks.retrack --stack {region.stack} --region {region.name} "
            f"--identifier {shlex.quote(db.identifier)} --urn {shlex.quote(instance_urn(outputs, region, name))}"
            for name, db in sorted(region.databases.items())]


def after_failover(outputs: Outputs) -> list[str]:
    """The primary region may be gone: only the dr stack, only DR's databases refreshed."""
    dr = outputs.secondary
    return [refresh_databases(outputs, dr), f"pulumi config set promoted true --stack {dr.stack}",
            f"pulumi up --stack {dr.stack} --yes"]


def after_switchover(outputs: Outputs) -> list[str]:
    """DR promoted (in place: refresh), prod's databases rebuilt as replicas of DR (retrack)."""
    return after_failover(outputs) + retrack(outputs, outputs.primary)


def after_failback(outputs: Outputs) -> list[str]:
    """Prod's databases rebuilt (the failback's first step, or the switchover's) and promoted; DR's
    rebuilt as replicas of prod. Both stacks retracked before the dr stack's `up` undoes `promoted`
    and the failback's reverse flows."""
    prod, dr = outputs.primary, outputs.secondary
    return (retrack(outputs, prod) + retrack(outputs, dr)
            + [f"pulumi config set promoted false --stack {dr.stack}",
               f"pulumi config rm failback_replication --stack {dr.stack}",
               f"pulumi up --stack {dr.stack} --yes"])
