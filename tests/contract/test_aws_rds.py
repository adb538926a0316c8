"""The DatabaseControl port on RDS (runbooks/adapters/aws/rds.py): describe, fence and unfence
through the security group's tags, promote, rebuild a replica. moto in server mode for what it
emulates; botocore's Stubber for what it does not (``modifying``, ``renaming``, ``backing-up``,
a promotion under way)."""

from __future__ import annotations

import json

import psycopg
import pytest
from botocore.stub import ANY

from runbooks.adapters import aws
from runbooks.adapters.aws import rds
from runbooks.core.errors import StepFailed
from tests.contract.aws_helpers import (
    PRIMARY_ARN,
    REPLICA_ARN,
    FakeConn,
    Stubs,
    described,
    instance,
    open_group,
    ports,
)
from tests.helpers.moto import P, S


def normalized(permissions):
    return sorted(rds.rule_key(r) + json.dumps([s.get("Description") for k, _ in rds.SOURCE_KEYS
                                                 for s in r.get(k, [])])
                  for r in aws.flatten_rules(permissions))


def test_describe_reads_role_source_region_and_fence(moto_pair):
    p = ports(moto_pair)
    primary, replica = p.db.describe(P, "payments"), p.db.describe(S, "payments")
    assert (primary.role, primary.status, primary.fenced, primary.source_region) == ("primary", "available", False, None)
    assert (replica.role, replica.source_region, replica.identifier) == ("replica", P, "dr-payments")


def test_fence_revokes_client_ingress_and_unfence_restores_exactly(moto_pair):
    sql_log = []
    p = ports(moto_pair, connect=lambda info: FakeConn(sql_log))
    before = moto_pair.ingress(P)
    result = p.db.fence(P, "payments")
    assert "revoked 3 ingress rule(s)" in result and "ended 2 established client session(s)" in result
    assert p.db.describe(P, "payments").fenced
    left = aws.flatten_rules(moto_pair.ingress(P))
    assert [r["IpRanges"][0]["CidrIp"] for r in left] == ["10.9.0.0/24"]  # only the runbooks' own way in
    assert moto_pair.tags(P)[aws.FENCED_TAG] == "true"
    assert any("pg_terminate_backend" in q for q in sql_log)
    assert "already fenced" in p.db.fence(P, "payments")  # idempotent
    assert "restored 3 ingress rule(s)" in p.db.unfence(P, "payments")
    assert normalized(moto_pair.ingress(P)) == normalized(before)
    assert not any(k.startswith("regionpair:") for k in moto_pair.tags(P))
    assert not p.db.describe(P, "payments").fenced
    assert "not fenced" in p.db.unfence(P, "payments")


def test_fence_resumed_after_a_crash_between_tagging_and_revoking_loses_no_rule(moto_pair):
    p = ports(moto_pair, connect=lambda info: FakeConn([]))
    before = moto_pair.ingress(P)
    ec2 = moto_pair.client("ec2", P)
    # what a crashed fence leaves behind: the rules remembered, the marker set, nothing revoked
    rules = [r for r in aws.flatten_rules(before) if not rds.is_kept(r)]
    ec2.create_tags(Resources=[moto_pair.sg[P]], Tags=rds.encode_rules(rules) + [{"Key": aws.FENCED_TAG, "Value": "true"}])
    assert not p.db.describe(P, "payments").fenced  # marker alone is not a fence: clients still get in
    p.db.fence(P, "payments")
    p.db.unfence(P, "payments")
    assert normalized(moto_pair.ingress(P)) == normalized(before)


def test_fence_without_sql_access_says_so(moto_pair):
    def refuse(info):
        raise psycopg.OperationalError("connection refused")
    result = ports(moto_pair, connect=refuse).db.fence(P, "payments")
    assert "could not end established client sessions" in result and "hunter2" not in result


def test_promote_a_replica_and_again_on_a_standalone(moto_pair):
    p = ports(moto_pair)
    assert p.db.promote(S, "payments") == "promotion of us-west-2/payments (dr-payments) started"
    # moto keeps ReadReplicaSourceDBInstanceIdentifier after promotion; the finished state is a Stubber test
    assert "already standalone" in p.db.promote(P, "payments")


def test_rebuild_replica_renames_the_old_primary_aside_and_replicates_back(moto_pair):
    p = ports(moto_pair)
    result = p.db.rebuild_replica(P, "payments", S)
    assert "as a read replica of arn:aws:rds:us-west-2:123456789012:db:dr-payments" in result
    assert "kept as prod-payments-old-" in result and "never deletes it" in result
    d = p.db.describe(P, "payments")
    assert (d.role, d.source_region) == ("replica", S)
    names = [i["DBInstanceIdentifier"] for i in moto_pair.client("rds", P).describe_db_instances()["DBInstances"]]
    assert "prod-payments" in names and any(n.startswith("prod-payments-old-") for n in names)
    assert "already replicates" in p.db.rebuild_replica(P, "payments", S)


