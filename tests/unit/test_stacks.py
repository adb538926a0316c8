"""Both stacks' real program under mocks: the resource graph against committed snapshots, the
exported outputs contract, promotion in place, and the checks the dr stack makes on prod."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path

import pytest

from contract import outputs
from stacks.config_reader import ConfigError
from stacks.secondary import ProdMismatch
from tests import harness
from tests.harness import of_type, one

SNAPSHOTS = Path(__file__).parent / "snapshots"
STACKS = ("prod", "dr")


@pytest.mark.parametrize("stack", STACKS)
def test_resource_graph_matches_the_committed_snapshot(stack):
    harness.check_snapshot(SNAPSHOTS / f"{stack}.json", harness.render_stack(stack), f"the {stack} stack")


def test_rendering_is_deterministic():
    again = harness.render("prod")
    assert again.resources == harness.render_stack("prod")


@pytest.mark.parametrize("stack", STACKS)
def test_every_cloud_resource_has_an_explicit_provider_and_a_component_parent(stack):
    for r in harness.render_stack(stack):
        if r["type"].startswith("aws:"):
            assert r["provider"] in ("aws-us-east-1", "aws-us-west-2"), r["name"]
            assert r["parent"] is not None, r["name"]
            assert r["name"].startswith(f"{r['parent']}-"), r["name"]


def test_prod_exports_its_own_region_as_the_contract():
    doc = outputs.from_dict(harness.stack_exports("prod"))
    assert (doc.schema_version, doc.project, doc.stack, doc.target, doc.sandbox_dir) == (1, "regionpair", "prod", "aws", None)
    assert set(doc.regions) == {"us-east-1"}
    region = doc.primary
    db = region.databases["payments"]
    assert (db.role, db.port, db.source_arn) == ("primary", 5432, None)
    assert db.secret_arn.startswith("arn:aws:secretsmanager:us-east-1:")
    assert region.dns.failover == "PRIMARY" and region.dns.health_check_id
    assert region.streaming.subnet_ids and region.streaming.security_group_ids
    assert doc.rto_budget.total_seconds == 10 * 3 + 60 + 300 and doc.rto_budget.within_objective


def test_dr_exports_the_whole_pair_with_prods_region_as_read():
    prod = harness.stack_exports("prod")
    dr = harness.stack_exports("dr")
    assert set(dr) == {"schema_version", "project", "stack", "target", "sandbox_dir", "objectives", "rto_budget", "dns",
                       "backup_policy", "regions"}
    doc = outputs.from_dict(dr).require_pair()
    assert doc.regions["us-east-1"] == outputs.from_dict(prod).regions["us-east-1"]
    replica = doc.secondary.databases["payments"]
    assert replica.role == "replica"
    assert replica.source_arn == doc.primary.databases["payments"].arn
    # a replica's password is its primary's: the runbooks read prod's secret (or its replica in DR)
    assert replica.secret_arn == doc.primary.databases["payments"].secret_arn
    assert doc.secondary.streaming.replicator_arn and doc.secondary.runbook_role_arn
    merged = outputs.merge(outputs.from_dict(prod), doc)
    assert merged.require_pair().secondary.name == "us-west-2"


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_any_input_or_export(stack):
    text = json.dumps(harness.stack_exports(stack)) + json.dumps(harness.render_stack(stack))
    for r in harness.render_stack(stack):
        for key in {"password", "masterPassword", "secretString"} & set(r["inputs"]):
            # only the generated master password, and only as a secret Output (encrypted in state)
            assert set(r["inputs"][key]) == {"secret"}, (r["name"], key)
    exported = json.dumps(harness.stack_exports(stack))
    for r in harness.render_stack(stack):
        if "password" in r["inputs"]:
            assert r["inputs"]["password"]["secret"] not in exported, "the password is never an output"
    assert "BEGIN RSA PRIVATE KEY" not in text


def test_dr_graph_has_every_cross_region_link():
    dr = harness.render_stack("dr")
    prod = harness.stack_exports("prod")["regions"]["us-east-1"]
    replica = one(dr, "aws:rds/instance:Instance", "payments-instance")["inputs"]
    assert replica["replicateSourceDb"] == prod["databases"]["payments"]["arn"]
    assert replica["kmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    backups = one(dr, "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert backups["inputs"]["sourceDbInstanceArn"] == prod["databases"]["payments"]["arn"]
    assert backups["provider"] == "aws-us-west-2"
    repl = one(dr, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert repl["provider"] == "aws-us-east-1" and repl["inputs"]["bucket"] == prod["storage"]["data_bucket"]
    replicator = one(dr, "aws:msk/replicator:Replicator")["inputs"]
    assert replicator["replicationInfoList"]["sourceKafkaClusterArn"] == prod["streaming"]["cluster_arn"]
    assert replicator["kafkaClusters"][0]["vpcConfig"]["subnetIds"] == prod["streaming"]["subnet_ids"]
    record = one(dr, "aws:route53/record:Record")["inputs"]
    assert record["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    alarms = {(a["inputs"]["namespace"], a["inputs"]["metricName"]): a
              for a in of_type(dr, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["AWS/RDS", "ReplicaLag"]["inputs"]["threshold"] == 150  # half the RPO of 300 s
    assert alarms["AWS/Kafka", "ReplicationLatency"]["inputs"]["threshold"] == 150_000
    # S3 replication is alarmed on in the destination's region (where S3 publishes the metrics), per rule
    rule = {"SourceBucket": prod["storage"]["data_bucket"], "RuleId": "primary-to-dr",
            "DestinationBucket": one(dr, "aws:s3/bucket:Bucket", "data-bucket")["inputs"]["bucket"]}
    assert repl["inputs"]["rules"][0]["id"] == rule["RuleId"]
    for metric in ("ReplicationLatency", "OperationsFailedReplication"):
        alarm = alarms["AWS/S3", metric]
        assert alarm["provider"] == "aws-us-west-2" and alarm["inputs"]["dimensions"] == rule, metric
    param = one(dr, "aws:ssm/parameter:Parameter", "kafka-bootstrap")["inputs"]
    assert param["value"]["secret"] == prod["streaming"]["bootstrap_brokers"]  # clients start on the primary


def test_prod_graph_has_the_primary_record_guarded_and_alarmed():
    prod = harness.render_stack("prod")
    record = one(prod, "aws:route53/record:Record")["inputs"]
    hc = one(prod, "aws:route53/healthCheck:HealthCheck", "dns-health")["inputs"]
    assert record["failoverRoutingPolicies"] == [{"type": "PRIMARY"}] and record["healthCheckId"]
    assert (hc["requestInterval"], hc["failureThreshold"]) == (10, 3)
    assert record["ttl"] == 60
    assert not of_type(prod, "aws:msk/replicator:Replicator")
    assert not of_type(prod, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    backups = one(prod, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "backups-object-lock")["inputs"]
    assert backups["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 30}


def test_promoted_dr_stack_promotes_in_place_and_replaces_nothing():
    before = {r["urn"]: r for r in harness.render_stack("dr")}
    promoted = harness.render("dr", overrides={"promoted": True})
    after = {r["urn"]: r for r in promoted.resources}
    (urn,) = [u for u, r in before.items() if r["type"] == "aws:rds/instance:Instance"]
    assert urn in after, "the promoted database must keep the replica's URN"
    changed = {k for k in set(before[urn]["inputs"]) | set(after[urn]["inputs"])
               if before[urn]["inputs"].get(k) != after[urn]["inputs"].get(k)}
    assert changed == {"replicateSourceDb", "skipFinalSnapshot", "finalSnapshotIdentifier"}
    stateful = ("aws:rds/instance:Instance", "aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:msk/cluster:Cluster")
    for u, r in before.items():
        if r["type"] in stateful:
            assert u in after, f"{r['name']} would be deleted by the promotion"
    removed = {before[u]["type"] for u in set(before) - set(after)}
    assert removed <= {"aws:cloudwatch/metricAlarm:MetricAlarm"}, removed  # only the replica-lag alarm goes
    doc = outputs.from_dict(promoted.exports)
    assert doc.secondary.databases["payments"].role == "primary"
    assert doc.secondary.databases["payments"].source_arn is None
    assert doc.secondary.databases["payments"].secret_arn.startswith("arn:aws:secretsmanager:us-west-2:")


def test_promoted_dr_stack_keeps_primary_to_dr_replication_stopped():
    """`pulumi up -s dr` after a failover (the reconcile command) must not restart what the runbook
    stopped: the old primary's topics and consumer offsets copied over DR's, its bucket into DR's."""
    running = one(harness.render_stack("dr"), "aws:msk/replicator:Replicator")["inputs"]["replicationInfoList"]
    assert "topicsToExcludes" not in running["topicReplications"][0]
    promoted = harness.render("dr", overrides={"promoted": True}).resources
    info = one(promoted, "aws:msk/replicator:Replicator")["inputs"]["replicationInfoList"]
    assert info["topicReplications"][0]["topicsToExcludes"] == [".*"]
    assert info["consumerGroupReplications"][0]["consumerGroupsToExcludes"] == [".*"]
    # the S3 rule lives on prod's bucket, in the region that may be down: declared unchanged, and its
    # live rules (the runbook disabled it) ignored, so `pulumi up -s dr` never calls that region for it
    rule = one(promoted, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")["inputs"]["rules"][0]
    assert rule["status"] == "Enabled"
    (config,) = [r for r in harness.LAST["registrations"]
                 if r["type"] == "aws:s3/bucketReplicationConfig:BucketReplicationConfig"]
    assert config["ignore_changes"] == ["rules"]
    from components import streaming
    from runbooks.adapters.aws import msk as aws_streams
    assert aws_streams.STOP_PATTERN == streaming.STOP_PATTERN  # what the runbook reads as "stopped"


def test_failback_replication_declares_the_reverse_replicator_in_prods_region():
    prod = harness.stack_exports("prod")["regions"]["us-east-1"]
    rendered = harness.render("dr", overrides={"promoted": True, "failback_replication": True})
    replicators = {r["name"]: r for r in of_type(rendered.resources, "aws:msk/replicator:Replicator")}
    assert set(replicators) == {"replicator-replicator", "failback-replicator-replicator"}
    reverse = replicators["failback-replicator-replicator"]
    assert reverse["provider"] == "aws-us-east-1"  # a replicator lives in the region it writes into
    info = reverse["inputs"]["replicationInfoList"]
    assert info["targetKafkaClusterArn"] == prod["streaming"]["cluster_arn"]
    assert info["sourceKafkaClusterArn"].startswith("arn:aws:kafka:us-west-2:")
    assert info["topicReplications"][0]["startingPosition"] == {"type": "EARLIEST"}
    assert "topicsToExcludes" not in info["topicReplications"][0]
    # both replicators are cross-region: no security groups for the source cluster, the target's only
    # (MSK Developer Guide, MSK Replicator "Network requirements")
    for rep, target_groups in ((replicators["replicator-replicator"], None),
                               (reverse, prod["streaming"]["security_group_ids"])):
        source, target = rep["inputs"]["kafkaClusters"]
        assert "securityGroupsIds" not in source["vpcConfig"], rep["name"]
        assert target["vpcConfig"]["securityGroupsIds"], rep["name"]
        if target_groups is not None:
            assert target["vpcConfig"]["securityGroupsIds"] == list(target_groups)
    doc = outputs.from_dict(rendered.exports)
    arn = doc.secondary.streaming.failback_replicator_arn
    assert arn and arn.startswith("arn:aws:kafka:us-east-1:")
    policies = " ".join(json.dumps(r["inputs"]) for r in of_type(rendered.resources, "aws:iam/rolePolicy:RolePolicy")
                        if "runbooks" in r["name"])
    assert arn in policies, "the runbook role cannot update the failback replicator"
    assert not of_type(harness.render("dr", overrides={"promoted": True}).resources, "aws:msk/replicator:Replicator")[1:]


def test_failback_replication_declares_the_batch_replication_role_and_exports_it():
    """The failback seeds prod's bucket with S3 Batch Replication of DR's: the role exists only with
    the reverse flows (failback_replication), replicates DR's data bucket only, writes its reports to
    DR's backups bucket, and is the one role the runbook role may pass to Batch Operations."""
    rendered = harness.render("dr", overrides={"promoted": True, "failback_replication": True})
    doc = outputs.from_dict(rendered.exports).require_pair()
    dr = doc.secondary
    batch = dr.storage.batch_replication
    assert batch is not None and doc.primary.storage.batch_replication is None
    assert (batch.report_bucket, batch.report_prefix) == (dr.storage.backups_bucket, "regionpair/batch-replication")
    role = one(rendered.resources, "aws:iam/role:Role", "data-batch-replication-role")
    assert role["provider"] == "aws-us-west-2" and role["parent"] == "data-batch-replication"
    assert batch.role_arn.startswith(f"arn:aws:iam::{harness.ACCOUNT}:role/data-batch-replication-role")
    policy = json.loads(one(rendered.resources, "aws:iam/rolePolicy:RolePolicy",
                            "data-batch-replication-policy")["inputs"]["policy"])
    (initiate,) = [s for s in policy["Statement"] if s["Action"] == ["s3:InitiateReplication"]]
    assert initiate["Resource"] == [f"{dr.storage.data_bucket_arn}/*"]
    (write,) = [s for s in policy["Statement"] if s["Action"] == ["s3:PutObject"]]
    assert write["Resource"] == [f"arn:aws:s3:::{dr.storage.backups_bucket}/regionpair/batch-replication/*"]
    runbooks = json.loads(one(rendered.resources, "aws:iam/rolePolicy:RolePolicy",
                              "runbooks-policy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in runbooks["Statement"]}
    assert by_sid["PassBatchReplicationRole"]["Resource"] == [batch.role_arn]
    assert by_sid["WatchBatchReplicationJobs"]["Resource"] == [f"arn:aws:s3:us-west-2:{harness.ACCOUNT}:job/*"]
    assert "CreateBatchReplicationJobs" in by_sid and "FindBatchReplicationJobs" in by_sid

    for overrides in ({}, {"promoted": True}):  # not declared ahead of need
        plain = harness.render("dr", overrides=overrides)
        assert outputs.from_dict(plain.exports).secondary.storage.batch_replication is None
        assert not [r for r in plain.resources if "batch-replication" in r["name"]]
        policy = one(plain.resources, "aws:iam/rolePolicy:RolePolicy", "runbooks-policy")["inputs"]["policy"]
        assert "s3:CreateJob" not in policy and "batchoperations" not in policy


def test_each_application_gets_its_own_bootstrap_parameter_that_the_failover_moves():
    apps = {"streaming": {"applications": ["orders", "ledger"]}}
    prod = harness.render("prod", overrides=apps)
    wanted = ["/regionpair/kafka/bootstrap-brokers", "/regionpair/kafka/ledger/bootstrap-brokers",
              "/regionpair/kafka/orders/bootstrap-brokers"]
    prod_params = {r["inputs"]["name"]: r for r in of_type(prod.resources, "aws:ssm/parameter:Parameter")
                   if "/kafka/" in r["inputs"]["name"]}
    assert sorted(prod_params) == wanted
    assert all(r["inputs"]["value"] == prod_params[wanted[0]]["inputs"]["value"] for r in prod_params.values())
    assert outputs.from_dict(prod.exports).primary.streaming.client_parameters == tuple(wanted)

    dr = harness.render("dr", overrides=apps, stack_outputs={"organization/regionpair/prod": prod.exports})
    doc = outputs.from_dict(dr.exports)
    assert doc.secondary.streaming.client_parameters == tuple(wanted)
    dr_params = sorted(r["inputs"]["name"] for r in of_type(dr.resources, "aws:ssm/parameter:Parameter")
                       if "/kafka/" in r["inputs"]["name"])
    assert dr_params == wanted
    policy = json.loads(one(dr.resources, "aws:iam/rolePolicy:RolePolicy", "runbooks-policy")["inputs"]["policy"])
    granted = {arn for st in policy["Statement"] if "ssm:PutParameter" in st["Action"] for arn in st["Resource"]}
    for region in ("us-east-1", "us-west-2"):
        for name in wanted:
            assert any(a.endswith(f":{region}:{a.split(':')[4]}:parameter{name}") for a in granted), (region, name)


def test_rto_budget_over_the_objective_warns():
    rendered = harness.render("prod", overrides={"objectives": {"rto_seconds": 300, "rpo_seconds": 300}})
    assert rendered.exports["rto_budget"]["within_objective"] is False
    assert any("RTO budget 390 s exceeds the declared RTO of 300 s" in w for w in rendered.warnings), rendered.warnings
    assert harness.stack_warnings("prod") == []


def test_bad_config_fails_before_any_resource_is_declared():
    with pytest.raises(ConfigError) as err:
        harness.render("prod", overrides={"databases": [{"name": "payments", "instance_class": "db.r6g.large",
                                                         "engine_version": "16", "allocated_storage_gb": 200,
                                                         "backup_retention_days": 3}]})
    assert err.value.key == "databases[0].backup_retention_days"
    assert harness.LAST["registrations"] == []


def _prod_exports_with(mutate):
    exports = copy.deepcopy(harness.stack_exports("prod"))
    mutate(exports)
    return {"organization/regionpair/prod": exports}


@pytest.mark.parametrize("mutate, message", [
    (lambda e: e["regions"]["us-east-1"]["databases"].clear(), "no database"),
    (lambda e: e["regions"]["us-east-1"]["databases"].update(
        ledger=copy.deepcopy(e["regions"]["us-east-1"]["databases"]["payments"])) or
     e["dns"]["records"].update(ledger="ledger.payments.example.com"), "have no replica here"),
    (lambda e: e["regions"].update({"eu-west-1": e["regions"].pop("us-east-1")}), "primary_region is us-east-1"),
    (lambda e: e["regions"]["us-east-1"]["streaming"].update(subnet_ids=[]), "Kafka network"),
    (lambda e: e["dns"].update(ttl_seconds=300), "DNS TTL"),
    (lambda e: e["regions"]["us-east-1"]["databases"]["payments"].update(username="other"), "db_name/username"),
    (lambda e: e.pop("regions"), "run `pulumi up -s prod` first"),
    # the runbook role (dr's) grants the parameters of both regions: the lists must agree
    (lambda e: e["regions"]["us-east-1"]["streaming"].update(
        client_parameters=["/regionpair/kafka/bootstrap-brokers", "/regionpair/kafka/orders/bootstrap-brokers"]),
     "streaming.applications equal in both stacks"),
])
def test_dr_refuses_prod_exports_that_do_not_fit(mutate, message):
    # the check runs in an apply (prod's exports are only known then); the engine reports the
    # resource that could not be declared, caused by the mismatch
    with pytest.raises(Exception) as err:
        harness.render("dr", stack_outputs=_prod_exports_with(mutate))
    chain, exc = [], err.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    mismatches = [e for e in chain if isinstance(e, ProdMismatch)]
    assert mismatches, f"no ProdMismatch in {chain!r}"
    assert message in str(mismatches[0])


def test_main_module_picks_the_program_by_role():
    main = str(harness.ROOT / "__main__.py")
    for stack, region, role in (("prod", "us-east-1", "primary"), ("dr", "us-west-2", "secondary")):
        stack_outputs = None if stack == "dr" else {}
        rendered = harness.render(stack, stack_outputs=stack_outputs, program=lambda: runpy.run_path(main))
        assert rendered.resources == harness.render_stack(stack)
        assert outputs.from_dict(rendered.exports).regions[region].role == role


def test_a_drill_stack_is_destroyable_and_uses_its_own_record_names():
    """`ephemeral: true` (set only by `runbooks.drill --target stacks`): no deletion protection, no
    final snapshot, no compliance lock, buckets emptied on destroy, and never production's names."""
    import yaml
    dns = yaml.safe_load(open(harness.ROOT / "Pulumi.prod.yaml"))["config"]["regionpair:dns"]
    drill = harness.render("prod", overrides={"ephemeral": True, "dns": dict(dns, record_prefix="drill-42-")})
    (db,) = of_type(drill.resources, "aws:rds/instance:Instance")
    assert db["inputs"]["deletionProtection"] is False and db["inputs"]["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in db["inputs"]
    # the next drill reuses the secret's name: no recovery window holding it
    assert one(drill.resources, "aws:secretsmanager/secret:Secret")["inputs"]["recoveryWindowInDays"] == 0
    assert one(harness.render_stack("prod"), "aws:secretsmanager/secret:Secret")["inputs"]["recoveryWindowInDays"] == 30
    assert all(b["inputs"]["forceDestroy"] is True for b in of_type(drill.resources, "aws:s3/bucket:Bucket"))
    assert not of_type(drill.resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    records = [r["inputs"]["name"] for r in of_type(drill.resources, "aws:route53/record:Record")]
    assert records and all(name.startswith("drill-42-") for name in records)
    assert outputs.from_dict(drill.exports).dns.records["payments"].startswith("drill-42-payments.")
    # and the real stack keeps every protection
    (real,) = of_type(harness.render_stack("prod"), "aws:rds/instance:Instance")
    assert real["inputs"]["deletionProtection"] is True and real["inputs"]["skipFinalSnapshot"] is False


def test_prod_stack_leaves_the_health_check_pin_to_the_runbooks():
    """The real prod program, not only the component: after a failover by health-check inversion,
    `pulumi up -s prod` must not reset the pin check's inversion (that would send traffic back)."""
    harness.render("prod")
    checks = {r["name"]: r["ignore_changes"] for r in harness.LAST["registrations"]
              if r["type"] == "aws:route53/healthCheck:HealthCheck"}
    assert checks == {"dns-health": [], "dns-pin": ["invertHealthcheck"]}


def test_runbook_cidrs_reach_the_database_security_group_of_each_stack():
    import yaml
    for stack in STACKS:
        network = yaml.safe_load(open(harness.ROOT / f"Pulumi.{stack}.yaml"))["config"]["regionpair:network"]
        rendered = harness.render(stack, overrides={"network": dict(network, runbook_cidrs=["10.9.0.10/32"])})
        rules = [r for r in of_type(rendered.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                 if r["inputs"]["description"].startswith("regionpair:runbook-access")]
        assert [(r["name"], r["inputs"]["cidrIpv4"], r["inputs"]["fromPort"]) for r in rules] == [
            ("network-db-5432-runbooks-10-9-0-10-32", "10.9.0.10/32", 5432)], stack
    # the committed stacks name no runbook host: nothing is kept through a fence there
    assert not [r for r in harness.render_stack("prod") if "runbooks-" in r["name"]]


def test_both_stacks_export_the_backup_policy_from_config():
    for stack in STACKS:
        doc = outputs.from_dict(harness.stack_exports(stack))
        assert (doc.backup_policy.snapshot_retention_days, doc.backup_policy.snapshot_keep_newest) == (90, 3), stack
    import yaml
    backups = yaml.safe_load(open(harness.ROOT / "Pulumi.prod.yaml"))["config"]["regionpair:backups"]
    rendered = harness.render("prod", overrides={"backups": dict(backups, snapshot_retention_days=14,
                                                                 snapshot_keep_newest=5)})
    policy = outputs.from_dict(rendered.exports).backup_policy
    assert (policy.snapshot_retention_days, policy.snapshot_keep_newest) == (14, 5)


def test_dr_runbook_role_may_restore_and_delete_only_the_runbooks_own_backups():
    policy = json.loads(one(harness.render_stack("dr"), "aws:iam/rolePolicy:RolePolicy",
                            "runbooks-policy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert sorted(by_sid["DeleteOnlyVerifyBackupTemporaryInstances"]["Resource"]) == [
        f"arn:aws:rds:{r}:{harness.ACCOUNT}:db:verify-payments-*" for r in ("us-east-1", "us-west-2")]
    assert sorted(by_sid["DeleteOnlySnapshotRunbookSnapshots"]["Resource"]) == [
        f"arn:aws:rds:{r}:{harness.ACCOUNT}:snapshot:regionpair-*" for r in ("us-east-1", "us-west-2")]


def test_each_region_exports_a_writer_parameter_that_starts_on_the_primarys_bucket():
    """With storage.writer_parameter in both regions the runbooks' S3 lane turns on in AWS
    (runbooks/adapters/aws/wiring.py: aws_ports); writers start on prod's data bucket in both regions."""
    prod_bucket = harness.stack_exports("prod")["regions"]["us-east-1"]["storage"]["data_bucket"]
    doc = outputs.from_dict(harness.stack_exports("dr"))
    assert {r.storage.writer_parameter for r in doc.regions.values()} == {"/regionpair/s3/writer-bucket"}
    for stack in STACKS:
        (param,) = [r for r in of_type(harness.render_stack(stack), "aws:ssm/parameter:Parameter")
                    if r["inputs"]["name"] == "/regionpair/s3/writer-bucket"]
        assert param["inputs"]["value"] == {"secret": prod_bucket}, stack
    promoted = harness.render("dr", overrides={"promoted": True})
    (param,) = [r for r in of_type(promoted.resources, "aws:ssm/parameter:Parameter")
                if r["inputs"]["name"] == "/regionpair/s3/writer-bucket"]
    assert param["inputs"]["value"] == {"secret": doc.regions["us-west-2"].storage.data_bucket}
    harness.render("dr")
    regs = [r for r in harness.LAST["registrations"] if r["type"] == "aws:ssm/parameter:Parameter"]
    assert len(regs) == 2 and all(r["ignore_changes"] == ["value"] for r in regs)  # bootstrap and writers


def test_dr_runbook_role_may_move_writers_in_both_regions():
    policy = json.loads(one(harness.render_stack("dr"), "aws:iam/rolePolicy:RolePolicy",
                            "runbooks-policy")["inputs"]["policy"])
    (ssm,) = [s for s in policy["Statement"] if s["Sid"] == "ClientParameters"]
    for region in ("us-east-1", "us-west-2"):
        assert f"arn:aws:ssm:{region}:{harness.ACCOUNT}:parameter/regionpair/s3/writer-bucket" in ssm["Resource"]
