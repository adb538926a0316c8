"""The policy pack on the whole mocked graph of both stacks.

The real stack programs are rendered under Pulumi mocks by ``tests/harness.py`` (from the stacks
work). Every policy of the pack is then called on every resource, and every stack policy on each
stack, the way the CLI would during ``pulumi preview --policy-pack policy`` — with the stack's
own config (``regionpair:role``/``promoted``) visible to the pack as the CLI passes it. The pack
must pass on both stacks as they are, and fail on a copy with any one invariant broken.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pulumi.runtime
import pytest

from policy import rules
from policy.graph import evaluate, policy_resources

try:
    from tests import harness
except ImportError as error:  # pragma: no cover - only without the stacks work
    pytest.skip(f"tests/harness.py (render_stack, from the stacks work) is missing or broken: {error}",
                allow_module_level=True)

STACKS = ("prod", "dr")
Graph = list[dict[str, Any]]


def with_prod_reference(graph: Graph, exports: dict[str, Any] | None = None) -> Graph:
    """The engine shows the pack the dr stack's StackReference (a read resource) with prod's exports
    as its ``outputs``; the mock harness records registrations only, so add it as the engine would."""
    ref = {"type": rules.STACK_REFERENCE, "name": "organization/regionpair/prod", "parent": None, "provider": None,
           "inputs": {"name": "organization/regionpair/prod",
                      "outputs": copy.deepcopy(exports if exports is not None else harness.stack_exports("prod"))}}
    return [*graph, ref]


def graph_of(stack: str) -> Graph:
    graph = copy.deepcopy(harness.render_stack(stack))
    return with_prod_reference(graph) if stack == "dr" else graph


def findings(stack: str, graph: Graph, config_overrides: dict[str, Any] | None = None) -> list:
    """Run the whole pack with the stack's config set the way the CLI hands it to the pack."""
    config = harness.stack_config(stack, config_overrides)
    current = pulumi.runtime.config.CONFIG.get()
    saved = dict(current)
    current.clear()
    current.update(config)
    try:
        return evaluate(policy_resources(graph, stack))
    finally:
        current.clear()
        current.update(saved)


def first(graph: Graph, type_: str, where: Callable[[dict], bool] = lambda n: True) -> dict:
    matches = [n for n in graph if n["type"] == type_ and where(n)]
    assert matches, f"the graph has no {type_} matching the case; the test needs updating"
    return matches[0]


def drop(graph: Graph, type_: str, where: Callable[[dict], bool] = lambda n: True) -> None:
    graph.remove(first(graph, type_, where))


def named(part: str) -> Callable[[dict], bool]:
    return lambda n: part in n["name"]


# ---- passing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_pack_passes_on_the_stack_as_rendered(stack):
    assert [(f.policy, f.message) for f in findings(stack, graph_of(stack))] == []


REQUIRED_TYPES = {
    "prod": [rules.RDS_INSTANCE, rules.MSK_CLUSTER, rules.MSK_CONFIGURATION, rules.S3_BUCKETS[0],
             rules.S3_VERSIONINGS[0], rules.S3_ENCRYPTIONS[0], rules.S3_PUBLIC_ACCESS_BLOCK, rules.SNS_TOPIC,
             rules.KMS_KEY, rules.ROUTE53_RECORD],
    "dr": [rules.RDS_INSTANCE, rules.RDS_BACKUP_REPLICATION, rules.MSK_CLUSTER, rules.MSK_CONFIGURATION,
           rules.MSK_REPLICATOR, rules.S3_BUCKETS[0], rules.S3_VERSIONINGS[0], rules.S3_ENCRYPTIONS[0],
           rules.S3_PUBLIC_ACCESS_BLOCK, rules.S3_REPLICATION, rules.SNS_TOPIC, rules.KMS_KEY, rules.ROUTE53_RECORD],
}


@pytest.mark.parametrize("stack", STACKS)
def test_the_pass_is_not_vacuous(stack):
    """Every resource type an invariant is about is in the rendered graph."""
    present = {n["type"] for n in harness.render_stack(stack)}
    assert [t for t in REQUIRED_TYPES[stack] if t not in present] == []


def test_promoted_dr_stack_passes_only_when_its_config_says_promoted():
    promoted = with_prod_reference(copy.deepcopy(harness.render("dr", overrides={"promoted": True}).resources))
    assert not [n for n in promoted if n["type"] == rules.RDS_INSTANCE and n["inputs"].get("replicateSourceDb")]
    assert findings("dr", promoted, {"promoted": True}) == []
    stale = findings("dr", promoted, {"promoted": False})
    # the promoted graph also declares primary → DR replication disabled, which only a promoted
    # stack may: unpromoted, nothing would reach the DR bucket
    assert {f.policy for f in stale} == {"dr-every-primary-replicated", "s3-replication-time-control"}


