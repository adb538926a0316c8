"""The reconcile the runbooks print and run (`--reconcile`) after a failover, a switchover and a
failback in AWS (issue 10, points 6 and 7), through the runbooks' real CLI with a fake command
runner at the boundary; and `runbooks.retrack`, which re-points a stack at a rebuilt instance."""

from __future__ import annotations

import io
import json
import shlex
import subprocess

import pytest

from runbooks import failback, failover, retrack, switchover
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from tests.fakes import RunbookEnv
from tests.samples import pair_document

DBS = ("payments", "payments-1")
INSTANCE = "regionpair:database:ReplicatedPostgres$aws:rds/instance:Instance"


def urn(stack: str, db: str) -> str:
    return f"urn:pulumi:{stack}::regionpair::{INSTANCE}::{db}-instance"


@pytest.fixture
def env(tmp_path):
    return RunbookEnv(tmp_path, pair_document(n_databases=2))


def run_with_reconcile(env, runbook) -> tuple[int, dict, list[str], str]:
    ran: list[str] = []

    def runner(cmd, **kw):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    out = io.StringIO()
    code = runbook.main(["--outputs", str(env.doc_path), "--state-dir", str(env.state), "--yes", "--reconcile"],
                        ports_factory=lambda o, c: env.world.ports(env.state / "lock.json"), clock=env.world.clock,
                        stdout=out, reconcile_runner=runner)
    report = json.loads(next((env.state / "reports").glob("*/report.json")).read_text()) \
        if len(list((env.state / "reports").glob("*/report.json"))) == 1 else None
    return code, report, ran, out.getvalue()


def assert_printed_and_reported(ran: list[str], report: dict, printed: str, env) -> None:
    """What people see: the console's closing lines and the markdown report hold every command."""
    assert ran == report["reconcile"]
    tail = printed.split("bring the stacks in line with:", 1)[1]
    assert [line.strip() for line in tail.strip().splitlines()][:len(ran)] == ran
    markdown = next((env.state / "reports").glob("*/report.md")).read_text()
    assert "## Bring the stacks in line" in markdown and all(cmd in markdown for cmd in ran)
    assert all(f"ran: {cmd}" in report["notes"] for cmd in ran)


def stacks_named(cmd: str) -> set[str]:
    words = shlex.split(cmd)
    return {words[i + 1] for i, w in enumerate(words) if w == "--stack"}


def targets(cmd: str) -> list[str]:
    words = shlex.split(cmd)
    return [words[i + 1] for i, w in enumerate(words) if w == "--target"]


def test_after_a_failover_only_dr_is_touched_refresh_first_and_nothing_is_retracked(env):
    code, report, ran, printed = run_with_reconcile(env, failover)
    assert code == EXIT_OK, printed
    assert_printed_and_reported(ran, report, printed, env)
    assert all(stacks_named(c) == {"dr"} for c in ran), "the prod stack (its region may be down) is never named"
    assert ran[0].startswith("pulumi refresh --stack dr") and targets(ran[0]) == [urn("dr", d) for d in DBS]
    assert ran[1:] == ["pulumi config set promoted true --stack dr", "pulumi up --stack dr --yes"]
    assert not [c for c in ran if "retrack" in c or "import" in c or "state delete" in c]
    # what people read: the same commands, shell-quoted (a URN holds a `$`)
    assert "bring the stacks in line with:" in printed and shlex.quote(urn("dr", "payments")) in printed


def test_after_a_switchover_prods_rebuilt_replicas_are_retracked(env):
    code, report, ran, printed = run_with_reconcile(env, switchover)
    assert code == EXIT_OK, printed
    assert_printed_and_reported(ran, report, printed, env)
    rebuilt = [a for a in env.world.actions if a[0] == "rebuild"]
    assert {(a[1], a[2]) for a in rebuilt} == {("us-east-1", d) for d in DBS}, "the fakes rebuilt prod's databases"
    assert ran[:3] == report["reconcile"][:3] and ran[0].startswith("pulumi refresh --stack dr")
    retracks = [shlex.split(c) for c in ran if c.startswith("python -m runbooks.retrack")]
    assert [(w[w.index("--stack") + 1], w[w.index("--region") + 1], w[w.index("--identifier") + 1],
             w[w.index("--urn") + 1]) for w in retracks] == \
        [("prod", "us-east-1", f"prod-{d}", urn("prod", d)) for d in DBS]
    assert ran[3:] == [c for c in ran if c.startswith("python -m runbooks.retrack")], "then prod is retracked"
    assert not [c for c in ran if "pulumi up --stack prod" in c or "state delete" in c or "destroy" in c]


