"""The one typed field reader of plain mappings, shared by the stack config and the outputs document:
it reads a key as a string, whole number, boolean, list of strings or nested object, records the dotted
path and every key read, and hands each problem to its user's ``refuse``, which words the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

MISSING: Any = object()
"""An absent key (or one set to null): ``get``'s default that makes the key required."""


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field, before anyone words it."""

    kind: str
    """``not_object`` · ``missing`` · ``not_string`` · ``not_allowed`` (choices) · ``no_match`` (pattern) ·
    ``not_whole`` · ``below`` · ``above`` · ``not_bool`` · ``not_list`` · ``bad_item`` · ``duplicates`` ·
    ``unknown``."""
    path: str
    """The key's dotted path ('' for the top level; for ``bad_item``, the list's)."""
    value: Any
    """The value seen (``MISSING`` when absent; for ``bad_item``, the item)."""
    index: int | None = None
    """``bad_item``: the item's position in the list."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """What the reader was asked for: ``choices``, ``hint``, ``minimum``, ``maximum``, ``why``; for
    ``bad_item`` the whole list (``items``); for ``unknown`` the keys read (``known``) and the object's path
    (``where``)."""


Refuse = Callable[[Problem], Exception]
"""Turns a problem into the exception its user raises (ConfigError, OutputsError …)."""


class Fields:
    """One mapping; every key read is recorded, so ``done`` can refuse the ones nobody read."""

    def __init__(self, data: Any, path: str, refuse: Refuse, *, whole_floats: bool = False):
        """``whole_floats``: ``integer`` takes 30.0 as 30 here and in every nested mapping (documents
        written as JSON by other tools); otherwise a float is refused."""
        if not isinstance(data, Mapping):
            raise refuse(Problem("not_object", path, data))
        self.data = data
        self.path = path
        self.refuse = refuse
        self.whole_floats = whole_floats
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted path of ``name`` in this mapping."""
        return f"{self.path}.{name}" if self.path else name

    def _refuse(self, kind: str, name: str, value: Any, **context: Any) -> Exception:
        return self.refuse(Problem(kind, self.key(name), value, context=context))

    def get(self, name: str, default: Any = MISSING) -> Any:
        """The raw value; absent or null gives ``default``, and without one the key is required."""
        self.seen.add(name)
        value = self.data.get(name, MISSING)
        if value is MISSING or value is None:
            if default is MISSING:
                raise self._refuse("missing", name, MISSING)
            return default
        return value

    def string(self, name: str, default: Any = MISSING, pattern: re.Pattern | None = None, hint: str = "",
               choices: tuple[str, ...] | None = None) -> Any:
        """A non-empty string, one of ``choices`` and matching ``pattern`` when given (the default as is)."""
        value = self.get(name, default)
        if value is None or (value is default and default is not MISSING):
            return value
        if not isinstance(value, str) or not value.strip():
            raise self._refuse("not_string", name, value, choices=choices, hint=hint)
        if choices is not None and value not in choices:
            raise self._refuse("not_allowed", name, value, choices=choices)
        if pattern is not None and not pattern.match(value):
            raise self._refuse("no_match", name, value, hint=hint)
        return value

    def integer(self, name: str, default: Any = MISSING, minimum: int | None = None, maximum: int | None = None,
                why: str = "") -> Any:
        """A whole number (never a boolean) within the bounds (the default as is)."""
        value = self.get(name, default)
        if value is default and default is not MISSING:
            return value
        if self.whole_floats and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._refuse("not_whole", name, value, minimum=minimum, maximum=maximum)
        if minimum is not None and value < minimum:
            raise self._refuse("below", name, value, minimum=minimum, why=why)
        if maximum is not None and value > maximum:
            raise self._refuse("above", name, value, maximum=maximum, why=why)
        return value

    def boolean(self, name: str, default: Any = MISSING) -> Any:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self._refuse("not_bool", name, value)
        return value

    def strings(self, name: str, default: Any = MISSING, pattern: re.Pattern | None = None, hint: str = "",
                unique: bool = True, non_empty: bool = False) -> tuple[str, ...]:
        """A list of strings (each matching ``pattern``; each non-empty with ``non_empty``), each once
        with ``unique``."""
        value = self.get(name, default)
        if not isinstance(value, (list, tuple)):
            raise self._refuse("not_list", name, value, hint=hint)
        for i, item in enumerate(value):
            if (not isinstance(item, str) or (non_empty and not item)
                    or (pattern is not None and not pattern.match(item))):
                raise self.refuse(Problem("bad_item", self.key(name), item, index=i,
                                          context={"hint": hint, "items": value}))
        if unique and len(set(value)) != len(value):
            raise self._refuse("duplicates", name, value)
        return tuple(value)

    def obj(self, name: str, required: bool = True) -> "Fields":
        """A nested mapping; not ``required`` and absent: an empty one."""
        return self._nested(self.get(name, MISSING if required else {}), name)

    def obj_or_none(self, name: str) -> "Fields | None":
        """A nested mapping, or None when absent."""
        value = self.get(name, None)
        return None if value is None else self._nested(value, name)

    def _nested(self, value: Any, name: str) -> "Fields":
        return Fields(value, self.key(name), self.refuse, whole_floats=self.whole_floats)

    def done(self) -> None:
        """Refuse the first key (in sorted order) that nothing read."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.refuse(Problem("unknown", self.key(unknown[0]), self.data[unknown[0]],
                                      context={"known": sorted(self.seen), "where": self.path or "(top level)"}))
