"""The stack config's optional ``kubernetes`` section: the region's cluster, the active-endpoints
ConfigMap's namespaces, the Deployments the runbooks restart, and the backup and export CronJobs
(components/kubernetes.py, docs/kubernetes.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from components.kubernetes_access import RESTORE_GROUP
from components.kubernetes_args import BACKUP_SCHEDULE, EXPORT_SCHEDULE, image_problem
from contract.active_endpoints import DEPLOYMENT_NAME, DEPLOYMENT_NAME_HINT
from contract.fields import MISSING, Fields
from stacks.config_database import DatabaseConfig
from stacks.config_reader import SECRET, ConfigError, section

_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_K8S_CONTEXT = re.compile(r"^\S{1,253}$")
_K8S_GROUP = re.compile(r"^(?!system:)[A-Za-z0-9][A-Za-z0-9:._-]{0,62}$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_CRON = re.compile(r"^[0-9*/,-]+( [0-9*/,-]+){4}$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$")


@dataclass(frozen=True)
class PasswordSecretConfig:
    name: str
    """A Kubernetes Secret in the jobs' namespace (e.g. synced from Secrets Manager by External Secrets)."""
    key: str = "password"


@dataclass(frozen=True)
class KubernetesConfig:
    """The optional `kubernetes` section: the region's cluster gets the active-endpoints ConfigMap
    and the backup/export CronJobs (components/kubernetes.py, docs/kubernetes.md)."""
    backup_role_arn: str
    """IRSA role of the pg_dump job (the stacks create no IAM for the cluster)."""
    export_role_arn: str
    """IRSA role of the ConfigMap/Secret export job."""
    kubeconfig: str | None = field(default=None, repr=False)
    """The cluster's kubeconfig, a config secret (never printed)."""
    context: str | None = None
    """A context of the kubeconfig (or of the ambient kubeconfig when kubeconfig is not given)."""
    runbook_context: str | None = None
    """The context through which the runbooks reach this cluster from the operator's own kubeconfig
    (exported in the outputs; default: ``context``). Always set once the config is read."""
    runbook_group: str = "regionpair-runbooks"
    """The Kubernetes group the runbooks' identity is mapped to (EKS access entry); it may get, list
    and patch the active-endpoints ConfigMaps of the app namespaces, get and patch the Deployments
    of ``restart_deployments``, nothing else."""
    namespace: str = "regionpair"
    create_namespace: bool = True
    app_namespaces: tuple[str, ...] = ()
    """Namespaces that get the ConfigMap; empty means the jobs' namespace."""
    export_namespaces: tuple[str, ...] = ()
    """Namespaces exported; empty means app_namespaces."""
    export_all_namespaces: bool = False
    logical_backups: bool = True
    backup_schedule: str = "0 2 * * *"
    export_schedule: str = "30 2 * * *"
    postgres_image: str | None = None
    """None: the component's default."""
    tools_image: str | None = None
    """None: the component's default."""
    dump_size_limit: str = "20Gi"
    password_secrets: Mapping[str, PasswordSecretConfig] = field(default_factory=dict)
    """Per database: a Kubernetes Secret instead of reading Secrets Manager at run time."""
    restart_deployments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """App namespace → the Deployments the runbooks restart (``kubectl rollout restart``) after they
    rewrite that namespace's ConfigMap: those that read it through ``envFrom``. The Role grants get
    and patch on exactly these names. Empty (default): no Deployment is touched, none is granted."""
    restore_group: str | None = "regionpair-config-restore"
    """The Kubernetes group that may restore the configuration export (runbooks/config_restore.py);
    ``false`` in config: none is declared."""
    restore_secrets: bool = False
    """That group may also write Secrets (the restore's --include-secrets)."""


