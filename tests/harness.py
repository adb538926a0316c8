"""Run the REAL stack program for a stack's config under Pulumi mocks, without a cloud or the CLI.

    render_stack("prod") -> list[dict]      every resource: {type, name, parent, provider, inputs, urn}
    stack_exports("dr")  -> dict            the stack's exports (the outputs contract document)
    render("dr", overrides={"promoted": True}) -> Rendered   both, plus warnings, for any config

The config is read from `Pulumi.<stack>.yaml` exactly as `pulumi up` would see it. The dr stack
reads prod's exports through a StackReference; the mocks answer it with the exports of a render
of the prod stack. The mocks synthesise the computed outputs a real deployment would return
(ARNs, ids, endpoints, ports, secret ARNs …) deterministically, so two renders are identical.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks, settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "regionpair"
ACCOUNT = "123456789012"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
LAST: dict[str, Any] = {}
"""The registrations of the last render, also when it failed (tests: nothing declared before validation)."""


def _hex(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _provider_name(ref: str | None) -> str | None:
    """`urn:…::pulumi:providers:aws::aws-us-east-1::ID` → `aws-us-east-1`."""
    if not ref:
        return None
    parts = ref.split("::")
    return parts[-2] if len(parts) >= 3 else ref


def _region_of(provider: str | None) -> str:
    name = _provider_name(provider) or ""
    return name[len("aws-"):] if name.startswith("aws-") else "us-east-1"


def computed_outputs(typ: str, name: str, inputs: Mapping[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """The id and the outputs AWS would compute for a resource (deterministic)."""
    h = _hex(typ, name, region)
    out: dict[str, Any] = {}
    rid = f"{name}-{h[:8]}"
    if typ == "aws:kms/key:Key":
        rid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-0000-{h[:12]}"
        out.update(keyId=rid, arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}")
    elif typ == "aws:kms/alias:Alias":
        out.update(arn=f"arn:aws:kms:{region}:{ACCOUNT}:{inputs['name']}")
    elif typ == "aws:ec2/vpc:Vpc":
        rid = f"vpc-{h}"
        out.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT}:vpc/{rid}")
    elif typ == "aws:ec2/subnet:Subnet":
        rid = f"subnet-{h}"
        out.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT}:subnet/{rid}")
    elif typ == "aws:ec2/securityGroup:SecurityGroup":
        rid = f"sg-{h}"
        out.update(arn=f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/{rid}")
    elif typ in ("aws:rds/subnetGroup:SubnetGroup", "aws:rds/parameterGroup:ParameterGroup"):
        rid = inputs.get("name", rid)
        kind = "subgrp" if "subnet" in typ else "pg"
        out.update(name=rid, arn=f"arn:aws:rds:{region}:{ACCOUNT}:{kind}:{rid}")
    elif typ == "aws:iam/role:Role":
        rid = inputs.get("name") or f"{name}-{h[:7]}"
        out.update(name=rid, arn=f"arn:aws:iam::{ACCOUNT}:role/{rid}", uniqueId=f"AROA{h[:16].upper()}")
    elif typ == "aws:iam/rolePolicy:RolePolicy":
        rid = f"{inputs.get('role')}:{name}"
    elif typ == "aws:rds/instance:Instance":
        ident = inputs.get("identifier") or f"{name}-{h[:7]}"
        rid = ident
        address = f"{ident}.c{h[:10]}.{region}.rds.amazonaws.com"
        port = inputs.get("port", 5432)
        out.update(identifier=ident, arn=f"arn:aws:rds:{region}:{ACCOUNT}:db:{ident}", address=address,
                   endpoint=f"{address}:{port}", port=port, resourceId=f"db-{h[:26].upper()}")
        if inputs.get("manageMasterUserPassword"):
            out["masterUserSecrets"] = [{
                "secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:rds!db-{h[:8]}-{h[8:14]}",
                "secretStatus": "active", "kmsKeyId": inputs.get("masterUserSecretKmsKeyId")}]
    elif typ == "aws:msk/configuration:Configuration":
        out.update(arn=f"arn:aws:kafka:{region}:{ACCOUNT}:configuration/{inputs.get('name', name)}/{h[:8]}",
                   latestRevision=1)
    elif typ == "aws:msk/cluster:Cluster":
        cluster = inputs.get("clusterName", name)
        out.update(arn=f"arn:aws:kafka:{region}:{ACCOUNT}:cluster/{cluster}/{h[:8]}-{h[8:12]}-1",
                   bootstrapBrokersSaslIam=",".join(
                       f"b-{i}.{cluster}.{h[:6]}.c2.kafka.{region}.amazonaws.com:9098" for i in (1, 2, 3)),
                   currentVersion=f"K{h[:12].upper()}")
        rid = out["arn"]
    elif typ == "aws:msk/replicator:Replicator":
        out.update(arn=f"arn:aws:kafka:{region}:{ACCOUNT}:replicator/{inputs.get('replicatorName', name)}/{h[:8]}-2")
        rid = out["arn"]
    elif typ in ("aws:mskconnect/customPlugin:CustomPlugin", "aws:mskconnect/workerConfiguration:WorkerConfiguration"):
        kind = "custom-plugin" if "customPlugin" in typ else "worker-configuration"
        out.update(arn=f"arn:aws:kafkaconnect:{region}:{ACCOUNT}:{kind}/{inputs.get('name', name)}/{h[:8]}-{h[8:12]}-4",
                   latestRevision=1)
        rid = out["arn"]
    elif typ == "aws:mskconnect/connector:Connector":
        out.update(arn=f"arn:aws:kafkaconnect:{region}:{ACCOUNT}:connector/{inputs.get('name', name)}/{h[:8]}-{h[8:12]}-2",
                   version=f"K{h[:12].upper()}")
        rid = out["arn"]
    elif typ == "aws:s3/bucket:Bucket":
        rid = inputs.get("bucket") or f"{name}-{h[:8]}"
        out.update(bucket=rid, arn=f"arn:aws:s3:::{rid}", region=region,
                   bucketRegionalDomainName=f"{rid}.s3.{region}.amazonaws.com")
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        rid = inputs.get("name") or name
        out.update(arn=f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{rid}")
    elif typ == "aws:route53/healthCheck:HealthCheck":
        rid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:17]}000-{h[:12]}"
        out.update(arn=f"arn:aws:route53:::healthcheck/{rid}")
    elif typ == "aws:sns/topic:Topic":
        out.update(arn=f"arn:aws:sns:{region}:{ACCOUNT}:{inputs.get('name', name)}")
        rid = out["arn"]
    elif typ == "aws:ssm/parameter:Parameter":
        rid = inputs.get("name", name)
        out.update(arn=f"arn:aws:ssm:{region}:{ACCOUNT}:parameter{rid}", version=1)
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        rid = inputs.get("name", name)
        out.update(arn=f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{rid}")
    elif typ == "aws:route53/record:Record":
        out.update(fqdn=inputs.get("name"))
    elif typ == "aws:secretsmanager/secret:Secret":
        out.update(arn=f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{inputs.get('name', name)}-{h[:6]}")
        rid = out["arn"]
    return rid, out


@dataclass
class Rendered:
    resources: list[dict[str, Any]]
    exports: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]]):
        self.stack_outputs = stack_outputs
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        inputs = dict(args.inputs)
        self.inputs[(args.typ, args.name)] = inputs
        if args.typ == STACK_REFERENCE:
            stack = inputs.get("name", args.name)
            if stack not in self.stack_outputs:
                raise KeyError(f"StackReference to {stack!r}: the harness has no exports for it "
                               f"(it knows {sorted(self.stack_outputs)})")
            return f"{stack}", {"name": stack, "outputs": copy.deepcopy(dict(self.stack_outputs[stack])),
                                "secretOutputNames": []}
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id", inputs
        if not args.custom:
            return "", {}
        rid, out = computed_outputs(args.typ, args.name, inputs, _region_of(args.provider))
        return rid, {**inputs, **out}

    def call(self, args: pulumi.runtime.MockCallArgs):
        region = _region_of(args.provider)
        self.calls.append({"token": args.token, "provider": _provider_name(args.provider)})
        if args.token == "aws:secretsmanager/getRandomPassword:getRandomPassword":
            # mock data, the same on every run (the real invoke answers a new value each time)
            return {"id": region, "randomPassword": "mock" + _hex("password", region, n=24)}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "id": ACCOUNT, "userId": "AIDACI"}
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{z}" for z in "abc"]
            return {"id": region, "names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 3)], "groupNames": names}
        if args.token == "aws:s3/getCanonicalUserId:getCanonicalUserId":
            return {"id": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be", "displayName": "ci"}
        raise NotImplementedError(f"the harness mocks no invoke {args.token}; add it to tests/harness.py")


class _Recorder(pulumi_mocks.MockMonitor):
    """The mock monitor, also recording each registration's parent and provider."""

    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.registrations: list[dict[str, Any]] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append({"urn": response.urn, "type": request.type, "name": request.name,
                                       "parent": request.parent, "provider": request.provider,
                                       "custom": request.custom, "ignore_changes": list(request.ignoreChanges),
                                       "property_dependencies": {k: sorted(set(v.urns)) for k, v in
                                                                 request.propertyDependencies.items() if v.urns}})
        return response


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get(_SIG_KEY) == _SECRET_SIG:
        # an input the provider marks secret: keep it visible (mock data) but marked
        return {"secret": _plain(value.get("value"))}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    return repr(value)


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`Pulumi.<stack>.yaml`'s config as the engine hands it to the program (namespaced, JSON values)."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    raw = dict(doc.get("config") or {})
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            raw.pop(full, None)
        else:
            raw[full] = value
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def render(stack: str, overrides: Mapping[str, Any] | None = None,
           stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
           program: Callable[[], Any] | None = None, secret_keys: list[str] | None = None) -> Rendered:
    """Run the program for `stack` (config from Pulumi.<stack>.yaml plus `overrides`) under mocks.

    `stack_outputs` answers StackReferences by stack name; by default the dr stack's reference
    to prod is answered with a render of the prod stack. `secret_keys`: config keys stored as secrets."""
    config = stack_config(stack, overrides)
    if stack_outputs is None:
        ref = config.get(f"{PROJECT}:prod_stack")
        stack_outputs = {ref: copy.deepcopy(stack_exports("prod"))} if ref else {}

    mocks = _Mocks(stack_outputs)
    monitor = _Recorder(mocks)
    LAST["registrations"] = monitor.registrations
    LAST["calls"] = mocks.calls
    warnings = _Warnings()
    logger = logging.getLogger(f"tests.harness.{stack}")
    logger.propagate = False
    logger.handlers[:] = [warnings]
    logger.setLevel(logging.WARNING)

    pulumi_settings.ROOT.set(None)
    set_all_config(config, [k if ":" in k else f"{PROJECT}:{k}" for k in secret_keys or []])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, logger=logger, monitor=monitor)
    settings = pulumi_settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()

    exports: dict[str, Any] = {}

    async def run() -> None:
        if program is None:
            from stacks.program import main
            main()
        else:
            program()
        root = pulumi_settings.get_root_resource()
        for key, value in dict(root.outputs).items():
            exports[key] = await pulumi.Output.from_input(value).future()

    _sync_await(run_pulumi_func(lambda: run()))

    by_urn = {r["urn"]: r for r in monitor.registrations}
    resources = []
    for r in monitor.registrations:
        parent = by_urn.get(r["parent"])
        resources.append({
            "type": r["type"],
            "name": r["name"],
            "parent": parent["name"] if parent else None,
            "provider": _provider_name(r["provider"]),
            "inputs": _plain(mocks.inputs.get((r["type"], r["name"]), {})) if r["custom"] or
            r["type"] == STACK_REFERENCE else {},
            "urn": r["urn"],
            # which resources each input was computed from (what the engine hands CrossGuard as
            # property dependencies); not part of the snapshots
            "property_dependencies": r["property_dependencies"],
        })
    resources.sort(key=lambda r: (r["type"], r["name"], r["urn"]))
    return Rendered(resources=resources, exports=_plain(exports), warnings=list(warnings.messages))


