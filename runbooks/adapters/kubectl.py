"""The Endpoints port on real clusters, through ``kubectl``.

Why the CLI and not a client library: operators have it, it honours their kubeconfig and EKS's
exec authentication (``aws eks get-token``), and it is what docs/kubernetes.md tells people to run
by hand. Per namespace of a region's ``kubernetes`` outputs, exactly::

    kubectl --context C --request-timeout 5s -n NS get configmap -l regionpair.io/contract=active-endpoints -o json
    kubectl --context C --request-timeout 5s -n NS apply --server-side --field-manager=regionpair-runbooks \\
        --force-conflicts -f -            (the manifest on stdin)

and per Deployment of its ``restart_deployments`` (what ``kubectl rollout restart`` does, plus the
run id, so that a rerun can tell the restart happened)::

    kubectl --context C --request-timeout 5s -n NS get deployment NAME -o json
    kubectl --context C --request-timeout 5s -n NS patch deployment NAME --type merge --field-manager=regionpair-runbooks \\
        -p '{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":T,"regionpair.io/restarted-for":RUN}}}}}'

Server-side apply under the runbooks' own field manager takes the keys it writes over from Pulumi
(docs/kubernetes.md: a later ``pulumi up`` carrying the old values then conflicts instead of
reverting them). An applier that leaves out a field it owns removes it, so every apply carries
EVERY contract key of the copy, the unchanged ones with their current values; never the version
key (Pulumi's) and never a key outside the contract (someone else's, which stays theirs).

A Deployment is read by name (``get`` on exactly the listed names is all the Role grants; never a
list) and only its name, pod-template annotations, ``paused`` and rollout counters are kept.

Only the contract's keys of a ConfigMap are kept (contract.active_endpoints.contract_data), so nothing
else reaches a journal or a log; kubectl's stderr is scrubbed (runbooks/redact.py) and cut to its
first lines before it becomes part of an error. No kubeconfig is read or written here.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from contract import active_endpoints as contract
from contract.outputs import Kubernetes, Outputs
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import ClusterEndpoints, DeploymentState, EndpointsCopy
from runbooks.core.redact import scrub

log = logging.getLogger(__name__)

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class KubectlSettings:
    binary: str = "kubectl"
    request_timeout_s: int = 5
    """kubectl's own limit per API request: a cluster in a lost region fails in seconds."""
    process_timeout_s: float = 15.0
    """The whole invocation, the exec authentication plugin and discovery included."""


_UNREACHABLE = re.compile(r"(unable to connect|i/o timeout|connection refused|no such host|timeout|timed out|"
                          r"tls handshake|connection reset|network is unreachable|dial tcp)", re.I)
_NO_CONTEXT = re.compile(r"context (\"[^\"]*\" )?(does not exist|was not found)|no context exists", re.I)
_FORBIDDEN = re.compile(r"(forbidden|unauthorized|must be logged in)", re.I)
_NOT_FOUND = re.compile(r"\(NotFound\)")


def deployment_state(namespace: str, name: str, obj: Mapping[str, Any] | None) -> DeploymentState:
    """What the runbooks keep of a Deployment object (None: it does not exist): the two restart
    annotations of its pod template, ``paused`` and its rollout in words. Nothing else of it."""
    if obj is None:
        return DeploymentState(namespace, name, exists=False)
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    notes = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        rollout = "rollout not started yet (the controller has not seen the change)"
    else:
        rollout = (f"{status.get('updatedReplicas', 0)} of {spec.get('replicas', 1)} pods updated, "
                   f"{status.get('availableReplicas', 0)} available")
    return DeploymentState(namespace, name, exists=True, restarted_for=notes.get(contract.RESTARTED_FOR),
                           restarted_at=notes.get(contract.RESTARTED_AT), paused=bool(spec.get("paused")),
                           rollout=rollout)


def restart_patch(restarted_for: str, at: str) -> dict:
    """The merge patch of a restart: the pod template's two annotations, nothing else."""
    return {"spec": {"template": {"metadata": {"annotations": {contract.RESTARTED_AT: at,
                                                               contract.RESTARTED_FOR: restarted_for}}}}}


def _said(stderr: str | None, limit: int = 300) -> str:
    """kubectl's complaint for an error message: scrubbed of credentials, its first two lines, bounded."""
    lines = [line.strip() for line in scrub(stderr or "").splitlines() if line.strip()]
    text = " | ".join(lines[:2]) or "no message"
    return text if len(text) <= limit else text[:limit] + "…"


