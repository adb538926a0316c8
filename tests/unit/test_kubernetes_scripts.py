"""The CronJobs' shell scripts, run for real by /bin/sh with stand-ins for kubectl, aws and pg_dump
on PATH (jq is the real one): what reaches S3, with which encryption, that a failing step fails the
job before anything is uploaded, and that no password or Secret content reaches the job's logs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components import kubernetes as component

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed here")

KEY = "arn:aws:kms:us-west-2:123456789012:key/dr"
PASSWORD = "Pa55:w0rd\\with-escapes"
SECRET_VALUE = "api-token-never-in-logs"

AWS = """#!/bin/sh
echo "aws $*" >> "$WORK/calls.log"
case "$1 $2" in
  "secretsmanager get-secret-value") [ -n "$FAIL_AWS" ] && exit 255; printf '%s\\n' "$FAKE_SECRET" ;;
  "s3 cp") name=$(printf '%s' "$4" | sed 's#^s3://##; s#/#__#g'); cp "$3" "$WORK/uploads/$name" ;;
  *) echo "unexpected aws call: $*" >&2; exit 2 ;;
esac
"""

KUBECTL = """#!/bin/sh
echo "kubectl $*" >> "$WORK/calls.log"
case "$2" in
  configmaps) cat "$WORK/configmaps.json" ;;
  secrets) [ -n "$FAIL_SECRETS" ] && { echo "Error from server (Forbidden)" >&2; exit 1; }; cat "$WORK/secrets.json" ;;
