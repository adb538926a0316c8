"""Drills on ephemeral drill stacks in AWS, through the Pulumi Automation API.

Creates a prod/dr pair of stacks named ``<prefix>-prod`` and ``<prefix>-dr`` from this project
(config ``ephemeral: true``: no deletion protection, no final snapshot, buckets emptied on
destroy — the drill's own stacks only), runs the runbooks against their outputs, writes the
report, and ALWAYS destroys and removes both stacks, also on failure and on Ctrl-C. A destroy
that fails is reported loudly with the stacks left behind.

This needs the Pulumi CLI and AWS credentials; here it is tested with a fake workspace.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

log = logging.getLogger(__name__)


class StackLike(Protocol):
    name: str

    def set_all_config(self, config: dict) -> None: ...

    def up(self, on_output: Callable[[str], Any] | None = None) -> Any: ...

    def outputs(self) -> dict: ...

    def destroy(self, on_output: Callable[[str], Any] | None = None, remove: bool = True) -> Any: ...


StackFactory = Callable[[str, Path], StackLike]


def automation_stack(name: str, project_dir: Path) -> StackLike:
    """A real stack of this project through the Automation API (needs the pulumi CLI)."""
    from pulumi import automation as auto

    stack = auto.create_or_select_stack(stack_name=name, work_dir=str(project_dir))
    return _AutoStack(stack, name, Path(project_dir))


class _AutoStack:
    def __init__(self, stack, name: str, project_dir: Path):
        self._stack = stack
        self.name = name
        self.config_file = project_dir / f"Pulumi.{name}.yaml"

    def set_all_config(self, config: dict) -> None:
        # structured values (lists of databases, the dns object) go in as YAML, as in Pulumi.prod.yaml
        import yaml
        self.config_file.write_text(yaml.safe_dump({"config": config}, sort_keys=True))

    def up(self, on_output=None):
        return self._stack.up(on_output=on_output)

    def outputs(self) -> dict:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def destroy(self, on_output=None, remove: bool = True):
        result = self._stack.destroy(on_output=on_output, remove=remove)
        self.config_file.unlink(missing_ok=True)
        return result


@dataclass
class StacksDrillConfig:
    prefix: str
    primary_region: str = "us-east-1"
    dr_region: str = "us-west-2"
    project_dir: Path = Path(".")
    extra_config: dict | None = None


def stack_configs(cfg: StacksDrillConfig, prod_name: str) -> tuple[dict, dict]:
    """The drill stacks' config: the committed prod and dr configs, made ephemeral (destroyable),
    with record names of their own (never production's), the drill's regions, and dr naming the
    drill's prod stack."""
    import yaml

    def committed(stack: str) -> dict:
        path = Path(cfg.project_dir) / f"Pulumi.{stack}.yaml"
        try:
            return dict(yaml.safe_load(path.read_text())["config"])
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing: run the stacks drill from the Pulumi project directory "
                                    "(--project-dir)") from None
    prod, dr = committed("prod"), committed("dr")
    for config, region in ((prod, cfg.primary_region), (dr, cfg.dr_region)):
        config["aws:region"] = region
        config["regionpair:ephemeral"] = True
        config["regionpair:dns"] = dict(config["regionpair:dns"], record_prefix=f"{cfg.prefix}-")
        config.pop("regionpair:promoted", None)
        config.update(cfg.extra_config or {})
    org_project = dr["regionpair:prod_stack"].rsplit("/", 1)[0]
    dr["regionpair:prod_stack"] = f"{org_project}/{prod_name}"
    dr["regionpair:primary_region"] = cfg.primary_region
    prod["regionpair:dr_region"] = cfg.dr_region
    return prod, dr


def run(cfg: StacksDrillConfig, work_dir: Path, run_runbooks: Callable[[list[Path]], dict],
        stack_factory: StackFactory = automation_stack, say: Callable[[str], None] = print) -> dict:
    """Create both stacks, hand their outputs files to ``run_runbooks``, always destroy both.

    Returns what ``run_runbooks`` returned, plus the teardown's outcome."""
    prod_name, dr_name = f"{cfg.prefix}-prod", f"{cfg.prefix}-dr"
    prod_cfg, dr_cfg = stack_configs(cfg, prod_name)
    created: list[StackLike] = []
    result: dict = {"stacks": [prod_name, dr_name]}
    try:
        for name, config in ((prod_name, prod_cfg), (dr_name, dr_cfg)):
            say(f"drill stacks: creating {name}")
            stack = stack_factory(name, cfg.project_dir)
            created.append(stack)
            stack.set_all_config(config)
            stack.up(on_output=lambda line: log.info("%s", line.rstrip()))
        files = []
        for stack in created:
            path = work_dir / f"{stack.name}-outputs.json"
            path.write_text(json.dumps(stack.outputs(), indent=2, sort_keys=True))
            files.append(path)
        result.update(run_runbooks(files))
        return result
    finally:
        result["teardown"] = teardown(created, say)


