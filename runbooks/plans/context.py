"""What every step of a plan is given: the outputs, the ports, the direction (source → target), the
databases, the timeouts, and where measurements and journal notes go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from contract.outputs import Outputs
from runbooks.core.ports import Ports


@dataclass
class Timeouts:
    promote: float = 300.0
    """RDS promotion takes minutes; the sandbox's well under a second."""
    catch_up: float = 600.0
    dns: float = 120.0
    rebuild: float = 3600.0
    caught_up_lag_seconds: float = 1.0
    """A replica this close may be switched over to (the zero-loss wait does the rest)."""
    caught_up_flow_seconds: float = 5.0
    """A Kafka or S3 flow this close may be paused and drained. Looser than a replica's: S3
    replication's backlog is seconds old even when healthy (RTC promises 15 minutes), and what
    matters is that the pause drains seconds, not a whole re-seed."""
    flow_plateau_seconds: float = 10.0
    """A flow whose lag has not shrunk by a tenth for this long, within the RPO, is as caught up
    as it gets: clients are paused and the drain copies the rest (a longer pause, never a loss)."""
    checkpoint_wait: float = 10.0
    """How long the ``kafka-checkpoints`` gate judges again a group MirrorMaker 2 has not (recently)
    checkpointed, while the source answers: MirrorMaker 2 checkpoints every second, finds a new group
    within two and needs a few more to start its checkpoint task on a loaded machine."""
    seed_objects: float = 6 * 3600.0
    """A failback's seeding job (AWS: S3 Batch Replication of the DR bucket) may take this long: its
    manifest alone is generated in minutes to hours. At the deadline the step fails, the job goes
    on, and a rerun waits for the same job."""


@dataclass
class Context:
    outputs: Outputs
    ports: Ports
    source: str
    """The region writes move away from."""
    target: str
    """The region writes move to."""
    databases: list[str]
    timeouts: Timeouts = field(default_factory=Timeouts)
    measurements: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    """The journal's run id, set before the plan runs (steps that annotate what they write use it)."""
    confirmations: frozenset[str] = frozenset()
    """What the operator confirmed on the command line for what no adapter can check (e.g.
    ``objects-seeded``: they copied the DR bucket's versions home another way)."""
    journal: Callable[..., Any] | None = None
    """Appends an event to the run's journal (set by the CLI with the run id); see ``note``."""

    def note(self, event: str, **fields: Any) -> None:
        """Record in the journal what a rerun or a person must be able to find (e.g. the id of an
        S3 Batch Replication job a step started), before the step ends."""
        if self.journal is not None:
            self.journal(event, **fields)

    @property
    def rpo_seconds(self) -> int:
        """The database's RPO objective (the service's unless the outputs declare the component's)."""
        return self.outputs.objectives.of("database").rpo_seconds

    @property
    def rto_seconds(self) -> int:
        """The database's RTO objective."""
        return self.outputs.objectives.of("database").rto_seconds
