"""Put the stand-in ``kubectl`` (tests/helpers/kubectl_standin.py) first on PATH and seed its clusters.

    fake = FakeKubectl.install(tmp_path, monkeypatch)
    fake.seed(context, namespace, data)            # a copy as Pulumi creates it
    fake.calls() -> [{"argv": [...], "stdin": ...}]
    fake.copy(context, namespace) -> {"data", "annotations", "owners", …}
    fake.apply_as(manager, context, namespace, manifest)   # another applier, e.g. Pulumi's provider
    fake.seed_deployment(context, namespace, name)  # a Deployment whose rollout is complete
    fake.deployment(context, namespace, name) -> the object (metadata, spec, status)
    fake.grant(context, namespace, rules)           # RBAC: from then on only what the rules allow
    fake.namespaces(context, names)                 # which namespaces exist (get namespace, apply into one)
    fake.seed_secret(context, namespace, name, data, type_)
    fake.seed_workload(context, kind, namespace, name, pod_spec)  # deployment | statefulset | daemonset
    fake.rollouts(context, after_reads)             # a restarted workload's rollout completes after N reads
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from contract import active_endpoints as contract

SCRIPT = Path(__file__).with_name("kubectl_standin.py")
PULUMI = "pulumi-kubernetes-4"
"""The field manager Pulumi's Kubernetes provider applies as (its prefix)."""