def run_kubectl(runner: Runner, settings: KubectlSettings, context: str, namespace: str, args: list[str], what: str,
                where: str, needs: str, *, region: str | None = None, stdin: str | None = None,
                absent_ok: bool = False, group_hint: str = "its runbook group") -> str | None:
    """One kubectl invocation against ``context``/``namespace``: its stdout; None for an object that
    does not exist when ``absent_ok``. The cluster's refusals become the runbooks' errors, each naming
    ``where`` and what to do: not on PATH, no such context, ``needs`` when RBAC refuses, no answer."""
    exe = shutil.which(settings.binary)
    if exe is None:
        raise Unreachable(f"kubectl is not on PATH, so {where} cannot be reached: install kubectl on the runbook "
                          "host (for EKS also the AWS CLI, which kubectl's exec authentication calls)")
    argv = [exe, "--context", context, "--request-timeout", f"{settings.request_timeout_s}s", "-n", namespace, *args]
    try:
        proc = runner(argv, input=stdin, capture_output=True, text=True, check=False,
                      timeout=settings.process_timeout_s)
    except subprocess.TimeoutExpired:
        raise Unreachable(f"{where} did not answer {what} within {settings.process_timeout_s:g} s") from None
    except OSError as exc:
        raise Unreachable(f"could not run kubectl for {where}: {exc.strerror or exc}") from None
    if proc.returncode == 0:
        return proc.stdout
    said = _said(proc.stderr)
    if _NO_CONTEXT.search(proc.stderr or ""):
        raise Unreachable(f"your kubeconfig has no context {context} ({where}): for EKS run "
                          f"`aws eks update-kubeconfig --region {region or '<region>'} --name <cluster>` (it names the "
                          f"context by the cluster ARN; add --alias {context} if the outputs name it otherwise)")
    if _FORBIDDEN.search(proc.stderr or ""):
        raise StepFailed(f"{where} refused {what}: the runbooks' identity needs {needs} there (the stack binds "
                         f"them to {group_hint}; map the identity to that group with an EKS access entry, "
                         f"docs/kubernetes.md): {said}")
    if absent_ok and _NOT_FOUND.search(proc.stderr or ""):
        return None
    if _UNREACHABLE.search(proc.stderr or ""):
        raise Unreachable(f"{where} does not answer {what}: {said}")
    raise StepFailed(f"kubectl {what} in {where} failed (exit {proc.returncode}): {said}")


