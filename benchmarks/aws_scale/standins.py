"""What the benchmark puts in place of PostgreSQL and the network: a stand-in answering the SQL
adapter's queries from the model, loopback listeners for the health probe's TCP connect, and the
region pair on moto with the stacks' shape."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from typing import Any, Iterator

from benchmarks.aws_scale.aws_model import Model

P, S = "us-east-1", "us-west-2"



class _Rows:
    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return list(self._rows)



class StandInPostgres:
    """Answers the AWS adapter's SQL (runbooks/adapters/aws/sql.py PsycopgSql) for one database,
    from the model: a replica is in recovery until its modelled promotion has ended."""

    def __init__(self, model: Model, identifier: str, replica: bool):
        self.model, self.identifier, self.replica = model, identifier, replica
        self.canaries: dict[str, float] = {}

    def in_recovery(self) -> bool:
        if not self.replica:
            return False
        started = self.identifier in self.model.promotions
        return not started or self.model.promoting(self.identifier) is not None

    def execute(self, query: str, params: Any = None) -> _Rows:
        q = " ".join(query.split())
        self.model.clock.sleep(0.002)
        if q == "select pg_is_in_recovery()":
            return _Rows([(self.in_recovery(),)])
        if q.startswith("select pg_current_wal_lsn()"):
            return _Rows([("0/3000060",)])
        if "from pg_stat_replication" in q:
            return _Rows([] if self.replica else [("dr", "streaming", "async", 0.1)])
        if q.startswith("select pg_last_wal_replay_lsn()"):
            return _Rows([("0/3000060", "0/3000060", 0.2)])
        if "from pg_stat_wal_receiver" in q:
            return _Rows([("streaming", 0.1)] if self.in_recovery() else [])
        if q.startswith("create table if not exists regionpair_canary"):
            return _Rows([])
        if q.startswith("insert into regionpair_canary"):
            if self.in_recovery():
                import psycopg
                raise psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
            self.canaries[params[0]] = self.model.clock.time()
            return _Rows([])
        if q.startswith("select at from regionpair_canary"):
            return _Rows([(self.canaries[params[0]],)] if params[0] in self.canaries else [])
        if "pg_terminate_backend" in q:
            return _Rows([(True,)] * 3)
        raise AssertionError(f"the PostgreSQL stand-in does not know this query; teach it: {q}")



class SqlSession:
    def __init__(self, server: StandInPostgres):
        self.execute = server.execute

    def close(self) -> None:
        pass



@contextlib.contextmanager
def loopback_listeners(count: int) -> Iterator[list[int]]:
    """``count`` TCP listeners on 127.0.0.1 that accept and close every connection."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                with contextlib.suppress(OSError):
                    conn, _ = key.fileobj.accept()
                    conn.close()

    t = threading.Thread(target=serve, name="listeners", daemon=True)
    t.start()
    try:
        yield [s.getsockname()[1] for s in socks]
    finally:
        stop.set()
        t.join(timeout=2)
        for s in socks:
            s.close()
        sel.close()



