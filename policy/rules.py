"""The regionpair CrossGuard policy pack: ``POLICIES``, every policy of the pack, all mandatory (a
violation fails ``pulumi preview`` and ``pulumi up``).

The pack's own DR invariants are wrapped here (their checks: ``invariants.py`` per resource,
``stack_invariants.py`` per stack, ``cdc.py``), then each area module's ``POLICIES`` follow: MSK,
RDS, Route53/CloudWatch/IAM, the Kafka topic backup, MSK Connect, S3, KMS/SNS/SSM, retention tiers.
The order of ``POLICIES`` is the order the pack has always had (tests/unit/test_policy_rules.py
pins it), which is why S3's and KMS/SNS/SSM's resource policies come before their stack
policies. What every module shares (type tokens, the value model, ``Resource``, the policy
factories) is in ``base.py``; the import picture is ``base`` <- ``iam_documents`` <- the checks and
areas <- ``rules``, without cycles.

Importing this module has no side effect. Only ``policy/__main__.py`` constructs the
``PolicyPack`` (its constructor starts a gRPC server and never returns).
"""

from __future__ import annotations

from typing import Any

from . import (
    cdc,
    dns_alarms_iam,
    invariants,
    kafka_backup,
    kms_sns_ssm,
    msk,
    mskconnect,
    rds,
    retention,
    s3,
    stack_invariants,
)
from .base import StackSettings, ignoring_settings, resource_policy, stack_policy

PACK_NAME = "regionpair-dr-invariants"

CORE_POLICIES: list[Any] = [
    resource_policy("rds-encrypted-with-customer-key",
                    "RDS storage and replicated backups are encrypted with a customer KMS key.",
                    invariants.check_rds_encryption),
    resource_policy("rds-deletion-protection",
                    "Every RDS instance has deletion protection.",
                    invariants.check_rds_deletion_protection),
    resource_policy("rds-backup-retention-floor",
                    f"Primary databases and replicated backups keep at least {invariants.MIN_BACKUP_RETENTION_DAYS} days.",
                    invariants.check_backup_retention),
    resource_policy("msk-encrypted",
                    "MSK encrypts at rest with a customer KMS key and in transit with TLS only.",
                    invariants.check_msk_encryption),
    resource_policy("msk-durable-configuration",
                    f"MSK clusters use a configuration with default.replication.factor={invariants.MIN_REPLICATION_FACTOR}, "
                    f"min.insync.replicas={invariants.MIN_INSYNC_REPLICAS}, unclean.leader.election.enable=false.",
                    invariants.check_msk_durability),
    resource_policy("s3-sse-kms",
                    "S3 encryption uses SSE-KMS with a customer key, also for replicas: S3 replicates SSE-KMS objects "
                    "only with sse_kms_encrypted_objects Enabled and a replica key (S3 User Guide, 'Replicating objects "
                    "created with server-side encryption (SSE) using AWS KMS').",
                    invariants.check_s3_encryption),
    resource_policy("s3-replication-time-control",
                    f"S3 replication has replication time control ({invariants.RTC_MINUTES} minutes) and metrics; 15 is the only "
                    "value S3 accepts for Time and EventThreshold (S3 User Guide, 'Replication configuration', "
                    "'Enable S3 Replication Time Control').",
                    lambda r: invariants.check_replication_time_control(r, StackSettings.from_pulumi_config())),
    resource_policy("s3-public-access-block-complete",
                    "S3 public access blocks set all four settings.",
                    invariants.check_public_access_block),
    resource_policy("sns-encrypted-with-customer-key",
                    "SNS topics are encrypted with a customer KMS key: AWS services such as CloudWatch can publish to "
                    "an encrypted topic only through a customer managed key's policy (SNS Developer Guide, 'Key "
                    "management', 'Enable compatibility between event sources from AWS services and encrypted "
                    "topics').",
                    invariants.check_sns_encryption),
    resource_policy("route53-primary-failover-health-check",
                    "Every PRIMARY failover record has a health check.",
                    invariants.check_primary_failover_health_check),
    resource_policy("kms-key-rotation",
                    "Customer KMS keys rotate automatically (KMS API Reference, 'EnableKeyRotation').",
                    invariants.check_kms_rotation),
    resource_policy("k8s-workload-restricted",
                    "Kubernetes workloads run unprivileged: no privilege escalation, ALL capabilities dropped, "
                    "non-root, seccomp, no host namespaces or hostPath.",
                    invariants.check_k8s_workload_restricted),
    stack_policy("s3-every-bucket-versioned",
                 "Every bucket is versioned, including both ends of every replication (S3 User Guide, 'Replicating "
                 "objects', 'Requirements for replication': both buckets must have versioning enabled).",
                 ignoring_settings(stack_invariants.check_buckets_versioned)),
    stack_policy("s3-every-bucket-kms-encrypted",
                 "Every bucket has an SSE-KMS encryption configuration with a customer key.",
                 ignoring_settings(stack_invariants.check_buckets_kms_encrypted)),
    stack_policy("s3-every-bucket-public-access-blocked",
                 "Every bucket has a public access block with all four settings.",
                 ignoring_settings(stack_invariants.check_buckets_public_access_blocked)),
    resource_policy("rds-logical-replication-static", cdc.LOGICAL_REPLICATION_DESCRIPTION,
                    cdc.check_logical_replication_parameter),
    stack_policy("dr-every-primary-replicated",
                 "In the dr stack, every prod primary database has a cross-region replica and replicated backups.",
                 stack_invariants.check_dr_databases_replicated),
]
"""The pack's own DR invariants (checks in invariants.py, stack_invariants.py and cdc.py)."""

POLICIES: list[Any] = [
    *CORE_POLICIES,
    *msk.POLICIES,
    *rds.POLICIES,
    *dns_alarms_iam.POLICIES,
    *kafka_backup.POLICIES,
    *mskconnect.POLICIES,
    *s3.RESOURCE_POLICIES,
    *kms_sns_ssm.RESOURCE_POLICIES,
    *s3.STACK_POLICIES,
    *kms_sns_ssm.STACK_POLICIES,
    *retention.POLICIES,
]
"""Every policy of the pack, all mandatory: a violation fails `pulumi preview` and `pulumi up`."""
