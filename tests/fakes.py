"""In-memory fakes of the runbook ports: a region pair whose state tests can read and break.

No patching: the runbooks get these through the same Ports bundle the adapters build."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbooks.core.clock import FakeClock
from runbooks.core.errors import StepFailed, Unreachable
from runbooks.core.lock import FileLock
from runbooks.core.ports import DbInstance, Health, Ports, ReplicationState, SeedJob


class Crash(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing on the way catches it."""


@dataclass
class FakeDb:
    role: str  # primary | replica
    source_region: str | None = None
    status: str = "available"
    fenced: bool = False
    lsn: int = 1000
    streaming: bool = True
    lag: float = 0.1
    promote_at: float | None = None
    writes: list = field(default_factory=list)


class FakeWorld:
    def __init__(self, outputs, clock: FakeClock | None = None, promote_seconds: float = 0.4):
        self.outputs = outputs
        self.clock = clock or FakeClock()
        self.promote_seconds = promote_seconds
        self.region_up = {name: True for name in outputs.regions}
        self.api_down: set[str] = set()
        """Regions whose control plane does not answer: a fence there fails (Unreachable)."""
        self.dbs: dict[tuple[str, str], FakeDb] = {}
        p, s = outputs.primary.name, outputs.secondary.name
        for db in outputs.primary.databases:
            self.dbs[(p, db)] = FakeDb("primary")
            self.dbs[(s, db)] = FakeDb("replica", source_region=p)
        self.dns = {service: p for service in outputs.dns.records}
        self.actions: list[tuple] = []
        self.crash_on: tuple[str, int] | None = None
        self._counts: dict[str, int] = {}
        self.notifier = FakeNotifier()
        self.audit_sink = FakeAuditSink()
        self.metrics = FakeMetrics()
        self.backups: "FakeBackups | None" = FakeBackups(self)
        """The backups port of the region-pair runbooks (the PITR-in-DR gate): DR holds a replicated
        window of every database, a week back to a minute ago (set to None: no backups port)."""
        now = self.clock.time()
        for db in outputs.primary.databases:
            self.backups.windows[(s, db)] = (now - 7 * 86400.0, now - 60.0)

    # ---- test controls -------------------------------------------------------------------

    def kill_region(self, region: str) -> None:
        self.region_up[region] = False
        for (r, db), d in self.dbs.items():
            if r != region:
                for (r2, db2), other in self.dbs.items():
                    if db2 == db and r2 == region:
                        d.streaming = False

    def _act(self, name: str, *args) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1
        if self.crash_on and self.crash_on[0] == name and self.crash_on[1] == self._counts[name]:
            self.crash_on = None
            raise Crash(f"killed during {name}")
        self.actions.append((name, *args))

    def db(self, region: str, db: str) -> FakeDb:
        if not self.region_up[region]:
            raise Unreachable(f"{region} is down")
        return self.dbs[(region, db)]

    def _settle(self, d: FakeDb) -> None:
        if d.promote_at is not None and self.clock.monotonic() >= d.promote_at:
            d.role, d.source_region, d.promote_at, d.streaming = "primary", None, None, False

    def ports(self, lock_path) -> Ports:
        streams = getattr(self, "streams", None)
        return Ports(db=FakeDbControl(self), sql=FakeSql(self), dns=FakeDns(self), health=FakeHealth(self),
                     lock=FileLock(lock_path), notifier=self.notifier, clock=self.clock,
                     extras={"state_dir": str(lock_path.parent)},
                     streaming=FakeStreaming(streams) if streams else None,
                     objects=FakeObjects(streams) if streams else None,
                     endpoints=getattr(self, "endpoints", None), audit_sink=self.audit_sink, backups=self.backups,
                     metrics=self.metrics)


