"""The Kubernetes configuration export as the restore reads it, and what a restore decides from it.

The export CronJob (components/kubernetes.py, ``EXPORT``) writes, once a day, per exported namespace::

    s3://<backups bucket>/k8s-config/<YYYY-MM-DDTHHMMSSZ>/<namespace>/configmaps.json
    s3://<backups bucket>/k8s-config/<YYYY-MM-DDTHHMMSSZ>/<namespace>/secrets.json

(or ``all-namespaces/…`` with ``export_all_namespaces``): each a JSON ``List`` whose items were
stripped of server-set fields, under SSE-KMS with the region's key. Secrets of type
``kubernetes.io/service-account-token`` and the ``kube-root-ca.crt`` ConfigMap are not exported.

Pure Python: no boto3, no kubectl. A Secret's values live only in ``Obj.data`` (in memory, for the
comparison and the apply); every sentence here names keys, never values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping, Protocol

from contract import active_endpoints as contract

EXPORT_PREFIX = "k8s-config"
"""components.kubernetes_scripts.EXPORT_PREFIX (a test holds the two equal; this module imports no Pulumi)."""
ALL_NAMESPACES = "all-namespaces"
FILES = {"ConfigMap": "configmaps.json", "Secret": "secrets.json"}
FIELD_MANAGER = "regionpair-config-restore"
"""The restore's server-side apply field manager (not the failover's: the two own different objects)."""
STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T\d{6}Z$")
WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset")


class ExportDamaged(Exception):
    """An export object that is not what the export job writes."""


@dataclass(frozen=True)
class Obj:
    """A ConfigMap or Secret: what the restore compares and applies, nothing else of it."""

    kind: str
    """`ConfigMap` or `Secret`."""
    namespace: str
    name: str
    data: Mapping[str, str]
    """A Secret's values are base64 text, as the API holds them; never printed."""
    binary_data: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    type: str | None = None
    """A Secret's type (immutable once created)."""
    immutable: bool = False

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()} {self.namespace}/{self.name}"

    def keys(self) -> list[str]:
        return sorted({*self.data, *self.binary_data})

    def manifest(self, namespace: str) -> dict:
        """What the restore applies into ``namespace``: the exported data, labels and annotations."""
        meta: dict[str, Any] = {"name": self.name, "namespace": namespace}
        if self.labels:
            meta["labels"] = dict(self.labels)
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        doc: dict[str, Any] = {"apiVersion": "v1", "kind": self.kind, "metadata": meta, "data": dict(self.data)}
        if self.binary_data:
            doc["binaryData"] = dict(self.binary_data)
        if self.type:
            doc["type"] = self.type
        if self.immutable:
            doc["immutable"] = True
        return doc


def obj_from(item: Mapping[str, Any], kind: str, namespace: str | None = None) -> Obj:
    meta = item.get("metadata") or {}
    return Obj(kind=kind, namespace=namespace or meta.get("namespace") or "", name=str(meta.get("name") or ""),
               data={str(k): str(v) for k, v in (item.get("data") or {}).items()},
               binary_data={str(k): str(v) for k, v in (item.get("binaryData") or {}).items()},
               labels=dict(meta.get("labels") or {}), annotations=dict(meta.get("annotations") or {}),
               type=item.get("type") if kind == "Secret" else None, immutable=bool(item.get("immutable")))


def parse_list(text: str | bytes, kind: str, where: str) -> list[Obj]:
    """One export file: a JSON List of ``kind`` objects, each named and namespaced."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportDamaged(f"{where} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "List" or not isinstance(doc.get("items"), list):
        raise ExportDamaged(f"{where} is not a List of {kind}s as the export job writes it")
    out = []
    for i, item in enumerate(doc["items"]):
        if not isinstance(item, dict) or item.get("kind", kind) != kind:
            raise ExportDamaged(f"{where}: item {i} is not a {kind}")
        obj = obj_from(item, kind)
        if not obj.name or not obj.namespace:
            raise ExportDamaged(f"{where}: item {i} has no metadata.name or metadata.namespace")
        out.append(obj)
    return out


def parse_key(key: str) -> tuple[str, str, str] | None:
    """(stamp, namespace directory, kind) of an export object's key; None for anything else."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != EXPORT_PREFIX or not STAMP.match(parts[1]):
        return None
    kind = next((k for k, f in FILES.items() if f == parts[3]), None)
    return (parts[1], parts[2], kind) if kind else None


@dataclass(frozen=True)
class Export:
    """One run of the export job: every ConfigMap and Secret it wrote, by namespace."""

    region: str
    stamp: str
    location: str
    """Where it was read (s3://bucket/k8s-config/<stamp>/)."""
    configmaps: Mapping[str, tuple[Obj, ...]]
    secrets: Mapping[str, tuple[Obj, ...]]

    @property
    def namespaces(self) -> list[str]:
        return sorted({*self.configmaps, *self.secrets})


