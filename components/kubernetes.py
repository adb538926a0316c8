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

Beside it: its arguments and their checks (`kubernetes_args.py`), the RBAC rules and IAM policies of
who acts for it (`kubernetes_access.py`), and the jobs' shell scripts (`kubernetes_scripts.py`).
"""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.batch.v1 import CronJobInitArgs, CronJobSpecArgs, JobSpecArgs, JobTemplateSpecArgs
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ConfigMapInitArgs,
    ContainerArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    EnvVarSourceArgs,
    NamespaceInitArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecretKeySelectorArgs,
    SecurityContextArgs,
    ServiceAccountInitArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs
from pulumi_kubernetes.rbac.v1 import (
    ClusterRoleBindingInitArgs,
    ClusterRoleInitArgs,
    PolicyRuleArgs,
    RoleBindingInitArgs,
    RoleInitArgs,
    RoleRefArgs,
    SubjectArgs,
)

from components.kubernetes_access import RESTORE_ROLE, restore_namespace_rules, restore_rules, runbook_rules
from components.kubernetes_args import TYPE, ClusterDrArgs, DumpTarget, validate
from components.kubernetes_scripts import (
    CAPTURE_SLOTS,
    CLEAN,
    DUMP,
    DUMP_PREFIX,
    EXPORT,
    EXPORT_PREFIX,
    FETCH_PASSWORD,
    UPLOAD,
    UPLOAD_SLOTS,
)
from contract import active_endpoints as endpoints, slot_backup as slot_contract

# the contract itself (pure Python, shared with the runbooks)
from contract.active_endpoints import (
    CONFIGMAP_NAME,
    CONTRACT_LABEL,
    CONTRACT_LABEL_VALUE,
    CONTRACT_VERSION,
    VERSION_ANNOTATION,
)

TIME_ZONE = "Etc/UTC"
RUNBOOK_ROLE = "regionpair-runbooks"
"""Role and RoleBinding, in each app namespace, of the runbooks' identity."""
RUN_AS = 65532
"""An unprivileged uid/gid with no entry in the images: nothing in them runs as it by accident."""


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


class ClusterDr(pulumi.ComponentResource):
    """The DR objects of one region's cluster: active endpoints, daily dumps, daily config export."""

    configmap_names: list[str]
    namespace: str

    def __init__(self, name: str, args: ClusterDrArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
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
