"""The packages' import picture (issue 14): arrows point one way and no modules import each other
round in a cycle.

``contract/`` is at the bottom and imports no package of this project; ``components/`` stands on the
contract, ``stacks/`` on components and contract; the runbooks, the sandbox and the drills stand on the
contract; the runbooks touch the sandbox only through their sandbox adapters, and the drills only
through the sandbox's front. Each exception is listed below with its reason. The check reads the
source with ``ast`` (imports inside functions count too) and is shown refusing a small tree with an
upward arrow, a private import across packages and a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.imports import cycles

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contract", "components", "stacks", "policy", "runbooks", "sandbox", "drills")

ALLOWED = {
    "contract": set(),
    "components": {"contract"},
    "stacks": {"components", "contract"},
    "policy": set(),
    "runbooks": {"contract"},
    "sandbox": {"contract"},
    "drills": {"contract", "runbooks"},
}
"""Which packages a package may import (besides itself)."""

EXCEPTIONS = {
    ("runbooks.adapters.sandbox*", "sandbox"): "the sandbox adapters are how the runbooks reach the sandbox",
    ("runbooks.drill", "drills"): "the documented command `python -m runbooks.drill` starts the drills",
    ("drills", "sandbox"): "a sandbox drill brings up and breaks its own region pair, through the front",
    ("sandbox.__main__", "runbooks.core"): "the sandbox's command line shares the runbooks' help formatter and audit sink",
    ("sandbox.workers", "runbooks.adapters.kafka_client"): "the workers read committed offsets and topics with the "
                                                          "runbooks' one librdkafka client (librdkafka #5040's "
                                                          "work-around lives there once)",
}
"""(importer prefix, imported prefix) → why that arrow is allowed; a prefix ending in ``*`` matches any
module whose name starts with it."""

FRONT = {"sandbox", "sandbox.control", "sandbox.errors"}
"""What the drills may import of the sandbox."""


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _within(name: str, prefix: str) -> bool:
    if prefix.endswith("*"):
        return name.startswith(prefix[:-1])
    return name == prefix or name.startswith(prefix + ".")


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, str]]]:
    """module → {(imported module, first imported name)} for the imports of project modules."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    out: dict[str, set[tuple[str, str]]] = {}
    for module, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [(a.name, a.name.rpartition(".")[2]) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from its package (``from . import rules`` in policy/)
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets = [(f"{base}.{a.name}", a.name) for a in node.names]
            else:
                continue
            for full, name in targets:
                target = resolve(full)
                if target and target != module:
                    found.add((target, name))
        out[module] = found
    return out


def problems(root: Path, packages=PACKAGES, allowed=ALLOWED, exceptions=EXCEPTIONS, front=FRONT) -> list[str]:
    mods = modules(root, packages)
    graph = imports(mods)
    found = []
    for module, targets in sorted(graph.items()):
        top = module.split(".")[0]
        for target, name in sorted(targets):
            other = target.split(".")[0]
            if other != top:
                if name.startswith("_") or any(p.startswith("_") and p != "__main__" for p in target.split(".")):
                    shown = target if target.endswith("." + name) else f"{target}.{name}"
                    found.append(f"{module} imports a private name of another package: {shown}")
                if other in allowed.get(top, set()):
                    continue
                if any(_within(module, a) and _within(target, b) for a, b in exceptions):
                    if top == "drills" and other == "sandbox" and target not in front:
                        found.append(f"{module} imports {target}: the drills use the sandbox's front only "
                                     f"({', '.join(sorted(front))})")
                    continue
                found.append(f"{module} imports {target}: {top} may import only "
                             f"{', '.join(sorted(allowed.get(top, set()))) or 'none of this project'}")
    edges = {m: {t for t, _ in ts} for m, ts in graph.items()}
    found += ["import cycle: " + " -> ".join(members) for members in cycles(edges)]
    return found


def test_the_projects_imports_point_one_way_without_cycles():
    assert problems(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_an_upward_arrow_is_refused(tmp_path):
    root = _tree(tmp_path, {"contract/__init__.py": "", "contract/outputs.py": "import stacks.config\n",
                            "stacks/__init__.py": "", "stacks/config.py": "from contract import outputs\n"})
    found = problems(root, ("contract", "stacks"))
    assert any("contract.outputs imports stacks.config" in p for p in found), found
    assert any("import cycle: contract.outputs -> stacks.config" in p for p in found), found


def test_a_private_import_across_packages_and_the_drills_past_the_front_are_refused(tmp_path):
    root = _tree(tmp_path, {"sandbox/__init__.py": "", "sandbox/_kafka.py": "", "sandbox/control.py": "",
                            "drills/__init__.py": "",
                            "drills/run.py": "from sandbox import _kafka\nfrom sandbox.control import Sandbox\n"})
    found = problems(root, ("sandbox", "drills"))
    assert any("private name of another package: sandbox._kafka" in p for p in found), found
    assert any("drills.run imports sandbox._kafka: the drills use the sandbox's front only" in p for p in found)
    assert not any(p.startswith("drills.run imports sandbox.control") for p in found), found


def test_a_function_level_import_counts(tmp_path):
    root = _tree(tmp_path, {"components/__init__.py": "", "stacks/__init__.py": "", "stacks/config.py": "",
                            "components/db.py": "def f():\n    from stacks import config\n"})
    assert any("components.db imports stacks.config" in p for p in problems(root, ("components", "stacks")))