esac
"""

PG_DUMP = """#!/bin/sh
echo "pg_dump $*" >> "$WORK/calls.log"
[ "$PGPASSWORD" = "$EXPECTED_PASSWORD" ] || { echo "wrong password" >&2; exit 1; }
printf 'PGDMP fake dump' > "$WORK/dump/database.dump"
"""


def _items(kind: str, items: list[dict]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": kind, **item} for item in items]})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for d in ("bin", "uploads", "export", "dump", "pg"):
        (tmp_path / d).mkdir()
    for name, text in (("aws", AWS), ("kubectl", KUBECTL), ("pg_dump", PG_DUMP)):
        path = tmp_path / "bin" / name
        path.write_text(text)
        path.chmod(0o755)
    server_set = {"resourceVersion": "123", "uid": "0b6a", "creationTimestamp": "2026-01-01T00:00:00Z",
                  "managedFields": [{"manager": "kubectl"}],
                  "ownerReferences": [{"kind": "Deployment", "name": "api", "uid": "77"}]}
    (tmp_path / "configmaps.json").write_text(_items("ConfigMap", [
        {"metadata": {"name": "api-config", "namespace": "payments", **server_set}, "data": {"MODE": "live"}},
        {"metadata": {"name": "kube-root-ca.crt", "namespace": "payments"}, "data": {"ca.crt": "…"}}]))
    (tmp_path / "secrets.json").write_text(_items("Secret", [
        {"metadata": {"name": "api-token", "namespace": "payments", **server_set}, "type": "Opaque",
         "data": {"token": base64.b64encode(SECRET_VALUE.encode()).decode()}}]))
    return tmp_path


def run(work: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    for mount in ("/export/", "/dump/", "/run/pg/"):
        script = script.replace(mount, f"{work}/{mount.strip('/').split('/')[-1]}/")
    full_env = {"PATH": f"{work}/bin:{os.environ['PATH']}", "WORK": str(work), "HOME": str(work),
                "BUCKET": "regionpair-dr-backups", "KMS_KEY_ARN": KEY, "CLEAN": component.CLEAN, **env}
    return subprocess.run(["sh", "-c", script], env=full_env, capture_output=True, text=True, timeout=30)


def uploads(work: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (work / "uploads").iterdir()}


def test_export_uploads_restorable_encrypted_copies_and_logs_no_secret(work):
    done = run(work, component.EXPORT, PREFIX="k8s-config", EXPORT_NAMESPACES="payments")
    assert done.returncode == 0, done.stderr
    files = uploads(work)
    assert sorted(n.split("__", 3)[-1] for n in files) == ["payments__configmaps.json", "payments__secrets.json"]
    assert all(n.startswith("regionpair-dr-backups__k8s-config__") for n in files)
    by_kind = {n.rsplit("__", 1)[-1]: json.loads(t) for n, t in files.items()}
    assert [i["metadata"]["name"] for i in by_kind["configmaps.json"]["items"]] == ["api-config"]
    (secret,) = by_kind["secrets.json"]["items"]
    assert base64.b64decode(secret["data"]["token"]).decode() == SECRET_VALUE
    for doc in by_kind.values():
        for item in doc["items"]:
            assert set(item["metadata"]) == {"name", "namespace"}, item["metadata"]  # applies cleanly elsewhere
    calls = (work / "calls.log").read_text().splitlines()
    uploads_made = [c for c in calls if c.startswith("aws s3 cp")]
    assert len(uploads_made) == 2
    assert all(f"--sse aws:kms --sse-kms-key-id {KEY}" in c for c in uploads_made)
    assert "kubectl get secrets -n payments --field-selector type!=kubernetes.io/service-account-token -o json" in calls
    out = done.stdout + done.stderr
    assert SECRET_VALUE not in out and base64.b64encode(SECRET_VALUE.encode()).decode() not in out
    assert done.stdout.strip().startswith("exported to s3://regionpair-dr-backups/k8s-config/")
    assert list((work / "export").iterdir()) == []  # nothing left in the staging volume


def test_export_of_every_namespace_when_asked(work):
    done = run(work, component.EXPORT, PREFIX="k8s-config", EXPORT_NAMESPACES="*")
    assert done.returncode == 0, done.stderr
    assert sorted(n.split("__", 3)[-1] for n in uploads(work)) == ["all-namespaces__configmaps.json",
                                                                   "all-namespaces__secrets.json"]


def test_export_fails_loudly_and_uploads_nothing_of_a_kind_it_could_not_read(work):
    done = run(work, component.EXPORT, PREFIX="k8s-config", EXPORT_NAMESPACES="payments", FAIL_SECRETS="1")
    assert done.returncode != 0
    assert [n.rsplit("__", 1)[-1] for n in uploads(work)] == ["configmaps.json"]
    assert "Forbidden" in done.stderr


def test_dump_reads_the_password_at_run_time_and_never_logs_it(work):
    secret = json.dumps({"username": "app_admin", "password": PASSWORD})
    fetch = run(work, component.FETCH_PASSWORD,
                SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1", FAKE_SECRET=secret)
    assert fetch.returncode == 0, fetch.stderr
    assert sorted(p.name for p in (work / "pg").iterdir()) == ["password"]  # the JSON is gone
    assert (work / "pg" / "password").stat().st_mode & 0o077 == 0
    calls = (work / "calls.log").read_text()
    assert "--region us-east-1" in calls  # the secret's own region (prod's, for a DR replica)
    dump = run(work, component.DUMP, EXPECTED_PASSWORD=PASSWORD)
    assert dump.returncode == 0, dump.stderr
    upload = run(work, component.UPLOAD, PREFIX="pgdump", DATABASE="payments")
    assert upload.returncode == 0, upload.stderr
    (name,) = uploads(work)
    assert name.startswith("regionpair-dr-backups__pgdump__payments__") and name.endswith(".dump")
    assert f"--sse aws:kms --sse-kms-key-id {KEY}" in (work / "calls.log").read_text()
    for done in (fetch, dump, upload):
        assert PASSWORD not in done.stdout + done.stderr


def test_a_failed_secret_read_fails_the_job(work):
    done = run(work, component.FETCH_PASSWORD, SECRET_ARN="arn:aws:secretsmanager:us-east-1:1:secret:x",
               FAKE_SECRET="{}", FAIL_AWS="1")
    assert done.returncode != 0
    wrong = run(work, component.FETCH_PASSWORD, SECRET_ARN="arn:aws:secretsmanager:us-east-1:1:secret:x",
                FAKE_SECRET='{"username": "app_admin"}')
    assert wrong.returncode != 0, "a secret without a password must not produce an empty password file silently"


def test_dump_with_a_kubernetes_secret_uses_the_environment(work):
    done = run(work, component.DUMP, PGPASSWORD=PASSWORD, EXPECTED_PASSWORD=PASSWORD)
    assert done.returncode == 0, done.stderr
