"""Drill stacks through a fake Automation API workspace: created with ephemeral config, the
runbooks run on their outputs, and both stacks are destroyed whatever happens."""

from __future__ import annotations

import argparse
import copy
import json

import pytest

from drills import aws_stacks as drill_stacks
from tests.fakes import FakeWorld
from tests.samples import pair_document, prod_document


class FakeStack:
    def __init__(self, name, calls, fail_on=None):
        self.name = name
        self.calls = calls
        self.fail_on = fail_on
        self.config = None

    def set_all_config(self, config):
        self.config = dict(config)
        self.calls.append(("config", self.name))

    def up(self, on_output=None):
        self.calls.append(("up", self.name))
        if self.fail_on == "up":
            raise RuntimeError(f"up of {self.name} failed")
        if self.fail_on == "interrupt":
            raise KeyboardInterrupt()

    def outputs(self):
        doc = pair_document() if self.name.endswith("-dr") else prod_document()
        doc = copy.deepcopy(doc)
        doc["stack"] = self.name
        for region in doc["regions"].values():
            region["stack"] = self.name if region["role"] == ("secondary" if self.name.endswith("-dr") else "primary") \
                else self.name.replace("-dr", "-prod")
        return doc

    def destroy(self, on_output=None, remove=True):
        self.calls.append(("destroy", self.name))
        if self.fail_on == "destroy":
            raise RuntimeError("DependencyViolation")


def factory(calls, fail=None):
    def make(name, project_dir):
        return FakeStack(name, calls, (fail or {}).get(name))
    return make


def args(tmp_path, **kw):
    from tests import harness
    base = dict(prefix="drill-42", primary_region="us-east-1", dr_region="us-west-2", project_dir=harness.ROOT,
                report_dir=tmp_path / "report", failback=False)
    base.update(kw)
    return argparse.Namespace(**base)


def fake_ports(tmp_path):
    worlds = {}

    def ports(outputs, clock):
        world = worlds.setdefault("w", FakeWorld(outputs))
        return world.ports(tmp_path / "lock.json")
    return ports, worlds


def test_drill_on_stacks_runs_failover_and_destroys_both(tmp_path):
    calls = []
    ports, worlds = fake_ports(tmp_path)
    result = drill_stacks.main_for_drill(args(tmp_path, failback=True), lambda s: None, factory(calls), ports)
    assert calls[:4] == [("config", "drill-42-prod"), ("up", "drill-42-prod"), ("config", "drill-42-dr"),
                         ("up", "drill-42-dr")]
    assert calls[-2:] == [("destroy", "drill-42-dr"), ("destroy", "drill-42-prod")]
    assert result["runbooks"]["failover"]["exit_code"] == 0
    assert result["runbooks"]["failback"]["exit_code"] == 0
    assert result["teardown"] == {"destroyed": ["drill-42-dr", "drill-42-prod"], "left_behind": []}
    assert result["passed"] is True
    assert json.loads((tmp_path / "report" / "drill.json").read_text())["stacks"] == ["drill-42-prod", "drill-42-dr"]
    world = worlds["w"]
    assert world.dns["payments"] == "us-east-1"  # failed back home


def test_drill_stack_config_is_the_committed_config_made_ephemeral_with_its_own_names():
    from stacks import config
    from tests import harness
    prod, dr = drill_stacks.stack_configs(drill_stacks.StacksDrillConfig(prefix="drill-7", project_dir=harness.ROOT),
                                          "drill-7-prod")
    assert prod["regionpair:ephemeral"] is True and prod["regionpair:role"] == "primary"
    assert dr["regionpair:prod_stack"] == "organization/regionpair/drill-7-prod" and dr["aws:region"] == "us-west-2"
    assert prod["regionpair:dns"]["record_prefix"] == dr["regionpair:dns"]["record_prefix"] == "drill-7-"
    for values, stack in ((prod, "drill-7-prod"), (dr, "drill-7-dr")):
        plain = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("regionpair:")}
        cfg = config.read(dict(plain, region=values["aws:region"]), stack=stack)  # what `pulumi up` will read
        assert cfg.ephemeral and cfg.dns.record_name("payments").startswith("drill-7-payments.")


def test_a_drill_outside_the_project_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--project-dir"):
        drill_stacks.stack_configs(drill_stacks.StacksDrillConfig(prefix="d", project_dir=tmp_path), "d-prod")


@pytest.mark.parametrize("fail", [{"drill-42-dr": "up"}, {"drill-42-dr": "interrupt"}])
def test_stacks_are_destroyed_when_creation_fails_or_is_interrupted(tmp_path, fail):
    calls = []
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        drill_stacks.main_for_drill(args(tmp_path), lambda s: None, factory(calls, fail))
    assert ("destroy", "drill-42-dr") in calls and ("destroy", "drill-42-prod") in calls


def test_a_failed_destroy_is_reported_and_the_other_stack_still_destroyed(tmp_path):
    calls, said = [], []
    ports, _ = fake_ports(tmp_path)
    result = drill_stacks.main_for_drill(args(tmp_path), said.append,
                                         factory(calls, {"drill-42-dr": "destroy"}), ports)
    assert ("destroy", "drill-42-prod") in calls
    assert result["teardown"]["left_behind"][0]["stack"] == "drill-42-dr"
    assert result["passed"] is False
    assert any("pulumi destroy --stack drill-42-dr" in line for line in said)
