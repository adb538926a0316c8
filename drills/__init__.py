"""Drills: a fault rehearsed on the sandbox (or on ephemeral AWS drill stacks) and measured from
what the clients saw acknowledged. `python -m runbooks.drill` is the command; ``main`` runs it.

- ``cli``: the options, their checks and the entry point;
- ``sandbox_drill``: a failover drill's scenario sequence on the sandbox, and what it observes;
- ``broker_loss``: the broker-loss scenario (one of three Kafka brokers killed, nothing fails over);
- ``measure``: counting what was acknowledged, lost and processed, and the outages clients saw;
- ``report``: a failover drill's verdict, report and summary;
- ``aws_stacks``: the same drill on ephemeral AWS drill stacks.
"""

from drills.cli import SCENARIOS, BadArgs, main, parser, validate
from drills.report import replication_modes, summary_lines
from drills.sandbox_drill import SandboxDrill

__all__ = ["SCENARIOS", "BadArgs", "SandboxDrill", "main", "parser", "replication_modes", "summary_lines", "validate"]