class KubectlEndpoints:
    """The active-endpoints ConfigMaps of each region's cluster, reached with the operator's kubectl."""

    def __init__(self, outputs: Outputs, settings: KubectlSettings | None = None, runner: Runner = subprocess.run):
        self.outputs = outputs
        self.settings = settings or KubectlSettings()
        self.runner = runner

    def _cluster(self, region: str) -> Kubernetes:
        r = self.outputs.regions.get(region)
        if r is None or r.kubernetes is None:
            raise BadInput(f"stack outputs: regions.{region}.kubernetes is missing; this region declares no cluster")
        return r.kubernetes

    def _kubectl(self, region: str, namespace: str, args: list[str], what: str, stdin: str | None = None,
                 needs: str | None = None, absent_ok: bool = False) -> str | None:
        """kubectl's stdout; None for an object that does not exist when ``absent_ok``. ``needs``: the
        permission to name when the cluster refuses (default: the ConfigMap's)."""
        k = self._cluster(region)
        return run_kubectl(self.runner, self.settings, k.context, namespace, args, what,
                           f"{region}'s cluster (context {k.context}, namespace {namespace})",
                           needs or f"list, get and patch on the ConfigMap {k.configmap}", region=region,
                           stdin=stdin, absent_ok=absent_ok)

    def _copies(self, region: str, namespace: str) -> list[tuple[EndpointsCopy, dict[str, str]]]:
        """Each copy in the namespace, with its data as the contract sees it."""
        k = self._cluster(region)
        out = self._kubectl(region, namespace, ["get", "configmap", "-l", contract.SELECTOR, "-o", "json"],
                            "the ConfigMap list")
        try:
            items = json.loads(out).get("items") or []
        except (json.JSONDecodeError, AttributeError):
            raise StepFailed(f"kubectl printed no ConfigMap list for {region}'s cluster (context {k.context}, "
                             f"namespace {namespace})") from None
        copies = []
        for item in items:
            meta: dict[str, Any] = item.get("metadata") or {}
            if meta.get("name") != k.configmap:
                continue  # the runbooks write the contract's ConfigMap only (the stack's RBAC allows no other)
            data = contract.contract_data(item.get("data"))
            copies.append((EndpointsCopy(namespace, k.configmap, data,
                                         (meta.get("annotations") or {}).get(contract.UPDATED_BY)), data))
        return copies

    def read(self, region: str) -> ClusterEndpoints:
        k = self._cluster(region)
        copies, missing = [], []
        for ns in k.namespaces:
            found = self._copies(region, ns)
            copies += [c for c, _ in found]
            if not found:
                missing.append(ns)
        return ClusterEndpoints(region, k.context, tuple(copies), tuple(missing))

    def publish(self, region: str, values: Mapping[str, str], run_id: str) -> str:
        k = self._cluster(region)
        refusal = contract.refusal(values, run_id)
        if refusal:
            raise BadInput(f"endpoints of {region}: {refusal}")
        written, missing = [], []
        for ns in k.namespaces:
            found = self._copies(region, ns)
            if not found:
                missing.append(ns)
            for copy, data in found:
                body = {k2: v for k2, v in data.items() if k2 != contract.VERSION_KEY}
                body.update(values)  # every key the runbooks may own, or server-side apply would drop it
                manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": copy.name, "namespace": ns,
                                         "annotations": {contract.UPDATED_BY: run_id}},
                            "data": body}
                self._kubectl(region, ns, ["apply", "--server-side", f"--field-manager={contract.FIELD_MANAGER}",
                                           "--force-conflicts", "-f", "-"], f"the apply of {copy.name}",
                              stdin=json.dumps(manifest))
                written.append(f"{ns}/{copy.name}")
        if not written:
            raise StepFailed(f"{region}'s cluster (context {k.context}) has no ConfigMap {k.configmap} labelled "
                             f"{contract.SELECTOR} in {', '.join(k.namespaces)}; nothing was written")
        log.info("endpoints of %s set in %s", region, ", ".join(written))
        return (f"{', '.join(written)} in {region} (context {k.context}) now send applications to "
                f"{values.get(contract.ACTIVE_REGION, '?')} (server-side apply as {contract.FIELD_MANAGER})"
                + (f"; no copy in {', '.join(missing)}" if missing else ""))

    # ---- the Deployments restarted after the ConfigMap moved (restart_deployments) ----------------

    @staticmethod
    def _deployment_needs(name: str) -> str:
        return (f"get and patch on the Deployment {name} (the stack's Role names each Deployment of "
                "restart_deployments: after listing one, `pulumi up` the stack that declares this cluster)")

    def _deployment(self, region: str, namespace: str, name: str) -> DeploymentState:
        k = self._cluster(region)
        out = self._kubectl(region, namespace, ["get", "deployment", name, "-o", "json"],
                            f"the read of Deployment {name}", needs=self._deployment_needs(name), absent_ok=True)
        if out is None:
            return deployment_state(namespace, name, None)
        try:
            obj = json.loads(out)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("name") != name:
            raise StepFailed(f"kubectl printed no Deployment {name} for {region}'s cluster (context {k.context}, "
                             f"namespace {namespace})")
        return deployment_state(namespace, name, obj)

    def deployments(self, region: str) -> tuple[DeploymentState, ...]:
        k = self._cluster(region)
        return tuple(self._deployment(region, ns, name) for ns, name in k.listed_deployments)

    def restart(self, region: str, namespace: str, name: str, restarted_for: str, at: str) -> str:
        k = self._cluster(region)
        refusal = contract.restart_refusal(k.restart_deployments, namespace, name, restarted_for, at)
        if refusal:
            raise BadInput(f"{region}'s cluster: {refusal}")
        out = self._kubectl(region, namespace, ["patch", "deployment", name, "--type", "merge",
                                                f"--field-manager={contract.FIELD_MANAGER}",
                                                "-p", json.dumps(restart_patch(restarted_for, at), separators=(",", ":"))],
                            f"the restart of Deployment {name}", needs=self._deployment_needs(name), absent_ok=True)
        if out is None:
            raise StepFailed(f"Deployment {namespace}/{name} does not exist in {region}'s cluster (context {k.context}): "
                             "create it, or remove it from the stack's kubernetes.restart_deployments and `pulumi up`")
        log.info("deployment %s/%s in %s restarted for %s", namespace, name, region, restarted_for)
        return f"{namespace}/{name} in {region} restarted ({contract.RESTARTED_AT}={at})"
