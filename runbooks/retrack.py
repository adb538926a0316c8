"""Point a stack's database resource at the live instance under its identifier, then refresh it.

    python -m runbooks.retrack --stack prod --region us-east-1 --identifier regionpair-prod-payments \\
        --urn 'urn:pulumi:prod::regionpair::regionpair:database:ReplicatedPostgres$aws:rds/instance:Instance::payments-instance'

Why: pulumi-aws tracks an aws.rds.Instance by its RDS resource id (`db-…`), while it imports one by
its identifier (pulumi-aws aws.rds.Instance, "Import"). After `rebuild_replica` renamed the old
instance aside and created a new one under the original identifier, the state still holds the
old instance's resource id, so a refresh would follow the renamed instance and the next `up`
would rename it back. `pulumi state delete` + `pulumi import` cannot be used: the DNS record and
other resources depend on the instance, and "resources can't be deleted if other resources depend
on it" (Pulumi CLI docs, `pulumi state delete`; `--target-dependents` would drop the record too).

What it does: reads the live instance's resource id (rds:DescribeDBInstances), exports the
stack's state (`pulumi stack export`; secrets stay encrypted), replaces that one resource's id,
imports it (`pulumi stack import`), and refreshes that one resource (`pulumi refresh --target`),
which reads every attribute of the live instance. Idempotent: when the state already holds the
live id, only the refresh runs. It never deletes, renames or modifies an instance.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable, TextIO

from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

RDS_INSTANCE = "aws:rds/instance:Instance"


class RetrackError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def live_resource_id(rds: Any, identifier: str, region: str) -> str:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except Exception as exc:  # botocore ClientError (DBInstanceNotFound) or a connection error
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise RetrackError(f"cannot read DB instance {identifier} in {region} ({code}); the stack is left as it "
                           "was. Check the identifier and the region, and that the runbook's rebuild finished") from None
    if not found or not found[0].get("DbiResourceId"):
        raise RetrackError(f"RDS returned no resource id for {identifier} in {region}; the stack is left as it was")
    return found[0]["DbiResourceId"]


def _pulumi(run: Callable, args: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    proc = run(["pulumi", *args], capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines()[-1:] or ["(no error output)"]
        raise RetrackError(f"{what} failed ({proc.returncode}): {last[0]}")
    return proc


def retrack(stack: str, urn: str, resource_id: str, run: Callable = subprocess.run) -> str:
    """Set the state's id of ``urn`` to ``resource_id`` (unless it already is), then refresh ``urn``."""
    exported = _pulumi(run, ["stack", "export", "--stack", stack], f"pulumi stack export --stack {stack}")
    try:
        state = json.loads(exported.stdout)
        resources = state["deployment"]["resources"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RetrackError(f"`pulumi stack export --stack {stack}` did not return a deployment") from None
    matches = [r for r in resources if r.get("urn") == urn]
    if not matches:
        known = sorted(r["urn"] for r in resources if r.get("type") == RDS_INSTANCE)
        raise RetrackError(f"stack {stack} has no resource {urn}; its database instances are {known}. Nothing was "
                           "changed: pass one of these with --urn", EXIT_BAD_INPUT)
    (resource,) = matches
    if resource.get("type") != RDS_INSTANCE:
        raise RetrackError(f"{urn} is a {resource.get('type')}, not an {RDS_INSTANCE}; nothing was changed",
                           EXIT_BAD_INPUT)
    old = resource.get("id")
    if old != resource_id:
        resource["id"] = resource_id
        outputs = resource.get("outputs")
        if isinstance(outputs, dict):  # the provider's copies of the id; the refresh rewrites the rest
            for key in ("id", "resourceId"):
                if key in outputs:
                    outputs[key] = resource_id
        fd, path = tempfile.mkstemp(prefix="regionpair-state-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(state, f)
            _pulumi(run, ["stack", "import", "--stack", stack, "--file", path], f"pulumi stack import --stack {stack}")
        finally:
            os.unlink(path)
    _pulumi(run, ["refresh", "--stack", stack, "--yes", "--skip-preview", "--target", urn],
            f"pulumi refresh --stack {stack} --target {urn}")
    if old == resource_id:
        return f"{stack}: {urn} already tracked {resource_id}; refreshed it"
    return f"{stack}: {urn} now tracks {resource_id} (was {old}); refreshed it"


def main(argv: list[str] | None = None, *, run: Callable = subprocess.run, rds: Any = None,
         out: TextIO | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runbooks.retrack", description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--identifier", required=True, help="the DB instance identifier the stack declares")
    p.add_argument("--urn", required=True, help="the stack's aws:rds/instance:Instance resource")
    args = p.parse_args(argv)
    out = out or sys.stdout
    try:
        if rds is None:
            import boto3
            rds = boto3.client("rds", region_name=args.region)
        resource_id = live_resource_id(rds, args.identifier, args.region)
        print(retrack(args.stack, args.urn, resource_id, run), file=out)
        return EXIT_OK
    except RetrackError as exc:
        print(f"retrack: {exc}", file=out)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
