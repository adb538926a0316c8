"""The link between the regions (a TCP relay, ``sandbox.workers.serve link``), driven from the
controller through its control socket: its state, and the faults partition, heal and slow-link."""

from __future__ import annotations

import json
import socket

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import Layout, State


def link_request(state: State, request: dict, timeout_s: float = 5.0) -> dict:
    path = Layout.link_socket(state)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(path))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise SandboxError(f"the link's control socket {path} does not answer ({exc}); is the link running? "
                           "(`python -m sandbox status`)", component="link") from None
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise SandboxError(f"the link refused {request}: {reply.get('error')}", component="link")
    return reply


def describe(layout: Layout, state: State) -> dict:
    """The link's state as its relay reports it: up | partitioned | stopped, latency, connections."""
    rec = proc.running(layout.run_dir, "link")
    if rec is None:
        return {"state": "stopped", "pid": None}
    reply = link_request(state, {"op": "get"})
    return {"state": "partitioned" if reply["partitioned"] else "up", "pid": rec.pid,
            "latency_ms": reply["latency_ms"], "connections": reply["connections"]}


def partition(state: State) -> str:
    """Fault: the link drops every byte both ways (a blackhole: connections hang, they are not refused)."""
    link_request(state, {"op": "set", "partitioned": True})
    return "link partitioned: replication traffic between the regions is dropped"


def heal(state: State) -> str:
    link_request(state, {"op": "set", "partitioned": False})
    return "link healed: connections that lost bytes were reset and reconnect"


def slow_link(state: State, ms: int) -> str:
    """Fault: add ``ms`` one-way latency to each direction of the link (0 removes it)."""
    reply = link_request(state, {"op": "set", "latency_ms": int(ms)})
    return f"link latency now {reply['latency_ms']} ms one-way"
