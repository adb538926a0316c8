"""The slot-backup CronJob of the Kubernetes component (CDC slots, docs/backups.md): declared per
database that asks for it, against the active primary, every 5 minutes, hardened like the dumps;
its scripts run for real (jq, sh) with stand-ins for psql and aws; bad args refused."""

from __future__ import annotations

import json
import shutil

import pytest

from components import kubernetes as component
from components.common import ComponentArgsError
from components.kubernetes_access import backup_role_policy
from components.kubernetes_args import DumpTarget, SecretRef
from contract import slot_backup as contract
from tests.helpers.component_kubernetes import HOST, KEY, SECRET, containers_of, cronjob, pod_of, render
from tests.helpers.kubernetes_scripts import run, uploads

SLOTS = DumpTarget(database="payments", host=HOST, port=5432, db_name="app", username="app_admin",
                   engine_version="16.4", secret_arn=SECRET)


def test_the_slot_job_captures_from_the_active_primary_every_five_minutes():
    job = cronjob(render(slot_backups=[SLOTS]), "regionpair-slots-payments")
    assert job["spec"]["schedule"] == "*/5 * * * *" and job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 300, "a run ends before the next starts"
    by_name = {c["name"]: c for c in containers_of(job)}
    assert list(by_name) == ["password", "capture", "upload"]
    env = {e["name"]: e.get("value") for e in by_name["capture"]["env"]}
    assert env["PGHOST"] == HOST and env["PGSSLMODE"] == "require" and env["CAPTURE_SQL"] == contract.CAPTURE_SQL
    assert "PGPASSWORD" not in env
    up = {e["name"]: e.get("value") for e in by_name["upload"]["env"]}
    assert (up["PREFIX"], up["DATABASE"], up["BUCKET"]) == ("regionpair/slots", "payments", "regionpair-dr-backups")
    for c in containers_of(job):
        assert c["securityContext"]["allowPrivilegeEscalation"] is False and c["securityContext"]["runAsNonRoot"]
    assert pod_of(job)["serviceAccountName"] == "regionpair-backup"


def test_no_slot_job_unless_asked():
    names = [r["inputs"]["metadata"]["name"] for r in render() if r["type"] == "kubernetes:batch/v1:CronJob"]
    assert not any(n.startswith("regionpair-slots-") for n in names)


@pytest.mark.parametrize("bad, words", [
    ([DumpTarget(**{**SLOTS.__dict__, "database": "ledger"})], "one of the databases"),
    ([SLOTS, SLOTS], "each once"),
    ([DumpTarget(**{**SLOTS.__dict__, "password_secret": SecretRef("pg")})], "exactly one of secret_arn"),
])
def test_bad_slot_backups_are_refused_before_any_object(bad, words):
    with pytest.raises(ComponentArgsError, match=words):
        render(slot_backups=bad)


def test_bad_slot_schedule_is_refused():
    with pytest.raises(ComponentArgsError, match="slot_backup_schedule"):
        render(slot_backups=[SLOTS], slot_backup_schedule="every 5 minutes")


def test_the_role_policy_grants_the_slots_prefix_only_when_asked():
    plain = json.loads(backup_role_policy("aws", "regionpair-dr-backups", KEY, [SECRET]))
    withslots = json.loads(backup_role_policy("aws", "regionpair-dr-backups", KEY, [SECRET], slots=True))
    write = lambda doc: next(s for s in doc["Statement"] if s["Sid"] == "WriteDumps")["Resource"]  # noqa: E731
    assert "arn:aws:s3:::regionpair-dr-backups/regionpair/slots/*" not in write(plain)
    assert "arn:aws:s3:::regionpair-dr-backups/regionpair/slots/*" in write(withslots)


# ---- the scripts, for real ------------------------------------------------------------------------

DOC = {"schema_version": 1, "database": "app", "captured_at": 1764748800.25, "server_lsn": "0/3000148",
       "in_recovery": False, "read_only": False,
       "slots": [{"name": "cdc", "plugin": "pgoutput", "confirmed_flush_lsn": "0/3000110"}], "publications": []}

PSQL = """#!/bin/sh
echo "psql $*" >> "$WORK/calls.log"
[ "$PGPASSWORD" = "s3cret" ] || { echo "wrong password" >&2; exit 1; }
for a in "$@"; do case "$a" in --output=*) out=${a#--output=} ;; esac; done
printf '%s\\n' "$FAKE_DOC" > "$out"
"""


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed here")
def test_the_capture_is_kept_under_the_contracts_key_encrypted(work):  # noqa: F811
    (work / "bin" / "psql").write_text(PSQL)
    (work / "bin" / "psql").chmod(0o755)
    done = run(work, component.CAPTURE_SLOTS, PGPASSWORD="s3cret", CAPTURE_SQL=contract.CAPTURE_SQL,
               FAKE_DOC=json.dumps(DOC))
    assert done.returncode == 0, done.stderr
    done = run(work, component.UPLOAD_SLOTS, PREFIX=contract.KEY_PREFIX, DATABASE="payments")
    assert done.returncode == 0, done.stderr
    expected = f"regionpair-dr-backups__{contract.key('payments', DOC['captured_at']).replace('/', '__')}"
    files = uploads(work)
    assert list(files) == [expected], (list(files), expected)
    assert contract.loads(files[expected], "upload").slots[0].confirmed_flush_lsn == "0/3000110"
    calls = (work / "calls.log").read_text()
    assert f"--sse aws:kms --sse-kms-key-id {KEY}" in calls and "s3cret" not in done.stdout + done.stderr
    assert list((work / "dump").iterdir()) == []


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed here")
@pytest.mark.parametrize("flag", ["in_recovery", "read_only"])
def test_a_replica_or_fenced_servers_capture_is_not_kept(work, flag):  # noqa: F811
    (work / "dump" / "slots.json").write_text(json.dumps({**DOC, flag: True}))
    done = run(work, component.UPLOAD_SLOTS, PREFIX=contract.KEY_PREFIX, DATABASE="payments")
    assert done.returncode == 0 and "nothing uploaded" in done.stdout, done.stderr
    assert uploads(work) == {}
