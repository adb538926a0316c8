"""moto in server mode on loopback, and a region pair built in it (RDS primary + cross-region
replica, security groups, Route53, S3, SNS), for the AWS adapter's contract tests; the fixtures are
used through tests/contract/conftest.py.

The server is started once per session; every test resets it and builds the pair afresh, so
tests do not see each other's changes. Credentials and AWS_ENDPOINT_URL are set per test with
monkeypatch, never at import time."""

from __future__ import annotations

import copy
import json
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from contract import outputs as contract
from runbooks.core.clock import FakeClock
from tests.samples import pair_document

P, S = "us-east-1", "us-west-2"


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials and no profile or config file of the machine."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return monkeypatch


@dataclass
class MotoPair:
    endpoint: str
    outputs: contract.Outputs
    doc: dict
    sg: dict[str, str]
    clock: FakeClock
    session: Any
    """One boto3 session for the whole test run: a session loads each service model once."""

    def client(self, service: str, region: str):
        return self.session.client(service, region_name=region)

    def ingress(self, region: str) -> list[dict]:
        group = self.client("ec2", region).describe_security_groups(GroupIds=[self.sg[region]])["SecurityGroups"][0]
        return group["IpPermissions"]

    def tags(self, region: str) -> dict[str, str]:
        group = self.client("ec2", region).describe_security_groups(GroupIds=[self.sg[region]])["SecurityGroups"][0]
        return {t["Key"]: t["Value"] for t in group.get("Tags") or []}


_SESSION: list = []


def shared_session():
    """Built on first use, after the test's environment is set (never at import)."""
    if not _SESSION:
        import boto3
        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


