"""The GitHub workflows: valid against GitHub's workflow schema (the copy check-jsonschema ships,
offline), and doing what the project promises: a preview of both stacks with the DR policy pack
on every pull request, commented on the PR, and a weekly sandbox drill that keeps its report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PREVIEW = WORKFLOWS / "preview.yml"
DRILL = WORKFLOWS / "drill.yml"
SCHEMAS = ("vendor.github-workflows", "custom.github-workflows-require-timeout")


def check_jsonschema(path: Path, schema: str) -> subprocess.CompletedProcess:
    """check-jsonschema's CLI on one file, with every proxy pointed at a closed port so that any
    attempt to reach the network fails instead of passing silently."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
           "NO_PROXY": "", "no_proxy": ""}
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, env=env, timeout=120)


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(job: dict, uses: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == uses]


def index_of(job: dict, predicate) -> int:
    for i, s in enumerate(job["steps"]):
        if predicate(s):
            return i
    raise AssertionError("no such step")


# ---- schema ------------------------------------------------------------------------------------


def test_the_vendored_schemas_need_no_network():
    for name in ("vendor/github-workflows.json", "custom/github-workflows-require-timeout.json"):
        text = (resources.files("check_jsonschema.builtin_schemas") / name).read_text()
        refs = re.findall(r'"\$ref"\s*:\s*"([^"]*)"', text)
        assert [r for r in refs if not r.startswith("#")] == [], f"{name} refers outside itself"


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("path", [PREVIEW, DRILL], ids=["preview", "drill"])
def test_workflow_is_valid_against_githubs_schema(path, schema):
    result = check_jsonschema(path, schema)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mutation, schema", [
    (lambda w: w["jobs"]["preview"].update({"runs_on": w["jobs"]["preview"].pop("runs-on")}),
     "vendor.github-workflows"),
    (lambda w: w["jobs"]["preview"]["permissions"].update({"id-token": "admin"}), "vendor.github-workflows"),
    (lambda w: w["on"].update({"pull_requests": None}), "vendor.github-workflows"),
    (lambda w: w["jobs"]["preview"].pop("timeout-minutes"), "custom.github-workflows-require-timeout"),
])
def test_the_schema_check_catches_a_broken_workflow(tmp_path, mutation, schema):
    workflow = load(PREVIEW)
    mutation(workflow)
    broken = tmp_path / "broken.yml"
    broken.write_text(json.dumps(workflow))
    assert check_jsonschema(broken, schema).returncode != 0


# ---- preview: both stacks, with the policy pack, commented on the PR ----------------------------


@pytest.fixture(scope="module")
def preview() -> dict:
    return load(PREVIEW)


def _preview_job(workflow: dict) -> tuple[str, dict]:
    jobs = [(name, job) for name, job in workflow["jobs"].items() if steps(job, "pulumi/actions")]
    assert len(jobs) == 1, "exactly one job runs pulumi/actions"
    return jobs[0]


def test_preview_runs_on_pull_requests(preview):
    assert "pull_request" in preview["on"]
    assert "pull_request_target" not in preview["on"], "pull_request_target would hand secrets to fork code"


def test_preview_runs_for_prod_and_dr_with_the_policy_pack_and_comments_on_the_pr(preview):
    _, job = _preview_job(preview)
    stacks = [entry["stack"] for entry in job["strategy"]["matrix"]["include"]]
    assert sorted(stacks) == ["dr", "prod"]
    [pulumi] = steps(job, "pulumi/actions")
    args = pulumi["with"]
    assert args["command"] == "preview"
    assert args["stack-name"] == "${{ matrix.stack }}"
    assert args["policyPacks"].split() == ["policy"]
    assert (ROOT / args["policyPacks"].strip() / "PulumiPolicy.yaml").is_file()
    assert args["comment-on-pr"] is True
    assert job["permissions"]["pull-requests"] == "write"


def test_preview_regions_are_the_stacks_regions(preview):
    _, job = _preview_job(preview)
    regions = {e["stack"]: e["region"] for e in job["strategy"]["matrix"]["include"]}
    assert regions == {"prod": "us-east-1", "dr": "us-west-2"}
    for stack, region in regions.items():
        config = ROOT / f"Pulumi.{stack}.yaml"
        if config.exists():  # written by the stacks work; when present they must agree
            assert yaml.safe_load(config.read_text())["config"]["aws:region"] == region


def test_preview_sets_up_the_venv_and_oidc_credentials_before_pulumi(preview):
    _, job = _preview_job(preview)
    setup = index_of(job, lambda s: "./scripts/setup.sh" in s.get("run", ""))
    creds = index_of(job, lambda s: s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    pulumi = index_of(job, lambda s: s.get("uses", "").startswith("pulumi/actions@"))
    assert setup < pulumi and creds < pulumi
    cred_args = job["steps"][creds]["with"]
    assert cred_args["role-to-assume"].startswith("${{ vars.")
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(cred_args)
    assert job["permissions"]["id-token"] == "write"
    python = steps(job, "actions/setup-python")
    assert python and python[0]["with"]["python-version"] == "3.11"


def test_preview_does_not_reach_the_cloud_from_forks(preview):
    _, job = _preview_job(preview)
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]


@pytest.mark.parametrize("path", [PREVIEW, DRILL], ids=["preview", "drill"])
def test_no_credentials_in_the_file_and_every_action_pinned(path):
    text = path.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text), "an AWS access key id is in the file"
    for value in re.findall(r"(?:TOKEN|SECRET|PASSWORD|PASSPHRASE|KEY)[A-Z_]*:\s*(\S.*)", text):
        assert value.strip().startswith("${{ secrets.") or value.strip().startswith("${{ vars."), value
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}, "least privilege by default; jobs widen it"
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), \
                    f"{step['uses']}: pin third-party actions to a full commit SHA"
            if "persist-credentials" in step.get("with", {}) or step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


# ---- drill: weekly and on demand, the README's first command, report kept ----------------------


@pytest.fixture(scope="module")
def drill() -> dict:
    return load(DRILL)


def readme_first_command() -> str:
    block = re.search(r"```[^\n]*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no code block"
    return block.group(1).strip().splitlines()[0].strip()


def test_drill_is_weekly_and_on_demand(drill):
    assert "workflow_dispatch" in drill["on"]
    [schedule] = drill["on"]["schedule"]
    minute, hour, day_of_month, month, day_of_week = schedule["cron"].split()
    assert (day_of_month, month) == ("*", "*") and re.fullmatch(r"[0-6]", day_of_week), "once a week"


def test_drill_runs_the_readmes_first_command_and_keeps_the_report(drill):
    [job] = drill["jobs"].values()
    command = readme_first_command()
    assert "runbooks.drill" in command
    run = index_of(job, lambda s: s.get("run", "").strip() == command)
    [upload] = steps(job, "actions/upload-artifact")
    assert job["steps"].index(upload) > run
    assert upload["if"] == "always()", "a failed drill's report is the one people need"
    report_dir = re.search(r"--report-dir\s+(\S+)", command).group(1)
    assert upload["with"]["path"].rstrip("/") == report_dir.rstrip("/")
