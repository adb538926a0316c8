"""A stand-in for ``kubectl`` at the runbooks' boundary: the subset of its command line the
Endpoints adapter uses, with server-side apply's field ownership, a Deployment's get and merge
patch, RBAC as a Role's rules decide it, and the failures a real one shows (no such context,
cluster unreachable, RBAC forbidden, a hang, an object that does not exist).

Run as a program (``tests/helpers/kubectl.py`` puts a ``kubectl`` wrapper first on PATH). Every
invocation is appended to ``$FAKE_KUBECTL_LOG`` (argv and stdin); the clusters live in the JSON
file ``$FAKE_KUBECTL_STATE``::

    {"contexts": {CONTEXT: {"fault": null | "unreachable" | "forbidden" | "hang",
                            "namespaces": {NS: {NAME: {"labels": {}, "annotations": {}, "data": {},
                                                       "owners": {"data.KEY": MANAGER, ...}}}},
                            "deployments": {NS: {NAME: <a Deployment object: metadata, spec, status>}},
                            "roles": null | {NS: [<rule: apiGroups, resources, resourceNames?, verbs>]}}}}

With ``roles`` set, a request no rule of its namespace allows is refused as the API server does
(``roles`` null: everything is allowed; ``roles[""]``: the cluster-scoped rules, e.g. a namespace's
get). A patched Deployment's controller does not run: its ``status`` stays where it was, as in the
seconds after a real ``rollout restart`` — unless ``rollout_after_reads`` is set, in which case the
rollout completes after that many reads of the object.

The config restore (runbooks/config_restore.py) adds: ``secrets`` (as ``namespaces``, with
``type`` and ``immutable``), ``statefulsets`` and ``daemonsets`` (as ``deployments``), the list of
each workload kind, ``namespace_names`` (``get namespace NAME``; an apply into a namespace that does
not exist is NotFound), an immutable object's data or a Secret's type refused on change, and a
server-side apply of an object that does not exist yet authorized as ``create``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def _parse(argv: list[str]) -> tuple[dict, list[str]]:
    opts: dict = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        for flag, key in (("--context", "context"), ("--request-timeout", "timeout"), ("-n", "namespace"),
                          ("--namespace", "namespace"), ("-l", "selector"), ("-o", "output"), ("-f", "file"),
                          ("--field-manager", "manager"), ("-p", "patch"), ("--patch", "patch"), ("--type", "type")):
            if a == flag:
                opts[key] = argv[i + 1]
                i += 2
                break
            if a.startswith(flag + "=") and flag.startswith("--"):
                opts[key] = a.split("=", 1)[1]
                i += 1
                break
        else:
            if a in ("--server-side", "--force-conflicts"):
                opts[a.lstrip("-")] = True
            else:
                rest.append(a)
            i += 1
    return opts, rest


_KINDS = {"configmap": ("", "configmaps"), "secret": ("", "secrets"), "deployment": ("apps", "deployments"),
          "statefulset": ("apps", "statefulsets"), "daemonset": ("apps", "daemonsets"), "namespace": ("", "namespaces")}
WORKLOADS = ("deployment", "statefulset", "daemonset")


def _request(verb: str, rest: list[str], opts: dict, exists=lambda kind, name: True) -> tuple | None:
    """(API verb, API group, resource, name) of a command, as RBAC sees it. ``exists``: whether the
    object a server-side apply names is there (an apply that creates one needs ``create`` too)."""
    kind = rest[1] if len(rest) > 1 else ""
    name = rest[2] if len(rest) > 2 else None
    if verb == "apply":  # server-side apply is a PATCH of the named object (a create when it is new)
        doc = json.loads(opts.get("stdin") or "{}")
        kind = str(doc.get("kind", "ConfigMap")).lower()
        obj_name = doc.get("metadata", {}).get("name")
        group, resource = _KINDS.get(kind, ("", kind + "s"))
        return ("patch" if exists(kind, obj_name) else "create"), group, resource, obj_name
    if kind in _KINDS and verb in ("get", "patch"):
        group, resource = _KINDS[kind]
        api_verb = ("get" if name else "list") if verb == "get" else "patch"
        return api_verb, group, resource, name
    return None


def _allowed(rules: list[dict], verb: str, group: str, resource: str, name: str | None) -> bool:
    return any(verb in r["verbs"] and group in r["apiGroups"] and resource in r["resources"]
               and ("resourceNames" not in r or (name is not None and name in r["resourceNames"])) for r in rules)


def _merge(target: dict, patch: dict) -> None:
    """A JSON merge patch (RFC 7386)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = json.loads(json.dumps(value))


