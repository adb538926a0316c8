"""Readiness probes of the sandbox's helpers, asked from the controller: the link's control socket,
the DNS responder (asked directly, no cache), each region's S3 bucket; and the deadline loop every
wait of the sandbox runs on."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from sandbox import proc
from sandbox.buckets import bucket_name
from sandbox.errors import SandboxError
from sandbox.layout import DNS_ADDRESS, Layout, State
from sandbox.link import link_request


def deadline_loop(deadline_s: float, what: str, check: Callable[[], str | None], component: str,
                  log_path: Path, pid_component: str | None = None, run_dir: Path | None = None) -> None:
    """Call ``check`` until it returns None (ready) or the deadline passes; it returns the last problem."""
    deadline = time.monotonic() + deadline_s
    problem = "not checked"
    while time.monotonic() < deadline:
        if pid_component and run_dir and proc.running(run_dir, pid_component) is None:
            raise SandboxError(f"exited while starting: {proc.tail(log_path)}", component=component, log=log_path)
        problem = check()
        if problem is None:
            return
        time.sleep(0.03)
    raise SandboxError(f"{what} not ready after {deadline_s:.0f} s ({problem})", component=component, log=log_path)


def link_problem(layout: Layout, state: State) -> str | None:
    try:
        link_request(state, {"op": "get"}, timeout_s=1.0)
    except SandboxError as exc:
        return str(exc)
    return None


def dns_problem(state: State, name: str, expect: str | None) -> str | None:
    import dns.exception
    try:
        got = dns_query(state, name, timeout_s=0.5)
    except (dns.exception.DNSException, OSError, LookupError) as exc:  # not ready yet; reported at the deadline
        return f"{type(exc).__name__}: {exc}"
    if expect is not None and got[0] != expect:
        return f"{name} answers {got[0]}, expected {expect}"
    return None


def s3_problem(state: State, region: str) -> str | None:
    """Why the region's bucket is not ready yet (None once it answers with versioning on: moto's
    host enables versioning just after it creates the bucket, and an object put in between would
    have no version id)."""
    url = f"http://{state.addresses[region]}:{state.moto_port}/{bucket_name(region)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=1.0) as resp:
            if resp.status != 200:
                return f"HTTP {resp.status}"
        with urllib.request.urlopen(url + "?versioning", timeout=1.0) as resp:
            if b"<Status>Enabled</Status>" not in resp.read():
                return f"bucket {bucket_name(region)}: versioning not enabled yet"
        return None
    except urllib.error.HTTPError as exc:
        return f"bucket {bucket_name(region)}: HTTP {exc.code}"
    except OSError as exc:
        return str(exc)


def dns_query(state: State, name: str, timeout_s: float = 1.0) -> tuple[str, int]:
    """Ask the responder directly (no cache): (address, ttl)."""
    import dns.message
    import dns.query
    import dns.rdatatype

    q = dns.message.make_query(name, dns.rdatatype.A)
    resp = dns.query.udp(q, DNS_ADDRESS, port=state.dns_port, timeout=timeout_s)
    for rrset in resp.answer:
        for rr in rrset:
            return rr.address, rrset.ttl
    raise LookupError(f"{name}: no A record (rcode {resp.rcode()})")
