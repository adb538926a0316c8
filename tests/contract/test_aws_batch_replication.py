"""The failback's seeding of the home bucket in AWS: S3 Batch Replication started, found again and
watched by the S3 adapter (runbooks/adapters/aws/s3_replication.py), on botocore's Stubber with the real
s3control and s3 service models (moto 5.2.5 has no S3 Batch Operations jobs). Every request the
adapter makes is checked against the model and against the exact parameters expected here; a call
nobody expected fails the test, so "nothing was created" is asserted by the Stubber itself.

Nothing here ran against AWS: that S3 accepts the job, that the role's policy suffices and how
long a job takes are not proven."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from types import SimpleNamespace

import botocore.session
import pytest

from runbooks.adapters.aws.s3_replication import S3Objects
from runbooks.core.errors import StepFailed, StepTimeout
from runbooks.plans.context import Timeouts
from runbooks.plans.s3 import seed_with_job
from tests.contract.aws_helpers import ACCOUNT, ROLE, StreamStubs as Stubs, streams_document
from tests.helpers.moto import P, S

BATCH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/data-batch-replication-role-1a2b3c"
REPORTS = "regionpair-dr-backups"
PREFIX = "regionpair/batch-replication"
DR_DATA, PROD_DATA = "regionpair-dr-data", "regionpair-prod-data"
RUN = "failback-20261122T101500-ab12"


def batch_document() -> dict:
    """The pair as the dr stack exports it with ``failback_replication: true``."""
    doc = copy.deepcopy(streams_document())
    doc["regions"][S]["storage"]["batch_replication"] = {"role_arn": BATCH_ROLE, "report_bucket": REPORTS,
                                                         "report_prefix": PREFIX}
    return doc


def reverse_config(status="Enabled") -> dict:
    """What the failback's replicate step put on the DR bucket (aws_streams.start_flow)."""
    return {"Role": ROLE, "Rules": [{
        "ID": "regionpair-failback", "Priority": 1, "Status": status, "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{PROD_DATA}"}}]}


class Batch(Stubs):
    """Stubs with the two clients the seeding uses in DR's region: s3 (the rule) and s3control (jobs)."""

    def __init__(self, doc=None):
        super().__init__(doc or batch_document())
        self.s3 = self.stub("s3", S)
        self.jobs = self.stub("s3control", S)

    def rule(self, config=None):
        if config is None:
            self.s3.add_client_error("get_bucket_replication", "ReplicationConfigurationNotFoundError",
                                     http_status_code=404, expected_params={"Bucket": DR_DATA})
        else:
            self.s3.add_response("get_bucket_replication", {"ReplicationConfiguration": config}, {"Bucket": DR_DATA})

    def listed(self, *jobs, next_token=None, after=None):
        params = {"AccountId": ACCOUNT, "MaxResults": 1000}
        if after:
            params["NextToken"] = after
        answer = {"Jobs": list(jobs)}
        if next_token:
            answer["NextToken"] = next_token
        self.jobs.add_response("list_jobs", answer, params)

    def described(self, job_id, status, total=None, succeeded=0, failed=0, **extra):
        job = {"JobId": job_id, "Status": status, "Priority": 10,
               "ProgressSummary": {"NumberOfTasksSucceeded": succeeded, "NumberOfTasksFailed": failed,
                                   **({"TotalNumberOfTasks": total} if total is not None else {})}, **extra}
        self.jobs.add_response("describe_job", {"Job": job}, {"AccountId": ACCOUNT, "JobId": job_id})

    def created(self, job_id, key, attempt=1):
        self.jobs.add_response("create_job", {"JobId": job_id}, create_request(key, attempt))


