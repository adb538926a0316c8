"""Real Apache Kafka (KRaft) and MirrorMaker 2 for the sandbox's regions.

The jars come from Maven Central by the pinned coordinates in ``sandbox/kafka/pom.xml``;
``scripts/setup.sh`` copies them into ``.cache/kafka-jars/`` (``REGIONPAIR_KAFKA_JARS`` overrides)
and records the pom's hash there, so a changed pin is noticed here and not run stale.

Per region, ``brokers`` combined broker+controller nodes (1 by default; 3 runs the stacks'
settings: RF 3, ``min.insync.replicas`` 2, unclean leader election off), each a JVM of its own
(component ``kafka-<region>`` for node 1, ``kafka-<region>-<n>`` for the others), with three
listeners on the region's address:

- ``CLIENT`` (port ``client``): applications in the region, and the brokers among themselves;
- ``CONTROLLER`` (port ``controller``): KRaft;
- ``REPLICATION`` (port ``replication``): advertised as the *other* region's end of the link
  (``other address : link``), so a MirrorMaker 2 running in the other region reaches this
  cluster only through the link, whose latency and partition faults then hit its traffic.

Each node's ports are the same on both regions' addresses (as a database pair's are), recorded
in the state (``extra.kafka``). A region's cluster starts **empty** every time (its data is
wiped and formatted with a new cluster id, which is the cluster's incarnation): a region that
comes back after an outage has a new cluster, as the failback expects.

MirrorMaker 2 runs in dedicated mode (``org.apache.kafka.connect.mirror.MirrorMaker``), one
process per flow, in the flow's target region (component ``mirrormaker2``, started and stopped by
its supervisor in ``sandbox/workers/replicator.py``), with this module's ``mm2_properties``: the connector
settings of ``contract.mirrormaker2`` plus the dedicated-mode framing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contract import mirrormaker2
from sandbox import proc
from sandbox.errors import SandboxError
from sandbox.layout import REGIONS, Layout, State, write_json_atomic

REPO = Path(__file__).resolve().parent.parent
POM = REPO / "sandbox" / "kafka" / "pom.xml"
STAMP = ".pom.sha256"
TOPIC_PARTITIONS = 4
HEAP = "-Xmx320m"
JVM_FLAGS = ("-Xms32m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k",
             "-Djava.awt.headless=true")
"""Small heap, C1 only and the serial collector: start-up time and memory matter more here than
throughput (2 shared cores, several JVMs per sandbox)."""
MM2_COMPONENT = "mirrormaker2"
SETUP_HINT = "run scripts/setup.sh"


# ---------------------------------------------------------------------------------------------
# The jars and Java
# ---------------------------------------------------------------------------------------------


def pom_hash(pom: Path = POM) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def kafka_version(pom: Path = POM) -> str:
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not m:
        raise SandboxError(f"{pom} names no <kafka.version>; restore it from git", component="kafka")
    return m.group(1).strip()


def jars_dir() -> Path:
    return Path(os.environ.get("REGIONPAIR_KAFKA_JARS") or REPO / ".cache" / "kafka-jars")


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if not java:
        raise SandboxError("Java is missing (no `java` on PATH and no JAVA_HOME/bin/java): Kafka and MirrorMaker 2 "
                           "need Java 17; install it (`apt-get install openjdk-17-jre-headless`), then rerun",
                           component="kafka")
    return java


def classpath(jars: Path | None = None, pom: Path = POM) -> str:
    """The JVMs' class path, after checking the cache holds the pinned version's jars."""
    jars = jars or jars_dir()
    version = kafka_version(pom)
    need = [f"kafka_2.13-{version}.jar", f"connect-mirror-{version}.jar", f"connect-runtime-{version}.jar"]
    missing = [n for n in need if not (jars / n).exists()]
    if missing:
        raise SandboxError(f"the Kafka {version} jars are not in {jars} (missing {', '.join(missing)}); "
                           f"{SETUP_HINT} to fetch them from Maven Central", component="kafka")
    stamp = (jars / STAMP).read_text().strip() if (jars / STAMP).exists() else None
    if stamp != pom_hash(pom):
        raise SandboxError(f"{jars} was filled from another version of {pom.name} than the one in "
                           f"{pom.parent}; {SETUP_HINT} to fetch what it pins now", component="kafka")
    return str(jars / "*")


# ---------------------------------------------------------------------------------------------
# Ports and files
# ---------------------------------------------------------------------------------------------


def settings(state: State) -> dict:
    """``{"brokers": n, "nodes": [{"client", "controller", "replication", "link"}, ...]}``."""
    kafka = state.extra.get("kafka")
    if not kafka:
        raise SandboxError("this sandbox runs no Kafka; start one with `--systems postgres,kafka`", component="kafka")
    return kafka


def pick_ports(brokers: int, pick) -> dict:
    """The ports of ``brokers`` nodes, each free on both regions' addresses (``pick()`` gives one)."""
    if brokers not in (1, 3):
        raise SandboxError(f"--kafka-brokers {brokers}: use 1 (fast) or 3 (the stacks' RF 3, "
                           "min.insync.replicas 2)", component="kafka")
    return {"brokers": brokers, "nodes": [{k: pick() for k in ("client", "controller", "replication", "link")}
                                          for _ in range(brokers)]}


