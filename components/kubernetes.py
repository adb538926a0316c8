"""Kubernetes, in one region's cluster: the active-endpoints ConfigMap applications read, and two
CronJobs that keep copies off the cluster (a logical pg_dump per database, and an encrypted export
of ConfigMaps and Secrets), both written to this region's backups bucket under SSE-KMS.

The ConfigMap is a contract with the applications and the runbooks (docs/kubernetes.md): fixed
name, fixed key names (`endpoint_keys`), version `CONTRACT_VERSION`. Pulumi writes its data once,
at creation; afterwards the failover runbooks own it (`ignore_changes=["data"]`), so a later
`pulumi up` of a stack that does not know a failover happened cannot point the applications back
at the fenced old primary. The same rule as the Kafka bootstrap SSM parameter (components/streaming.py).

The jobs run under dedicated ServiceAccounts annotated with IRSA roles that the caller passes in
(this component creates no IAM; `backup_role_policy`/`export_role_policy` give the least-privilege
documents the roles need). Pods are hardened for the `restricted` Pod Security Standard, and the
database password is never part of a manifest: it is read at run time from the RDS-managed Secrets
Manager secret (through the IRSA role), or referenced from a Kubernetes Secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import CronJobInitArgs, CronJobSpecArgs, JobSpecArgs, JobTemplateSpecArgs
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs, ConfigMapInitArgs, ContainerArgs, EmptyDirVolumeSourceArgs, EnvVarArgs, EnvVarSourceArgs,
    NamespaceInitArgs, PodSecurityContextArgs, PodSpecArgs, PodTemplateSpecArgs, ResourceRequirementsArgs,
    SeccompProfileArgs, SecretKeySelectorArgs, SecurityContextArgs, ServiceAccountInitArgs, VolumeArgs, VolumeMountArgs)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import (
    ClusterRoleBindingInitArgs, ClusterRoleInitArgs, PolicyRuleArgs, RoleBindingInitArgs, RoleInitArgs, RoleRefArgs,
    SubjectArgs)

from components.common import policy_json, require
from contract import active_endpoints as endpoints
from contract import slot_backup as slot_contract
# the contract itself (pure Python, shared with the runbooks)
from contract.active_endpoints import (CONFIGMAP_NAME, CONTRACT_LABEL, CONTRACT_LABEL_VALUE, CONTRACT_VERSION,
                                       VERSION_ANNOTATION, endpoint_keys, env_key)

TYPE = "regionpair:kubernetes:ClusterDr"
BACKUP_SCHEDULE = "0 2 * * *"
"""Daily at 02:00 UTC, as in the planning documents ("Daily full backup (cron: 0 2 * * *)")."""
EXPORT_SCHEDULE = "30 2 * * *"
SLOT_BACKUP_SCHEDULE = "*/5 * * * *"
"""Every 5 minutes: the consumer position in the newest slot backup bounds what a CDC consumer re-reads
after a failover (runbooks/slots.py); the planning documents' database RPO is 5 minutes."""
TIME_ZONE = "Etc/UTC"
DUMP_PREFIX = "pgdump"
EXPORT_PREFIX = "k8s-config"
POSTGRES_IMAGE = "public.ecr.aws/docker/library/postgres:16.4"
TOOLS_IMAGE = "docker.io/alpine/k8s:1.31.4"
"""Needs sh, kubectl, aws (v2, with --checksum-algorithm) and jq."""
RUNBOOK_GROUP = "regionpair-runbooks"
RUNBOOK_ROLE = "regionpair-runbooks"
"""Role and RoleBinding, in each app namespace, of the runbooks' identity."""
RUN_AS = 65532
"""An unprivileged uid/gid with no entry in the images: nothing in them runs as it by accident."""

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


def runbook_rules(deployments: Sequence[str] = ()) -> list[dict[str, list[str]]]:
    """The rules of the runbooks' Role in one app namespace, as the API writes them.

    `list` on configmaps serves `kubectl get -l regionpair.io/contract=active-endpoints` (a list
    cannot be narrowed to a name); get and patch (server-side apply) only the contract's ConfigMap.
    With ``deployments`` (that namespace's restart_deployments): get and patch on exactly those
    Deployments, what `kubectl rollout restart` needs. No create, no delete, no wildcard, nothing else."""
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CONFIGMAP_NAME], "verbs": ["get", "patch"]},
    ]
    if deployments:
        rules.append({"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": list(deployments),
                      "verbs": ["get", "patch"]})
    return rules