def test_after_a_failback_both_stacks_are_retracked_before_dr_is_declared_a_replica_again(env):
    assert run_with_reconcile(env, failover)[0] == EXIT_OK
    for p in (env.state / "reports").glob("*/report.json"):
        p.unlink()
    for p in (env.state / "reports").glob("*/report.md"):
        p.unlink()
    code, report, ran, printed = run_with_reconcile(env, failback)
    assert code == EXIT_OK, printed
    assert_printed_and_reported(ran, report, printed, env)
    retracked = [(shlex.split(c)[shlex.split(c).index("--stack") + 1], shlex.split(c)[-1])
                 for c in ran if c.startswith("python -m runbooks.retrack")]
    assert retracked == [("prod", urn("prod", d)) for d in DBS] + [("dr", urn("dr", d)) for d in DBS]
    first_up = next(i for i, c in enumerate(ran) if c.startswith("pulumi up") or c.startswith("pulumi config"))
    assert all(c.startswith("python -m runbooks.retrack") for c in ran[:first_up]), "retrack (refresh) first"
    assert ran[-3:] == ["pulumi config set promoted false --stack dr",
                        "pulumi config rm failback_replication --stack dr", "pulumi up --stack dr --yes"]


# ---- runbooks.retrack ------------------------------------------------------------------------

NEW_ID, OLD_ID = "db-NEWNEWNEWNEWNEWNEWNEWNEW", "db-OLDOLDOLDOLDOLDOLDOLDOLD"
URN = urn("prod", "payments")


class FakeRds:
    def __init__(self, resource_id: str | None = NEW_ID):
        self.resource_id = resource_id

    def describe_db_instances(self, DBInstanceIdentifier):
        if self.resource_id is None:
            import botocore.exceptions
            raise botocore.exceptions.ClientError({"Error": {"Code": "DBInstanceNotFound", "Message": "x"}},
                                                  "DescribeDBInstances")
        return {"DBInstances": [{"DBInstanceIdentifier": DBInstanceIdentifier, "DbiResourceId": self.resource_id}]}


class FakePulumi:
    """The pulumi CLI as the tool calls it: export answers a state, import records the file."""

    def __init__(self, state_id: str = OLD_ID, fail: str | None = None):
        self.state = {"version": 3, "deployment": {"resources": [
            {"urn": URN, "type": "aws:rds/instance:Instance", "id": state_id,
             "outputs": {"identifier": "x", "id": state_id, "resourceId": state_id}},
            {"urn": "urn:pulumi:prod::regionpair::aws:route53/record:Record::payments", "type":
             "aws:route53/record:Record", "id": "r", "dependencies": [URN]}]}}
        self.calls: list[list[str]] = []
        self.imported: dict | None = None
        self.fail = fail

    def __call__(self, argv, **kw):
        self.calls.append(argv)
        if self.fail and argv[1] == self.fail:
            return subprocess.CompletedProcess(argv, 255, "", "error: the backend said no")
        if argv[1:3] == ["stack", "export"]:
            return subprocess.CompletedProcess(argv, 0, json.dumps(self.state), "")
        if argv[1:3] == ["stack", "import"]:
            self.imported = json.loads(open(argv[argv.index("--file") + 1]).read())
        return subprocess.CompletedProcess(argv, 0, "", "")


def run_retrack(pulumi, rds=None, urn_=URN):
    out = io.StringIO()
    code = retrack.main(["--stack", "prod", "--region", "us-east-1", "--identifier", "prod-payments", "--urn", urn_],
                        run=pulumi, rds=rds or FakeRds(), out=out)
    return code, out.getvalue()


def test_retrack_points_the_state_at_the_live_instance_and_refreshes_only_it():
    pulumi = FakePulumi()
    code, out = run_retrack(pulumi)
    assert code == EXIT_OK, out
    assert [c[1:3] for c in pulumi.calls] == [["stack", "export"], ["stack", "import"], ["refresh", "--stack"]]
    assert pulumi.calls[-1][-2:] == ["--target", URN] and "--yes" in pulumi.calls[-1]
    resources = pulumi.imported["deployment"]["resources"]
    assert resources[0]["id"] == NEW_ID and resources[1] == pulumi.state["deployment"]["resources"][1]
    assert resources[0]["outputs"] == {"identifier": "x", "id": NEW_ID, "resourceId": NEW_ID}
    assert "now tracks db-NEW" in out and "was db-OLD" in out


def test_retrack_is_idempotent():
    pulumi = FakePulumi(state_id=NEW_ID)
    code, out = run_retrack(pulumi)
    assert code == EXIT_OK and "already tracked" in out
    assert [c[1:3] for c in pulumi.calls] == [["stack", "export"], ["refresh", "--stack"]]


