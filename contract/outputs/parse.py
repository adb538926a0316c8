"""Validating the outputs document: ``from_dict`` types a plain document and refuses the first bad
field (``OutputsError`` names it as a dotted path, with the fix); ``merge`` joins the two stacks' documents.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from contract.active_endpoints import DEPLOYMENT_NAME_HINT, is_deployment_name
from contract.outputs.schema import (
    COMPONENTS, DATABASE_ROLES, DNS_STRATEGIES, FAILOVER_TYPES, KEY_PREFIX, LOGICAL_NAME, MIRRORMAKER2_CONNECTORS,
    REGION_ROLES, SCHEMA_VERSION, TARGETS, BackupPolicy, BatchReplication, ComplianceArchive, ComponentBudget,
    ComponentObjectives, Database, Dns, Kubernetes, MirrorMaker2Flow, Objectives, Outputs, OutputsError, Region,
    RegionDns, RtoBudget, Storage, Streaming)

_SECRET_KEY = re.compile(r"(password|passwd|secret_string|secret_value|private_key|access_key_secret|secret_access_key"
                         r"|kubeconfig)", re.I)
_K8S_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K8S_OBJECT = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_CONTEXT = re.compile(r"^[^\s]{1,253}$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class _Reader:
    """Reads one mapping, recording the dotted path for errors."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, Mapping):
            raise OutputsError(path or "(document)", f"expected an object, got {type(data).__name__}")
        self.data = data
        self.path = path

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, required: bool = True) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise OutputsError(self._p(key), "missing; it is required")
            return None
        return self.data[key]

    def str(self, key: str, required: bool = True, choices: tuple[str, ...] | None = None) -> str | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise OutputsError(self._p(key), f"expected a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise OutputsError(self._p(key), f"{value!r} is not allowed; use one of {', '.join(choices)}")
        return value

    def int(self, key: str, required: bool = True, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
        value = self.raw(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise OutputsError(self._p(key), f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise OutputsError(self._p(key), f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise OutputsError(self._p(key), f"{value} is above the maximum {maximum}")
        return value

    def bool(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise OutputsError(self._p(key), f"expected true or false, got {value!r}")
        return value

    def obj(self, key: str, required: bool = True) -> "_Reader | None":
        value = self.raw(key, required)
        if value is None:
            return None
        return _Reader(value, self._p(key))

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key, required=False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise OutputsError(self._p(key), f"expected a list of strings, got {value!r}")
        return tuple(value)


def _reject_secrets(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if _SECRET_KEY.search(str(key)):
                raise OutputsError(here, "looks like a secret; secrets never go into stack outputs. "
                                   "Export where the secret lives (e.g. secret_arn) instead")
            _reject_secrets(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_secrets(item, f"{path}[{i}]")


def _database(r: _Reader, name: str) -> Database:
    return Database(
        name=name,
        identifier=r.str("identifier"),
        arn=r.str("arn"),
        endpoint=r.str("endpoint"),
        port=r.int("port", minimum=1, maximum=65535),
        role=r.str("role", choices=DATABASE_ROLES),
        db_name=r.str("db_name"),
        username=r.str("username"),
        secret_arn=r.str("secret_arn", required=False),
        security_group_id=r.str("security_group_id", required=False),
        source_arn=r.str("source_arn", required=False),
    )


def _region(r: _Reader, name: str) -> Region:
    dbs_reader = r.obj("databases")
    if not dbs_reader.data:
        raise OutputsError(dbs_reader.path, "no database; a region needs at least one")
    databases = {}
    for db_name in dbs_reader.data:
        if not isinstance(db_name, str) or not LOGICAL_NAME.match(db_name):
            raise OutputsError(f"{dbs_reader.path}.{db_name}", "a database's logical name must be lowercase "
                               "letters, digits and dashes, starting with a letter")
        databases[db_name] = _database(dbs_reader.obj(db_name), db_name)
    d = r.obj("dns")
    dns = RegionDns(failover=d.str("failover", choices=FAILOVER_TYPES), set_identifier=d.str("set_identifier"),
                    health_check_id=d.str("health_check_id", required=False),
                    address=d.str("address", required=False))
    role = r.str("role", choices=REGION_ROLES)
    expected = "PRIMARY" if role == "primary" else "SECONDARY"
    if dns.failover != expected:
        raise OutputsError(f"{d.path}.failover", f"a {role} region carries the {expected} record, not {dns.failover}")
    s = r.obj("streaming", required=False)
    streaming = None if s is None else Streaming(
        cluster_arn=s.str("cluster_arn"), bootstrap_brokers=s.str("bootstrap_brokers"),
        replicator_arn=s.str("replicator_arn", required=False),
        failback_replicator_arn=s.str("failback_replicator_arn", required=False),
        bootstrap_parameter=s.str("bootstrap_parameter", required=False),
        subnet_ids=s.str_list("subnet_ids"), security_group_ids=s.str_list("security_group_ids"),
        client_parameters=s.str_list("client_parameters"), consumer_groups=s.str_list("consumer_groups"),
        topics=s.str_list("topics"),
        client_refresh_seconds=s.int("client_refresh_seconds", required=False, minimum=0, maximum=3600),
        mirrormaker2=_mirrormaker2(s.obj("mirrormaker2", required=False)))
    st = r.obj("storage", required=False)
    storage = None if st is None else Storage(
        data_bucket=st.str("data_bucket"), data_bucket_arn=st.str("data_bucket_arn"),
        backups_bucket=st.str("backups_bucket", required=False),
        endpoint_url=st.str("endpoint_url", required=False),
        writer_parameter=st.str("writer_parameter", required=False),
        batch_replication=_batch_replication(st.obj("batch_replication", required=False)),
        archive=_archive(st.obj("archive", required=False)))
    return Region(
        name=name, role=role, stack=r.str("stack"), databases=databases, dns=dns,
        streaming=streaming, storage=storage,
        kms_key_arn=r.str("kms_key_arn", required=False),
        runbook_role_arn=r.str("runbook_role_arn", required=False),
        alarm_topic_arn=r.str("alarm_topic_arn", required=False),
        alarms=r.str_list("alarms"),
        kubernetes=_kubernetes(r.obj("kubernetes", required=False)),
    )


def _mirrormaker2(m: "_Reader | None") -> MirrorMaker2Flow | None:
    if m is None:
        return None
    topic = m.str("checkpoints_topic")
    if not topic.endswith(".checkpoints.internal"):
        raise OutputsError(m._p("checkpoints_topic"), f"{topic!r}: MirrorMaker 2 writes checkpoints to "
                           "<source alias>.checkpoints.internal; export that name")
    c = m.obj("connector_arns", required=False)
    arns = {}
    for kind in (c.data if c is not None else {}):
        if kind not in MIRRORMAKER2_CONNECTORS:
            raise OutputsError(c._p(str(kind)), f"not a MirrorMaker 2 connector kind; one of "
                               f"{', '.join(MIRRORMAKER2_CONNECTORS)}")
        arn = c.str(kind)
        if not arn.startswith("arn:") or ":kafkaconnect:" not in arn or ":connector/" not in arn:
            raise OutputsError(c._p(kind), f"{arn!r} is not an MSK Connect connector ARN")
        arns[kind] = arn
    return MirrorMaker2Flow(checkpoints_topic=topic, connector_arns=arns)


def _archive(a: "_Reader | None") -> ComplianceArchive | None:
    if a is None:
        return None
    role_arn, bucket = a.str("export_role_arn"), a.str("bucket")
    if not _IAM_ROLE_ARN.match(role_arn):
        raise OutputsError(a._p("export_role_arn"), f"{role_arn!r} is not an IAM role ARN "
                           "(arn:aws:iam::<12-digit account>:role/<name>); export the snapshot-export role's ARN")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise OutputsError(a._p("bucket"), f"{bucket!r} is not a bucket name; export the archive bucket's name")
    return ComplianceArchive(bucket=bucket, export_role_arn=role_arn)


def _batch_replication(b: "_Reader | None") -> BatchReplication | None:
    if b is None:
        return None
    role_arn = b.str("role_arn")
    if not _IAM_ROLE_ARN.match(role_arn):
        raise OutputsError(b._p("role_arn"), f"{role_arn!r} is not an IAM role ARN "
                           "(arn:aws:iam::<12-digit account>:role/<name>); export the S3 Batch Replication role's ARN")
    bucket = b.str("report_bucket")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise OutputsError(b._p("report_bucket"), f"{bucket!r} is not a bucket name; export the name (not the "
                           "ARN) of the bucket the job writes its report to")
    prefix = b.str("report_prefix")
    if not KEY_PREFIX.match(prefix):
        raise OutputsError(b._p("report_prefix"), f"{prefix!r} is not a key prefix the role can be scoped to: "
                           "letters, digits, '.', '_', '-' in '/'-separated parts, no leading or trailing '/'")
    return BatchReplication(role_arn=role_arn, report_bucket=bucket, report_prefix=prefix)


def _kubernetes(k: "_Reader | None") -> Kubernetes | None:
    if k is None:
        return None
    context = k.str("context")
    if not _CONTEXT.match(context):
        raise OutputsError(k._p("context"), f"{context!r} is not a kubeconfig context name (no spaces, at most "
                           "253 characters); export the context, e.g. the EKS cluster ARN")
    namespaces = k.str_list("namespaces")
    if not namespaces:
        raise OutputsError(k._p("namespaces"), "missing or empty; list the namespaces whose active-endpoints "
                           "ConfigMap the runbooks rewrite")
    for i, ns in enumerate(namespaces):
        if not _K8S_NAMESPACE.match(ns):
            raise OutputsError(f"{k._p('namespaces')}[{i}]", f"{ns!r} is not a Kubernetes namespace name "
                               "(lowercase letters, digits and dashes, at most 63)")
    if len(set(namespaces)) != len(namespaces):
        raise OutputsError(k._p("namespaces"), f"{list(namespaces)} lists a namespace twice; list each once")
    configmap = k.str("configmap", required=False) or Kubernetes.configmap
    if not _K8S_OBJECT.match(configmap):
        raise OutputsError(k._p("configmap"), f"{configmap!r} is not a Kubernetes object name")
    return Kubernetes(context=context, namespaces=namespaces, configmap=configmap,
                      restart_deployments=_restart_deployments(k.obj("restart_deployments", required=False), namespaces))


def _restart_deployments(r: "_Reader | None", namespaces: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    if r is None:
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for ns, names in r.data.items():
        where = r._p(str(ns))
        if ns not in namespaces:
            raise OutputsError(where, f"{ns!r} is not one of namespaces {list(namespaces)}: the runbooks restart "
                               "Deployments only where they rewrite the ConfigMap; fix the stack's "
                               "kubernetes.restart_deployments and `pulumi up`")
        if not isinstance(names, list) or not names:
            raise OutputsError(where, f"expected a non-empty list of Deployment names, got {names!r}")
        for i, name in enumerate(names):
            if not is_deployment_name(name):
                raise OutputsError(f"{where}[{i}]", f"{name!r}: expected {DEPLOYMENT_NAME_HINT}")
        if len(set(names)) != len(names):
            raise OutputsError(where, f"{names} lists a Deployment twice; list each once")
        found[ns] = tuple(names)
    return found


def _budgets(b: _Reader) -> dict[str, ComponentBudget]:
    cb = b.obj("components", required=False)
    out = {}
    for name in (cb.data if cb is not None else {}):
        if name not in COMPONENTS:
            raise OutputsError(f"rto_budget.components.{name}", f"not a component; use one of {', '.join(COMPONENTS)}")
        c = cb.obj(name)
        out[name] = ComponentBudget(c.int("total_seconds", minimum=0), c.int("rto_seconds", minimum=1),
                                    c.bool("within_objective"))
    return out


def from_dict(doc: Any) -> Outputs:
    """Validate a document and return it typed. Raises OutputsError naming the first bad field."""
    root = _Reader(doc, "")
    version = root.raw("schema_version")
    if version != SCHEMA_VERSION:
        raise OutputsError("schema_version", f"version {version!r} is not supported; this reader knows "
                           f"version {SCHEMA_VERSION}. Upgrade the runbooks or re-export the stacks")
    _reject_secrets(doc, "")
    target = root.str("target", choices=TARGETS)
    o = root.obj("objectives")
    rto, rpo = o.int("rto_seconds", minimum=1), o.int("rpo_seconds", minimum=0)
    co = o.obj("components", required=False)
    components = {}
    for name in (co.data if co is not None else {}):
        if name not in COMPONENTS:
            raise OutputsError(f"objectives.components.{name}", f"not a component; use one of {', '.join(COMPONENTS)}")
        c = co.obj(name)
        components[name] = ComponentObjectives(c.int("rto_seconds", minimum=1, maximum=rto),
                                               c.int("rpo_seconds", minimum=0, maximum=rpo))
    objectives = Objectives(rto_seconds=rto, rpo_seconds=rpo, components=components)
    b = root.obj("rto_budget", required=False)
    budget = None if b is None else RtoBudget(
        detection_seconds=b.int("detection_seconds", minimum=0), dns_ttl_seconds=b.int("dns_ttl_seconds", minimum=0),
        promotion_seconds=b.int("promotion_seconds", minimum=0), total_seconds=b.int("total_seconds", minimum=0),
        within_objective=b.bool("within_objective"), components=_budgets(b))
    d = root.obj("dns")
    records = d.raw("records")
    if not isinstance(records, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                    for k, v in records.items()):
        raise OutputsError("dns.records", f"expected an object of service name → record name, got {records!r}")
    dns = Dns(zone_name=d.str("zone_name"), ttl_seconds=d.int("ttl_seconds", minimum=0, maximum=86400),
              strategy=d.str("strategy", choices=DNS_STRATEGIES), records=dict(records),
              zone_id=d.str("zone_id", required=False), resolver=d.str("resolver", required=False))
    regions_reader = root.obj("regions")
    if not regions_reader.data:
        raise OutputsError("regions", "no region; a stack exports at least its own")
    regions = {name: _region(regions_reader.obj(name), name) for name in regions_reader.data}
    roles = [r.role for r in regions.values()]
    for role in REGION_ROLES:
        if roles.count(role) > 1:
            raise OutputsError("regions", f"{roles.count(role)} regions claim role {role!r}; a pair has one of each")
    for region in regions.values():
        for db in region.databases:
            if db not in dns.records:
                raise OutputsError("dns.records", f"database {db!r} of region {region.name} has no DNS record; "
                                   "clients reach every database through a record name")
    sandbox_dir = root.str("sandbox_dir", required=(target == "sandbox"))
    bp = root.obj("backup_policy", required=False)
    backup_policy = None if bp is None else BackupPolicy(
        snapshot_retention_days=bp.int("snapshot_retention_days", minimum=1),
        snapshot_keep_newest=bp.int("snapshot_keep_newest", minimum=1),
        automated_retention_days=bp.int("automated_retention_days", required=False, minimum=1, maximum=35) or 30,
        compliance_retention_days=bp.int("compliance_retention_days", required=False, minimum=1) or 2557)
    return Outputs(schema_version=SCHEMA_VERSION, project=root.str("project"), stack=root.str("stack"),
                   target=target, objectives=objectives, dns=dns, regions=regions, rto_budget=budget,
                   sandbox_dir=sandbox_dir, backup_policy=backup_policy)


def merge(*docs: Outputs) -> Outputs:
    """Join the documents of the two stacks (prod's and dr's) into one region pair.

    Regions are taken from every document; a region present in two documents must be the same
    (the dr stack re-exports prod's region as read through its StackReference)."""
    if not docs:
        raise OutputsError("(documents)", "nothing to merge")
    first = docs[0]
    regions: dict[str, Region] = {}
    for doc in docs:
        if doc.project != first.project:
            raise OutputsError("project", f"documents of different projects: {first.project!r} and {doc.project!r}")
        for name, region in doc.regions.items():
            # the stack that owns the region is the authority for it
            if name not in regions or region.stack == doc.stack:
                regions[name] = region
    owner = next((d for d in docs if d.stack == first.stack and len(d.regions) > 1), None) or \
        max(docs, key=lambda d: len(d.regions))
    merged = Outputs(schema_version=SCHEMA_VERSION, project=first.project, stack=owner.stack,
                     target=owner.target, objectives=owner.objectives, dns=owner.dns, regions=regions,
                     rto_budget=owner.rto_budget, sandbox_dir=owner.sandbox_dir,
                     backup_policy=owner.backup_policy or next((d.backup_policy for d in docs if d.backup_policy), None))
    return from_dict(merged.to_dict())