class FakeDbControl:
    def __init__(self, world: FakeWorld):
        self.w = world

    def describe(self, region, database):
        if not self.w.region_up[region]:
            d = self.w.dbs[(region, database)]
            return DbInstance(region, database, f"{region}-{database}", "unreachable", "unknown", d.fenced)
        d = self.w.dbs[(region, database)]
        self.w._settle(d)
        return DbInstance(region, database, f"{region}-{database}", d.status, d.role, d.fenced, d.source_region)

    def fence(self, region, database):
        if region in self.w.api_down:
            raise Unreachable(f"{region}: the RDS API does not answer; the fence of {database} is not applied")
        self.w._act("fence", region, database)
        # like denying security-group ingress: a control-plane change that holds while the region is down
        self.w.dbs[(region, database)].fenced = True
        return f"fenced {region}/{database}"

    def unfence(self, region, database):
        self.w._act("unfence", region, database)
        self.w.db(region, database).fenced = False
        return f"unfenced {region}/{database}"

    def promote(self, region, database):
        d = self.w.db(region, database)
        self.w._act("promote", region, database)
        if d.role != "replica":  # as the adapters: a standalone one is left as it is, no error
            return f"{region}/{database} is already standalone (promoted earlier)"
        d.promote_at = self.w.clock.monotonic() + self.w.promote_seconds
        return f"promotion of {region}/{database} started"

    def rebuild_replica(self, region, database, source_region):
        d = self.w.db(region, database)
        if d.role == "primary" and not d.fenced:
            raise AssertionError(f"the runbook tried to rebuild the unfenced writer {region}/{database}")
        self.w._act("rebuild", region, database, source_region)
        src = self.w.db(source_region, database)
        d.role, d.source_region, d.streaming, d.lsn, d.lag = "replica", source_region, True, src.lsn, 0.0
        return f"{region}/{database} rebuilt from {source_region}"


class FakeSql:
    def __init__(self, world: FakeWorld):
        self.w = world

    def replication(self, region, database):
        d = self.w.db(region, database)
        self.w._settle(d)
        if d.role == "primary":
            return ReplicationState(in_recovery=False, lsn=d.lsn)
        src = self.w.dbs[(d.source_region, database)]
        if d.streaming and self.w.region_up[d.source_region]:
            d.lsn = src.lsn  # the fake replicates instantly while streaming
        return ReplicationState(in_recovery=True, lsn=d.lsn, receive_lsn=d.lsn, streaming=d.streaming,
                                lag_seconds=d.lag, last_contact_age_seconds=0.0 if d.streaming else 5.0)

    def canary_write(self, region, database):
        d = self.w.db(region, database)
        self.w._settle(d)
        if d.role != "primary" or d.fenced:
            raise Unreachable(f"{region}/{database} is read-only ({'fenced' if d.fenced else d.role})")
        self.w._act("canary", region, database)
        d.writes.append("canary")
        d.lsn += 1
        return f"canary written to {region}/{database}"


class FakeDns:
    def __init__(self, world: FakeWorld):
        self.w = world

    def answer(self, service):
        return self.w.dns.get(service)

    def point(self, service, region):
        self.w._act("dns", service, region)
        self.w.dns[service] = region
        return f"{service} → {region}"


class FakeHealth:
    def __init__(self, world: FakeWorld):
        self.w = world

    def region(self, region):
        up = self.w.region_up[region]
        return Health(up, f"{region} {'answers' if up else 'does not answer'}")

    def database(self, region, database):
        up = self.w.region_up[region] and not self.w.dbs[(region, database)].fenced
        return Health(up, f"{region}/{database} {'accepts' if up else 'refuses'} connections")


class FakeNotifier:
    def __init__(self):
        self.sent = []
        self.broken: str | None = None
        """When set, every notify raises Unreachable with this text (the topic is unreachable)."""

    def notify(self, subject, message):
        from runbooks.core.redact import scrub
        if self.broken:
            raise Unreachable(self.broken)
        # as the SNS and JSON-lines notifiers: nothing secret-looking is kept (port contract suite)
        self.sent.append((scrub(subject), scrub(message)))


# --------------------------------------------------------------------------------------------
# Kafka (clusters + replicator) and S3 (buckets + replication), in memory
# --------------------------------------------------------------------------------------------