@contextlib.contextmanager
def resolve_to_loopback(suffix: str) -> Iterator[None]:
    """Names ending in ``suffix`` (the RDS endpoints) resolve to 127.0.0.1: the health probe's
    TCP connect reaches the loopback listeners."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(suffix):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real



def build_pair(session: Any, n: int, ports: list[int], model: Model) -> tuple[dict, dict[str, StandInPostgres]]:
    from tests.samples import pair_document

    doc = pair_document(n)
    doc["dns"]["strategy"] = "health-check-inversion"
    servers: dict[str, StandInPostgres] = {}
    for region in doc["regions"].values():
        region.pop("streaming", None)
    sgs, topics = {}, {}
    for region, stack in ((P, "prod"), (S, "dr")):
        ec2 = session.client("ec2", region_name=region)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        sg = ec2.create_security_group(GroupName=f"{stack}-db", Description="databases", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "clients (config)"},
                          {"CidrIp": "10.9.0.0/24", "Description": "regionpair:runbook-access (runbook host)"}]}])
        sgs[region] = sg
        topics[region] = session.client("sns", region_name=region).create_topic(Name=f"{stack}-alarms")["TopicArn"]
    rds = {r: session.client("rds", region_name=r) for r in (P, S)}
    names = list(doc["regions"][P]["databases"])
    port = iter(ports)
    for name in names:
        primary = rds[P].create_db_instance(
            DBInstanceIdentifier=f"prod-{name}", Engine="postgres", DBName="app", DBInstanceClass="db.r6g.large",
            MasterUsername="app_admin", MasterUserPassword="bench-only-password", AllocatedStorage=100,
            VpcSecurityGroupIds=[sgs[P]], BackupRetentionPeriod=7)["DBInstance"]
        replica = rds[S].create_db_instance_read_replica(
            DBInstanceIdentifier=f"dr-{name}", SourceDBInstanceIdentifier=primary["DBInstanceArn"],
            DBInstanceClass="db.r6g.large", VpcSecurityGroupIds=[sgs[S]],
            KmsKeyId=doc["regions"][S]["kms_key_arn"])["DBInstance"]
        for region, inst, is_replica in ((P, primary, False), (S, replica, True)):
            secret = session.client("secretsmanager", region_name=region).create_secret(
                Name=f"{inst['DBInstanceIdentifier']}-master",
                SecretString=json.dumps({"username": "app_admin", "password": "bench-only-password"}))["ARN"]
            db = doc["regions"][region]["databases"][name]
            db.update(identifier=inst["DBInstanceIdentifier"], arn=inst["DBInstanceArn"],
                      endpoint=inst["Endpoint"]["Address"], port=next(port), security_group_id=sgs[region],
                      secret_arn=secret, source_arn=primary["DBInstanceArn"] if is_replica else None)
            servers[db["endpoint"]] = StandInPostgres(model, inst["DBInstanceIdentifier"], is_replica)
    for region in (P, S):
        doc["regions"][region]["alarm_topic_arn"] = topics[region]
    session.client("s3", region_name=S).create_bucket(
        Bucket=doc["regions"][S]["storage"]["backups_bucket"], CreateBucketConfiguration={"LocationConstraint": S})
    # the stacks' DNS (components/dns.py): a failover pair per database, every PRIMARY guarded by the
    # one pin check (CALCULATED, threshold 0, disabled: healthy until the runbook inverts it)
    r53 = session.client("route53", region_name=P)
    zone = r53.create_hosted_zone(Name=doc["dns"]["zone_name"], CallerReference="zone")["HostedZone"]["Id"]
    doc["dns"]["zone_id"] = zone.rsplit("/", 1)[-1]
    endpoint = r53.create_health_check(CallerReference="endpoint", HealthCheckConfig={
        "Type": "HTTPS", "FullyQualifiedDomainName": "api.example.internal", "Port": 443, "ResourcePath": "/health",
        "RequestInterval": 30, "FailureThreshold": 3})["HealthCheck"]["Id"]
    pin = r53.create_health_check(CallerReference="pin", HealthCheckConfig={
        "Type": "CALCULATED", "ChildHealthChecks": [endpoint], "HealthThreshold": 0, "Disabled": True,
        "Inverted": False})["HealthCheck"]["Id"]
    changes = []
    for name in names:
        for region, failover in ((P, "PRIMARY"), (S, "SECONDARY")):
            record = {"Name": doc["dns"]["records"][name], "Type": "CNAME", "TTL": doc["dns"]["ttl_seconds"],
                      "SetIdentifier": doc["regions"][region]["dns"]["set_identifier"], "Failover": failover,
                      "ResourceRecords": [{"Value": doc["regions"][region]["databases"][name]["endpoint"]}]}
            if failover == "PRIMARY":
                record["HealthCheckId"] = pin
            changes.append({"Action": "CREATE", "ResourceRecordSet": record})
    r53.change_resource_record_sets(HostedZoneId=doc["dns"]["zone_id"], ChangeBatch={"Changes": changes})
    doc["regions"][P]["dns"]["health_check_id"] = pin
    return doc, servers