def _save(state_path: str, state: dict) -> None:
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path)


def _store(cluster: dict, kind: str, ns: str, create: bool = False) -> dict:
    """The objects of one kind in a namespace: ConfigMaps (``namespaces``), Secrets, workloads."""
    top = "namespaces" if kind == "configmap" else kind + "s"
    if create:
        return cluster.setdefault(top, {}).setdefault(ns, {})
    return cluster.get(top, {}).get(ns, {})


def _namespace_exists(cluster: dict, ns: str) -> bool:
    """``namespace_names`` when seeded (FakeKubectl.namespaces), else every namespace holding something."""
    names = cluster.get("namespace_names")
    if names is not None:
        return ns in names
    return any(ns in cluster.get(k, {}) for k in ("namespaces", "secrets", "deployments", "statefulsets", "daemonsets"))


def _progress(cluster: dict, obj: dict) -> None:
    """A read of a workload whose pod template changed: with ``rollout_after_reads`` set, the controller
    finishes the rollout after that many reads (never while it is None, as before)."""
    pending = obj.get("_pending_reads")
    if pending is None:
        return
    if pending > 0:
        obj["_pending_reads"] = pending - 1
        return
    del obj["_pending_reads"]
    replicas = obj["spec"].get("replicas", 1)
    status = obj.setdefault("status", {})
    status["observedGeneration"] = obj["metadata"].get("generation", 1)
    if "desiredNumberScheduled" in status:  # a DaemonSet
        status.update(updatedNumberScheduled=status["desiredNumberScheduled"],
                      numberAvailable=status["desiredNumberScheduled"], numberReady=status["desiredNumberScheduled"])
    else:
        status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas, availableReplicas=replicas)
        if "updateRevision" in status:  # a StatefulSet
            status["currentRevision"] = status["updateRevision"]


def _public(kind: str, obj: dict) -> dict:
    api = "v1" if kind in ("configmap", "secret") else "apps/v1"
    return {"apiVersion": api, "kind": {"configmap": "ConfigMap", "secret": "Secret", "deployment": "Deployment",
                                        "statefulset": "StatefulSet", "daemonset": "DaemonSet"}[kind],
            **{k: v for k, v in obj.items() if not k.startswith("_")}}


