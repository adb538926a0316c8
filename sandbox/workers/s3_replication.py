"""S3 replication, a worker process (``python -m sandbox.workers.serve s3-replication --dir DIR``)
that behaves like CRR with RTC: it copies new object versions and delete markers from the source
bucket to the target bucket (moto stores a replication configuration but copies nothing), marks
what it wrote as replicas (never replicated back), and publishes its backlog; it obeys the link's
faults (it is the one stand-in left)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sandbox.buckets import bucket_name, s3_client
from sandbox.flows import STATUS_INTERVAL_S, s3_dir
from sandbox.layout import REGIONS, Layout, State, read_json, write_json_atomic

log = logging.getLogger("sandbox.streams")

COPY_BATCH = 8
"""S3 replication copies up to this many versions at once (of distinct keys), as S3 does."""


class LinkView:
    """The link's faults (DIR/link.json) as this worker obeys them: partitioned, one-way latency."""

    def __init__(self, layout: Layout):
        self.path = layout.link_file
        self._key = None
        self.partitioned = False
        self.latency_s = 0.0

    def refresh(self) -> "LinkView":
        try:
            st = self.path.stat()
            key = (st.st_ino, st.st_mtime_ns)
            if key != self._key:
                doc = read_json(self.path) or {}
                self.partitioned = bool(doc.get("partitioned", False))
                self.latency_s = int(doc.get("latency_ms", 0)) / 1000.0
                self._key = key
        except FileNotFoundError:
            pass
        return self


def to_copy_again(source_versions: list[str], target_versions: set[str], copies: dict[str, str | None],
                  origin: dict[str, str | None]) -> set[str]:
    """The source versions whose twin in the target is gone: a copy this worker made of them
    (``copies``), or the original they are a copy of (``origin``), no longer among the target's
    versions — its bucket was recreated (or versions deleted there). They must be copied again;
    versions never copied either way are the ordinary backlog."""
    out = set()
    for vid in source_versions:
        twin = copies.get(vid) or origin.get(vid)
        if twin is not None and twin not in target_versions:
            out.add(vid)
    return out


