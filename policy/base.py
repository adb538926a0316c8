"""The vocabulary every check of the pack speaks: the type tokens, the value model (``UNKNOWN``,
``plain``, ``document``, ``get``, ``is_set``, ``as_list``), ``Resource`` / ``Violation`` /
``StackSettings``, the helpers that find a stack's resources and what names a bucket, and the
factories that wrap a check into a CrossGuard policy (``resource_policy``, ``stack_policy``).

It imports no other module of the pack, and every other module imports it: as
``policy.base`` (the tests and policy/__main__.py alike).

Values that are computed by the cloud (a key's ARN, a bucket's id) are unknown during
``pulumi preview``. A check that only needs to know a value *will be set* treats an unknown as
set; a check that needs the value itself skips it during preview, and the same policy sees the
resolved value when ``pulumi up`` runs it again just before the resource is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PROJECT = "regionpair"
"""The Pulumi project whose stack config (``regionpair:role``, ``regionpair:promoted``) the
stack-level policies read."""

# ---- pulumi-aws 7.x type tokens (checked against the installed provider in the tests) -------

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_BACKUP_REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
                          "InstanceAutomatedBackupsReplication")
MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_CONFIGURATION = "aws:msk/configuration:Configuration"
MSK_REPLICATOR = "aws:msk/replicator:Replicator"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning",
                  "aws:s3/bucketVersioningV2:BucketVersioningV2")
S3_ENCRYPTIONS = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SNS_TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
ROUTE53_RECORD = "aws:route53/record:Record"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


# ---- values: plain Python, with one marker for "computed, unknown during preview" -----------


class _Unknown:
    _instance: Optional["_Unknown"] = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<computed>"

    def __bool__(self) -> bool:  # an unknown is never mistaken for a literal True
        return False


UNKNOWN = _Unknown()
"""A value the engine cannot know during preview (an output of another resource)."""

_SENTINELS = frozenset((UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
                        UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE))


def plain(value: Any) -> Any:
    """The SDK's props (proxies that raise on unknown values, secrets) as plain dicts and lists,
    with every unknown replaced by ``UNKNOWN``. Works on plain dicts too."""
    if isinstance(value, Secret):
        value = value.value
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                item = value[key]
            except UnknownValueError:
                out[key] = UNKNOWN
            else:
                out[key] = plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                item = value[i]
            except UnknownValueError:
                items.append(UNKNOWN)
            else:
                items.append(plain(item))
        return items
    return value


def document(value: Any) -> Optional[Mapping[str, Any]]:
    """A JSON document (a policy, a config object) given as JSON text or a mapping; None when it is
    neither (unknown during a preview, or not an object)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def get(props: Any, *path: Any) -> Any:
    """``props[path[0]][path[1]]…``; None when any step is missing, UNKNOWN when a step is unknown.
    A one-element list on the way is looked into (the provider models single blocks as lists)."""
    value = props
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(key, str) and isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return None
            value = value[key]
        elif isinstance(value, Mapping):
            value = value.get(key)
        else:
            return None
    return value


def is_set(value: Any) -> bool:
    """Declared with a value (an unknown counts: it will be set to whatever it is computed to)."""
    if value is UNKNOWN:
        return True
    return value is not None and value != "" and value != [] and value != {}


def as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    if isinstance(value, list):
        return value
    return [value]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aws_managed_key(value: Any) -> bool:
    """``alias/aws/rds`` and the like: a key AWS owns, whose policy nobody here can change."""
    return isinstance(value, str) and ("alias/aws/" in value)


# ---- what a check sees: a resource, a violation, the stack's own config ---------------------


@dataclass(frozen=True)
class Resource:
    """What a check sees of one resource: the type token, the logical name, the URN and the props
    (provider property names), plus which resources each property was computed from."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.type})"

    @classmethod
    def of(cls, args: Any) -> "Resource":
        """From the SDK's ResourceValidationArgs or PolicyResource."""
        deps: dict[str, tuple[str, ...]] = {}
        for prop, resources in (getattr(args, "property_dependencies", None) or {}).items():
            deps[prop] = tuple(r.urn for r in resources)
        return cls(type=args.resource_type, name=args.name, props=plain(args.props), urn=args.urn,
                   property_dependencies=deps)


@dataclass(frozen=True)
class Violation:
    resource: Optional[Resource]
    message: str

    @property
    def urn(self) -> Optional[str]:
        return self.resource.urn if self.resource is not None and self.resource.urn else None


