"""The SQL port over the network (runbooks/adapters/aws/sql.py, PsycopgSql) with a fake connection
that records the queries and answers scripted rows; the secret comes from a stubbed Secrets Manager
(botocore Stubber) or from moto's, and a replica without a wal receiver row falls back to RDS's
ReplicaLag metric. psycopg against a real PostgreSQL is exercised by the sandbox adapter's tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from contract import outputs as contract
from runbooks.adapters import aws
from runbooks.core.errors import StepFailed, Unreachable
from tests.contract.aws_helpers import (
    PRIMARY_ARN,
    Stubs,
    described,
    instance,
    ports,
)
from tests.helpers.moto import P, S, closed_port


class ScriptedConn:
    """Answers each query with the rows of the first script key found in it."""

    def __init__(self, script: dict, log: list, fail_on: str | None = None, error: Exception | None = None):
        self.script, self.log, self.fail_on, self.error = script, log, fail_on, error
        self.closed = False

    def execute(self, query, params=None):
        self.log.append((query, params))
        if self.fail_on and self.fail_on in query:
            raise self.error
        rows = next((v for k, v in self.script.items() if k in query), [])

        class Cur:
            def fetchone(self_inner):
                return rows[0] if rows else None

            def fetchall(self_inner):
                return list(rows)
        return Cur()

    def close(self):
        self.closed = True


def sql_with(script, log, secrets=1, **kw):
    s = Stubs()
    sm = s.stub("secretsmanager", S)
    for _ in range(secrets):
        sm.add_response("get_secret_value", {"SecretString": '{"username": "app_admin", "password": "pw-secret"}'},
                        {"SecretId": s.outputs.secondary.databases["payments"].secret_arn})
    conns = []

    def connect(info):
        conns.append(info)
        return ScriptedConn(script, log, **kw)
    return s.ports(connect=connect).sql, conns, s


def test_parse_lsn():
    assert aws.parse_lsn("0/0") == 0
    assert aws.parse_lsn("16/B374D848") == 0x16B374D848
    assert aws.parse_lsn(None) is None


def test_primary_reports_current_lsn_and_its_replicas():
    log = []
    sql, conns, _ = sql_with({"pg_is_in_recovery": [(False,)], "pg_current_wal_lsn": [("1/10",)],
                              "pg_stat_replication": [("dr", "streaming", "async", 0.25)]}, log)
    st = sql.replication(S, "payments")
    assert (st.in_recovery, st.lsn) == (False, (1 << 32) + 0x10)
    assert st.replicas == ({"application_name": "dr", "state": "streaming", "sync_state": "async",
                            "replay_lag_seconds": 0.25},)
    info = conns[0]
    assert (info.host, info.port, info.dbname, info.user, info.sslmode) == (
        "dr-payments.abc.us-west-2.rds.amazonaws.com", 5432, "app", "app_admin", "require")
    assert info.connect_timeout <= 5


def test_streaming_replica_caught_up_has_zero_lag():
    sql, _, _ = sql_with({"pg_is_in_recovery": [(True,)], "pg_last_wal_replay_lsn": [("0/500", "0/500", 40.0)],
                          "pg_stat_wal_receiver": [("streaming", 0.3)]}, [])
    st = sql.replication(S, "payments")
    assert (st.lsn, st.receive_lsn, st.streaming, st.lag_seconds, st.last_contact_age_seconds, st.lag_source) == \
        (0x500, 0x500, True, 0.0, 0.3, "pg_stat_wal_receiver")


def test_replica_behind_what_it_received_reports_replay_age_as_lag():
    sql, _, _ = sql_with({"pg_is_in_recovery": [(True,)], "pg_last_wal_replay_lsn": [("0/400", "0/500", 4.5)],
                          "pg_stat_wal_receiver": [("waiting", 12.0)]}, [])
    st = sql.replication(S, "payments")
    assert (st.streaming, st.lag_seconds, st.last_contact_age_seconds) == (False, 4.5, 12.0)


def test_canary_creates_inserts_and_reads_back():
    log = []
    sql, _, _ = sql_with({"select at from regionpair_canary": [("2026-01-01",)]}, log)
    result = sql.canary_write(S, "payments")
    queries = [q for q, _ in log]
    assert queries[0].startswith("create table if not exists regionpair_canary(id text primary key")
    assert queries[1].startswith("insert into regionpair_canary") and log[1][1] == log[2][1]
    assert "read back from us-west-2/payments" in result


def test_canary_on_a_read_only_replica_fails_the_step():
    sql, _, _ = sql_with({}, [], fail_on="insert", error=psycopg.errors.ReadOnlySqlTransaction("read-only"))
    with pytest.raises(StepFailed, match="takes no write"):
        sql.canary_write(S, "payments")


def test_canary_not_read_back_fails_the_step():
    sql, _, _ = sql_with({}, [])
    with pytest.raises(StepFailed, match="does not return it"):
        sql.canary_write(S, "payments")


def test_rotated_password_is_read_again_once():
    s = Stubs()
    sm = s.stub("secretsmanager", S)
    sm.add_response("get_secret_value", {"SecretString": '{"password": "old"}'})
    sm.add_response("get_secret_value", {"SecretString": '{"password": "new"}'})
    tried = []

    def connect(info):
        tried.append(info.password)
        if info.password == "old":
            raise psycopg.errors.InvalidPassword("password authentication failed for user app_admin")
        return ScriptedConn({"pg_is_in_recovery": [(False,)], "pg_current_wal_lsn": [("0/1",)]}, [])
    assert s.ports(connect=connect).sql.replication(S, "payments").lsn == 1
    assert tried == ["old", "new"]
    s.done()


def test_lost_connection_is_unreachable_and_the_connection_is_closed():
    made = []

    def connect(info):
        made.append(ScriptedConn({}, [], fail_on="pg_is_in_recovery",
                                 error=psycopg.OperationalError("server closed the connection unexpectedly")))
        return made[-1]
    s = Stubs()
    s.stub("secretsmanager", S).add_response("get_secret_value", {"SecretString": '{"password": "pw-secret"}'})
    with pytest.raises(Unreachable, match="connection lost") as exc:
        s.ports(connect=connect).sql.replication(S, "payments")
    assert made[0].closed and "pw-secret" not in str(exc.value)


def test_terminating_client_sessions_counts_what_ended():
    log = []
    sql, _, _ = sql_with({"pg_terminate_backend": [(True,), (True,), (False,)]}, log)
    assert sql.terminate_client_sessions(S, "payments") == 2
    assert "backend_type = 'client backend'" in log[0][0] and "pg_backend_pid()" in log[0][0]


def _dr_reads_prods_secret():
    """The dr replica's outputs name prod's secret (a replica has none of its own until promoted)."""
    from tests.samples import pair_document
    doc = pair_document()
    prod_secret = f"arn:aws:secretsmanager:{P}:123456789012:secret:rds!db-payments-AbCdEf"
    for region in doc["regions"].values():
        region["databases"]["payments"]["secret_arn"] = prod_secret
    return Stubs(doc), prod_secret, prod_secret.replace(f":{P}:", f":{S}:")


def _primary(tried):
    def connect(info):
        tried.append(info.password)
        return ScriptedConn({"pg_is_in_recovery": [(False,)], "pg_current_wal_lsn": [("0/1",)]}, [])
    return connect


def test_password_comes_from_the_secrets_replica_when_its_region_is_down():
    s, prod_secret, replica = _dr_reads_prods_secret()
    s.stub("secretsmanager", P).add_client_error("get_secret_value", "ServiceUnavailable", http_status_code=503,
                                                 expected_params={"SecretId": prod_secret})
    s.stub("secretsmanager", S).add_response(
        "get_secret_value", {"SecretString": '{"username": "app_admin", "password": "pw-replica"}'},
        {"SecretId": replica})
    tried = []
    assert s.ports(connect=_primary(tried)).sql.replication(S, "payments").lsn == 1
    assert tried == ["pw-replica"]
    s.done()


def test_no_replica_of_the_secret_says_how_to_make_one_and_shows_no_password():
    s, prod_secret, replica = _dr_reads_prods_secret()
    s.stub("secretsmanager", P).add_client_error("get_secret_value", "ServiceUnavailable", http_status_code=503)
    s.stub("secretsmanager", S).add_client_error("get_secret_value", "ResourceNotFoundException",
                                                 expected_params={"SecretId": replica})
    tried = []
    with pytest.raises(Unreachable) as err:
        s.ports(connect=_primary(tried)).sql.replication(S, "payments")
    message = str(err.value)
    assert "us-west-2 has no replica of it" in message
    assert f"replicate-secret-to-regions --secret-id {prod_secret}" in message
    assert tried == []  # nothing was tried without a password
    s.done()


def test_a_refusal_in_the_secrets_own_region_is_not_papered_over_by_the_replica():
    s, prod_secret, _ = _dr_reads_prods_secret()
    s.stub("secretsmanager", P).add_client_error("get_secret_value", "AccessDeniedException", http_status_code=400,
                                                 expected_params={"SecretId": prod_secret})
    s.stub("secretsmanager", S)  # no responses: any read of the replica fails the test
    tried = []
    with pytest.raises(aws.AwsCallFailed) as err:
        s.ports(connect=_primary(tried)).sql.replication(S, "payments")
    message = str(err.value)
    assert f"from {prod_secret}: GetSecretValue was denied (AccessDeniedException)" in message
    assert "runbook role's policy" in message
    assert "replica" not in message
    assert tried == []
    s.done()


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