class ObjectReplicator:
    def __init__(self, layout: Layout, state: State):
        self.layout = layout
        self.state = state
        self.bucket = bucket_name
        self.dir = s3_dir(layout)
        self.config_path = self.dir / "replication-config.json"
        self.status_path = self.dir / "replication-status.json"
        self.state_path = self.dir / "replication-state.json"
        saved = read_json(self.state_path) or {}
        self.copies: dict[str, str | None] = dict(saved.get("copies", {}))
        """Source version id → the version id of its copy in the other bucket (None: not known)."""
        self.origin: dict[str, str | None] = dict(saved.get("origin", {}))
        """Version id this worker created → the version it copies (never replicated back)."""
        self.link = LinkView(layout)
        self.clients = {r: s3_client(f"http://{state.addresses[r]}:{state.moto_port}") for r in REGIONS}
        self.backlog: list[dict] = []
        self.source_ok = None
        self.target_ok = None
        self.replicated = saved.get("replicated", 0)
        self._saved = self.replicated
        self.checked_epoch = None
        """The config epoch whose target bucket was checked for what it lacks."""
        self.reseed: set[str] = set()
        """Source versions copied before (or replicas of the target's own) whose counterpart the
        target no longer holds (its bucket was recreated): copied again."""
        self.seed: dict = saved.get("seed", {})
        """What the last check of a target found: {epoch, flow, target_versions, missing, versioning}."""
        self.listed_fresh = False
        """Nothing was copied since the source was last listed (so an empty backlog means empty)."""
        self._cached: tuple[float, object, list[dict]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=COPY_BATCH, thread_name_prefix="copy")
        self._saved_at = 0.0

    def _versions(self, region: str) -> list[dict]:
        client, bucket = self.clients[region], self.bucket(region)
        out = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            out += [dict(v, kind="version") for v in page.get("Versions", [])]
            out += [dict(v, kind="delete-marker") for v in page.get("DeleteMarkers", [])]
        return sorted(out, key=lambda v: v["LastModified"])

    def _copied(self, vid: str) -> bool:
        """Copied by this worker, or itself a copy this worker made (never replicated back)."""
        return vid in self.copies or vid in self.origin

    def check_target(self, source: str, target: str, epoch) -> bool:
        """At the start of a flow: does the target still hold a counterpart of every source version
        that was copied either way? A bucket recreated empty (its region lost and back) does not;
        those versions are copied again, with the rest of the backlog, before the flow counts as
        drained — what S3 Batch Replication does for existing objects in AWS. Returns False when
        the target does not answer (checked again next round, nothing copied meanwhile)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versioning = self.clients[target].get_bucket_versioning(Bucket=self.bucket(target)).get("Status")
            held = {v["VersionId"] for v in self._versions(target)}
            versions = self._versions(source)
        except (BotoCoreError, ClientError) as exc:
            self.target_ok = False
            log.info("cannot check %s's bucket before copying into it: %s", target, exc)
            return False
        self.target_ok = True
        self.reseed = to_copy_again([v["VersionId"] for v in versions], held, self.copies, self.origin)
        self.seed = {"epoch": epoch, "flow": f"{source}->{target}", "t": time.time(), "target_versions": len(held),
                     "missing": len(self.reseed), "versioning": versioning}
        if self.reseed:
            log.warning("%s's bucket lacks %d versions %s holds copies or originals of (recreated?): copying them "
                        "again", target, len(self.reseed), source)
        self.checked_epoch = epoch
        return True

    def step(self, cfg: dict) -> None:
        """List the source, copy what the target lacks (oldest first), reporting as it goes."""
        source, target, epoch = cfg["source"], cfg["target"], cfg.get("epoch")
        cached, self._cached = self._cached, None
        if cached is not None and cached[1] == epoch and time.time() - cached[0] < 2 * STATUS_INTERVAL_S:
            todo = cached[2]  # the listing that ended the previous round, a moment ago: used once
        else:
            todo = self._list(source)
        if todo is None:
            return
        next_status = time.time() + STATUS_INTERVAL_S
        i = 0
        while i < len(todo):
            self.link.refresh()
            if self.link.partitioned:
                return
            if (read_json(self.config_path) or {}).get("epoch") != epoch:
                return  # stopped or reversed meanwhile: take the change now, not after the whole backlog
            # a batch of copies at once, one version per key (a key's versions are copied in order)
            batch, keys = [], set()
            for v in todo[i:i + COPY_BATCH]:
                if v["Key"] in keys or (self.link.latency_s and
                                        time.time() - v["LastModified"].timestamp() < self.link.latency_s):
                    break
                batch.append(v)
                keys.add(v["Key"])
            if not batch:
                return  # the oldest left is younger than the link's latency: next round
            results = list(self._pool.map(lambda v: self._copy(source, target, v), batch))
            # every copy that went through is recorded, even when another of the batch failed (each
            # is of a different key): one left out would be copied again next round, a duplicate
            # version in the target, and later taken for a version of the target's own
            done, failed = set(), False
            for v, (put, exc) in zip(batch, results):
                if exc is not None:
                    log.info("copying %s %s failed (retried next round): %s", v["Key"], v["VersionId"], exc)
                    failed = True
                    continue
                copy = put.get("VersionId")
                self.copies[v["VersionId"]] = copy
                if copy:
                    self.origin[copy] = v["VersionId"]
                self.reseed.discard(v["VersionId"])
                self.replicated += 1
                done.add(v["VersionId"])
            if done:
                self.backlog = [b for b in self.backlog if b["version_id"] not in done]
                # what was written to the source since the listing is not in this backlog: an empty
                # one means nothing only once the next listing says so
                self.listed_fresh = False
            if failed:
                return
            i += len(batch)
            if time.time() >= next_status:  # a long backlog (a bucket re-seeded) reports its progress
                self.write_status(cfg)
                next_status = time.time() + STATUS_INTERVAL_S
        if todo:
            # list again: the backlog reported now must include what was written while copying, or
            # an empty one would claim a drained flow that is not (and the next round starts from it)
            again = self._list(source)
            if again is not None:
                self._cached = (time.time(), epoch, again)

    def _copy(self, source: str, target: str, v: dict):
        """Copy one version or delete marker: (the target's answer, None) or (None, the error)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if v["kind"] == "version":
                body = self.clients[source].get_object(Bucket=self.bucket(source), Key=v["Key"],
                                                       VersionId=v["VersionId"])["Body"].read()
                return self.clients[target].put_object(Bucket=self.bucket(target), Key=v["Key"], Body=body,
                                                       Metadata={"replica-of": f"{source}/{v['VersionId']}"}), None
            return self.clients[target].delete_object(Bucket=self.bucket(target), Key=v["Key"]), None
        except (BotoCoreError, ClientError) as exc:
            return None, exc

    def _list(self, source: str) -> list[dict] | None:
        """List the source now; the backlog becomes what it holds that the target lacks."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            versions = self._versions(source)
            self.source_ok = True
        except (BotoCoreError, ClientError) as exc:
            self.source_ok = False
            self.listed_fresh = False
            log.debug("cannot list %s: %s", source, exc)
            return None
        todo = [v for v in versions if v["VersionId"] in self.reseed or not self._copied(v["VersionId"])]
        self.backlog = [{"key": v["Key"], "version_id": v["VersionId"], "kind": v["kind"],
                         "modified": v["LastModified"].timestamp()} for v in todo]
        self.listed_fresh = True
        return todo

    def write_status(self, cfg: dict) -> None:
        oldest = min((b["modified"] for b in self.backlog), default=None)
        running = bool(cfg.get("running"))
        # an empty backlog counts only from a listing after the last copy; while the source does not
        # answer, what was left at the last contact is all there is (as the Kafka lag is)
        known = not running or (self.checked_epoch == cfg.get("epoch") and
                                (self.backlog or self.listed_fresh or self.source_ok is False))
        write_json_atomic(self.status_path, {
            "epoch": cfg.get("epoch"), "t": time.time(), "running": running,
            "source": cfg.get("source"), "target": cfg.get("target"),
            "backlog_objects": len(self.backlog) if known else None,
            "backlog_seconds": 0.0 if oldest is None else time.time() - oldest,
            "pending": self.backlog[:200], "source_reachable": self.source_ok, "target_reachable": self.target_ok,
            "link_partitioned": self.link.partitioned, "replicated": self.replicated,
            "seed": dict(self.seed, left=len(self.reseed))})
        # the copied-versions record grows with the bucket: written on change, at most once a second
        # while copying (a restart copies again what the last second copied: duplicates, not loss)
        if self.replicated != self._saved and (not running or time.time() - self._saved_at >= 1.0):
            write_json_atomic(self.state_path, {"copies": self.copies, "origin": self.origin,
                                                "replicated": self.replicated, "seed": self.seed})
            self._saved, self._saved_at = self.replicated, time.time()

    def run(self, stop: threading.Event, still_ours) -> None:
        next_watch = time.time() + 2.0
        while not stop.is_set():
            cfg = read_json(self.config_path) or {}
            self.link.refresh()
            if cfg.get("running") and not self.link.partitioned:
                if self.checked_epoch == cfg.get("epoch") or \
                        self.check_target(cfg["source"], cfg["target"], cfg.get("epoch")):
                    self.step(cfg)
            elif not cfg.get("running"):
                self.source_ok = self.target_ok = None
            self.write_status(cfg)
            stop.wait(STATUS_INTERVAL_S)
            if time.time() >= next_watch:
                next_watch = time.time() + 2.0
                if not still_ours():
                    break


def serve_s3_replication(layout: Layout, state: State, stop: threading.Event, still_ours) -> int:
    print("s3-replication: CRR stand-in (sandbox only)", flush=True)
    ObjectReplicator(layout, state).run(stop, still_ours)
    return 0
