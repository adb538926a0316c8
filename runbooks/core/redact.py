"""Keeps secrets out of everything the runbooks write (journals, audit, reports, logs)."""

from __future__ import annotations

import re
from typing import Any

_PATTERNS = [
    (re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.I), r"\1***"),
    (re.compile(r"(postgres(?:ql)?://[^:/\s]+:)([^@\s]+)(@)", re.I), r"\1***\3"),
    (re.compile(r"((?:secret|token|passwd)\"?\s*[:=]\s*\"?)([^\"\s,}]+)", re.I), r"\1***"),
    # what kubectl and its EKS exec plugin may print: bearer tokens, EKS tokens, client keys
    (re.compile(r"(bearer\s+)\S+", re.I), r"\1***"),
    (re.compile(r"k8s-aws-v1\.[A-Za-z0-9_\-=.]+"), "k8s-aws-v1.***"),
    (re.compile(r"((?:client-key-data|client-certificate-data|token)\s*:\s*)\S+", re.I), r"\1***"),
]


def scrub(value: Any) -> Any:
    """Return ``value`` with anything that looks like a credential masked (strings, lists, dicts)."""
    if isinstance(value, str):
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)
        return value
    if isinstance(value, dict):
        return {k: ("***" if re.search(r"password|passwd|secret_value|token", str(k), re.I) else scrub(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value
