"""The AWS adapters on botocore's Stubber (the real service models validate every request and
response), for what moto does not emulate: status transitions (`modifying`, `renaming`,
`backing-up`), promotion already under way, a promoted replica losing its source, failing
Route53 health checkers, conflicting S3 conditional writes, 5xx and AccessDenied answers, and
RDS's StatusInfos with the ReplicaLag metric."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from runbooks.adapters import aws
from runbooks.clock import FakeClock
from runbooks.errors import BadInput, LockHeld, StepFailed, Unreachable
from contract import outputs as contract
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"
PRIMARY_ARN = "arn:aws:rds:us-east-1:123456789012:db:prod-payments"
REPLICA_ARN = "arn:aws:rds:us-west-2:123456789012:db:dr-payments"


class Stubs:
    """Clients whose calls are answered by botocore Stubbers on the real service models."""

    def __init__(self, doc=None, clock=None):
        self.outputs = contract.from_dict(doc or pair_document())
        self.clock = clock or FakeClock()
        self.session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.clients = aws.Clients(self.session)
        self.stubbers: list[Stubber] = []

    def stub(self, service: str, region: str) -> Stubber:
        client = self.session.client(service, region_name=region)
        self.clients.use(service, region, client)
        stubber = Stubber(client)
        stubber.activate()
        self.stubbers.append(stubber)
        return stubber

    def ports(self, connect=None):
        return aws.aws_ports(self.outputs, self.clock, clients=self.clients, connect=connect)

    def done(self):
        for s in self.stubbers:
            s.assert_no_pending_responses()


def instance(identifier: str, region: str, status: str = "available", source: str | None = None, **extra) -> dict:
    inst = {"DBInstanceIdentifier": identifier, "DBInstanceStatus": status,
            "DBInstanceArn": f"arn:aws:rds:{region}:123456789012:db:{identifier}",
            "DBInstanceClass": "db.r6g.large", "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-prod0" if region == P else "sg-dr0", "Status": "active"}],
            "Endpoint": {"Address": f"{identifier}.abc.{region}.rds.amazonaws.com", "Port": 5432}, **extra}
    if source:
        inst["ReadReplicaSourceDBInstanceIdentifier"] = source
    return inst


def described(*instances) -> dict:
    return {"DBInstances": list(instances)}


def open_group(gid: str) -> dict:
    return {"SecurityGroups": [{"GroupId": gid, "GroupName": "db", "Description": "db", "OwnerId": "123456789012",
                                "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                                   "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}], "Tags": []}]}


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


def test_region_answering_5xx_is_unreachable_and_access_denied_names_the_fix():
    s = Stubs()
    rds = s.stub("rds", P)
    rds.add_client_error("promote_read_replica", "InternalFailure", "boom", 503)
    rds.add_client_error("describe_db_instances", "AccessDenied", "not authorized", 403)
    p = s.ports()
    with pytest.raises(Unreachable, match="HTTP 503"):
        s.clients.call("rds", P, "promote_read_replica", DBInstanceIdentifier="prod-payments")
    with pytest.raises(aws.AwsCallFailed, match="DescribeDBInstances was denied .* runbook role's policy"):
        p.db.promote(P, "payments")


def test_health_check_failing_at_the_checkers_answers_the_secondary_when_not_pinned():
    s = Stubs()
    r53 = s.stub("route53", "us-east-1")
    config = {"Type": "TCP", "IPAddress": "10.0.0.10", "Port": 5432, "Inverted": False, "Disabled": False}
    r53.add_response("get_health_check", {"HealthCheck": {"Id": "hc-1234", "CallerReference": "x",
                                                          "HealthCheckConfig": config, "HealthCheckVersion": 1}})
    now = datetime.now(timezone.utc)
    r53.add_response("get_health_check_status", {"HealthCheckObservations": [
        {"Region": r, "IPAddress": "1.2.3.4", "StatusReport": {"Status": "Failure: Connection timed out",
                                                                "CheckedTime": now}}
        for r in ("us-east-1", "eu-west-1", "ap-southeast-1")]})
    assert s.ports().dns.answer("payments") == S
    s.done()


def test_lock_conflicting_conditional_write_is_refused_with_the_winner():
    s = Stubs()
    s3 = s.stub("s3", S)
    s3.add_client_error("put_object", "ConditionalRequestConflict", "conflict", 409)
    body = b'{"run_id": "other", "who": "bob", "since": "t0", "host": "h", "pid": 1}'
    s3.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"e1"'},
                    {"Bucket": "regionpair-dr-backups", "Key": "regionpair/locks/regionpair.json"})
    with pytest.raises(LockHeld) as held:
        s.ports().lock.acquire({"run_id": "mine", "runbook": "failover", "who": "alice", "since": "t1"})
    assert held.value.holder["who"] == "bob"


def test_lock_needs_the_dr_backups_bucket():
    doc = pair_document()
    doc["regions"][S]["storage"]["backups_bucket"] = None
    with pytest.raises(BadInput, match="storage.backups_bucket is missing"):
        Stubs(doc).ports().lock.holder()


class NoReceiverConn:
    """A replica whose pg_stat_wal_receiver is empty (RDS cross-region replicas may show none)."""

    def execute(self, query, params=None):
        rows = {"pg_is_in_recovery": [(True,)],
                "pg_last_wal_replay_lsn": [("0/3000060", "0/3000060", 12.0)],
                "pg_stat_wal_receiver": []}
        found = next(v for k, v in rows.items() if k in query)

        class Cur:
            def fetchone(self_inner):
                return found[0] if found else None
        return Cur()

    def close(self):
        pass


def test_replication_falls_back_to_replica_lag_metric_and_says_so():
    s = Stubs()
    s.stub("secretsmanager", S).add_response("get_secret_value", {"SecretString": '{"password": "pw"}'})
    now = datetime.fromtimestamp(s.clock.time(), timezone.utc)
    s.stub("cloudwatch", S).add_response("get_metric_statistics", {"Datapoints": [
        {"Timestamp": now - timedelta(seconds=150), "Maximum": 9.0},
        {"Timestamp": now - timedelta(seconds=30), "Maximum": 2.5}]})
    s.stub("rds", S).add_response("describe_db_instances", described(instance(
        "dr-payments", S, source=PRIMARY_ARN,
        StatusInfos=[{"StatusType": "read replication", "Normal": True, "Status": "replicating"}])))
    st = s.ports(connect=lambda info: NoReceiverConn()).sql.replication(S, "payments")
    assert (st.in_recovery, st.lsn, st.lag_seconds, st.streaming, st.lag_source) == \
        (True, 0x3000060, 2.5, True, "cloudwatch:ReplicaLag")
    s.done()


def test_a_throttled_call_is_tried_again_on_the_runbooks_clock_until_it_goes_through():
    """A failover of many databases meets AWS's API quotas (RDS: 300 burst, 12 per second per
    region). A throttle is the region answering: the adapter waits and tries again instead of
    failing the step, paced by the runbook's clock."""
    s = Stubs()
    rds = s.stub("rds", S)
    for _ in range(3):
        rds.add_client_error("describe_db_instances", service_error_code="ThrottlingException",
                             service_message="Rate exceeded", http_status_code=400)
    rds.add_response("describe_db_instances", {"DBInstances": [instance("dr-payments", S, source=PRIMARY_ARN)]})
    ports = s.ports()
    start = s.clock.monotonic()
    assert ports.db.describe(S, "payments").role == "replica"
    waited = s.clock.monotonic() - start
    assert 0 < waited <= 0.5 + 1.0 + 2.0, f"three jittered back-offs (at most 0.5, 1, 2 s), not {waited}"
    s.done()