def create_request(key: str, attempt: int = 1) -> dict:
    """The exact CreateJob request of a seeding job."""
    reports = f"arn:aws:s3:::{REPORTS}"
    return {
        "AccountId": ACCOUNT, "ConfirmationRequired": False, "Priority": 10,
        "ClientRequestToken": f"regionpair-{key}-{attempt}", "RoleArn": BATCH_ROLE,
        "Description": f"regionpair failback seed {key}#{attempt}: {DR_DATA} -> {PROD_DATA}",
        "Operation": {"S3ReplicateObject": {}},
        "Report": {"Enabled": True, "Bucket": reports, "Prefix": f"{PREFIX}/reports", "Format": "Report_CSV_20180820",
                   "ReportScope": "FailedTasksOnly", "ExpectedBucketOwner": ACCOUNT},
        "ManifestGenerator": {"S3JobManifestGenerator": {
            "ExpectedBucketOwner": ACCOUNT, "SourceBucket": f"arn:aws:s3:::{DR_DATA}", "EnableManifestOutput": True,
            "ManifestOutputLocation": {"ExpectedManifestBucketOwner": ACCOUNT, "Bucket": reports,
                                       "ManifestPrefix": f"{PREFIX}/manifests",
                                       "ManifestFormat": "S3InventoryReport_CSV_20211130"},
            "Filter": {"EligibleForReplication": True, "ObjectReplicationStatuses": ["NONE", "FAILED", "REPLICA"]}}},
    }


def listing(job_id, key, attempt=1, status="Active", description=None):
    return {"JobId": job_id, "Operation": "S3ReplicateObject", "Status": status, "Priority": 10,
            "CreationTime": datetime(2026, 11, 22, tzinfo=timezone.utc),
            "Description": description or f"regionpair failback seed {key}#{attempt}: {DR_DATA} -> {PROD_DATA}"}


KEY = S3Objects._seed_key(RUN, DR_DATA, PROD_DATA)


# ---- what the step is told before it acts ---------------------------------------------------


def test_seeding_is_startable_only_where_the_outputs_name_the_batch_role():
    s = Batch()
    seeding = s.objects().seeding(S, P)
    assert seeding.complete is None and seeding.startable
    assert "copies only versions written after its rule was enabled" in seeding.sentence
    assert BATCH_ROLE in seeding.sentence
    s.done()

    old = Batch(streams_document())  # stacks from before failback_replication declared the role
    seeding = old.objects().seeding(S, P)
    assert seeding.complete is None and not seeding.startable
    assert "regions.us-west-2.storage.batch_replication" in seeding.remedy
    assert "pulumi config set failback_replication true --stack dr" in seeding.remedy
    assert "pulumi up --stack dr" in seeding.remedy and "--objects-seeded" in seeding.remedy
    old.done()


def test_missing_role_is_refused_with_the_stack_config_to_set_and_nothing_is_created():
    s = Batch(streams_document())  # no call is stubbed: any AWS call would fail the test
    with pytest.raises(StepFailed) as err:
        s.objects().start_seeding(S, P, RUN)
    message = str(err.value)
    assert "regions.us-west-2.storage.batch_replication is missing" in message and "nothing was created" in message
    assert "pulumi config set failback_replication true --stack dr" in message and "pulumi up --stack dr" in message
    s.done()


def test_no_job_is_created_while_no_rule_copies_dr_to_home():
    """The job replicates through the bucket's rules: without the reverse rule (or with it
    disabled) it would end Complete having copied nothing."""
    for config in (None, reverse_config("Disabled")):
        s = Batch()
        s.rule(config)
        with pytest.raises(StepFailed, match=r"no enabled replication rule on regionpair-dr-data copies to "
                                             r"regionpair-prod-data.*no job was created"):
            s.objects().start_seeding(S, P, RUN)
        s.done()


# ---- starting, finding again, watching ---------------------------------------------------------


