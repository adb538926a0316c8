"""The backup runbooks on a real sandbox: PostgreSQL base backups, WAL archive and point-in-time
restores to new servers, moto's versioned S3. One sandbox for the module; each test writes rows
of its own and compares exactly."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from runbooks import restore, snapshot, undelete, verify_backup
from sandbox import control, proc as _proc

EAST, WEST = "local-east", "local-west"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb(base_dir):
    sandbox = control.up(base_dir / "backups")
    yield sandbox
    control.down(sandbox.dir)


def run(module, sb, *args) -> tuple[int, dict]:
    out = io.StringIO()
    code = module.main(["--outputs", str(sb.dir / "outputs.json"), "--output", "json", *args], stdout=out)
    return code, json.loads(out.getvalue())


def write(sb, prefix: str, n: int) -> None:
    with psycopg.connect(sb.dsn(EAST, "payments", admin=False), autocommit=True) as conn:
        for i in range(n):
            conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES (%s, now(), 'x')", (f"{prefix}-{i:04d}",))


def ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM drill_writes").fetchall()}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def restore_pids(sb) -> list:
    return [r for r in _proc.all_pids(sb.layout.run_dir) if r.component.startswith("postgres-restore-")]


def test_restore_to_a_time_yields_exactly_the_rows_committed_by_then(sb):
    source = sb.dsn(EAST, "payments")
    cuts = []
    for batch in ("t1", "t2"):
        write(sb, f"{batch}-before", 40)
        time.sleep(0.05)
        cuts.append((time.time(), ids(source)))  # nothing else writes: these are the rows committed by then
        time.sleep(0.05)
        write(sb, f"{batch}-after", 40)
    for t, expected in cuts:
        code, out = run(restore, sb, "--yes", "--database", "payments", "--to-time", iso(t))
        assert code == 0, out
        inst = out["instance"]
        assert inst["status"] == "available" and "passfile=" in inst["dsn"] and "password" not in inst["dsn"]
        got = ids(inst["dsn"])
        assert got == expected, f"restored {len(got)} rows, {len(expected)} were committed by {iso(t)}: " \
                                f"missing {sorted(expected - got)[:3]}, extra {sorted(got - expected)[:3]}"
        with psycopg.connect(inst["dsn"], autocommit=True) as conn:  # a new, writable instance
            assert conn.execute("SELECT current_setting('cluster_name')").fetchone()[0] == inst["name"]
            conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES ('restored-write', now(), 'r')")
        assert "restored-write" not in ids(source)
        sb.drop_restore(inst["name"])
    assert restore_pids(sb) == []


def test_restore_refuses_bad_input_and_creates_nothing(sb):
    before = set((sb.dir / "restores").iterdir()) if (sb.dir / "restores").exists() else set()
    cases = [(["--database", "payments", "--to-time", "2099-01-01T00:00:00Z"], "in the future"),
             (["--database", "payments", "--to-time", "2001-01-01T00:00:00Z"], "outside the restorable window"),
             (["--database", "ledger"], "ledger: not in the outputs")]
    for args, message in cases:
        proc = subprocess.run([sys.executable, "-m", "runbooks.restore", "--outputs", str(sb.dir / "outputs.json"),
                               "--yes", "--output", "json", *args], capture_output=True, text=True, timeout=60,
                              cwd=ROOT)
        out = json.loads(proc.stdout)
        assert proc.returncode == 2 and message in out["error"], out
    code, out = run(restore, sb, "--yes", "--database", "payments", "--to-time", "2001-01-01T00:00:00Z")
    earliest = datetime.fromtimestamp(sb.backups.window("payments", EAST)[0], timezone.utc)
    assert earliest.strftime("%Y-%m-%dT%H:%M:%S") in out["error"]
    after = set((sb.dir / "restores").iterdir()) if (sb.dir / "restores").exists() else set()
    assert after == before and restore_pids(sb) == []


def test_verify_backup_passes_on_a_good_backup_and_tears_down(sb):
    write(sb, "verify-good", 25)
    code, out = run(verify_backup, sb, "--yes", "--database", "payments")
    assert code == 0, out
    v = out["verification"]["payments"]
    assert v["passed"] and v["seconds"] > 0
    assert any("amcheck: heap of" in d for d in out["details"]), out["details"]
    assert restore_pids(sb) == [] and not any((sb.dir / "restores").iterdir())
    prom = Path(out["metrics"]).read_text()
    assert 'regionpair_backup_verification_success{database="payments",region="local-east"} 1.0' in prom


def _damage_newest_backup(sb, needle: bytes, replacement: bytes) -> Path:
    """Change one row's bytes inside the drill_writes heap file of the newest base backup."""
    with psycopg.connect(sb.dsn(EAST, "payments"), autocommit=True) as conn:
        (relpath,) = conn.execute("SELECT pg_relation_filepath('drill_writes')").fetchone()
    newest = sb.backups.list("payments", EAST)[-1]
    tar_path = sb.backups.backups_dir("payments", EAST) / newest["id"] / "base.tar.gz"
    with tarfile.open(tar_path, "r:gz") as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
    found = False
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as dst:
        for m, data in members:
            if m.name.lstrip("./") == relpath and needle in data:
                data, found = data.replace(needle, replacement, 1), True
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    assert found, f"{needle!r} not in {relpath} of backup {newest['id']}"
    tar_path.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))
    return tar_path


