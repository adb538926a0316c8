"""AWS facts the components are declared against (S3 bucket names and lifecycle rules, MSK Replicator,
MSK Connect). Pure data, no Pulumi import: the stack config checks the same facts before any resource
exists (``stacks/config.py``, ``stacks/connectconfig.py``), and the components check their arguments."""

from __future__ import annotations

import re

# --- S3 -------------------------------------------------------------------------------------

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
"""S3 User Guide, "General purpose bucket naming rules": 3-63 lowercase letters, digits, dots and hyphens,
starting and ending with a letter or digit (and no two adjacent dots: checked beside it)."""
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
"""S3 User Guide, "General purpose bucket naming rules": prefixes and suffixes S3 reserves (access
point and Object Lambda aliases, Multi-Region Access Points, directory and table buckets)."""
MAX_LIFECYCLE_RULES = 1000
"""Amazon S3 API Reference, "LifecycleConfiguration": "You can add as many as 1000 rules"."""


def bucket_name_reserved(name: str) -> str | None:
    """The reserved prefix or suffix a bucket name uses (None: none)."""
    return next((p for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)), None) or next(
        (x for x in RESERVED_BUCKET_SUFFIXES if name.endswith(x)), None)


# --- MSK Replicator ---------------------------------------------------------------------------

MSK_REPLICATOR_MIN_KAFKA = (2, 8, 1)
"""MSK Developer Guide, "Supported cluster types and versions for MSK Replicator": the Replicator needs
2.7.0+, multi-VPC private connectivity 2.7.1+ ("Requirements and limitations for multi-VPC private
connectivity"), and identical topic name replication (the stacks' IDENTICAL) 2.8.1+."""
MSK_REPLICATOR_UNSUPPORTED_BROKERS = ("kafka.t3.small",)
"""Same two pages: MSK Replicator and multi-VPC private connectivity do not support kafka.t3.small."""


def kafka_version_tuple(version: str) -> tuple[int, ...]:
    """``3.6.0`` / ``3.6.x`` / ``3.6.0.1`` / ``2.8.2.tiered`` → (3, 6, 0) …; unparseable parts count as 0."""
    parts = []
    for part in version.split(".")[:3]:
        parts.append(int(part) if part.isdigit() else 0)
    return tuple(parts)


# --- MSK Connect ------------------------------------------------------------------------------

KAFKACONNECT_VERSIONS = ("2.7.1", "3.7.x")
"""MSK Developer Guide, "Understand MSK Connect": MSK Connect runs Kafka Connect 2.7.1 or 3.7.x."""
MCU_COUNTS = (1, 2, 4, 8)
"""MSK Connect API Reference, AutoScaling / ProvisionedCapacity mcuCount: "The valid values are 1,2,4,8"."""
PLUGIN_TYPES = ("zip", "jar")
"""MSK Developer Guide, "Create custom plugins": a custom plugin is a JAR file, or a ZIP file of JARs, in S3."""