def test_dr_stack_declared_for_the_failback_passes():
    """With the reverse flows declared (reverse replicator, S3 Batch Replication role) the pack still passes."""
    overrides = {"promoted": True, "failback_replication": True}
    graph = with_prod_reference(copy.deepcopy(harness.render("dr", overrides=overrides).resources))
    assert [n for n in graph if "batch-replication" in n["name"]]
    assert findings("dr", graph, overrides) == []


# ---- any one invariant broken ----------------------------------------------------------------------


def _set(node: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = node["inputs"]
    for step in parents:
        target = target[int(step)] if isinstance(target, list) else target[step]
    if value is _UNSET:
        del target[last]
    else:
        target[last] = value


_UNSET = object()


def setting(type_: str, path: str, value: Any, where: Callable[[dict], bool] = lambda n: True):
    return lambda g: _set(first(g, type_, where), path, value)


def server_properties(**changes: str):
    def mutate(g: Graph) -> None:
        node = first(g, rules.MSK_CONFIGURATION)
        props = rules.parse_server_properties(node["inputs"]["serverProperties"])
        props.update({k.replace("_", "."): v for k, v in changes.items()})
        node["inputs"]["serverProperties"] = "".join(f"{k}={v}\n" for k, v in props.items())
    return mutate


def extra_prod_primary(g: Graph) -> None:
    exports = copy.deepcopy(harness.stack_exports("prod"))
    region = next(r for r in exports["regions"].values() if r["role"] == "primary")
    [db] = [d for d in region["databases"].values() if d["role"] == "primary"][:1]
    region["databases"]["ledger"] = {**db, "arn": db["arn"].replace(db["identifier"], "regionpair-prod-ledger")}
    g[:] = with_prod_reference([n for n in g if n["type"] != rules.STACK_REFERENCE], exports)


is_replica = lambda n: bool(n["inputs"].get("replicateSourceDb"))  # noqa: E731
is_primary_record = lambda n: {"type": "PRIMARY"} in n["inputs"].get("failoverRoutingPolicies", [])  # noqa: E731

def privileged_dump_job(graph: Graph) -> None:
    """The stack with its cluster (the optional kubernetes section), one container made privileged."""
    section = {"context": "prod", "app_namespaces": ["payments"],
               "backup_role_arn": "arn:aws:iam::123456789012:role/k8s-backup",
               "export_role_arn": "arn:aws:iam::123456789012:role/k8s-export"}
    with_cluster = harness.render("prod", overrides={"kubernetes": section}).resources
    graph.extend(copy.deepcopy(n) for n in with_cluster if n["type"].startswith("kubernetes:"))
    job = first(graph, "kubernetes:batch/v1:CronJob", named("pgdump"))
    job["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "privileged"] = True


# (stack, what is broken, how, the policies that must report it — and no others)
BROKEN: list[tuple[str, str, Callable[[Graph], None], set[str]]] = [
    ("prod", "rds storage unencrypted", setting(rules.RDS_INSTANCE, "storageEncrypted", False),
     {"rds-encrypted-with-customer-key"}),
    ("prod", "rds without customer key", setting(rules.RDS_INSTANCE, "kmsKeyId", _UNSET),
     {"rds-encrypted-with-customer-key"}),
    ("dr", "replica without its region's key", setting(rules.RDS_INSTANCE, "kmsKeyId", _UNSET, is_replica),
     {"rds-encrypted-with-customer-key"}),
    ("dr", "replicated backups without key", setting(rules.RDS_BACKUP_REPLICATION, "kmsKeyId", _UNSET),
     {"rds-encrypted-with-customer-key"}),
    ("prod", "primary without deletion protection", setting(rules.RDS_INSTANCE, "deletionProtection", False),
     {"rds-deletion-protection"}),
    ("dr", "replica without deletion protection",
     setting(rules.RDS_INSTANCE, "deletionProtection", False, is_replica), {"rds-deletion-protection"}),
    ("prod", "retention below the floor", setting(rules.RDS_INSTANCE, "backupRetentionPeriod", 3),
     {"rds-backup-retention-floor"}),
    ("dr", "replicated backups kept too briefly", setting(rules.RDS_BACKUP_REPLICATION, "retentionPeriod", 1),
     {"rds-backup-retention-floor"}),
    ("prod", "msk at rest with the AWS key",
     setting(rules.MSK_CLUSTER, "encryptionInfo.encryptionAtRestKmsKeyArn", _UNSET), {"msk-encrypted"}),
    ("dr", "msk allows plaintext clients",
     setting(rules.MSK_CLUSTER, "encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT"),
     {"msk-encrypted"}),
    ("prod", "msk without the durable configuration", setting(rules.MSK_CLUSTER, "configurationInfo", _UNSET),
     {"msk-durable-configuration"}),
    ("prod", "replication factor 2", server_properties(default_replication_factor="2"),
     {"msk-durable-configuration"}),
    ("dr", "min.insync.replicas 1", server_properties(min_insync_replicas="1"), {"msk-durable-configuration"}),
    ("prod", "unclean leader election", server_properties(unclean_leader_election_enable="true"),
     {"msk-durable-configuration"}),
    ("prod", "bucket encrypted with SSE-S3",
     setting(rules.S3_ENCRYPTIONS[0], "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256",
             named("data")),
     {"s3-sse-kms", "s3-every-bucket-kms-encrypted"}),
    ("dr", "bucket without encryption configuration",
     lambda g: drop(g, rules.S3_ENCRYPTIONS[0], named("backups")), {"s3-every-bucket-kms-encrypted"}),
    ("dr", "replicas without the DR key",
     setting(rules.S3_REPLICATION, "rules.0.destination.encryptionConfiguration", _UNSET), {"s3-sse-kms"}),
    ("dr", "replication skips KMS objects",
     setting(rules.S3_REPLICATION, "rules.0.sourceSelectionCriteria.sseKmsEncryptedObjects.status", "Disabled"),
     {"s3-sse-kms"}),
    ("prod", "alarm topic unencrypted", setting(rules.SNS_TOPIC, "kmsMasterKeyId", _UNSET),
     {"sns-encrypted-with-customer-key"}),
    ("prod", "bucket not versioned", lambda g: drop(g, rules.S3_VERSIONINGS[0], named("backups")),
     {"s3-every-bucket-versioned"}),
    ("dr", "replication destination not versioned", lambda g: drop(g, rules.S3_VERSIONINGS[0], named("data")),
     {"s3-every-bucket-versioned"}),
    ("dr", "replication without RTC",
     setting(rules.S3_REPLICATION, "rules.0.destination.replicationTime.status", "Disabled"),
     {"s3-replication-time-control"}),
    ("dr", "replication with a 60 minute RTC",
     setting(rules.S3_REPLICATION, "rules.0.destination.replicationTime.time.minutes", 60),
     {"s3-replication-time-control"}),
    ("dr", "replication without metrics", setting(rules.S3_REPLICATION, "rules.0.destination.metrics", _UNSET),
     {"s3-replication-time-control"}),
    ("prod", "PRIMARY record without health check",
     setting(rules.ROUTE53_RECORD, "healthCheckId", _UNSET, is_primary_record),
     {"route53-primary-failover-health-check"}),
    ("prod", "public access half blocked",
     setting(rules.S3_PUBLIC_ACCESS_BLOCK, "restrictPublicBuckets", False, named("data")),
     {"s3-public-access-block-complete", "s3-every-bucket-public-access-blocked"}),
    ("dr", "bucket without public access block", lambda g: drop(g, rules.S3_PUBLIC_ACCESS_BLOCK, named("backups")),
     {"s3-every-bucket-public-access-blocked"}),
    ("prod", "key rotation off", setting(rules.KMS_KEY, "enableKeyRotation", False), {"kms-key-rotation"}),
    ("dr", "DR key rotation off", setting(rules.KMS_KEY, "enableKeyRotation", _UNSET), {"kms-key-rotation"}),
    ("dr", "replica turned standalone without promotion",
     setting(rules.RDS_INSTANCE, "replicateSourceDb", _UNSET, is_replica), {"dr-every-primary-replicated"}),
    ("dr", "no automated-backups replication", lambda g: drop(g, rules.RDS_BACKUP_REPLICATION),
     {"dr-every-primary-replicated"}),
    ("dr", "a prod primary with no replica in dr", extra_prod_primary, {"dr-every-primary-replicated"}),
    ("prod", "a privileged container in the cluster's dump job", privileged_dump_job, {"k8s-workload-restricted"}),
    ("dr", "logical replication applied immediately", lambda g: first(g, "aws:rds/parameterGroup:ParameterGroup")[
        "inputs"]["parameters"].append({"name": "rds.logical_replication", "value": "1", "applyMethod": "immediate"}),
     {"rds-logical-replication-static"}),
]


def test_every_policy_of_the_pack_is_broken_by_some_case():
    assert {p.name for p in rules.POLICIES} - set().union(*(case[3] for case in BROKEN)) == set()


@pytest.mark.parametrize("stack, what, mutate, expected", BROKEN, ids=[f"{c[0]}: {c[1]}" for c in BROKEN])
def test_the_pack_fails_when_one_invariant_is_broken(stack, what, mutate, expected):
    graph = graph_of(stack)
    before = json.dumps(graph, sort_keys=True)
    mutate(graph)
    assert json.dumps(graph, sort_keys=True) != before, "the mutation changed nothing"
    found = findings(stack, graph)
    assert {f.policy for f in found} == expected, [(f.policy, f.message) for f in found]
    assert all("Fix:" in f.message for f in found)