@dataclass(frozen=True)
class StackSettings:
    """What the stack's own config says (``regionpair:role``, ``regionpair:promoted``); None when the
    pack cannot see it."""

    role: Optional[str] = None
    promoted: Optional[bool] = None

    @classmethod
    def from_pulumi_config(cls) -> "StackSettings":
        """Read the running stack's config, which the CLI passes to the policy pack."""
        import pulumi.runtime

        role = pulumi.runtime.get_config(f"{PROJECT}:role")
        promoted = pulumi.runtime.get_config(f"{PROJECT}:promoted")
        if isinstance(promoted, str):
            promoted = promoted.strip().lower() == "true"
        return cls(role=role if isinstance(role, str) else None,
                   promoted=promoted if isinstance(promoted, bool) else None)


# ---- helpers the checks share -----------------------------------------------------------------


def key_problems(r: Resource, prop: str, what: str, fix: str) -> list[str]:
    """A customer-managed KMS key must be named in ``prop``."""
    value = r.props.get(prop)
    if not is_set(value):
        return [f"{r.label}: {what} has no customer KMS key ({prop} is not set), so AWS would use its own "
                f"managed key, which this project cannot control or share across regions. Fix: {fix}."]
    if aws_managed_key(value):
        return [f"{r.label}: {what} uses the AWS-managed key {value!r} ({prop}); its key policy cannot be "
                f"changed, so other services and regions cannot be granted use of it. Fix: {fix}."]
    return []


def is_replica(r: Resource) -> bool:
    return is_set(r.props.get("replicateSourceDb"))


def parse_server_properties(text: str) -> dict[str, str]:
    """Kafka ``server.properties`` text as a dict (``#``/``!`` comments, ``=`` or ``:`` separators)."""
    result = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if match:
            result[match.group(1)] = match.group(2).strip()
    return result


# ---- finding a stack's resources, and what names a bucket ------------------------------------


def of_type(resources: Iterable[Resource], types: Iterable[str] | str) -> list[Resource]:
    wanted = (types,) if isinstance(types, str) else tuple(types)
    return [r for r in resources if r.type in wanted]


def bucket_names(bucket: Resource) -> set[str]:
    names = set()
    for key in ("bucket", "id", "arn"):
        value = bucket.props.get(key)
        if isinstance(value, str) and value:
            names.add(value)
            if value.startswith("arn:aws:s3:::"):
                names.add(value[len("arn:aws:s3:::"):])
    return names


def refers_to(holder: Resource, prop: str, value: Any, bucket: Resource) -> bool:
    """Does ``holder``'s ``prop`` (whose value here is ``value``) name ``bucket``? By value (a bucket
    name or ARN) when known, else by the engine's record of which resources ``prop`` came from."""
    if isinstance(value, str) and value:
        name = value[len("arn:aws:s3:::"):] if value.startswith("arn:aws:s3:::") else value
        if name in bucket_names(bucket) or value in bucket_names(bucket):
            return True
    if value is UNKNOWN or value is None:
        return bucket.urn in holder.property_dependencies.get(prop, ())
    return False


def configs_for(bucket: Resource, configs: list[Resource]) -> list[Resource]:
    return [c for c in configs if refers_to(c, "bucket", c.props.get("bucket"), bucket)]


def contract_documents(value: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """The outputs contract documents (``schema_version`` and ``regions``) found in a StackReference's
    outputs, at most four levels down."""
    if not isinstance(value, Mapping) or depth > 4:
        return []
    if "schema_version" in value and isinstance(value.get("regions"), Mapping):
        return [value]
    docs: list[Mapping[str, Any]] = []
    for item in value.values():
        docs += contract_documents(item, depth + 1)
    return docs


# ---- wrapping a check into a CrossGuard policy ------------------------------------------------


ResourceCheck = Callable[[Resource], list[str]]
StackCheck = Callable[[list[Resource], StackSettings], list[Violation]]


def resource_policy(name: str, description: str, check: ResourceCheck) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(Resource.of(args)):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def stack_policy(name: str, description: str, check: StackCheck,
                 settings: Callable[[], StackSettings] = StackSettings.from_pulumi_config) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [Resource.of(r) for r in args.resources]
        for violation in check(resources, settings()):
            report_violation(violation.message, violation.urn)

    return StackValidationPolicy(name=name, description=description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


def ignoring_settings(check: Callable[[list[Resource]], list[Violation]]) -> StackCheck:
    return lambda resources, _settings: check(resources)

