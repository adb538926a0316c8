"""Changing a resource's props the way the policy tests break them: a deep copy with one dotted
path set (``rules.0.destination.metrics``), or removed with ``DELETE``."""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()


def with_(props: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of props with the dotted path set; value DELETE removes it."""
    out = copy.deepcopy(props)
    *parents, last = path.split(".")
    node: Any = out
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out
