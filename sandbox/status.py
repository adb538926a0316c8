"""The sandbox's status, asked from the processes themselves (``python -m sandbox status``): each
region's databases, DNS answers, S3, Kafka and cluster, the link, and the replication workers."""

from __future__ import annotations

from contract.active_endpoints import CONFIGMAP_NAME as CONFIGMAP
from sandbox import clusters, dns_records, flows, kafka_cluster, kafka_replication, link, proc
from sandbox.buckets import bucket_name
from sandbox.errors import SandboxError
from sandbox.layout import DNS_ADDRESS, REGIONS, Layout, State
from sandbox.postgres import Node


def status(layout: Layout, state: State, identity: proc.Identity) -> dict:
    """Every component, its process and state, asked from the processes themselves."""
    names = [db.name for db in state.databases]
    systems = state.extra.get("systems", ["postgres"])
    names_now = dns_records.answers(layout, state)
    out: dict = {}
    for region in REGIONS:
        dbs = {}
        for name in names:
            node = Node(layout, state, identity, name, region)
            rec = node.pid()
            fenced = node.is_fenced()
            role = node.role() if rec else None
            dbs[name] = {
                "dsn": node.dsn(admin=True),
                "role": role,
                "state": "stopped" if rec is None else ("fenced" if fenced else "running"),
                "fenced": fenced,
                "pid": rec.pid if rec else None,
                "address": node.address,
                "port": node.db.port,
                "data_role": "replica" if node.data_says_standby() else "primary",
                "log": str(node.log_path),
            }
            if rec is not None and role is not None:
                dbs[name]["replication"] = node.replication_info()
        moto = proc.running(layout.run_dir, f"moto-{region}")
        out[region] = {
            "address": state.addresses[region],
            "database": dbs[names[0]],
            "databases": dbs,
            "dns": {"server": f"{DNS_ADDRESS}:{state.dns_port}", "names": names_now},
            "s3": {"endpoint": f"http://{state.addresses[region]}:{state.moto_port}",
                   "bucket": bucket_name(region), "state": "running" if moto else "stopped",
                   "pid": moto.pid if moto else None},
        }
        if "kafka" in systems:
            nodes = [proc.running(layout.run_dir, c) for c in kafka_cluster.components(state, region)]
            out[region]["kafka"] = {"bootstrap": kafka_replication.bootstrap_of(layout, region),
                                    "incarnation": (kafka_replication.cluster_info(layout, region) or {}
                                                    ).get("incarnation"),
                                    "state": "running" if all(nodes) else "stopped",
                                    "pid": nodes[0].pid if nodes[0] else None,
                                    "nodes": [n.pid if n else None for n in nodes]}
        try:
            active = {ns: copies.get(CONFIGMAP, {}).get("data", {}).get("ACTIVE_REGION")
                      for ns, copies in clusters.configmaps(layout, region).items()}
            out[region]["cluster"] = {"state": "up", "context": clusters.context(region), "active_region": active}
        except SandboxError:
            out[region]["cluster"] = {"state": "down" if clusters.store(layout, region).exists() else "none",
                                      "context": clusters.context(region)}
    out["link"] = link.describe(layout, state)
    dns_rec = proc.running(layout.run_dir, "dns")
    out["sandbox"] = {"dir": str(layout.root), "replication": state.replication,
                      "dns": {"state": "running" if dns_rec else "stopped", "pid": dns_rec.pid if dns_rec else None,
                              "ttl_seconds": dns_records.read(layout).get("ttl_seconds")}}
    for kind, comp in (("kafka", "replicator"), ("s3", "s3-replication")):
        if kind in systems:
            rec = proc.running(layout.run_dir, comp)
            st = flows.status(layout, kind) or {}
            out["sandbox"][comp] = {"state": "running" if rec else "stopped", "pid": rec.pid if rec else None,
                                    **{k: st.get(k) for k in ("source", "target", "running", "lag_records",
                                                              "lag_seconds", "backlog_objects",
                                                              "backlog_seconds") if k in st}}
    return out
