"""Kubernetes ConfigMaps and Secrets as the config-restore tests seed them in the stand-in kubectl."""

from __future__ import annotations

CTX = "arn:aws:eks:us-east-1:123456789012:cluster/payments"


def cm(ns, name, data, labels=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns,
                                                                  **({"labels": labels} if labels else {})},
            "data": data}


def secret(ns, name, data, type_="Opaque"):
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": ns},
            "data": data}
