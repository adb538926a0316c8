"""The config restore's cluster, through the operator's ``kubectl`` (as runbooks/adapters/kubectl.py).

Exactly these commands, in the target namespace NS of context C::

    kubectl --context C --request-timeout 5s -n NS get namespace NS -o name
    kubectl --context C --request-timeout 5s -n NS get configmap -o json        (and secret, only with consent)
    kubectl --context C --request-timeout 5s -n NS apply --server-side --field-manager=regionpair-config-restore \\
        --force-conflicts -f -                                               (the object on stdin)
    kubectl --context C --request-timeout 5s -n NS get deployment -o json    (and statefulset, daemonset)
    kubectl --context C --request-timeout 5s -n NS get KIND NAME -o json
    kubectl --context C --request-timeout 5s -n NS patch KIND NAME --type merge \\
        --field-manager=regionpair-config-restore -p '{"spec":{"template":{"metadata":{"annotations":{…}}}}}'

The patch is what ``kubectl rollout restart`` sends (the ``kubectl.kubernetes.io/restartedAt``
annotation) plus the run id, so that a rerun can tell the restart happened. A Secret's values go to
kubectl on stdin only; nothing of them is logged, and kubectl's stderr is scrubbed and cut.
What the stack's Role grants for these: components/kubernetes.py ``restore_rules``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Mapping

from runbooks.adapters.kubectl import KubectlSettings, Runner, restart_patch, run_kubectl
from runbooks.backups.k8s_config_export import FIELD_MANAGER, WORKLOAD_KINDS, Obj, obj_from
from runbooks.core.errors import StepFailed

NEEDS = ("the config restore's Role in that namespace (components/kubernetes.py restore_rules: get, list, create "
         "and patch on ConfigMaps — on Secrets too when the stack sets kubernetes.restore_secrets — and get, list "
         "and patch on Deployments, StatefulSets and DaemonSets; get on the namespace)")


class KubectlConfig:
    """One cluster (a kubeconfig context) as the config restore sees it."""

    def __init__(self, context: str, settings: KubectlSettings | None = None, runner: Runner = subprocess.run,
                 region: str | None = None, group: str = "its config restore group"):
        self.context = context
        self.settings = settings or KubectlSettings()
        self.runner = runner
        self.region = region
        self.group = group

    def _run(self, namespace: str, args: list[str], what: str, stdin: str | None = None,
             absent_ok: bool = False) -> str | None:
        where = f"the cluster of context {self.context} (namespace {namespace})"
        return run_kubectl(self.runner, self.settings, self.context, namespace, args, what, where, NEEDS,
                           region=self.region, stdin=stdin, absent_ok=absent_ok, group_hint=self.group)

    def _list(self, namespace: str, kind: str) -> list[dict]:
        out = self._run(namespace, ["get", kind, "-o", "json"], f"the {kind} list")
        try:
            items = json.loads(out or "").get("items")
        except (ValueError, AttributeError):
            items = None
        if not isinstance(items, list):
            raise StepFailed(f"kubectl printed no {kind} list for context {self.context}, namespace {namespace}")
        return items

    def namespace_exists(self, namespace: str) -> bool:
        return self._run(namespace, ["get", "namespace", namespace, "-o", "name"], f"the read of namespace {namespace}",
                         absent_ok=True) is not None

    def objects(self, kind: str, namespace: str) -> dict[str, Obj]:
        """The ConfigMaps (``kind`` ConfigMap) or Secrets of the namespace, by name."""
        return {o.name: o for o in (obj_from(item, kind, namespace) for item in self._list(namespace, kind.lower()))}

    def apply(self, obj: Obj, namespace: str) -> str:
        self._run(namespace, ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
                              "-f", "-"], f"the apply of {obj.kind} {obj.name}",
                  stdin=json.dumps(obj.manifest(namespace)))
        return f"{obj.kind.lower()} {namespace}/{obj.name} applied (server-side, as {FIELD_MANAGER})"

    def workloads(self, namespace: str) -> list[dict]:
        """Deployments, StatefulSets and DaemonSets of the namespace: kind, name and pod template only."""
        out = []
        for kind in WORKLOAD_KINDS:
            for item in self._list(namespace, kind):
                out.append({"kind": kind, "metadata": {"name": (item.get("metadata") or {}).get("name")},
                            "spec": {"template": (item.get("spec") or {}).get("template") or {}}})
        return out

    def workload(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The workload's metadata (generation), replicas, pod-template annotations and status; None: absent."""
        out = self._run(namespace, ["get", kind, name, "-o", "json"], f"the read of {kind} {name}", absent_ok=True)
        if out is None:
            return None
        try:
            obj = json.loads(out)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("name") != name:
            raise StepFailed(f"kubectl printed no {kind} {name} for context {self.context}, namespace {namespace}")
        spec = obj.get("spec") or {}
        notes = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        return {"metadata": {"name": name, "generation": (obj.get("metadata") or {}).get("generation", 0)},
                "spec": {k: spec[k] for k in ("replicas", "paused") if k in spec},
                "annotations": dict(notes), "status": obj.get("status") or {}}

    def restart(self, kind: str, namespace: str, name: str, run_id: str, at: str) -> str:
        out = self._run(namespace, ["patch", kind, name, "--type", "merge", f"--field-manager={FIELD_MANAGER}",
                                    "-p", json.dumps(restart_patch(run_id, at), separators=(",", ":"))],
                        f"the restart of {kind} {name}", absent_ok=True)
        if out is None:
            raise StepFailed(f"{kind} {namespace}/{name} no longer exists in context {self.context}; rerun: the "
                             "restore plans its restarts afresh")
        return f"{kind} {namespace}/{name} restarted"
