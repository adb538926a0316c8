"""MirrorMaker 2's connector settings, in one place.

The sandbox's MirrorMaker 2 (dedicated mode, ``sandbox/kafka_cluster.py``) takes its settings from
``connector_settings``; the stacks' MirrorMaker-2-on-MSK-Connect option is meant to take the same
ones, so a drill rehearses what AWS would run. Pure data: no Pulumi, no Kafka client here.

Why each value (Apache Kafka's MirrorMaker 2 documentation, "Geo-Replication (Cross-Cluster Data
Mirroring)", and KIP-382 / KIP-545 for the checkpoint and offset-sync connectors):

- ``IdentityReplicationPolicy``: the target topic has the source topic's name, as the stacks'
  MSK Replicator is configured (``orders`` stays ``orders``), so clients move without renaming.
  The checkpoints still go to ``<source alias>.checkpoints.internal`` on the target.
- ``sync.group.offsets.enabled``: the checkpoint connector commits each group's translated offsets
  on the target itself, every ``sync.group.offsets.interval.seconds`` — but only for a group with
  no active member on the target (a group already consuming there is left alone).
- ``emit.checkpoints.interval.seconds`` / ``sync.group.offsets.interval.seconds``: how old a
  group's DR position can be at a region outage; every record the group consumed after it is
  consumed again on DR (duplicates, never skips).
- ``offset.lag.max``: MirrorMaker 2's source task writes an offset sync (upstream → downstream
  offset) at once for the first record it copies of each partition and then whenever the
  translated offset would trail by this many records; the sync of each partition's latest record
  is written at every offset flush (``offset.flush.interval.ms``; KAFKA-15906). Translation is
  conservative: a group between two syncs resumes one past the older one. At most 10 syncs are
  in flight (``OffsetSyncWriter``, not configurable); the rest wait, and a newer one of the same
  partition replaces a waiting one. Seen here with 10: a re-seed copied ~100 records per
  partition in a burst, the immediate syncs (one per 10 records) filled the 10 slots while the
  first ones were slow, and one partition's **first** sync was replaced: MirrorMaker 2 then
  held no sync before offset 101 there, and a group at 76 got no checkpoint for it, ever
  ("Skipped … is ahead of upstream consumer group"). 1000 here: a burst of up to 1000 records
  per partition writes only each partition's first sync at once (5 with the 4 partitions and
  the heartbeats, never more than the 10 slots), so a re-seeded flow can translate any group
  (coarsely: it re-processes from the start of the burst); in a steady flow the flush's sync
  of the latest record (every 0.5 s in the sandbox) keeps groups near the head translated
  within a flush's worth of records. On MSK Connect the worker's ``offset.flush.interval.ms``
  (Connect's default is 60 s) sets that precision.
- ``offset-syncs.topic.location = target``: the offset syncs live beside the checkpoints on the
  target, so translation never needs the source cluster (which a region outage takes away).
- ``refresh.groups.interval.seconds`` / ``refresh.topics.interval.seconds``: how soon a new group
  or topic is noticed (defaults 10 min; short here because drills are short).
- ``sync.topic.acls.enabled = false``: no authorizer in the sandbox (MSK with IAM uses IAM
  policies, not Kafka ACLs, so there is nothing to copy there either).
"""

from __future__ import annotations

IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
OFFSET_LAG_MAX = 1000
CHECKPOINT_INTERVAL_S = 1
OFFSET_SYNC_INTERVAL_S = 1
HEARTBEAT_INTERVAL_S = 1
REFRESH_GROUPS_S = 2
REFRESH_TOPICS_S = 5


def checkpoints_topic(source_alias: str) -> str:
    """Where the checkpoint connector writes a flow's translated group offsets, on the target."""
    return f"{source_alias}.checkpoints.internal"


def connector_settings(topics: list[str] | tuple[str, ...], groups: list[str] | tuple[str, ...],
                       replication_factor: int) -> dict[str, str]:
    """The settings every connector of one flow takes (source, checkpoint, heartbeat), by name as
    MirrorMaker 2 spells them. ``replication_factor`` is the RF of the topics MirrorMaker 2
    creates (the replicated topics when missing, checkpoints, heartbeats, offset syncs)."""
    if not topics:
        raise ValueError("MirrorMaker 2 needs at least one topic to replicate; name them (e.g. ['orders'])")
    if not groups:
        raise ValueError("MirrorMaker 2 needs the consumer groups whose offsets it checkpoints (e.g. ['ledger'])")
    if not 1 <= int(replication_factor) <= 3:
        raise ValueError(f"replication factor {replication_factor}: use 1 (one broker) to 3 (the stacks' RF)")
    bad = [t for t in (*topics, *groups) if not t or any(c in t for c in ",| ")]
    if bad:
        raise ValueError(f"topic/group names {bad}: names are listed comma-separated, so no commas, bars or spaces")
    rf = str(int(replication_factor))
    return {
        "topics": ",".join(topics),
        "groups": ",".join(groups),
        "replication.policy.class": IDENTITY_POLICY,
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": str(OFFSET_SYNC_INTERVAL_S),
        "emit.checkpoints.enabled": "true",
        "emit.checkpoints.interval.seconds": str(CHECKPOINT_INTERVAL_S),
        "emit.heartbeats.enabled": "true",
        "emit.heartbeats.interval.seconds": str(HEARTBEAT_INTERVAL_S),
        "offset.lag.max": str(OFFSET_LAG_MAX),
        "offset-syncs.topic.location": "target",
        "refresh.groups.interval.seconds": str(REFRESH_GROUPS_S),
        "refresh.topics.interval.seconds": str(REFRESH_TOPICS_S),
        "sync.topic.acls.enabled": "false",
        "replication.factor": rf,
        "checkpoints.topic.replication.factor": rf,
        "heartbeats.topic.replication.factor": rf,
        "offset-syncs.topic.replication.factor": rf,
    }