def component(region: str, node: int) -> str:
    return f"kafka-{region}" if node == 0 else f"kafka-{region}-{node + 1}"


def components(state: State, region: str) -> list[str]:
    return [component(region, i) for i in range(settings(state)["brokers"])]


def region_dir(layout: Layout, region: str) -> Path:
    return layout.root / "kafka" / region


def info_path(layout: Layout, region: str) -> Path:
    return layout.root / "kafka" / f"{region}.json"


def bootstrap(state: State, region: str) -> str:
    """The region's own clients' bootstrap servers (the CLIENT listener)."""
    return ",".join(f"{state.addresses[region]}:{n['client']}" for n in settings(state)["nodes"])


def bootstrap_via_link(state: State, region: str) -> str:
    """``region``'s cluster as the other region reaches it: the other region's ends of the link."""
    other = state.other(region)
    return ",".join(f"{state.addresses[other]}:{n['link']}" for n in settings(state)["nodes"])


def link_routes(state: State) -> list[tuple[str, int, str, int, str]]:
    """What the link relays for Kafka: (listen address, port, target address, port, name)."""
    kafka = state.extra.get("kafka")
    if not kafka:
        return []
    out = []
    for i, n in enumerate(kafka["nodes"]):
        for region in REGIONS:
            other = state.other(region)
            out.append((state.addresses[region], n["link"], state.addresses[other], n["replication"],
                        f"kafka-{i + 1}:{region}->{other}"))
    return out


def _log4j(path: Path) -> Path:
    """Log4j 2 configuration: everything to stdout (the component's log file), Kafka at INFO, the
    chattiest classes at WARN, MirrorMaker 2's offset translation at DEBUG."""
    text = "\n".join([
        "status = warn",
        "appender.out.type = Console", "appender.out.name = OUT", "appender.out.target = SYSTEM_OUT",
        "appender.out.layout.type = PatternLayout", "appender.out.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO", "rootLogger.appenderRef.out.ref = OUT",
        *(f"logger.q{i}.name = {name}\nlogger.q{i}.level = WARN" for i, name in enumerate([
            "org.apache.kafka.clients", "org.apache.kafka.common.utils.AppInfoParser", "kafka.log",
            "org.apache.kafka.storage", "org.apache.kafka.connect.runtime.WorkerConfig",
            "org.apache.kafka.common.config.AbstractConfig", "org.reflections", "org.eclipse.jetty"])),
        # MirrorMaker 2's offset translation, one line per group and partition at each checkpoint
        # round ("Translated …", or "Skipped (…)" with why): what explains a missing checkpoint
        "logger.mm2t.name = org.apache.kafka.connect.mirror.OffsetSyncStore", "logger.mm2t.level = DEBUG",
        "logger.mm2c.name = org.apache.kafka.connect.mirror.CheckpointStore", "logger.mm2c.level = DEBUG",
        ""])
    path.write_text(text)
    return path