def _restore_commands(cluster: dict, ns: str, verb: str, rest: list[str], opts: dict, stdin, state_path: str,
                      state: dict) -> int | None:
    """What the config restore adds: a namespace's existence, the Secret list, workload lists, and the
    get and merge patch of any workload (rollout progress as ``_progress`` says). None: not one of these."""
    kind = rest[1] if len(rest) > 1 else ""
    if verb == "get" and kind == "namespace" and len(rest) == 3:
        if not _namespace_exists(cluster, rest[2]):
            return _fail(f'Error from server (NotFound): namespaces "{rest[2]}" not found')
        print(f"namespace/{rest[2]}")
        return 0
    if verb == "get" and kind == "secret" and len(rest) == 2 and opts.get("output") == "json":
        items = [{"apiVersion": "v1", "kind": "Secret", "type": o.get("type", "Opaque"),
                  "metadata": {"name": name, "namespace": ns, "labels": o["labels"], "annotations": o["annotations"]},
                  "data": o["data"], **({"immutable": True} if o.get("immutable") else {})}
                 for name, o in sorted(_store(cluster, "secret", ns).items())]
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        return 0
    if kind not in WORKLOADS:
        return None
    objects = cluster.setdefault(kind + "s", {}).get(ns, {})
    if verb == "get" and len(rest) == 2 and opts.get("output") == "json":
        for obj in objects.values():
            _progress(cluster, obj)
        _save(state_path, state)
        print(json.dumps({"apiVersion": "v1", "kind": "List",
                          "items": [_public(kind, o) for _, o in sorted(objects.items())]}))
        return 0
    if len(rest) != 3:
        return None
    name = rest[2]
    obj = objects.get(name)
    if obj is None:
        return _fail(f'Error from server (NotFound): {kind}s.apps "{name}" not found')
    if verb == "get" and opts.get("output") == "json":
        _progress(cluster, obj)
        _save(state_path, state)
        print(json.dumps(_public(kind, obj)))
        return 0
    if verb == "patch" and opts.get("type") == "merge" and opts.get("patch"):
        if not opts.get("manager"):
            return _fail("error: --field-manager is required by this stand-in")
        before = json.dumps(obj, sort_keys=True)
        template = json.dumps(obj["spec"].get("template"), sort_keys=True)
        _merge(obj, json.loads(opts["patch"]))
        if json.dumps(obj, sort_keys=True) == before:
            print(f"{kind}.apps/{name} patched (no change)")
            return 0
        if json.dumps(obj["spec"].get("template"), sort_keys=True) != template:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            if "updateRevision" in obj.get("status", {}):  # a StatefulSet: a new revision to roll out
                obj["status"]["updateRevision"] = f"{name}-{obj['metadata']['generation']}"
            if cluster.get("rollout_after_reads") is not None:
                obj["_pending_reads"] = cluster["rollout_after_reads"]
        fields = obj["metadata"].setdefault("managedFields", [])
        if not any(f["manager"] == opts["manager"] for f in fields):
            fields.append({"manager": opts["manager"], "operation": "Update"})
        _save(state_path, state)
        print(f"{kind}.apps/{name} patched")
        return 0
    return None