def render_program(program: Callable[[], Any], stack: str = "test",
                   stack_outputs: Mapping[str, Mapping[str, Any]] | None = None) -> Rendered:
    """Run any program (e.g. one component) under the same mocks; for component tests."""
    return render(stack, stack_outputs=stack_outputs or {}, program=program)


def use_mocks(stack: str = "test") -> None:
    """Install the mocks for a `@pulumi.runtime.test` test (fresh root stack, no config)."""
    pulumi_settings.ROOT.set(None)
    set_all_config({})
    pulumi.runtime.set_mocks(_Mocks({}), project=PROJECT, stack=stack, preview=False)


def of_type(resources: list[dict[str, Any]], typ: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == typ]


def one(resources: list[dict[str, Any]], typ: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in of_type(resources, typ) if name is None or r["name"] == name]
    if len(found) != 1:
        raise AssertionError(f"expected one {typ} {name or ''}, found {[r['name'] for r in found]}")
    return found[0]


@lru_cache(maxsize=None)
def _cached(stack: str) -> str:
    rendered = render(stack)
    return json.dumps({"resources": rendered.resources, "exports": rendered.exports, "warnings": rendered.warnings})


def render_stack(stack_name: str) -> list[dict[str, Any]]:
    """Every resource of the stack's real program under mocks, sorted: {type, name, parent, provider, inputs, urn}."""
    return json.loads(_cached(stack_name))["resources"]