def broker_properties(layout: Layout, state: State, region: str, node: int) -> str:
    kafka = settings(state)
    n, nodes = kafka["brokers"], kafka["nodes"]
    me = nodes[node]
    addr, other = state.addresses[region], state.addresses[state.other(region)]
    voters = ",".join(f"{i + 1}@{addr}:{x['controller']}" for i, x in enumerate(nodes))
    props = {
        "process.roles": "broker,controller",
        "node.id": node + 1,
        "controller.quorum.voters": voters,
        "listeners": f"CLIENT://{addr}:{me['client']},REPLICATION://{addr}:{me['replication']},"
                     f"CONTROLLER://{addr}:{me['controller']}",
        "advertised.listeners": f"CLIENT://{addr}:{me['client']},REPLICATION://{other}:{me['link']}",
        "listener.security.protocol.map": "CLIENT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "CLIENT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(region_dir(layout, region) / f"node-{node + 1}"),
        "num.partitions": TOPIC_PARTITIONS,
        # the stacks' settings (components/streaming.py): no auto-created topics, no unclean
        # elections, and with three brokers RF 3 with two in sync for an acks=all write
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        "default.replication.factor": n,
        "min.insync.replicas": 2 if n == 3 else 1,
        "offsets.topic.replication.factor": n,
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.replication.factor": n,
        "transaction.state.log.min.isr": 2 if n == 3 else 1,
        "share.coordinator.state.topic.replication.factor": n,
        "share.coordinator.state.topic.min.isr": 2 if n == 3 else 1,
        "group.initial.rebalance.delay.ms": 0,
        "log.flush.interval.messages": 9223372036854775807,
        "num.network.threads": 2, "num.io.threads": 2, "background.threads": 2,
        "log.cleaner.threads": 1, "num.recovery.threads.per.data.dir": 1,
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


# ---------------------------------------------------------------------------------------------
# A region's cluster
# ---------------------------------------------------------------------------------------------


def jvm_argv(java: str, cp: str, log4j: Path, *argv: str) -> list[str]:
    """A JVM's command line: small heap, fast start, log4j 2 configured to write to stdout."""
    return [java, HEAP, *JVM_FLAGS, f"-Dlog4j2.configurationFile={log4j}", "-cp", cp, *argv]


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never starting with
    '-' (the storage tool would take it for an option, as Kafka's own Uuid.randomUuid avoids)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _port_owner_hint(address: str, port: int) -> str:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return (f"port {port} on {address} is taken by another process; stop it (`ss -ltnp "
                    f"'sport = :{port}'` names it), or bring this sandbox down and up again to pick free ports")
    return ""


def start_cluster(layout: Layout, state: State, region: str, env: dict, cancelled=lambda: False) -> str:
    """Format every node of ``region``'s cluster afresh (a new cluster id) and start them; returns
    the cluster id. The caller waits with ``wait_cluster``. ``cancelled()`` true once formatted (an
    `up` interrupted meanwhile): no node is started, and SandboxError says so."""
    java, cp = java_bin(), classpath()
    kafka = settings(state)
    for i, n in enumerate(kafka["nodes"]):
        for port in (n["client"], n["controller"], n["replication"]):
            hint = _port_owner_hint(state.addresses[region], port)
            if hint:
                raise SandboxError(hint, component=component(region, i))
    rdir = region_dir(layout, region)
    shutil.rmtree(rdir, ignore_errors=True)
    rdir.mkdir(parents=True)
    info_path(layout, region).unlink(missing_ok=True)
    log4j = _log4j(rdir / "log4j2.properties")
    cid = _cluster_id()

    def fmt(i: int) -> Path:
        props = rdir / f"node-{i + 1}.properties"
        props.write_text(broker_properties(layout, state, region, i))
        proc.run(jvm_argv(java, cp, log4j, "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(props)),
                  f"formatting {component(region, i)}'s storage", layout.log(component(region, i)), env=env,
                  timeout_s=60)
        return props

    with ThreadPoolExecutor(kafka["brokers"]) as pool:
        props = list(pool.map(fmt, range(kafka["brokers"])))
    if cancelled():
        raise SandboxError("cancelled before its nodes were started", component=component(region, 0))
    for i, p in enumerate(props):
        comp = component(region, i)
        proc.spawn(layout.run_dir, comp, jvm_argv(java, cp, log4j, "kafka.Kafka", str(p)), layout.log(comp), env=env)
    write_json_atomic(rdir / "cluster.json", {"cluster_id": cid, "formatted_at": time.time()})
    return cid


def _admin(bootstrap_servers: str, timeout_s: float = 2.0):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0,
                        "socket.timeout.ms": int(timeout_s * 1000)})


def cluster_problem(state: State, region: str) -> str | None:
    """None when every node of the region's cluster is a broker in its metadata, else what is missing."""
    try:
        md = _admin(bootstrap(state, region)).list_topics(timeout=1.0)
    except Exception as exc:  # noqa: BLE001 - any client error means "not yet"
        return f"no metadata yet ({str(exc)[:80]})"
    want = settings(state)["brokers"]
    if len(md.brokers) < want:
        return f"{len(md.brokers)} of {want} brokers registered"
    return None


