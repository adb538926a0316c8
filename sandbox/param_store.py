"""The sandbox's parameter store, SSM Parameter Store's stand-in: one JSON file per parameter under
``DIR/params``, written by the runbooks (through the front) and re-read by the clients at every tick."""

from __future__ import annotations

import time
from pathlib import Path

from sandbox.layout import Layout, read_json, write_json_atomic

PRODUCER_APP = "checkout"
CONSUMER_APP = "ledger"
PAUSED = "PAUSED"
"""The parameter value that tells clients to stop producing/consuming/writing until it changes
(a planned switchover's fence for Kafka and S3 clients)."""


def params_dir(layout: Layout) -> Path:
    return layout.root / "params"


def bootstrap_parameter(app: str) -> str:
    return f"/regionpair/sandbox/{app}/kafka-bootstrap"


def bucket_parameter(app: str = PRODUCER_APP) -> str:
    return f"/regionpair/sandbox/{app}/objects-bucket"


def _param_path(layout: Layout, name: str) -> Path:
    if not name.startswith("/") or ".." in name:
        raise ValueError(f"parameter name {name!r}: must start with / and hold no '..'")
    return params_dir(layout) / (name.strip("/").replace("/", "__") + ".json")


def put_param(layout: Layout, name: str, value: str) -> int:
    """Write a parameter (overwrite); returns its new version."""
    path = _param_path(layout, name)
    before = read_json(path) or {}
    version = int(before.get("version", 0)) + 1
    write_json_atomic(path, {"name": name, "value": value, "version": version, "t": time.time()})
    return version


def get_param(layout: Layout, name: str) -> str | None:
    doc = read_json(_param_path(layout, name))
    return None if doc is None else doc.get("value")


class ParamWatch:
    """A client's view of one parameter: re-read when the file changes (a stat per call)."""

    def __init__(self, layout: Layout, name: str):
        self.path = _param_path(layout, name)
        self._key = None
        self.value: str | None = None

    def get(self) -> str | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self.value
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            doc = read_json(self.path)
            if doc is not None:
                self.value, self._key = doc.get("value"), key
        return self.value
