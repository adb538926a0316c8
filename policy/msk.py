"""MSK's own rules (cluster, configuration, Replicator, cluster policy, the Replicator's execution
role), as CrossGuard policies. (SSM parameter names: policy/kms_sns_ssm.py.)

Each policy names the AWS document its rule comes from. ``rules.py`` puts ``POLICIES`` in the
pack's list; this module is imported as ``policy.msk`` (tests and policy/__main__.py alike).

Why every cluster must be a Replicator source: prod's cluster is the source of the primary → DR
Replicator (declared by the dr stack), DR's cluster the source of the failback's reverse one. Each
stack's run of the pack checks its own cluster; a Replicator whose source belongs to the other
stack is checked there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from . import base, iam_documents

Resource = base.Resource
Violation = base.Violation
UNKNOWN = base.UNKNOWN
get = base.get
as_list = base.as_list
is_set = base.is_set

MSK_CLUSTER_POLICY = "aws:msk/clusterPolicy:ClusterPolicy"
IAM_ROLE = base.IAM_ROLE
IAM_ROLE_POLICY = base.IAM_ROLE_POLICY

REPLICATOR_MIN_KAFKA = (2, 8, 1)
UNSUPPORTED_BROKERS = ("kafka.t3.small",)
MIN_REPLICATOR_BROKERS = 3
MAX_VOLUME_GB = 16384
REPLICATOR_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,127}$")
MAX_REPLICATOR_DESCRIPTION = 1024
SERVICE = "kafka.amazonaws.com"
SOURCE_POLICY_ACTIONS = ("kafka:CreateVpcConnection", "kafka:GetBootstrapBrokers", "kafka:DescribeClusterV2")
# AWS managed policy AWSMSKReplicatorExecutionRole, statement by statement (cluster, topic, group)
ROLE_CLUSTER_ACTIONS = ("kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
                        "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                        "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup",
                        "kafka-cluster:DescribeGroup", "kafka-cluster:DescribeTopicDynamicConfiguration",
                        "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:WriteDataIdempotently")
ROLE_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
                      "kafka-cluster:WriteData", "kafka-cluster:ReadData",
                      "kafka-cluster:DescribeTopicDynamicConfiguration",
                      "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:AlterCluster")
ROLE_GROUP_ACTIONS = ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup")

DOC_SUPPORTED = 'MSK Developer Guide, "Supported cluster types and versions for MSK Replicator"'
DOC_NETWORK = 'MSK Developer Guide, MSK Replicator "Network requirements"'
DOC_MVPC = 'MSK Developer Guide, "Requirements and limitations for multi-VPC private connectivity"'
DOC_SER = ('MSK Developer Guide, "Service execution role" and "AWS managed policy: '
           'AWSMSKReplicatorExecutionRole"')
DOC_CREATE_REPLICATOR = "MSK API Reference, CreateReplicator (ReplicatorName, Description)"
DOC_TOPIC_NAMES = 'MSK Developer Guide, "Supported cluster types and versions for MSK Replicator" (identical topic names)'
DOC_CREATE_CLUSTER = ('MSK Developer Guide, "Create an MSK Provisioned cluster"; CloudFormation '
                      'AWS::MSK::Cluster BrokerNodeGroupInfo/EBSStorageInfo')
DOC_CONFIGURATION = "MSK API Reference, CreateConfiguration (kafkaVersions) and CreateCluster (ConfigurationInfo)"


def kafka_version(value: Any) -> Optional[tuple[int, ...]]:
    """``3.6.0`` → (3, 6, 0); ``2.8.2.tiered`` → (2, 8, 2); None when not a version string."""
    if not isinstance(value, str):
        return None
    match = re.match(r"^(\d+)\.(\d+)\.(\d+|x)", value)
    if not match:
        return None
    return tuple(int(p) if p.isdigit() else 0 for p in match.groups())


# ---- resource checks ------------------------------------------------------------------------


def check_cluster_replicator_ready(r: Resource) -> list[str]:
    """An MSK cluster of the pair can be a cross-region Replicator source and target."""
    if r.type != base.MSK_CLUSTER:
        return []
    p = r.props
    problems = []
    mvpc_iam = get(p, "brokerNodeGroupInfo", "connectivityInfo", "vpcConnectivity", "clientAuthentication",
                   "sasl", "iam")
    if mvpc_iam is not True and mvpc_iam is not UNKNOWN:
        problems.append(f"{r.label}: multi-VPC private connectivity with IAM is off (brokerNodeGroupInfo."
                        f"connectivityInfo.vpcConnectivity.clientAuthentication.sasl.iam={mvpc_iam!r}); a "
                        f"cross-region MSK Replicator cannot read this cluster ({DOC_NETWORK}). Fix: set "
                        "connectivity_info.vpc_connectivity.client_authentication.sasl.iam=True (the provider "
                        "turns it on with UpdateConnectivity once the cluster is ACTIVE).")
    iam = get(p, "clientAuthentication", "sasl", "iam")
    if iam is not True and iam is not UNKNOWN:
        problems.append(f"{r.label}: IAM access control is off (clientAuthentication.sasl.iam={iam!r}); MSK "
                        f"Replicator connects with IAM only ({DOC_SUPPORTED}; {DOC_MVPC}). Fix: "
                        "client_authentication.sasl.iam=True.")
    if get(p, "clientAuthentication", "unauthenticated") is True:
        problems.append(f"{r.label}: unauthenticated access is on; clusters with multi-VPC private connectivity "
                        f"must not allow it ({DOC_MVPC}). Fix: client_authentication.unauthenticated=False.")
    broker = get(p, "brokerNodeGroupInfo", "instanceType")
    if broker in UNSUPPORTED_BROKERS:
        problems.append(f"{r.label}: broker type {broker!r} is not supported by MSK Replicator nor by multi-VPC "
                        f"private connectivity ({DOC_SUPPORTED}). Fix: kafka.m5.large or larger.")
    version = p.get("kafkaVersion")
    parsed = kafka_version(version)
    if version is not UNKNOWN and (parsed is None or parsed < REPLICATOR_MIN_KAFKA):
        problems.append(f"{r.label}: kafkaVersion {version!r} is below 2.8.1; MSK Replicator replicates under "
                        f"identical topic names only from 2.8.1 (2.7.0 for the Replicator at all, 2.7.1 for "
                        f"multi-VPC) ({DOC_TOPIC_NAMES}). Fix: kafka_version='3.6.0' or later.")
    brokers = p.get("numberOfBrokerNodes")
    subnets = get(p, "brokerNodeGroupInfo", "clientSubnets")
    if base.is_number(brokers):
        if brokers < MIN_REPLICATOR_BROKERS:
            problems.append(f"{r.label}: {brokers:g} brokers; MSK Replicator needs at least three in both source "
                            f"and target ({DOC_SUPPORTED}). Fix: number_of_broker_nodes=3 (one per zone).")
        if isinstance(subnets, list) and subnets and UNKNOWN not in subnets and brokers % len(subnets):
            problems.append(f"{r.label}: {brokers:g} brokers over {len(subnets)} client subnets; MSK distributes "
                            f"brokers evenly over the subnets, so the count must be a multiple of them "
                            f"({DOC_CREATE_CLUSTER}). Fix: a multiple of {len(subnets)} brokers.")
    volume = get(p, "brokerNodeGroupInfo", "storageInfo", "ebsStorageInfo", "volumeSize")
    if base.is_number(volume) and not 1 <= volume <= MAX_VOLUME_GB:
        problems.append(f"{r.label}: EBS volume of {volume:g} GiB per broker; MSK allows 1 to {MAX_VOLUME_GB} "
                        f"({DOC_CREATE_CLUSTER}). Fix: broker_volume_gb between 1 and {MAX_VOLUME_GB}.")
    return problems


def check_replicator(r: Resource) -> list[str]:
    """A Replicator MSK accepts, that copies what the DR side needs."""
    if r.type != base.MSK_REPLICATOR:
        return []
    p = r.props
    problems = []
    name = p.get("replicatorName")
    if isinstance(name, str) and not REPLICATOR_NAME.match(name):
        problems.append(f"{r.label}: replicatorName {name!r} is not 1 to 128 letters, digits and dashes "
                        f"({DOC_CREATE_REPLICATOR}). Fix: rename it.")
    description = p.get("description")
    if isinstance(description, str) and len(description) > MAX_REPLICATOR_DESCRIPTION:
        problems.append(f"{r.label}: description has {len(description)} characters, the maximum is "
                        f"{MAX_REPLICATOR_DESCRIPTION} ({DOC_CREATE_REPLICATOR}). Fix: shorten it.")
    clusters = [get(c, "amazonMskCluster", "mskClusterArn") for c in as_list(p.get("kafkaClusters"))]
    info = get(p, "replicationInfoList")
    source, target = get(info, "sourceKafkaClusterArn"), get(info, "targetKafkaClusterArn")
    known = [a for a in (source, target, *clusters) if isinstance(a, str)]
    if p.get("kafkaClusters") is not UNKNOWN and len(clusters) != 2:
        problems.append(f"{r.label}: kafkaClusters names {len(clusters)} clusters; a Replicator has exactly a "
                        f"source and a target ({DOC_CREATE_REPLICATOR}). Fix: list the two clusters.")
    for role, arn in (("source", source), ("target", target)):
        if isinstance(arn, str) and UNKNOWN not in clusters and arn not in clusters:
            problems.append(f"{r.label}: the {role} cluster {arn} is not among kafkaClusters, which must describe "
                            f"both ends ({DOC_CREATE_REPLICATOR}). Fix: add it to kafka_clusters with its subnets.")
    for c in as_list(p.get("kafkaClusters")):
        groups = get(c, "vpcConfig", "securityGroupsIds")
        if isinstance(target, str) and get(c, "amazonMskCluster", "mskClusterArn") == target and not is_set(groups):
            problems.append(f"{r.label}: no security groups for the target cluster {target}; the Replicator must be "
                            f"given the target's, with inbound and outbound rules on port 9098 ({DOC_NETWORK}; the "
                            "source needs none across regions). Fix: vpc_config.security_groups_ids=[<the target "
                            "brokers' security group>] on the target's kafka_clusters entry.")
    if isinstance(source, str) and source == target:
        problems.append(f"{r.label}: source and target are the same cluster ({DOC_CREATE_REPLICATOR}: a flow from a "
                        "source cluster to a target cluster). Fix: replicate between the two regions' clusters.")
    accounts = {a.split(":")[4] for a in known if a.startswith("arn:") and len(a.split(":")) > 5}
    if len(accounts) > 1:
        problems.append(f"{r.label}: clusters in accounts {sorted(accounts)}; source and target must be in the same "
                        f"AWS account ({DOC_SUPPORTED}). Fix: replicate between clusters of one account.")
    for i, topics in enumerate(as_list(get(info, "topicReplications"))):
        naming = get(topics, "topicNameConfiguration", "type")
        if naming not in ("IDENTICAL", UNKNOWN):
            problems.append(f"{r.label}: topicReplications[{i}] renames topics (topicNameConfiguration.type="
                            f"{naming!r}); after a failover DR's clients must find the same topic names "
                            f"({DOC_TOPIC_NAMES}). Fix: topic_name_configuration.type='IDENTICAL'.")
        position = get(topics, "startingPosition", "type")
        if position not in ("EARLIEST", UNKNOWN):
            problems.append(f"{r.label}: topicReplications[{i}] starts at {position!r}; anything written before the "
                            "Replicator (or a new topic) started would never reach DR (a DR invariant of this "
                            "project). Fix: starting_position.type='EARLIEST'.")
    for i, groups in enumerate(as_list(get(info, "consumerGroupReplications"))):
        if get(groups, "synchroniseConsumerGroupOffsets") is False:
            problems.append(f"{r.label}: consumerGroupReplications[{i}] does not synchronise offsets; DR's consumers "
                            "would restart from the beginning or the end (a DR invariant of this project). Fix: "
                            "synchronise_consumer_group_offsets=True.")
    return problems


# ---- stack checks ---------------------------------------------------------------------------


def _cluster_arn(cluster: Resource, referrer: Resource, prop: str, value: Any) -> bool:
    """Does ``referrer.prop`` (value ``value``) name ``cluster``? By value when known (the cluster's ARN
    contains ``cluster/<clusterName>/``), else by the engine's property dependencies."""
    name = cluster.props.get("clusterName")
    if isinstance(value, str) and isinstance(name, str):
        return f":cluster/{name}/" in value
    return cluster.urn in referrer.property_dependencies.get(prop, ())