@pytest.mark.parametrize("pulumi, rds, urn_, code, words", [
    (FakePulumi(), FakeRds(None), URN, EXIT_FAILED, "cannot read DB instance prod-payments in us-east-1 (DBInstanceNotFound)"),
    (FakePulumi(), None, urn("prod", "ledger"), EXIT_BAD_INPUT, "has no resource"),
    (FakePulumi(), None, "urn:pulumi:prod::regionpair::aws:route53/record:Record::payments", EXIT_BAD_INPUT,
     "not an aws:rds/instance:Instance"),
    (FakePulumi(fail="stack"), None, URN, EXIT_FAILED, "the backend said no"),
])
def test_retrack_refuses_and_changes_nothing(pulumi, rds, urn_, code, words):
    got, out = run_retrack(pulumi, rds, urn_)
    assert got == code and words in out, out
    assert pulumi.imported is None and not [c for c in pulumi.calls if c[1] == "refresh"]


# ---- the rebuilt replica against what the stacks declare ------------------------------------------


class RecordingRds:
    """Just enough of Clients for RdsControl.rebuild_replica: instances by (region, identifier)."""

    def __init__(self, instances):
        from runbooks.adapters.aws import AwsSettings
        self.settings = AwsSettings()
        self.instances = instances
        self.created: dict | None = None

    def call(self, service, region, operation, **params):
        import botocore.exceptions
        key = (region, params.get("DBInstanceIdentifier"))
        if operation == "describe_db_instances":
            if key not in self.instances:
                raise botocore.exceptions.ClientError({"Error": {"Code": "DBInstanceNotFound", "Message": "-"}},
                                                      "DescribeDBInstances")
            return {"DBInstances": [self.instances[key]]}
        if operation == "modify_db_instance":
            self.instances[(region, params["NewDBInstanceIdentifier"])] = self.instances.pop(key)
            return {}
        if operation == "create_db_instance_read_replica":
            self.created = params
            return {"DBInstance": {}}
        raise AssertionError(operation)


@pytest.mark.parametrize("stack, region, source", [("prod", "us-east-1", "us-west-2"), ("dr", "us-west-2", "us-east-1")])
def test_a_rebuilt_replica_keeps_every_input_whose_change_would_replace_the_database(stack, region, source):
    """What `rebuild_replica` creates under the stack's identifier must match every replacing input the
    stack declares (or inherit it from the source, which has the same), so after retrack the next
    preview replaces no database. The outputs are the dr stack's real exports (both regions)."""
    from components.database import REPLACING_INPUTS
    from contract import outputs as contract
    from runbooks.adapters.aws import RdsControl
    from runbooks.core.clock import FakeClock
    from tests import harness

    doc = contract.from_dict(harness.stack_exports("dr"))
    declared = harness.one(harness.render_stack(stack), "aws:rds/instance:Instance")["inputs"]
    ident = declared["identifier"]
    src = doc.regions[source].databases["payments"]
    rds = RecordingRds({
        (region, ident): {"DBInstanceIdentifier": ident, "DBInstanceClass": declared["instanceClass"], "MultiAZ": True,
                          "StorageType": "gp3", "Endpoint": {"Port": 5432},
                          "DBSubnetGroup": {"DBSubnetGroupName": declared["dbSubnetGroupName"]}},
        (source, src.identifier): {"DBInstanceIdentifier": src.identifier, "DBInstanceArn": src.arn}})
    RdsControl(doc, rds, FakeClock(), sql=None).rebuild_replica(region, "payments", source)
    created = rds.created
    assert created["DBInstanceIdentifier"] == ident
    assert created["KmsKeyId"] == declared["kmsKeyId"], "a different key would replace the database"
    assert created["SourceDBInstanceIdentifier"] == src.arn
    assert (created["DBSubnetGroupName"], created["DBInstanceClass"]) == (declared["dbSubnetGroupName"],
                                                                         declared["instanceClass"])
    # the rest of the replacing inputs the stack declares are inherited from the source (a replica takes
    # the source's engine, master user and database) or not declared at all
    inherited = {"engine", "username", "dbName", "storageEncrypted"}
    assert {k for k in REPLACING_INPUTS if k in declared} - {"identifier", "kmsKeyId"} <= inherited
    prod = harness.one(harness.render_stack("prod"), "aws:rds/instance:Instance")["inputs"]
    assert all(declared.get(k) in (None, prod.get(k)) for k in inherited), "the source has what the stack declares"