def export_of(region: str, stamp: str, location: str, objects: list[Obj]) -> Export:
    cms: dict[str, list[Obj]] = {}
    secrets: dict[str, list[Obj]] = {}
    for o in objects:
        (cms if o.kind == "ConfigMap" else secrets).setdefault(o.namespace, []).append(o)
    return Export(region, stamp, location, {ns: tuple(sorted(v, key=lambda o: o.name)) for ns, v in cms.items()},
                  {ns: tuple(sorted(v, key=lambda o: o.name)) for ns, v in secrets.items()})


class ExportStore(Protocol):
    def stamps(self, region: str) -> list[str]:
        """Every export run held for the region's cluster (``YYYY-MM-DDTHHMMSSZ``), oldest first."""

    def load(self, region: str, stamp: str) -> Export:
        """Every object of that run, decrypted as the export encrypted it (ExportDamaged: unreadable)."""


def day_of(text: str) -> str:
    """``--day``: a calendar day, YYYY-MM-DD (UTC, as the export names its runs)."""
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise ValueError(f"--day {text!r}: give a calendar day, YYYY-MM-DD (UTC), e.g. 2026-11-22") from None


def pick(stamps: list[str], day: str) -> str | None:
    """The newest export run of ``day`` (a rerun of the job that day wrote a later, complete copy)."""
    same = sorted(s for s in stamps if STAMP.match(s) and s.startswith(day + "T"))
    return same[-1] if same else None


def nearest_days(stamps: list[str], day: str, n: int = 5) -> list[str]:
    """The ``n`` days with an export closest to ``day``, nearest first."""
    target = date.fromisoformat(day)
    days = sorted({m.group(1) for s in stamps if (m := STAMP.match(s))})
    return sorted(days, key=lambda d: (abs((date.fromisoformat(d) - target).days), d))[:n]


# ---- what a restore does to one object ------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    obj: Obj
    """The exported object (its namespace: where it is restored)."""
    action: str
    """`create`, `change`, `as is`, or `blocked` (cannot be restored in place)."""
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    """Keys the live object has and the export has not: left as they are."""
    why: str = ""

    def sentence(self, done: bool = False) -> str:
        """Key names only, never a value (a ConfigMap's as little as a Secret's). ``done``: in the past
        tense, for the result of the apply."""
        o = self.obj
        if self.action == "create":
            return f"{'created' if done else 'create'} {o.ref} with key(s) {_names(o.keys())}"
        if self.action == "as is":
            return f"{o.ref} already equals the export ({len(o.keys())} key(s)); left as is" + _kept(self.kept)
        if self.action == "blocked":
            return f"{o.ref} cannot be restored in place: {self.why}"
        parts = []
        if self.changed:
            parts.append(f"{'restored' if done else 'restore'} the value(s) of {_names(self.changed)}")
        if self.added:
            parts.append(f"{'added' if done else 'add'} {_names(self.added)}")
        if not parts:
            parts.append(f"{'restored' if done else 'restore'} its labels and annotations")
        return f"{'changed' if done else 'change'} {o.ref}: " + "; ".join(parts) + _kept(self.kept)


def _names(keys) -> str:
    keys = list(keys)
    return ", ".join(keys) if keys else "(none)"


def _kept(kept) -> str:
    return f"; key(s) not in the export kept as they are: {_names(kept)}" if kept else ""


def diff(exported: Obj, live: Obj | None) -> Change:
    """What restoring ``exported`` over ``live`` (None: absent) means. Equal when every exported key
    holds its exported value and the exported labels and annotations are there."""
    if live is None:
        return Change(exported, "create")
    mine = {**{f"data.{k}": v for k, v in exported.data.items()},
            **{f"binaryData.{k}": v for k, v in exported.binary_data.items()}}
    theirs = {**{f"data.{k}": v for k, v in live.data.items()},
              **{f"binaryData.{k}": v for k, v in live.binary_data.items()}}
    added = tuple(sorted(k.split(".", 1)[1] for k in mine if k not in theirs))
    changed = tuple(sorted(k.split(".", 1)[1] for k in mine if k in theirs and theirs[k] != mine[k]))
    kept = tuple(sorted(k.split(".", 1)[1] for k in theirs if k not in mine))
    meta_differs = any(live.labels.get(k) != v for k, v in exported.labels.items()) or any(
        live.annotations.get(k) != v for k, v in exported.annotations.items())
    if not added and not changed and not meta_differs:
        return Change(exported, "as is", kept=kept)
    if exported.kind == "Secret" and exported.type and live.type and exported.type != live.type:
        return Change(exported, "blocked", why=f"its type is {live.type} in the cluster and {exported.type} in the "
                      "export, and a Secret's type cannot change: delete it first if the export's is the one to keep")
    if live.immutable and (added or changed):
        return Change(exported, "blocked", added, changed, kept,
                      why="it is immutable in the cluster and its data differs from the export: delete it first "
                          "(its readers keep the values they loaded) and rerun")
    if not added and not changed:
        return Change(exported, "change", kept=kept, why="labels or annotations differ")
    return Change(exported, "change", added, changed, kept)


