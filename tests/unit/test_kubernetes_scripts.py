"""The CronJobs' shell scripts, run for real by /bin/sh with stand-ins for kubectl, aws and pg_dump
on PATH (jq is the real one): what reaches S3, with which encryption, that a failing step fails the
job before anything is uploaded, and that no password or Secret content reaches the job's logs."""

from __future__ import annotations

import base64
import json
import shutil

import pytest

from components import kubernetes as component
from tests.helpers.kubernetes_scripts import KEY, SECRET_VALUE, run, uploads

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed here")

PASSWORD = "Pa55:w0rd\\with-escapes"


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
