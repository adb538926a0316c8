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

from policy import base, kms_sns_ssm, mskconnect as MSKC, rds as RDS, rules, s3

try:
    from tests import harness
except ImportError as error:  # pragma: no cover - only without the stacks work
    pytest.skip(f"tests/harness.py (render_stack, from the stacks work) is missing or broken: {error}",
                allow_module_level=True)

STACKS = ("prod", "dr")


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
    "prod": [base.RDS_INSTANCE, base.MSK_CLUSTER, base.MSK_CONFIGURATION, base.S3_BUCKETS[0],
             base.S3_VERSIONINGS[0], base.S3_ENCRYPTIONS[0], base.S3_PUBLIC_ACCESS_BLOCK, base.SNS_TOPIC,
             base.KMS_KEY, base.ROUTE53_RECORD],
    "dr": [base.RDS_INSTANCE, base.RDS_BACKUP_REPLICATION, base.MSK_CLUSTER, base.MSK_CONFIGURATION,
           base.MSK_REPLICATOR, base.S3_BUCKETS[0], base.S3_VERSIONINGS[0], base.S3_ENCRYPTIONS[0],
           base.S3_PUBLIC_ACCESS_BLOCK, base.S3_REPLICATION, base.SNS_TOPIC, base.KMS_KEY, base.ROUTE53_RECORD],
}


@pytest.mark.parametrize("stack", STACKS)
def test_the_pass_is_not_vacuous(stack):
    """Every resource type an invariant is about is in the rendered graph."""
    present = {n["type"] for n in harness.render_stack(stack)}
    assert [t for t in REQUIRED_TYPES[stack] if t not in present] == []


def test_promoted_dr_stack_passes_only_when_its_config_says_promoted():
    promoted = with_prod_reference(copy.deepcopy(harness.render("dr", overrides={"promoted": True}).resources))
    assert not [n for n in promoted if n["type"] == base.RDS_INSTANCE and n["inputs"].get("replicateSourceDb")]
    assert findings("dr", promoted, {"promoted": True}) == []
    stale = findings("dr", promoted, {"promoted": False})
    # the promoted graph declares the S3 rule on prod's bucket unchanged (the runbook disables it and
    # Pulumi ignores the live rules, so nothing calls prod's region): only the database check differs
    assert {f.policy for f in stale} == {"dr-every-primary-replicated"}


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
        node = first(g, base.MSK_CONFIGURATION)
        props = base.parse_server_properties(node["inputs"]["serverProperties"])
        props.update({k.replace("_", "."): v for k, v in changes.items()})
        node["inputs"]["serverProperties"] = "".join(f"{k}={v}\n" for k, v in props.items())
    return mutate


def extra_prod_primary(g: Graph) -> None:
    exports = copy.deepcopy(harness.stack_exports("prod"))
    region = next(r for r in exports["regions"].values() if r["role"] == "primary")
    [db] = [d for d in region["databases"].values() if d["role"] == "primary"][:1]
    region["databases"]["ledger"] = {**db, "arn": db["arn"].replace(db["identifier"], "regionpair-prod-ledger")}
    g[:] = with_prod_reference([n for n in g if n["type"] != base.STACK_REFERENCE], exports)


is_replica = lambda n: bool(n["inputs"].get("replicateSourceDb"))  # noqa: E731
is_primary_record = lambda n: {"type": "PRIMARY"} in n["inputs"].get("failoverRoutingPolicies", [])  # noqa: E731

def rename_bucket(part: str, new: str):
    """The bucket named like ``part`` renamed, and every resource that names it by its name with it."""
    def mutate(g: Graph) -> None:
        bucket = first(g, base.S3_BUCKETS[0], named(part))
        old = bucket["inputs"]["bucket"]
        for n in g:
            if n["inputs"].get("bucket") == old:
                n["inputs"]["bucket"] = new
    return mutate


def _without_cloudwatch(doc: dict) -> None:
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Principal", {}).get("Service") != "cloudwatch.amazonaws.com"]


