"""The Kubernetes component rendered under the mocks, and its CronJobs' pods and containers."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kubernetes import ClusterDr
from components.kubernetes_args import ClusterDrArgs, DatabaseEndpoint, DumpTarget
from tests import harness
from tests.harness import of_type

CRONJOB = "kubernetes:batch/v1:CronJob"


KEY = "arn:aws:kms:us-west-2:123456789012:key/dr"


SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0123abcd-a1b2c3"


HOST = "regionpair-prod-payments.cabc.us-east-1.rds.amazonaws.com"


BACKUP_ROLE = "arn:aws:iam::123456789012:role/regionpair-dr-k8s-backup"


EXPORT_ROLE = "arn:aws:iam::123456789012:role/regionpair-dr-k8s-export"


LOCAL = "regionpair-dr-payments.cdef.us-west-2.rds.amazonaws.com"


def args(**kw) -> ClusterDrArgs:
    base = dict(
        region="us-west-2", active_region="us-east-1",
        databases={"payments": DatabaseEndpoint(host=HOST, port=5432),
                   "market-data": DatabaseEndpoint(host="md.example", port=6543)},
        kafka_bootstrap_servers="b-1.kafka:9098,b-2.kafka:9098", data_bucket="regionpair-prod-data",
        backups_bucket="regionpair-dr-backups", kms_key_arn=KEY, backup_role_arn=BACKUP_ROLE,
        export_role_arn=EXPORT_ROLE,
        dumps=[DumpTarget(database="payments", host=LOCAL, port=5432, db_name="app", username="app_admin",
                          engine_version="16.4", secret_arn=SECRET)],
        app_namespaces=["payments", "checkout"])
    base.update(kw)
    return ClusterDrArgs(**base)


def render(**kw):
    def program():
        provider = k8s.Provider("k8s-us-west-2", context="dr")
        ClusterDr("k8s", args(**kw), opts=pulumi.ResourceOptions(provider=provider))
    return harness.render_program(program).resources


def cronjob(resources, k8s_name):
    found = [r for r in of_type(resources, CRONJOB) if r["inputs"]["metadata"]["name"] == k8s_name]
    assert len(found) == 1, [r["inputs"]["metadata"]["name"] for r in of_type(resources, CRONJOB)]
    return found[0]["inputs"]


def pod_of(job):
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers_of(job):
    pod = pod_of(job)
    return pod.get("initContainers", []) + pod["containers"]
