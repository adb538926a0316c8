"""The reconcile after a failover, `pulumi up -s dr` with `promoted: true`, while prod's region is down
(issue 10, point 6): it must need nothing from that region, must not promote again, and must not
change the password. Both dr renders side by side, resource by resource."""

from __future__ import annotations

import pytest

from components.database import IGNORED_INPUTS, REPLACING_INPUTS
from tests import harness

PRIMARY = "aws-us-east-1"  # Pulumi.dr.yaml: primary_region us-east-1
DR = "aws-us-west-2"
INSTANCE = "aws:rds/instance:Instance"


def _renders(**extra):
    from pulumi.runtime import config as runtime_config
    saved = dict(runtime_config.CONFIG.get())  # a render sets the runtime's config; later tests read it
    try:
        normal = harness.render("dr", overrides=extra or None)
        normal_calls = list(harness.LAST["calls"])
        promoted = harness.render("dr", overrides={"promoted": True, **extra})
        promoted_regs = {r["urn"]: r for r in harness.LAST["registrations"]}
        return normal, normal_calls, promoted, list(harness.LAST["calls"]), promoted_regs
    finally:
        runtime_config.set_all_config(saved)


@pytest.fixture(scope="module")
def renders():
    return _renders()


def test_nothing_declared_in_the_primary_region_is_created_changed_or_deleted(renders):
    normal, _, promoted, _, _ = renders
    before = {r["urn"]: r for r in normal.resources if r["provider"] == PRIMARY}
    after = {r["urn"]: r for r in promoted.resources if r["provider"] == PRIMARY}
    assert before, "the dr stack declares something in prod's region (the S3 replication on prod's bucket)"
    assert set(after) == set(before), "a resource in prod's region would be created or deleted"
    for urn, r in before.items():
        assert after[urn]["inputs"] == r["inputs"], f"{r['name']} would be changed in prod's region"


def test_the_primary_region_provider_starts_without_calling_its_region_before_and_after_promotion(renders):
    normal, _, promoted, _, _ = renders
    def provider(rendered, name=PRIMARY):
        (p,) = [r for r in rendered.resources if r["type"] == "pulumi:providers:aws" and r["name"] == name]
        return p["inputs"]
    # the same provider in both (a refresh configures it as the state stored it, so the settings
    # must be there before the outage), in prod's region (a changed region would replace its resources)
    assert provider(promoted) == provider(normal) and provider(normal)["region"] == "us-east-1"
    assert str(provider(normal)["skipCredentialsValidation"]).lower() == "true"
    assert str(provider(normal)["skipRequestingAccountId"]).lower() == "true"
    assert "skipRequestingAccountId" not in provider(normal, DR), "DR's own provider is untouched"
    prod = [r for r in harness.render_stack("prod") if r["type"] == "pulumi:providers:aws"]
    assert prod and all("skipRequestingAccountId" not in r["inputs"] for r in prod), "prod's providers untouched"


def test_no_invoke_is_sent_to_the_primary_region(renders):
    _, normal_calls, _, promoted_calls, _ = renders
    assert promoted_calls, "the harness records the program's invokes"
    assert [c for c in promoted_calls if c["provider"] == PRIMARY] == []
    assert [c for c in normal_calls if c["provider"] == PRIMARY] == []


def test_the_promoted_database_is_neither_replaced_nor_promoted_nor_given_a_new_password(renders):
    normal, _, promoted, _, registrations = renders
    before = {r["urn"]: r for r in normal.resources if r["type"] == INSTANCE}
    after = {r["urn"]: r for r in promoted.resources if r["type"] == INSTANCE}
    assert set(before) == set(after) and before
    for urn in before:
        b, a = before[urn]["inputs"], after[urn]["inputs"]
        assert all(b.get(k) == a.get(k) for k in REPLACING_INPUTS), "an input that replaces the database changed"
        for key in ("password", "manageMasterUserPassword", "masterUserSecretKmsKeyId"):
            assert key not in b and key not in a, f"{key}: the promoted instance keeps the primary's password"
        # the runbook promoted it: the stack's removal of replicateSourceDb must not promote again
        assert "replicateSourceDb" in b and "replicateSourceDb" not in a
        assert set(registrations[urn]["ignore_changes"]) >= {"replicateSourceDb", "password"}
    assert set(IGNORED_INPUTS) == {"replicateSourceDb", "password"}


def test_the_password_stays_readable_in_the_dr_region(renders):
    normal, _, promoted, _, _ = renders
    prod_secret = harness.stack_exports("prod")["regions"]["us-east-1"]["databases"]["payments"]["secret_arn"]
    dr_normal = normal.exports["regions"]["us-west-2"]["databases"]["payments"]["secret_arn"]
    dr_promoted = promoted.exports["regions"]["us-west-2"]["databases"]["payments"]["secret_arn"]
    assert dr_normal == prod_secret
    assert dr_promoted == prod_secret.replace(":us-east-1:", ":us-west-2:"), "the DR replica of prod's secret"
    # prod declares that replica, so it exists before any failover
    secret = harness.one(harness.render_stack("prod"), "aws:secretsmanager/secret:Secret")
    assert secret["inputs"]["replicas"] == [{"region": "us-west-2"}] and secret["provider"] == "aws-us-east-1"


def test_also_with_the_failback_flows_declared_nothing_moves_in_prods_region_but_the_reverse_flows():
    _, _, promoted, _, _ = _renders()
    from pulumi.runtime import config as runtime_config
    saved = dict(runtime_config.CONFIG.get())
    try:
        with_failback = harness.render("dr", overrides={"promoted": True, "failback_replication": True})
    finally:
        runtime_config.set_all_config(saved)
    before = {r["urn"]: r for r in promoted.resources if r["provider"] == PRIMARY}
    after = {r["urn"]: r for r in with_failback.resources if r["provider"] == PRIMARY}
    for urn, r in before.items():
        assert after[urn]["inputs"] == r["inputs"], r["name"]
    added = {after[u]["name"] for u in set(after) - set(before)}
    # the reverse replicator, its role and its alarms (with their topic), declared once prod's region is back
    assert added and all(n.startswith(("failback-replicator", "failback-alarms")) for n in added), added
