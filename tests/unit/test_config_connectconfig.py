"""The keys every MSK Connect section shares (stacks/connectconfig.py): one validator, so the same broken
value is refused in ``streaming.mirrormaker2`` and in ``kafka_backup`` alike, each refusal naming the key
path the user wrote there (the sections keep their own key names), and the good value accepted."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from stacks import config
from stacks.config_reader import ConfigError
from tests import harness
from tests.helpers.stack_config import GOOD, dr_mm2, read_prod
from tests.props import with_


def mm2(path: str, value: Any) -> Callable[[], Any]:
    return lambda: config.read(dr_mm2(with_(harness.MIRRORMAKER2, f"mirrormaker2.{path}", value)), stack="dr")


def backup(key: str, value: Any) -> Callable[[], Any]:
    return lambda: read_prod({**GOOD, key: value})


LONG_KEY = "k" * 1021 + ".zip"  # S3 object keys are at most 1024 characters

# (rule, read with the broken value, the key path the refusal names, words of the refusal)
BROKEN = [
    ("version", mm2("kafkaconnect_version", "3.6.0"), "streaming.mirrormaker2.kafkaconnect_version",
     "MSK Connect runs Kafka Connect 2.7.1 or 3.7.x"),
    ("version", backup("kafka_connect_version", "3.6.0"), "kafka_backup.kafka_connect_version",
     "MSK Connect runs Kafka Connect 2.7.1 or 3.7.x"),
    ("MCUs 3", mm2("capacity", {"mcu_count": 3}), "streaming.mirrormaker2.capacity.mcu_count", "1, 2, 4 or 8"),
    ("MCUs 3", backup("mcu_count", 3), "kafka_backup.mcu_count", "1, 2, 4 or 8"),
    ("MCUs 16", mm2("capacity", {"mcu_count": 16}), "streaming.mirrormaker2.capacity.mcu_count", "the maximum is 8"),
    ("MCUs 16", backup("mcu_count", 16), "kafka_backup.mcu_count", "the maximum is 8"),
    ("no worker", mm2("capacity", {"mode": "provisioned", "workers": 0}), "streaming.mirrormaker2.capacity.workers",
     "at least one worker"),
    ("no worker", backup("worker_count", 0), "kafka_backup.worker_count", "at least one worker"),
    ("bucket by name", mm2("plugin.bucket_arn", "plugins"), "streaming.mirrormaker2.plugin.bucket_arn",
     "S3 bucket ARN"),
    ("bucket by name", backup("plugin_bucket_arn", "plugins"), "kafka_backup.plugin_bucket_arn", "S3 bucket ARN"),
    ("not a JAR or ZIP", mm2("plugin.file_key", "p.tar.gz"), "streaming.mirrormaker2.plugin.file_key",
     "Create custom plugins"),
    ("not a JAR or ZIP", backup("plugin_file_key", "p.tar.gz"), "kafka_backup.plugin_file_key",
     "Create custom plugins"),
    ("key over 1024 characters", mm2("plugin.file_key", LONG_KEY), "streaming.mirrormaker2.plugin.file_key",
     "ZIP of JARs"),
    ("key over 1024 characters", backup("plugin_file_key", LONG_KEY), "kafka_backup.plugin_file_key", "ZIP of JARs"),
]


@pytest.mark.parametrize("what, read, key, words", BROKEN, ids=[f"{c[2]}: {c[0]}" for c in BROKEN])
def test_each_section_refuses_the_broken_common_key_naming_its_own_path(what, read, key, words):
    with pytest.raises(ConfigError) as refused:
        read()
    assert refused.value.key == key, str(refused.value)
    assert words in str(refused.value), str(refused.value)


def test_the_good_common_keys_are_accepted_in_both_sections():
    m = mm2("capacity", {"mode": "provisioned", "workers": 3, "mcu_count": 8})().streaming.mirrormaker2
    assert (m.kafkaconnect_version, m.mcu_count, m.workers) == ("3.7.x", 8, 3)
    b = read_prod({**GOOD, "kafka_connect_version": "2.7.1", "mcu_count": 8, "worker_count": 3,
                   "plugin_file_key": "k" * 1020 + ".jar"}).kafka_backup
    assert (b.kafka_connect_version, b.mcu_count, b.worker_count, len(b.plugin_file_key)) == ("2.7.1", 8, 3, 1024)


def test_only_mirrormaker2_takes_a_jar_less_zip_only_plugin():
    """MirrorMaker 2 declares contentType ZIP (three JARs), so its key must be a .zip; the backup's may be a .jar."""
    with pytest.raises(ConfigError, match="the key of a .zip file"):
        mm2("plugin.file_key", "mm2/connect-mirror.jar")()
    assert read_prod({**GOOD, "plugin_file_key": "aiven/s3.jar"}).kafka_backup.plugin_file_key == "aiven/s3.jar"
