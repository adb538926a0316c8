"""The optional `kafka_backup` section: its config refusals (each names the document), the prod
stack with it enabled under mocks (MSK Connect connector with IAM over TLS, the plugin, the role
MSK Connect assumes, the S3 gateway endpoint, the backups bucket's expiry per topic class), the
policy pack passing on it, and its policies refusing the broken forms."""

from __future__ import annotations

import copy
import json

import pytest

from policy import kafka_backup as pkb, mskconnect as M
from stacks import config
from stacks.config_reader import ConfigError
from tests import harness
from tests.harness import of_type, one
from tests.helpers.policy import check
from tests.helpers.stack_config import GOOD, dr_values, prod_values, read_prod


def test_the_section_is_read_with_its_defaults():
    cfg = read_prod(GOOD).kafka_backup
    assert cfg.enabled and cfg.topics["trades.executed"] == "critical"
    assert dict(cfg.retention_days) == {"critical": 30, "standard": 14}
    assert (cfg.offsets_retention_days, cfg.kafka_connect_version, cfg.mcu_count) == (7, "3.7.x", 1)
    off = read_prod({"topics": {"orders": "critical"}}).kafka_backup
    assert off.enabled is False and off.plugin_bucket_arn is None  # off by default: needs no artefact
    assert config.read(prod_values(), stack="prod").kafka_backup is None


def _with(**changes):
    section = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return section


@pytest.mark.parametrize("section, key, words", [
    (_with(retention_days={"critical": 14}), "kafka_backup.retention_days.critical", "document 004"),
    (_with(topics={"orders": "gold"}), "kafka_backup.topics.orders", "critical | standard"),
    (_with(topics={"bad topic!": "critical"}), "kafka_backup.topics.bad topic!", "Kafka topic names"),
    (_with(topics={}), "kafka_backup.topics", "mapping of topic name"),
    (_with(plugin_bucket_arn=None), "kafka_backup.plugin_bucket_arn", "plugin artefact"),
    (_with(plugin_file_key="connector.tar.gz"), "kafka_backup.plugin_file_key", "Create custom plugins"),
    (_with(route_table_ids=None), "kafka_backup.route_table_ids", "gateway VPC endpoint"),
    (_with(mcu_count=3), "kafka_backup.mcu_count", "ProvisionedCapacity"),
    (_with(kafka_connect_version="3.6.0"), "kafka_backup.kafka_connect_version", "2.7.1 | 3.7.x"),
    (_with(topics={f"t{i}": "standard" for i in range(999)}), "kafka_backup.topics", "LifecycleConfiguration"),
    (_with(retension_days={"critical": 30}), "kafka_backup.retension_days", "unknown key"),
])
def test_a_broken_section_is_refused_naming_the_key_and_why(section, key, words):
    with pytest.raises(ConfigError) as err:
        read_prod(section)
    assert err.value.args[0].startswith(key) or key in str(err.value), str(err.value)
    assert words in str(err.value)


def test_the_dr_stack_refuses_the_section():
    values = dr_values()
    values["kafka_backup"] = GOOD
    with pytest.raises(ConfigError, match="only the prod stack declares the Kafka topic backup"):
        config.read(values, stack="dr")


def test_s3_endpoint_exists_stands_in_for_route_tables():
    cfg = read_prod(_with(route_table_ids=None, s3_endpoint_exists=True)).kafka_backup
    assert cfg.route_table_ids == () and cfg.s3_endpoint_exists


# ---- the stack under mocks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered():
    return harness.render("prod", overrides={"kafka_backup": GOOD}).resources


def test_prod_declares_the_connector_with_iam_over_tls_and_its_plugin(rendered):
    c = one(rendered, M.CONNECTOR)["inputs"]
    assert c["kafkaconnectVersion"] == "3.7.x"
    assert c["kafkaClusterClientAuthentication"]["authenticationType"] == "IAM"
    assert c["kafkaClusterEncryptionInTransit"]["encryptionType"] == "TLS"
    assert c["capacity"]["provisionedCapacity"] == {"mcuCount": 1, "workerCount": 1}
    conf = c["connectorConfiguration"]
    assert conf["connector.class"] == "io.aiven.kafka.connect.s3.AivenKafkaConnectS3SinkConnector"
    assert conf["topics"] == "audit.logs,clicks,trades.executed" and conf["format.output.type"] == "parquet"
    assert conf["file.name.template"].startswith("kafka/topic={{topic}}/year={{timestamp:unit=YYYY}}/")
    assert conf["aws.s3.bucket.name"].startswith("regionpair-prod-backups-")
    assert c["logDelivery"]["workerLogDelivery"]["cloudwatchLogs"]["enabled"] is True
    plugin = one(rendered, M.CUSTOM_PLUGIN)["inputs"]
    assert plugin["contentType"] == "ZIP" and plugin["location"]["s3"]["bucketArn"] == GOOD["plugin_bucket_arn"]