# ---------------------------------------------------------------------------------------------
# The same flow on MSK Connect (the dr stack's ``streaming.replication: mirrormaker2``)
# ---------------------------------------------------------------------------------------------

CONNECTOR_CLASSES = {
    "source": "org.apache.kafka.connect.mirror.MirrorSourceConnector",
    "checkpoint": "org.apache.kafka.connect.mirror.MirrorCheckpointConnector",
    "heartbeat": "org.apache.kafka.connect.mirror.MirrorHeartbeatConnector",
}
"""The three connectors of one flow, as the sandbox's dedicated-mode MirrorMaker 2 runs them."""
BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
"""Records are copied byte for byte. Dedicated-mode MirrorMaker 2 sets this converter itself; on a
Connect cluster it must be said, and MSK Connect's default worker configuration uses
StringConverter (MSK Developer Guide, "Understand MSK Connect workers", default worker
configuration), which would write each record's ``toString()``."""
IAM_CLIENT = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
}
"""How MirrorMaker 2's own clients (admin, consumer of the source, offset-syncs producer) reach an
MSK cluster with IAM access control (port 9098, TLS; MSK Developer Guide, "Port information" and
"Configure clients for IAM access control"). The classes come from the aws-msk-iam-auth library,
which is why the custom plugin ZIP carries it; the credentials are the connector's service
execution role's, which MSK Connect provides to the workers (no key in any configuration)."""
WORKER_PROPERTIES = {
    "key.converter": BYTE_ARRAY_CONVERTER,
    "value.converter": BYTE_ARRAY_CONVERTER,
    # a record is written when every in-sync replica has it (as the sandbox's MirrorMaker 2 writes)
    "producer.acks": "all",
    "producer.linger.ms": "5",
}
"""The worker configuration: only properties MSK Connect documents as supported (MSK Developer
Guide, "Supported worker configuration properties": key.converter and value.converter are
required; producer.acks and producer.linger.ms are among the producer. properties it lists). The
sandbox's ``offset.flush.interval.ms`` (500 ms) is not among them: MSK Connect stores the source
task's positions at Connect's default interval, so a restarted source connector may copy again up
to that interval's records (duplicates, never a gap)."""


def worker_properties() -> str:
    """The worker configuration as the properties-file text MSK Connect takes."""
    return "".join(f"{k}={v}\n" for k, v in WORKER_PROPERTIES.items())


def msk_connect_configurations(*, source_alias: str, target_alias: str, source_bootstrap: str,
                               target_bootstrap: str, topics: list[str] | tuple[str, ...],
                               groups: list[str] | tuple[str, ...],
                               replication_factor: int = 3) -> dict[str, dict[str, str]]:
    """Connector kind (source, checkpoint, heartbeat) → its MSK Connect connector configuration:
    ``connector_settings`` (what the sandbox runs) plus what dedicated mode derives from its own
    framing: the connector class, the two clusters' aliases and bootstrap servers, IAM
    authentication to both, and byte-array converters."""
    if not source_alias or not target_alias or source_alias == target_alias:
        raise ValueError(f"cluster aliases {source_alias!r} → {target_alias!r}: name two different clusters "
                         "(the stacks use the two regions)")
    for side, servers in (("source", source_bootstrap), ("target", target_bootstrap)):
        if not servers or not all(":" in s for s in servers.split(",")):
            raise ValueError(f"{side} bootstrap servers {servers!r}: host:port[,host:port…], the cluster's "
                             "bootstrap_brokers_sasl_iam (port 9098)")
    common = {
        **connector_settings(topics, groups, replication_factor),
        "source.cluster.alias": source_alias,
        "target.cluster.alias": target_alias,
        "source.cluster.bootstrap.servers": source_bootstrap,
        "target.cluster.bootstrap.servers": target_bootstrap,
        **{f"source.cluster.{k}": v for k, v in IAM_CLIENT.items()},
        **{f"target.cluster.{k}": v for k, v in IAM_CLIENT.items()},
        "key.converter": BYTE_ARRAY_CONVERTER,
        "value.converter": BYTE_ARRAY_CONVERTER,
        "tasks.max": "1",
    }
    return {kind: {"connector.class": cls, **common} for kind, cls in CONNECTOR_CLASSES.items()}
