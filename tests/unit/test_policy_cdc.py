"""The CDC area's policy (policy/cdc.py), called the way the CLI calls it, through the pack's POLICIES."""

from __future__ import annotations

import pytest

from policy import base, cdc, rules
from tests.helpers.policy import check

PG = cdc.RDS_PARAMETER_GROUP
GOOD = {"family": "postgres16", "parameters": [
    {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"},
    {"name": "rds.logical_replication", "value": "1", "applyMethod": "pending-reboot"}]}


def test_the_policy_is_in_the_pack_and_the_good_group_passes():
    assert "rds-logical-replication-static" in {p.name for p in rules.POLICIES}
    assert check("rds-logical-replication-static", PG, GOOD) == []
    assert check("rds-logical-replication-static", PG, {"family": "postgres16", "parameters": []}) == []
    assert check("rds-logical-replication-static", base.KMS_KEY, {"enableKeyRotation": False}) == []


@pytest.mark.parametrize("param, words", [
    ({"name": "rds.logical_replication", "value": "1", "applyMethod": "immediate"}, "static parameter"),
    ({"name": "rds.logical_replication", "value": "on", "applyMethod": "pending-reboot"}, "RDS takes 0 or 1"),
])
def test_a_broken_logical_replication_parameter_is_refused(param, words):
    props = {"family": "postgres16", "parameters": [GOOD["parameters"][0], param]}
    messages = check("rds-logical-replication-static", PG, props, name="payments-params")
    assert len(messages) == 1 and words in messages[0] and "Fix:" in messages[0], messages
    assert messages[0].startswith(f"payments-params ({PG})")
