"""Both stacks with logical_replication on a database: its parameter group allows logical slots in
both regions (a promoted replica must take the CDC slots), and each region's cluster captures the
slots from the active primary into its own backups bucket; the policy pack passes on the result."""

from __future__ import annotations

import copy

import pytest
import yaml

from contract import slot_backup as contract
from tests import harness
from tests.harness import of_type
from tests.helpers.stack_kubernetes import cronjob, env_of, pod, section

STACKS = ("prod", "dr")


def with_cdc(stack: str, k8s: bool = True) -> harness.Rendered:
    path = harness.ROOT / f"Pulumi.{stack}.yaml"
    databases = copy.deepcopy(yaml.safe_load(path.read_text())["config"]["regionpair:databases"])
    for db in databases:
        db["logical_replication"] = db["name"] == "payments"
    overrides = {"databases": databases, **({"kubernetes": section(stack)} if k8s else {})}
    return harness.render(stack, overrides=overrides)


@pytest.mark.parametrize("stack", STACKS)
def test_the_parameter_group_of_the_cdc_database_allows_logical_slots_in_both_regions(stack):
    groups = {r["name"]: r["inputs"]["parameters"] for r in of_type(with_cdc(stack, k8s=False).resources,
                                                                     "aws:rds/parameterGroup:ParameterGroup")}
    want = {"name": "rds.logical_replication", "value": "1", "applyMethod": "pending-reboot"}
    assert want in groups["payments-params"]
    assert all(want not in params for name, params in groups.items() if name != "payments-params")


@pytest.mark.parametrize("stack", STACKS)
def test_each_cluster_keeps_slot_captures_of_the_active_primary_in_its_own_bucket(stack):
    rendered = with_cdc(stack)
    prod = harness.stack_exports("prod")["regions"]["us-east-1"]
    own = harness.stack_exports(stack)["regions"]["us-east-1" if stack == "prod" else "us-west-2"]
    job = pod(cronjob(rendered.resources, "regionpair-slots-payments"))
    init = {c["name"]: c for c in job["initContainers"]}
    assert env_of(init["capture"])["PGHOST"] == prod["databases"]["payments"]["endpoint"], "the active primary"
    assert env_of(init["capture"])["CAPTURE_SQL"] == contract.CAPTURE_SQL
    upload = env_of(job["containers"][0])
    assert upload["BUCKET"] == own["storage"]["backups_bucket"] and upload["PREFIX"] == contract.KEY_PREFIX


@pytest.mark.parametrize("stack", STACKS)
def test_the_policy_pack_passes_on_the_stacks_with_cdc(stack):
    from tests.helpers.policy import findings, with_prod_reference
    graph = copy.deepcopy(with_cdc(stack).resources)
    graph = with_prod_reference(graph) if stack == "dr" else graph
    assert [(f.policy, f.message) for f in findings(stack, graph, {"kubernetes": section(stack)})] == []
