"""The sandbox's WAL archive shows a segment only once it is whole.

Found by a fresh-clone CI run: a restore from DR's backups failed because the snapshot runbook's
seal (which waits for the segment's name) and the archive's replication to DR saw a segment that
``cp`` was still writing, and DR's archive kept the truncated copy for good. PostgreSQL refuses a
restored segment of the wrong size outside standby mode, so the restore stopped.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sandbox import proc as _proc
from sandbox.backups import Backups
from sandbox.layout import Layout
from sandbox.postgres import archive_command

SEGMENT = "000000010000000000000007"


def run_archive_command(archive: Path, wal: Path) -> int:
    cmd = archive_command(str(archive)).replace("%p", str(wal)).replace("%f", wal.name)
    return subprocess.run(["sh", "-c", cmd]).returncode


def test_the_archive_command_publishes_the_segment_whole_and_never_overwrites(tmp_path):
    archive, wal = tmp_path / "archive", tmp_path / "pg_wal" / SEGMENT
    archive.mkdir()
    wal.parent.mkdir()
    wal.write_bytes(b"w" * 4096)
    assert run_archive_command(archive, wal) == 0
    assert sorted(p.name for p in archive.iterdir()) == [SEGMENT]  # no temporary left behind
    assert (archive / SEGMENT).read_bytes() == b"w" * 4096
    wal.write_bytes(b"x" * 4096)
    assert run_archive_command(archive, wal) != 0, "an archived segment must not be overwritten"
    assert (archive / SEGMENT).read_bytes() == b"w" * 4096


def test_replication_to_the_other_region_skips_a_segment_still_being_written(tmp_path):
    layout = Layout(tmp_path / "sb")
    src, dst = layout.archive_dir("payments", "east"), layout.archive_dir("payments", "west")
    src.mkdir(parents=True)
    (src / SEGMENT).write_bytes(b"whole")
    (src / f".{SEGMENT[:-1]}8.partial").write_bytes(b"half")  # the next one, mid-copy
    backups = Backups(layout, state=None, identity=_proc.Identity(name="me", uid=os.getuid(), gid=os.getgid(), switch=False))
    assert backups.replicate_archive("payments", "east", "west") == 1
    assert sorted(p.name for p in dst.iterdir()) == [SEGMENT]