@dataclass
class FakeFlow:
    source: str
    target: str
    running: bool = True
    lag_records: int = 0
    lag_seconds: float = 0.0
    pending: tuple = ()
    groups: dict | None = None
    """Per consumer group, the checkpoint view a MirrorMaker 2 flow gives (None: none, as MSK Replicator);
    a callable is asked with the fake clock's time at each read (a view that changes while a gate waits)."""


class FakeStreams:
    """Both the Kafka and the S3 side of a FakeWorld: flows, published parameters, group offsets.

    While a flow runs and its source region is up, it copies everything when read (lag drops to 0
    unless ``stuck`` says otherwise); a dead source leaves the lag where it was."""

    def __init__(self, world: "FakeWorld", parameters: dict[str, str], bucket_parameter: str | None):
        self.w = world
        p, s = world.outputs.primary.name, world.outputs.secondary.name
        self.kafka = FakeFlow(p, s)
        self.objects = FakeFlow(p, s)
        self.stuck = {"kafka": False, "objects": False}
        self.params = dict(parameters)
        self.bucket_parameter = bucket_parameter
        self.group_offsets: dict[str, dict[str, int]] = {}
        self.translatable = True
        self.seeded: bool | None = True
        """What FakeObjects.seeding answers: True (the target holds everything), False (copying),
        None (cannot be known, as in AWS)."""
        self.batch_role = False
        """With ``seeded`` None: the outputs name a seeding role, so a job can be started (AWS with
        ``storage.batch_replication``)."""
        self.seed_jobs: list[dict] = []
        """Every seeding job started: token, attempt, id, reads so far, failed tasks."""
        self.seed_failures: list[int] = []
        """Failed tasks of the 1st, 2nd, … job (missing: 0, every task done)."""
        self.seed_reads = 3
        """A job finishes at its this-many-th read."""

    def flow_of(self, kind: str) -> FakeFlow:
        return self.kafka if kind == "kafka" else self.objects

    def read(self, kind: str):
        from runbooks.core.ports import FlowState
        f = self.flow_of(kind)
        reachable = self.w.region_up[f.source]
        if f.running and reachable and not self.stuck[kind]:
            f.lag_records, f.lag_seconds, f.pending = 0, 0.0, ()
        groups = f.groups(self.w.clock.monotonic()) if callable(f.groups) else f.groups
        return FlowState(f.source, f.target, f.running, f.lag_records, f.lag_seconds, reachable, tuple(f.pending),
                         groups=groups)


class FakeStreaming:
    def __init__(self, streams: FakeStreams):
        self.s = streams
        self.w = streams.w

    def flow(self):
        return self.s.read("kafka")

    def stop_flow(self):
        self.w._act("kafka-stop")
        self.s.kafka.running = False
        return "replicator stopped"

    def start_flow(self, source, target):
        if not self.w.region_up[source] or not self.w.region_up[target]:
            raise Unreachable(f"cannot start the replicator {source} → {target}: a region is down")
        self.w._act("kafka-start", source, target)
        self.s.kafka.source, self.s.kafka.target, self.s.kafka.running = source, target, True
        return f"replicator runs {source} → {target}"

    def ensure_group_offsets(self, source, target, groups):
        from runbooks.core.ports import GroupOffsets
        self.w._act("kafka-offsets", target)
        out = []
        for g in groups:
            if self.s.translatable:
                self.s.group_offsets.setdefault(target, {})[g] = 1
            out.append(GroupOffsets(g, g in self.s.group_offsets.get(target, {}), "fake mapping", duplicates=3))
        return out

    def bootstrap(self, region):
        return f"b-1.{region}.kafka:9098"

    def published(self, parameter):
        return self.s.params.get(parameter)

    def publish(self, parameter, value):
        self.w._act("publish", parameter, value)
        self.s.params[parameter] = value
        return f"{parameter} = {value}"