def check_clusters_are_replicator_sources(resources: list[Resource]) -> list[Violation]:
    """Every MSK cluster here has a cluster policy that lets the MSK service principal do what a
    cross-region Replicator does on its source (the multi-VPC part is the resource check above)."""
    policies = base.of_type(resources, MSK_CLUSTER_POLICY)
    violations = []
    for cluster in base.of_type(resources, base.MSK_CLUSTER):
        mine = [cp for cp in policies if _cluster_arn(cluster, cp, "clusterArn", cp.props.get("clusterArn"))]
        if not mine and not any(cp.props.get("clusterArn") is UNKNOWN and not cp.property_dependencies
                                for cp in policies):
            violations.append(Violation(cluster, f"{cluster.label}: no cluster policy (aws.msk.ClusterPolicy) names "
                                        f"this cluster; a cross-region MSK Replicator reading it fails ({DOC_NETWORK}). "
                                        "Fix: declare aws.msk.ClusterPolicy(cluster_arn=<this cluster>, policy=<Allow "
                                        f"Principal {{Service: {SERVICE}}} {', '.join(SOURCE_POLICY_ACTIONS)} on it>)."))
            continue
        for cp in mine:
            doc = cp.props.get("policy")
            arn = cp.props.get("clusterArn")
            if doc is UNKNOWN or not isinstance(arn, str):
                continue  # judged when `pulumi up` runs the pack with the values
            statements = iam_documents.statements(base.document(doc))
            missing = [a for a in SOURCE_POLICY_ACTIONS if not iam_documents.allows(statements, a, arn, principal_service=SERVICE)]
            if missing:
                violations.append(Violation(cp, f"{cp.label}: the policy of {cluster.label} does not let the service "
                                            f"principal {SERVICE} do {', '.join(missing)} on it; a cross-region MSK "
                                            f"Replicator needs all of {', '.join(SOURCE_POLICY_ACTIONS)} "
                                            f"({DOC_NETWORK}). Fix: add them in an Allow statement with Principal "
                                            f"{{Service: {SERVICE}}} and Resource <the cluster ARN>."))
    return violations