def _without_kms_decrypt(doc: dict) -> None:
    for s in doc["Statement"]:
        s["Action"] = [a for a in s["Action"] if a != "kms:Decrypt"] if isinstance(s["Action"], list) else s["Action"]
    doc["Statement"] = [s for s in doc["Statement"] if s["Action"]]


def _without_reverse_decrypt(doc: dict) -> None:
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "DecryptSourceObjectsReverse"]


def _without_replicate_delete(doc: dict) -> None:
    for s in doc["Statement"]:
        s["Action"] = [a for a in s["Action"] if a != "s3:ReplicateDelete"]


def second_lifecycle(g: Graph) -> None:
    extra = copy.deepcopy(first(g, s3.S3_LIFECYCLES[0], named("data")))
    extra["name"] = "data-lifecycle-2"
    g.append(extra)


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


MSK_CLUSTER_POLICY = "aws:msk/clusterPolicy:ClusterPolicy"
from policy import retention as RETENTION  # noqa: E402
from tests.helpers.policy import Graph, findings, graph_of, with_prod_reference

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def edit_policy(type_: str, edit: Callable[[dict], None], where: Callable[[dict], bool] = lambda n: True):
    """Change one IAM/cluster policy document of the graph in place (its JSON ``policy`` input)."""
    def mutate(g: Graph) -> None:
        node = first(g, type_, where)
        doc = json.loads(node["inputs"]["policy"])
        edit(doc)
        node["inputs"]["policy"] = json.dumps(doc)
    return mutate


# ---- Route53, CloudWatch alarms, IAM (policy/dns_alarms_iam.py) ----------------------------------

def record_guarded_by(check_name: str):
    """The PRIMARY record's health check re-pointed (value and the engine's dependency) to another check."""
    def mutate(g: Graph) -> None:
        record = first(g, base.ROUTE53_RECORD, is_primary_record)
        check = first(g, "aws:route53/healthCheck:HealthCheck", named(check_name))
        record["property_dependencies"] = {**record.get("property_dependencies", {}), "healthCheckId": [check["urn"]]}
        record["inputs"]["healthCheckId"] = "hc-" + check["name"]
    return mutate


def duplicate_secondary(g: Graph) -> None:
    record = copy.deepcopy(first(g, base.ROUTE53_RECORD))
    record["name"] += "-again"
    record["urn"] += "-again"
    record["inputs"]["setIdentifier"] = "another"
    g.append(record)


def prod_record_without_secondary(g: Graph) -> None:
    exports = copy.deepcopy(harness.stack_exports("prod"))
    exports["dns"]["records"]["ledger"] = "ledger.payments.example.com"
    g[:] = with_prod_reference([n for n in g if n["type"] != base.STACK_REFERENCE], exports)


def runbook_policy(edit: Callable[[dict], None]):
    return edit_policy(ROLE_POLICY, edit, named("runbooks"))


def cluster_policy_for_the_account_root(doc: dict) -> None:
    """The provider's own example: the account root as principal, not the MSK service."""
    doc["Statement"][0]["Principal"] = {"AWS": "arn:aws:iam::123456789012:root"}


def source_read_only(doc: dict) -> None:
    """The replicator role as it was: only read rights on the source (no WriteDataIdempotently there)."""
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    source, target = by_sid["ClusterPermissions"]["Resource"]
    by_sid["ClusterPermissions"]["Resource"] = [target]
    doc["Statement"].append({"Sid": "ReadTheSource", "Effect": "Allow", "Resource": [source],
                             "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster",
                                        "kafka-cluster:ReadData"]})


def no_group_rights(doc: dict) -> None:
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != "GroupPermissions"]


is_replicator_role_policy = named("replicator-policy")  # noqa: E731
is_bootstrap_parameter = named("kafka-bootstrap")  # noqa: E731


def _statement(doc: dict, sid: str) -> dict:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


def trust_account_root(g: Graph) -> None:
    node = first(g, "aws:iam/role:Role", named("runbooks"))
    node["inputs"]["assumeRolePolicy"] = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})


is_lag_alarm = lambda n: n["inputs"].get("metricName") == "ReplicaLag"  # noqa: E731


