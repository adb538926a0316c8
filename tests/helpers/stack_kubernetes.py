"""A stack's kubernetes section and the CronJobs it renders, for the stack tests."""

from __future__ import annotations

from tests.harness import of_type

CRONJOB = "kubernetes:batch/v1:CronJob"


def section(stack: str, **kw) -> dict:
    region = "us-east-1" if stack == "prod" else "us-west-2"
    base = {"context": f"arn:aws:eks:{region}:123456789012:cluster/regionpair-{stack}",
            "backup_role_arn": f"arn:aws:iam::123456789012:role/regionpair-{stack}-k8s-backup",
            "export_role_arn": f"arn:aws:iam::123456789012:role/regionpair-{stack}-k8s-export",
            "app_namespaces": ["payments"], "restart_deployments": {"payments": ["payments-api"]}}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def cronjob(resources, k8s_name):
    (found,) = [r for r in of_type(resources, CRONJOB) if r["inputs"]["metadata"]["name"] == k8s_name]
    return found["inputs"]


def pod(job):
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
