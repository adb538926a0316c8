"""Where everything of one sandbox lives, and its state file.

``DIR`` holds the sandbox::

    DIR/state.json             what `up` chose (addresses, ports, users, options); marks DIR as a sandbox
    DIR/outputs.json           the outputs contract (contract/outputs/)
    DIR/secrets/pgpass         passwords of the three database roles, pgpass format, mode 0600
    DIR/run/<component>.pid    one per running process (pid + kernel start time)
    DIR/logs/<component>.log   one per component, plus up.log for the commands `up` ran
    DIR/dns/records.json       the DNS records the responder serves (fqdn → address)
    DIR/link.json              the link's injected faults (latency, partition), survives a relay restart
    DIR/pg/<db>/<region>/data     PGDATA of that server
    DIR/pg/<db>/<region>/archive  its WAL archive (PITR)
    DIR/pg/<db>/<region>/FENCED   present while that server is fenced

Unix sockets cannot have paths longer than 107 bytes, so they live in a short directory
``/tmp/regionpair-sandbox-<hash of DIR>/`` recorded in the state and removed by `down`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.errors import SandboxError

KIND = "regionpair-sandbox"
STATE_VERSION = 1

EAST = "local-east"
WEST = "local-west"
REGIONS = (EAST, WEST)
DEFAULT_ADDRESSES = {EAST: "127.0.1.1", WEST: "127.0.2.1"}
DEFAULT_SYSTEMS = ("postgres", "kafka", "s3")
"""What ``python -m sandbox up`` and ``python -m runbooks.drill`` start unless told otherwise:
everything the stacks declare (``--systems postgres`` for PostgreSQL alone)."""
DNS_ADDRESS = "127.0.0.1"
ZONE = "sandbox.internal"
ADMIN_USER = "dr_admin"
APP_USER = "app"
REPLICATION_USER = "replicator"
DB_NAME = "app"


def database_names(n: int) -> list[str]:
    return ["payments" if i == 0 else f"payments-{i}" for i in range(n)]


def fqdn(database: str) -> str:
    return f"{database}.db.{ZONE}"


def slot_name(standby_region: str) -> str:
    return "standby_" + standby_region.replace("-", "_")


@dataclass
class DatabaseState:
    name: str
    port: int
    """The server's port, the same on both regions' addresses."""
    link_port: int
    """The link's port, the same on both addresses; at region R it leads to the other region's server."""


@dataclass
class State:
    dir: str
    instance: str
    """Random id of this `up`; long-running helpers exit when the state file no longer carries it."""
    addresses: dict[str, str]
    databases: list[DatabaseState]
    dns_port: int
    moto_port: int
    replication: str
    dns_ttl: int
    link_latency_ms: int
    server_user: str
    socket_root: str
    pg_bin: str
    rto_seconds: int
    rpo_seconds: int
    created: float
    kind: str = KIND
    version: int = STATE_VERSION
    extra: dict = field(default_factory=dict)

    def database(self, name: str) -> DatabaseState:
        for db in self.databases:
            if db.name == name:
                return db
        raise SandboxError(f"no database {name!r} in this sandbox; it has {', '.join(d.name for d in self.databases)}")

    def other(self, region: str) -> str:
        check_region(region)
        return WEST if region == EAST else EAST

    def region_of(self, address: str) -> str | None:
        for region, addr in self.addresses.items():
            if addr == address:
                return region
        return None


def check_region(region: str) -> str:
    if region not in REGIONS:
        raise SandboxError(f"no region {region!r} in the sandbox; use {' or '.join(REGIONS)}")
    return region


class Layout:
    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    state_file = property(lambda self: self.root / "state.json")
    outputs_file = property(lambda self: self.root / "outputs.json")
    secrets_dir = property(lambda self: self.root / "secrets")
    pgpass = property(lambda self: self.root / "secrets" / "pgpass")
    run_dir = property(lambda self: self.root / "run")
    logs_dir = property(lambda self: self.root / "logs")
    dns_dir = property(lambda self: self.root / "dns")
    records_file = property(lambda self: self.root / "dns" / "records.json")
    link_file = property(lambda self: self.root / "link.json")
    pg_dir = property(lambda self: self.root / "pg")

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def node_dir(self, database: str, region: str) -> Path:
        return self.pg_dir / database / region

    def data_dir(self, database: str, region: str) -> Path:
        return self.node_dir(database, region) / "data"

    def archive_dir(self, database: str, region: str) -> Path:
        return self.node_dir(database, region) / "archive"

    def fence_marker(self, database: str, region: str) -> Path:
        return self.node_dir(database, region) / "FENCED"

    def socket_root_default(self) -> Path:
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/tmp") / f"regionpair-sandbox-{digest}"

    @staticmethod
    def socket_dir(state: State, region: str) -> Path:
        return Path(state.socket_root) / region

    @staticmethod
    def link_socket(state: State) -> Path:
        return Path(state.socket_root) / "link.sock"

    # ---- state ----------------------------------------------------------------------------

    def read_state(self) -> State:
        try:
            raw = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            raise SandboxError(f"{self.root} is not a sandbox (no state.json); start one with "
                               f"`python -m sandbox up --dir {self.root}`") from None
        except json.JSONDecodeError as exc:
            raise SandboxError(f"{self.state_file} is corrupt ({exc.msg}); run "
                               f"`python -m sandbox down --dir {self.root}` and start again") from None
        if raw.get("kind") != KIND or raw.get("version") != STATE_VERSION:
            raise SandboxError(f"{self.state_file} is not a version-{STATE_VERSION} sandbox state file")
        raw["databases"] = [DatabaseState(**d) for d in raw["databases"]]
        return State(**raw)

    def write_state(self, state: State) -> None:
        write_json_atomic(self.state_file, asdict(state))


def write_json_atomic(path: Path, data: object, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a temporary name of its own per writer: concurrent writers (parallel runbook steps) must not
    # rename each other's half-written file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.chmod(mode)
    tmp.replace(path)


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock across processes and threads, for read-modify-write of a state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_json(path: Path) -> dict | None:
    """A JSON document written with ``write_json_atomic``, or None when it is missing or torn."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def still_ours(layout: Layout, instance: str) -> bool:
    """The state file still belongs to the `up` that started the caller (a worker exits otherwise)."""
    return (read_json(layout.state_file) or {}).get("instance") == instance