def route53_alarm_elsewhere(g: Graph) -> None:
    """The prod stack in us-east-1 creates its health-check alarm with its home provider; moved to a
    provider of another region (as if prod lived in eu-west-1 and forgot the us-east-1 provider)."""
    home = first(g, "pulumi:providers:aws", named("aws-us-east-1"))
    other = copy.deepcopy(home)
    other["name"], other["urn"] = "aws-eu-west-1", home["urn"].replace("us-east-1", "eu-west-1")
    other["inputs"]["region"] = "eu-west-1"
    g.append(other)
    first(g, "aws:cloudwatch/metricAlarm:MetricAlarm", lambda n: n["inputs"].get("namespace") == "AWS/Route53")[
        "provider"] = "aws-eu-west-1"


# (stack, what is broken, how, the policies that must report it — and no others)
BROKEN: list[tuple[str, str, Callable[[Graph], None], set[str]]] = [
    ("prod", "rds storage unencrypted", setting(base.RDS_INSTANCE, "storageEncrypted", False),
     {"rds-encrypted-with-customer-key"}),
    ("prod", "rds without customer key", setting(base.RDS_INSTANCE, "kmsKeyId", _UNSET),
     {"rds-encrypted-with-customer-key"}),
    ("dr", "replica without its region's key", setting(base.RDS_INSTANCE, "kmsKeyId", _UNSET, is_replica),
     {"rds-encrypted-with-customer-key"}),
    ("dr", "replicated backups without key", setting(base.RDS_BACKUP_REPLICATION, "kmsKeyId", _UNSET),
     {"rds-encrypted-with-customer-key"}),
    ("prod", "primary without deletion protection", setting(base.RDS_INSTANCE, "deletionProtection", False),
     {"rds-deletion-protection"}),
    ("dr", "replica without deletion protection",
     setting(base.RDS_INSTANCE, "deletionProtection", False, is_replica), {"rds-deletion-protection"}),
    ("prod", "retention below the floor", setting(base.RDS_INSTANCE, "backupRetentionPeriod", 3),
     {"rds-backup-retention-floor"}),
    ("dr", "replicated backups kept too briefly", setting(base.RDS_BACKUP_REPLICATION, "retentionPeriod", 1),
     {"rds-backup-retention-floor"}),
    ("prod", "msk at rest with the AWS key",
     setting(base.MSK_CLUSTER, "encryptionInfo.encryptionAtRestKmsKeyArn", _UNSET), {"msk-encrypted"}),
    ("dr", "msk allows plaintext clients",
     setting(base.MSK_CLUSTER, "encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT"),
     {"msk-encrypted"}),
    ("prod", "msk without the durable configuration", setting(base.MSK_CLUSTER, "configurationInfo", _UNSET),
     {"msk-durable-configuration"}),
    ("prod", "replication factor 2", server_properties(default_replication_factor="2"),
     {"msk-durable-configuration"}),
    ("dr", "min.insync.replicas 1", server_properties(min_insync_replicas="1"), {"msk-durable-configuration"}),
    ("prod", "unclean leader election", server_properties(unclean_leader_election_enable="true"),
     {"msk-durable-configuration"}),
    ("prod", "bucket encrypted with SSE-S3",
     setting(base.S3_ENCRYPTIONS[0], "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256",
             named("data")),
     {"s3-sse-kms", "s3-every-bucket-kms-encrypted"}),
    ("dr", "bucket without encryption configuration",
     lambda g: drop(g, base.S3_ENCRYPTIONS[0], named("backups")), {"s3-every-bucket-kms-encrypted"}),
    ("dr", "replicas without the DR key",
     setting(base.S3_REPLICATION, "rules.0.destination.encryptionConfiguration", _UNSET), {"s3-sse-kms"}),
    ("dr", "replication skips KMS objects",
     setting(base.S3_REPLICATION, "rules.0.sourceSelectionCriteria.sseKmsEncryptedObjects.status", "Disabled"),
     {"s3-sse-kms"}),
    ("prod", "alarm topic unencrypted", setting(base.SNS_TOPIC, "kmsMasterKeyId", _UNSET),
     {"sns-encrypted-with-customer-key"}),
    ("prod", "bucket not versioned", lambda g: drop(g, base.S3_VERSIONINGS[0], named("backups")),
     {"s3-every-bucket-versioned"}),
    ("dr", "replication destination not versioned", lambda g: drop(g, base.S3_VERSIONINGS[0], named("data")),
     {"s3-every-bucket-versioned"}),
    ("dr", "replication without RTC",
     setting(base.S3_REPLICATION, "rules.0.destination.replicationTime.status", "Disabled"),
     {"s3-replication-time-control"}),
    ("dr", "replication with a 60 minute RTC",
     setting(base.S3_REPLICATION, "rules.0.destination.replicationTime.time.minutes", 60),
     {"s3-replication-time-control"}),
    ("dr", "replication without metrics", setting(base.S3_REPLICATION, "rules.0.destination.metrics", _UNSET),
     {"s3-replication-time-control"}),
    ("prod", "PRIMARY record without health check",
     setting(base.ROUTE53_RECORD, "healthCheckId", _UNSET, is_primary_record),
     {"route53-primary-failover-health-check"}),
    ("prod", "public access half blocked",
     setting(base.S3_PUBLIC_ACCESS_BLOCK, "restrictPublicBuckets", False, named("data")),
     {"s3-public-access-block-complete", "s3-every-bucket-public-access-blocked"}),
    ("dr", "bucket without public access block", lambda g: drop(g, base.S3_PUBLIC_ACCESS_BLOCK, named("backups")),
     {"s3-every-bucket-public-access-blocked"}),
    ("prod", "key rotation off", setting(base.KMS_KEY, "enableKeyRotation", False), {"kms-key-rotation"}),
    ("dr", "DR key rotation off", setting(base.KMS_KEY, "enableKeyRotation", _UNSET), {"kms-key-rotation"}),
    ("dr", "replica turned standalone without promotion",
     setting(base.RDS_INSTANCE, "replicateSourceDb", _UNSET, is_replica), {"dr-every-primary-replicated"}),
    ("dr", "no automated-backups replication", lambda g: drop(g, base.RDS_BACKUP_REPLICATION),
     {"dr-every-primary-replicated"}),
    ("dr", "a prod primary with no replica in dr", extra_prod_primary, {"dr-every-primary-replicated"}),
    ("prod", "a privileged container in the cluster's dump job", privileged_dump_job, {"k8s-workload-restricted"}),
    ("prod", "msk without multi-VPC IAM connectivity",
     setting(base.MSK_CLUSTER, "brokerNodeGroupInfo.connectivityInfo.vpcConnectivity", _UNSET),
     {"msk-cluster-replicator-ready"}),
    ("dr", "msk on kafka.t3.small", setting(base.MSK_CLUSTER, "brokerNodeGroupInfo.instanceType", "kafka.t3.small"),
     {"msk-cluster-replicator-ready"}),
    ("prod", "msk open to unauthenticated clients", setting(base.MSK_CLUSTER, "clientAuthentication.unauthenticated", True),
     {"msk-cluster-replicator-ready"}),
    ("prod", "msk cluster without a cluster policy", lambda g: drop(g, MSK_CLUSTER_POLICY),
     {"msk-cluster-policy-for-replicator"}),
    ("dr", "msk cluster policy for the account root, not the MSK service",
     edit_policy(MSK_CLUSTER_POLICY, cluster_policy_for_the_account_root), {"msk-cluster-policy-for-replicator"}),
    ("dr", "replicator renames topics",
     setting(base.MSK_REPLICATOR, "replicationInfoList.topicReplications.0.topicNameConfiguration.type",
             "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS"), {"msk-replicator-valid"}),
    ("dr", "replicator between clusters of two accounts",
     setting(base.MSK_REPLICATOR, "kafkaClusters.0.amazonMskCluster.mskClusterArn",
             "arn:aws:kafka:us-east-1:999999999999:cluster/other/abc-1"), {"msk-replicator-valid"}),
    ("dr", "replicator role reads the source but cannot write idempotently there",
     edit_policy(ROLE_POLICY, source_read_only, is_replicator_role_policy), {"msk-replicator-execution-role"}),
    ("dr", "replicator role without consumer-group rights",
     edit_policy(ROLE_POLICY, no_group_rights, is_replicator_role_policy), {"msk-replicator-execution-role"}),
    ("prod", "msk configuration for another Kafka version",
     setting(base.MSK_CONFIGURATION, "kafkaVersions", ["3.5.1"]), {"msk-configuration-matches-cluster-version"}),
    ("prod", "bootstrap parameter under the reserved /aws prefix",
     setting("aws:ssm/parameter:Parameter", "name", "/aws/kafka/bootstrap-brokers", is_bootstrap_parameter),
     {"ssm-parameter-valid"}),
    # S3, KMS, SNS, SSM: what AWS documents (policy/s3.py, policy/kms_sns_ssm.py)
    ("prod", "DEEP_ARCHIVE 30 days after GLACIER",
     setting(s3.S3_LIFECYCLES[0], "rules.0.transitions.1.days", 120, named("data")), {"s3-lifecycle-transitions-valid"}),
    ("dr", "filter-based replication rule without priority", setting(base.S3_REPLICATION, "rules.0.priority", _UNSET),
     {"s3-replication-rule-shape"}),
    ("prod", "object lock retention in days and years",
     setting(s3.S3_OBJECT_LOCKS[0], "rule.defaultRetention.years", 1), {"s3-object-lock-retention-valid"}),
    ("prod", "bucket name with capitals and an underscore", rename_bucket("data", "Regionpair_Data"),
     {"s3-bucket-name-valid"}),
    ("dr", "replication role may not decrypt",
     edit_policy(base.IAM_ROLE_POLICY, _without_kms_decrypt, named("data-replication")),
     {"s3-replication-role-kms-permissions"}),
    # DR's data bucket has an S3 Bucket Key: S3 then decrypts with the replica key, which only the
    # reverse direction's statement grants
    ("dr", "replication role may not decrypt with the replica key of a bucket-key destination",
     edit_policy(base.IAM_ROLE_POLICY, _without_reverse_decrypt, named("data-replication")),
     {"s3-replication-role-kms-permissions"}),
    ("dr", "replication role without the S3 permissions of live replication",
     edit_policy(base.IAM_ROLE_POLICY, _without_replicate_delete, named("data-replication")),
     {"s3-replication-role-permissions"}),
    ("prod", "key deletion window of 45 days", setting(base.KMS_KEY, "deletionWindowInDays", 45),
     {"kms-key-settings-valid"}),
    ("dr", "alias under alias/aws/", setting(kms_sns_ssm.KMS_ALIAS, "name", "alias/aws/regionpair"), {"kms-alias-name-valid"}),
    ("prod", "topic name with spaces", setting(base.SNS_TOPIC, "name", "regionpair prod alarms"),
     {"sns-topic-name-valid"}),
    ("dr", "parameter under /aws", setting(kms_sns_ssm.SSM_PARAMETER, "name", "/aws/regionpair/s3/writer-bucket",
                                           named("data-writers")), {"ssm-parameter-valid"}),
    ("prod", "locked backups bucket force-destroyed", setting(base.S3_BUCKETS[0], "forceDestroy", True,
                                                              named("backups")), {"s3-object-lock-bucket-consistent"}),
    ("dr", "alarm topic's key without CloudWatch", edit_policy(base.KMS_KEY, _without_cloudwatch, named("key")),
     {"kms-key-lets-cloudwatch-publish"}),
    ("prod", "a second lifecycle configuration on the data bucket", second_lifecycle,
     {"s3-one-configuration-per-bucket"}),
    # RDS and Secrets Manager: what AWS documents (policy/rds.py)
    ("prod", "primary with an RDS-managed password", setting(base.RDS_INSTANCE, "manageMasterUserPassword", True),
     {"rds-password-not-rds-managed"}),
    ("dr", "replica with a final snapshot identifier",
     setting(base.RDS_INSTANCE, "finalSnapshotIdentifier", "regionpair-dr-payments-final", is_replica),
     {"rds-final-snapshot-by-role"}),
    ("prod", "minor version pinned with auto minor upgrades", setting(base.RDS_INSTANCE, "engineVersion", "16.4"),
     {"rds-major-version-with-auto-minor-upgrade"}),
    ("dr", "replica's key from the source's region",
     setting(base.RDS_INSTANCE, "kmsKeyId", "arn:aws:kms:us-east-1:123456789012:key/prod", is_replica),
     {"rds-cross-region-replica"}),
    ("dr", "backups replicated for 36 days", setting(base.RDS_BACKUP_REPLICATION, "retentionPeriod", 36),
     {"rds-backup-replication"}),
    ("prod", "password secret with a 3-day recovery window", setting(RDS.SECRET, "recoveryWindowInDays", 3),
     {"secretsmanager-secret"}),
    ("prod", "parameter group of another major version", setting(RDS.RDS_PARAMETER_GROUP, "family", "postgres15"),
     {"rds-parameter-group-family"}),
    # issue 10 point 5: a database name moves only when the runbook pins it
    ("prod", "PRIMARY record guarded by the endpoint's HTTPS check", record_guarded_by("dns-health"),
     {"route53-failover-record-runbook-controlled"}),
    ("prod", "pin check enabled with a threshold of 1",
     lambda g: [setting("aws:route53/healthCheck:HealthCheck", k, v, named("dns-pin"))(g)
                for k, v in (("childHealthThreshold", 1), ("disabled", False))],
     {"route53-failover-record-runbook-controlled"}),
    ("prod", "endpoint check every 15 s",
     setting("aws:route53/healthCheck:HealthCheck", "requestInterval", 15, named("dns-health")),
     {"route53-health-check-valid"}),
    ("prod", "failover record without set identifier",
     setting(base.ROUTE53_RECORD, "setIdentifier", _UNSET, is_primary_record), {"route53-record-valid"}),
    ("dr", "two SECONDARY records of one name", duplicate_secondary, {"route53-failover-pairs"}),
    ("dr", "a prod PRIMARY name without SECONDARY", prod_record_without_secondary, {"route53-failover-pairs"}),
    # point 8 and CloudWatch's own limits
    ("dr", "replica-lag alarm on a 30 s period",
     setting("aws:cloudwatch/metricAlarm:MetricAlarm", "period", 30, is_lag_alarm), {"cloudwatch-alarm-valid"}),
    ("dr", "replica-lag alarm needing 7 of 6 datapoints",
     setting("aws:cloudwatch/metricAlarm:MetricAlarm", "datapointsToAlarm", 7, is_lag_alarm),
     {"cloudwatch-alarm-valid"}),
    ("prod", "an alarm nobody hears", setting("aws:cloudwatch/metricAlarm:MetricAlarm", "alarmActions", []),
     {"cloudwatch-alarm-valid"}),
    ("prod", "the health-check alarm created in the primary's other region", route53_alarm_elsewhere,
     {"cloudwatch-route53-alarm-in-us-east-1"}),
    # point 9: the runbook role
    ("dr", "runbook role may grant its keys to anyone",
     runbook_policy(lambda d: _statement(d, "GrantsOnlyForAwsServices").pop("Condition")),
     {"iam-runbook-least-privilege"}),
    ("dr", "runbook role may delete object versions",
     runbook_policy(lambda d: _statement(d, "BucketObjectsAndRunLock")["Action"].append("s3:DeleteObjectVersion")),
     {"iam-runbook-least-privilege"}),
    ("dr", "runbook role may change any record of the zone",
     runbook_policy(lambda d: _statement(d, "Route53FailoverRecords")["Action"].append(
         "route53:ChangeResourceRecordSets")), {"iam-runbook-least-privilege"}),
    ("dr", "runbook role trusted by the whole account", trust_account_root, {"iam-trust-names-principals"}),
    # MirrorMaker 2 on MSK Connect (policy/mskconnect.py), on the dr stack configured with it
    ("dr+mirrormaker2", "connector on Kafka Connect 2.8.0",
     setting(MSKC.CONNECTOR, "kafkaconnectVersion", "2.8.0", named("source")), {"mskconnect-connector-valid"}),
    ("dr+mirrormaker2", "connector with both capacity modes",
     setting(MSKC.CONNECTOR, "capacity.provisionedCapacity", {"mcuCount": 1, "workerCount": 1}, named("heartbeat")),
     {"mskconnect-connector-valid"}),
    ("dr+mirrormaker2", "connector without worker logs", setting(MSKC.CONNECTOR, "logDelivery", _UNSET, named("source")),
     {"mskconnect-connector-iam-tls-logs"}),
    ("dr+mirrormaker2", "plugin of content type TAR", setting(MSKC.CUSTOM_PLUGIN, "contentType", "TAR"),
     {"mskconnect-custom-plugin-valid"}),
    ("dr+mirrormaker2", "worker configuration without value.converter",
     setting(MSKC.WORKER_CONFIGURATION, "propertiesFileContent",
             "key.converter=org.apache.kafka.connect.converters.ByteArrayConverter\nproducer.acks=all\n"),
     {"mskconnect-worker-configuration-valid"}),
    ("dr+mirrormaker2", "source connector renaming topics with the default replication policy",
     lambda g: first(g, MSKC.CONNECTOR, named("source"))["inputs"]["connectorConfiguration"].update(
         {"replication.policy.class": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy"}),
     {"mskconnect-mirrormaker2-settings"}),
    ("dr+mirrormaker2", "connector role cannot commit the groups' translated offsets on DR",
     edit_policy(ROLE_POLICY, lambda d: d.update(Statement=[s for s in d["Statement"] if s["Sid"] != "TargetGroups"]),
                 named("mirrormaker2-policy")), {"mskconnect-execution-role"}),
    ("dr+mirrormaker2", "connector role trusting the MSK service instead of MSK Connect",
     lambda g: first(g, "aws:iam/role:Role", named("mirrormaker2-role"))["inputs"].update(
         assumeRolePolicy=json.dumps({"Version": "2012-10-17", "Statement": [{
             "Effect": "Allow", "Principal": {"Service": "kafka.amazonaws.com"}, "Action": "sts:AssumeRole"}]})),
     {"mskconnect-execution-role"}),
    ("dr+mirrormaker2", "connector role trusting MSK Connect for any connector (no aws:SourceArn)",
     lambda g: first(g, "aws:iam/role:Role", named("mirrormaker2-role"))["inputs"].update(assumeRolePolicy=json.dumps({
         "Version": "2012-10-17", "Statement": [{
             "Effect": "Allow", "Principal": {"Service": "kafkaconnect.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]})),
     {"mskconnect-execution-role"}),
    # retention tiers (policy/retention.py)
    ("prod", "automated backups kept 36 days", setting(base.RDS_INSTANCE, "backupRetentionPeriod", 36),
     {"rds-backup-retention-at-most-35"}),
    ("prod", "compliance archive in governance mode",
     setting(RETENTION.S3_OBJECT_LOCK, "rule.defaultRetention.mode", "GOVERNANCE", named("compliance")),
     {"s3-compliance-archive-locked"}),
    ("dr", "compliance archive locked one year",
     setting(RETENTION.S3_OBJECT_LOCK, "rule.defaultRetention.days", 365, named("compliance")),
     {"s3-compliance-archive-locked"}),
    ("prod", "export role trusted by EC2 instead of RDS export", lambda g: _set(
        first(g, "aws:iam/role:Role", named("compliance-export")), "assumeRolePolicy",
        first(g, "aws:iam/role:Role", named("compliance-export"))["inputs"]["assumeRolePolicy"].replace(
            "export.rds.amazonaws.com", "ec2.amazonaws.com")), {"rds-snapshot-export-role"}),
    ("dr", "export role may not write objects", edit_policy(ROLE_POLICY, lambda d: _statement(d, "WriteExports")[
        "Action"].remove("s3:PutObject*"), named("compliance-export")), {"rds-snapshot-export-role"}),
    ("dr", "runbook role may delete compliance snapshots",
     runbook_policy(lambda d: _statement(d, "DeleteOnlySnapshotRunbookSnapshots")["Condition"].pop("StringNotEquals")),
     {"iam-snapshot-delete-spares-compliance"}),
    ("prod", "vault lock changeable for 1 day", lambda g: g.append(
        {"type": RETENTION.BACKUP_VAULT_LOCK, "name": "vault-lock", "parent": None, "provider": None,
         "inputs": {"backupVaultName": "compliance", "changeableForDays": 1, "minRetentionDays": 2555}}),
     {"backup-vault-lock-cooling-off"}),
    ("prod", "backup plan deletes 30 days after cold storage", lambda g: g.append(
        {"type": RETENTION.BACKUP_PLAN, "name": "plan", "parent": None, "provider": None,
         "inputs": {"name": "compliance", "rules": [{"ruleName": "monthly", "targetVaultName": "compliance",
                                                    "lifecycle": {"coldStorageAfter": 30, "deleteAfter": 60}}]}}),
     {"backup-plan-cold-storage-90-days"}),
    ("dr", "logical replication applied immediately", lambda g: first(g, "aws:rds/parameterGroup:ParameterGroup")[
        "inputs"]["parameters"].append({"name": "rds.logical_replication", "value": "1", "applyMethod": "immediate"}),
     {"rds-logical-replication-static"}),
    # the Kafka topic backup: its S3 rule (policy/kafka_backup.py); its MSK Connect resources are held to the
    # MSK Connect policies above (policy/mskconnect.py), and join the graph only when enabled
    ("prod", "a lifecycle rule id used twice", lambda g: first(g, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[
        "inputs"]["rules"].append(dict(first(g, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[
            "inputs"]["rules"][0])), {"s3-lifecycle-rule-limit"}),
    ("prod", "a backup connector reaching the cluster in plaintext", lambda g: g.append(_node(
        "aws:mskconnect/connector:Connector", "kafka-backup-connector",
        {"kafkaconnectVersion": "3.7.x", "capacity": {"provisionedCapacity": {"mcuCount": 1, "workerCount": 1}},
         "kafkaClusterClientAuthentication": {"authenticationType": "IAM"},
         "kafkaClusterEncryptionInTransit": {"encryptionType": "PLAINTEXT"},
         "logDelivery": {"workerLogDelivery": {"cloudwatchLogs": {"enabled": True, "logGroup": "g"}}}})),
     {"mskconnect-connector-iam-tls-logs"}),
    ("prod", "a connector plugin typed JAR for a ZIP", lambda g: g.append(_node(
        "aws:mskconnect/customPlugin:CustomPlugin", "kafka-backup-plugin",
        {"contentType": "JAR", "location": {"s3": {"bucketArn": "arn:aws:s3:::p", "fileKey": "c.zip"}}})),
     {"mskconnect-custom-plugin-valid"}),
]


def _node(type_: str, name: str, inputs: dict) -> dict:
    return {"type": type_, "name": name, "parent": None, "provider": "aws-us-east-1", "inputs": inputs,
            "urn": f"urn:pulumi:prod::regionpair::{type_}::{name}", "property_dependencies": {}}


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


def test_the_failback_replicator_needs_the_same_rights_on_drs_cluster_as_its_source():
    """The reverse replicator (DR → prod) reads DR's cluster: its role must write idempotently there too."""
    overrides = {"promoted": True, "failback_replication": True}
    saved = pulumi.runtime.config.CONFIG.get()
    try:  # a render sets its (promoted) config; later tests' config-reading policies must not see it
        graph = with_prod_reference(copy.deepcopy(harness.render("dr", overrides=overrides).resources))
    finally:
        pulumi.runtime.config.CONFIG.set(saved)
    reverse = first(graph, base.MSK_REPLICATOR, named("failback"))
    dr_cluster = reverse["inputs"]["replicationInfoList"]["sourceKafkaClusterArn"]
    assert ":us-west-2:" in dr_cluster
    edit_policy(ROLE_POLICY, source_read_only, named("failback-replicator-policy"))(graph)
    found = findings("dr", graph, overrides)
    assert {f.policy for f in found} == {"msk-replicator-execution-role"}
    [message] = [f.message for f in found]
    assert "failback-replicator-replicator" in message and f"source cluster {dr_cluster}" in message
    assert "kafka-cluster:WriteDataIdempotently" in message
