"""The AWS adapters of the runbook ports, one module per AWS service around ``clients`` (boto3
sessions, timeouts, throttling, error mapping): ``rds`` (and its fence-rule codec), ``sql``,
``route53``, ``health``, ``sns``, ``s3_lock``, ``msk`` and ``msk_connect``, ``s3_replication``,
and the backup ports (``rds_backups``, ``s3_versions``, ``cloudwatch``, ``s3_audit``, ``slots``,
``kafka_backup``, ``config_exports``); ``wiring`` builds the ports from them.

This package re-exports what the wiring and its callers use, so ``from runbooks.adapters.aws import
aws_ports`` keeps working. Every AWS call made here is listed in docs/aws-adapters.md (it feeds the
runbook role's policy; tests/unit/test_runbook_role_covers_adapters.py reads the calls from these
modules)."""

from __future__ import annotations

from runbooks.adapters.aws.clients import (
                                           AwsCallFailed,
                                           AwsSettings,
                                           Clients,
                                           EndpointClients,
                                           endpoint_clients,
                                           error_code,
                                           fail,
)
from runbooks.adapters.aws.cloudwatch import CloudWatchMetrics
from runbooks.adapters.aws.health import AwsHealth
from runbooks.adapters.aws.msk import MskStreaming
from runbooks.adapters.aws.msk_connect import MirrorMaker2Streaming
from runbooks.adapters.aws.rds import FENCED_TAG, KEEP_PREFIX, RULES_TAG, RdsControl, flatten_rules
from runbooks.adapters.aws.rds_backups import DATABASE_TAG, RESTORED_TAG, TEMPORARY_TAG, RdsBackups
from runbooks.adapters.aws.route53 import Route53Dns
from runbooks.adapters.aws.s3_audit import S3AuditSink
from runbooks.adapters.aws.s3_lock import S3Lock
from runbooks.adapters.aws.s3_replication import S3Objects
from runbooks.adapters.aws.s3_versions import S3Versions
from runbooks.adapters.aws.sns import SnsNotifier
from runbooks.adapters.aws.sql import Connect, ConnInfo, PsycopgSql, parse_lsn, psycopg_connect
from runbooks.adapters.aws.wiring import aws_backup_ports, aws_ports

__all__ = [
    "AwsCallFailed", "AwsHealth", "AwsSettings", "Clients", "CloudWatchMetrics", "ConnInfo", "Connect",
    "DATABASE_TAG", "EndpointClients", "FENCED_TAG", "KEEP_PREFIX", "MirrorMaker2Streaming", "MskStreaming",
    "PsycopgSql", "RESTORED_TAG", "RULES_TAG", "RdsBackups", "RdsControl", "Route53Dns", "S3AuditSink", "S3Lock",
    "S3Objects", "S3Versions", "SnsNotifier", "TEMPORARY_TAG", "aws_backup_ports", "aws_ports", "endpoint_clients",
    "error_code", "fail", "flatten_rules", "parse_lsn", "psycopg_connect",
]
