"""What every runbook command shares on the command line: the outputs it loads (bad ones are bad
input) and the console it writes to (``runbooks.plans.cli`` and ``runbooks.backups.cli`` build on it)."""

from __future__ import annotations

import threading
from typing import TextIO

from contract import outputs as contract
from contract.outputs import Outputs, OutputsError
from runbooks.core.clock import Clock, iso
from runbooks.core.errors import BadInput


def load_outputs(args) -> Outputs:
    try:
        return contract.load_pair(files=args.outputs, stacks=args.stack, cwd=args.cwd)
    except OutputsError as exc:
        raise BadInput(str(exc)) from None


class Console:
    """The operator's terminal. Lanes run in threads and all report progress here: one lock and
    one write per line, so no line ever runs into another mid-line."""

    def __init__(self, out: TextIO, json_mode: bool, clock: Clock):
        self.out = out
        self.json_mode = json_mode
        self.clock = clock
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if not self.json_mode:
            with self._lock:
                self.out.write(f"{text}\n")
                self.out.flush()

    def progress(self, text: str) -> None:
        self.line(f"[{iso(self.clock.time())[11:23]}] {text}")