def main(argv: list[str]) -> int:
    state_path, log_path = os.environ["FAKE_KUBECTL_STATE"], os.environ["FAKE_KUBECTL_LOG"]
    stdin = sys.stdin.read() if "-f" in argv else None
    with open(log_path, "a") as log:
        log.write(json.dumps({"argv": argv, "stdin": stdin}) + "\n")
    opts, rest = _parse(argv)
    with open(state_path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(state_path) as f:
            state = json.load(f)
        context = opts.get("context")
        cluster = state["contexts"].get(context)
        if cluster is None:
            return _fail(f'error: context "{context}" does not exist')
        fault = cluster.get("fault")
        if fault == "hang":
            time.sleep(60)
        if fault == "unreachable":
            return _fail("E0101 00:00:05.000000 memcache.go:265] couldn't get current server API group list: "
                         "Get \"https://ABC.gr7.eks.amazonaws.com/api\": Authorization: Bearer "
                         "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8 dial tcp 10.0.0.1:443: i/o timeout\n"
                         "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout")
        ns = opts.get("namespace", "default")
        verb = rest[0] if rest else ""
        request = _request(verb, rest, {**opts, "stdin": stdin}, lambda kind, name: name in _store(cluster, kind, ns))
        if fault == "forbidden":
            return _fail(f'Error from server (Forbidden): configmaps is forbidden: User "arn:aws:sts::123456789012:'
                         f'assumed-role/ops/alice" cannot {"list" if verb == "get" else "patch"} resource '
                         f'"configmaps" in API group "" in the namespace "{ns}"')
        roles = cluster.get("roles")
        scope = "" if request is not None and request[2] == "namespaces" else ns  # cluster-scoped: roles[""]
        if roles is not None and request is not None and not _allowed(roles.get(scope, []), *request):
            api_verb, group, resource, name = request
            what = f'{resource}{"." + group if group else ""}' + (f' "{name}"' if name else "")
            return _fail(f'Error from server (Forbidden): {what} is forbidden: User "arn:aws:sts::123456789012:'
                         f'assumed-role/regionpair-runbooks/run" cannot {api_verb} resource "{resource}" in API group '
                         f'"{group}" in the namespace "{ns}"')
        handled = _restore_commands(cluster, ns, verb, rest, opts, stdin, state_path, state)
        if handled is not None:
            return handled
        objects = cluster["namespaces"].setdefault(ns, {})
        if verb == "get" and rest[1:2] == ["configmap"] and opts.get("output") == "json":
            key, _, value = (opts.get("selector") or "=").partition("=")
            items = [{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name, "namespace": ns, "labels": o["labels"],
                                   "annotations": o["annotations"], "resourceVersion": "1",
                                   "managedFields": [{"manager": m, "operation": "Apply"}
                                                     for m in sorted(set(o["owners"].values()))]},
                      "data": o["data"], **({"immutable": True} if o.get("immutable") else {})}
                     for name, o in sorted(objects.items()) if not key or o["labels"].get(key) == value]
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            return 0
        if verb == "apply" and opts.get("server-side") and opts.get("file") == "-":
            manager = opts.get("manager")
            if not manager:
                return _fail("error: --field-manager is required by this stand-in")
            doc = json.loads(stdin)
            meta = doc["metadata"]
            if meta.get("namespace", ns) != ns:
                return _fail("error: the namespace from the provided object does not match the namespace sent")
            if not _namespace_exists(cluster, ns):
                return _fail(f'Error from server (NotFound): namespaces "{ns}" not found')
            kind = str(doc.get("kind", "ConfigMap")).lower()
            objects = _store(cluster, kind, ns, create=True)
            name = meta["name"]
            old = objects.get(name)
            if old is not None and old.get("immutable") and old["data"] != {**old["data"], **(doc.get("data") or {})}:
                return _fail(f'The {doc.get("kind")} "{name}" is invalid: data: Forbidden: field is immutable when '
                             "`immutable` is set")
            if kind == "secret" and old is not None and doc.get("type", old.get("type")) != old.get("type"):
                return _fail(f'The Secret "{name}" is invalid: type: Invalid value: "{doc.get("type")}": field is '
                             "immutable")
            obj = objects.setdefault(name, {"labels": {}, "annotations": {}, "data": {}, "owners": {}})
            if kind == "secret":
                obj.setdefault("type", doc.get("type", "Opaque"))
            fields = {f"data.{k}": v for k, v in (doc.get("data") or {}).items()}
            fields.update({f"annotations.{k}": v for k, v in (meta.get("annotations") or {}).items()})
            fields.update({f"labels.{k}": v for k, v in (meta.get("labels") or {}).items()})

            def current(field: str):
                kind, _, k = field.partition(".")
                return obj[kind].get(k)

            conflicts = [f for f, v in fields.items()
                         if obj["owners"].get(f, manager) != manager and current(f) != v]
            if conflicts and not opts.get("force-conflicts"):
                return _fail(f"error: Apply failed with {len(conflicts)} conflict(s): " + "; ".join(
                    f'conflict with "{obj["owners"][f]}": .{f}' for f in conflicts))
            for f, v in fields.items():
                kind, _, k = f.partition(".")
                obj[kind][k] = v
                obj["owners"][f] = manager
            for f, m in list(obj["owners"].items()):  # what this manager owned and no longer applies goes
                if m == manager and f not in fields:
                    kind, _, k = f.partition(".")
                    obj[kind].pop(k, None)
                    del obj["owners"][f]
            _save(state_path, state)
            print(f"{kind}/{name} serverside-applied")
            return 0
    return _fail(f"error: this stand-in does not do: kubectl {' '.join(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