def test_the_job_is_started_once_with_the_exact_request_and_watched_until_complete():
    s = Batch()
    s.rule(reverse_config())
    s.listed(listing("other-1", "x", description="someone else's copy job"))  # not ours: never adopted
    s.created("job-1", KEY)
    s.described("job-1", "Preparing")
    s.described("job-1", "Active", total=120, succeeded=40)
    s.described("job-1", "Complete", total=120, succeeded=120,
                ProgressSummary={"TotalNumberOfTasks": 120, "NumberOfTasksSucceeded": 120, "NumberOfTasksFailed": 0,
                                 "Timers": {"ElapsedTimeInActiveSeconds": 95}})
    o = s.objects()
    job = o.start_seeding(S, P, RUN)
    assert (job.job_id, job.created, job.attempt, job.finished) == ("job-1", True, 1, False)
    assert job.report == f"s3://{REPORTS}/{PREFIX}/reports/job-job-1/"
    assert o.seed_job(S, "job-1").status == "Preparing"
    active = o.seed_job(S, "job-1")
    assert not active.finished and "40 of 120 versions replicated, 0 failed" in active.sentence
    done = o.seed_job(S, "job-1")
    assert done.finished and done.succeeded and "is Complete: 120 of 120 versions replicated" in done.sentence
    s.done()


def test_the_token_is_the_run_ids_own_and_fits_the_api():
    key = S3Objects._seed_key(RUN, DR_DATA, PROD_DATA)
    assert key == S3Objects._seed_key(RUN, DR_DATA, PROD_DATA)
    assert key != S3Objects._seed_key("failback-20261122T111500-cd34", DR_DATA, PROD_DATA)
    # the limits come from the service model the real client validates against
    model = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob")
    members = model.input_shape.members
    request = create_request(key, attempt=99)
    assert len(request["ClientRequestToken"]) <= members["ClientRequestToken"].metadata["max"]
    assert len(request["Description"]) <= members["Description"].metadata["max"]


def test_a_rerun_of_the_same_run_finds_the_job_and_creates_no_second_one():
    """A crash after CreateJob: the rerun (same run id) lists the jobs, finds its own by the key in
    the description (also on a later ListJobs page) and watches it. No create_job is stubbed."""
    s = Batch()
    s.rule(reverse_config())
    s.listed(listing("other-1", "x", description="nightly copy"), next_token="page-2")
    s.listed(listing("job-1", KEY, status="Active"), after="page-2")
    s.described("job-1", "Active", total=10, succeeded=3)
    job = s.objects().start_seeding(S, P, RUN)
    assert (job.job_id, job.created, job.finished) == ("job-1", False, False)
    s.done()

    # finished well: found again and reported as done, still no second job
    s = Batch()
    s.rule(reverse_config())
    s.listed(listing("job-1", KEY, status="Complete"))
    s.described("job-1", "Complete", total=10, succeeded=10)
    job = s.objects().start_seeding(S, P, RUN)
    assert job.finished and job.succeeded and not job.created
    s.done()


def test_failed_tasks_are_a_loud_failure_naming_the_count_and_the_report_and_a_rerun_starts_attempt_two():
    s = Batch()
    s.described("job-1", "Complete", total=500, succeeded=497, failed=3)
    job = s.objects().seed_job(S, "job-1")
    assert job.finished and not job.succeeded and job.failed_tasks == 3
    assert "3 failed task(s) of 500" in job.sentence
    assert f"s3://{REPORTS}/{PREFIX}/reports/job-job-1/" in job.sentence
    s.done()

    s = Batch()
    s.rule(reverse_config())
    s.listed(listing("job-1", KEY, status="Complete"))
    s.described("job-1", "Complete", total=500, succeeded=497, failed=3)
    s.created("job-2", KEY, attempt=2)
    again = s.objects().start_seeding(S, P, RUN)
    assert (again.job_id, again.attempt, again.created) == ("job-2", 2, True)
    assert "attempt 2, after job job-1" in again.sentence
    s.done()


