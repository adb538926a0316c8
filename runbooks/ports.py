"""Ports: the side effects the runbooks need, as small Protocols.

The runbooks' logic sees only these. Adapters: ``runbooks.adapters.sandbox`` (the local region
pair) and ``runbooks.adapters.aws`` (boto3 + psycopg; honours AWS_ENDPOINT_URL). Tests use
in-memory fakes. A port that cannot reach what it talks to raises ``runbooks.errors.Unreachable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runbooks.clock import Clock
from runbooks.lock import Lock


@dataclass(frozen=True)
class DbInstance:
    """What the control plane says about one database in one region."""

    region: str
    database: str
    identifier: str
    status: str
    """`available`, `backing-up`, `modifying`, `stopped`, `unreachable`, … (RDS's words)."""
    role: str
    """`primary`, `replica` or `unknown` (unreachable)."""
    fenced: bool
    """Client writes are denied (and stay denied across a restart)."""
    source_region: str | None = None
    """For a replica: the region it replicates from."""


@dataclass(frozen=True)
class ReplicationState:
    """What SQL says about one database's replication, read on that database."""

    in_recovery: bool
    """True on a replica."""
    lsn: int
    """Primary: pg_current_wal_lsn(). Replica: the last replayed position."""
    receive_lsn: int | None = None
    """Replica: last position received from its primary."""
    streaming: bool | None = None
    """Replica: its WAL receiver is connected and streaming."""
    lag_seconds: float | None = None
    """Replica: how far behind, as best known (see the adapter for how it is measured)."""
    last_contact_age_seconds: float | None = None
    """Replica: seconds since the last message from its primary."""
    replicas: tuple[dict[str, Any], ...] = ()
    """Primary: one entry per connected replica (state, sync_state, replay_lag_seconds)."""


@dataclass(frozen=True)
class Health:
    healthy: bool
    sentence: str


class DatabaseControl(Protocol):
    def describe(self, region: str, database: str) -> DbInstance: ...

    def fence(self, region: str, database: str) -> str:
        """Deny client writes on this database, persistently (also after it restarts)."""

    def unfence(self, region: str, database: str) -> str: ...

    def promote(self, region: str, database: str) -> str:
        """Start promoting a replica. The runbook waits for the result through SqlProbe."""

    def rebuild_replica(self, region: str, database: str, source_region: str) -> str:
        """Make this region's database a replica of ``source_region``'s (failback)."""


class SqlProbe(Protocol):
    def replication(self, region: str, database: str) -> ReplicationState: ...

    def canary_write(self, region: str, database: str) -> str:
        """Write and read back a canary row; raise if the database takes no write."""


class DnsControl(Protocol):
    def answer(self, service: str) -> str | None:
        """The region the service's name now sends clients to (None: no answer)."""

    def point(self, service: str, region: str) -> str:
        """Send the service's clients to ``region`` (the strategy the outputs declare)."""


class HealthProbe(Protocol):
    def region(self, region: str) -> Health: ...

    def database(self, region: str, database: str) -> Health:
        """Does the database accept connections (data plane, as clients see it)?"""


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> None: ...


class LogNotifier:
    """Notifier that only logs (the default where no topic is configured)."""

    def __init__(self, logger):
        self.logger = logger

    def notify(self, subject: str, message: str) -> None:
        self.logger.info("%s: %s", subject, message)


@dataclass
class Ports:
    db: DatabaseControl
    sql: SqlProbe
    dns: DnsControl
    health: HealthProbe
    lock: Lock
    notifier: Notifier
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)
    """Adapter-specific facts for the report (e.g. the sandbox directory)."""

    def close(self) -> None:
        for port in (self.db, self.sql, self.dns, self.health):
            close = getattr(port, "close", None)
            if close:
                close()
