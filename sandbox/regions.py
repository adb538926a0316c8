"""A whole region of the sandbox lost and back, run by the controller: ``kill_region`` (every
process of the region frozen, then killed, optionally with the link cut first) and
``start_region`` (an empty S3 and Kafka cluster, the databases as they were on disk)."""

from __future__ import annotations

from sandbox import clusters, kafka_cluster, kafka_replication, link, proc
from sandbox.buckets import bucket_name
from sandbox.flows import KAFKA_DEADLINE_S
from sandbox.layout import Layout, State, write_json_atomic
from sandbox.lifecycle import READY_DEADLINE_S, build_outputs, helper_argv
from sandbox.postgres import Node
from sandbox.probes import deadline_loop, s3_problem


def kafka_running(state: State, layout: Layout, region: str) -> bool:
    """Every node of the region's cluster runs (one lost node of three is not a lost region)."""
    return all(proc.running(layout.run_dir, c) is not None for c in kafka_cluster.components(state, region))


def kill_region(layout: Layout, state: State, identity: proc.Identity, region: str, cut_link: bool = False) -> str:
    """Fault: every process of the region (its databases, its S3, its Kafka nodes) killed at once.
    DNS and the link are global, as Route53 and the network between regions are.

    With ``cut_link`` the region's network goes dark with it: the link is partitioned, which drops
    what was still on the wire to the other region, the region is frozen a moment later (so it
    acknowledges nothing more), and then everything is killed. `heal` restores the link."""
    names = [db.name for db in state.databases]
    comps = [Node(layout, state, identity, name, region).component for name in names] + [f"moto-{region}"]
    if "kafka" in state.extra.get("systems", []):
        comps += kafka_cluster.components(state, region)
    recs = [r for r in (proc.running(layout.run_dir, c) for c in comps) if r is not None]
    # Freeze the whole region first, so nothing in it outlives the rest. The process trees are
    # read beforehand and stopped in one tight loop: walking /proc while the servers run takes
    # long enough for their backends to acknowledge more writes and their WAL senders to ship
    # more WAL, which would make the outage less sudden than a region going dark.
    # With cut_link the link goes first (the relay answers once it drops everything, in flight
    # included), then the freeze follows within about a millisecond.
    trees = [[rec.pid, *sorted(proc.descendants(rec.pid))] for rec in recs]
    cut = f"{link.partition(state)}; " if cut_link else ""
    for tree in trees:
        for pid in tree:
            proc.send_signal(pid, 19)  # SIGSTOP
    killed = [f"{rec.component} ({len(proc.kill_tree(rec.pid, None, rec.component))} processes)" for rec in recs]
    clusters.set_down(layout, region, True)  # its Kubernetes API goes with it; its ConfigMaps stay
    for name in names:
        Node(layout, state, identity, name, region).release_shared_memory()
    return f"{cut}killed region {region}: " + (", ".join(killed) if killed else "nothing was running") + \
        f"; its cluster ({clusters.context(region)}) no longer answers"


def start_region(layout: Layout, state: State, identity: proc.Identity, region: str,
                 deadline_s: float = READY_DEADLINE_S) -> str:
    """Bring a region back after ``kill_region``: its S3 (moto), its Kafka cluster, then its
    databases (a fence recorded meanwhile applies before they take clients). What comes back
    is what such a restart gives here: the databases' data (it is on disk), but an **empty**
    Kafka cluster (a new incarnation, on new ports) and an **empty** versioned bucket: both
    lived in the killed processes' memory. The failback re-seeds them (docs/sandbox.md).
    Components already running are left alone; a new Kafka cluster rewrites DIR/outputs.json."""
    env = proc.worker_env()
    done: list[str] = []
    moto_comp = f"moto-{region}"
    if proc.running(layout.run_dir, moto_comp) is None:
        proc.spawn(layout.run_dir, moto_comp, ["nice", "-n", "10", *helper_argv("moto", layout, region)],
                    layout.log(moto_comp), env=env)
        done.append(f"S3 (moto) with an empty versioned bucket {bucket_name(region)}")
    new_kafka = "kafka" in state.extra.get("systems", []) and not kafka_running(state, layout, region)
    if new_kafka:
        for comp in kafka_cluster.components(state, region):  # a node left of a partial loss goes too
            rec = proc.running(layout.run_dir, comp)
            if rec is not None:
                proc.kill_tree(rec.pid, rec.start_time, comp)
        kafka_cluster.start_cluster(layout, state, region, env)
        info = kafka_cluster.wait_cluster(layout, state, region, kafka_replication.TOPICS,
                                   deadline_s=max(deadline_s, KAFKA_DEADLINE_S))
        done.append(f"an empty Kafka cluster (incarnation {info.get('incarnation')}) at {info.get('bootstrap')}")
    deadline_loop(deadline_s, "S3 (moto)", lambda: s3_problem(state, region), moto_comp,
                  layout.log(moto_comp), moto_comp, layout.run_dir)
    if new_kafka:  # its bootstrap brokers changed: the outputs say where they are now
        write_json_atomic(layout.outputs_file, build_outputs(state, layout).to_dict())
    nodes = [Node(layout, state, identity, db.name, region) for db in state.databases]
    if any(not n.is_running() for n in nodes):
        done.append("; ".join(n.start() for n in nodes))
    if clusters.store(layout, region).exists() and not clusters.reachable(layout, region):
        clusters.set_down(layout, region, False)  # its ConfigMaps are as they were: on disk
        done.append(f"the cluster of {region} ({clusters.context(region)}) answers again")
    return f"region {region} started: " + ("; ".join(done) if done else "everything was running")