class FakeKubectl:
    def __init__(self, root: Path):
        self.root = root
        self.state_path = root / "clusters.json"
        self.log_path = root / "kubectl.log"

    @classmethod
    def install(cls, tmp_path: Path, monkeypatch) -> "FakeKubectl":
        root = tmp_path / "fake-kubectl"
        (root / "bin").mkdir(parents=True)
        wrapper = root / "bin" / "kubectl"
        wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {SCRIPT} \"$@\"\n")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        fake = cls(root)
        fake._write({"contexts": {}})
        fake.log_path.write_text("")
        monkeypatch.setenv("PATH", f"{root / 'bin'}:{__import__('os').environ.get('PATH', '')}")
        monkeypatch.setenv("FAKE_KUBECTL_STATE", str(fake.state_path))
        monkeypatch.setenv("FAKE_KUBECTL_LOG", str(fake.log_path))
        return fake

    def _read(self) -> dict:
        return json.loads(self.state_path.read_text())

    def _write(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state))

    def cluster(self, context: str, fault: str | None = None) -> None:
        state = self._read()
        state["contexts"].setdefault(context, {"fault": None, "namespaces": {}})["fault"] = fault
        self._write(state)

    def seed(self, context: str, namespace: str, data: dict[str, str], name: str = contract.CONFIGMAP_NAME,
             labels: dict[str, str] | None = None) -> None:
        """A copy as Pulumi creates it: its labels, annotation and data, every field owned by Pulumi."""
        state = self._read()
        cluster = state["contexts"].setdefault(context, {"fault": None, "namespaces": {}})
        labels = {contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE} if labels is None else labels
        annotations = {contract.VERSION_ANNOTATION: contract.CONTRACT_VERSION}
        owners = {f"data.{k}": PULUMI for k in data}
        owners.update({f"labels.{k}": PULUMI for k in labels})
        owners.update({f"annotations.{k}": PULUMI for k in annotations})
        cluster["namespaces"].setdefault(namespace, {})[name] = {
            "labels": labels, "annotations": annotations, "data": dict(data), "owners": owners}
        self._write(state)

    def seed_deployment(self, context: str, namespace: str, name: str, replicas: int = 2,
                        annotations: dict[str, str] | None = None) -> None:
        """A Deployment whose rollout is complete (its pods read the ConfigMap through envFrom)."""
        state = self._read()
        cluster = state["contexts"].setdefault(context, {"fault": None, "namespaces": {}})
        cluster.setdefault("deployments", {}).setdefault(namespace, {})[name] = {
            "metadata": {"name": name, "namespace": namespace, "generation": 1,
                         "managedFields": [{"manager": PULUMI, "operation": "Apply"}]},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"app": name}, "annotations": dict(annotations or {})},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                         "envFrom": [{"configMapRef": {"name": contract.CONFIGMAP_NAME}}]}]}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": replicas, "availableReplicas": replicas}}
        self._write(state)

    def remove_deployment(self, context: str, namespace: str, name: str) -> None:
        """Someone deleted the Deployment (KeyError if it was never seeded, so a typo cannot pass for a deletion)."""
        state = self._read()
        del state["contexts"][context]["deployments"][namespace][name]
        self._write(state)

    def deployment(self, context: str, namespace: str, name: str) -> dict:
        return self._read()["contexts"][context]["deployments"][namespace][name]

    def grant(self, context: str, namespace: str, rules: list[dict]) -> None:
        """The runbooks' Role in one namespace: once any is granted, a request no rule allows is Forbidden."""
        state = self._read()
        cluster = state["contexts"].setdefault(context, {"fault": None, "namespaces": {}})
        if cluster.get("roles") is None:
            cluster["roles"] = {}
        cluster["roles"][namespace] = rules
        self._write(state)

    def copy(self, context: str, namespace: str, name: str = contract.CONFIGMAP_NAME) -> dict:
        return self._read()["contexts"][context]["namespaces"][namespace][name]

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def apply_as(self, manager: str, context: str, namespace: str, manifest: dict, force: bool = False):
        """Another applier (Pulumi's provider, never forced) server-side applying ``manifest``."""
        import os
        import subprocess
        argv = [sys.executable, str(SCRIPT), "--context", context, "-n", namespace, "apply", "--server-side",
                f"--field-manager={manager}", *(["--force-conflicts"] if force else []), "-f", "-"]
        return subprocess.run(argv, input=json.dumps(manifest), capture_output=True, text=True, check=False,
                              env={**os.environ, "FAKE_KUBECTL_STATE": str(self.state_path),
                                   "FAKE_KUBECTL_LOG": str(self.root / "others.log")})

    # ---- what the config restore uses (runbooks/config_restore.py) ----------------------------------

    def _cluster(self, state: dict, context: str) -> dict:
        return state["contexts"].setdefault(context, {"fault": None, "namespaces": {}})

    def namespaces(self, context: str, names: list[str]) -> None:
        state = self._read()
        self._cluster(state, context)["namespace_names"] = list(names)
        self._write(state)

    def rollouts(self, context: str, after_reads: int | None) -> None:
        """None: a restarted workload's rollout never completes (the controller is stuck)."""
        state = self._read()
        self._cluster(state, context)["rollout_after_reads"] = after_reads
        self._write(state)

    def seed_configmap(self, context: str, namespace: str, name: str, data: dict[str, str], manager: str = PULUMI,
                       immutable: bool = False, labels: dict[str, str] | None = None) -> None:
        state = self._read()
        owners = {f"data.{k}": manager for k in data}
        self._cluster(state, context)["namespaces"].setdefault(namespace, {})[name] = {
            "labels": dict(labels or {}), "annotations": {}, "data": dict(data), "owners": owners,
            **({"immutable": True} if immutable else {})}
        self._write(state)

    def seed_secret(self, context: str, namespace: str, name: str, data: dict[str, str], type_: str = "Opaque",
                    manager: str = PULUMI) -> None:
        """``data``: base64 values, as the API holds them."""
        state = self._read()
        self._cluster(state, context).setdefault("secrets", {}).setdefault(namespace, {})[name] = {
            "type": type_, "labels": {}, "annotations": {}, "data": dict(data),
            "owners": {f"data.{k}": manager for k in data}}
        self._write(state)

    def secret(self, context: str, namespace: str, name: str) -> dict | None:
        return self._read()["contexts"][context].get("secrets", {}).get(namespace, {}).get(name)

    def configmap(self, context: str, namespace: str, name: str) -> dict | None:
        return self._read()["contexts"][context]["namespaces"].get(namespace, {}).get(name)

    def seed_workload(self, context: str, kind: str, namespace: str, name: str, pod_spec: dict,
                      replicas: int = 2) -> None:
        """A Deployment, StatefulSet or DaemonSet whose rollout is complete, its pods as ``pod_spec``."""
        state = self._read()
        status: dict = {"observedGeneration": 1}
        if kind == "daemonset":
            status.update(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3, numberReady=3)
        else:
            status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas,
                          availableReplicas=replicas)
            if kind == "statefulset":
                status.update(currentRevision=f"{name}-1", updateRevision=f"{name}-1")
        spec: dict = {"template": {"metadata": {"labels": {"app": name}, "annotations": {}}, "spec": pod_spec}}
        if kind != "daemonset":
            spec["replicas"] = replicas
        self._cluster(state, context).setdefault(kind + "s", {}).setdefault(namespace, {})[name] = {
            "metadata": {"name": name, "namespace": namespace, "generation": 1,
                         "managedFields": [{"manager": PULUMI, "operation": "Apply"}]},
            "spec": spec, "status": status}
        self._write(state)

    def workload(self, context: str, kind: str, namespace: str, name: str) -> dict:
        return self._read()["contexts"][context][kind + "s"][namespace][name]
