"""The sandbox's one error type: it names the component, the log to read, and the fix."""

from __future__ import annotations

from pathlib import Path


class SandboxError(RuntimeError):
    """Something the sandbox did failed. ``component`` and ``log`` say where to look."""

    def __init__(self, message: str, component: str | None = None, log: Path | str | None = None):
        self.component = component
        self.log = Path(log) if log is not None else None
        text = message
        if component and not message.startswith(component):
            text = f"{component}: {text}"
        if self.log is not None and str(self.log) not in text:
            text = f"{text} (log: {self.log})"
        super().__init__(text)
