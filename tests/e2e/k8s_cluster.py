"""A real, local Kubernetes control plane for the k8s end-to-end tests: etcd, kube-apiserver and
kube-controller-manager as built by scripts/setup-k8s.sh (.tools/k8s/bin), on free loopback ports.

- The API server authenticates with static bearer tokens (``--token-auth-file``) and authorizes
  with RBAC: an admin (group ``system:masters``) sets the cluster up; other users get exactly the
  Roles a test binds to them. The tokens, the service-account key and the serving certificate live
  in the temporary directory given to ``Cluster``, nowhere else, and are never printed.
- The controller manager runs the Deployment, ReplicaSet, StatefulSet, DaemonSet and service
  account controllers, so a rollout restart is seen and its status written by the real controllers.
  There is no kubelet and no scheduler: no pod ever runs. A workload with ``replicas: 0`` (or a
  DaemonSet, with no node) rolls out as soon as its controller has observed the new template; one
  with replicas never becomes available.
- ``stop()`` ends every process it started (SIGTERM, then SIGKILL), deletes the tokens, kubeconfigs,
  private keys and etcd's data, and is safe to call twice.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "k8s" / "bin"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
ADMIN = "e2e-admin"


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if not os.access(BIN / b, os.X_OK)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, work: Path):
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.tokens: dict[str, str] = {}
        self.kubeconfig = work / "kubeconfig"
        self.cache = work / "kubectl-cache"
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.users: dict[str, tuple[str, list[str]]] = {ADMIN: (ADMIN, ["system:masters"])}

    # ---- lifecycle -----------------------------------------------------------------------------

    def add_user(self, context: str, user: str, groups: list[str]) -> None:
        """A kubeconfig context ``context`` authenticating as ``user`` in ``groups`` (before start)."""
        self.users[context] = (user, groups)

    def start(self, timeout: float = 180.0) -> float:
        """Starts the control plane; returns the seconds it took to be ready."""
        t0 = time.monotonic()
        pki = self.work / "pki"
        pki.mkdir(mode=0o700, exist_ok=True)
        subprocess.run(["openssl", "genrsa", "-out", str(pki / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")],
                       check=True, capture_output=True)
        lines = []
        for i, (context, (user, groups)) in enumerate(self.users.items()):
            self.tokens[context] = secrets.token_hex(24)
            lines.append(f'{self.tokens[context]},{user},uid-{i},"{",".join(groups)}"')
        tokens = self.work / "tokens.csv"
        tokens.write_text("\n".join(lines) + "\n")
        tokens.chmod(0o600)

        etcd_port, peer_port = free_port(), free_port()
        self._spawn("etcd", [str(BIN / "etcd"), "--data-dir", str(self.work / "etcd"),
                             "--listen-client-url", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-url", f"http://127.0.0.1:{peer_port}"])
        self._spawn("kube-apiserver", [
            str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--cert-dir={pki}", f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/24", "--enable-priority-and-fairness=false", "--profiling=false",
            "--v=0"])
        self._write_kubeconfig(pki)
        self._wait(lambda: self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
                   "kube-apiserver /readyz", timeout, t0)
        admin_kc = self.work / "admin.kubeconfig"
        self._write_kubeconfig(pki, only=ADMIN, path=admin_kc)
        self._spawn("kube-controller-manager", [
            str(BIN / "kube-controller-manager"), f"--kubeconfig={admin_kc}", "--leader-elect=false",
            "--controllers=deployment,replicaset,statefulset,daemonset,serviceaccount",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", f"--cert-dir={pki / 'kcm'}",
            "--authentication-skip-lookup=true", "--concurrent-deployment-syncs=2", "--v=0"])
        self._wait(lambda: self._has_default_serviceaccount(), "the controller manager (default service account)",
                   timeout, t0)
        return time.monotonic() - t0

    def stop(self) -> None:
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs.clear()
        # the credentials of a cluster that no longer runs: gone with it, not left in pytest's temp dirs
        # (and etcd's data: it holds the Secrets the tests wrote); the logs stay for a failure's reading
        for path in (self.work / "tokens.csv", self.kubeconfig, self.work / "admin.kubeconfig",
                     self.work / "pki" / "sa.key", self.work / "pki" / "apiserver.key"):
            path.unlink(missing_ok=True)
        for directory in (self.work / "etcd", self.work / "pki" / "kcm"):
            shutil.rmtree(directory, ignore_errors=True)

    def logs(self, name: str, lines: int = 30) -> str:
        path = self.work / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"{name}.log", "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        log.close()
        self.procs.append((name, p))

    def _wait(self, ready, what: str, timeout: float, t0: float) -> None:
        while True:
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}:\n{self.logs(name)}")
            if ready():
                return
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{what} not ready after {timeout:g} s:\n"
                                   + "\n".join(f"--- {n}\n{self.logs(n)}" for n, _ in self.procs))
            time.sleep(0.5)

    def _has_default_serviceaccount(self) -> bool:
        r = self.kubectl("-n", "default", "get", "serviceaccount", "default", "-o", "name", check=False)
        return r.returncode == 0

    def _write_kubeconfig(self, pki: Path, only: str | None = None, path: Path | None = None) -> None:
        """Contexts by name (one per user), each on its own token. The API server's self-signed
        serving certificate (written to ``pki`` on start, its CA after it) is the trust anchor."""
        ca = pki / "apiserver.crt"
        contexts = [c for c in self.users if only in (None, c)]
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
               "clusters": [{"name": "e2e", "cluster": {"server": self.server, "certificate-authority": str(ca)}}],
               "users": [{"name": f"user-{i}", "user": {"token": self.tokens.get(c, "")}}
                         for i, c in enumerate(contexts)],
               "contexts": [{"name": c, "context": {"cluster": "e2e", "user": f"user-{i}"}}
                            for i, c in enumerate(contexts)]}
        path = path or self.kubeconfig
        path.write_text(json.dumps(doc))
        path.chmod(0o600)

    # ---- use -----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What a kubectl run against this cluster needs in its environment."""
        return {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.cache)}

    def kubectl(self, *args: str, context: str = ADMIN, stdin: str | None = None, check: bool = True,
                timeout: float = 30) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env()}
        r = subprocess.run([str(BIN / "kubectl"), "--context", context, *args], input=stdin, capture_output=True,
                           text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} (as {context}) failed: {r.stderr.strip()}")
        return r

    def apply(self, *docs: dict) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}))

    def get(self, kind: str, namespace: str, name: str, *extra: str) -> dict | None:
        r = self.kubectl("-n", namespace, "get", kind, name, "-o", "json", *extra, check=False)
        if r.returncode != 0:
            if "NotFound" in r.stderr:
                return None
            raise RuntimeError(f"kubectl get {kind} {namespace}/{name} failed: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def version(self) -> str:
        return subprocess.run([str(BIN / "kube-apiserver"), "--version"], capture_output=True, text=True).stdout.strip()


def role(ns: str, name: str, rules: list[dict]) -> list[dict]:
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
             "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": name, "namespace": ns},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}]}]


def workload(kind: str, ns: str, name: str, pod_spec: dict, replicas: int = 0) -> dict:
    labels = {"app": name}
    spec: dict = {"selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}
