"""The Redis component under Pulumi mocks: daily snapshots kept 7 days, encryption, failover, the
same-region export bucket that ElastiCache can write to (ACL grant, ownership), the policy pack on
its graph; and each ElastiCache rule refusing the broken form before any resource."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components.cache import ELASTICACHE_CANONICAL_ID, ReplicatedRedis, ReplicatedRedisArgs
from components.common import ComponentArgsError
from tests import harness
from tests.harness import of_type, one

KEY = "arn:aws:kms:us-east-1:123456789012:key/prod"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def args(**kw) -> ReplicatedRedisArgs:
    base = dict(replication_group_id="regionpair-prod-sessions", node_type="cache.r7g.large",
                subnet_ids=["subnet-1", "subnet-2", "subnet-3"], security_group_ids=["sg-0123456789abcdef0"],
                kms_key_arn=KEY)
    base.update(kw)
    return ReplicatedRedisArgs(**base)


def render(**kw):
    def program():
        provider = aws.Provider("aws-us-east-1", region="us-east-1")
        ReplicatedRedis("sessions", args(**kw), opts=pulumi.ResourceOptions(provider=provider))
    return harness.render_program(program).resources


def test_daily_snapshots_kept_seven_days_encrypted_and_failing_over():
    g = one(render(), GROUP)["inputs"]
    assert (g["snapshotRetentionLimit"], g["snapshotWindow"]) == (7, "04:00-05:00")
    assert g["atRestEncryptionEnabled"] is True and g["kmsKeyId"] == KEY and g["transitEncryptionEnabled"] is True
    assert g["automaticFailoverEnabled"] is True and g["multiAzEnabled"] is True and g["numCacheClusters"] == 2
    assert g["finalSnapshotIdentifier"] == "regionpair-prod-sessions-final"


def test_the_export_bucket_is_in_the_caches_region_and_elasticache_may_write_to_it():
    resources = render()
    bucket = one(resources, "aws:s3/bucket:Bucket")
    group = one(resources, GROUP)
    assert bucket["provider"] == group["provider"], "same provider, same region: an export bucket must be there"
    acl = one(resources, "aws:s3/bucketAcl:BucketAcl")["inputs"]["accessControlPolicy"]
    granted = {g["permission"] for g in acl["grants"] if g["grantee"]["id"] == ELASTICACHE_CANONICAL_ID}
    assert granted == {"READ", "WRITE", "READ_ACP"}
    ownership = one(resources, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["inputs"]
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerPreferred", "ACL grants need ACLs enabled"
    life = one(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]
    assert life["rules"][0]["expiration"]["days"] == 30


def test_without_export_there_is_no_bucket():
    assert of_type(render(export=False), "aws:s3/bucket:Bucket") == []


def test_the_policy_pack_passes_on_the_components_graph():
    from policy import rules
    from policy.graph import evaluate, policy_resources
    resources = policy_resources([{"type": r["type"], "name": r["name"], "parent": r.get("parent"),
                                   "inputs": r["inputs"]} for r in render()], stack="prod")
    assert [f.message for f in evaluate(resources, rules.POLICIES)] == []


@pytest.mark.parametrize("kw, arg, words", [
    ({"snapshot_retention_days": 0}, "snapshot_retention_days", "0 turns them off"),
    ({"snapshot_retention_days": 36}, "snapshot_retention_days", "at most 35 days"),
    ({"snapshot_window": "hourly"}, "snapshot_window", "ONE automatic snapshot a day"),
    ({"snapshot_window": "4:00-5:00"}, "snapshot_window", "hh24:mi-hh24:mi"),
    ({"maintenance_window": "sun:05:30-sun:06:00"}, "maintenance_window", "at least 60 minutes"),
    ({"maintenance_window": "sun:04:30-sun:05:30"}, "maintenance_window", "overlaps the daily snapshot window"),
    ({"node_type": "cache.r6gd.xlarge"}, "node_type", "data tiering"),
    ({"num_cache_clusters": 1}, "num_cache_clusters", "need a replica"),
    ({"replication_group_id": "Sessions"}, "replication_group_id", "lower-case"),
    ({"elasticache_canonical_id": "elasticache"}, "elasticache_canonical_id", "64-character hex"),
    ({"node_type": "cache.t1.micro"}, "node_type", "not supported on cache.t1.micro"),
    ({"manual_snapshots_per_day": 24, "num_cache_clusters": 1}, "num_cache_clusters", "need a replica"),
    ({"manual_snapshots_per_day": 41}, "manual_snapshots_per_day", "no more than 20 manual backups per node"),
])
def test_each_elasticache_rule_refuses_the_broken_form_before_any_resource(kw, arg, words):
    with pytest.raises(ComponentArgsError) as err:
        render(**kw)
    assert arg in str(err.value) and words in str(err.value), str(err.value)


def test_a_data_tiering_node_is_accepted_without_export():
    assert one(render(node_type="cache.r6gd.xlarge", export=False), GROUP)["inputs"]["nodeType"] == "cache.r6gd.xlarge"


def test_hourly_manual_snapshots_fit_two_nodes_only_by_alternating():
    from components.cache import hourly_needs_alternation, validate
    validate(args(manual_snapshots_per_day=24, num_cache_clusters=2))  # 12 per node
    with pytest.raises(ComponentArgsError, match="hourly snapshots"):
        validate(args(manual_snapshots_per_day=41, num_cache_clusters=2))  # more than 20 a node
    assert hourly_needs_alternation(24) and not hourly_needs_alternation(20)
