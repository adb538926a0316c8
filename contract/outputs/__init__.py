"""The outputs contract: the one document both stacks export and the runbooks, the sandbox and the
tests read. ``schema`` holds its typed form, ``parse`` validates and merges it, ``loaders`` reads it
from a file or the Pulumi CLI; their public names are re-exported here (``outputs.load_pair`` …).
"""

from contract.outputs.loaders import Runner, load_file, load_pair, load_stack
from contract.outputs.parse import from_dict, merge
from contract.outputs.schema import (
    COMPONENTS,
    DATABASE_ROLES,
    DNS_STRATEGIES,
    FAILOVER_TYPES,
    KEY_PREFIX,
    LOGICAL_NAME,
    MIRRORMAKER2_CONNECTORS,
    REGION_ROLES,
    SCHEMA_VERSION,
    STOP_PATTERN,
    TARGETS,
    BackupPolicy,
    BatchReplication,
    ComplianceArchive,
    ComponentBudget,
    ComponentObjectives,
    Database,
    Dns,
    Kubernetes,
    MirrorMaker2Flow,
    Objectives,
    Outputs,
    OutputsError,
    Region,
    RegionDns,
    RtoBudget,
    Storage,
    Streaming,
    secret_replica_arn,
)

__all__ = [
    "COMPONENTS", "DATABASE_ROLES", "DNS_STRATEGIES", "FAILOVER_TYPES", "KEY_PREFIX", "LOGICAL_NAME",
    "MIRRORMAKER2_CONNECTORS", "REGION_ROLES", "SCHEMA_VERSION", "STOP_PATTERN", "TARGETS", "BackupPolicy",
    "BatchReplication", "ComplianceArchive", "ComponentBudget", "ComponentObjectives", "Database", "Dns",
    "Kubernetes", "MirrorMaker2Flow", "Objectives", "Outputs", "OutputsError", "Region", "RegionDns", "Runner",
    "RtoBudget", "Storage", "Streaming", "from_dict", "load_file", "load_pair", "load_stack", "merge",
    "secret_replica_arn",
]