class FakeObjects:
    def __init__(self, streams: FakeStreams):
        self.s = streams
        self.w = streams.w

    def flow(self):
        return self.s.read("objects")

    def stop_flow(self):
        self.w._act("s3-stop")
        self.s.objects.running = False
        return "S3 replication stopped"

    def start_flow(self, source, target):
        if not self.w.region_up[source] or not self.w.region_up[target]:
            raise Unreachable("cannot start S3 replication: a region is down")
        self.w._act("s3-start", source, target)
        self.s.objects.source, self.s.objects.target, self.s.objects.running = source, target, True
        return f"S3 replication {source} → {target}"

    def seeding(self, source, target):
        from runbooks.core.ports import Seeding
        if self.s.seeded is None:
            if self.s.batch_role:
                return Seeding(None, "fake: cannot tell; a seeding job can copy them", startable=True)
            return Seeding(None, "fake: cannot tell", remedy="run the fake batch job, then pass --objects-seeded")
        return Seeding(self.s.seeded, f"fake: {target}'s bucket {'holds' if self.s.seeded else 'lacks'} everything")

    def _job(self, j, created=False):
        finished = j["reads"] >= self.s.seed_reads
        ok = finished and not j["failed"]
        word = ("Complete" if finished else "Active")
        failed = f" with {j['failed']} failed task(s); report s3://fake-reports/job-{j['id']}/"
        sentence = f"fake job {j['id']} is {word}" + (failed if finished and j["failed"] else "")
        return SeedJob(j["id"], word, finished, ok, sentence, attempt=j["attempt"], created=created,
                       failed_tasks=j["failed"], report=f"s3://fake-reports/job-{j['id']}/")

    def start_seeding(self, source, target, token):
        if not self.s.batch_role:
            raise StepFailed("fake: no seeding role")
        mine = [j for j in self.s.seed_jobs if j["token"] == token]
        if mine:
            job = self._job(mine[-1])
            if not job.finished or job.succeeded:
                return job
        self.w._act("seed-job", source, target)
        n = len(self.s.seed_jobs)
        failed = self.s.seed_failures[n] if n < len(self.s.seed_failures) else 0
        j = {"token": token, "attempt": len(mine) + 1, "id": f"job-{n + 1}", "reads": 0, "failed": failed}
        self.s.seed_jobs.append(j)
        return self._job(j, created=True)

    def seed_job(self, source, job_id, attempt=1):
        j = next(j for j in self.s.seed_jobs if j["id"] == job_id)
        j["reads"] += 1
        return self._job(j)

    def bucket(self, region):
        return self.w.outputs.regions[region].storage.data_bucket

    def writers(self, parameter):
        return self.s.params.get(parameter)

    def point_writers(self, parameter, value):
        self.w._act("writers", parameter, value)
        self.s.params[parameter] = value
        return f"{parameter} = {value}"


def with_streams(world: "FakeWorld") -> FakeStreams:
    """Give a FakeWorld Kafka and S3 (the outputs must declare them); its ports then carry both."""
    out = world.outputs
    p = out.primary
    params = {name: FakeStreaming.bootstrap(None, p.name)
              for name in (p.streaming.client_parameters or (p.streaming.bootstrap_parameter,))}
    params[p.storage.writer_parameter] = p.storage.data_bucket
    world.streams = FakeStreams(world, params, p.storage.writer_parameter)
    return world.streams


# ---- the backup runbooks' ports (runbooks.backups.ports) ---------------------------------------------