def _role_for(replicator: Resource, roles: list[Resource]) -> Optional[Resource]:
    arn = replicator.props.get("serviceExecutionRoleArn")
    for role in roles:
        if isinstance(arn, str) and ":role/" in arn and iam_documents.is_role_named(role, arn.rsplit("/", 1)[-1]):
            return role
        if arn is UNKNOWN and role.urn in replicator.property_dependencies.get("serviceExecutionRoleArn", ()):
            return role
    return None


def check_replicator_execution_role(resources: list[Resource]) -> list[Violation]:
    """Each Replicator's service execution role trusts kafka.amazonaws.com and grants, on the source and
    on the target cluster, the documented cluster, topic and group permissions — WriteDataIdempotently
    on both."""
    roles = base.of_type(resources, IAM_ROLE)
    role_policies = base.of_type(resources, IAM_ROLE_POLICY)
    violations = []
    for rep in base.of_type(resources, base.MSK_REPLICATOR):
        arn = rep.props.get("serviceExecutionRoleArn")
        role = _role_for(rep, roles)
        if role is None:
            if isinstance(arn, str):
                violations.append(Violation(rep, f"{rep.label}: its service execution role {arn} is not declared in "
                                            "this stack, so its permissions cannot be checked. Fix: declare the role "
                                            "and its policy next to the Replicator."))
            continue
        trust = base.document(role.props.get("assumeRolePolicy"))
        if role.props.get("assumeRolePolicy") is not UNKNOWN and not _allows_assume(trust):
            violations.append(Violation(role, f"{role.label}: the role does not trust {SERVICE}; the Replicator cannot "
                                        f"assume it ({DOC_SER}). Fix: a trust policy allowing sts:AssumeRole to "
                                        f"Principal {{Service: {SERVICE}}} (with aws:SourceAccount)."))
        docs = [rp.props.get("policy") for rp in iam_documents.policies_of(role, role_policies)]
        if any(d is UNKNOWN for d in docs):
            continue
        statements = [s for d in docs for s in iam_documents.statements(base.document(d))]
        info = get(rep.props, "replicationInfoList")
        for side, cluster_arn in (("source", get(info, "sourceKafkaClusterArn")),
                                  ("target", get(info, "targetKafkaClusterArn"))):
            if not isinstance(cluster_arn, str) or ":cluster/" not in cluster_arn:
                continue
            wanted = ([(a, cluster_arn) for a in ROLE_CLUSTER_ACTIONS]
                      + [(a, cluster_arn.replace(":cluster/", ":topic/", 1) + "/any-topic") for a in ROLE_TOPIC_ACTIONS]
                      + [(a, cluster_arn.replace(":cluster/", ":group/", 1) + "/any-group") for a in ROLE_GROUP_ACTIONS])
            missing = sorted({a for a, res in wanted if not iam_documents.allows(statements, a, res)})
            if missing:
                violations.append(Violation(rep, f"{rep.label}: its execution role lacks on the {side} cluster "
                                            f"{cluster_arn}: {', '.join(missing)} ({DOC_SER}: WriteDataIdempotently "
                                            "on both the source and the target cluster). Fix: grant the "
                                            "AWSMSKReplicatorExecutionRole statements on the cluster, its topics "
                                            "(topic/<name>/<uuid>/*) and its groups (group/<name>/<uuid>/*)."))
    return violations


