"""The sandbox's stand-in for each region's Kubernetes cluster: the active-endpoints ConfigMaps
its applications read (docs/kubernetes.md) and a Deployment per app namespace that reads them
through envFrom, one file per region, written atomically::

    DIR/k8s/<region>.json   {"context": "sandbox-<region>",
                             "configmaps": {NS: {NAME: {"labels": {}, "annotations": {}, "data": {}}}},
                             "deployments": {NS: {NAME: <Deployment: metadata, spec, status>}}}
    DIR/k8s/<region>.down   present while that cluster's API does not answer (its region is down)

`up` creates both with the primary's values, as Pulumi does (the DR cluster's applications also
write to the primary until a failover). A region outage (`kill_region`) takes its cluster's API
with it; the ConfigMaps survive (etcd does), stale, and answer again after `start_cluster`.
The Deployments have no pods: a patch of the pod template counts as a new generation whose
rollout the stand-in's controller finishes at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from contract import active_endpoints as contract
from sandbox.errors import SandboxError
from sandbox.layout import Layout, check_region, file_lock, write_json_atomic

NAMESPACES = ("payments", "checkout")
"""The app namespaces of each sandbox cluster (two, so a copy per namespace is exercised)."""
DEPLOYMENTS = {"payments": ("payments-api",), "checkout": ("checkout-web",)}
"""The Deployments each cluster runs (one per namespace) and the outputs list for restart."""
REPLICAS = 2


def context(region: str) -> str:
    return f"sandbox-{region}"


def _dir(layout: Layout) -> Path:
    return layout.root / "k8s"


def store(layout: Layout, region: str) -> Path:
    return _dir(layout) / f"{check_region(region)}.json"


def down_marker(layout: Layout, region: str) -> Path:
    return _dir(layout) / f"{check_region(region)}.down"


def create(layout: Layout, region: str, data: dict[str, str]) -> None:
    """A cluster whose every app namespace holds a copy with ``data``, labelled and annotated as Pulumi does."""
    copy = {"labels": {contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE, "app.kubernetes.io/managed-by": "pulumi"},
            "annotations": {contract.VERSION_ANNOTATION: contract.CONTRACT_VERSION}, "data": dict(data)}
    write_json_atomic(store(layout, region), {"context": context(region), "configmaps": {
        ns: {contract.CONFIGMAP_NAME: json.loads(json.dumps(copy))} for ns in NAMESPACES},
        "deployments": {ns: {name: _deployment(ns, name) for name in names} for ns, names in DEPLOYMENTS.items()}})
    down_marker(layout, region).unlink(missing_ok=True)


def _deployment(namespace: str, name: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": REPLICAS, "template": {"metadata": {"labels": {"app": name}, "annotations": {}},
                                                        "spec": {"containers": [{"name": "app", "envFrom": [
                                                            {"configMapRef": {"name": contract.CONFIGMAP_NAME}}]}]}}},
            "status": {"observedGeneration": 1, "replicas": REPLICAS, "updatedReplicas": REPLICAS,
                       "availableReplicas": REPLICAS}}


def reachable(layout: Layout, region: str) -> bool:
    return store(layout, region).exists() and not down_marker(layout, region).exists()


def _require(layout: Layout, region: str) -> None:
    if not store(layout, region).exists():
        raise SandboxError(f"this sandbox has no cluster for {region} (it was started before clusters existed); "
                           "start it again with `python -m sandbox up`", component=f"cluster-{region}")
    if down_marker(layout, region).exists():
        raise SandboxError(f"the cluster of {region} (context {context(region)}) does not answer: its region is down; "
                           f"`python -m sandbox fault --dir {layout.root} restart-cluster {region}` brings it back",
                           component=f"cluster-{region}")


def configmaps(layout: Layout, region: str) -> dict[str, dict[str, dict]]:
    """Namespace → name → {labels, annotations, data} of the region's cluster."""
    _require(layout, region)
    return json.loads(store(layout, region).read_text())["configmaps"]


def patch(layout: Layout, region: str, namespace: str, name: str, data: dict[str, str],
          annotations: dict[str, str]) -> str:
    """Merge ``data`` and ``annotations`` into an existing copy (like a patch: other keys stay)."""
    _require(layout, region)
    path = store(layout, region)
    with file_lock(path.with_name(f".{region}.lock")):  # the two clusters' steps may run at once
        doc = json.loads(path.read_text())
        copy = doc["configmaps"].get(namespace, {}).get(name)
        if copy is None:
            raise SandboxError(f"no ConfigMap {namespace}/{name} in the cluster of {region}", component=f"cluster-{region}")
        copy["data"].update(data)
        copy["annotations"].update(annotations)
        write_json_atomic(path, doc)
    return f"{namespace}/{name} in {region} patched ({len(data)} keys)"


def deployments(layout: Layout, region: str) -> dict[str, dict[str, dict]]:
    """Namespace → name → Deployment object of the region's cluster (SandboxError while it is down)."""
    _require(layout, region)
    return json.loads(store(layout, region).read_text()).get("deployments", {})


def patch_template(layout: Layout, region: str, namespace: str, name: str, annotations: dict[str, str]) -> str:
    """Merge ``annotations`` into a Deployment's pod template (what `rollout restart` patches); a
    changed template is a new generation, rolled out at once (the stand-in has no pods to wait for)."""
    _require(layout, region)
    path = store(layout, region)
    with file_lock(path.with_name(f".{region}.lock")):
        doc = json.loads(path.read_text())
        obj = doc.get("deployments", {}).get(namespace, {}).get(name)
        if obj is None:
            raise SandboxError(f"no Deployment {namespace}/{name} in the cluster of {region}",
                               component=f"cluster-{region}")
        held = obj["spec"]["template"]["metadata"].setdefault("annotations", {})
        if any(held.get(k) != v for k, v in annotations.items()):
            held.update(annotations)
            generation = obj["metadata"]["generation"] + 1
            obj["metadata"]["generation"] = generation
            obj["status"].update(observedGeneration=generation, updatedReplicas=obj["spec"]["replicas"],
                                 availableReplicas=obj["spec"]["replicas"])
            write_json_atomic(path, doc)
    return f"deployment {namespace}/{name} in {region} patched"


def set_down(layout: Layout, region: str, down: bool) -> None:
    if not store(layout, region).exists():
        return
    marker = down_marker(layout, region)
    if down:
        marker.write_text("the region is down\n")
    else:
        marker.unlink(missing_ok=True)