def create_topics(state: State, region: str, topics: list[str] | tuple[str, ...], timeout_s: float = 15.0) -> None:
    """The replicated topics, with the stacks' settings (auto-creation is off, as in MSK)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    n = settings(state)["brokers"]
    admin = _admin(bootstrap(state, region))
    new = [NewTopic(t, TOPIC_PARTITIONS, n, config={"min.insync.replicas": str(2 if n == 3 else 1),
                                                    "unclean.leader.election.enable": "false"}) for t in topics]
    for topic, fut in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            fut.result(timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise SandboxError(f"creating topic {topic}: {exc}", component=f"kafka-{region}") from None


def write_info(layout: Layout, state: State, region: str, topics: list[str] | tuple[str, ...]) -> dict:
    cid = (_read(region_dir(layout, region) / "cluster.json") or {}).get("cluster_id")
    doc = {"region": region, "bootstrap": bootstrap(state, region), "topics": list(topics), "incarnation": cid,
           "brokers": settings(state)["brokers"], "started_at": time.time(), "kafka_version": kafka_version()}
    write_json_atomic(info_path(layout, region), doc)
    return doc


def _read(path: Path) -> dict | None:
    import json
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def wait_cluster(layout: Layout, state: State, region: str, topics: list[str] | tuple[str, ...],
                 deadline_s: float = 60.0) -> dict:
    """Wait until the region's cluster has all its brokers, create the topics, record the cluster.
    A node that exits (or never registers) fails it, naming the node, its log and the cause."""
    deadline = time.monotonic() + deadline_s
    problem = "not checked"
    while time.monotonic() < deadline:
        for comp in components(state, region):
            if proc.running(layout.run_dir, comp) is None:
                log = layout.log(comp)
                raise SandboxError(f"the Kafka node exited while starting: {proc.tail(log, 4)}; "
                                   f"{_exit_hint(log)}", component=comp, log=log)
        problem = cluster_problem(state, region)
        if problem is None:
            create_topics(state, region, topics)
            return write_info(layout, state, region, topics)
        time.sleep(0.1)
    comp = component(region, 0)
    raise SandboxError(f"Kafka cluster not ready after {deadline_s:.0f} s ({problem}); read the log, and on a busy "
                       "machine bring it up again", component=comp, log=layout.log(comp))


def _exit_hint(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    if "Address already in use" in text:
        return "a port it needs is taken: stop what holds it, or bring the sandbox down and up again to pick free ports"
    if "UnsupportedClassVersionError" in text:
        return "this Java is too old for the pinned Kafka: install Java 17"
    if "ClassNotFoundException" in text or "NoClassDefFoundError" in text:
        return f"the jars are incomplete: {SETUP_HINT}"
    return "read its log"


# ---------------------------------------------------------------------------------------------
# MirrorMaker 2
# ---------------------------------------------------------------------------------------------


def mm2_properties(state: State, source: str, target: str, topics, groups) -> dict[str, str]:
    """Dedicated-mode configuration for the flow source → target, run in the target region: the
    source is reached through the link, the target on its own CLIENT listener."""
    n = settings(state)["brokers"]
    conn = mirrormaker2.connector_settings(topics, groups, replication_factor=n)
    props = {
        "clusters": f"{source}, {target}",
        f"{source}.bootstrap.servers": bootstrap_via_link(state, source),
        f"{target}.bootstrap.servers": bootstrap(state, target),
        f"{source}->{target}.enabled": "true",
        f"{target}->{source}.enabled": "false",
        # the Connect worker's own topics, on the target
        "config.storage.replication.factor": str(n),
        "offset.storage.replication.factor": str(n),
        "status.storage.replication.factor": str(n),
        "tasks.max": "1",
        # the Connect worker's own settings reach a dedicated-mode worker only prefixed with its
        # target cluster's alias. Every plugin on the class path has a ServiceLoader manifest: no
        # reflective scan of ~100 jars (7.5 s of CPU measured at each start without this)
        f"{target}.plugin.discovery": "service_load",
        "plugin.discovery": "service_load",  # and the MirrorMaker process's own plugin loader
        # how often the worker stores the source task's positions (Connect's default is 60 s): the
        # lag the supervisor reads, and where a restarted MirrorMaker 2 resumes (it copies again
        # what it had copied after the last store: duplicates, never a gap)
        f"{target}.offset.flush.interval.ms": "500",
        # how long Connect waits for its tasks to stop before going on without them (default 5 s).
        # A failover after a region loss stops MirrorMaker 2 while its tasks hang on the dead
        # source: with the default each took the whole 5 s and the failover's kafka-stop step
        # 8–11 s, most of the Kafka writers' RTO. What a task had not stored yet is copied again
        # by the next flow that resumes its positions (duplicates, never a gap)
        f"{target}.task.shutdown.graceful.timeout.ms": "1000",
        # a record is written when every in-sync replica has it (as the stacks' clients write)
        f"{target}.producer.acks": "all",
        f"{target}.producer.linger.ms": "5",
        f"{source}.consumer.fetch.max.wait.ms": "100",
        # a flow with no stored positions copies everything the source holds (a new or emptied
        # target), as MSK Replicator's starting position EARLIEST does
        f"{source}.consumer.auto.offset.reset": "earliest",
        # fail over to "the source is gone" quickly rather than retrying for minutes
        f"{source}.request.timeout.ms": "5000",
        f"{source}.default.api.timeout.ms": "10000",
    }
    props.update({f"{source}->{target}.{k}": v for k, v in conn.items()})
    return props


def write_mm2_config(layout: Layout, state: State, source: str, target: str, topics, groups) -> Path:
    d = layout.root / "kafka" / "mm2"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{source}-to-{target}.properties"
    path.write_text("".join(f"{k} = {v}\n" for k, v in mm2_properties(state, source, target, topics, groups).items()))
    _log4j(d / "log4j2.properties")
    return path


# ---------------------------------------------------------------------------------------------
# One broker lost and brought back (the drill's broker-loss scenario)
# ---------------------------------------------------------------------------------------------


def node_of(state: State, region: str, node_id: int) -> int:
    """The index of Kafka node ``node_id`` (1-based, as in ``node.id``) of the region's cluster."""
    n = settings(state)["brokers"]
    if not 1 <= node_id <= n:
        raise SandboxError(f"broker {node_id}: {region}'s cluster has brokers 1 to {n}", component=f"kafka-{region}")
    return node_id - 1


