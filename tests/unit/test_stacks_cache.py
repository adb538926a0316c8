"""The prod stack with the optional `cache` section: the Redis replication group with its daily
snapshots, the same-region export bucket, a Redis security group for the database clients; the
policy pack passes; without the section nothing of it is declared (the snapshots stay as they are)."""

from __future__ import annotations

from tests import harness
from tests.harness import of_type, one

CACHE = {"name": "sessions", "node_type": "cache.r7g.large"}


def test_prod_with_a_cache_declares_the_group_its_export_bucket_and_a_redis_security_group():
    rendered = harness.render("prod", overrides={"cache": CACHE})
    group = one(rendered.resources, "aws:elasticache/replicationGroup:ReplicationGroup")
    assert group["inputs"]["replicationGroupId"] == "regionpair-prod-sessions"
    assert (group["inputs"]["snapshotRetentionLimit"], group["inputs"]["snapshotWindow"]) == (7, "04:00-05:00")
    buckets = [b["inputs"]["bucket"] for b in of_type(rendered.resources, "aws:s3/bucket:Bucket")]
    assert "regionpair-prod-sessions-cache-exports" in buckets
    (sg,) = [r for r in of_type(rendered.resources, "aws:ec2/securityGroup:SecurityGroup")
             if r["name"] == "cache-sessions-sg"]
    assert [(i["fromPort"], i["toPort"]) for i in sg["inputs"]["ingress"]] == [(6379, 6379)]


def test_the_policy_pack_passes_on_prod_with_the_cache():
    from tests.helpers.policy import findings
    graph = harness.render("prod", overrides={"cache": CACHE}).resources
    assert [(f.policy, f.message) for f in findings("prod", graph, {})] == []


def test_without_the_section_nothing_of_it_is_declared():
    assert not [r for r in harness.render_stack("prod") if r["type"].startswith("aws:elasticache")]
