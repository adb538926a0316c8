"""The sandbox: a local region pair of real servers on loopback that stands in for the two stacks.

``python -m sandbox up --dir DIR`` starts it; ``sandbox.control.Sandbox`` drives it (see
docs/sandbox.md). Importing this package starts nothing and reads no environment.
"""

from sandbox.errors import SandboxError
from sandbox.layout import DEFAULT_SYSTEMS

__all__ = ["DEFAULT_SYSTEMS", "SandboxError"]
