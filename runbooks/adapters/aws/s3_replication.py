"""The ObjectStore port on S3 replication: the flow's state and pending versions, stopping and
starting a direction's rules, the reverse configuration on the DR bucket, and seeding a failback's
home bucket with S3 Batch Replication.

- **Reversing.** S3 replication is reversed by a configuration on the DR bucket, with the forward
  configuration's role.
- **Seeding a failback's home bucket.** S3 replication copies only versions written after its
  rule is enabled; the versions DR took before the reverse rule are copied by an S3 Batch
  Replication job (S3 Batch Operations, operation ``S3ReplicateObject``, manifest generated from
  DR's bucket) that ``start_seeding`` creates with the role the dr stack exports
  (``storage.batch_replication``) and ``seed_job`` reads. The job is found again by the run's
  token (``ListJobs``, and CreateJob's ``ClientRequestToken``), so a rerun never starts a second one.
- **Lag** comes from CloudWatch metrics (1-minute periods, minutes late). While clients are
  paused, a zero counts only from a period that started after every client had re-read its
  parameter (``PAUSED``'s LastModifiedDate + ``client_refresh_seconds``): an earlier zero says
  nothing about the last records written before the pause.
docs/aws-adapters.md says what each call means and what it cannot know.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from botocore.exceptions import ClientError

from contract.outputs import BatchReplication, Outputs
from runbooks.adapters.aws.clients import Clients, age_s, error_code, fail, utc_now
from runbooks.adapters.aws.replication_flows import FlowPort, StreamSettings, after_pause
from runbooks.core.clock import Clock
from runbooks.core.errors import BadInput, StepFailed, Unreachable
from runbooks.core.ports import FlowState, Seeding, SeedJob

log = logging.getLogger(__name__)


REPLICATION_RULE_ID = "primary-to-dr"
"""The rule id the storage component gives the forward S3 replication rule."""
REVERSE_RULE_ID = "regionpair-failback"
"""The rule id of the reverse (DR → primary) rule the runbooks put on the DR bucket."""
SEED_OPERATION = "S3ReplicateObject"
SEED_STATUSES = ("NONE", "FAILED", "REPLICA")
"""The replication statuses a seeding job's generated manifest takes: never replicated (written
while no rule copied them), failed, and replicas (DR's copies of the primary's own versions, all
of which a home bucket recreated empty lacks). COMPLETED versions are already home."""
_JOB_ENDED_BADLY = ("Failed", "Cancelled")


class S3Objects(FlowPort):
    """The data buckets, their replication configurations and the writers' SSM parameter."""

    def __init__(self, outputs: Outputs, clients: Clients, clock: Clock, settings: StreamSettings | None = None):
        super().__init__(outputs, clients, clock, settings)
        self._pending: tuple[float, str, tuple[str, ...]] | None = None

    def _storage(self, region: str):
        r = self.outputs.regions.get(region)
        if r is None or r.storage is None:
            raise BadInput(f"stack outputs: region {region!r} has no storage")
        return r.storage

    def _other(self, region: str) -> str:
        return next(r for r in self.outputs.regions if r != region)

    def bucket(self, region: str) -> str:
        return self._storage(region).data_bucket

    def _config(self, region: str) -> dict | None:
        bucket = self.bucket(region)
        try:
            return self.clients.call("s3", region, "get_bucket_replication", Bucket=bucket)["ReplicationConfiguration"]
        except ClientError as exc:
            if error_code(exc) == "ReplicationConfigurationNotFoundError":
                return None
            raise fail(exc, f"read the replication configuration of {bucket}") from exc

    def _rules_to(self, config: dict | None, target: str) -> list[dict]:
        arn = self._storage(target).data_bucket_arn
        return [r for r in (config or {}).get("Rules") or [] if (r.get("Destination") or {}).get("Bucket") == arn]

    def _directions(self) -> tuple[list[tuple[str, str, dict, list[dict]]], list[str]]:
        """(source, target, config, rules towards target) per region that answers; unreachable regions."""
        found, unreachable = [], []
        for source in self.outputs.regions:
            target = self._other(source)
            try:
                config = self._config(source)
            except Unreachable:
                unreachable.append(source)
                continue
            rules = self._rules_to(config, target)
            if rules:
                found.append((source, target, config, rules))
        return found, unreachable

    def _primary_first(self, items):
        order = [self.outputs.primary.name, self.outputs.secondary.name]
        return sorted(items, key=lambda d: order.index(d[0]))

    def flow(self) -> FlowState:
        found, unreachable = self._directions()
        enabled = self._primary_first([d for d in found if any(r.get("Status") == "Enabled" for r in d[3])])
        if not enabled:
            if unreachable:
                # unknown, so assumed enabled: a rule left on would copy the old primary's backlog over
                # newer versions once its region is back; the stop step must keep trying (rerun)
                s = unreachable[0]
                return FlowState(s, self._other(s), True, source_reachable=False,
                                 detail=f"S3 in {s} does not answer: its bucket's replication rule is unknown and "
                                        f"assumed enabled (it copies nothing while {s} is down)")
            d = (found or [(self.outputs.primary.name, self.outputs.secondary.name, None, [])])[0]
            return FlowState(d[0], d[1], False, detail="no enabled replication rule between the data buckets")
        source, target, _config, rules = enabled[0]
        rule = next(r for r in rules if r.get("Status") == "Enabled")
        notes = [f"rule {rule.get('ID')} on {self.bucket(source)} is enabled"]
        if len(enabled) > 1:
            notes.append(f"also enabled: {enabled[1][0]} → {enabled[1][1]}")
        dims = {"SourceBucket": self.bucket(source), "DestinationBucket": self.bucket(target),
                "RuleId": rule.get("ID") or ""}
        try:
            m = self.metrics.newest(source, "AWS/S3", dims, {
                "ops": ("OperationsPendingReplication", "Maximum"), "bytes": ("BytesPendingReplication", "Maximum"),
                "latency": ("ReplicationLatency", "Maximum")}, f"S3 replication metrics of {self.bucket(source)}")
        except Unreachable as exc:
            return FlowState(source, target, True, source_reachable=False, detail=f"{'; '.join(notes)}; {exc}")
        now = utc_now(self.clock)
        ops, latency = m["ops"], m["latency"]
        lag_records = None if ops is None else int(ops[1])
        lag_seconds = None if latency is None else float(latency[1])
        age = age_s(now, latency[0] if latency else None)
        if age is not None and age > self.settings.metric_max_age:
            notes.append(f"newest ReplicationLatency is {age:.0f} s old: lag unknown")
            lag_seconds = None
        if ops is None or latency is None:
            notes.append("no replication metric datapoint (S3 publishes them only with RTC metrics on, minutes late)")
        if m["bytes"] is not None:
            notes.append(f"{int(m['bytes'][1])} bytes pending")
        writer = self._storage(target).writer_parameter or self._storage(source).writer_parameter
        paused_at = self.params.paused_since([writer]) if writer else None
        if lag_records == 0 and not after_pause(ops, paused_at, self._refresh()):
            notes.append("writers were paused after the newest OperationsPendingReplication period began: waiting "
                         "for a later one")
            lag_records = None
        pending = self._pending_sample(source) if lag_records != 0 else ()
        return FlowState(source, target, True, lag_records, lag_seconds, True, pending, detail="; ".join(notes))

    def _pending_sample(self, source: str) -> tuple[str, ...]:
        """Up to ``pending_sample`` keys whose newest versions S3 still reports PENDING (or FAILED).

        Bounded on purpose: one page of versions (key order, so not necessarily the newest of the
        bucket), the newest of them asked with HeadObject. The count comes from the metric; these
        keys are examples for the report, not the complete list (S3 Inventory has that, daily)."""
        now = self.clock.monotonic()
        if self._pending and self._pending[1] == source and now - self._pending[0] < self.settings.pending_refresh:
            return self._pending[2]
        bucket = self.bucket(source)
        try:
            page = self.clients.call("s3", source, "list_object_versions", Bucket=bucket,
                                     MaxKeys=self.settings.pending_list_max)
        except ClientError as exc:
            raise fail(exc, f"list versions of {bucket}") from exc
        versions = sorted((v for v in page.get("Versions") or [] if v.get("IsLatest")),
                          key=lambda v: v["LastModified"], reverse=True)[:self.settings.pending_sample]
        pending = []
        for v in versions:
            try:
                head = self.clients.call("s3", source, "head_object", Bucket=bucket, Key=v["Key"],
                                         VersionId=v["VersionId"])
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion"):
                    continue
                raise fail(exc, f"read the replication status of s3://{bucket}/{v['Key']}") from exc
            if head.get("ReplicationStatus") in ("PENDING", "FAILED"):
                pending.append(f"{v['Key']}@{v['VersionId']}")
        self._pending = (now, source, tuple(pending))
        return self._pending[2]

    def _put(self, region: str, config: dict, what: str) -> None:
        try:
            self.clients.call("s3", region, "put_bucket_replication", Bucket=self.bucket(region),
                              ReplicationConfiguration=config)
        except ClientError as exc:
            raise fail(exc, what) from exc

    @staticmethod
    def _with_status(config: dict, rules: list[dict], status: str) -> dict:
        ids = {id(r) for r in rules}
        return {**config, "Rules": [{**r, "Status": status} if id(r) in ids else r for r in config["Rules"]]}

    def stop_flow(self) -> str:
        """Disable (not delete) the enabled rules: the configuration, its role and RTC stay for a restart."""
        found, unreachable = self._directions()
        done = []
        for source, target, config, rules in found:
            on = [r for r in rules if r.get("Status") == "Enabled"]
            if on:
                self._put(source, self._with_status(config, on, "Disabled"),
                          f"disable replication {source} → {target} on {self.bucket(source)}")
                done.append(f"{self.bucket(source)} → {self.bucket(target)} (rule {', '.join(r.get('ID', '?') for r in on)})")
        if unreachable and not done:
            raise Unreachable(f"S3 in {', '.join(unreachable)} does not answer: its replication rule could not be "
                              "disabled; it copies nothing while the region is down, and must be disabled before the "
                              "region's bucket takes writes again (rerun)")
        if not done:
            return "no S3 replication rule was enabled"
        left = f"; S3 in {', '.join(unreachable)} did not answer" if unreachable else ""
        return f"S3 replication disabled: {'; '.join(done)}{left}"

    def _versioned(self, region: str) -> None:
        bucket = self.bucket(region)
        try:
            status = self.clients.call("s3", region, "get_bucket_versioning", Bucket=bucket).get("Status")
        except ClientError as exc:
            raise fail(exc, f"read the versioning of {bucket}") from exc
        if status != "Enabled":
            raise StepFailed(f"bucket {bucket} ({region}) has versioning {status or 'never enabled'}; replication needs "
                             "it on both buckets: `pulumi up` that region's stack (the Bucket component enables it)")

    def start_flow(self, source: str, target: str) -> str:
        self._versioned(source)
        self._versioned(target)
        config = self._config(source)
        rules = self._rules_to(config, target)
        if rules:
            off = [r for r in rules if r.get("Status") != "Enabled"]
            if not off:
                return f"S3 replication {self.bucket(source)} → {self.bucket(target)} is already enabled"
            self._put(source, self._with_status(config, off, "Enabled"),
                      f"enable replication {source} → {target} on {self.bucket(source)}")
            return (f"S3 replication {self.bucket(source)} → {self.bucket(target)} enabled again (rule "
                    f"{', '.join(r.get('ID', '?') for r in off)}); versions written while it was off are not copied "
                    "(S3 Batch Replication copies existing objects)")
        if config and config.get("Rules"):
            raise StepFailed(f"{self.bucket(source)} has a replication configuration that does not copy to "
                             f"{self.bucket(target)}; the runbooks do not overwrite it. Remove or merge it by hand")
        forward = self._config(target)
        role = (forward or {}).get("Role")
        if not role:
            raise StepFailed(f"no role to replicate {source} → {target}: the runbooks reuse the role of the "
                             f"replication {target} → {source}, and {self.bucket(target)} has none. `pulumi up` the "
                             "dr stack (it owns the replication and its role), then rerun")
        dest_key = self.outputs.regions[target].kms_key_arn
        if not dest_key:
            raise BadInput(f"stack outputs: regions.{target}.kms_key_arn is missing; replicas are encrypted with it")
        rule = {
            "ID": REVERSE_RULE_ID, "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Enabled"},
            "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"},
                                        "ReplicaModifications": {"Status": "Enabled"}},
            "Destination": {"Bucket": self._storage(target).data_bucket_arn, "StorageClass": "STANDARD",
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": dest_key},
                            "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                            "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}},
        }
        self._put(source, {"Role": role, "Rules": [rule]},
                  f"put replication {source} → {target} on {self.bucket(source)}")
        return (f"S3 replication {self.bucket(source)} → {self.bucket(target)} configured (rule {REVERSE_RULE_ID}, "
                f"role {role}, replicas encrypted with {dest_key}, RTC 15 min); it copies new versions only")

    def seeding(self, source: str, target: str) -> Seeding:
        """Not knowable by looking, so never claimed: S3 replication copies only versions written
        after its rule is enabled, and a failback's reverse rule is enabled long after DR started
        taking writes (and a home bucket recreated empty holds nothing at all). Copying the existing
        versions is S3 Batch Replication's job: startable when the outputs name the role for it
        (``storage.batch_replication`` of the source region, which the dr stack exports with
        ``failback_replication: true``); otherwise the remedy says how to declare it."""
        src, dst = self.bucket(source), self.bucket(target)
        sentence = (f"S3 replication {src} → {dst} copies only versions written after its rule was enabled: the "
                    f"versions {src} took while nothing copied them to {dst} (everything since the failover), and "
                    f"every version if {dst} was recreated, are not copied by it")
        batch = self._storage(source).batch_replication
        if batch is not None:
            return Seeding(None, f"{sentence}; the runbook copies them with S3 Batch Replication in {source} (role "
                           f"{batch.role_arn})", startable=True)
        stack = self.outputs.regions[source].stack
        return Seeding(
            None, sentence,
            remedy=(f"The stack outputs name no S3 Batch Replication role for {source} "
                    f"(regions.{source}.storage.batch_replication), so the runbook cannot copy them itself and "
                    f"started nothing. Declare it: `pulumi config set failback_replication true --stack {stack}` "
                    f"(with promoted: true) and `pulumi up --stack {stack}`, then rerun the failback with the "
                    f"new outputs. Or copy them yourself with S3 Batch Replication in {source}: a job with a "
                    f"manifest generated from {src} (filter EligibleForReplication, ObjectReplicationStatuses NONE, "
                    "FAILED and REPLICA), operation S3ReplicateObject, and a role trusted by "
                    "batchoperations.s3.amazonaws.com (docs/aws-adapters.md); when it is Complete with no failed "
                    "task, rerun the failback with --resume --objects-seeded (audited)"))

    # ---- S3 Batch Replication (the failback's seeding) --------------------------------------

    def _batch(self, source: str) -> tuple[BatchReplication, str]:
        """The source region's batch replication settings and the account (from the role's ARN)."""
        batch = self._storage(source).batch_replication
        if batch is None:
            raise StepFailed(f"stack outputs: regions.{source}.storage.batch_replication is missing; no S3 Batch "
                             "Replication job can be started (nothing was created). "
                             + self.seeding(source, self._other(source)).remedy)
        return batch, batch.role_arn.split(":")[4]

    @staticmethod
    def _seed_key(token: str, src: str, dst: str) -> str:
        """The run's key for its jobs: derived from the run id and the two buckets, so the same
        run finds its job again and another run never takes it for its own."""
        return hashlib.sha256(f"{token}|{src}|{dst}".encode()).hexdigest()[:24]

    def _seed_jobs(self, source: str, account: str, key: str) -> list[tuple[int, str]]:
        """(attempt, job id) of this run's seeding jobs in the source region, oldest attempt first."""
        marker = re.compile(rf"^regionpair failback seed {key}#(\d+):")
        found: list[tuple[int, str]] = []
        params: dict[str, Any] = {"AccountId": account, "MaxResults": 1000}
        for _ in range(self.settings.seed_job_list_pages):
            try:
                page = self.clients.call("s3control", source, "list_jobs", **params)
            except ClientError as exc:
                raise fail(exc, f"list the S3 Batch Operations jobs in {source}") from exc
            for job in page.get("Jobs") or []:
                m = marker.match(job.get("Description") or "")
                if m and job.get("Operation") == SEED_OPERATION:
                    found.append((int(m.group(1)), job["JobId"]))
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        return sorted(found)

    def start_seeding(self, source: str, target: str, token: str) -> SeedJob:
        batch, account = self._batch(source)
        src, dst = self.bucket(source), self.bucket(target)
        rules = [r for r in self._rules_to(self._config(source), target) if r.get("Status") == "Enabled"]
        if not rules:
            # the job replicates through the bucket's rules: without one its manifest is empty and it
            # would end Complete having copied nothing
            raise StepFailed(f"no enabled replication rule on {src} copies to {dst}: S3 Batch Replication copies "
                             "through the bucket's replication configuration, so a job now would copy nothing. "
                             f"Enable replication {source} → {target} first (the failback's replicate step does), "
                             "then rerun; no job was created")
        key = self._seed_key(token, src, dst)
        jobs = self._seed_jobs(source, account, key)
        attempt = 1
        if jobs:
            last_attempt, job_id = jobs[-1]
            job = self.seed_job(source, job_id, attempt=last_attempt)
            if not (job.status in _JOB_ENDED_BADLY or (job.status == "Complete" and not job.succeeded)):
                return job  # running, finished well, or waiting for a person: never a second job beside it
            attempt = last_attempt + 1
        report_bucket = f"arn:{self._partition(batch)}:s3:::{batch.report_bucket}"
        request = {
            "AccountId": account, "ConfirmationRequired": False, "Priority": self.settings.seed_job_priority,
            "ClientRequestToken": f"regionpair-{key}-{attempt}", "RoleArn": batch.role_arn,
            "Description": f"regionpair failback seed {key}#{attempt}: {src} -> {dst}"[:256],
            "Operation": {SEED_OPERATION: {}},
            "Report": {"Enabled": True, "Bucket": report_bucket, "Prefix": f"{batch.report_prefix}/reports",
                       "Format": "Report_CSV_20180820", "ReportScope": "FailedTasksOnly",
                       "ExpectedBucketOwner": account},
            "ManifestGenerator": {"S3JobManifestGenerator": {
                "ExpectedBucketOwner": account, "SourceBucket": self._storage(source).data_bucket_arn,
                "EnableManifestOutput": True,
                "ManifestOutputLocation": {"ExpectedManifestBucketOwner": account, "Bucket": report_bucket,
                                           "ManifestPrefix": f"{batch.report_prefix}/manifests",
                                           "ManifestFormat": "S3InventoryReport_CSV_20211130"},
                "Filter": {"EligibleForReplication": True, "ObjectReplicationStatuses": list(SEED_STATUSES)}}},
        }
        try:
            job_id = self.clients.call("s3control", source, "create_job", **request)["JobId"]
        except ClientError as exc:
            raise fail(exc, f"start S3 Batch Replication of {src} → {dst} in {source}") from exc
        log.info("S3 Batch Replication job %s created (attempt %d) in %s", job_id, attempt, source)
        again = f" (attempt {attempt}, after job {jobs[-1][1]} ended without copying everything)" if jobs else ""
        return SeedJob(job_id, "New", False, False, f"S3 Batch Replication job {job_id} created in {source}: "
                       f"{src} → {dst}{again}", attempt=attempt, created=True, report=self._report(batch, job_id))

    @staticmethod
    def _partition(batch: BatchReplication) -> str:
        return batch.role_arn.split(":")[1]

    @staticmethod
    def _report(batch: BatchReplication, job_id: str) -> str:
        return f"s3://{batch.report_bucket}/{batch.report_prefix}/reports/job-{job_id}/"

    def seed_job(self, source: str, job_id: str, attempt: int = 1) -> SeedJob:
        batch, account = self._batch(source)
        try:
            job = self.clients.call("s3control", source, "describe_job", AccountId=account, JobId=job_id)["Job"]
        except ClientError as exc:
            raise fail(exc, f"read S3 Batch Operations job {job_id} in {source}") from exc
        status = job.get("Status") or "unknown"
        progress = job.get("ProgressSummary") or {}
        total = progress.get("TotalNumberOfTasks")
        done, failed = progress.get("NumberOfTasksSucceeded") or 0, progress.get("NumberOfTasksFailed") or 0
        report = self._report(batch, job_id)
        name = f"S3 Batch Replication job {job_id} ({source}, attempt {attempt})"
        of = f"{done} of {total if total is not None else 'unknown'} versions replicated, {failed} failed"

        def result(finished: bool, succeeded: bool, sentence: str) -> SeedJob:
            return SeedJob(job_id, status, finished, succeeded, sentence, attempt=attempt, failed_tasks=failed,
                           report=report)
        if status == "Complete" and not failed:
            active = (progress.get("Timers") or {}).get("ElapsedTimeInActiveSeconds")
            return result(True, True, f"{name} is Complete: {of}" + (f" in {active} s active" if active else ""))
        if status == "Complete":
            return result(True, False, f"{name} is Complete with {failed} failed task(s) of "
                          f"{total if total is not None else 'unknown'}: those versions did not reach "
                          f"{self.bucket(self._other(source))}. The completion report lists them: {report}. Fix the "
                          "cause (often a KMS or bucket permission of the replication role), then rerun the failback: "
                          "it starts a new job for the versions still not replicated (or copy them another way and "
                          "rerun with --objects-seeded)")
        if status in _JOB_ENDED_BADLY:
            reasons = ("; ".join(f"{r.get('FailureCode', '?')}: {r.get('FailureReason', '')}"
                                 for r in job.get("FailureReasons") or [])
                       or job.get("StatusUpdateReason") or "no reason given")
            return result(True, False, f"{name} is {status} ({reasons}); {of}. Fix the cause, then rerun the failback: "
                          f"it starts a new job (or copy them another way and rerun with --objects-seeded)")
        if status == "Suspended":
            return result(True, False, f"{name} is Suspended ({job.get('SuspendedCause') or 'no cause given'}): it "
                          "waits for a confirmation the runbook does not give. Confirm it (`aws s3control "
                          f"update-job-status --region {source} --account-id {account} --job-id {job_id} "
                          "--requested-job-status Ready`) or cancel it, then rerun the failback")
        return result(False, False, f"{name} is {status}: {of}")

    def writers(self, parameter: str) -> str | None:
        return self.params.read(parameter)

    def point_writers(self, parameter: str, value: str) -> str:
        return self.params.write(parameter, value)
