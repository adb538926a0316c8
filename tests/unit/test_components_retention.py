"""The compliance archive component (components/retention.py): refused before any resource exists."""

from __future__ import annotations

import json

import pytest

from components.common import ComponentArgsError
from components.retention import EXPORT_S3_ACTIONS, ComplianceArchive, ComplianceArchiveArgs, export_role_policy

KEY = "arn:aws:kms:us-west-2:123456789012:key/k"


@pytest.mark.parametrize("kw, arg", [({"retention_days": 365}, "retention_days"),
                                     ({"retention_days": 36501}, "retention_days"),
                                     ({"region": "west"}, "region"),
                                     # GLACIER's 90-day minimum before DEEP_ARCHIVE (the Bucket's own rule)
                                     ({"deep_archive_after_days": 100}, "deep_archive_after_days")])
def test_bad_args_are_refused_naming_the_input(kw, arg):
    with pytest.raises(ComponentArgsError) as err:
        ComplianceArchive("compliance", ComplianceArchiveArgs(**{
            "bucket_name": "regionpair-dr-archive-123456789012-us-west-2", "region": "us-west-2",
            "kms_key_arn": KEY, "account_id": "123456789012", **kw}))
    assert err.value.arg == arg


def test_the_export_role_may_do_what_start_export_task_lists_on_the_archive_only():
    doc = json.loads(export_role_policy("arn:aws:s3:::archive", KEY, "us-west-2"))
    [write, kms] = doc["Statement"]
    assert write["Action"] == EXPORT_S3_ACTIONS and write["Resource"] == ["arn:aws:s3:::archive",
                                                                          "arn:aws:s3:::archive/*"]
    assert "s3:DeleteObjectVersion" not in write["Action"] and "s3:DeleteObject*" not in write["Action"]
    assert kms["Resource"] == [KEY] and kms["Condition"] == {"StringEquals": {"kms:ViaService":
                                                                              "s3.us-west-2.amazonaws.com"}}
