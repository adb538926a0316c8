"""A stand-in for ``kubectl`` at the runbooks' boundary: the subset of its command line the
Endpoints adapter uses, with server-side apply's field ownership, and the failures a real one
shows (no such context, cluster unreachable, RBAC forbidden, a hang).

Run as a program (``tests/kubectl_fake.py`` puts a ``kubectl`` wrapper first on PATH). Every
invocation is appended to ``$FAKE_KUBECTL_LOG`` (argv and stdin); the clusters live in the JSON
file ``$FAKE_KUBECTL_STATE``::

    {"contexts": {CONTEXT: {"fault": null | "unreachable" | "forbidden" | "hang",
                            "namespaces": {NS: {NAME: {"labels": {}, "annotations": {}, "data": {},
                                                       "owners": {"data.KEY": MANAGER, ...}}}}}}}
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
                          ("--field-manager", "manager")):
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
        if fault == "forbidden":
            return _fail(f'Error from server (Forbidden): configmaps is forbidden: User "arn:aws:sts::123456789012:'
                         f'assumed-role/ops/alice" cannot {"list" if verb == "get" else "patch"} resource '
                         f'"configmaps" in API group "" in the namespace "{ns}"')
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
            tmp = state_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(state, f)
            os.replace(tmp, state_path)
            print(f"configmap/{name} serverside-applied")
            return 0
    return _fail(f"error: this stand-in does not do: kubectl {' '.join(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
