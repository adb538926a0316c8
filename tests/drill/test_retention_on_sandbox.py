"""The retention tiers on a real sandbox: real base backups (automated and manual, copied to DR), a
compliance snapshot, the retention runbook run as the operator runs it, a restore afterwards."""

from __future__ import annotations

import io
import json

import pytest

from runbooks import restore, retention, snapshot
from runbooks.adapters.sandbox_backups import SandboxBackups, _snapshot
from runbooks.backups.ports import COMPLIANCE, TIER_TAG, ComplianceRefused
from runbooks.core.clock import SystemClock
from sandbox import control

EAST, WEST = "local-east", "local-west"
DAY = 86400.0


class Later(SystemClock):
    """The real clock moved ``days`` ahead: the backups taken now are that old to the runbook."""

    def __init__(self, days: float):
        self.offset = days * DAY

    def time(self) -> float:
        return super().time() + self.offset


@pytest.fixture(scope="module")
def sb(base_dir):
    sandbox = control.up(base_dir / "retention")
    yield sandbox
    control.down(sandbox.dir)


def run(module, sb, *args, clock=None) -> tuple[int, dict]:
    out = io.StringIO()
    code = module.main(["--outputs", str(sb.dir / "outputs.json"), "--output", "json", *args], stdout=out,
                       clock=clock)
    return code, json.loads(out.getvalue())


def held(sb, region: str) -> dict[str, str]:
    """Backup id → tier label (kind, or compliance) of payments in the region, read from disk."""
    return {m["id"]: ("compliance" if m.get("tags", {}).get(TIER_TAG) == COMPLIANCE else m["kind"])
            for m in sb.backups.list("payments", region)}


def test_each_tier_is_enforced_in_both_regions_compliance_never_and_the_database_still_restores(sb):
    sb.backups.take(sb.node(EAST, "payments"), kind="automated")  # a second daily backup beside up's
    code, first = run(snapshot, sb, "--yes", "--database", "payments")
    assert code == 0, first
    code, second = run(snapshot, sb, "--yes", "--database", "payments", "--new-run")
    assert code == 0, second
    code, legal = run(snapshot, sb, "--yes", "--database", "payments", "--new-run",
                      "--tag", f"{TIER_TAG}={COMPLIANCE}")
    assert code == 0, legal
    old_manual, new_manual = first["snapshots"]["payments"], second["snapshots"]["payments"]
    compliance = legal["snapshots"]["payments"]
    before = {r: held(sb, r) for r in (EAST, WEST)}
    assert [t for t in before[EAST].values()].count("automated") == 2
    assert before[WEST][old_manual] == "manual" and before[WEST][compliance] == "compliance"

    later = Later(100)  # everything is 100 days old: past the automated (30) and manual (90) tiers
    code, dry = run(retention, sb, "--dry-run", clock=later)
    assert code == 0 and {r: held(sb, r) for r in (EAST, WEST)} == before, "a dry run deletes nothing"
    assert any(line.startswith(f"{WEST}/{compliance} [compliance") and ": keep" in line for line in dry["decisions"])

    code, refused = run(retention, sb, "--yes", "--tier", "compliance", clock=later)
    assert code == 2 and "never deleted" in refused["error"]
    assert {r: held(sb, r) for r in (EAST, WEST)} == before

    code, out = run(retention, sb, "--yes", "--keep-newest", "1", clock=later)
    assert code == 0, out
    after = {r: held(sb, r) for r in (EAST, WEST)}
    for region in (EAST, WEST):
        assert old_manual not in after[region] and new_manual in after[region], (region, after[region])
        assert compliance in after[region], "the compliance tier is never deleted"
    assert list(after[EAST].values()).count("automated") == 1, "the older automated backup went, the newest stays"
    newest_auto = max((m for m in sb.backups.list("payments", EAST) if m["kind"] == "automated"),
                      key=lambda m: m["finished_at"])["id"]
    assert newest_auto in after[EAST]
    assert sorted(line.split(" ")[0] for line in out["deleted"]) == sorted(
        [f"{EAST}/{old_manual}", f"{WEST}/{old_manual}"]
        + [f"{EAST}/{i}" for i, t in before[EAST].items() if t == "automated" and i != newest_auto])
    audit = [json.loads(x) for x in (sb.dir / "runbooks" / "audit.jsonl").read_text().splitlines()]
    assert sum(a["action"] == "delete-backup" for a in audit) == len(out["deleted"])

    # the adapter itself refuses to delete the compliance backup, whoever asks (nothing deleted)
    meta = sb.backups.get("payments", WEST, compliance)
    with pytest.raises(ComplianceRefused):
        SandboxBackups(sb).delete_snapshot(_snapshot(meta))
    # …also when the caller's copy lost the tag: the adapter reads the tags on disk
    stripped = dict(meta, tags={})
    with pytest.raises(ComplianceRefused):
        SandboxBackups(sb).delete_snapshot(_snapshot(stripped))
    assert compliance in held(sb, WEST)

    # what retention kept still restores (the newest automated backup and the WAL archive)
    code, restored = run(restore, sb, "--yes", "--database", "payments", "--latest")
    assert code == 0, restored
    sb.drop_restore(restored["instance"]["name"])


def test_archive_copies_the_compliance_backup_of_each_region_read_only_once(sb):
    legal = {}
    for region in (EAST, WEST):
        mine = [m for m in sb.backups.list("payments", region) if m.get("tags", {}).get(TIER_TAG) == COMPLIANCE]
        if not mine:  # run alone: take one
            code, out = run(snapshot, sb, "--yes", "--database", "payments", "--new-run",
                            "--tag", f"{TIER_TAG}={COMPLIANCE}")
            assert code == 0, out
            mine = [m for m in sb.backups.list("payments", region) if m.get("tags", {}).get(TIER_TAG) == COMPLIANCE]
        legal[region] = max(mine, key=lambda m: m["finished_at"])["id"]
    code, out = run(retention, sb, "--yes", "--archive", "--new-run")
    assert code == 0, out
    assert len(out["archived"]) == 2
    for region in (EAST, WEST):
        [meta] = sb.backups.archives("payments", region)
        assert meta["source"] == legal[region]
        where = sb.backups.compliance_dir("payments", region) / meta["id"]
        assert (where / "base.tar.gz").stat().st_size > 0
        assert all(not (p.stat().st_mode & 0o222) for p in [where, *where.iterdir()]), "read-only"
        assert any(line.startswith(f"{region}/{meta['id']} [archive of {legal[region]}") for line in out["kept"])
    code, again = run(retention, sb, "--yes", "--archive", "--new-run")
    assert code == 0 and again["archived"] == []
    assert [len(sb.backups.archives("payments", r)) for r in (EAST, WEST)] == [1, 1]