def kill_broker(layout: Layout, state: State, region: str, node_id: int) -> str:
    """Fault: SIGKILL one broker's JVM (no controlled shutdown: its partitions' leadership moves
    only when the controller quorum fences it). Its data stays on disk for ``restart_broker``."""
    comp = component(region, node_of(state, region, node_id))
    rec = proc.running(layout.run_dir, comp)
    if rec is None:
        raise SandboxError(f"broker {node_id} of {region} is not running, so it cannot be killed",
                           component=comp, log=layout.log(comp))
    proc.kill_tree(rec.pid, rec.start_time, comp)
    return f"killed {comp} (broker {node_id}, pid {rec.pid}) with SIGKILL"


def restart_broker(layout: Layout, state: State, region: str, node_id: int, env: dict) -> str:
    """Start a killed broker again on its own storage (same node id, same cluster): it recovers
    its log and catches up as a follower. The caller waits (``partitions``) for it to rejoin ISRs."""
    i = node_of(state, region, node_id)
    comp = component(region, i)
    if proc.running(layout.run_dir, comp) is not None:
        return f"{comp} is running"
    rdir = region_dir(layout, region)
    props = rdir / f"node-{i + 1}.properties"
    if not props.exists():
        raise SandboxError(f"{props} is missing: {region}'s cluster was never started here", component=comp)
    argv = jvm_argv(java_bin(), classpath(), rdir / "log4j2.properties", "kafka.Kafka", str(props))
    proc.spawn(layout.run_dir, comp, argv, layout.log(comp), env=env)
    return f"started {comp} (broker {node_id}) on its own storage"


def partitions(state: State, region: str, topics: list[str] | tuple[str, ...],
               timeout_s: float = 3.0) -> dict[str, dict]:
    """Per partition of ``topics``, as the region's cluster reports it now: ``{"t:p": {"leader":
    node id or -1, "replicas": [...], "isr": [...]}}``. Raises SandboxError if it does not answer."""
    try:
        md = _admin(bootstrap(state, region), timeout_s).list_topics(timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - the client raises several kinds; all mean "no answer"
        raise SandboxError(f"{region}'s Kafka cluster does not answer: {str(exc)[:160]}",
                           component=f"kafka-{region}") from None
    out = {}
    for t in topics:
        tm = md.topics.get(t)
        if tm is None or tm.error is not None:
            raise SandboxError(f"{region}'s Kafka cluster reports no topic {t} ({tm and tm.error})",
                               component=f"kafka-{region}")
        for p, pm in sorted(tm.partitions.items()):
            out[f"{t}:{p}"] = {"leader": pm.leader, "replicas": list(pm.replicas), "isr": list(pm.isrs)}
    return out