def skipped(obj: Obj) -> str | None:
    """Why the restore leaves an exported object alone (None: it restores it)."""
    if obj.kind == "ConfigMap" and obj.labels.get(contract.CONTRACT_LABEL) == contract.CONTRACT_LABEL_VALUE:
        return (f"{obj.ref} is the active-endpoints contract, which the failover runbooks own (a day-old copy "
                "could send the applications to a fenced primary); left as is")
    if obj.kind == "ConfigMap" and obj.name == "kube-root-ca.crt":
        return f"{obj.ref} is the cluster's own; left as is"
    if obj.kind == "Secret" and obj.type == "kubernetes.io/service-account-token":
        return f"{obj.ref} is a service account token the cluster issues; left as is"
    return None


# ---- who reads them -----------------------------------------------------------------------------

def references(pod_spec: Mapping[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(kind, name) of every ConfigMap and Secret a pod template reads → how (env, envFrom, volume,
    projected volume), from its containers, init containers and volumes."""
    found: dict[tuple[str, str], set[str]] = {}

    def add(kind: str, name: Any, how: str) -> None:
        if isinstance(name, str) and name:
            found.setdefault((kind, name), set()).add(how)

    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    for c in containers:
        for env in c.get("env") or []:
            src = (env or {}).get("valueFrom") or {}
            add("ConfigMap", (src.get("configMapKeyRef") or {}).get("name"), "env")
            add("Secret", (src.get("secretKeyRef") or {}).get("name"), "env")
        for env in c.get("envFrom") or []:
            add("ConfigMap", ((env or {}).get("configMapRef") or {}).get("name"), "envFrom")
            add("Secret", ((env or {}).get("secretRef") or {}).get("name"), "envFrom")
    for v in pod_spec.get("volumes") or []:
        add("ConfigMap", ((v or {}).get("configMap") or {}).get("name"), "volume")
        add("Secret", ((v or {}).get("secret") or {}).get("secretName"), "volume")
        for src in ((v or {}).get("projected") or {}).get("sources") or []:
            add("ConfigMap", (src.get("configMap") or {}).get("name"), "projected volume")
            add("Secret", (src.get("secret") or {}).get("name"), "projected volume")
    return found


@dataclass(frozen=True)
class Reader:
    kind: str
    """`deployment`, `statefulset` or `daemonset`."""
    namespace: str
    name: str
    reads: tuple[str, ...]
    """What it reads of the restored objects, in words (``configmap app-config (envFrom)``)."""

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def readers(workloads: list[Mapping[str, Any]], namespace: str, restored: set[tuple[str, str]]) -> list[Reader]:
    """The workloads of ``namespace`` whose pods read one of ``restored`` ((kind, name))."""
    out = []
    for w in workloads:
        kind = str(w.get("kind", "")).lower()
        if kind not in WORKLOAD_KINDS:
            continue
        refs = references((((w.get("spec") or {}).get("template") or {}).get("spec")) or {})
        reads = sorted(f"{k.lower()} {n} ({', '.join(sorted(how))})" for (k, n), how in refs.items()
                       if (k, n) in restored)
        if reads:
            out.append(Reader(kind, namespace, str((w.get("metadata") or {}).get("name")), tuple(reads)))
    return sorted(out, key=lambda r: (r.kind, r.name))


def rollout(kind: str, obj: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the workload's newest pod template is rolled out (as ``kubectl rollout status`` judges
    it), and where it stands, in words."""
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not seen the restart yet"
    if kind == "daemonset":
        want = status.get("desiredNumberScheduled", 0)
        updated, available = status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0)
        return updated >= want and available >= want, f"{updated} of {want} pods updated, {available} available"
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if kind == "statefulset":
        ready = status.get("readyReplicas", 0)
        same = status.get("currentRevision") == status.get("updateRevision")
        return updated >= want and ready >= want and same, f"{updated} of {want} pods updated, {ready} ready"
    available = status.get("availableReplicas", 0)
    old = status.get("replicas", want) - updated
    return (updated >= want and available >= want and old <= 0,
            f"{updated} of {want} pods updated, {available} available")