class FakeBackups:
    """Snapshots, restorable windows and restored instances in memory. Snapshots and restores
    become available ``*_seconds`` after they start (on the fake clock)."""

    def __init__(self, world: FakeWorld, create_seconds: float = 5.0, restore_seconds: float = 30.0):
        from runbooks.backups.ports import TableState
        self.w = world
        self.create_seconds = create_seconds
        self.restore_seconds = restore_seconds
        self.snaps: dict[tuple[str, str], list] = {}
        self.windows: dict[tuple[str, str], tuple[float, float]] = {}
        self.instances: dict[tuple[str, str], dict] = {}
        self.tables = {"public.drill_writes": TableState(100, "12345")}
        self.restored_tables: dict | None = None
        """What a restore holds (None: exactly the source's tables)."""
        self.amcheck_problems: list[str] | None = []
        self.fail_restore: str | None = None
        self.seal_moves_window = True

    def _ready(self, started: float, seconds: float) -> bool:
        return self.w.clock.time() >= started + seconds

    def snapshots(self, region, database):
        from dataclasses import replace
        out = []
        for s in self.snaps.get((region, database), []):
            if s.status != "available" and self._ready(s.created_at, self.create_seconds):
                s = replace(s, status="available")
            out.append(s)
        self.snaps[(region, database)] = out
        return sorted(out, key=lambda s: s.created_at)

    archive_regions: tuple | None = None
    """Regions with a compliance archive (None: every region)."""

    def archive_target(self, region):
        return f"fake-archive://{region}" if self.archive_regions is None or region in self.archive_regions else None

    def archives(self, region, database):
        return [a for a in getattr(self, "_archives", []) if (a.region, a.database) == (region, database)]

    def archive(self, snapshot, archive_id):
        from runbooks.backups.ports import Archive
        self.w._act("archive", snapshot.region, snapshot.id, archive_id)
        found = [a for a in self.archives(snapshot.region, snapshot.database) if a.id == archive_id]
        if found:
            return found[0]
        a = Archive(archive_id, snapshot.region, snapshot.database, snapshot.id, "starting", self.w.clock.time(),
                    f"fake-archive://{snapshot.region}/{archive_id}")
        self._archives = [*getattr(self, "_archives", []), a]
        return a

    expires_automated = False
    """True: as RDS, automated backups expire by themselves (``automated_days`` per (region, database))."""
    automated_days: dict | None = None

    def automated_retention_days(self, region, database):
        return (self.automated_days or {}).get((region, database))

    def add_snapshot(self, region, database, sid, age_days, managed=True, kind="manual", tags=None):
        from runbooks.backups.ports import MANAGED_TAG, MANAGED_VALUE, Snapshot
        tags = {**({MANAGED_TAG: MANAGED_VALUE} if managed else {"owner": "someone"}), **(tags or {})}
        self.snaps.setdefault((region, database), []).append(
            Snapshot(sid, region, database, "available", self.w.clock.time() - age_days * 86400, kind, tags,
                     arn=f"arn:snap:{region}:{sid}"))

    def create_snapshot(self, region, database, snapshot_id, tags):
        from runbooks.backups.ports import Snapshot
        self.w.db(region, database)
        self.w._act("create_snapshot", region, database, snapshot_id)
        existing = [s for s in self.snapshots(region, database) if s.id == snapshot_id]
        if existing:
            return existing[0]
        s = Snapshot(snapshot_id, region, database, "creating", self.w.clock.time(), "manual", dict(tags),
                     arn=f"arn:snap:{region}:{snapshot_id}", size_bytes=20 * 2**30)
        self.snaps.setdefault((region, database), []).append(s)
        return s

    def copy_snapshot(self, snapshot, target_region, tags):
        from dataclasses import replace
        self.w._act("copy_snapshot", snapshot.id, target_region)
        existing = [s for s in self.snapshots(target_region, snapshot.database) if s.id == snapshot.id]
        if existing:
            return existing[0]
        copy = replace(snapshot, region=target_region, status="copying", created_at=self.w.clock.time(),
                       tags={**snapshot.tags, **tags}, kms_key_id=self.w.outputs.regions[target_region].kms_key_arn,
                       copied_from=snapshot.arn)
        self.snaps.setdefault((target_region, snapshot.database), []).append(copy)
        return copy

    def delete_snapshot(self, snapshot):
        from runbooks.backups.ports import refuse_compliance
        # as both adapters: a compliance snapshot is refused, by the tags given and by its own (port contract suite)
        refuse_compliance(snapshot)
        held = self.snaps.get((snapshot.region, snapshot.database), [])
        for s in held:
            if s.id == snapshot.id:
                refuse_compliance(s)
        self.w._act("delete_snapshot", snapshot.region, snapshot.id)
        if not any(s.id == snapshot.id for s in held):
            return f"{snapshot.region}/{snapshot.id} was already gone"
        self.snaps[(snapshot.region, snapshot.database)] = [s for s in held if s.id != snapshot.id]
        return f"deleted {snapshot.region}/{snapshot.id}"

    def window(self, region, database, seal=False):
        from runbooks.backups.ports import Window
        w = self.windows.get((region, database))
        if w is None:
            return None
        if seal and self.seal_moves_window and self.w.region_up[region]:
            w = self.windows[(region, database)] = (w[0], self.w.clock.time())
        return Window(region, database, w[0], w[1], f"fake backups of {database} in {region}")

    def restore(self, region, database, name, to_time):
        from runbooks.backups.ports import Instance
        self.w._act("restore", region, database, name, to_time)
        if (region, name) not in self.instances:
            self.instances[(region, name)] = {"database": database, "to_time": to_time, "started": self.w.clock.time()}
        return Instance(name, region, database, "creating")

    def instance(self, region, name):
        from runbooks.backups.ports import Instance
        i = self.instances.get((region, name))
        if i is None:
            return Instance(name, region, "", "absent")
        if self.fail_restore:
            return Instance(name, region, i["database"], "failed")
        status = "available" if self._ready(i["started"], self.restore_seconds) else "creating"
        return Instance(name, region, i["database"], status, f"{name}.example", 5432,
                        restored_to=str(i["to_time"]))

    def delete_instance(self, region, name):
        self.w._act("delete_instance", region, name)
        self.instances.pop((region, name), None)
        return f"deleted {name}"

    def reference(self, region, database, tables, timeout):
        from runbooks.backups.ports import Reference
        self.w._act("reference", region, database)
        return Reference(region, database, self.w.clock.time(), dict(self.tables))

    def integrity(self, instance, tables):
        from runbooks.backups.ports import Integrity
        self.w._act("integrity", instance.name)
        got = self.restored_tables if self.restored_tables is not None else self.tables
        return Integrity({t: got[t] for t in tables if t in got}, self.amcheck_problems, "fake amcheck")