def test_a_failed_cancelled_or_suspended_job_says_why_and_what_to_do():
    s = Batch()
    s.described("job-1", "Failed", FailureReasons=[{"FailureCode": "AccessDenied",
                                                    "FailureReason": "cannot write the manifest"}])
    s.described("job-2", "Cancelled", StatusUpdateReason="cancelled by user")
    s.described("job-3", "Suspended", SuspendedCause="awaiting confirmation")
    o = s.objects()
    failed, cancelled, suspended = (o.seed_job(S, j) for j in ("job-1", "job-2", "job-3"))
    assert failed.finished and not failed.succeeded and "AccessDenied: cannot write the manifest" in failed.sentence
    assert cancelled.finished and "cancelled by user" in cancelled.sentence
    assert suspended.finished and not suspended.succeeded
    assert "--job-id job-3 --requested-job-status Ready" in suspended.sentence
    s.done()

    # a suspended job is left for a person: the rerun does not start a second one beside it
    s = Batch()
    s.rule(reverse_config())
    s.listed(listing("job-3", KEY, status="Suspended"))
    s.described("job-3", "Suspended", SuspendedCause="awaiting confirmation")
    job = s.objects().start_seeding(S, P, RUN)
    assert job.job_id == "job-3" and not job.created
    s.done()


def test_access_denied_on_create_job_names_the_call_for_the_runbook_role():
    from runbooks.adapters.aws import AwsCallFailed
    s = Batch()
    s.rule(reverse_config())
    s.listed()
    s.jobs.add_client_error("create_job", "AccessDenied", http_status_code=403,
                            expected_params=create_request(KEY))
    with pytest.raises(AwsCallFailed, match="CreateJob was denied"):
        s.objects().start_seeding(S, P, RUN)
    s.done()


# ---- the step and the adapter together ------------------------------------------------------


def step_context(s: Batch, seed_objects: float = 3600.0):
    notes = []
    ctx = SimpleNamespace(source=S, target=P, run_id=RUN, ports=SimpleNamespace(clock=s.clock),
                          timeouts=Timeouts(seed_objects=seed_objects),
                          note=lambda event, **fields: notes.append((event, fields)))
    return ctx, notes


def test_the_step_starts_the_job_records_it_and_waits_on_the_runbooks_clock():
    s = Batch()
    s.rule(reverse_config())
    s.listed()
    s.created("job-1", KEY)
    s.described("job-1", "Active", total=8, succeeded=1)
    s.described("job-1", "Complete", total=8, succeeded=8)
    ctx, notes = step_context(s)
    start = s.clock.monotonic()
    result = seed_with_job(ctx, s.objects())
    assert "job-1" in result and "is Complete: 8 of 8 versions replicated" in result and "started" in result
    assert notes == [("objects-seed-job", {"job_id": "job-1", "attempt": 1, "created": True, "status": "New",
                                           "report": f"s3://{REPORTS}/{PREFIX}/reports/job-job-1/"})]
    assert s.clock.monotonic() > start  # it slept on the runbook's (fake) clock between reads
    s.done()


def test_the_step_without_a_run_id_starts_nothing():
    s = Batch()  # nothing stubbed: any call would fail the test
    ctx, notes = step_context(s)
    ctx.run_id = None
    with pytest.raises(StepFailed, match="no run id"):
        seed_with_job(ctx, s.objects())
    assert notes == []
    s.done()


def test_the_step_fails_on_failed_tasks_and_at_its_deadline_leaves_the_job_running():
    s = Batch()
    s.rule(reverse_config())
    s.listed()
    s.created("job-1", KEY)
    s.described("job-1", "Complete", total=8, succeeded=6, failed=2)
    ctx, _ = step_context(s)
    with pytest.raises(StepFailed, match=r"2 failed task\(s\) of 8.*reports/job-job-1/"):
        seed_with_job(ctx, s.objects())
    s.done()

    s = Batch()
    s.rule(reverse_config())
    s.listed()
    s.created("job-1", KEY)
    for _ in range(4):
        s.described("job-1", "Active", total=8, succeeded=1)
    ctx, _ = step_context(s, seed_objects=20.0)  # reads at 0, 5, 12.5 and 20 s of the fake clock
    with pytest.raises(StepTimeout, match=r"job-1 .*is Active.*not finished after 20 s.*waits for this same job"):
        seed_with_job(ctx, s.objects())
    s.done()
