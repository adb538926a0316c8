"""Reading the outputs document from a file or from the Pulumi CLI (``pulumi stack output --json``):
the only code of the project that calls the Pulumi CLI for the contract.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from contract.outputs.parse import from_dict, merge
from contract.outputs.schema import Outputs, OutputsError


def load_file(path: str | Path) -> Outputs:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise OutputsError("(file)", f"{p} does not exist; pass the file written by `pulumi stack output --json` "
                           "or by `python -m sandbox up` (DIR/outputs.json)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputsError("(file)", f"{p} is not JSON ({exc.msg} at line {exc.lineno})") from None
    return from_dict(doc)


Runner = Callable[..., subprocess.CompletedProcess]


def load_stack(stack: str, cwd: str | Path | None = None, runner: Runner = subprocess.run) -> Outputs:
    """Read one stack's outputs with the Pulumi CLI (`pulumi stack output --json`)."""
    if runner is subprocess.run and shutil.which("pulumi") is None:
        raise OutputsError("(cli)", "the pulumi CLI is not on PATH; install it, or export the outputs to a "
                           "file elsewhere and pass --outputs FILE")
    proc = runner(["pulumi", "stack", "output", "--json", "--stack", stack], cwd=cwd,
                  capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr or "").strip().splitlines()[:1]
        raise OutputsError("(cli)", f"`pulumi stack output --stack {stack}` failed: {first[0] if first else 'no message'}")
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise OutputsError("(cli)", f"stack {stack} printed no JSON ({exc.msg})") from None
    return from_dict(doc)


def load_pair(files: list[str | Path] | None = None, stacks: list[str] | None = None,
              cwd: str | Path | None = None, runner: Runner = subprocess.run) -> Outputs:
    """Load and merge the documents of a region pair, from files or from the CLI, and require
    that they describe both regions."""
    docs = [load_file(f) for f in files or []] + [load_stack(s, cwd, runner) for s in stacks or []]
    if not docs:
        raise OutputsError("(source)", "no outputs given; pass --outputs FILE (repeatable) or --stack NAME")
    return merge(*docs).require_pair()

