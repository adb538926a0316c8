"""The sandbox's ports, wired: the runbook ports (``sandbox_ports``) and the backup runbooks' ports
(``sandbox_backup_ports``) over one opened sandbox, from the adapters in ``sandbox.py``,
``sandbox_backups.py``, ``sandbox_slots.py`` and ``sandbox_cache.py`` (so none of those imports another)."""

from __future__ import annotations

from pathlib import Path

from contract.outputs import Outputs
from runbooks.adapters.sandbox import (
    Connections,
    SandboxDatabases,
    SandboxDns,
    SandboxEndpoints,
    SandboxHealth,
    SandboxObjects,
    SandboxSql,
    SandboxStreaming,
)
from runbooks.adapters.sandbox_backups import SandboxBackups, sandbox_kafka_backups
from runbooks.backups.ports import BackupPorts
from runbooks.core.clock import Clock
from runbooks.core.errors import BadInput
from runbooks.core.lock import FileLock
from runbooks.core.metrics import NoMetrics
from runbooks.core.notify import SINK_NAME, JsonlNotifier
from runbooks.core.ports import Ports


def sandbox_ports(outputs: Outputs, clock: Clock) -> Ports:
    from runbooks.adapters.sandbox_slots import FileSlotStore, SandboxSlots
    from runbooks.core.audit import SINK_NAME as AUDIT_SINK_NAME, JsonlAuditSink
    from sandbox.control import Sandbox
    from sandbox.errors import SandboxError

    try:
        sb = Sandbox.open(outputs.sandbox_dir)
    except SandboxError as exc:
        raise BadInput(str(exc)) from None
    state_dir = Path(outputs.sandbox_dir) / "runbooks"
    conns = Connections(sb)
    return Ports(db=SandboxDatabases(sb, conns), sql=SandboxSql(sb, conns), dns=SandboxDns(sb, conns, outputs),
                 health=SandboxHealth(sb, conns),
                 lock=FileLock(state_dir / "lock.json"),
                 notifier=JsonlNotifier(Path(outputs.sandbox_dir) / SINK_NAME, clock), clock=clock,
                 extras={"state_dir": str(state_dir), "sandbox": sb},
                 streaming=SandboxStreaming(sb) if "kafka" in sb.systems else None,
                 objects=SandboxObjects(sb, outputs) if "s3" in sb.systems else None,
                 endpoints=SandboxEndpoints(sb, outputs) if any(r.kubernetes for r in outputs.regions.values())
                 else None,
                 audit_sink=JsonlAuditSink(Path(outputs.sandbox_dir) / AUDIT_SINK_NAME),
                 backups=SandboxBackups(sb),
                 slots=SandboxSlots(sb, conns), slot_store=FileSlotStore(sb.dir / "slots", sb.regions))


def sandbox_backup_ports(outputs: Outputs, clock: Clock) -> BackupPorts:
    from runbooks.adapters.aws import Clients, S3Versions, endpoint_clients
    from runbooks.core.audit import SINK_NAME as AUDIT_SINK_NAME, JsonlAuditSink
    from sandbox.control import Sandbox
    from sandbox.errors import SandboxError

    try:
        sb = Sandbox.open(outputs.sandbox_dir)
    except SandboxError as exc:
        raise BadInput(str(exc)) from None
    endpoints = {r.name: r.storage.endpoint_url for r in outputs.regions.values() if r.storage and r.storage.endpoint_url}
    clients: Clients = endpoint_clients(endpoints)
    from runbooks.adapters.sandbox_cache import SandboxCaches
    from runbooks.adapters.sandbox_slots import FileSlotStore, SandboxSlots
    conns = Connections(sb)
    return BackupPorts(backups=SandboxBackups(sb), objects=S3Versions(outputs, clients), metrics=NoMetrics(),
                       audit_sink=JsonlAuditSink(Path(outputs.sandbox_dir) / AUDIT_SINK_NAME), sql=SandboxSql(sb, conns), clock=clock,
                       slots=SandboxSlots(sb, conns), slot_store=FileSlotStore(sb.dir / "slots", sb.regions),
                       caches=SandboxCaches(sb), kafka_backups=sandbox_kafka_backups(sb),
                       extras={"state_dir": str(Path(outputs.sandbox_dir) / "runbooks"), "sandbox": sb,
                               "target": "sandbox"},
                       notifier=JsonlNotifier(Path(outputs.sandbox_dir) / SINK_NAME, clock))
