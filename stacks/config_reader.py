"""``ConfigError`` and the stack config's wording of the shared field reader's refusals
(``contract.fields``): every section of the config (``stacks/config.py``, ``mm2config.py``,
``connectconfig.py``, ``kafka_backup.py``) reads its keys through ``section`` and refuses with these words.
"""

from __future__ import annotations

from typing import Any

from contract.fields import MISSING, Fields, Problem

PROJECT = "regionpair"
SECRET: Any = object()
"""Stands for a secret value in an error message: the value itself is never shown."""


class ConfigError(ValueError):
    """A config value is missing or wrong. Names the key, the value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        shown = "(missing)" if value is MISSING else "(secret, not shown)" if value is SECRET else repr(value)
        super().__init__(f"config {PROJECT}:{key} = {shown}: {allowed}")


def refusal(p: Problem) -> ConfigError:
    """The config's words for one problem: the key, the value and what is allowed."""
    c = p.context
    if p.kind == "not_object":
        return ConfigError(p.path, p.value, "expected an object (a YAML mapping)")
    if p.kind == "missing":
        return ConfigError(p.path, MISSING, "this key is required")
    if p.kind == "not_string":
        what = f"allowed: {' | '.join(c['choices'])}" if c.get("choices") else c.get("hint", "")
        return ConfigError(p.path, p.value, "expected a non-empty string" + (f" ({what})" if what else ""))
    if p.kind == "not_allowed":
        return ConfigError(p.path, p.value, f"allowed: {' | '.join(c['choices'])}")
    if p.kind == "no_match":
        return ConfigError(p.path, p.value, f"expected {c.get('hint', '')}")
    if p.kind == "not_whole":
        low, high = c.get("minimum"), c.get("maximum")
        return ConfigError(p.path, p.value, "expected a whole number"
                           + (f" between {low} and {high}" if low is not None and high is not None else ""))
    if p.kind in ("below", "above"):
        bound = f"the minimum is {c['minimum']}" if p.kind == "below" else f"the maximum is {c['maximum']}"
        return ConfigError(p.path, p.value, bound + (f" ({c['why']})" if c.get("why") else ""))
    if p.kind == "not_bool":
        return ConfigError(p.path, p.value, "expected true or false")
    if p.kind == "not_list":
        hint = c.get("hint", "")
        return ConfigError(p.path, p.value, "expected a list of strings" + (f" ({hint})" if hint else ""))
    if p.kind == "bad_item":
        return ConfigError(f"{p.path}[{p.index}]", p.value, f"expected {c.get('hint') or 'a non-empty string'}")
    if p.kind == "duplicates":
        return ConfigError(p.path, list(p.value), "contains duplicates; list each entry once")
    if p.kind == "unknown":
        return ConfigError(p.path, p.value, f"unknown key in {c['where']}; known keys: {', '.join(c['known'])}")
    raise AssertionError(f"no wording for {p.kind!r}")  # a kind contract.fields added without one here


def section(data: Any, path: str = "") -> Fields:
    """A config object read with the config's words (``path``: its dotted key, '' for the top level)."""
    return Fields(data, path, refusal)
