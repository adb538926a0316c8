"""Who runs the sandbox's servers and where they listen: the unprivileged server user (PostgreSQL
refuses root), the check that it can reach DIR, and free ports on the regions' addresses."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from sandbox import proc
from sandbox.errors import SandboxError

SERVER_USER = "regionpair-sandbox"
PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, so client sockets never take them


# ---------------------------------------------------------------------------------------------
# Who runs the servers
# ---------------------------------------------------------------------------------------------


def server_identity(create: bool = True, name: str = SERVER_USER) -> proc.Identity:
    """As root: the dedicated system user (created once with useradd). Otherwise: ourselves."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return proc.Identity(pw.pw_name, pw.pw_uid, pw.pw_gid, switch=False)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        if not create:
            raise SandboxError(f"the sandbox's server user {name!r} does not exist; `up` creates it") from None
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        made = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                               "--user-group", name], capture_output=True, text=True, timeout=30)
        if made.returncode not in (0, 9):  # 9: created meanwhile by a parallel `up`
            raise SandboxError(f"cannot create the system user {name!r} that runs PostgreSQL (which refuses "
                               f"root): useradd said {made.stderr.strip()!r}") from None
        pw = pwd.getpwnam(name)
    return proc.Identity(name, pw.pw_uid, pw.pw_gid, switch=True)


def check_traversable(path: Path, identity: proc.Identity) -> None:
    """The server user must reach DIR; name the first directory on the way that stops it."""
    if not identity.switch:
        return
    groups = {identity.gid} | {g.gr_gid for g in __import__("grp").getgrall() if identity.name in g.gr_mem}
    for p in [*reversed(path.parents), path]:
        st = p.stat()
        if st.st_uid == identity.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise SandboxError(
                f"the PostgreSQL server runs as {identity.name!r} (it refuses root) and cannot enter {p} "
                f"(mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}); use a DIR whose parents are all "
                f"traversable (e.g. under /var/tmp), or `chmod o+x {p}`", component="sandbox")


# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------


def port_free(address: str, port: int, udp: bool = False) -> bool:
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def pick_port(addresses: list[str], taken: set[int], udp: bool = False, rng: random.Random | None = None) -> int:
    rng = rng or random.Random()
    for _ in range(500):
        port = rng.randrange(*PORT_RANGE)
        if port in taken:
            continue
        if all(port_free(a, port) and (not udp or port_free(a, port, udp=True)) for a in addresses):
            taken.add(port)
            return port
    raise SandboxError(f"no free port found in {PORT_RANGE[0]}-{PORT_RANGE[1]} on {', '.join(addresses)}")