def test_the_role_is_assumed_by_msk_connect_and_writes_only_under_kafka(rendered):
    role = one(rendered, "aws:iam/role:Role", "kafka-backup-role")["inputs"]
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "kafkaconnect.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    policy = json.loads(one(rendered, "aws:iam/rolePolicy:RolePolicy", "kafka-backup-policy")["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert all(r.endswith("/kafka/*") or not r.endswith("*") for r in by_sid["WriteBackups"]["Resource"])
    assert sorted(r.rsplit("/", 1)[1] for r in by_sid["ReadBackedUpTopics"]["Resource"]) == \
        ["audit.logs", "clicks", "trades.executed"]


def test_the_backups_bucket_expires_each_topic_by_its_class_and_the_offsets_after_7_days(rendered):
    life = [r for r in of_type(rendered, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
            if r["name"] == "backups-lifecycle"][0]["inputs"]["rules"]
    days = {r["id"]: (r["filter"]["prefix"], r["expiration"]["days"]) for r in life if r["id"].startswith("kafka")}
    assert days == {"kafka-trades.executed": ("kafka/topic=trades.executed/", 30),
                    "kafka-audit.logs": ("kafka/topic=audit.logs/", 30),
                    "kafka-clicks": ("kafka/topic=clicks/", 14), "kafka-offsets": ("kafka/offsets/", 7)}
    endpoint = one(rendered, "aws:ec2/vpcEndpoint:VpcEndpoint")["inputs"]
    assert endpoint["vpcEndpointType"] == "Gateway" and endpoint["routeTableIds"] == GOOD["route_table_ids"]


def test_the_policy_pack_passes_on_prod_with_the_backup(rendered):
    from tests.helpers.policy import findings
    assert [(f.policy, f.message) for f in findings("prod", rendered, {})] == []


def test_disabled_or_absent_declares_nothing_of_it():
    for resources in (harness.render_stack("prod"),
                      harness.render("prod", overrides={"kafka_backup": {"topics": {"orders": "critical"}}}).resources):
        assert not [r for r in resources if r["type"].startswith("aws:mskconnect")]
        life = [r for r in resources if r["name"] == "backups-lifecycle"][0]["inputs"]["rules"]
        assert [r["id"] for r in life] == ["archive-and-expire-noncurrent"]


# ---- the policies refuse the broken forms ---------------------------------------------------------------


CONNECTOR_OK = {"kafkaconnectVersion": "3.7.x", "capacity": {"provisionedCapacity": {"mcuCount": 1, "workerCount": 1}},
                "kafkaClusterClientAuthentication": {"authenticationType": "IAM"},
                "kafkaClusterEncryptionInTransit": {"encryptionType": "TLS"},
                "logDelivery": {"workerLogDelivery": {"cloudwatchLogs": {"enabled": True, "logGroup": "g"}}}}


# the backup's connector and plugin are held to the MSK Connect policies every connector is (policy/mskconnect.py)
@pytest.mark.parametrize("policy, path, value, words", [
    ("mskconnect-connector-valid", ("kafkaconnectVersion",), "3.6.0", "MSK Connect runs 2.7.1 or 3.7.x"),
    ("mskconnect-connector-valid", ("capacity", "provisionedCapacity", "mcuCount"), 3, "the valid values are 1, 2, 4, 8"),
    ("mskconnect-connector-iam-tls-logs", ("kafkaClusterClientAuthentication", "authenticationType"), "NONE",
     "IAM access control only"),
    ("mskconnect-connector-iam-tls-logs", ("kafkaClusterEncryptionInTransit", "encryptionType"), "PLAINTEXT",
     "TLS listener (9098) only"),
    ("mskconnect-connector-iam-tls-logs", ("logDelivery", "workerLogDelivery", "cloudwatchLogs", "enabled"), False,
     "not delivered to a CloudWatch log group"),
])
def test_the_connector_policies_refuse_a_broken_backup_connector(policy, path, value, words):
    assert check(policy, M.CONNECTOR, CONNECTOR_OK) == []
    props = copy.deepcopy(CONNECTOR_OK)
    node = props
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    messages = check(policy, M.CONNECTOR, props, name="backup")
    assert len(messages) == 1 and words in messages[0] and "Fix:" in messages[0], messages


def test_the_plugin_policy_refuses_a_mismatched_or_unknown_content_type():
    ok = {"contentType": "ZIP", "location": {"s3": {"bucketArn": "arn:aws:s3:::b", "fileKey": "c.zip"}}}
    assert check("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, ok) == []
    bad = copy.deepcopy(ok)
    bad["contentType"] = "JAR"
    assert "but the file is" in check("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, bad)[0]
    bad["contentType"] = "TAR"
    assert any("Create custom plugins" in m for m in check("mskconnect-custom-plugin-valid", M.CUSTOM_PLUGIN, bad))


def test_the_lifecycle_policy_refuses_too_many_rules_and_a_repeated_or_long_id():
    rule = {"id": "a", "status": "Enabled", "filter": {"prefix": "x/"}, "expiration": {"days": 1}}
    assert check("s3-lifecycle-rule-limit", pkb.LIFECYCLE, {"bucket": "b", "rules": [rule]}) == []
    many = [dict(rule, id=f"r{i}") for i in range(1001)]
    assert "at most 1000" in check("s3-lifecycle-rule-limit", pkb.LIFECYCLE, {"bucket": "b", "rules": many})[0]
    assert "used twice" in check("s3-lifecycle-rule-limit", pkb.LIFECYCLE, {"bucket": "b", "rules": [rule, rule]})[0]
    assert "at most 255" in check("s3-lifecycle-rule-limit", pkb.LIFECYCLE,
                                  {"bucket": "b", "rules": [dict(rule, id="x" * 256)]})[0]


def test_the_policy_type_tokens_are_the_providers():
    import pulumi_aws as aws

    from tests.helpers.policy import POLICY
    assert {"mskconnect-connector-valid", "mskconnect-connector-iam-tls-logs", "mskconnect-custom-plugin-valid",
            "s3-lifecycle-rule-limit"} <= set(POLICY)
    for token, cls in ((M.CONNECTOR, aws.mskconnect.Connector), (M.CUSTOM_PLUGIN, aws.mskconnect.CustomPlugin),
                       (pkb.LIFECYCLE, aws.s3.BucketLifecycleConfiguration)):
        assert cls.__module__.split(".")[1] in token and token.endswith(":" + cls.__name__)


def test_the_bucket_component_refuses_more_than_1000_lifecycle_rules():
    from components.common import ComponentArgsError
    from components.storage import Bucket, BucketArgs
    harness.use_mocks()
    rules = tuple((f"r{i}", f"p{i}/", 1) for i in range(1000))
    with pytest.raises(ComponentArgsError, match="at most 1000 rules"):
        Bucket("b", BucketArgs(bucket_name="acme-b", kms_key_arn="arn:aws:kms:us-east-1:1:key/k", expiry_rules=rules))


def test_the_runbook_role_may_replay_into_the_pairs_clusters_and_use_only_replay_groups():
    from components.access import RUNBOOK_ACTIONS
    policies = [r for r in harness.render_stack("dr") if r["type"] == "aws:iam/rolePolicy:RolePolicy"
                and r["inputs"].get("role") == "regionpair-dr-runbooks"]
    doc = json.loads(policies[0]["inputs"]["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid["ReplayKafkaBackupsConnect"]["Action"]) == set(RUNBOOK_ACTIONS["kafka_data_cluster"])
    assert all(":cluster/" in a for a in by_sid["ReplayKafkaBackupsConnect"]["Resource"])
    assert all(":topic/" in a and a.endswith("/*") for a in by_sid["ReplayKafkaBackupsTopics"]["Resource"])
    assert all(a.endswith("/regionpair-replay-*") for a in by_sid["ReplayKafkaBackupsGroups"]["Resource"])
    assert len(by_sid["ReplayKafkaBackupsTopics"]["Resource"]) == 2  # both regions' clusters
    # the replay's consumers use group ids the role covers
    import inspect

    from runbooks.adapters import kafka_client
    assert inspect.getsource(kafka_client).count('"group.id": "regionpair-replay-') == 2