class FakeObjectVersions:
    """Versioned buckets in memory. ``put``/``delete`` as a client would, on the fake clock.

    As S3Versions (the port contract suite holds both to it): the buckets are the stack outputs'
    (plus any a test gives a ``status``), any other is BadInput; a key's versions and its delete
    markers are listed newest first (S3's ListObjectVersions order); a version that is not there,
    or a delete marker, cannot be copied back (StepFailed; S3: NoSuchVersion)."""

    def __init__(self, world: FakeWorld):
        self.w = world
        self.status: dict[str, str | None] = {}
        self.entries: dict[str, list] = {}
        self._n = 0

    def _known(self, bucket):
        from runbooks.core.errors import BadInput
        known = set(self.status)
        for r in self.w.outputs.regions.values():
            if r.storage:
                known.update(b for b in (r.storage.data_bucket, r.storage.backups_bucket) if b)
        if bucket not in known:
            raise BadInput(f"--bucket {bucket}: not a bucket of the stack outputs; known: {', '.join(sorted(known))}")

    def _add(self, bucket, key, marker, etag=None, size=10):
        from dataclasses import replace

        from runbooks.backups.ports import ObjectVersion
        self._n += 1
        items = self.entries.setdefault(bucket, [])
        items[:] = [replace(v, is_latest=False) if v.key == key else v for v in items]
        v = ObjectVersion(key, f"v{self._n}", self.w.clock.time(), True, marker, None if marker else size, etag)
        items.append(v)
        return v.version_id

    def put(self, bucket, key, etag, size=10):
        return self._add(bucket, key, False, etag, size)

    def delete(self, bucket, key):
        return self._add(bucket, key, True)

    def versioning(self, bucket):
        self._known(bucket)
        return self.status.get(bucket)

    def versions(self, bucket, prefix):
        self._known(bucket)
        held = [v for v in self.entries.get(bucket, []) if v.key.startswith(prefix)]
        # by key, then newest first (entries are held oldest first)
        return sorted(reversed(held), key=lambda v: v.key)

    def delete_version(self, bucket, key, version_id):
        from dataclasses import replace
        self._known(bucket)
        self.w._act("delete_version", bucket, key, version_id)
        items = [v for v in self.entries.get(bucket, []) if not (v.key == key and v.version_id == version_id)]
        rest = sorted([v for v in items if v.key == key], key=lambda v: v.last_modified)
        latest = rest[-1].version_id if rest else None
        self.entries[bucket] = [replace(v, is_latest=v.version_id == latest) if v.key == key else v for v in items]

    def restore_version(self, bucket, key, version_id):
        self._known(bucket)
        old = next((v for v in self.entries.get(bucket, []) if v.key == key and v.version_id == version_id), None)
        if old is None or old.delete_marker:
            raise StepFailed(f"copy version {version_id} of s3://{bucket}/{key} over the key: "
                             f"{'a delete marker has no content' if old else 'no such version'}")
        self.w._act("copy_version", bucket, key, version_id)
        return self._add(bucket, key, False, old.etag, old.size)


