"""The active-endpoints contract (version 1), in pure Python: what applications read from the
`regionpair-active-endpoints` ConfigMap of their namespace (docs/kubernetes.md).

One definition for its three writers: the Kubernetes component (Pulumi writes it once), the
runbooks (they rewrite it after a failover) and the sandbox (its stand-in clusters). No pulumi
import, so the runbooks and the sandbox load it without the Pulumi SDK.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # contract.outputs.parse imports this module's names at run time
    from contract.outputs.schema import Region

CONTRACT_VERSION = "1"
CONFIGMAP_NAME = "regionpair-active-endpoints"
CONTRACT_LABEL = "regionpair.io/contract"
CONTRACT_LABEL_VALUE = "active-endpoints"
SELECTOR = f"{CONTRACT_LABEL}={CONTRACT_LABEL_VALUE}"
"""How the runbooks find every copy in a namespace (`kubectl get configmap -l …`)."""
VERSION_ANNOTATION = "regionpair.io/contract-version"
"""Set by Pulumi on every copy."""
UPDATED_BY = "regionpair.io/updated-by"
"""Set by the runbooks: the run id that last wrote the copy (Pulumi never sets it, so keeps it)."""
FIELD_MANAGER = "regionpair-runbooks"
"""The runbooks' server-side-apply field manager: it owns the keys they write."""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation `kubectl rollout restart` sets: a new value rolls a Deployment's pods."""
RESTARTED_FOR = "regionpair.io/restarted-for"
"""Set by the runbooks beside it, on the pod template: the run id of the ConfigMap write the
restart follows (the copy's ``updated-by``). A Deployment that carries it has been restarted since
that write, so a rerun restarts it no more."""

VERSION_KEY = "REGIONPAIR_CONTRACT_VERSION"
ACTIVE_REGION = "ACTIVE_REGION"
KAFKA = "KAFKA_BOOTSTRAP_SERVERS"
BUCKET = "DATA_BUCKET"
_DB_KEY = re.compile(r"^DB_[A-Z][A-Z0-9_]*_(HOST|PORT)$")
DEPLOYMENT_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""A Deployment's name: Kubernetes validates them as DNS-1123 subdomains."""
_RUN_ID = re.compile(r"^\S{1,253}$")
DEPLOYMENT_NAME_HINT = ("Deployment names (DNS-1123 subdomains: lowercase letters, digits, '-' and '.', starting and "
                        "ending with a letter or digit, at most 253)")


def is_deployment_name(name: object) -> bool:
    """A valid Deployment name (Kubernetes validates them as DNS-1123 subdomains)."""
    return isinstance(name, str) and bool(DEPLOYMENT_NAME.match(name))


def env_key(database: str) -> str:
    """The ConfigMap/environment spelling of a logical database name (market-data → MARKET_DATA)."""
    return database.upper().replace("-", "_")


def database_keys(database: str) -> tuple[str, str]:
    """(host key, port key) of one logical database: payments → DB_PAYMENTS_HOST, DB_PAYMENTS_PORT."""
    return f"DB_{env_key(database)}_HOST", f"DB_{env_key(database)}_PORT"


def endpoint_keys(databases: Iterable[str]) -> list[str]:
    """Every key of the ConfigMap, version 1, in the documented order."""
    keys = [VERSION_KEY, ACTIVE_REGION, KAFKA, BUCKET]
    for db in databases:
        keys += list(database_keys(db))
    return keys


def is_contract_key(key: str) -> bool:
    """A key of the contract (any database's), as opposed to one someone else added to the copy."""
    return key in (VERSION_KEY, ACTIVE_REGION, KAFKA, BUCKET) or bool(_DB_KEY.match(key))


def contract_data(data: Mapping[str, str] | None) -> dict[str, str]:
    """Only the contract's keys of a copy's data: nothing else of a ConfigMap is read, logged or
    journaled by the runbooks."""
    return {k: v for k, v in (data or {}).items() if is_contract_key(k)}


def refusal(values: Mapping[str, str], run_id: str) -> str | None:
    """Why the runbooks must not write ``values`` (None: they may): only the contract's keys, with
    non-empty string values, never the version key (Pulumi's), and a run id to annotate with."""
    bad = sorted(k for k, v in values.items()
                 if k == VERSION_KEY or not is_contract_key(k) or not isinstance(v, str) or not v)
    if bad or not values or not run_id:
        return (f"refusing to write {bad or 'nothing'} (run id {run_id!r}): only the contract's keys with non-empty "
                "values, never REGIONPAIR_CONTRACT_VERSION, and a run id")
    return None


def restart_refusal(listed: Mapping[str, Iterable[str]], namespace: str, name: str, restarted_for: str,
                    at: str) -> str | None:
    """Why the runbooks must not restart ``namespace/name`` (None: they may): only a Deployment the
    outputs list (``restart_deployments``, which the stack's Role names), for a run id, at a time."""
    if name not in tuple(listed.get(namespace, ())):
        return (f"refusing to restart deployment {namespace}/{name}: restart_deployments does not list it (the "
                "runbooks restart only the Deployments the stack lists, which its Role names)")
    if not isinstance(restarted_for, str) or not _RUN_ID.match(restarted_for):
        return f"refusing to restart deployment {namespace}/{name} for run id {restarted_for!r}: not a run id"
    if not isinstance(at, str) or not at.strip():
        return f"refusing to restart deployment {namespace}/{name} without a time for {RESTARTED_AT}"
    return None


def active_values(region: "Region", databases: Iterable[str]) -> dict[str, str]:
    """What the copies carry when ``region`` holds the writers of ``databases``: its endpoints from
    the outputs contract. Never the version key (only Pulumi writes it); Kafka and the bucket only
    when the region declares them."""
    values = {ACTIVE_REGION: region.name}
    for name in databases:
        db = region.databases[name]
        host, port = database_keys(name)
        values[host], values[port] = db.endpoint, str(db.port)
    if region.streaming is not None:
        values[KAFKA] = region.streaming.bootstrap_brokers
    if region.storage is not None:
        values[BUCKET] = region.storage.data_bucket
    return values


def initial_data(region: "Region") -> dict[str, str]:
    """What Pulumi writes when it creates a copy whose active side is ``region`` (every database)."""
    return {VERSION_KEY: CONTRACT_VERSION, **active_values(region, list(region.databases))}
