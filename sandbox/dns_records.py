"""DNS in the sandbox, from the controller: the records the responder serves
(``DIR/dns/records.json``, Route 53's stand-in), a record's upsert that returns once the responder
answers it, and what the responder answers now."""

from __future__ import annotations

import json

from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import Layout, State, file_lock, fqdn, write_json_atomic
from sandbox.probes import deadline_loop, dns_problem, dns_query


def write(layout: Layout, state: State, records: dict[str, str]) -> None:
    write_json_atomic(layout.records_file, {"ttl_seconds": state.dns_ttl, "records": records})


def read(layout: Layout) -> dict:
    return json.loads(layout.records_file.read_text())


def full_name(layout: Layout, name: str) -> str:
    """The served FQDN of a service name or FQDN (SandboxError naming the served ones if none)."""
    name = name.rstrip(".").lower()
    records = read(layout)["records"]
    if name in records:
        return name
    if fqdn(name) in records:
        return fqdn(name)
    raise SandboxError(f"no DNS record {name!r}; the sandbox serves {', '.join(sorted(records))}", component="dns")


def answers(layout: Layout, state: State) -> dict[str, str]:
    """What the responder answers now for each name (asked over DNS); the records file when it is down."""
    records = read(layout)["records"]
    if proc.running(layout.run_dir, "dns") is None:
        return dict(records)
    import dns.exception
    out = {}
    for name in records:
        try:
            out[name] = dns_query(state, name)[0]
        except (dns.exception.DNSException, OSError, LookupError) as exc:  # shown in the status
            out[name] = f"no answer ({type(exc).__name__})"
    return out


def set_record(layout: Layout, state: State, name: str, region: str, deadline_s: float = 3.0) -> str:
    """Record UPSERT: point a service name (or its FQDN) at a region; returns once the responder answers it."""
    target = full_name(layout, name)
    with file_lock(layout.records_file.with_name(".records.lock")):  # parallel steps update other names
        doc = read(layout)
        before = doc["records"][target]
        doc["records"][target] = state.addresses[region]
        write_json_atomic(layout.records_file, doc)
    if proc.running(layout.run_dir, "dns") is None:
        return f"{target} → {region} written; the DNS responder is not running"
    deadline_loop(deadline_s, "the DNS answer", lambda: dns_problem(state, target, state.addresses[region]),
                  "dns", layout.log("dns"))
    return (f"{target} now answers {state.addresses[region]} ({region}); it answered {before} "
            f"({state.region_of(before) or 'unknown'}); clients may keep the old answer {doc['ttl_seconds']} s")


def record(layout: Layout, state: State, name: str) -> str:
    """The region a service name points at (its address if it is no region's)."""
    address = read(layout)["records"][full_name(layout, name)]
    return state.region_of(address) or address
