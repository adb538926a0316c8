"""Who may do what for ClusterDr: the Kubernetes RBAC rules of the runbooks' and the config restore's
groups, and the least-privilege IAM policies the backup and export jobs' IRSA roles need (the component
creates no IAM; the caller passes the roles in)."""

from __future__ import annotations

from typing import Sequence

from components.common import policy_json
from components.kubernetes_scripts import DUMP_PREFIX, EXPORT_PREFIX
from contract import slot_backup as slot_contract
from contract.active_endpoints import CONFIGMAP_NAME


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