def test_describe_follows_a_promotion_from_replica_through_modifying_to_primary():
    s = Stubs()
    rds, ec2 = s.stub("rds", S), s.stub("ec2", S)
    ident = {"DBInstanceIdentifier": "dr-payments"}
    for status, source in (("available", PRIMARY_ARN), ("modifying", PRIMARY_ARN), ("rebooting", None),
                           ("available", None)):
        rds.add_response("describe_db_instances", described(instance("dr-payments", S, status, source)), ident)
        ec2.add_response("describe_security_groups", open_group("sg-dr0"), {"GroupIds": ["sg-dr0"]})
    p = s.ports()
    seen = [(d.status, d.role, d.source_region) for d in (p.db.describe(S, "payments") for _ in range(4))]
    assert seen == [("available", "replica", P), ("modifying", "replica", P), ("rebooting", "primary", None),
                    ("available", "primary", None)]
    s.done()


def test_describe_reports_backing_up_for_the_replica_gate():
    s = Stubs()
    s.stub("rds", S).add_response("describe_db_instances",
                                  described(instance("dr-payments", S, "backing-up", PRIMARY_ARN)))
    s.stub("ec2", S).add_response("describe_security_groups", open_group("sg-dr0"))
    d = s.ports().db.describe(S, "payments")
    assert (d.status, d.role) == ("backing-up", "replica")


def test_promote_again_while_promotion_is_under_way_counts_as_started():
    s = Stubs()
    rds = s.stub("rds", S)
    rds.add_response("describe_db_instances", described(instance("dr-payments", S, "modifying", PRIMARY_ARN)))
    rds.add_client_error("promote_read_replica", "InvalidDBInstanceState", "DB Instance is not in available state",
                         400, expected_params={"DBInstanceIdentifier": "dr-payments"})
    rds.add_response("describe_db_instances", described(instance("dr-payments", S, "modifying", PRIMARY_ARN)))
    assert s.ports().db.promote(S, "payments") == \
        "promotion of us-west-2/payments (dr-payments) already under way (status modifying)"
    s.done()


def test_promote_refused_in_another_state_says_what_to_do():
    s = Stubs()
    rds = s.stub("rds", S)
    rds.add_response("describe_db_instances", described(instance("dr-payments", S, "backing-up", PRIMARY_ARN)))
    rds.add_client_error("promote_read_replica", "InvalidDBInstanceState", "not available", 400)
    rds.add_response("describe_db_instances", described(instance("dr-payments", S, "backing-up", PRIMARY_ARN)))
    with pytest.raises(StepFailed, match="cannot be promoted while backing-up; wait until it is available"):
        s.ports().db.promote(S, "payments")


def test_rebuild_waits_for_rds_to_finish_renaming_then_creates_the_replica():
    s = Stubs()
    rds_p, rds_s = s.stub("rds", P), s.stub("rds", S)
    old = instance("prod-payments", P, "available", DBSubnetGroup={"DBSubnetGroupName": "prod-db"}, MultiAZ=True)
    rds_p.add_response("describe_db_instances", described(old), {"DBInstanceIdentifier": "prod-payments"})
    rds_s.add_response("describe_db_instances", described(instance("dr-payments", S)))
    rds_p.add_response("modify_db_instance", {"DBInstance": instance("prod-payments", P, "renaming")},
                       {"DBInstanceIdentifier": "prod-payments", "NewDBInstanceIdentifier": "prod-payments-old-20231114221320",
                        "ApplyImmediately": True})
    rds_p.add_response("describe_db_instances", described(instance("prod-payments", P, "renaming")))
    rds_p.add_response("describe_db_instances", described(instance("prod-payments", P, "renaming")))
    rds_p.add_client_error("describe_db_instances", "DBInstanceNotFound", "not found", 404)
    rds_p.add_response("create_db_instance_read_replica", {"DBInstance": instance("prod-payments", P, "creating")}, {
        "DBInstanceIdentifier": "prod-payments", "SourceDBInstanceIdentifier": REPLICA_ARN, "SourceRegion": S,
        "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/prod", "VpcSecurityGroupIds": ["sg-prod0"],
        "DBInstanceClass": "db.r6g.large", "MultiAZ": True, "DBSubnetGroupName": "prod-db", "Port": 5432,
        "PubliclyAccessible": False, "CopyTagsToSnapshot": True, "DeletionProtection": True, "Tags": ANY})
    start = s.clock.now
    result = s.ports().db.rebuild_replica(P, "payments", S)
    assert "kept as prod-payments-old-20231114221320" in result and "encrypted with arn:aws:kms:us-east-1" in result
    assert s.clock.now > start  # waited on the engine's clock, not on a boto3 waiter
    s.done()
