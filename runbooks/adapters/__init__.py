"""Adapters of the runbook ports, chosen by the outputs document's ``target``.

Both adapters are imported lazily: loading the runbooks never imports boto3 (AWS) nor starts
anything local (sandbox) until a runbook actually needs its ports."""

from __future__ import annotations

from contract.outputs import Outputs
from runbooks.core.clock import Clock
from runbooks.core.errors import BadInput
from runbooks.core.ports import Ports


def ports_for(outputs: Outputs, clock: Clock) -> Ports:
    """The ports for the region pair the outputs describe: ``aws`` → boto3 + psycopg,
    ``sandbox`` → the local region pair."""
    if outputs.target == "aws":
        from runbooks.adapters.aws import aws_ports
        return aws_ports(outputs, clock)
    if outputs.target == "sandbox":
        from runbooks.adapters.sandbox_wiring import sandbox_ports
        return sandbox_ports(outputs, clock)
    raise BadInput(f"stack outputs: target {outputs.target!r} has no adapter; use 'aws' or 'sandbox'")


def backup_ports_for(outputs: Outputs, clock: Clock):
    """The backup runbooks' ports (runbooks.backups.ports.BackupPorts) for the outputs' target."""
    if outputs.target == "aws":
        from runbooks.adapters.aws import aws_backup_ports
        return aws_backup_ports(outputs, clock)
    if outputs.target == "sandbox":
        from runbooks.adapters.sandbox_wiring import sandbox_backup_ports
        return sandbox_backup_ports(outputs, clock)
    raise BadInput(f"stack outputs: target {outputs.target!r} has no adapter; use 'aws' or 'sandbox'")
