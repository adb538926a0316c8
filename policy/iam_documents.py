"""Reading IAM policy documents and finding a role's inline policies: the helpers the MSK, MSK Connect
and S3 replication rules share (``msk.py``, ``mskconnect.py``, ``s3.py``). 
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any, Iterable, Optional

from .base import UNKNOWN, Resource, as_list, document


def statements(doc: Optional[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in as_list((doc or {}).get("Statement")) if isinstance(s, Mapping)]


def allows(statements: Iterable[Mapping[str, Any]], action: str, resource: str,
            principal_service: Optional[str] = None) -> bool:
    """Does some Allow statement (without a Deny overriding it) grant ``action`` on ``resource``?"""
    def matches(patterns: Any, value: str, fold: bool) -> bool:
        # IAM wildcards * and ?; action names are case-insensitive, ARNs are not
        return any(isinstance(pat, str) and fnmatch.fnmatchcase(value.lower() if fold else value,
                                                                 pat.lower() if fold else pat)
                   for pat in as_list(patterns))

    def applies(s: Mapping[str, Any]) -> bool:
        if principal_service is not None:
            principal = s.get("Principal")
            services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
            if principal_service not in services:
                return False
        return matches(s.get("Action"), action, True) and matches(s.get("Resource"), resource, False)

    statements = list(statements)
    if any(s.get("Effect") == "Deny" and applies(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and applies(s) for s in statements)


def is_role_named(role: Resource, role_name: Optional[str]) -> bool:
    """Is ``role_name`` (from an ARN or a ``role`` input) this role's name: its ``name`` input, or Pulumi's
    auto-name of it (the logical name, a dash and seven random hex characters) when it has none?"""
    if not isinstance(role_name, str):
        return False
    name = role.props.get("name")
    if isinstance(name, str) and name:
        return role_name == name
    return bool(re.fullmatch(re.escape(role.name) + r"-[0-9a-f]{7}", role_name))


def policies_of(role: Resource, role_policies: list[Resource]) -> list[Resource]:
    """The inline policies of ``role`` (``role`` input: its name, id or ARN)."""
    found = []
    for rp in role_policies:
        value = rp.props.get("role")
        if isinstance(value, str) and is_role_named(role, value.rsplit("/", 1)[-1]):
            found.append(rp)
        elif value is UNKNOWN and role.urn in rp.property_dependencies.get("role", ()):
            found.append(rp)
    return found


def statements_or_none(policy: Any) -> list[Mapping[str, Any]] | None:
    """The statements of a policy document given as JSON text or a dict; None when unknown."""
    policy = document(policy)
    if policy is None:
        return None
    return [s for s in as_list(policy.get("Statement")) if isinstance(s, Mapping)]


def statement_allows(statement: Mapping[str, Any], action: str) -> bool:
    """Does an Allow statement grant ``action`` (its Action patterns, case-insensitive, with wildcards)?
    A pattern grants what it covers: kms:Decrypt* covers kms:Decrypt; kms:GenerateDataKey* is covered
    only by a pattern at least as wide."""
    if statement.get("Effect") != "Allow":
        return False
    patterns = [p.lower() for p in as_list(statement.get("Action")) if isinstance(p, str)]
    return any(fnmatch.fnmatchcase(action.lower(), p) for p in patterns)
