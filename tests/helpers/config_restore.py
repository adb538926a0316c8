"""Kubernetes ConfigMaps and Secrets as the config-restore tests seed them (the stand-in kubectl and the
real API server of tests/e2e/), the day's export, and what a dry run over it shows."""

from __future__ import annotations

import base64

from contract import active_endpoints as contract

CTX = "arn:aws:eks:us-east-1:123456789012:cluster/payments"
P = "us-east-1"
"""The region the exported active-endpoints ConfigMap names."""


def cm(ns, name, data, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns,
                                                                  **({"labels": labels} if labels else {})},
            "data": data}


def secret(ns, name, data, type_="Opaque"):
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": ns},
            "data": data}


PASSWORD = "hunter2-very-secret"
B64 = base64.b64encode(PASSWORD.encode()).decode()
OLD_B64 = base64.b64encode(b"rotated-by-mistake").decode()


def export_files() -> dict[tuple[str, str], list[dict]]:
    """(namespace, kind) → items, as the export job's CLEAN filter leaves them."""
    return {
        ("payments", "ConfigMap"): [
            cm("payments", "app-config", {"LOG_LEVEL": "info", "FEATURE_X": "on"}),
            cm("payments", "limits", {"MAX_TPS": "500"}),
            cm("payments", "untouched", {"A": "1"}),
            cm("payments", contract.CONFIGMAP_NAME, {"ACTIVE_REGION": P},
               labels={contract.CONTRACT_LABEL: contract.CONTRACT_LABEL_VALUE}),
        ],
        ("payments", "Secret"): [secret("payments", "db-credentials", {"password": B64})],
        ("checkout", "ConfigMap"): [cm("checkout", "web-config", {"THEME": "dark"})],
        ("checkout", "Secret"): [],
    }


def reads_configmap(name, how="envFrom"):
    container = {"name": "app", "image": "registry.example/app:1.0"}
    if how == "envFrom":
        container["envFrom"] = [{"configMapRef": {"name": name}}]
        return {"containers": [container]}
    if how == "env":
        container["env"] = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": name, "key": "MAX_TPS"}}}]
        return {"containers": [container]}
    return {"containers": [container], "volumes": [{"name": "cfg", "configMap": {"name": name}}]}


DRY_RUN_DIFF = [
    "configmap checkout/web-config already equals the export (1 key(s)); left as is",
    "change configmap payments/app-config: restore the value(s) of LOG_LEVEL; key(s) not in the export kept as "
    "they are: HOTFIX",
    "create configmap payments/limits with key(s) MAX_TPS",
    "configmap payments/untouched already equals the export (1 key(s)); left as is"]
"""What a dry run over ``export_files()`` shows, with the stand-in kubectl and on a real API server alike."""

READER_RESTARTS = [
    "daemonset payments/agent reads configmap limits (env)",
    "deployment payments/payments-api reads configmap app-config (envFrom)",
    "statefulset payments/ledger reads configmap limits (volume)"]
"""The readers of the changed ConfigMaps that the dry run would restart, by how they read them."""
