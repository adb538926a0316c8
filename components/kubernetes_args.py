"""ClusterDr's arguments (the typed inputs, their defaults) and their checks, made before any resource
is declared: pinned images, CronJob names that fit, one password source per database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi

from components.common import require
from components.kubernetes_access import RESTORE_GROUP
from contract import active_endpoints as endpoints

TYPE = "regionpair:kubernetes:ClusterDr"
BACKUP_SCHEDULE = "0 2 * * *"
"""Daily at 02:00 UTC, as in the planning documents ("Daily full backup (cron: 0 2 * * *)")."""
EXPORT_SCHEDULE = "30 2 * * *"
SLOT_BACKUP_SCHEDULE = "*/5 * * * *"
"""Every 5 minutes: the consumer position in the newest slot backup bounds what a CDC consumer re-reads
after a failover (runbooks/slots.py); the planning documents' database RPO is 5 minutes."""
POSTGRES_IMAGE = "public.ecr.aws/docker/library/postgres:16.4"
TOOLS_IMAGE = "docker.io/alpine/k8s:1.31.4"
"""Needs sh, kubectl, aws (v2, with --checksum-algorithm) and jq."""
RUNBOOK_GROUP = "regionpair-runbooks"

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_CRON_FIELD = re.compile(r"^[0-9*/,-]+$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_GROUP = re.compile(r"^(?!system:)[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$")
_MAX_CRONJOB_NAME = 52  # the Job controller appends an 11-character suffix to a 63-character limit


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned (None when it has an explicit tag other than latest, or a digest)."""
    if any(c.isspace() for c in image) or not image:
        return "an image reference without spaces"
    rest, _, digest = image.partition("@")
    if digest:
        return None if _DIGEST.match(digest) else "a digest of the form @sha256:<64 hex digits>"
    last = rest.rsplit("/", 1)[-1]
    if ":" not in last:
        return "pin it: add an explicit tag (repository:1.2.3) or a digest (@sha256:…)"
    tag = last.split(":", 1)[1]
    if not _TAG.match(tag):
        return "a valid tag (letters, digits, _ . -)"
    if tag == "latest":
        return "`latest` moves under you; pin a version tag or a digest"
    return None


def _postgres_major(image: str) -> int | None:
    last = image.partition("@")[0].rsplit("/", 1)[-1]
    match = re.match(r"^[^:]+:(\d+)", last)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class DatabaseEndpoint:
    host: pulumi.Input[str]
    """Host name applications connect to now (the active writer). Required."""
    port: pulumi.Input[int]
    """Its port. Required."""


@dataclass(frozen=True)
class SecretRef:
    name: str
    """Name of a Kubernetes Secret in the jobs' namespace (e.g. synced by External Secrets). Required."""
    key: str = "password"
    """Key holding the password. Default: password."""


@dataclass(frozen=True)
class DumpTarget:
    database: str
    """Logical database name (as in the stack config). Required."""
    host: pulumi.Input[str]
    """The instance to dump: this region's own (primary or replica). Required."""
    port: pulumi.Input[int]
    """Its port. Required."""
    db_name: str
    """PostgreSQL database to dump. Required."""
    username: str
    """User to connect as. Required."""
    engine_version: str
    """Server version, checked against the pg_dump image (pg_dump must not be older). Required."""
    secret_arn: pulumi.Input[str] | None = None
    """RDS-managed Secrets Manager secret read at run time through the IRSA role. Default: none (then password_secret)."""
    password_secret: SecretRef | None = None
    """Kubernetes Secret with the password, instead of secret_arn. Default: none."""


@dataclass(frozen=True)
class ClusterDrArgs:
    region: str
    """This cluster's AWS region. Required."""
    active_region: pulumi.Input[str]
    """Region whose endpoints are active (the primary's). Required."""
    databases: Mapping[str, DatabaseEndpoint]
    """Active endpoint per logical database. Required (at least one)."""
    kafka_bootstrap_servers: pulumi.Input[str]
    """Kafka bootstrap servers clients use now. Required."""
    data_bucket: pulumi.Input[str]
    """Bucket applications write to now. Required."""
    backups_bucket: pulumi.Input[str]
    """This region's backups bucket, where dumps and exports go. Required."""
    kms_key_arn: pulumi.Input[str]
    """This region's customer key (SSE-KMS of every object the jobs write). Required."""
    backup_role_arn: pulumi.Input[str]
    """IRSA role of the backup job (see backup_role_policy). Required: this component creates no IAM."""
    export_role_arn: pulumi.Input[str]
    """IRSA role of the export job (see export_role_policy). Required."""
    dumps: Sequence[DumpTarget] = ()
    """Databases to dump daily. Default: none (no backup CronJob)."""
    namespace: str = "regionpair"
    """Namespace of the jobs and their ServiceAccounts. Default: regionpair."""
    create_namespace: bool = True
    """Create that namespace (labelled Pod Security `restricted`). Default: yes."""
    app_namespaces: Sequence[str] = ()
    """Namespaces that get the active-endpoints ConfigMap (they must exist). Default: the jobs' namespace only."""
    export_namespaces: Sequence[str] = ()
    """Namespaces whose ConfigMaps and Secrets are exported (a Role in each). Default: app_namespaces."""
    export_all_namespaces: bool = False
    """Export every namespace through a ClusterRole instead. Default: no (nothing cluster-wide)."""
    backup_schedule: str = BACKUP_SCHEDULE
    """Cron schedule of the dumps, in UTC. Default: 0 2 * * * (02:00 UTC)."""
    export_schedule: str = EXPORT_SCHEDULE
    """Cron schedule of the export, in UTC. Default: 30 2 * * * (daily 02:30 UTC)."""
    postgres_image: str = POSTGRES_IMAGE
    """Image with pg_dump, pinned. Default: the official postgres 16.4 image (mirrored on ECR Public)."""
    tools_image: str = TOOLS_IMAGE
    """Image with sh, aws, kubectl and jq, pinned. Default: alpine/k8s 1.31.4."""
    dump_size_limit: str = "20Gi"
    """Scratch space a dump may take on the node before upload. Default: 20Gi."""
    dump_deadline_seconds: int = 4 * 3600
    """A dump job running longer is stopped (and fails loudly). Default: 4 hours."""
    export_deadline_seconds: int = 1800
    """Export job deadline. Default: 30 minutes."""
    slot_backups: Sequence[DumpTarget] = ()
    """Databases whose logical replication slot definitions are captured (contract/slot_backup.py) and kept in this
    region's backups bucket under regionpair/slots/<database>/, for the runbooks to recreate the slots after a
    failover or a restore. `host`/`port`: the ACTIVE primary (a replica has no slots: the job then keeps
    nothing), so every region's cluster keeps copies while the primary lives. Default: none (no slot job)."""
    slot_backup_schedule: str = SLOT_BACKUP_SCHEDULE
    """Cron schedule of the slot captures, in UTC. Default: every 5 minutes."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra labels on every object. Default: none."""
    runbook_group: str = RUNBOOK_GROUP
    """Kubernetes group of the runbooks' identity (map it with an EKS access entry): a Role in each of
    app_namespaces lets it get, list and patch the active-endpoints ConfigMap (runbook_rules). Default:
    regionpair-runbooks."""
    restart_deployments: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """App namespace → Deployments the runbooks restart after they rewrite its ConfigMap (those that
    read it through envFrom); that namespace's Role then also lets the group get and patch exactly
    these Deployments. Default: none (no Deployment is restarted, none is granted)."""
    restore_group: str | None = RESTORE_GROUP
    """Kubernetes group that may restore the export (runbooks/config_restore.py): a Role in each exported
    namespace (restore_rules) and get on those namespaces. None: no restore access is declared.
    Default: regionpair-config-restore."""
    restore_secrets: bool = False
    """The restore group may also write Secrets (--include-secrets). Default: no (ConfigMaps only)."""


def validate(args: ClusterDrArgs) -> None:
    """Refuse bad arguments (ComponentArgsError naming the argument and the fix) before any resource."""
    require(TYPE, "databases", dict(args.databases), bool(args.databases), "name at least one database")
    _validate_slot_backups(args)
    for db in args.databases:
        require(TYPE, "databases", db, bool(_NAME.match(db)),
                "logical names are lowercase letters, digits and dashes, starting with a letter")
    require(TYPE, "namespace", args.namespace, bool(_DNS_LABEL.match(args.namespace)),
            "a Kubernetes namespace name (lowercase letters, digits, dashes; at most 63)")
    for arg, names in (("app_namespaces", args.app_namespaces), ("export_namespaces", args.export_namespaces)):
        for ns in names:
            require(TYPE, arg, ns, isinstance(ns, str) and bool(_DNS_LABEL.match(ns)), "Kubernetes namespace names")
        require(TYPE, arg, list(names), len(set(names)) == len(names), "list each namespace once")
    require(TYPE, "runbook_group", args.runbook_group, bool(_GROUP.match(args.runbook_group)),
            "a Kubernetes group name (letters, digits, - . _ :) outside the reserved system: prefix")
    if args.restore_group is not None:
        require(TYPE, "restore_group", args.restore_group, bool(_GROUP.match(args.restore_group)),
                "a Kubernetes group name (letters, digits, - . _ :) outside the reserved system: prefix")
    require(TYPE, "restore_secrets", args.restore_secrets, not args.restore_secrets or args.restore_group is not None,
            "restore_secrets grants the restore group write on Secrets; name the restore_group too")
    app_namespaces = list(args.app_namespaces) or [args.namespace]
    for ns, names in args.restart_deployments.items():
        require(TYPE, "restart_deployments", ns, ns in app_namespaces,
                f"one of the app namespaces {app_namespaces}: the runbooks' Role exists only there")
        names = list(names) if isinstance(names, (list, tuple)) else names
        require(TYPE, f"restart_deployments.{ns}", names,
                isinstance(names, list) and bool(names) and all(endpoints.is_deployment_name(n) for n in names),
                f"a non-empty list of {endpoints.DEPLOYMENT_NAME_HINT}")
        require(TYPE, f"restart_deployments.{ns}", names, len(set(names)) == len(names), "list each Deployment once")
    if args.export_all_namespaces:
        require(TYPE, "export_namespaces", list(args.export_namespaces), not args.export_namespaces,
                "export_all_namespaces already covers every namespace; give one or the other")
    for arg, role in (("backup_role_arn", args.backup_role_arn), ("export_role_arn", args.export_role_arn)):
        if isinstance(role, str):
            require(TYPE, arg, role, bool(_ROLE_ARN.match(role)), "an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    for arg, schedule in (("backup_schedule", args.backup_schedule), ("export_schedule", args.export_schedule),
                          ("slot_backup_schedule", args.slot_backup_schedule)):
        fields = schedule.split()
        require(TYPE, arg, schedule, len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields),
                "a five-field cron schedule in UTC such as 0 2 * * * (no CRON_TZ/TZ prefix: the time zone is set)")
    for arg, image in (("postgres_image", args.postgres_image), ("tools_image", args.tools_image)):
        problem = image_problem(image)
        require(TYPE, arg, image, problem is None, problem or "")
    require(TYPE, "dump_size_limit", args.dump_size_limit, bool(_QUANTITY.match(args.dump_size_limit)),
            "a Kubernetes quantity such as 20Gi")
    for arg, seconds in (("dump_deadline_seconds", args.dump_deadline_seconds),
                         ("export_deadline_seconds", args.export_deadline_seconds)):
        require(TYPE, arg, seconds, isinstance(seconds, int) and 60 <= seconds <= 86400,
                "60 to 86400 seconds (a job must end before the next day's run)")
    seen: set[str] = set()
    major = _postgres_major(args.postgres_image)
    for i, dump in enumerate(args.dumps):
        where = f"dumps[{i}]"
        require(TYPE, f"{where}.database", dump.database, dump.database in args.databases and dump.database not in seen,
                f"one of the databases {sorted(args.databases)}, each dumped once")
        seen.add(dump.database)
        require(TYPE, f"{where}.database", dump.database,
                len(f"regionpair-pgdump-{dump.database}") <= _MAX_CRONJOB_NAME,
                f"too long for a CronJob name (regionpair-pgdump-<name> must fit {_MAX_CRONJOB_NAME} characters)")
        require(TYPE, f"{where}.password", dump.database, (dump.secret_arn is None) != (dump.password_secret is None),
                "give exactly one of secret_arn (Secrets Manager, read at run time) and password_secret "
                "(a Kubernetes Secret reference); a password is never a literal")
        if dump.password_secret is not None:
            require(TYPE, f"{where}.password_secret.name", dump.password_secret.name,
                    bool(_DNS_LABEL.match(dump.password_secret.name)), "a Kubernetes Secret name")
        server = re.match(r"^(\d+)", dump.engine_version)
        if major is not None and server is not None:
            require(TYPE, "postgres_image", args.postgres_image, major >= int(server.group(1)),
                    f"pg_dump {major} cannot dump a PostgreSQL {server.group(1)} server ({dump.database}); "
                    f"use a postgres image of major version {server.group(1)} or newer")


def _validate_slot_backups(args: ClusterDrArgs) -> None:
    seen: set[str] = set()
    for i, target in enumerate(args.slot_backups):
        where = f"slot_backups[{i}]"
        require(TYPE, f"{where}.database", target.database,
                target.database in args.databases and target.database not in seen,
                f"one of the databases {sorted(args.databases)}, each once")
        seen.add(target.database)
        require(TYPE, f"{where}.database", target.database,
                len(f"regionpair-slots-{target.database}") <= _MAX_CRONJOB_NAME,
                f"too long for a CronJob name (regionpair-slots-<name> must fit {_MAX_CRONJOB_NAME} characters)")
        require(TYPE, f"{where}.password", target.database,
                (target.secret_arn is None) != (target.password_secret is None),
                "give exactly one of secret_arn and password_secret; a password is never a literal")