def test_verify_backup_fails_loudly_on_a_damaged_backup_and_says_why(sb):
    write(sb, "damage-me", 5)
    with psycopg.connect(sb.dsn(EAST, "payments"), autocommit=True) as conn:
        # hint bits set now, before the backup: reading the rows later writes no full-page image
        # (wal_log_hints) that recovery would use to repair the damaged page
        conn.execute("VACUUM FREEZE drill_writes")
        conn.execute("CHECKPOINT")
    code, out = run(snapshot, sb, "--yes", "--database", "payments", "--no-copy")
    assert code == 0, out
    _damage_newest_backup(sb, b"damage-me-0003", b"damage-XX-0003")
    try:
        code, out = run(verify_backup, sb, "--yes", "--database", "payments")
        assert code == 1, out
        assert "VERIFICATION FAILED" in out["error"]
        assert "differ in content from the source" in out["error"] or "amcheck" in out["error"], out["error"]
        assert restore_pids(sb) == [], "the temporary instance outlived a failed verification"
        prom = Path(out["metrics"]).read_text()
        assert 'regionpair_backup_verification_success{database="payments",region="local-east"} 0.0' in prom
        audit = [json.loads(line) for line in (sb.dir / "runbooks" / "audit.jsonl").read_text().splitlines()]
        assert [a["result"] for a in audit if a["action"] == "verification"][-1] == "FAILED"
    finally:
        sb.backups.delete("payments", EAST, sb.backups.list("payments", EAST)[-1]["id"])


def test_snapshot_copies_to_dr_retention_and_restore_from_dr(sb):
    write(sb, "dr", 10)
    code, first = run(snapshot, sb, "--yes", "--database", "payments")
    assert code == 0, first
    time.sleep(1.0)
    code, second = run(snapshot, sb, "--yes", "--database", "payments", "--enforce-retention",
                       "--retention-days", "0.00001", "--keep-newest", "1")
    assert code == 0, second
    newest = second["snapshots"]["payments"]
    for region in (EAST, WEST):
        managed = [b["id"] for b in sb.backups.list("payments", region) if b["kind"] == "manual"]
        assert managed == [newest], (region, managed)
    assert any(b["kind"] == "automated" for b in sb.backups.list("payments", EAST)), "automated backups are kept"
    assert len(second["deleted"]) >= 2  # the older snapshot in both regions
    code, out = run(restore, sb, "--yes", "--database", "payments", "--source-region", "dr", "--latest")
    assert code == 0, out
    inst = out["instance"]
    assert inst["region"] == WEST and inst["endpoint"] == sb.state.addresses[WEST]
    assert {f"dr-{i:04d}" for i in range(10)} <= ids(inst["dsn"])
    sb.drop_restore(inst["name"])


def test_undelete_on_the_regions_s3(sb):
    import boto3
    region = sb.outputs.regions[EAST]
    bucket = region.storage.data_bucket
    s3 = boto3.client("s3", endpoint_url=region.storage.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    s3.put_object(Bucket=bucket, Key="ledger/a.json", Body=b"a1")
    s3.put_object(Bucket=bucket, Key="ledger/b.json", Body=b"b1")
    time.sleep(1.1)  # S3 LastModified has whole seconds
    t = time.time()
    time.sleep(1.1)
    s3.delete_object(Bucket=bucket, Key="ledger/a.json")
    s3.put_object(Bucket=bucket, Key="ledger/b.json", Body=b"b2-wrong")
    s3.put_object(Bucket=bucket, Key="ledger/c.json", Body=b"new")
    code, out = run(undelete, sb, "--dry-run", "--bucket", bucket, "--prefix", "ledger/", "--to-time", iso(t))
    assert code == 0 and len(out["listing"]) == 3, out
    assert s3.get_object(Bucket=bucket, Key="ledger/b.json")["Body"].read() == b"b2-wrong", "dry run changed nothing"
    code, out = run(undelete, sb, "--yes", "--bucket", bucket, "--prefix", "ledger/", "--to-time", iso(t))
    assert code == 0, out
    assert s3.get_object(Bucket=bucket, Key="ledger/a.json")["Body"].read() == b"a1"
    assert s3.get_object(Bucket=bucket, Key="ledger/b.json")["Body"].read() == b"b1"
    assert s3.get_object(Bucket=bucket, Key="ledger/c.json")["Body"].read() == b"new", "created after T: left"
    west = sb.outputs.regions[WEST].storage
    s3w = boto3.client("s3", endpoint_url=west.endpoint_url, region_name="us-east-1",
                       aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    s3w.put_bucket_versioning(Bucket=west.data_bucket, VersioningConfiguration={"Status": "Suspended"})
    try:
        code, out = run(undelete, sb, "--yes", "--bucket", west.data_bucket, "--to-time", iso(t))
        assert code == 2 and "no versioning (status: Suspended)" in out["error"], out
    finally:
        s3w.put_bucket_versioning(Bucket=west.data_bucket, VersioningConfiguration={"Status": "Enabled"})


def test_down_stops_a_restored_instance(sb):
    info = sb.restore("left-running", "payments", EAST)
    (rec,) = restore_pids(sb)
    assert _proc.is_alive(rec.pid, rec.start_time)
    done = control.down(sb.dir)
    assert any("postgres-restore-left-running" in line for line in done), done
    assert not _proc.is_alive(rec.pid, rec.start_time)
    assert info["port"]