def stack_exports(stack_name: str) -> dict[str, Any]:
    """The stack's exports (top-level keys of the outputs contract)."""
    return json.loads(_cached(stack_name))["exports"]


def stack_warnings(stack_name: str) -> list[str]:
    return json.loads(_cached(stack_name))["warnings"]


def check_snapshot(path: Path, resources: list[dict[str, Any]], what: str) -> None:
    """Compare a rendered graph with its committed snapshot; ``UPDATE_SNAPSHOTS=1`` rewrites it
    (review the diff and commit it with the change that meant it)."""
    import difflib
    import os

    import pytest
    current = json.dumps([{k: v for k, v in r.items() if k != "property_dependencies"} for r in resources],
                         indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(current)
    assert path.exists(), f"no snapshot {path}; create it with UPDATE_SNAPSHOTS=1 and review it before committing"
    committed = path.read_text()
    if committed != current:
        diff = list(difflib.unified_diff(committed.splitlines(), current.splitlines(), f"committed {path.name}",
                                         f"rendered {what}", lineterm="", n=2))
        shown = "\n".join(diff[:200]) + ("\n… (diff truncated)" if len(diff) > 200 else "")
        pytest.fail(f"{what}: the resource graph changed. If that is meant, regenerate with UPDATE_SNAPSHOTS=1 "
                    f".venv/bin/python -m pytest tests/unit and commit the snapshot with the change.\n{shown}",
                    pytrace=False)


MIRRORMAKER2 = {"replication": "mirrormaker2", "mirrormaker2": {
    "plugin": {"bucket_arn": "arn:aws:s3:::regionpair-plugins-us-west-2",
               "file_key": "mirrormaker2/kafka-3.7.2-msk-iam-auth.zip"},
    "source_cidrs": ["10.10.0.0/16"]}}
"""``streaming`` of the dr stack running MirrorMaker 2 on MSK Connect (prod's VPC is 10.10.0.0/16)."""
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dr+mirrormaker2": ("dr", {"streaming": MIRRORMAKER2}),
}
"""Named stack configs beyond the two files: name → (stack, config overrides)."""


@lru_cache(maxsize=None)
def _cached_variant(name: str) -> str:
    stack, overrides = VARIANTS[name]
    saved = pulumi.runtime.config.CONFIG.get()
    try:  # a render sets Pulumi's global config; later tests must not inherit the variant's
        rendered = render(stack, overrides=overrides)
    finally:
        pulumi.runtime.config.CONFIG.set(saved)
    return json.dumps({"resources": rendered.resources, "exports": rendered.exports})


def render_variant(name: str) -> list[dict[str, Any]]:
    """Like ``render_stack`` for a ``VARIANTS`` entry (cached)."""
    return json.loads(_cached_variant(name))["resources"]
