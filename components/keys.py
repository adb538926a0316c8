"""A customer-managed KMS key per region, rotated, with an alias.

The key policy keeps the account in control (the standard root statement) and lets the two
services that cannot use IAM grants on their own use it: CloudWatch (alarms publish to the
KMS-encrypted SNS topic) and CloudWatch Logs (the MSK broker log group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.common import child, partition_of, policy_json, require

TYPE = "regionpair:keys:RegionKey"
_ALIAS = re.compile(r"^[a-zA-Z0-9/_-]{1,250}$")


@dataclass(frozen=True)
class RegionKeyArgs:
    region: str
    """The region the key lives in (the provider's region). Required: it scopes the key policy."""
    account_id: pulumi.Input[str]
    """The AWS account id. Required: the key policy names the account."""
    alias: str
    """Alias without the `alias/` prefix, e.g. `regionpair-prod`. Required: runbooks and people find keys by it."""
    description: str = "regionpair data key"
    """Shown in the KMS console. Default: a generic description."""
    deletion_window_days: int = 30
    """Waiting period of a scheduled deletion. Default: 30 days, the maximum, to undo a mistake."""
    rotation_period_days: int = 365
    """Automatic rotation period. Default: yearly (rotation is always on)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


def key_policy(region: str, account_id: str) -> str:
    partition = partition_of(region)
    root = f"arn:{partition}:iam::{account_id}:root"
    return policy_json([
        {"Sid": "AccountAdministersTheKey", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudWatchAlarmsPublishToEncryptedTopics", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}},
        {"Sid": "CloudWatchLogsEncryptsBrokerLogs", "Effect": "Allow",
         "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                   f"arn:{partition}:logs:{region}:{account_id}:*"}}},
    ])


class RegionKey(pulumi.ComponentResource):
    """A rotated customer KMS key and its alias."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: RegionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        # KMS Developer Guide, "Create aliases": 1-256 characters with the alias/ prefix, letters, digits,
        # / _ - only; alias/aws/ is reserved for AWS managed keys
        require(TYPE, "alias", args.alias, bool(_ALIAS.match(args.alias)) and not args.alias.startswith(("alias/", "aws/")),
                "letters, digits, / _ - only (at most 250), without the alias/ prefix and not under aws/ (reserved "
                "for AWS managed keys)")
        require(TYPE, "deletion_window_days", args.deletion_window_days, 7 <= args.deletion_window_days <= 30,
                "KMS allows 7 to 30 days")
        require(TYPE, "rotation_period_days", args.rotation_period_days, 90 <= args.rotation_period_days <= 2560,
                "KMS allows 90 to 2560 days")
        super().__init__(TYPE, name, None, opts)

        key = aws.kms.Key(
            f"{name}-key",
            aws.kms.KeyArgs(
                description=args.description,
                enable_key_rotation=True,
                rotation_period_in_days=args.rotation_period_days,
                deletion_window_in_days=args.deletion_window_days,
                key_usage="ENCRYPT_DECRYPT",
                customer_master_key_spec="SYMMETRIC_DEFAULT",
                policy=pulumi.Output.from_input(args.account_id).apply(lambda acct: key_policy(args.region, acct)),
                tags=dict(args.tags),
            ),
            opts=child(self),
        )
        alias = aws.kms.Alias(
            f"{name}-alias",
            aws.kms.AliasArgs(name=f"alias/{args.alias}", target_key_id=key.key_id),
            opts=child(self),
        )
        self.arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"arn": self.arn, "key_id": self.key_id, "alias_name": self.alias_name})
