"""The compliance tier in both stacks (components/retention.py): declared with the config's periods,
exported as storage.archive, passed to the runbook role, and absent when the config turns it off."""

from __future__ import annotations

import json

import pulumi
import yaml

from contract import outputs
from tests import harness
from tests.harness import of_type, one

ARCHIVE_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


def test_both_stacks_declare_and_export_the_archive_of_their_own_region():
    for stack, region in (("prod", "us-east-1"), ("dr", "us-west-2")):
        resources = harness.render_stack(stack)
        lock = one(resources, ARCHIVE_LOCK, "compliance-bucket-object-lock")["inputs"]
        assert lock["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 2557}
        bucket = one(resources, "aws:s3/bucket:Bucket", "compliance-bucket-bucket")["inputs"]["bucket"]
        assert bucket == f"regionpair-{stack}-archive-{harness.ACCOUNT}-{region}"
        doc = outputs.from_dict(harness.stack_exports(stack))
        assert doc.regions[region].storage.archive.bucket == bucket
    pair = outputs.from_dict(harness.stack_exports("dr"))
    assert {r: a.storage.archive.bucket.split("-")[1] for r, a in pair.regions.items()} == {"us-east-1": "prod",
                                                                                          "us-west-2": "dr"}
    policy = json.loads(one(harness.render_stack("dr"), "aws:iam/rolePolicy:RolePolicy",
                            "runbooks-policy")["inputs"]["policy"])
    [passes] = [s for s in policy["Statement"] if s["Sid"] == "PassOnlyTheExportRole"]
    assert sorted(passes["Resource"]) == sorted(a.storage.archive.export_role_arn for a in pair.regions.values())


def test_the_archive_follows_the_config_and_can_be_turned_off():
    backups = yaml.safe_load(open(harness.ROOT / "Pulumi.prod.yaml"))["config"]["regionpair:backups"]
    saved = pulumi.runtime.config.CONFIG.get()
    try:
        longer = harness.render("prod", overrides={"backups": dict(backups, compliance_retention_days=3650,
                                                                   compliance_deep_archive_after_days=365)})
        off = harness.render("prod", overrides={"backups": dict(backups, compliance_archive=False)})
    finally:
        pulumi.runtime.config.CONFIG.set(saved)
    lock = one(longer.resources, ARCHIVE_LOCK, "compliance-bucket-object-lock")["inputs"]
    assert lock["rule"]["defaultRetention"]["days"] == 3650
    rules = one(longer.resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "compliance-bucket-lifecycle")["inputs"]["rules"][0]
    assert [t["days"] for t in rules["transitions"]] == [30, 365] and rules["expiration"]["days"] == 3650
    assert not [r for r in off.resources if r["name"].startswith("compliance")]
    assert outputs.from_dict(off.exports).regions["us-east-1"].storage.archive is None
    assert len(of_type(off.resources, ARCHIVE_LOCK)) == 1  # the backups bucket's own lock stays
