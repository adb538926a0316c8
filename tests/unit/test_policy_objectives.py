"""Issue 12, objectives per component: the stack config declares RTO/RPO per component (database,
Kafka, object storage); the outputs carry them; a component whose RTO budget exceeds its own
objective fails the preview through the policy pack (not only a warning)."""

from __future__ import annotations

import copy
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from contract import outputs as contract
from policy import objectives as pol
from stacks import config, exports as document
from tests.samples import pair_document

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"


def stack_values(stack: str) -> dict:
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("regionpair:")}
    values["region"] = raw["aws:region"]
    return values


def with_components(values: dict, **components) -> dict:
    v = copy.deepcopy(values)
    v["objectives"]["components"] = components
    return v


# ---- config and outputs ------------------------------------------------------------------------


def test_config_gives_each_component_its_objectives_or_the_services():
    cfg = config.read(with_components(stack_values("prod"), kafka={"rto_seconds": 300, "rpo_seconds": 30}),
                      stack="prod")
    assert cfg.objectives.of("kafka") == (300, 30)
    assert cfg.objectives.of("database") == (900, 300)  # not declared: the service's


@pytest.mark.parametrize("components, key, words", [
    ({"kafka": {"rto_seconds": 901}}, "objectives.components.kafka.rto_seconds", "cannot exceed the service's"),
    ({"database": {"rpo_seconds": 301}}, "objectives.components.database.rpo_seconds", "cannot exceed the service's"),
    ({"redis": {"rto_seconds": 60}}, "objectives.components.redis", "database | kafka | object_storage"),
    ({"kafka": {"rto": 60}}, "objectives.components.kafka.rto", "unknown key"),
])
def test_config_refuses_a_component_objective_that_cannot_be(components, key, words):
    with pytest.raises(config.ConfigError) as exc:
        config.read(with_components(stack_values("prod"), **components), stack="prod")
    assert key in str(exc.value) and words in str(exc.value)


def test_outputs_carry_component_objectives_and_refuse_one_above_the_service():
    doc = pair_document()
    doc["objectives"]["components"] = {"kafka": {"rto_seconds": 300, "rpo_seconds": 30}}
    out = contract.from_dict(doc)
    assert (out.objectives.of("kafka").rto_seconds, out.objectives.of("database").rto_seconds) == (300, 900)
    assert contract.from_dict(out.to_dict()).objectives == out.objectives  # round trip
    doc["objectives"]["components"]["kafka"]["rto_seconds"] = 1000
    with pytest.raises(contract.OutputsError) as exc:
        contract.from_dict(doc)
    assert "objectives.components.kafka.rto_seconds" in str(exc.value)
    del doc["objectives"]["components"]
    assert contract.from_dict(doc).objectives.of("object_storage").rto_seconds == 900  # schema 1 documents still read


# ---- the budget: program and policy agree ------------------------------------------------------


@pytest.mark.parametrize("stack", ["prod", "dr"])
@pytest.mark.parametrize("components", [{}, {"kafka": {"rto_seconds": 45}, "database": {"rto_seconds": 400}}])
def test_the_policy_computes_the_budget_the_program_exports(stack, components):
    values = with_components(stack_values(stack), **components)
    cfg = config.read(values, stack=stack)
    program = document.component_budgets(cfg)
    policy = pol.budgets(values)
    assert {n: (b["total_seconds"], b["rto_seconds"]) for n, b in program.items()} == \
        {n: (b["total_seconds"], b["rto_seconds"]) for n, b in policy.items()}


def test_the_policy_refuses_a_component_over_its_objective_and_accepts_the_committed_stacks():
    for stack in ("prod", "dr"):
        assert pol.check_rto_budgets(stack_values(stack)) == []
    values = with_components(stack_values("prod"), kafka={"rto_seconds": 45})  # detection 30 s + refresh 30 s = 60
    (problem,) = pol.check_rto_budgets(values)
    assert problem.startswith("RTO budget of kafka: 60 s") and "RTO objective of 45 s" in problem
    assert "objectives.components.kafka.rto_seconds" in problem
    values = with_components(stack_values("prod"), database={"rto_seconds": 300})  # 30 + 60 + 300 = 390
    (problem,) = pol.check_rto_budgets(values)
    assert problem.startswith("RTO budget of database: 390 s") and "dns.ttl_seconds" in problem


def test_the_exported_budget_says_per_component_whether_it_is_within():
    cfg = config.read(with_components(stack_values("prod"), kafka={"rto_seconds": 45}), stack="prod")
    budget = document.rto_budget(cfg)
    assert budget["components"]["kafka"] == {"total_seconds": 60, "rto_seconds": 45, "within_objective": False}
    assert budget["within_objective"] is True and budget["components"]["database"]["within_objective"] is True
    warned = []
    document.warn_if_over_budget(cfg, warned.append)
    assert len(warned) == 1 and "RTO budget of kafka 60 s" in warned[0]


# ---- the pack, served as the CLI runs it -------------------------------------------------------


def serve(config_bag: dict):
    env = {**os.environ, "PULUMI_CONFIG": json.dumps(config_bag)}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."], cwd=POLICY_DIR,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.isdigit():
        proc.kill()
        raise AssertionError(f"the pack did not print its port: {line!r}; stderr: {proc.stderr.read()[-2000:]}")
    return proc, grpc.insecure_channel(f"127.0.0.1:{line}")


def test_the_served_pack_fails_a_preview_whose_kafka_budget_exceeds_its_objective():
    values = stack_values("prod")
    bag = {f"regionpair:{k}": json.dumps(v) if isinstance(v, (dict, list)) else str(v)
           for k, v in values.items() if k in ("objectives", "dns", "expected_promotion_seconds")}
    for components, expected in (({}, []), ({"kafka": {"rto_seconds": 45}}, [pol.POLICY_NAME])):
        values["objectives"]["components"] = components
        bag["regionpair:objectives"] = json.dumps(values["objectives"])
        proc, channel = serve(bag)
        try:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            got = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[]), timeout=10)
            assert [d.policyName for d in got.diagnostics] == expected
            assert all(d.enforcementLevel == analyzer_pb2.MANDATORY for d in got.diagnostics)
            if expected:
                assert "RTO budget of kafka: 60 s" in got.diagnostics[0].message
        finally:
            channel.close()
            proc.kill()
            proc.wait(timeout=10)
