"""Stack configuration values (prod, dr) as Pulumi.<stack>.yaml holds them, for the config and stack tests."""

from __future__ import annotations

import copy
from typing import Any

from stacks import config
from tests import harness


def prod_values() -> dict[str, Any]:
    raw = harness.stack_config("prod")
    values = {k.split(":", 1)[1]: config._decode(v) for k, v in raw.items() if k.startswith("regionpair:")}
    values["region"] = raw["aws:region"]
    return values


def dr_values() -> dict[str, Any]:
    raw = harness.stack_config("dr")
    values = {k.split(":", 1)[1]: config._decode(v) for k, v in raw.items() if k.startswith("regionpair:")}
    values["region"] = raw["aws:region"]
    return values


def dr_mm2(streaming: dict[str, Any] | None = None) -> dict[str, Any]:
    values = dr_values()
    values["streaming"] = copy.deepcopy(streaming if streaming is not None else harness.MIRRORMAKER2)
    return values


GOOD = {"enabled": True, "topics": {"trades.executed": "critical", "audit.logs": "critical", "clicks": "standard"},
        "retention_days": {"standard": 14},
        "plugin_bucket_arn": "arn:aws:s3:::acme-connect-plugins",
        "plugin_file_key": "aiven/s3-connector-for-apache-kafka-3.1.0.zip",
        "route_table_ids": ["rtb-0123456789abcdef0"]}


def read_prod(section):
    values = prod_values()
    values["kafka_backup"] = section
    return config.read(values, stack="prod")
