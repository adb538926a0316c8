"""The runbooks' layout (issue 14 item 2) stays what it is: the commands at the top of ``runbooks/``,
the machinery in ``core/`` (knows no plan, backup or adapter), ``backups/`` and ``plans/``, arrows
pointing down only, no import cycle, and no module over ~500 lines without a reason at its top (a
``# long module: <reason>`` line among its first ten).

The check reads the source with ``ast`` (imports inside functions count too) and is shown refusing a
small tree built with each broken form."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers.imports import cycles

ROOT = Path(__file__).resolve().parents[2]

LAYER = {"core": 0, "backups": 1, "plans": 2}
"""A subpackage may import its own layer and those below; the commands (top level) import any."""
OTHER_ROOMS = ("adapters",)
"""Not this room's (the AWS and sandbox adapters): arrows into them are judged, theirs are not."""
ADAPTERS_AT_RUN_TIME = {"plans.cli", "backups.cli"}
"""The two command lines pick the adapters (``runbooks.adapters.ports_for``/``backup_ports_for``) inside
``main`` when no ports factory is injected: the one arrow from the machinery up to the adapters."""
MAX_LINES = 500


def _module(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(module: str, tree: ast.AST, known: set[str]) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out.update(n for n in names if n in known and n != module)
    return out


def _where(module: str) -> str:
    """``core``/``backups``/``plans``/``adapters``, ``top`` for a command, ``package`` for runbooks itself."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if len(parts) == 2 and parts[1] not in LAYER and parts[1] not in OTHER_ROOMS:
        return "top"
    return parts[1]


def _is_command(text: str) -> bool:
    return 'if __name__ == "__main__":' in text


def _long_reason(text: str) -> bool:
    """A module over MAX_LINES says why at its top: a ``# long module: <reason>`` line among its first 10."""
    return any(line.startswith("# long module: ") and len(line) > 20 for line in text.splitlines()[:10])


def layout_problems(root: Path, package: str = "runbooks") -> list[str]:
    files = {_module(root, p): p for p in sorted((root / package).rglob("*.py"))}
    known = set(files)
    graph = {m: _imports(m, ast.parse(p.read_text()), known) for m, p in files.items()}
    problems = []
    for m, p in files.items():
        where = _where(m)
        if where in OTHER_ROOMS:
            continue
        text = p.read_text()
        lines = len(text.splitlines())
        if lines > MAX_LINES and not _long_reason(text):
            problems.append(f"{m} has {lines} lines and no reason at its top (split it, or say why it is one module)")
        if where == "top" and not _is_command(text):
            problems.append(f"{m} sits at the top of {package}/ but is not a command (no __main__): move it into "
                            f"a subpackage ({', '.join(LAYER)})")
        for dep in sorted(graph[m]):
            dep_where = _where(dep)
            if where in LAYER and dep_where == "top":
                problems.append(f"{m} imports the command {dep}: machinery never imports a command")
            elif where in LAYER and dep_where in LAYER and LAYER[dep_where] > LAYER[where]:
                problems.append(f"{m} ({where}) imports {dep} ({dep_where}), a layer above it")
            elif where in LAYER and dep_where in OTHER_ROOMS and m.split(".", 1)[1] not in ADAPTERS_AT_RUN_TIME:
                problems.append(f"{m} imports the adapter {dep}: only the command lines pick adapters")
            elif where == "top" and dep_where == "top":
                problems.append(f"the command {m} imports the command {dep}: share what both need from a subpackage")
    mine = {m for m in graph if _where(m) not in OTHER_ROOMS}
    problems += [f"import cycle: {' -> '.join(c + c[:1])}" for c in cycles({m: graph[m] & mine for m in mine})]
    return problems


def test_the_runbooks_layout_holds():
    assert layout_problems(ROOT) == []


def test_every_documented_command_is_a_command_at_the_top_of_runbooks():
    docs = " ".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    documented = set(re.findall(r"python -m runbooks\.([a-z][a-z_]*)\b", docs))
    commands = {p.stem for p in (ROOT / "runbooks").glob("*.py") if _is_command(p.read_text())}
    assert len(documented) >= 15 and documented <= commands, sorted(documented - commands)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


GOOD = {
    "rb/__init__.py": "",
    "rb/core/__init__.py": "",
    "rb/core/errors.py": '"""Errors."""\n',
    "rb/backups/__init__.py": "",
    "rb/backups/ports.py": '"""Ports."""\nfrom rb.core.errors import X\n',
    "rb/plans/__init__.py": "",
    "rb/plans/steps.py": '"""Steps."""\nfrom rb.backups.ports import Y\n',
    "rb/plans/cli.py": '"""CLI."""\ndef main():\n    from rb.adapters import ports_for\n',
    "rb/adapters/__init__.py": "from rb.plans.steps import Z\n",
    "rb/failover.py": '"""Failover."""\nfrom rb.plans import cli\nif __name__ == "__main__":\n    cli.main()\n',
}


def test_the_check_accepts_a_good_tree(tmp_path):
    root = _tree(tmp_path, GOOD)
    assert layout_problems(root, "rb") == []


def test_the_check_refuses_an_upward_arrow_a_cycle_a_stray_module_a_command_import_and_a_long_module(tmp_path):
    root = _tree(tmp_path, {
        **GOOD,
        # core reaching up into plans, and plans into a command
        "rb/core/errors.py": '"""Errors."""\nfrom rb.plans.steps import S\n',
        "rb/plans/steps.py": '"""Steps."""\nfrom rb.backups.ports import Y\nfrom rb.failover import F\n',
        # a cycle inside a layer (import inside a function counts)
        "rb/backups/a.py": '"""A."""\nfrom rb.backups.b import B\n',
        "rb/backups/b.py": '"""B."""\ndef f():\n    from rb.backups.a import A\n',
        # machinery at the top, a command importing a command, machinery importing an adapter
        "rb/helpers.py": '"""Helpers."""\n',
        "rb/restore.py": '"""Restore."""\nfrom rb.failover import x\nif __name__ == "__main__":\n    pass\n',
        "rb/backups/cache.py": '"""Cache."""\nfrom rb.adapters import y\n',
        # 501 lines, no reason at the top
        "rb/plans/long.py": '"""Long."""\n' + "x = 1\n" * 500,
    })
    problems = "\n".join(layout_problems(root, "rb"))
    assert "rb.core.errors (core) imports rb.plans.steps (plans), a layer above it" in problems
    assert "rb.plans.steps imports the command rb.failover" in problems
    assert "import cycle: rb.backups.a -> rb.backups.b -> rb.backups.a" in problems
    assert "rb.helpers sits at the top of rb/ but is not a command" in problems
    assert "the command rb.restore imports the command rb.failover" in problems
    assert "rb.backups.cache imports the adapter rb.adapters" in problems
    assert "rb.plans.long has 501 lines and no reason at its top" in problems
    # a reason at the top makes a long module acceptable
    (root / "rb/plans/long.py").write_text('"""Long."""\n# long module: one table the tests read whole\n'
                                           + "x = 1\n" * 500)
    assert "rb.plans.long" not in "\n".join(layout_problems(root, "rb"))