class FakeMetrics:
    def __init__(self):
        self.sent = []
        self.broken: str | None = None
        """When set, every put raises Unreachable with this text."""

    def put(self, samples):
        if self.broken:
            raise Unreachable(self.broken)
        self.sent.extend(samples)
        return f"{len(samples)} sample(s) to the fake"


class FakeAuditSink:
    def __init__(self):
        self.entries = []
        self.broken: str | None = None
        """When set, every write raises Unreachable with this text (the bucket is unreachable)."""

    def write(self, entry):
        from runbooks.core.redact import scrub
        if self.broken:
            raise Unreachable(self.broken)
        # as the S3 and JSON-lines sinks: the entry is kept scrubbed of secrets (port contract suite)
        self.entries.append(scrub(entry))
        return "fake sink"


def backup_ports(world: FakeWorld, state_dir, backups: FakeBackups | None = None, objects: "FakeObjectVersions | None" = None):
    """The backup runbooks' ports over the same fake world (its SQL measures the replication lag)."""
    from runbooks.backups.ports import BackupPorts
    return BackupPorts(backups=backups or FakeBackups(world), objects=objects or FakeObjectVersions(world),
                       metrics=FakeMetrics(), audit_sink=FakeAuditSink(), sql=FakeSql(world), clock=world.clock,
                       extras={"state_dir": str(state_dir)}, notifier=world.notifier)


# --------------------------------------------------------------------------------------------
# The clusters' active-endpoints ConfigMaps, in memory
# --------------------------------------------------------------------------------------------


