"""The policy pack run on one resource or a stack's graph, for the policy and stack tests."""

from __future__ import annotations

import copy
import importlib
import inspect
from typing import Any

import pulumi.runtime
from pulumi._types import is_input_type
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from policy import base, rules
from policy.graph import Finding, evaluate, policy_resources
from tests import harness

POLICY = {p.name: p for p in rules.POLICIES}


def check(policy_name: str, type_: str, props: dict[str, Any], name: str = "it") -> list[str]:
    """What one resource policy reports about one resource."""
    policy = POLICY[policy_name]
    assert isinstance(policy, ResourceValidationPolicy)
    [resource] = policy_resources([{"type": type_, "name": name, "parent": None, "inputs": copy.deepcopy(props)}],
                                  stack="test")
    return [f.message for f in evaluate([resource], [policy])]


def stack_findings(policy_name: str, graph: list[dict], stack: str = "test") -> list[Finding]:
    policy = POLICY[policy_name]
    assert isinstance(policy, StackValidationPolicy)
    return evaluate(policy_resources(graph, stack), [policy])


Graph = list[dict[str, Any]]


def with_prod_reference(graph: Graph, exports: dict[str, Any] | None = None) -> Graph:
    """The engine shows the pack the dr stack's StackReference (a read resource) with prod's exports
    as its ``outputs``; the mock harness records registrations only, so add it as the engine would."""
    ref = {"type": base.STACK_REFERENCE, "name": "organization/regionpair/prod", "parent": None, "provider": None,
           "inputs": {"name": "organization/regionpair/prod",
                      "outputs": copy.deepcopy(exports if exports is not None else harness.stack_exports("prod"))}}
    return [*graph, ref]


def graph_of(stack: str) -> Graph:
    """A stack's graph; a ``harness.VARIANTS`` name (``dr+mirrormaker2``) renders that config of its stack."""
    base = harness.VARIANTS[stack][0] if stack in harness.VARIANTS else stack
    graph = copy.deepcopy(harness.render_variant(stack) if stack in harness.VARIANTS else harness.render_stack(stack))
    return with_prod_reference(graph) if base == "dr" else graph


def findings(stack: str, graph: Graph, config_overrides: dict[str, Any] | None = None) -> list:
    """Run the whole pack with the stack's config set the way the CLI hands it to the pack."""
    base, variant = harness.VARIANTS.get(stack, (stack, {}))
    config = harness.stack_config(base, {**variant, **(config_overrides or {})})
    current = pulumi.runtime.config.CONFIG.get()
    saved = dict(current)
    current.clear()
    current.update(config)
    try:
        return evaluate(policy_resources(graph, stack))
    finally:
        current.clear()
        current.update(saved)


def init_args_class(resource_cls: type) -> type:
    module = importlib.import_module(resource_cls.__module__)
    for name in (f"{resource_cls.__name__}InitArgs", f"{resource_cls.__name__}Args"):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no *Args class for {resource_cls}")


def input_types_of(module_name: str) -> list[type]:
    inputs = importlib.import_module(f"{module_name}._inputs")
    return [c for c in vars(inputs).values() if inspect.isclass(c) and is_input_type(c)]
