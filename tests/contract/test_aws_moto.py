"""The AWS adapters against moto in server mode (real HTTP, real botocore, AWS_ENDPOINT_URL).

What moto emulates is tested here; what it does not (status transitions, promotion in progress,
failing health checkers, conflicting conditional writes, 5xx) is in test_aws_stubber.py."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time

import psycopg
import pytest

from runbooks import adapters
from runbooks.adapters import aws
from runbooks.errors import LockHeld, Unreachable
from stacks import outputs as contract
from tests.helpers.moto import P, S, build_pair, closed_port


class FakeConn:
    """A connection that answers the session-termination query (fencing ends sessions)."""

    def __init__(self, log):
        self.log = log

    def execute(self, query, params=None):
        self.log.append(query)
        rows = [(True,), (True,)] if "pg_terminate_backend" in query else []

        class Cur:
            def fetchall(self_inner):
                return rows
        return Cur()

    def close(self):
        pass


def ports(pair, connect=None):
    return aws.aws_ports(pair.outputs, pair.clock, pair.session, connect=connect)


def normalized(permissions):
    return sorted(aws._rule_key(r) + json.dumps([s.get("Description") for k, _ in aws._SOURCE_KEYS
                                                 for s in r.get(k, [])])
                  for r in aws.flatten_rules(permissions))


def test_factory_picks_the_aws_adapter_and_contacts_nothing(moto_pair):
    p = adapters.ports_for(moto_pair.outputs, moto_pair.clock)
    assert isinstance(p.db, aws.RdsControl) and isinstance(p.lock, aws.S3Lock)
    assert p.db.clients._clients == {}  # no client before the first call
    assert "state_dir" not in p.extras


def test_importing_the_adapter_builds_no_client_and_reads_no_environment():
    code = ("import os; os.environ['AWS_ENDPOINT_URL']='http://127.0.0.1:9'; import runbooks.adapters.aws as a; "
            "import boto3; assert boto3.DEFAULT_SESSION is None; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "ok", out.stderr


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
    rules = [r for r in aws.flatten_rules(before) if not aws._kept(r)]
    ec2.create_tags(Resources=[moto_pair.sg[P]], Tags=aws._encode_rules(rules) + [{"Key": aws.FENCED_TAG, "Value": "true"}])
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


def test_dns_health_check_inversion_pins_and_restores(moto_pair):
    p = ports(moto_pair)
    pin = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (pin["Type"], pin["HealthThreshold"], pin["Disabled"]) == ("CALCULATED", 0, True)  # the stacks' pin check
    assert p.dns.answer("payments") == P
    assert "pinned unhealthy" in p.dns.point("payments", S)
    assert p.dns.answer("payments") == S
    hc = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (hc["Disabled"], hc["Inverted"]) == (True, True)
    assert "restored" in p.dns.point("payments", P)
    assert p.dns.answer("payments") == P
    # restored means disabled and not inverted (always healthy), never enabled: no check moves it on its own
    hc = moto_pair.client("route53", P).get_health_check(
        HealthCheckId=moto_pair.outputs.primary.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    assert (hc["Disabled"], hc["Inverted"]) == (True, False)


def test_dns_record_upsert(moto_server, aws_env):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    pair = build_pair(moto_server, strategy="record-upsert")
    p = ports(pair)
    assert p.dns.answer("payments") == P
    assert "TTL 60 s" in p.dns.point("payments", S)
    assert p.dns.answer("payments") == S
    sets = pair.client("route53", P).list_resource_record_sets(HostedZoneId=pair.outputs.dns.zone_id)["ResourceRecordSets"]
    cname = [r for r in sets if r["Type"] == "CNAME"]
    assert cname[0]["ResourceRecords"] == [{"Value": pair.outputs.secondary.databases["payments"].endpoint}]


def test_dns_zone_is_found_by_name_when_the_outputs_have_no_zone_id(moto_pair):
    doc = copy.deepcopy(moto_pair.doc)
    doc["dns"]["zone_id"] = None
    p = aws.aws_ports(contract.from_dict(doc), moto_pair.clock, moto_pair.session)
    assert p.dns.answer("payments") == P and p.dns.zone_id() == moto_pair.outputs.dns.zone_id


def test_lock_conditional_put_refuses_a_second_run_and_releases_only_its_own(moto_pair):
    lock = ports(moto_pair).lock
    info = {"run_id": "r1", "runbook": "failover", "who": "alice", "since": "2026-01-01T00:00:00Z"}
    assert lock.acquire(info) == "lock taken"
    assert lock.acquire(info) == "lock already held by this run"
    with pytest.raises(LockHeld) as held:
        lock.acquire({**info, "run_id": "r2", "who": "bob"})
    assert held.value.holder["who"] == "alice" and held.value.holder["host"] == socket.gethostname()
    lock.release("r2")  # not the holder: nothing happens
    assert lock.holder()["run_id"] == "r1"
    lock.release("r1")
    assert lock.holder() is None


def test_lock_takeover_by_the_crashed_runs_rerun_and_break_lock(moto_pair):
    lock = ports(moto_pair).lock
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crashed = {"run_id": "r1", "runbook": "failover", "who": "alice", "since": "t0", "host": socket.gethostname(),
               "pid": dead.pid}
    s3 = moto_pair.client("s3", S)
    s3.put_object(Bucket=moto_pair.outputs.secondary.storage.backups_bucket, Key=lock.key, Body=json.dumps(crashed))
    with pytest.raises(LockHeld):
        lock.acquire({"run_id": "r2", "runbook": "failover", "who": "bob", "since": "t1"})
    assert "taken over from the crashed run" in lock.acquire({"run_id": "r1", "runbook": "failover", "who": "alice",
                                                             "since": "t1"})
    assert lock.holder()["pid"] == os.getpid()
    assert "broken by --break-lock" in lock.acquire({"run_id": "r3", "runbook": "failback", "who": "carol",
                                                    "since": "t2"}, break_lock=True)
    assert lock.holder()["run_id"] == "r3"


def test_notifier_publishes_without_secrets_dr_topic_first(moto_pair):
    sqs, sns = moto_pair.client("sqs", S), moto_pair.client("sns", S)
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=moto_pair.outputs.secondary.alarm_topic_arn, Protocol="sqs", Endpoint=arn)
    p = ports(moto_pair)
    assert [r for r, _ in p.notifier.topics()] == [S, P]
    p.notifier.notify("failover started\n", "connecting with password=hunter2-moto to dr-payments")
    body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert body["Subject"] == "failover started " and "hunter2" not in body["Message"]


def test_health_region_and_database(moto_pair):
    doc = copy.deepcopy(moto_pair.doc)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    doc["regions"][P]["databases"]["payments"].update(endpoint="127.0.0.1", port=listener.getsockname()[1])
    doc["regions"][S]["databases"]["payments"].update(endpoint="127.0.0.1", port=closed_port())
    try:
        p = aws.aws_ports(contract.from_dict(doc), moto_pair.clock, moto_pair.session)
        assert p.health.region(P).healthy and "RDS API answers" in p.health.region(P).sentence
        assert p.health.database(P, "payments").healthy
        assert not p.health.database(S, "payments").healthy
    finally:
        listener.close()


def test_secret_is_read_from_secrets_manager_and_never_shown(moto_pair):
    seen = []

    def connect(info):
        seen.append(info)
        raise psycopg.OperationalError("could not connect to server: Connection refused")
    p = ports(moto_pair, connect=connect)
    with pytest.raises(Unreachable) as exc:
        p.sql.replication(S, "payments")
    secret = moto_pair.doc["regions"][P]["databases"]["payments"]["secret_arn"]
    password = json.loads(moto_pair.client("secretsmanager", P).get_secret_value(SecretId=secret)["SecretString"])["password"]
    assert seen[0].password == password and seen[0].sslmode == "require"
    assert password not in repr(seen[0]) and password not in str(exc.value)


def test_the_stacks_password_design_on_moto_replica_of_a_secret_password_read_in_dr_when_prod_is_down(moto_pair):
    """The stacks' shape, seen by moto's own validation: the primary's password is a stack-owned secret
    (not ManageMasterUserPassword), the cross-region replica of it exists, and the secret has its
    replica in DR; with prod's Secrets Manager unreachable the runbooks read the DR replica."""
    prod = moto_pair.doc["regions"][P]["databases"]["payments"]
    primary = moto_pair.client("rds", P).describe_db_instances(DBInstanceIdentifier="prod-payments")["DBInstances"][0]
    replica = moto_pair.client("rds", S).describe_db_instances(DBInstanceIdentifier="dr-payments")["DBInstances"][0]
    assert "MasterUserSecret" not in primary, "RDS manages no password here: it could not replicate the source"
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    described = moto_pair.client("secretsmanager", P).describe_secret(SecretId=prod["secret_arn"])
    assert [r["Region"] for r in described["ReplicationStatus"]] == [S]
    dr_copy = contract.secret_replica_arn(prod["secret_arn"], S)
    in_dr = json.loads(moto_pair.client("secretsmanager", S).get_secret_value(SecretId=dr_copy)["SecretString"])
    assert in_dr["username"] == "app_admin" and len(in_dr["password"]) == 40

    seen = []

    def connect(info):
        seen.append(info.password)
        raise psycopg.OperationalError("could not connect to server: Connection refused")
    p = ports(moto_pair, connect=connect)
    import boto3
    down = boto3.session.Session().client("secretsmanager", region_name=P,
                                          endpoint_url=f"http://127.0.0.1:{closed_port()}",
                                          config=p.sql.clients.settings.botocore_config())
    p.sql.clients.use("secretsmanager", P, down)  # prod's region does not answer
    with pytest.raises(Unreachable, match="does not accept connections"):
        p.sql.replication(S, "payments")
    assert seen == [in_dr["password"]], "the password came from the DR replica of prod's secret"


def test_unreachable_region_fails_fast(moto_pair, aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    p = ports(moto_pair)
    t0 = time.monotonic()
    d = p.db.describe(P, "payments")
    assert (d.status, d.role) == ("unreachable", "unknown")
    with pytest.raises(Unreachable, match="rds in us-east-1 did not answer"):
        p.db.fence(P, "payments")
    assert not p.health.region(P).healthy
    with pytest.raises(Unreachable):
        p.lock.acquire({"run_id": "r1", "runbook": "failover", "who": "a", "since": "t"})
    assert time.monotonic() - t0 < 10