def _allows_assume(trust: Optional[Mapping[str, Any]]) -> bool:
    for s in iam_documents.statements(trust):
        principal = s.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if s.get("Effect") == "Allow" and SERVICE in services and "sts:AssumeRole" in as_list(s.get("Action")):
            return True
    return False


def check_configuration_fits_cluster(resources: list[Resource]) -> list[Violation]:
    """The configuration a cluster runs lists the cluster's Kafka version."""
    configs = base.of_type(resources, base.MSK_CONFIGURATION)
    violations = []
    for cluster in base.of_type(resources, base.MSK_CLUSTER):
        arn = get(cluster.props, "configurationInfo", "arn")
        version = cluster.props.get("kafkaVersion")
        if not isinstance(version, str):
            continue
        for config in configs:
            name = config.props.get("name")
            named = (isinstance(arn, str) and isinstance(name, str) and f":configuration/{name}/" in arn) or (
                arn is UNKNOWN and config.urn in cluster.property_dependencies.get("configurationInfo", ()))
            versions = config.props.get("kafkaVersions")
            if named and isinstance(versions, list) and UNKNOWN not in versions and version not in versions:
                violations.append(Violation(cluster, f"{cluster.label}: runs Kafka {version} with configuration "
                                            f"{name!r}, which is for {versions}; MSK refuses a configuration whose "
                                            f"kafkaVersions do not include the cluster's ({DOC_CONFIGURATION}). Fix: "
                                            f"add {version!r} to the configuration's kafka_versions."))
    return violations


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    base.resource_policy(
        "msk-cluster-replicator-ready",
        "Every MSK cluster can be a cross-region MSK Replicator source and target: multi-VPC private connectivity "
        f"with IAM, IAM access control, no unauthenticated access, Kafka 2.8.1+, not kafka.t3.small, at least 3 "
        f"brokers and a multiple of the subnets, 1-16384 GiB per broker ({DOC_NETWORK}; {DOC_SUPPORTED}; "
        f"{DOC_MVPC}; {DOC_CREATE_CLUSTER}).",
        check_cluster_replicator_ready),
    base.resource_policy(
        "msk-replicator-valid",
        "Every MSK Replicator has a valid name and description, exactly its source and target clusters in one "
        "account, security groups for its target (none are needed for a cross-region source), identical topic "
        "names; and (DR invariants of this project) EARLIEST starting position and "
        "consumer-group offset sync "
        f"({DOC_CREATE_REPLICATOR}; {DOC_SUPPORTED}; {DOC_NETWORK}).",
        check_replicator),
    base.stack_policy(
        "msk-cluster-policy-for-replicator",
        f"Every MSK cluster has a cluster policy letting {SERVICE} {', '.join(SOURCE_POLICY_ACTIONS)} on it, "
        f"so a cross-region Replicator can read it ({DOC_NETWORK}).",
        base.ignoring_settings(check_clusters_are_replicator_sources)),
    base.stack_policy(
        "msk-replicator-execution-role",
        f"Every MSK Replicator's execution role trusts {SERVICE} and grants the documented cluster, topic and "
        f"group permissions, WriteDataIdempotently included, on both the source and the target cluster ({DOC_SER}).",
        base.ignoring_settings(check_replicator_execution_role)),
    base.stack_policy(
        "msk-configuration-matches-cluster-version",
        f"An MSK cluster's configuration lists the cluster's Kafka version in kafkaVersions ({DOC_CONFIGURATION}).",
        base.ignoring_settings(check_configuration_fits_cluster)),
]
"""The MSK policies, all mandatory (``base.resource_policy``/``stack_policy``)."""
