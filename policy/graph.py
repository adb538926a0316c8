"""Run the pack's policies offline, the way the Pulumi CLI would hand them resources.

The CLI gives a policy each resource's props under the provider's property names (camelCase)
wrapped in a proxy that raises on values unknown during preview. Here a rendered resource graph
(``tests/harness.render_stack``: dicts of type, name, parent, provider, inputs) is turned into the
same SDK objects (``PolicyResource``, ``ResourceValidationArgs``, ``StackValidationArgs``) and every
policy of ``rules.POLICIES`` is called on them: the resource policies once per resource, the stack
policies once per stack. What this cannot show is the engine's side (which props it sends, unknowns
during a real preview); that needs the CLI (docs/policy.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from .base import PROJECT
from .rules import POLICIES

_SNAKE = re.compile(r"_([a-z0-9])")
FREE_FORM_KEYS = frozenset(("tags", "tagsAll", "defaultTags", "outputs"))
"""Maps whose keys are the user's (tag names, a StackReference's outputs), never translated."""


def snake_to_camel(name: str) -> str:
    """``kms_key_id`` → ``kmsKeyId``; a name already in camelCase is returned unchanged."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def provider_props(value: Any, _key: Optional[str] = None) -> Any:
    """Python (snake_case) resource inputs as the provider names them (camelCase), recursively.
    Idempotent, so inputs that already use provider names pass through unchanged."""
    if isinstance(value, Mapping):
        if _key in FREE_FORM_KEYS:
            return dict(value)
        out = {}
        for key, item in value.items():
            camel = snake_to_camel(key) if isinstance(key, str) else key
            out[camel] = provider_props(item, camel)
        return out
    if isinstance(value, (list, tuple)):
        return [provider_props(item) for item in value]
    return value


def urn(stack: str, type_: str, name: str, parent_types: Sequence[str] = (), project: str = PROJECT) -> str:
    qualified = "$".join([*parent_types, type_])
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


_OPTIONS = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])


def policy_resources(graph: Iterable[Mapping[str, Any]], stack: str) -> list[PolicyResource]:
    """A rendered graph (dicts with ``type``, ``name``, ``parent`` (a name or None), ``inputs``) as the
    SDK's ``PolicyResource`` objects, props in provider names behind the SDK's unknown-checking proxy."""
    nodes = list(graph)
    by_name = {n["name"]: n for n in nodes}

    def parent_types(node: Mapping[str, Any]) -> list[str]:
        chain: list[str] = []
        parent = node.get("parent")
        while parent and parent in by_name and len(chain) < 50:
            chain.insert(0, by_name[parent]["type"])
            parent = by_name[parent].get("parent")
        return chain

    resources = []
    for node in nodes:
        props = provider_props(dict(node.get("inputs") or {}))
        resources.append(PolicyResource(
            resource_type=node["type"], props=unknown_checking_proxy(props),
            urn=urn(stack, node["type"], node["name"], parent_types(node)), name=node["name"], opts=_OPTIONS,
            provider=None, parent=None, dependencies=[], property_dependencies={}))
    # the provider each resource was registered with, as the engine hands it to resource policies
    # (its props hold the region): the graph names it, and the provider is a node of the graph
    providers = {n["name"]: n for n in nodes if str(n.get("type", "")).startswith("pulumi:providers:")}
    for node, res in zip(nodes, resources):
        p = providers.get(node.get("provider") or "")
        if p is not None:
            res.provider = PolicyProviderResource(
                resource_type=p["type"], props=unknown_checking_proxy(provider_props(dict(p.get("inputs") or {}))),
                urn=urn(stack, p["type"], p["name"]), name=p["name"])
    # which resources each property was computed from (the engine's property dependencies), when
    # the graph recorded them (tests/harness.py does): matched by the rendered URN
    by_urn = {node.get("urn"): res for node, res in zip(nodes, resources) if node.get("urn")}
    for node, res in zip(nodes, resources):
        deps = node.get("property_dependencies") or {}
        res.property_dependencies = {snake_to_camel(prop): [by_urn[u] for u in urns if u in by_urn]
                                     for prop, urns in deps.items()}
    return resources


@dataclass(frozen=True)
class Finding:
    policy: str
    message: str
    urn: Optional[str]


def evaluate(resources: Sequence[PolicyResource], policies: Iterable[Any] = POLICIES) -> list[Finding]:
    """Every policy on ``resources``: what ``pulumi preview --policy-pack policy`` would report."""
    findings: list[Finding] = []
    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider)
                # the engine attributes a resource policy's violation to the resource validated
                policy.validate(args, _reporter(findings, policy.name, r.urn))
        elif isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(list(resources)), _reporter(findings, policy.name, None))
        else:
            raise TypeError(f"unexpected policy object {policy!r}")
    return findings


def _reporter(findings: list[Finding], policy: str, default_urn: Optional[str]):
    def report(message: str, urn_: Optional[str] = None) -> None:
        findings.append(Finding(policy, message, default_urn or urn_))
    return report