RESTORE_ROLE = "regionpair-config-restore"
RESTORE_GROUP = "regionpair-config-restore"
"""Kubernetes group of whoever runs runbooks/config_restore.py (an EKS access entry maps the operator's
role to it): its own group, so the failover's identity gains no write on every ConfigMap."""


def restore_rules(secrets: bool = False) -> list[dict[str, list[str]]]:
    """The config restore's Role in one exported namespace (runbooks/adapters/kubectl_config.py):
    get, list, create and patch ConfigMaps (server-side apply of an object that does not exist yet is
    authorized as `create`: Kubernetes "API Concepts", Patch and apply — the project's document search
    found it through kcp-dev/kcp#3439, not the page itself), the same on Secrets only with ``secrets``,
    and get, list and patch on the workloads it restarts (`kubectl rollout restart` is a patch of the
    pod template). No delete, no update, no wildcard."""
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "patch"]}]
    if secrets:
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "patch"]})
    rules.append({"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
                  "verbs": ["get", "list", "patch"]})
    return rules


def restore_namespace_rules(namespaces: Sequence[str]) -> list[dict[str, list[str]]]:
    """The restore's ClusterRole: `get` on exactly the namespaces it may restore into (it checks one
    exists before changing anything in it)."""
    return [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": sorted(namespaces), "verbs": ["get"]}]


def backup_role_policy(partition: str, bucket: str, kms_key_arn: str, secret_arns: Sequence[str],
                       prefix: str = DUMP_PREFIX, slots: bool = False) -> str:
    """The least-privilege policy the backup job's IRSA role needs: write dumps under the prefix (and,
    with ``slots``, slot captures under regionpair/slots/), encrypt them with the region key, read the
    databases' password secrets."""
    statements = [
        {"Sid": "WriteDumps", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:{partition}:s3:::{bucket}/{prefix}/*"]
         + ([f"arn:{partition}:s3:::{bucket}/{slot_contract.KEY_PREFIX}/*"] if slots else [])},
        # multipart uploads (dumps over 8 MiB) need kms:Decrypt as well as kms:GenerateDataKey
        {"Sid": "EncryptDumps", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": [kms_key_arn]},
    ]
    if secret_arns:
        statements.append({"Sid": "ReadDatabasePassword", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": sorted(secret_arns)})
    return policy_json(statements)


def export_role_policy(partition: str, bucket: str, kms_key_arn: str, prefix: str = EXPORT_PREFIX) -> str:
    """The least-privilege policy the export job's IRSA role needs."""
    return policy_json([
        {"Sid": "WriteExports", "Effect": "Allow", "Action": ["s3:PutObject"],
         "Resource": [f"arn:{partition}:s3:::{bucket}/{prefix}/*"]},
        {"Sid": "EncryptExports", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": [kms_key_arn]},
    ])


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


def _validate(args: ClusterDrArgs) -> None:
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


def _password_source(target: "DumpTarget", args: "ClusterDrArgs", pg_env: list, volumes: list,
                     mounts: list) -> list[ContainerArgs]:
    """How a job's psql/pg_dump gets the database password: from a Kubernetes Secret named in config,
    or fetched from Secrets Manager by an init container into a memory-only volume, so it exists only
    in this pod, for this run. Adds to ``pg_env``, ``volumes`` and ``mounts``; returns the init
    containers it needs."""
    if target.password_secret is not None:
        pg_env.append(EnvVarArgs(name="PGPASSWORD", value_from=EnvVarSourceArgs(secret_key_ref=SecretKeySelectorArgs(
            name=target.password_secret.name, key=target.password_secret.key, optional=False))))
        return []
    volumes.append(VolumeArgs(name="credentials", empty_dir=EmptyDirVolumeSourceArgs(medium="Memory",
                                                                                    size_limit="1Mi")))
    creds = VolumeMountArgs(name="credentials", mount_path="/run/pg")
    mounts.append(creds)
    return [ContainerArgs(
        name="password", image=args.tools_image, image_pull_policy="IfNotPresent",
        command=["/bin/sh", "-c", FETCH_PASSWORD],
        env=_env(AWS_REGION=args.region, AWS_DEFAULT_REGION=args.region, HOME="/tmp", SECRET_ARN=target.secret_arn),
        security_context=_container_security(), resources=_resources("50m", "64Mi", "500m", "256Mi"),
        volume_mounts=[_TMP, creds])]


def _container_security() -> SecurityContextArgs:
    return SecurityContextArgs(
        run_as_non_root=True, run_as_user=RUN_AS, run_as_group=RUN_AS, privileged=False,
        allow_privilege_escalation=False, read_only_root_filesystem=True,
        capabilities=CapabilitiesArgs(drop=["ALL"]), seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"))


def _pod_security() -> PodSecurityContextArgs:
    return PodSecurityContextArgs(
        run_as_non_root=True, run_as_user=RUN_AS, run_as_group=RUN_AS, fs_group=RUN_AS,
        seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"))


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> ResourceRequirementsArgs:
    return ResourceRequirementsArgs(requests={"cpu": cpu, "memory": memory},
                                    limits={"cpu": cpu_limit, "memory": memory_limit})


def _env(**values: pulumi.Input[str]) -> list[EnvVarArgs]:
    return [EnvVarArgs(name=k, value=v) for k, v in values.items()]


_TMP = VolumeMountArgs(name="tmp", mount_path="/tmp")

# Scripts: POSIX sh with `set -eu` and no pipes (every step's failure fails the Job, in any sh);
# no `set -x`, and nothing that echoes a password or a Secret's content: both exist only in
# memory-backed volumes of the pod; the only output is where things went.
FETCH_PASSWORD = """set -eu
umask 077
region=$(printf '%s' "$SECRET_ARN" | cut -d: -f4)
aws secretsmanager get-secret-value --region "$region" --secret-id "$SECRET_ARN" \\
  --query SecretString --output text > /run/pg/secret.json
jq -er .password /run/pg/secret.json > /run/pg/password
rm -f /run/pg/secret.json
"""

DUMP = """set -eu
if [ -z "${PGPASSWORD:-}" ]; then PGPASSWORD=$(cat /run/pg/password); export PGPASSWORD; fi
pg_dump --format=custom --no-password --file=/dump/database.dump
"""

UPLOAD = """set -eu
key="$PREFIX/$DATABASE/$(date -u +%Y-%m-%dT%H%M%SZ).dump"
aws s3 cp /dump/database.dump "s3://$BUCKET/$key" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
  --checksum-algorithm CRC32 --only-show-errors
rm -f /dump/database.dump
echo "uploaded s3://$BUCKET/$key"
"""

CAPTURE_SLOTS = """set -eu
if [ -z "${PGPASSWORD:-}" ]; then PGPASSWORD=$(cat /run/pg/password); export PGPASSWORD; fi
psql --no-psqlrc --no-align --tuples-only --quiet -v ON_ERROR_STOP=1 --no-password -c "$CAPTURE_SQL" \\
  --output=/dump/slots.json
"""

# the object name is contract.slot_backup.key(): the capture's own clock, to the microsecond, so names sort by time
UPLOAD_SLOTS = """set -eu
if jq -e '.in_recovery or .read_only' /dump/slots.json > /dev/null; then
  echo "$DATABASE: the server is a replica or fenced, it holds no slots to keep; nothing uploaded"
  rm -f /dump/slots.json
  exit 0
fi
stamp=$(jq -r '(.captured_at | floor | strftime("%Y%m%dT%H%M%S")) + "." +
  (("000000" + ((.captured_at * 1000000 | floor) % 1000000 | tostring)) | .[-6:]) + "Z"' /dump/slots.json)
key="$PREFIX/$DATABASE/$stamp.json"
aws s3 cp /dump/slots.json "s3://$BUCKET/$key" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
  --content-type application/json --checksum-algorithm CRC32 --only-show-errors
rm -f /dump/slots.json
echo "kept s3://$BUCKET/$key"
"""

# what a restore can `kubectl apply` into another cluster: no server-set fields, no owner references
# (their uids do not exist there, the garbage collector would delete the objects), and not the
# kube-root-ca.crt ConfigMap each namespace gets from the cluster itself
CLEAN = ('{apiVersion: "v1", kind: "List", items: [.items[] | select(.metadata.name != "kube-root-ca.crt") '
         '| del(.metadata.resourceVersion, .metadata.uid, .metadata.creationTimestamp, .metadata.managedFields, '
         '.metadata.ownerReferences, .metadata.selfLink, .metadata.generation)]}')

EXPORT = """set -eu
umask 077
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
save() {  # save <object name> <kubectl get args…>: cleaned, to S3 under the region key; never printed
  name=$1
  shift
  kubectl get "$@" -o json > /export/raw.json
  jq -c "$CLEAN" /export/raw.json > /export/clean.json
  rm -f /export/raw.json
  aws s3 cp /export/clean.json "s3://$BUCKET/$PREFIX/$stamp/$name" --sse aws:kms --sse-kms-key-id "$KMS_KEY_ARN" \\
    --checksum-algorithm CRC32 --only-show-errors
  rm -f /export/clean.json
}
if [ "$EXPORT_NAMESPACES" = "*" ]; then
  save all-namespaces/configmaps.json configmaps --all-namespaces
  save all-namespaces/secrets.json secrets --all-namespaces --field-selector type!=kubernetes.io/service-account-token
else
  for ns in $EXPORT_NAMESPACES; do
    save "$ns/configmaps.json" configmaps -n "$ns"
    save "$ns/secrets.json" secrets -n "$ns" --field-selector type!=kubernetes.io/service-account-token
  done
fi
echo "exported to s3://$BUCKET/$PREFIX/$stamp/"
"""


class ClusterDr(pulumi.ComponentResource):
    """The DR objects of one region's cluster: active endpoints, daily dumps, daily config export."""

    configmap_names: list[str]
    namespace: str

    def __init__(self, name: str, args: ClusterDrArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(args)
        super().__init__(TYPE, name, None, opts)
        ns = args.namespace
        labels = {**args.labels, "app.kubernetes.io/part-of": "regionpair", "app.kubernetes.io/managed-by": "pulumi"}
        app_namespaces = list(args.app_namespaces) or [ns]
        export_namespaces = [] if args.export_all_namespaces else (list(args.export_namespaces) or app_namespaces)

        def meta(k8s_name: str, namespace: str | None = ns, extra: Mapping[str, str] | None = None,
                 annotations: Mapping[str, pulumi.Input[str]] | None = None) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=k8s_name, namespace=namespace, labels={**labels, **(extra or {})},
                                  annotations=annotations)

        depends: list[pulumi.Resource] = []
        if args.create_namespace:
            depends.append(k8s.core.v1.Namespace(f"{name}-namespace", NamespaceInitArgs(metadata=meta(
                ns, namespace=None, extra={"pod-security.kubernetes.io/enforce": "restricted",
                                           "pod-security.kubernetes.io/enforce-version": "latest"})),
                opts=pulumi.ResourceOptions(parent=self)))
        after = pulumi.ResourceOptions(parent=self, depends_on=depends)

        # ---- the active endpoints (data written once; the runbooks own it afterwards) ----------
        data: dict[str, pulumi.Input[str]] = {
            endpoints.VERSION_KEY: CONTRACT_VERSION,
            endpoints.ACTIVE_REGION: args.active_region,
            endpoints.KAFKA: args.kafka_bootstrap_servers,
            endpoints.BUCKET: args.data_bucket,
        }
        for db, endpoint in sorted(args.databases.items()):
            host_key, port_key = endpoints.database_keys(db)
            data[host_key] = endpoint.host
            data[port_key] = pulumi.Output.from_input(endpoint.port).apply(str)
        self.configmap_names = []
        for app_ns in app_namespaces:
            k8s.core.v1.ConfigMap(f"{name}-endpoints-{app_ns}", ConfigMapInitArgs(
                metadata=meta(CONFIGMAP_NAME, app_ns, {CONTRACT_LABEL: CONTRACT_LABEL_VALUE},
                              {VERSION_ANNOTATION: CONTRACT_VERSION}),
                data=data, immutable=False),
                opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(ignore_changes=["data"])))
            self.configmap_names.append(f"{app_ns}/{CONFIGMAP_NAME}")

        # ---- the runbooks' access to it: these ConfigMaps of the app namespaces, and the listed
        # Deployments of a namespace that has any (runbook_rules). No create: the runbooks rewrite
        # copies, they never make one. No delete, no other resource.
        for app_ns in app_namespaces:
            rules = [PolicyRuleArgs(api_groups=r["apiGroups"], resources=r["resources"],
                                    resource_names=r.get("resourceNames"), verbs=r["verbs"])
                     for r in runbook_rules(list(args.restart_deployments.get(app_ns, ())))]
            role = k8s.rbac.v1.Role(f"{name}-runbooks-role-{app_ns}", RoleInitArgs(
                metadata=meta(RUNBOOK_ROLE, app_ns), rules=rules), opts=after)
            k8s.rbac.v1.RoleBinding(f"{name}-runbooks-binding-{app_ns}", RoleBindingInitArgs(
                metadata=meta(RUNBOOK_ROLE, app_ns),
                subjects=[SubjectArgs(kind="Group", name=args.runbook_group, api_group="rbac.authorization.k8s.io")],
                role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=RUNBOOK_ROLE)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends, role]))

        common_env = dict(AWS_REGION=args.region, AWS_DEFAULT_REGION=args.region, HOME="/tmp",
                          BUCKET=args.backups_bucket, KMS_KEY_ARN=args.kms_key_arn)

        # ---- logical backups, and the logical slots' definitions ------------------------------------
        if args.dumps or args.slot_backups:
            backup_sa = k8s.core.v1.ServiceAccount(f"{name}-backup-sa", ServiceAccountInitArgs(
                metadata=meta("regionpair-backup", annotations={"eks.amazonaws.com/role-arn": args.backup_role_arn}),
                automount_service_account_token=False), opts=after)
            for dump in args.dumps:
                self._dump_job(name, dump, args, meta, backup_sa, common_env)
            for target in args.slot_backups:
                self._slot_job(name, target, args, meta, backup_sa, common_env)

        # ---- export of ConfigMaps and Secrets ----------------------------------------------------
        export_sa = k8s.core.v1.ServiceAccount(f"{name}-export-sa", ServiceAccountInitArgs(
            metadata=meta("regionpair-config-export",
                          annotations={"eks.amazonaws.com/role-arn": args.export_role_arn}),
            automount_service_account_token=False), opts=after)
        subject = SubjectArgs(kind="ServiceAccount", name="regionpair-config-export", namespace=ns)
        rule = PolicyRuleArgs(api_groups=[""], resources=["configmaps", "secrets"], verbs=["get", "list"])
        if args.export_all_namespaces:
            role = k8s.rbac.v1.ClusterRole(f"{name}-export-role", ClusterRoleInitArgs(
                metadata=meta("regionpair-config-export", namespace=None), rules=[rule]), opts=after)
            k8s.rbac.v1.ClusterRoleBinding(f"{name}-export-binding", ClusterRoleBindingInitArgs(
                metadata=meta("regionpair-config-export", namespace=None), subjects=[subject],
                role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                     name="regionpair-config-export")), opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*depends, role]))
        for export_ns in export_namespaces:
            role = k8s.rbac.v1.Role(f"{name}-export-role-{export_ns}", RoleInitArgs(
                metadata=meta("regionpair-config-export", export_ns), rules=[rule]), opts=after)
            k8s.rbac.v1.RoleBinding(f"{name}-export-binding-{export_ns}", RoleBindingInitArgs(
                metadata=meta("regionpair-config-export", export_ns), subjects=[subject],
                role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role",
                                     name="regionpair-config-export")),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends, role]))

        # ---- the config restore's access (runbooks/config_restore.py): the named export namespaces
        # (app_namespaces when every namespace is exported: never cluster-wide write)
        if args.restore_group is not None:
            self._restore_access(name, args, meta, depends, export_namespaces or app_namespaces)

        export_pod = PodSpecArgs(
            service_account_name="regionpair-config-export",
            automount_service_account_token=True,  # kubectl reads the API with this token (RBAC above)
            restart_policy="Never",
            security_context=_pod_security(),
            containers=[ContainerArgs(
                name="export", image=args.tools_image, image_pull_policy="IfNotPresent",
                command=["/bin/sh", "-c", EXPORT],
                env=_env(**common_env, PREFIX=EXPORT_PREFIX, CLEAN=CLEAN,
                         EXPORT_NAMESPACES="*" if args.export_all_namespaces else " ".join(export_namespaces)),
                security_context=_container_security(),
                resources=_resources("100m", "128Mi", "500m", "1Gi"),
                volume_mounts=[_TMP, VolumeMountArgs(name="export", mount_path="/export")])],
            volumes=[VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                     # Secrets are staged in memory only (counted against the memory limit)
                     VolumeArgs(name="export", empty_dir=EmptyDirVolumeSourceArgs(medium="Memory",
                                                                                 size_limit="256Mi"))])
        self._cronjob(f"{name}-export", "regionpair-config-export", args.export_schedule, export_pod,
                      args.export_deadline_seconds, meta, {"regionpair.io/job": "config-export"},
                      pulumi.ResourceOptions(parent=self, depends_on=[*depends, export_sa]))

        self.namespace = ns
        self.register_outputs({"namespace": ns, "configmaps": self.configmap_names,
                               "runbook_group": args.runbook_group})

    def _restore_access(self, name: str, args: ClusterDrArgs, meta, depends: list, namespaces: list[str]) -> None:
        subject = SubjectArgs(kind="Group", name=args.restore_group, api_group="rbac.authorization.k8s.io")
        after = pulumi.ResourceOptions(parent=self, depends_on=depends)

        def rules_of(rules):
            return [PolicyRuleArgs(api_groups=r["apiGroups"], resources=r["resources"],
                                   resource_names=r.get("resourceNames"), verbs=r["verbs"]) for r in rules]
        for ns in namespaces:
            role = k8s.rbac.v1.Role(f"{name}-restore-role-{ns}", RoleInitArgs(
                metadata=meta(RESTORE_ROLE, ns), rules=rules_of(restore_rules(args.restore_secrets))), opts=after)
            k8s.rbac.v1.RoleBinding(f"{name}-restore-binding-{ns}", RoleBindingInitArgs(
                metadata=meta(RESTORE_ROLE, ns), subjects=[subject],
                role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=RESTORE_ROLE)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends, role]))
        cluster_role = k8s.rbac.v1.ClusterRole(f"{name}-restore-namespaces", ClusterRoleInitArgs(
            metadata=meta(RESTORE_ROLE, namespace=None), rules=rules_of(restore_namespace_rules(namespaces))),
            opts=after)
        k8s.rbac.v1.ClusterRoleBinding(f"{name}-restore-namespaces-binding", ClusterRoleBindingInitArgs(
            metadata=meta(RESTORE_ROLE, namespace=None), subjects=[subject],
            role_ref=RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=RESTORE_ROLE)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends, cluster_role]))

    def _dump_job(self, name: str, dump: DumpTarget, args: ClusterDrArgs, meta, sa: pulumi.Resource,
                  common_env: Mapping[str, pulumi.Input[str]]) -> None:
        pg_env = _env(PGHOST=dump.host, PGPORT=pulumi.Output.from_input(dump.port).apply(str),
                      PGDATABASE=dump.db_name, PGUSER=dump.username,
                      PGSSLMODE="require",  # the instances force TLS (rds.force_ssl=1)
                      PGCONNECT_TIMEOUT="30", PGAPPNAME="regionpair-pgdump")
        mounts = [_TMP, VolumeMountArgs(name="dump", mount_path="/dump")]
        volumes = [VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                   VolumeArgs(name="dump", empty_dir=EmptyDirVolumeSourceArgs(size_limit=args.dump_size_limit))]
        init = _password_source(dump, args, pg_env, volumes, mounts)
        init.append(ContainerArgs(
            name="pg-dump", image=args.postgres_image, image_pull_policy="IfNotPresent",
            command=["/bin/sh", "-c", DUMP], env=pg_env, security_context=_container_security(),
            resources=_resources("250m", "256Mi", "1", "1Gi"), volume_mounts=mounts))
        pod = PodSpecArgs(
            service_account_name="regionpair-backup",
            automount_service_account_token=False,  # IRSA mounts its own web-identity token; no API access
            restart_policy="Never",
            security_context=_pod_security(),
            init_containers=init,
            containers=[ContainerArgs(
                name="upload", image=args.tools_image, image_pull_policy="IfNotPresent",
                command=["/bin/sh", "-c", UPLOAD],
                env=_env(**common_env, PREFIX=DUMP_PREFIX, DATABASE=dump.database),
                security_context=_container_security(),
                resources=_resources("100m", "128Mi", "1", "512Mi"),
                volume_mounts=[_TMP, VolumeMountArgs(name="dump", mount_path="/dump")])],
            volumes=volumes)
        self._cronjob(f"{name}-pgdump-{dump.database}", f"regionpair-pgdump-{dump.database}", args.backup_schedule,
                      pod, args.dump_deadline_seconds, meta,
                      {"regionpair.io/job": "pgdump", "regionpair.io/database": dump.database},
                      pulumi.ResourceOptions(parent=self, depends_on=[sa]))

    def _slot_job(self, name: str, target: DumpTarget, args: ClusterDrArgs, meta, sa: pulumi.Resource,
                  common_env: Mapping[str, pulumi.Input[str]]) -> None:
        """Every slot_backup_schedule: psql runs contract.slot_backup.CAPTURE_SQL on the active primary, the
        upload keeps the one-line JSON in this region's backups bucket (nothing from a replica)."""
        pg_env = _env(PGHOST=target.host, PGPORT=pulumi.Output.from_input(target.port).apply(str),
                      PGDATABASE=target.db_name, PGUSER=target.username, PGSSLMODE="require",
                      PGCONNECT_TIMEOUT="30", PGAPPNAME="regionpair-slot-backup",
                      CAPTURE_SQL=slot_contract.CAPTURE_SQL)
        out = VolumeMountArgs(name="dump", mount_path="/dump")
        volumes = [VolumeArgs(name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit="64Mi")),
                   VolumeArgs(name="dump", empty_dir=EmptyDirVolumeSourceArgs(size_limit="16Mi"))]
        mounts = [_TMP, out]
        init = _password_source(target, args, pg_env, volumes, mounts)
        init.append(ContainerArgs(
            name="capture", image=args.postgres_image, image_pull_policy="IfNotPresent",
            command=["/bin/sh", "-c", CAPTURE_SLOTS], env=pg_env, security_context=_container_security(),
            resources=_resources("50m", "64Mi", "500m", "256Mi"), volume_mounts=mounts))
        pod = PodSpecArgs(
            service_account_name="regionpair-backup", automount_service_account_token=False, restart_policy="Never",
            security_context=_pod_security(), init_containers=init,
            containers=[ContainerArgs(
                name="upload", image=args.tools_image, image_pull_policy="IfNotPresent",
                command=["/bin/sh", "-c", UPLOAD_SLOTS],
                env=_env(**common_env, PREFIX=slot_contract.KEY_PREFIX, DATABASE=target.database),
                security_context=_container_security(), resources=_resources("50m", "64Mi", "500m", "256Mi"),
                volume_mounts=[_TMP, out])],
            volumes=volumes)
        self._cronjob(f"{name}-slots-{target.database}", f"regionpair-slots-{target.database}",
                      args.slot_backup_schedule, pod, 240, meta,
                      {"regionpair.io/job": "slot-backup", "regionpair.io/database": target.database},
                      pulumi.ResourceOptions(parent=self, depends_on=[sa]))

    def _cronjob(self, logical: str, k8s_name: str, schedule: str, pod: PodSpecArgs, deadline: int, meta,
                 extra_labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> None:
        k8s.batch.v1.CronJob(logical, CronJobInitArgs(
            metadata=meta(k8s_name, extra=extra_labels),
            spec=CronJobSpecArgs(
                schedule=schedule,
                time_zone=TIME_ZONE,
                concurrency_policy="Forbid",  # never two dumps of one database at once
                starting_deadline_seconds=3600,  # missed by more than an hour (controller down): skip, next day runs
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,  # failed pods kept for their logs
                suspend=False,
                job_template=JobTemplateSpecArgs(
                    metadata=ObjectMetaArgs(labels=dict(extra_labels)),
                    spec=JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=deadline,
                        template=PodTemplateSpecArgs(
                            metadata=ObjectMetaArgs(labels=dict(extra_labels)),
                            spec=pod))))), opts=opts)
