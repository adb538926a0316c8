"""``streaming.replication`` and ``streaming.mirrormaker2`` (stacks/mm2config.py): the good section is
read, and each broken form is refused with the key, the value and the fix, before any resource."""

from __future__ import annotations

import copy

import pytest

from stacks import config
from stacks.config_reader import ConfigError
from tests import harness
from tests.helpers.stack_config import dr_mm2, dr_values, prod_values
from tests.props import DELETE, with_


def test_default_is_the_msk_replicator_and_no_section():
    cfg = config.read(dr_values(), stack="dr")
    assert (cfg.streaming.replication, cfg.streaming.mirrormaker2) == ("msk-replicator", None)


def test_the_good_section_is_read_with_its_defaults():
    m = config.read(dr_mm2(), stack="dr").streaming.mirrormaker2
    assert m is not None
    assert (m.plugin_bucket_arn, m.plugin_file_key, m.plugin_object_version) == (
        "arn:aws:s3:::regionpair-plugins-us-west-2", "mirrormaker2/kafka-3.7.2-msk-iam-auth.zip", None)
    assert (m.kafkaconnect_version, m.capacity_mode, m.mcu_count, m.min_workers, m.max_workers) == (
        "3.7.x", "autoscaled", 1, 1, 2)
    assert m.source_cidrs == ("10.10.0.0/16",)
    # the dr stack creates its VPC (no vpc_id): the workers' addresses come from its CIDR
    assert m.connector_cidrs == (dr_values()["network"]["cidr"],)
    provisioned = with_(harness.MIRRORMAKER2, "mirrormaker2.capacity", {"mode": "provisioned", "workers": 2,
                                                                         "mcu_count": 2})
    m = config.read(dr_mm2(provisioned), stack="dr").streaming.mirrormaker2
    assert (m.capacity_mode, m.workers, m.mcu_count) == ("provisioned", 2, 2)


S = "mirrormaker2"
# (what is broken, the streaming section, the key the refusal names, words of the fix)
BROKEN = [
    ("unknown replication", with_(harness.MIRRORMAKER2, "replication", "mirrormaker"), "streaming.replication",
     "msk-replicator | mirrormaker2"),
    ("mirrormaker2 without its section", {"replication": "mirrormaker2"}, "streaming.mirrormaker2", "plugin"),
    ("the section with the replicator", with_(harness.MIRRORMAKER2, "replication", "msk-replicator"),
     "streaming.mirrormaker2", "set replication: mirrormaker2"),
    ("plugin bucket given by name", with_(harness.MIRRORMAKER2, f"{S}.plugin.bucket_arn", "regionpair-plugins"),
     "streaming.mirrormaker2.plugin.bucket_arn", "S3 bucket ARN"),
    ("plugin that is not a ZIP", with_(harness.MIRRORMAKER2, f"{S}.plugin.file_key", "mm2/connect-mirror.tar.gz"),
     "streaming.mirrormaker2.plugin.file_key", "ZIP of JARs"),
    ("plugin without key", with_(harness.MIRRORMAKER2, f"{S}.plugin.file_key", DELETE),
     "streaming.mirrormaker2.plugin.file_key", "required"),
    ("Kafka Connect 3.6", with_(harness.MIRRORMAKER2, f"{S}.kafkaconnect_version", "3.6.x"),
     "streaming.mirrormaker2.kafkaconnect_version", "2.7.1 or 3.7.x"),
    ("Kafka Connect 2.7.1 without IdentityReplicationPolicy",
     with_(harness.MIRRORMAKER2, f"{S}.kafkaconnect_version", "2.7.1"),
     "streaming.mirrormaker2.kafkaconnect_version", "IdentityReplicationPolicy"),
    ("3 MCUs", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"mcu_count": 3}),
     "streaming.mirrormaker2.capacity.mcu_count", "1, 2, 4 or 8"),
    ("max below min workers", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"min_workers": 3, "max_workers": 2}),
     "streaming.mirrormaker2.capacity.max_workers", "at least min_workers"),
    ("scale out at 120 %", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"scale_out_cpu": 120}),
     "streaming.mirrormaker2.capacity.scale_out_cpu", "1-100"),
    ("scale in above scale out", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"scale_in_cpu": 90}),
     "streaming.mirrormaker2.capacity.scale_in_cpu", "below scale_out_cpu"),
    ("a worker count on an autoscaled connector", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"workers": 2}),
     "streaming.mirrormaker2.capacity.workers", "not a setting of autoscaled capacity"),
    ("an unknown capacity mode", with_(harness.MIRRORMAKER2, f"{S}.capacity", {"mode": "serverless"}),
     "streaming.mirrormaker2.capacity.mode", "autoscaled | provisioned"),
    ("no route to the source named", with_(harness.MIRRORMAKER2, f"{S}.source_cidrs", DELETE),
     "streaming.mirrormaker2.source_cidrs", "required"),
    ("the source as the whole internet", with_(harness.MIRRORMAKER2, f"{S}.source_cidrs", ["0.0.0.0/0"]),
     "streaming.mirrormaker2.source_cidrs[0]", "0.0.0.0/0"),
    ("a source CIDR that is not one", with_(harness.MIRRORMAKER2, f"{S}.source_cidrs", ["10.10.0.0/33"]),
     "streaming.mirrormaker2.source_cidrs[0]", "a CIDR"),
    ("a topic pattern with a bar", {**harness.MIRRORMAKER2, "topics": ["orders|payments"]}, "streaming.topics",
     "one pattern per entry"),
    ("a group pattern with a comma", {**harness.MIRRORMAKER2, "consumer_groups": ["ledger,audit"]},
     "streaming.consumer_groups", "comma-separated"),
    ("a misspelt key", with_(harness.MIRRORMAKER2, f"{S}.plugin_bucket", "x"),
     "streaming.mirrormaker2.plugin_bucket", "unknown key"),
]


@pytest.mark.parametrize("what, streaming, key, words", BROKEN, ids=[c[0] for c in BROKEN])
def test_each_broken_section_is_refused_naming_the_key(what, streaming, key, words):
    with pytest.raises(ConfigError) as refused:
        config.read(dr_mm2(streaming), stack="dr")
    assert refused.value.key == key, str(refused.value)
    assert words in str(refused.value)


def test_an_existing_vpc_needs_the_workers_cidrs():
    values = dr_mm2()
    values["network"] = {**values["network"], "vpc_id": "vpc-0123456789abcdef0",
                         "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]}
    with pytest.raises(ConfigError) as refused:
        config.read(values, stack="dr")
    assert refused.value.key == "streaming.mirrormaker2.connector_cidrs"
    values["streaming"]["mirrormaker2"]["connector_cidrs"] = ["10.20.0.0/20", "10.20.16.0/20", "10.20.32.0/20"]
    assert config.read(values, stack="dr").streaming.mirrormaker2.connector_cidrs == (
        "10.20.0.0/20", "10.20.16.0/20", "10.20.32.0/20")


def test_the_prod_stack_refuses_the_section():
    values = prod_values()
    values["streaming"] = copy.deepcopy(harness.MIRRORMAKER2)
    with pytest.raises(ConfigError) as refused:
        config.read(values, stack="prod")
    assert refused.value.key == "streaming.mirrormaker2" and "only the dr stack" in str(refused.value)
    values["streaming"] = {"replication": "mirrormaker2"}  # the choice alone is fine in prod (no effect there)
    assert config.read(values, stack="prod").streaming.replication == "mirrormaker2"