def read_kubernetes(o: Fields, databases: tuple[DatabaseConfig, ...], secret: bool | None) -> KubernetesConfig:
    kubeconfig = o.get("kubeconfig", None)
    if kubeconfig is not None and (not isinstance(kubeconfig, str) or "clusters" not in kubeconfig
                                   or "apiVersion" not in kubeconfig):
        raise ConfigError(o.key("kubeconfig"), SECRET, "expected the text of a kubeconfig file (apiVersion, clusters, "
                          "…); set it with `pulumi config set --secret --path regionpair:kubernetes.kubeconfig "
                          "< kubeconfig.yaml`")
    if kubeconfig is not None and secret is False:
        raise ConfigError(o.key("kubeconfig"), SECRET, "is stored in plain text; store it as a secret: `pulumi "
                          "config set --secret --path regionpair:kubernetes.kubeconfig < kubeconfig.yaml`")
    context = o.string("context", None, pattern=_K8S_CONTEXT, hint="a kubeconfig context name")
    if kubeconfig is None and context is None:
        raise ConfigError(o.key("context"), MISSING, "name the cluster explicitly: give kubeconfig (a secret) or "
                          "context; the ambient current-context could be another region's cluster")
    runbook_context = o.string("runbook_context", None, pattern=_K8S_CONTEXT, hint="a kubeconfig context name") \
        or context
    if runbook_context is None:
        raise ConfigError(o.key("runbook_context"), MISSING, "the runbooks rewrite this cluster's active endpoints "
                          "after a failover through a context of the operator's own kubeconfig (never the stack's "
                          "kubeconfig, a secret): give runbook_context, e.g. the EKS cluster ARN, which is the "
                          "context name `aws eks update-kubeconfig` writes")
    runbook_group = o.string("runbook_group", "regionpair-runbooks", pattern=_K8S_GROUP,
                             hint="a Kubernetes group name (letters, digits, - . _ :), not system:…")
    names = {db.name for db in databases}
    namespace = o.string("namespace", "regionpair", pattern=_K8S_NAME, hint="a Kubernetes namespace name")
    apps = o.strings("app_namespaces", [], pattern=_K8S_NAME, hint="Kubernetes namespace names")
    exports = o.strings("export_namespaces", [], pattern=_K8S_NAME, hint="Kubernetes namespace names")
    all_namespaces = o.boolean("export_all_namespaces", False)
    if all_namespaces and exports:
        raise ConfigError(o.key("export_namespaces"), list(exports), "export_all_namespaces is true, which already "
                          "covers every namespace; remove one of the two")
    schedules = {}
    for key, default in (("backup_schedule", BACKUP_SCHEDULE), ("export_schedule", EXPORT_SCHEDULE)):
        schedules[key] = o.string(key, default, pattern=_CRON,
                                  hint="a five-field cron schedule, in UTC, such as 0 2 * * *")
    images = {}
    for key in ("postgres_image", "tools_image"):
        image = o.string(key, None)
        problem = None if image is None else image_problem(image)
        if problem:
            raise ConfigError(o.key(key), image, problem)
        images[key] = image
    secrets_obj = o.obj("password_secrets", required=False)
    password_secrets = {}
    for db_name in list(secrets_obj.data):
        if db_name not in names:
            secrets_obj.seen.add(db_name)
            raise ConfigError(secrets_obj.key(db_name), secrets_obj.data[db_name],
                              f"no database {db_name!r} in regionpair:databases (there are {sorted(names)})")
        ref = secrets_obj.obj(db_name)
        password_secrets[db_name] = PasswordSecretConfig(
            name=ref.string("name", pattern=_K8S_NAME, hint="a Kubernetes Secret name"),
            key=ref.string("key", "password", pattern=_SECRET_KEY, hint="a Secret data key"))
        ref.done()
    secrets_obj.done()
    restart_deployments = _restart_deployments(o, apps or (namespace,))
    restore_group: str | None = None
    if o.get("restore_group", None) is not False:
        restore_group = o.string("restore_group", RESTORE_GROUP, pattern=_K8S_GROUP,
                                 hint="a Kubernetes group name (letters, digits, - . _ :), not system:…, or false")
    restore_secrets = o.boolean("restore_secrets", False)
    if restore_secrets and restore_group is None:
        raise ConfigError(o.key("restore_secrets"), True, "restore_group is false, so nobody could use it; name a "
                          "restore_group or drop restore_secrets")
    cfg = KubernetesConfig(
        backup_role_arn=o.string("backup_role_arn", pattern=_ROLE_ARN,
                                 hint="an IAM role ARN for IRSA, arn:aws:iam::<account>:role/<name>"),
        export_role_arn=o.string("export_role_arn", pattern=_ROLE_ARN,
                                 hint="an IAM role ARN for IRSA, arn:aws:iam::<account>:role/<name>"),
        kubeconfig=kubeconfig, context=context, runbook_context=runbook_context, runbook_group=runbook_group,
        namespace=namespace,
        create_namespace=o.boolean("create_namespace", True), app_namespaces=apps, export_namespaces=exports,
        export_all_namespaces=all_namespaces, logical_backups=o.boolean("logical_backups", True),
        backup_schedule=schedules["backup_schedule"], export_schedule=schedules["export_schedule"],
        postgres_image=images["postgres_image"], tools_image=images["tools_image"],
        dump_size_limit=o.string("dump_size_limit", "20Gi", pattern=_QUANTITY, hint="a size such as 20Gi"),
        password_secrets=password_secrets, restart_deployments=restart_deployments,
        restore_group=restore_group, restore_secrets=restore_secrets)
    o.done()
    return cfg


def _restart_deployments(o: Fields, app_namespaces: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``restart_deployments: {<app namespace>: [<Deployment>, …]}``: only namespaces that get the
    ConfigMap (the runbooks' Role lives there), valid Deployment names, each once, none empty."""
    raw = o.get("restart_deployments", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(o.key("restart_deployments"), raw, "expected a mapping of app namespace to Deployment "
                          "names, e.g. {payments: [payments-api, payments-worker]}")
    r = section(raw, o.key("restart_deployments"))
    found: dict[str, tuple[str, ...]] = {}
    for ns in list(raw):
        if ns not in app_namespaces:
            raise ConfigError(r.key(str(ns)), raw[ns], f"{ns!r} is not one of the app namespaces "
                              f"{list(app_namespaces)}: the runbooks rewrite the ConfigMap and hold a Role only "
                              "there; add it to app_namespaces, or list Deployments of those namespaces")
        names = r.strings(ns, (), pattern=DEPLOYMENT_NAME, hint=DEPLOYMENT_NAME_HINT)
        if not names:
            raise ConfigError(r.key(ns), [], "lists no Deployment; name at least one, or remove the namespace")
        found[ns] = names
    r.done()
    return found
