"""The sandbox against real servers: roles, replication, DNS, every fault, fencing, promotion,
rebuild, the workload's log, and that `up`/`down` start and stop exactly what they should."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from contract import outputs
from sandbox import control, proc as _proc
from sandbox.errors import SandboxError
from sandbox.host import port_free
from sandbox.layout import DNS_ADDRESS, Layout
from sandbox.postgres import find_pg_bin
from sandbox.probes import dns_query
from sandbox.workload import run_workload
from tests.helpers.sandbox import app_write, has_row, wait_for

EAST, WEST = "local-east", "local-west"
REPO = Path(__file__).resolve().parents[2]


def _dns(sb, name):
    return dns_query(sb.state, name)


def _listening(address: str, port: int) -> bool:
    return not port_free(address, port)


def _acks_from(log: Path, region: str) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines()
               if line.endswith("}") and (e := json.loads(line)).get("ok") and e.get("system") == "postgres"
               and e["region"] == region)


def _all_ports(sb) -> list[tuple[str, int]]:
    st = sb.state
    ports = [(DNS_ADDRESS, st.dns_port)]
    for addr in st.addresses.values():
        ports.append((addr, st.moto_port))
        for db in st.databases:
            ports += [(addr, db.port), (addr, db.link_port)]
    return ports


# ---------------------------------------------------------------------------------------------
# Read-only, on one shared sandbox
# ---------------------------------------------------------------------------------------------


def test_outputs_file_is_the_contract(shared):
    doc = outputs.load_file(shared.dir / "outputs.json").require_pair()
    assert doc.target == "sandbox" and doc.stack == "sandbox" and doc.sandbox_dir == str(shared.dir)
    assert doc.primary.name == EAST and doc.secondary.name == WEST
    assert doc.primary.dns.failover == "PRIMARY" and doc.secondary.dns.failover == "SECONDARY"
    east, west = doc.regions[EAST].databases["payments"], doc.regions[WEST].databases["payments"]
    assert (east.role, west.role) == ("primary", "replica")
    assert east.port == west.port and east.endpoint == doc.regions[EAST].dns.address != west.endpoint
    assert doc.dns.records == {"payments": "payments.db.sandbox.internal"}
    assert doc.dns.strategy == "record-upsert" and doc.dns.resolver == f"{DNS_ADDRESS}:{shared.state.dns_port}"
    assert doc.objectives.rto_seconds == 30 and doc.objectives.rpo_seconds == 5
    secret = Path(east.secret_arn)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().split(":")[-1].strip()
    assert password and password not in (shared.dir / "outputs.json").read_text()


def test_each_region_has_a_cluster_whose_copies_send_applications_to_the_primary(shared):
    from contract import active_endpoints as endpoints
    doc = outputs.load_file(shared.dir / "outputs.json")
    for region in (EAST, WEST):
        k = doc.regions[region].kubernetes
        assert (k.context, k.namespaces, k.configmap) == (f"sandbox-{region}", ("payments", "checkout"),
                                                         endpoints.CONFIGMAP_NAME)
        held = shared.configmaps(region)
        assert sorted(held) == ["checkout", "payments"]
        for ns in held:
            copy = held[ns][endpoints.CONFIGMAP_NAME]
            assert copy["labels"][endpoints.CONTRACT_LABEL] == endpoints.CONTRACT_LABEL_VALUE
            # as Pulumi writes them: the DR cluster's applications also use the primary until a failover
            assert copy["data"] == endpoints.initial_data(doc.primary)
            assert copy["data"]["DB_PAYMENTS_HOST"] == shared.state.addresses[EAST]
        assert (shared.dir / "k8s" / f"{region}.json").stat().st_mode & 0o777 == 0o644
        # a Deployment per namespace reads the copy through envFrom; the outputs list them for restart
        assert k.restart_deployments == {"payments": ("payments-api",), "checkout": ("checkout-web",)}
        running = shared.deployments(region)
        for ns, names in k.restart_deployments.items():
            for name in names:
                template = running[ns][name]["spec"]["template"]
                assert template["spec"]["containers"][0]["envFrom"] == [
                    {"configMapRef": {"name": endpoints.CONFIGMAP_NAME}}]
                assert template["metadata"]["annotations"] == {}  # never restarted yet


def test_roles_are_asked_from_the_servers(shared):
    st = shared.status()
    assert st[EAST]["database"]["role"] == "primary" and st[WEST]["database"]["role"] == "replica"
    with psycopg.connect(shared.dsn(WEST), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery(), current_setting('cluster_name')").fetchone() == (True, WEST)
    assert st[EAST]["database"]["replication"]["standbys"][WEST]["state"] == "streaming"


def test_a_row_written_on_the_primary_appears_on_the_standby(shared):
    assert app_write(shared, EAST, "replication-check") == EAST
    wait_for(lambda: has_row(shared, WEST, "replication-check"), 5, "row on the standby")


def test_the_standby_refuses_writes(shared):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        app_write(shared, WEST, "must-fail")


def test_dns_answers_the_primary_with_the_configured_ttl(shared):
    address, ttl = _dns(shared, "payments.db.sandbox.internal")
    assert address == shared.state.addresses[EAST]
    assert ttl == shared.outputs.dns.ttl_seconds == 1
    with pytest.raises(LookupError):
        _dns(shared, "nothing.db.sandbox.internal")


def test_s3_answers_on_each_regions_address_with_a_versioned_bucket(shared):
    for region in (EAST, WEST):
        storage = shared.outputs.regions[region].storage
        assert storage.endpoint_url.startswith(f"http://{shared.state.addresses[region]}:")
        with urllib.request.urlopen(f"{storage.endpoint_url}/{storage.data_bucket}?versioning", timeout=5) as r:
            assert b"Enabled" in r.read()


def test_status_json_from_the_cli(shared):
    proc = subprocess.run([sys.executable, "-m", "sandbox", "status", "--dir", str(shared.dir), "--output", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    for region, role in ((EAST, "primary"), (WEST, "replica")):
        assert st[region]["database"]["role"] == role
        assert st[region]["database"]["dsn"].startswith(f"host={shared.state.addresses[region]} ")
        assert st[region]["dns"]["server"] == f"{DNS_ADDRESS}:{shared.state.dns_port}"
        assert st[region]["dns"]["names"] == {"payments.db.sandbox.internal": shared.state.addresses[EAST]}
        assert st[region]["cluster"] == {"state": "up", "context": f"sandbox-{region}",
                                         "active_region": {"payments": EAST, "checkout": EAST}}
    # the DSN works with psql and the sandbox's own password file
    psql = Path(shared.state.pg_bin) / "psql"
    out = subprocess.run([str(psql), st[EAST]["database"]["dsn"], "-Atc", "SELECT current_setting('cluster_name')"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == EAST, out.stderr


def test_up_on_a_directory_already_up_is_refused(shared):
    with pytest.raises(SandboxError, match="already up.*sandbox down --dir"):
        control.up(shared.dir)
    assert shared.status()[EAST]["database"]["state"] == "running"


def test_a_taken_port_is_a_clear_error(shared, base_dir):
    target = base_dir / "taken-port"
    port = shared.state.databases[0].port
    with pytest.raises(SandboxError, match=f"port {port} is taken on 127.0.1.1.*--port"):
        control.up(target, port=port)
    assert not any(_proc.is_alive(r.pid) for r in _proc.all_pids(Layout(target).run_dir))


def test_a_dir_the_server_user_cannot_reach_is_a_clear_error(base_dir):
    if os.geteuid() != 0:
        pytest.skip("only root drops to the server user")
    closed = base_dir / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(SandboxError, match=f"cannot enter {closed}.*chmod o\\+x"):
        control.up(closed / "sb")


# ---------------------------------------------------------------------------------------------
# The link: a sandbox of its own, restored after each test
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linked(base_dir):
    sb = control.up(base_dir / "linked")
    yield sb
    control.down(sb.dir)


def test_two_sandboxes_run_side_by_side(shared, linked):
    assert {p for _, p in _all_ports(shared)}.isdisjoint({p for _, p in _all_ports(linked)})
    app_write(linked, EAST, "only-in-linked")
    assert not has_row(shared, EAST, "only-in-linked") and has_row(linked, EAST, "only-in-linked")


def _replication_delay(sb, row_id: str) -> float:
    t0 = time.monotonic()
    app_write(sb, EAST, row_id)
    wait_for(lambda: has_row(sb, WEST, row_id), 10, f"{row_id} on the standby", interval_s=0.005)
    return time.monotonic() - t0


def test_slow_link_adds_latency_to_replication(linked):
    base = min(_replication_delay(linked, f"fast-{i}") for i in range(3))
    assert linked.slow_link(150) == "link latency now 150 ms one-way"
    try:
        slow = min(_replication_delay(linked, f"slow-{i}") for i in range(3))
    finally:
        linked.slow_link(0)
    assert slow >= 0.150 > base, (base, slow)


def test_partition_stops_replication_and_heal_resumes_it(linked):
    linked.partition()
    try:
        assert linked.link()["state"] == "partitioned"
        assert app_write(linked, EAST, "during-partition") == EAST  # the primary still takes writes (async)
        time.sleep(1.0)
        assert not has_row(linked, WEST, "during-partition")
    finally:
        linked.heal()
    assert linked.link()["state"] == "up"
    wait_for(lambda: has_row(linked, WEST, "during-partition"), 10, "row on the standby after heal")


def test_live_fence_refuses_the_app_and_unfence_restores_it(linked):
    app = psycopg.connect(linked.dsn(EAST, admin=False), autocommit=True)
    try:
        sentence = linked.fence(EAST)
        assert "live" in sentence and linked.is_fenced(EAST, "payments")
        with pytest.raises(psycopg.OperationalError):  # the open session was terminated
            app.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES ('x', now(), 'x')")
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
            app_write(linked, EAST, "fenced-write")
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
            psycopg.connect(linked.dsn(EAST, admin=True)).close()
        with psycopg.connect(linked.dsn(EAST, local=True), autocommit=True) as conn:  # runbooks still see it
            assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert linked.status()[EAST]["database"]["state"] == "fenced"
    finally:
        app.close()
        linked.unfence(EAST)
    assert not linked.is_fenced(EAST, "payments")
    assert app_write(linked, EAST, "after-unfence") == EAST


# ---------------------------------------------------------------------------------------------
# Destructive: a sandbox each
# ---------------------------------------------------------------------------------------------


def test_failover_cycle_kill_fence_promote_cutover_rebuild(fresh):
    """The path a failover runbook takes, with the workload running and its log checked."""
    log = fresh.dir / "workload.jsonl"
    stop = threading.Event()
    result: dict = {}
    # the workload runs until the test has seen what it needs, not for a fixed time: on a slow
    # machine a kill-fence-promote-cutover can take longer than any fixed run would leave
    worker = threading.Thread(target=lambda: result.update(
        run_workload(fresh.dir, seconds=120.0, rate=100, log_path=log, stop_event=stop, clients=4)))
    worker.start()
    wait_for(lambda: _acks_from(log, EAST) >= 20, 30, "acknowledged writes on the primary")

    # kill-primary: the whole tree goes, the address stops answering
    assert "killed postgres-payments-local-east" in fresh.kill_database(EAST)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(fresh.dsn(EAST), connect_timeout=2).close()
    assert fresh.status()[EAST]["database"]["state"] == "stopped"

    # fence while down; promote; cut DNS over
    assert "next start" in fresh.fence(EAST)
    assert fresh.promote(WEST).startswith("promoted payments in local-west")
    assert fresh.status()[WEST]["database"]["role"] == "primary"
    fresh.set_record("payments", WEST)
    assert fresh.record("payments") == WEST
    assert _dns(fresh, "payments.db.sandbox.internal")[0] == fresh.state.addresses[WEST]
    wait_for(lambda: _acks_from(log, WEST) >= 20, 30, "acknowledged writes on the new primary")
    stop.set()
    worker.join(20)
    assert not worker.is_alive()

    # the old primary restarts fenced: it takes no write from the app, before or after start
    fresh.start_database(EAST)
    assert fresh.status()[EAST]["database"]["role"] == "primary"  # split brain, but fenced
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
        app_write(fresh, EAST, "to-the-fenced-old-primary")

    # rebuild it as a standby of the new primary: replication now flows west → east
    sentence = fresh.rebuild_as_replica(EAST, WEST)
    assert "streaming standby of local-west" in sentence
    assert fresh.status()[EAST]["database"]["role"] == "replica"
    assert app_write(fresh, WEST, "flows-west-to-east") == WEST
    wait_for(lambda: has_row(fresh, EAST, "flows-west-to-east"), 10, "row on the rebuilt standby")

    # the workload logged every ack; each ack from the new primary is there
    events = [json.loads(line) for line in log.read_text().splitlines()]
    acked = [e for e in events if e["ok"]]
    assert result["acked"] == len(acked) and result["errors"] == len(events) - len(acked)
    assert {e["region"] for e in acked} == {EAST, WEST}
    assert any(not e["ok"] for e in events)
    west_ids = [e["id"] for e in acked if e["region"] == WEST]
    with psycopg.connect(fresh.dsn(WEST), autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM drill_writes WHERE id = ANY(%s)", (west_ids,)).fetchone()[0]
    assert found == len(west_ids)


def test_kill_region_then_down_leaves_no_process_and_no_port(fresh):
    pids = {r.component: r.pid for r in _proc.all_pids(fresh.layout.run_dir)}
    ports = _all_ports(fresh)
    backends = _proc.descendants(pids["postgres-payments-local-east"])
    assert backends, "a running postmaster has children"

    sentence = fresh.kill_region(EAST)
    assert "postgres-payments-local-east" in sentence and "moto-local-east" in sentence
    for pid in [pids["postgres-payments-local-east"], pids["moto-local-east"], *backends]:
        assert not _proc.is_alive(pid)
    st = fresh.status()
    assert st[EAST]["database"]["state"] == "stopped" and st[EAST]["s3"]["state"] == "stopped"
    assert not _listening(fresh.state.addresses[EAST], fresh.state.moto_port)
    assert st[WEST]["s3"]["state"] == "running" and st[WEST]["database"]["role"] == "replica"

    first = control.down(fresh.dir)
    assert any("postgres-payments-local-west" in line for line in first)
    all_pids = set(pids.values()) | backends
    wait_for(lambda: not any(_proc.is_alive(p) for p in all_pids), 5, "every process gone")
    assert [p for p in ports if _listening(*p)] == []
    assert control.down(fresh.dir) == ["nothing was running"]
    with pytest.raises(SandboxError, match="is down"):
        control.Sandbox.open(fresh.dir)


def test_a_failing_up_stops_what_it_started_and_names_the_component(base_dir, tmp_path_factory):
    # a PostgreSQL whose server binary fails: everything else is real and started before it
    fake_bin = base_dir / "broken-pg-bin"
    fake_bin.mkdir()
    real = find_pg_bin()
    for tool in real.iterdir():
        (fake_bin / tool.name).symlink_to(tool)
    (fake_bin / "postgres").unlink()
    (fake_bin / "postgres").write_text("#!/bin/sh\necho 'broken server binary' >&2\nexit 3\n")
    (fake_bin / "postgres").chmod(0o755)
    target = base_dir / "failing-up"
    with pytest.raises(SandboxError) as err:
        control.up(target, pg_bin=fake_bin)
    message = str(err.value)
    assert "postgres-payments-local-east" in message and "broken server binary" in message
    assert str(target / "logs" / "postgres-payments-local-east.log") in message
    assert "everything it started is stopped" in message
    assert list((target / "run").glob("*.pid")) == []
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(target) not in out


def test_sync_pairs_promote_without_hanging_and_resync_after_rebuild(base_dir):
    """Two databases in synchronous mode: the standby is sync; after kill-primary and promotion
    the new primary commits (it was not cloned with synchronous_standby_names); once the old
    primary is rebuilt behind it, the new primary is synchronous again."""
    sb = control.up(base_dir / "sync-two", replication="sync", databases=2)
    try:
        assert set(sb.outputs.dns.records) == {"payments", "payments-1"}
        st = sb.status()
        assert set(st[EAST]["databases"]) == {"payments", "payments-1"}
        for name in sb.databases:
            assert st[EAST]["databases"][name]["replication"]["standbys"][WEST]["sync_state"] == "sync"
            assert app_write(sb, EAST, f"sync-{name}", name) == EAST
            # acknowledged = flushed on the standby (synchronous_commit = on); replaying it, and so
            # seeing the row there, follows (only remote_apply waits for that: PostgreSQL's
            # "synchronous_commit"). Read at once, the row was missing in a 22-minute loaded run.
            wait_for(lambda: has_row(sb, WEST, f"sync-{name}", name), 5.0, f"the sync row of {name} on the standby")

        assert sb.kill_database(EAST).count("killed") == 2
        sb.fence(EAST)
        sb.promote(WEST)
        for name in sb.databases:
            with psycopg.connect(sb.dsn(WEST, name, admin=False), autocommit=True,
                                 options="-c statement_timeout=5000") as conn:
                conn.execute("SET synchronous_commit = on")
                conn.execute("INSERT INTO drill_writes (id, client_ts, region) VALUES ('after-promote', now(), 'w')")
        sb.rebuild_as_replica(EAST, WEST)
        sb.unfence(EAST)
        for name in sb.databases:
            info = sb.node(WEST, name).replication_info()
            assert info["standbys"][EAST]["sync_state"] == "sync"
        assert "base backup of payments in local-west" in sb.base_backup(WEST, "payments")
        backups = list((sb.dir / "pg" / "payments" / WEST / "basebackups").glob("*/base.tar.gz"))
        # the one just taken, and EAST's, which `up` replicated into DR (as RDS backup replication does)
        assert len(backups) == 2
        assert sorted(str(m.get("copied_from")) for m in sb.backups.list("payments", WEST)) == ["None", EAST]
    finally:
        control.down(sb.dir)


def test_ctrl_c_during_up_stops_everything(base_dir):
    target = base_dir / "interrupted"
    # SIGINT's default disposition in the child, as in a terminal: a test run started in the
    # background of a non-interactive shell inherits SIGINT ignored, and `up` would never see it
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "up", "--dir", str(target)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    layout = Layout(target)
    wait_for(lambda: layout.run_dir.is_dir() and len(list(layout.run_dir.glob("*.pid"))) >= 4, 10,
             "up has started its helpers")
    started = [r.pid for r in _proc.all_pids(layout.run_dir)]
    proc.send_signal(signal.SIGINT)  # as Ctrl-C in a terminal
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert list(layout.run_dir.glob("*.pid")) == []
    wait_for(lambda: not any(_proc.is_alive(p) for p in started), 5, "every started process gone")
    # also what `up` was still starting when interrupted (by default all three systems: the Kafka
    # nodes its Kafka thread formats and spawns, MirrorMaker 2 under its supervisor)
    deadline = time.monotonic() + 5
    while _processes_of(target) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_of(target), "left running after Ctrl-C during up"


def _processes_of(directory: Path) -> list[str]:
    """Command lines of live processes that name ``directory`` (servers, helpers, JVMs)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmd and "pytest" not in cmd:
            found.append(cmd[:200])
    return found


