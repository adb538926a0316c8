"""The Kubernetes job scripts run in a work directory with stand-in tools on PATH (the work fixture: tests/unit/conftest.py imports it)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from components import kubernetes as component

KEY = "arn:aws:kms:us-west-2:123456789012:key/dr"


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


def kubectl_items(kind: str, items: list[dict]) -> str:
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
    (tmp_path / "configmaps.json").write_text(kubectl_items("ConfigMap", [
        {"metadata": {"name": "api-config", "namespace": "payments", **server_set}, "data": {"MODE": "live"}},
        {"metadata": {"name": "kube-root-ca.crt", "namespace": "payments"}, "data": {"ca.crt": "…"}}]))
    (tmp_path / "secrets.json").write_text(kubectl_items("Secret", [
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
