"""The stack config's ``databases`` entries: each RDS PostgreSQL instance's class, version, storage,
backup and maintenance windows, checked against what RDS accepts before any resource exists."""

from __future__ import annotations

import re
from dataclasses import dataclass

from contract import outputs
from contract.fields import Fields
from stacks.config_reader import ConfigError

_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_ENGINE_VERSION = re.compile(r"^\d+(\.\d+)?$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_RESERVED_USERNAMES = ("postgres", "rdsadmin", "admin", "root")
BACKUP_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
MAINTENANCE_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
                                r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")
"""Daily backup windows (HH:MM-HH:MM) and weekly maintenance windows (ddd:HH:MM-ddd:HH:MM), in UTC; the
cache section takes the same forms."""


@dataclass(frozen=True)
class DatabaseConfig:
    name: str
    """Logical name, the same in both stacks (pairs the primary with its replica)."""
    instance_class: str
    engine_version: str
    """PostgreSQL major or major.minor version."""
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    """Storage autoscaling ceiling; defaults to twice allocated_storage_gb."""
    backup_retention_days: int = 30
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"
    multi_az: bool = True
    logical_replication: bool = False
    """rds.logical_replication=1 in the parameter group: logical slots for CDC consumers (docs/backups.md)."""
    db_name: str = "app"
    username: str = "app_admin"
    port: int = 5432
    auto_minor_version_upgrade: bool = True
    """RDS applies minor upgrades in the maintenance window; then engine_version names the major only."""


def _window_minutes(start: str, end: str) -> tuple[int, int]:
    sh, sm = (int(x) for x in start.split(":"))
    eh, em = (int(x) for x in end.split(":"))
    s, e = sh * 60 + sm, eh * 60 + em
    if e <= s:
        e += 24 * 60
    return s, e


def _overlaps(backup: str, maintenance: str) -> bool:
    b_start, b_end = backup.split("-")
    bs, be = _window_minutes(b_start, b_end)
    m_start, m_end = maintenance.split("-")
    md_s, mt_s = m_start.split(":", 1)
    md_e, mt_e = m_end.split(":", 1)
    week = 7 * 24 * 60
    ms = _DAYS.index(md_s) * 1440 + _window_minutes(mt_s, mt_s)[0]
    me = _DAYS.index(md_e) * 1440 + _window_minutes(mt_e, mt_e)[0]
    if me <= ms:
        me += week
    for day in range(-1, 8):  # the backup window happens every day
        s, e = day * 1440 + bs, day * 1440 + be
        for shift in (0, week, -week):
            if s < me + shift and ms + shift < e:
                return True
    return False


def read_database(o: Fields) -> DatabaseConfig:
    name = o.string("name", pattern=outputs.LOGICAL_NAME, hint="lowercase letters, digits and dashes, starting with a letter")
    allocated = o.integer("allocated_storage_gb", minimum=20, maximum=65536)
    db = DatabaseConfig(
        name=name,
        instance_class=o.string("instance_class", pattern=_INSTANCE_CLASS, hint="an RDS instance class such as db.r6g.large"),
        engine_version=o.string("engine_version", pattern=_ENGINE_VERSION, hint="a PostgreSQL version such as 16 or 16.4"),
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=o.integer("max_allocated_storage_gb", 2 * allocated, minimum=allocated, maximum=65536,
                                           why="at least allocated_storage_gb"),
        backup_retention_days=o.integer("backup_retention_days", 30, minimum=7, maximum=35,
                                        why="7 days is the floor for point-in-time recovery here; RDS allows at most 35"),
        backup_window=o.string("backup_window", "03:00-04:00", pattern=BACKUP_WINDOW, hint="HH:MM-HH:MM in UTC"),
        maintenance_window=o.string("maintenance_window", "sun:04:30-sun:05:30", pattern=MAINTENANCE_WINDOW,
                                    hint="ddd:HH:MM-ddd:HH:MM in UTC, e.g. sun:04:30-sun:05:30"),
        multi_az=o.boolean("multi_az", True),
        logical_replication=o.boolean("logical_replication", False),
        db_name=o.string("db_name", "app", pattern=re.compile(r"^[a-z][a-z0-9_]{0,62}$"),
                         hint="a PostgreSQL database name: lowercase letters, digits, underscores"),
        username=o.string("username", "app_admin", pattern=_USERNAME, hint="lowercase letters, digits, underscores"),
        port=o.integer("port", 5432, minimum=1150, maximum=65535, why="RDS PostgreSQL ports are 1150-65535"),
        auto_minor_version_upgrade=o.boolean("auto_minor_version_upgrade", True),
    )
    if db.auto_minor_version_upgrade and "." in db.engine_version:
        # pulumi-aws aws.rds.Instance engine_version: with auto_minor_version_upgrade a prefix such as the
        # major version is allowed and the running version is engine_version_actual; a pinned minor drifts
        # once RDS upgrades it, and the next `pulumi up` plans a downgrade RDS refuses (issue 10, point 4)
        raise ConfigError(o.key("engine_version"), db.engine_version,
                          f"auto_minor_version_upgrade is on, so RDS moves the minor version by itself and a pinned "
                          f"minor drifts (the next `pulumi up` would plan a downgrade RDS refuses): pin the major "
                          f"version only, e.g. {db.engine_version.split('.')[0]!r}, or set "
                          f"auto_minor_version_upgrade: false to own minor upgrades yourself")
    if db.username in _RESERVED_USERNAMES:
        raise ConfigError(o.key("username"), db.username, f"reserved by PostgreSQL/RDS; pick another than {', '.join(_RESERVED_USERNAMES)}")
    s, e = _window_minutes(*db.backup_window.split("-"))
    if e - s < 30:
        raise ConfigError(o.key("backup_window"), db.backup_window, "RDS needs a backup window of at least 30 minutes")
    if _overlaps(db.backup_window, db.maintenance_window):
        raise ConfigError(o.key("maintenance_window"), db.maintenance_window,
                          f"overlaps the backup window {db.backup_window}; RDS refuses overlapping windows")
    o.done()
    return db
