"""Small helpers shared by the components (no resources here)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import pulumi


class ComponentArgsError(ValueError):
    """A component was given a bad argument. Names the component, the argument, the value and the fix."""

    def __init__(self, component: str, arg: str, value: Any, fix: str):
        self.component = component
        self.arg = arg
        super().__init__(f"{component}: argument {arg}={value!r}: {fix}")


def partition_of(region: str) -> str:
    """The ARN partition of a region (aws, aws-us-gov, aws-cn)."""
    if "-gov-" in region:
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def child(parent: pulumi.Resource, provider: pulumi.ProviderResource | None = None,
          **kwargs: Any) -> pulumi.ResourceOptions:
    """Options for a child resource: parented to the component, with an explicit provider if given."""
    return pulumi.ResourceOptions(parent=parent, provider=provider, **kwargs)


def policy_json(statements: Iterable[Mapping[str, Any]]) -> str:
    """An IAM policy document with a stable key order (so snapshots and diffs stay readable)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def assume_role_policy(service: str, account_id: str | None = None) -> str:
    """Trust policy for an AWS service, limited to this account when account_id is given."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return policy_json([statement])


_SLUG = re.compile(r"[^a-z0-9]+")


def slug(value: str) -> str:
    """A logical-name-safe form of a value (10.0.0.0/8 → 10-0-0-0-8)."""
    return _SLUG.sub("-", value.lower()).strip("-")


def require(component: str, arg: str, value: Any, ok: bool, fix: str) -> None:
    if not ok:
        raise ComponentArgsError(component, arg, value, fix)