def build_pair(endpoint: str, strategy: str = "health-check-inversion") -> MotoPair:
    session = shared_session()
    doc: dict[str, Any] = copy.deepcopy(pair_document())
    doc["dns"]["strategy"] = strategy
    sgs = {}
    for region, stack in ((P, "prod"), (S, "dr")):
        ec2 = session.client("ec2", region_name=region)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        app = ec2.create_security_group(GroupName=f"{stack}-app", Description="app", VpcId=vpc)["GroupId"]
        sg = ec2.create_security_group(GroupName=f"{stack}-db", Description="db", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "app subnets"},
                          {"CidrIp": "10.9.0.0/24", "Description": "regionpair:runbook-access (runbook host)"}],
             "UserIdGroupPairs": [{"GroupId": app, "Description": "app servers"}]},
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "Ipv6Ranges": [{"CidrIpv6": "fd00::/64"}]},
        ])
        sgs[region] = sg
        sns = session.client("sns", region_name=region)
        topic = sns.create_topic(Name=f"{stack}-alarms")["TopicArn"]
        r = doc["regions"][region]
        r["databases"]["payments"].update(security_group_id=sg)
        r["alarm_topic_arn"] = topic
    # the stacks' shape (components/database.py): the password drawn by Secrets Manager, kept in a
    # prod-owned secret replicated into DR, passed to the primary as MasterUserPassword (never
    # ManageMasterUserPassword, of which RDS makes no read replica); the replica inherits it and the
    # dr stack exports prod's secret ARN for it
    sm = session.client("secretsmanager", region_name=P)
    password = sm.get_random_password(PasswordLength=40, ExcludePunctuation=True)["RandomPassword"]
    secret = sm.create_secret(Name="prod-payments/master", AddReplicaRegions=[{"Region": S}], SecretString=json.dumps(
        {"engine": "postgres", "username": "app_admin", "password": password, "port": 5432}))["ARN"]
    for region in (P, S):
        doc["regions"][region]["databases"]["payments"]["secret_arn"] = secret
    rds1, rds2 = session.client("rds", region_name=P), session.client("rds", region_name=S)
    primary = rds1.create_db_instance(DBInstanceIdentifier="prod-payments", Engine="postgres", DBName="app",
                                      DBInstanceClass="db.t3.micro", MasterUsername="app_admin",
                                      MasterUserPassword=password, AllocatedStorage=20, EngineVersion="16",
                                      AutoMinorVersionUpgrade=True, VpcSecurityGroupIds=[sgs[P]],
                                      BackupRetentionPeriod=7)["DBInstance"]
    replica = rds2.create_db_instance_read_replica(DBInstanceIdentifier="dr-payments",
                                                   SourceDBInstanceIdentifier=primary["DBInstanceArn"],
                                                   DBInstanceClass="db.t3.micro", VpcSecurityGroupIds=[sgs[S]],
                                                   KmsKeyId=doc["regions"][S]["kms_key_arn"])["DBInstance"]
    for region, inst in ((P, primary), (S, replica)):
        db = doc["regions"][region]["databases"]["payments"]
        db.update(identifier=inst["DBInstanceIdentifier"], arn=inst["DBInstanceArn"],
                  endpoint=inst["Endpoint"]["Address"], port=inst["Endpoint"]["Port"])
    doc["regions"][S]["databases"]["payments"]["source_arn"] = primary["DBInstanceArn"]
    s3 = session.client("s3", region_name=S)
    bucket = doc["regions"][S]["storage"]["backups_bucket"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S})
    r53 = session.client("route53", region_name=P)
    zone = r53.create_hosted_zone(Name=doc["dns"]["zone_name"], CallerReference="zone")["HostedZone"]["Id"]
    zone_id = zone.rsplit("/", 1)[-1]
    # the stacks' shape (components/dns.py): an endpoint check that only alarms, and the pin check
    # that guards the PRIMARY record: CALCULATED, threshold 0, disabled (always healthy until inverted)
    endpoint = r53.create_health_check(CallerReference="hc-endpoint", HealthCheckConfig={
        "Type": "TCP", "IPAddress": "10.0.0.10", "Port": 5432, "RequestInterval": 10,
        "FailureThreshold": 3})["HealthCheck"]["Id"]
    hc = r53.create_health_check(CallerReference="hc", HealthCheckConfig={
        "Type": "CALCULATED", "ChildHealthChecks": [endpoint], "HealthThreshold": 0,
        "Disabled": True, "Inverted": False})["HealthCheck"]["Id"]
    name = doc["dns"]["records"]["payments"]
    if strategy == "health-check-inversion":
        changes = [
            {"Action": "CREATE", "ResourceRecordSet": {
                "Name": name, "Type": "CNAME", "SetIdentifier": doc["regions"][P]["dns"]["set_identifier"],
                "Failover": "PRIMARY", "TTL": 60, "HealthCheckId": hc,
                "ResourceRecords": [{"Value": primary["Endpoint"]["Address"]}]}},
            {"Action": "CREATE", "ResourceRecordSet": {
                "Name": name, "Type": "CNAME", "SetIdentifier": doc["regions"][S]["dns"]["set_identifier"],
                "Failover": "SECONDARY", "TTL": 60, "ResourceRecords": [{"Value": replica["Endpoint"]["Address"]}]}},
        ]
    else:
        changes = [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": name, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": primary["Endpoint"]["Address"]}]}}]
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    doc["dns"]["zone_id"] = zone_id
    doc["regions"][P]["dns"]["health_check_id"] = hc
    return MotoPair(endpoint, contract.from_dict(doc), doc, sgs, FakeClock(), session)


def reset(moto_server: str, aws_env) -> str:
    """Empty the moto server and point the test's AWS calls at it; its endpoint."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=60).read()
    aws_env.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture
def moto_empty(moto_server, aws_env):
    """The moto server reset, with nothing built in it: for a test that needs a bucket, not the whole
    pair (building the pair takes seconds). Its endpoint. (Import it where it is used, as moto_pair.)"""
    return reset(moto_server, aws_env)


@pytest.fixture
def moto_pair(moto_server, aws_env):
    return build_pair(reset(moto_server, aws_env))