def teardown(stacks: list[StackLike], say: Callable[[str], None]) -> dict:
    """Destroy in reverse order of creation (dr owns the cross-region links); never stop half-way."""
    left, done = [], []
    for stack in reversed(stacks):
        try:
            stack.destroy(on_output=lambda line: log.info("%s", line.rstrip()), remove=True)
            done.append(stack.name)
            say(f"drill stacks: destroyed {stack.name}")
        except Exception as exc:  # noqa: BLE001 - keep destroying the others, then report every leftover
            left.append({"stack": stack.name, "error": f"{type(exc).__name__}: {exc}"})
            say(f"drill stacks: DESTROY FAILED for {stack.name}: {exc}. It still costs money: run "
                f"`pulumi destroy --stack {stack.name} --yes && pulumi stack rm {stack.name} --yes`")
    return {"destroyed": done, "left_behind": left}


def preflight(args, stack_factory: StackFactory) -> None:
    """What the stacks drill needs before it creates anything (no stack, no report folder): the
    pulumi CLI, which the Automation API runs, and the committed stack configs it copies. A
    missing one is bad input (exit 2), as in the failover's ``--stack``."""
    from runbooks.core.errors import BadInput

    if stack_factory is automation_stack and shutil.which("pulumi") is None:
        raise BadInput("the pulumi CLI is not on PATH: the stacks drill creates its stacks through the Automation "
                       "API, which runs it. Install it (pulumi.com/docs/install) and log in, or rehearse on the "
                       "sandbox with --target sandbox; nothing was created")
    missing = [f"Pulumi.{s}.yaml" for s in ("prod", "dr") if not (Path(args.project_dir) / f"Pulumi.{s}.yaml").is_file()]
    if missing:
        raise BadInput(f"{', '.join(missing)} not found in {Path(args.project_dir).resolve()}: pass the Pulumi project "
                       "directory with --project-dir (the drill stacks copy its committed configs); nothing was created")


def main_for_drill(args, say: Callable[[str], None], stack_factory: StackFactory = automation_stack,
                   ports_factory=None) -> dict:
    """``python -m runbooks.drill --target stacks``: a region-outage failover (and optional failback)
    on fresh drill stacks. Without a workload inside the VPC the RTO is the runbook's own duration
    and the RPO its pre-promotion estimate; the report says so."""
    import io
    import tempfile
    import time

    from runbooks import failback, failover

    preflight(args, stack_factory)
    report_dir = (args.report_dir or Path("reports") / f"drill-stacks-{time.strftime('%Y%m%dT%H%M%S')}").resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    cfg = StacksDrillConfig(prefix=args.prefix, primary_region=args.primary_region, dr_region=args.dr_region,
                            project_dir=args.project_dir)

    def run_runbooks(files: list[Path]) -> dict:
        outs = {}
        for module, kind in ((failover, "failover"),) + (((failback, "failback"),) if args.failback else ()):
            buf = io.StringIO()
            argv = [x for f in files for x in ("--outputs", str(f))] + [
                "--yes", "--output", "json", "--report-dir", str(report_dir / kind),
                "--state-dir", str(report_dir / "state")]
            code = module.main(argv, stdout=buf, **({"ports_factory": ports_factory} if ports_factory else {}))
            outs[kind] = json.loads(buf.getvalue())
            outs[kind]["exit_code"] = code
            if code != 0:
                break
        return {"runbooks": outs}

    with tempfile.TemporaryDirectory(prefix="regionpair-drill-stacks-") as work:
        result = run(cfg, Path(work), run_runbooks, stack_factory, say)
    fo = result.get("runbooks", {}).get("failover", {})
    passed = bool(fo.get("passed")) and all(r.get("exit_code") == 0 for r in result.get("runbooks", {}).values()) \
        and not result["teardown"]["left_behind"]
    result.update(scenario="region-outage", target_kind="stacks", passed=passed,
                  rto_seconds=fo.get("rto_seconds"), rpo=fo.get("rpo"),
                  rto_definition="the failover runbook's duration (no client workload runs against drill stacks)")
    (report_dir / "drill.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    return result