class FakeEndpoints:
    """Every region with a ``kubernetes`` section has a cluster whose copies start with the primary's
    values, as Pulumi writes them, plus a key another team added (``TEAM_OWNED_KEY``), and each
    Deployment its ``restart_deployments`` lists (``workloads[region][(ns, name)]``; delete one to
    make it missing). A cluster does not answer while its region is down or while it is in ``down``."""

    def __init__(self, world: FakeWorld):
        from contract.active_endpoints import initial_data
        self.w = world
        self.down: set[str] = set()
        self.copies: dict[str, dict[str, dict]] = {}
        self.workloads: dict[str, dict[tuple[str, str], dict]] = {}
        for name, region in world.outputs.regions.items():
            if region.kubernetes is not None:
                self.copies[name] = {ns: {"data": {**initial_data(world.outputs.primary), "TEAM_OWNED_KEY": "kept"},
                                          "updated_by": None} for ns in region.kubernetes.namespaces}
                self.workloads[name] = {(ns, d): {"restarted_for": None, "restarted_at": None, "restarts": 0}
                                        for ns, names in region.kubernetes.restart_deployments.items() for d in names}

    def _reach(self, region: str):
        k = self.w.outputs.regions[region].kubernetes
        if not self.w.region_up[region] or region in self.down:
            raise Unreachable(f"kubectl --context {k.context}: Unable to connect to the server: i/o timeout")
        return k

    def read(self, region):
        from contract.active_endpoints import contract_data
        from runbooks.core.ports import ClusterEndpoints, EndpointsCopy
        k = self._reach(region)
        held = self.copies[region]
        return ClusterEndpoints(region, k.context, tuple(
            EndpointsCopy(ns, k.configmap, contract_data(c["data"]), c["updated_by"]) for ns, c in held.items()),
            tuple(ns for ns in k.namespaces if ns not in held))

    def publish(self, region, values, run_id):
        from contract.active_endpoints import refusal as contract_refusal
        from runbooks.core.errors import BadInput
        k = self._reach(region)
        refusal = contract_refusal(values, run_id)  # as the kubectl and sandbox adapters refuse it
        if refusal:
            raise BadInput(f"endpoints of {region}: {refusal}")
        self.w._act("endpoints", region, values.get("ACTIVE_REGION"))
        for ns, c in self.copies[region].items():
            self.w._act("endpoints-ns", region, ns)  # one namespace at a time, as kubectl does
            c["data"].update(values)
            c["updated_by"] = run_id
        return f"{len(self.copies[region])} copies in {region} ({k.context}) set: ACTIVE_REGION={values['ACTIVE_REGION']}"

    def deployments(self, region):
        from runbooks.core.ports import DeploymentState
        k = self._reach(region)
        held = self.workloads[region]
        return tuple(DeploymentState(ns, name, (ns, name) in held, held.get((ns, name), {}).get("restarted_for"),
                                     held.get((ns, name), {}).get("restarted_at"), rollout="1 of 1 pods updated, 1 available")
                     for ns, names in k.restart_deployments.items() for name in names)

    def restart(self, region, namespace, name, restarted_for, at):
        from contract.active_endpoints import restart_refusal
        from runbooks.core.errors import BadInput, StepFailed
        k = self._reach(region)
        refusal = restart_refusal(k.restart_deployments, namespace, name, restarted_for, at)
        if refusal:
            raise BadInput(refusal)
        d = self.workloads[region].get((namespace, name))
        if d is None:
            raise StepFailed(f"Deployment {namespace}/{name} does not exist in {region}'s cluster")
        self.w._act("restart", region, f"{namespace}/{name}", restarted_for)
        d.update(restarted_for=restarted_for, restarted_at=at, restarts=d["restarts"] + 1)
        return f"{namespace}/{name} in {region} restarted"

    def active(self, region: str) -> set[str]:
        return {c["data"]["ACTIVE_REGION"] for c in self.copies[region].values()}


def with_endpoints(world: FakeWorld) -> FakeEndpoints:
    """Give a FakeWorld clusters (the outputs must declare ``kubernetes`` sections)."""
    world.endpoints = FakeEndpoints(world)
    return world.endpoints


class RunbookEnv:
    """A runbook CLI over a FakeWorld built from ``doc``: ``run(module, *args)`` → (exit code, JSON
    output), with the outputs file, the state directory and the world at hand."""

    def __init__(self, tmp_path, doc: dict, *extra_args: str, setup=None):
        import json

        from contract import outputs as contract
        self.tmp = tmp_path
        self.doc_path = tmp_path / "outputs.json"
        self.doc_path.write_text(json.dumps(doc))
        self.world = FakeWorld(contract.load_file(self.doc_path))
        if setup is not None:
            setup(self.world)
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.extra_args = extra_args

    def run(self, module, *extra, stdin=None):
        import json
        code, text = self._main(module, ["--output", "json", *self.extra_args, *extra], stdin)
        return code, json.loads(text)

    def dry_run(self, module, *extra):
        """The runbook's ``--dry-run`` as a person reads it: (exit code, the plan's text)."""
        return self._main(module, ["--dry-run", *extra])

    def _main(self, module, args: list[str], stdin=None) -> tuple[int, str]:
        import io
        out = io.StringIO()
        code = module.main(["--outputs", str(self.doc_path), "--state-dir", str(self.state), *args],
                           ports_factory=lambda o, c: self.world.ports(self.state / "lock.json"),
                           clock=self.world.clock, stdin=stdin or io.StringIO(), stdout=out)
        return code, out.getvalue()
