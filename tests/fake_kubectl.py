"""A stand-in for ``kubectl`` at the runbooks' boundary: the subset of its command line the
Endpoints adapter uses, with server-side apply's field ownership, a Deployment's get and merge
patch, RBAC as a Role's rules decide it, and the failures a real one shows (no such context,
cluster unreachable, RBAC forbidden, a hang, an object that does not exist).

Run as a program (``tests/kubectl_fake.py`` puts a ``kubectl`` wrapper first on PATH). Every
invocation is appended to ``$FAKE_KUBECTL_LOG`` (argv and stdin); the clusters live in the JSON
file ``$FAKE_KUBECTL_STATE``::

    {"contexts": {CONTEXT: {"fault": null | "unreachable" | "forbidden" | "hang",
                            "namespaces": {NS: {NAME: {"labels": {}, "annotations": {}, "data": {},
                                                       "owners": {"data.KEY": MANAGER, ...}}}},
                            "deployments": {NS: {NAME: <a Deployment object: metadata, spec, status>}},
                            "roles": null | {NS: [<rule: apiGroups, resources, resourceNames?, verbs>]}}}}

With ``roles`` set, a request no rule of its namespace allows is refused as the API server does
(``roles`` null: everything is allowed). A patched Deployment's controller does not run: its
``status`` stays where it was, as in the seconds after a real ``rollout restart``.
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


def _request(verb: str, rest: list[str], opts: dict) -> tuple[str, str, str, str | None] | None:
    """(API verb, API group, resource, name) of a command, as RBAC sees it."""
    kind = rest[1] if len(rest) > 1 else ""
    name = rest[2] if len(rest) > 2 else None
    if verb == "get" and kind == "configmap":
        return ("get" if name else "list"), "", "configmaps", name
    if verb == "apply":  # server-side apply is a PATCH of the named object
        return "patch", "", "configmaps", json.loads(opts.get("stdin") or "{}").get("metadata", {}).get("name")
    if kind == "deployment" and verb in ("get", "patch"):
        return verb, "apps", "deployments", name
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
        request = _request(verb, rest, {**opts, "stdin": stdin})
        if fault == "forbidden":
            return _fail(f'Error from server (Forbidden): configmaps is forbidden: User "arn:aws:sts::123456789012:'
                         f'assumed-role/ops/alice" cannot {"list" if verb == "get" else "patch"} resource '
                         f'"configmaps" in API group "" in the namespace "{ns}"')
        roles = cluster.get("roles")
        if roles is not None and request is not None and not _allowed(roles.get(ns, []), *request):
            api_verb, group, resource, name = request
            what = f'{resource}{"." + group if group else ""}' + (f' "{name}"' if name else "")
            return _fail(f'Error from server (Forbidden): {what} is forbidden: User "arn:aws:sts::123456789012:'
                         f'assumed-role/regionpair-runbooks/run" cannot {api_verb} resource "{resource}" in API group '
                         f'"{group}" in the namespace "{ns}"')
        if rest[1:2] == ["deployment"] and len(rest) == 3:
            deployments = cluster.setdefault("deployments", {}).get(ns, {})
            name = rest[2]
            obj = deployments.get(name)
            if obj is None:
                return _fail(f'Error from server (NotFound): deployments.apps "{name}" not found')
            if verb == "get" and opts.get("output") == "json":
                print(json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", **obj}))
                return 0
            if verb == "patch" and opts.get("type") == "merge" and opts.get("patch"):
                if not opts.get("manager"):
                    return _fail("error: --field-manager is required by this stand-in")
                before = json.dumps(obj, sort_keys=True)
                template = json.dumps(obj["spec"].get("template"), sort_keys=True)
                _merge(obj, json.loads(opts["patch"]))
                if json.dumps(obj, sort_keys=True) == before:
                    print(f"deployment.apps/{name} patched (no change)")
                    return 0
                if json.dumps(obj["spec"].get("template"), sort_keys=True) != template:
                    obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
                fields = obj["metadata"].setdefault("managedFields", [])
                if not any(f["manager"] == opts["manager"] for f in fields):
                    fields.append({"manager": opts["manager"], "operation": "Update"})
                _save(state_path, state)
                print(f"deployment.apps/{name} patched")
                return 0
        objects = cluster["namespaces"].setdefault(ns, {})
        if verb == "get" and rest[1:2] == ["configmap"] and opts.get("output") == "json":
            key, _, value = (opts.get("selector") or "=").partition("=")
            items = [{"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name, "namespace": ns, "labels": o["labels"],
                                   "annotations": o["annotations"], "resourceVersion": "1",
                                   "managedFields": [{"manager": m, "operation": "Apply"}
                                                     for m in sorted(set(o["owners"].values()))]},
                      "data": o["data"]}
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
            name = meta["name"]
            obj = objects.setdefault(name, {"labels": {}, "annotations": {}, "data": {}, "owners": {}})
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
            print(f"configmap/{name} serverside-applied")
            return 0
    return _fail(f"error: this stand-in does not do: kubectl {' '.join(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
