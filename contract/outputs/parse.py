"""Validating the outputs document: ``from_dict`` types a plain document and refuses the first bad
field (``OutputsError`` names it as a dotted path, with the fix); ``merge`` joins the two stacks' documents.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from contract.active_endpoints import DEPLOYMENT_NAME_HINT, is_deployment_name
from contract.fields import MISSING, Fields, Problem
from contract.outputs.schema import (
    COMPONENTS,
    DATABASE_ROLES,
    DNS_STRATEGIES,
    FAILOVER_TYPES,
    KEY_PREFIX,
    LOGICAL_NAME,
    MIRRORMAKER2_CONNECTORS,
    REGION_ROLES,
    SCHEMA_VERSION,
    TARGETS,
    BackupPolicy,
    BatchReplication,
    ComplianceArchive,
    ComponentBudget,
    ComponentObjectives,
    Database,
    Dns,
    Kubernetes,
    MirrorMaker2Flow,
    Objectives,
    Outputs,
    OutputsError,
    Region,
    RegionDns,
    RtoBudget,
    Storage,
    Streaming,
)

_SECRET_KEY = re.compile(r"(password|passwd|secret_string|secret_value|private_key|access_key_secret|secret_access_key"
                         r"|kubeconfig)", re.I)
_K8S_NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K8S_OBJECT = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_CONTEXT = re.compile(r"^[^\s]{1,253}$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _refusal(p: Problem) -> OutputsError:
    """The outputs document's words for one problem of the shared field reader: the dotted path and the
    value seen."""
    c = p.context
    if p.kind == "not_object":
        return OutputsError(p.path or "(document)", f"expected an object, got {type(p.value).__name__}")
    if p.kind == "missing":
        return OutputsError(p.path, "missing; it is required")
    if p.kind == "not_string":
        return OutputsError(p.path, f"expected a non-empty string, got {p.value!r}")
    if p.kind == "not_allowed":
        return OutputsError(p.path, f"{p.value!r} is not allowed; use one of {', '.join(c['choices'])}")
    if p.kind == "not_whole":
        return OutputsError(p.path, f"expected a whole number, got {p.value!r}")
    if p.kind == "below":
        return OutputsError(p.path, f"{p.value} is below the minimum {c['minimum']}")
    if p.kind == "above":
        return OutputsError(p.path, f"{p.value} is above the maximum {c['maximum']}")
    if p.kind == "not_bool":
        return OutputsError(p.path, f"expected true or false, got {p.value!r}")
    if p.kind == "not_list":
        return OutputsError(p.path, f"expected a list of strings, got {p.value!r}")
    if p.kind == "bad_item":
        return OutputsError(p.path, f"expected a list of strings, got {c['items']!r}")
    # not used by this module (no pattern, duplicates or unknown-key check here); worded all the same
    return OutputsError(p.path, f"{p.value!r}: {p.kind.replace('_', ' ')}")


def document_fields(doc: Any) -> Fields:
    """The field reader of an outputs document, with its words (whole floats taken as integers)."""
    return Fields(doc, "", _refusal, whole_floats=True)


def _strings(r: Fields, key: str) -> tuple[str, ...]:
    """An optional list of non-empty strings (empty when absent)."""
    return r.strings(key, (), unique=False, non_empty=True)


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


def _database(r: Fields, name: str) -> Database:
    return Database(
        name=name,
        identifier=r.string("identifier"),
        arn=r.string("arn"),
        endpoint=r.string("endpoint"),
        port=r.integer("port", minimum=1, maximum=65535),
        role=r.string("role", choices=DATABASE_ROLES),
        db_name=r.string("db_name"),
        username=r.string("username"),
        secret_arn=r.string("secret_arn", None),
        security_group_id=r.string("security_group_id", None),
        source_arn=r.string("source_arn", None),
    )


def _region(r: Fields, name: str) -> Region:
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
    dns = RegionDns(failover=d.string("failover", choices=FAILOVER_TYPES), set_identifier=d.string("set_identifier"),
                    health_check_id=d.string("health_check_id", None),
                    address=d.string("address", None))
    role = r.string("role", choices=REGION_ROLES)
    expected = "PRIMARY" if role == "primary" else "SECONDARY"
    if dns.failover != expected:
        raise OutputsError(f"{d.path}.failover", f"a {role} region carries the {expected} record, not {dns.failover}")
    s = r.obj_or_none("streaming")
    streaming = None if s is None else Streaming(
        cluster_arn=s.string("cluster_arn"), bootstrap_brokers=s.string("bootstrap_brokers"),
        replicator_arn=s.string("replicator_arn", None),
        failback_replicator_arn=s.string("failback_replicator_arn", None),
        bootstrap_parameter=s.string("bootstrap_parameter", None),
        subnet_ids=_strings(s, "subnet_ids"), security_group_ids=_strings(s, "security_group_ids"),
        client_parameters=_strings(s, "client_parameters"), consumer_groups=_strings(s, "consumer_groups"),
        topics=_strings(s, "topics"),
        client_refresh_seconds=s.integer("client_refresh_seconds", None, minimum=0, maximum=3600),
        mirrormaker2=_mirrormaker2(s.obj_or_none("mirrormaker2")))
    st = r.obj_or_none("storage")
    storage = None if st is None else Storage(
        data_bucket=st.string("data_bucket"), data_bucket_arn=st.string("data_bucket_arn"),
        backups_bucket=st.string("backups_bucket", None),
        endpoint_url=st.string("endpoint_url", None),
        writer_parameter=st.string("writer_parameter", None),
        batch_replication=_batch_replication(st.obj_or_none("batch_replication")),
        archive=_archive(st.obj_or_none("archive")))
    return Region(
        name=name, role=role, stack=r.string("stack"), databases=databases, dns=dns,
        streaming=streaming, storage=storage,
        kms_key_arn=r.string("kms_key_arn", None),
        runbook_role_arn=r.string("runbook_role_arn", None),
        alarm_topic_arn=r.string("alarm_topic_arn", None),
        alarms=_strings(r, "alarms"),
        kubernetes=_kubernetes(r.obj_or_none("kubernetes")),
    )


def _mirrormaker2(m: "Fields | None") -> MirrorMaker2Flow | None:
    if m is None:
        return None
    topic = m.string("checkpoints_topic")
    if not topic.endswith(".checkpoints.internal"):
        raise OutputsError(m.key("checkpoints_topic"), f"{topic!r}: MirrorMaker 2 writes checkpoints to "
                           "<source alias>.checkpoints.internal; export that name")
    c = m.obj("connector_arns", required=False)
    arns = {}
    for kind in c.data:
        if kind not in MIRRORMAKER2_CONNECTORS:
            raise OutputsError(c.key(str(kind)), f"not a MirrorMaker 2 connector kind; one of "
                               f"{', '.join(MIRRORMAKER2_CONNECTORS)}")
        arn = c.string(kind)
        if not arn.startswith("arn:") or ":kafkaconnect:" not in arn or ":connector/" not in arn:
            raise OutputsError(c.key(kind), f"{arn!r} is not an MSK Connect connector ARN")
        arns[kind] = arn
    return MirrorMaker2Flow(checkpoints_topic=topic, connector_arns=arns)


def _archive(a: "Fields | None") -> ComplianceArchive | None:
    if a is None:
        return None
    role_arn, bucket = a.string("export_role_arn"), a.string("bucket")
    if not _IAM_ROLE_ARN.match(role_arn):
        raise OutputsError(a.key("export_role_arn"), f"{role_arn!r} is not an IAM role ARN "
                           "(arn:aws:iam::<12-digit account>:role/<name>); export the snapshot-export role's ARN")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise OutputsError(a.key("bucket"), f"{bucket!r} is not a bucket name; export the archive bucket's name")
    return ComplianceArchive(bucket=bucket, export_role_arn=role_arn)


def _batch_replication(b: "Fields | None") -> BatchReplication | None:
    if b is None:
        return None
    role_arn = b.string("role_arn")
    if not _IAM_ROLE_ARN.match(role_arn):
        raise OutputsError(b.key("role_arn"), f"{role_arn!r} is not an IAM role ARN "
                           "(arn:aws:iam::<12-digit account>:role/<name>); export the S3 Batch Replication role's ARN")
    bucket = b.string("report_bucket")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise OutputsError(b.key("report_bucket"), f"{bucket!r} is not a bucket name; export the name (not the "
                           "ARN) of the bucket the job writes its report to")
    prefix = b.string("report_prefix")
    if not KEY_PREFIX.match(prefix):
        raise OutputsError(b.key("report_prefix"), f"{prefix!r} is not a key prefix the role can be scoped to: "
                           "letters, digits, '.', '_', '-' in '/'-separated parts, no leading or trailing '/'")
    return BatchReplication(role_arn=role_arn, report_bucket=bucket, report_prefix=prefix)


def _kubernetes(k: "Fields | None") -> Kubernetes | None:
    if k is None:
        return None
    context = k.string("context")
    if not _CONTEXT.match(context):
        raise OutputsError(k.key("context"), f"{context!r} is not a kubeconfig context name (no spaces, at most "
                           "253 characters); export the context, e.g. the EKS cluster ARN")
    namespaces = _strings(k, "namespaces")
    if not namespaces:
        raise OutputsError(k.key("namespaces"), "missing or empty; list the namespaces whose active-endpoints "
                           "ConfigMap the runbooks rewrite")
    for i, ns in enumerate(namespaces):
        if not _K8S_NAMESPACE.match(ns):
            raise OutputsError(f"{k.key('namespaces')}[{i}]", f"{ns!r} is not a Kubernetes namespace name "
                               "(lowercase letters, digits and dashes, at most 63)")
    if len(set(namespaces)) != len(namespaces):
        raise OutputsError(k.key("namespaces"), f"{list(namespaces)} lists a namespace twice; list each once")
    configmap = k.string("configmap", None) or Kubernetes.configmap
    if not _K8S_OBJECT.match(configmap):
        raise OutputsError(k.key("configmap"), f"{configmap!r} is not a Kubernetes object name")
    return Kubernetes(context=context, namespaces=namespaces, configmap=configmap,
                      restart_deployments=_restart_deployments(k.obj_or_none("restart_deployments"), namespaces))


def _restart_deployments(r: "Fields | None", namespaces: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    if r is None:
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for ns, names in r.data.items():
        where = r.key(str(ns))
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


def _budgets(b: Fields) -> dict[str, ComponentBudget]:
    cb = b.obj("components", required=False)
    out = {}
    for name in cb.data:
        if name not in COMPONENTS:
            raise OutputsError(f"rto_budget.components.{name}", f"not a component; use one of {', '.join(COMPONENTS)}")
        c = cb.obj(name)
        out[name] = ComponentBudget(c.integer("total_seconds", minimum=0), c.integer("rto_seconds", minimum=1),
                                    c.boolean("within_objective"))
    return out


def from_dict(doc: Any) -> Outputs:
    """Validate a document and return it typed. Raises OutputsError naming the first bad field."""
    root = document_fields(doc)
    version = root.get("schema_version")
    if version != SCHEMA_VERSION:
        raise OutputsError("schema_version", f"version {version!r} is not supported; this reader knows "
                           f"version {SCHEMA_VERSION}. Upgrade the runbooks or re-export the stacks")
    _reject_secrets(doc, "")
    target = root.string("target", choices=TARGETS)
    o = root.obj("objectives")
    rto, rpo = o.integer("rto_seconds", minimum=1), o.integer("rpo_seconds", minimum=0)
    co = o.obj("components", required=False)
    components = {}
    for name in co.data:
        if name not in COMPONENTS:
            raise OutputsError(f"objectives.components.{name}", f"not a component; use one of {', '.join(COMPONENTS)}")
        c = co.obj(name)
        components[name] = ComponentObjectives(c.integer("rto_seconds", minimum=1, maximum=rto),
                                               c.integer("rpo_seconds", minimum=0, maximum=rpo))
    objectives = Objectives(rto_seconds=rto, rpo_seconds=rpo, components=components)
    b = root.obj_or_none("rto_budget")
    budget = None if b is None else RtoBudget(
        detection_seconds=b.integer("detection_seconds", minimum=0), dns_ttl_seconds=b.integer("dns_ttl_seconds", minimum=0),
        promotion_seconds=b.integer("promotion_seconds", minimum=0), total_seconds=b.integer("total_seconds", minimum=0),
        within_objective=b.boolean("within_objective"), components=_budgets(b))
    d = root.obj("dns")
    records = d.get("records")
    if not isinstance(records, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                    for k, v in records.items()):
        raise OutputsError("dns.records", f"expected an object of service name → record name, got {records!r}")
    dns = Dns(zone_name=d.string("zone_name"), ttl_seconds=d.integer("ttl_seconds", minimum=0, maximum=86400),
              strategy=d.string("strategy", choices=DNS_STRATEGIES), records=dict(records),
              zone_id=d.string("zone_id", None), resolver=d.string("resolver", None))
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
    sandbox_dir = root.string("sandbox_dir", MISSING if target == "sandbox" else None)
    bp = root.obj_or_none("backup_policy")
    backup_policy = None if bp is None else BackupPolicy(
        snapshot_retention_days=bp.integer("snapshot_retention_days", minimum=1),
        snapshot_keep_newest=bp.integer("snapshot_keep_newest", minimum=1),
        automated_retention_days=bp.integer("automated_retention_days", None, minimum=1, maximum=35) or 30,
        compliance_retention_days=bp.integer("compliance_retention_days", None, minimum=1) or 2557)
    return Outputs(schema_version=SCHEMA_VERSION, project=root.string("project"), stack=root.string("stack"),
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