def test_a_call_throttled_past_the_deadline_fails_naming_the_throttle():
    s = Stubs()
    s.clients.settings = aws.AwsSettings(throttle_deadline=5.0)
    rds = s.stub("rds", S)
    for _ in range(40):
        rds.add_client_error("promote_read_replica", service_error_code="Throttling", service_message="Rate exceeded",
                             http_status_code=400)
    ports = s.ports()
    start = s.clock.monotonic()
    with pytest.raises(aws.AwsCallFailed, match="Throttling"):
        s.clients.call("rds", S, "promote_read_replica", DBInstanceIdentifier="dr-payments")
    assert 5.0 <= s.clock.monotonic() - start < 5.0 + 1e-6, "it gives up at the deadline, not before or long after"


def test_an_access_denied_answer_is_not_tried_again():
    s = Stubs()
    rds = s.stub("rds", S)
    rds.add_client_error("describe_db_instances", service_error_code="AccessDenied",
                         service_message="not authorized to perform rds:DescribeDBInstances", http_status_code=403)
    ports = s.ports()
    with pytest.raises(aws.AwsCallFailed, match="AccessDenied"):
        ports.db.describe(S, "payments")
    assert s.clock.monotonic() == FakeClock().monotonic(), "no wait before failing a refusal"
    s.done()


def _pin_check(inverted: bool) -> dict:
    config = {"Type": "CALCULATED", "ChildHealthChecks": ["hc-endpoint"], "HealthThreshold": 0,
              "Disabled": True, "Inverted": inverted}
    return {"HealthCheck": {"Id": "hc-1234", "CallerReference": "x", "HealthCheckConfig": config,
                            "HealthCheckVersion": 1}}


def test_the_lanes_share_one_read_of_the_pin_check_a_second():
    """Route 53's quota is per account (50 burst, 10 per second): fifty databases' lanes polling the one
    check that guards them all share one read of it per second instead of one each."""
    s = Stubs(doc=pair_document(50))
    r53 = s.stub("route53", "us-east-1")
    r53.add_response("get_health_check", _pin_check(False), {"HealthCheckId": "hc-1234"})
    r53.add_response("get_health_check", _pin_check(True), {"HealthCheckId": "hc-1234"})
    dns = s.ports().dns
    services = list(s.outputs.dns.records)
    assert {dns.answer(name) for name in services} == {P}, "fifty answers, one read (a second would be unstubbed)"
    s.clock.advance(aws.Route53Dns.read_max_age)
    assert {dns.answer(name) for name in services} == {S}, "a second later, read again"
    s.done()


def test_pinning_a_check_another_lane_pinned_already_changes_nothing():
    s = Stubs()
    r53 = s.stub("route53", "us-east-1")
    name = s.outputs.dns.records["payments"]
    r53.add_response("list_resource_record_sets", {"ResourceRecordSets": [
        {"Name": name, "Type": "CNAME", "SetIdentifier": "prod", "Failover": "PRIMARY", "TTL": 60,
         "HealthCheckId": "hc-1234", "ResourceRecords": [{"Value": "prod-payments.abc.rds.amazonaws.com"}]}],
        "IsTruncated": False, "MaxItems": "10"})
    r53.add_response("get_health_check", _pin_check(True), {"HealthCheckId": "hc-1234"})
    assert "already pinned unhealthy" in s.ports().dns.point("payments", S)
    s.done()  # and no update_health_check was called: it would have been an unstubbed call
