"""The AWS ports a runbook gets: ``aws_ports`` for the DR runbooks and ``aws_backup_ports`` for the
backup runbooks, each service module's adapter built on one shared ``Clients``. Nothing is
contacted until a port is used."""

from __future__ import annotations

from typing import Any

from contract.outputs import Outputs
from runbooks.adapters.aws.clients import AwsSettings, Clients
from runbooks.adapters.aws.cloudwatch import CloudWatchMetrics
from runbooks.adapters.aws.health import AwsHealth
from runbooks.adapters.aws.msk import MskStreaming
from runbooks.adapters.aws.msk_connect import MirrorMaker2Streaming
from runbooks.adapters.aws.rds import RdsControl
from runbooks.adapters.aws.rds_backups import RdsBackups
from runbooks.adapters.aws.route53 import Route53Dns
from runbooks.adapters.aws.s3_audit import S3AuditSink
from runbooks.adapters.aws.s3_lock import S3Lock
from runbooks.adapters.aws.s3_replication import S3Objects
from runbooks.adapters.aws.s3_versions import S3Versions
from runbooks.adapters.aws.sns import SnsNotifier
from runbooks.adapters.aws.sql import Connect, PsycopgSql, psycopg_connect
from runbooks.core.clock import Clock
from runbooks.core.ports import Ports


def aws_ports(outputs: Outputs, clock: Clock, session: Any = None, *, clients: Clients | None = None,
              connect: Connect | None = None, settings: AwsSettings | None = None) -> Ports:
    """The runbook ports for a region pair in AWS. Nothing is contacted until a port is used.
    Streaming (MSK, msk.py; MirrorMaker 2 on MSK Connect, msk_connect.py) when every region
    declares streaming; objects (S3, s3_replication.py) when every region's storage names a writer
    parameter; the clusters' endpoints (kubectl, runbooks/adapters/kubectl.py) when any region
    declares a cluster."""
    # imported when ports are built: importing the package loads neither runbooks.backups.slots (the engine) nor kubectl
    from runbooks.adapters.aws.slots import RdsSlots, S3SlotStore
    from runbooks.adapters.kubectl import KubectlEndpoints

    clients = clients or Clients(session, settings)
    clients.clock = clients.clock or clock
    sql = PsycopgSql(outputs, clients, clock, connect or psycopg_connect)
    regions = list(outputs.regions.values())
    kafka = all(r.streaming is not None for r in regions)
    mm2 = kafka and any(r.streaming.mirrormaker2 is not None for r in regions)  # MirrorMaker 2 on MSK Connect
    objects = all(r.storage is not None and r.storage.writer_parameter for r in regions)
    return Ports(db=RdsControl(outputs, clients, clock, sql), sql=sql, dns=Route53Dns(outputs, clients),
                 health=AwsHealth(outputs, clients), lock=S3Lock(outputs, clients),
                 notifier=SnsNotifier(outputs, clients), clock=clock,
                 extras={"adapter": "aws"},
                 streaming=(MirrorMaker2Streaming if mm2 else MskStreaming)(outputs, clients, clock) if kafka else None,
                 objects=S3Objects(outputs, clients, clock) if objects else None,
                 endpoints=KubectlEndpoints(outputs) if any(r.kubernetes for r in regions) else None,
                 audit_sink=S3AuditSink(outputs, clients),
                 metrics=CloudWatchMetrics(outputs, clients, namespace=CloudWatchMetrics.DR_NAMESPACE),
                 backups=RdsBackups(outputs, clients, clock, sql),
                 slots=RdsSlots(outputs, clients, sql), slot_store=S3SlotStore(outputs, clients))


def aws_backup_ports(outputs: Outputs, clock: Clock, session: Any = None, *, clients: Clients | None = None,
                     connect: Connect | None = None, settings: AwsSettings | None = None):
    """The backup runbooks' ports in AWS. Nothing is contacted until a port is used."""
    from runbooks.adapters.aws.config_exports import S3ConfigExports
    from runbooks.adapters.aws.kafka_backup import aws_kafka_backups
    from runbooks.adapters.aws.slots import RdsSlots, S3SlotStore
    from runbooks.backups.ports import BackupPorts
    clients = clients or Clients(session, settings)
    clients.clock = clients.clock or clock
    sql = PsycopgSql(outputs, clients, clock, connect or psycopg_connect)
    return BackupPorts(backups=RdsBackups(outputs, clients, clock, sql), objects=S3Versions(outputs, clients),
                       metrics=CloudWatchMetrics(outputs, clients), audit_sink=S3AuditSink(outputs, clients),
                       sql=sql, clock=clock, extras={"adapter": "aws", "target": "aws"},
                       notifier=SnsNotifier(outputs, clients),
                       slots=RdsSlots(outputs, clients, sql), slot_store=S3SlotStore(outputs, clients),
                       kafka_backups=aws_kafka_backups(outputs, clients),
                       config_exports=S3ConfigExports(outputs, clients))