def test_workload_cli_stops_on_sigint_even_when_started_with_sigint_ignored(shared, tmp_path):
    """The drill stops its workload with SIGINT; a drill run under nohup or in a CI step's background
    hands its children SIGINT ignored, and the workload must still stop, with its log complete."""
    log = tmp_path / "workload.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "workload", "--dir", str(shared.dir), "--seconds", "120",
                             "--rate", "50", "--log", str(log)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_for(lambda: log.exists() and '"ok":true' in log.read_text(), 30,
                 "the workload logged an acknowledged write")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err


def test_cli_kill_replica_then_restart_database_catches_up(fresh):
    def cli(*argv):
        proc = subprocess.run([sys.executable, "-m", "sandbox", *argv, "--dir", str(fresh.dir)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "killed postgres-payments-local-west" in cli("fault", "kill-replica")
    assert fresh.status()[WEST]["database"]["state"] == "stopped"
    app_write(fresh, EAST, "while-replica-down")
    assert "started" in cli("fault", "restart-database", WEST)
    wait_for(lambda: has_row(fresh, WEST, "while-replica-down"), 10, "the restarted replica caught up")
    assert "150 ms" in cli("fault", "slow-link", "150")
    assert fresh.link()["latency_ms"] == 150
    proc = subprocess.run([sys.executable, "-m", "sandbox", "fault", "kill-region", "--dir", str(fresh.dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "needs a REGION" in proc.stderr
    # every fault, also the refused one, is audited in the sandbox's durable sink (issue 12)
    from runbooks.core.audit import read_sink, verify_chain
    sink = fresh.dir / "audit-sink.jsonl"
    assert verify_chain(sink) is None
    faults = [(e["target"], e["result"]) for e in read_sink(sink) if e["runbook"] == "sandbox"]
    assert faults == [("kill-replica", "injected"), (f"restart-database {WEST}", "injected"),
                      ("slow-link 150", "injected"), ("kill-region", "failed")]
