"""The clients every AWS adapter calls through (runbooks/adapters/aws/clients.py and wiring.py):
the factory contacts nothing, a dead region fails fast (moto, a closed port), a 5xx is Unreachable,
AccessDenied names the fix and is not tried again, a throttled call waits on the runbook's clock
(botocore's Stubber)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from runbooks import adapters
from runbooks.adapters import aws
from runbooks.core.clock import FakeClock
from runbooks.core.errors import Unreachable
from tests.contract.aws_helpers import (
    PRIMARY_ARN,
    Stubs,
    instance,
    ports,
)
from tests.helpers.moto import P, S, closed_port


def test_factory_picks_the_aws_adapter_and_contacts_nothing(moto_pair):
    p = adapters.ports_for(moto_pair.outputs, moto_pair.clock)
    assert isinstance(p.db, aws.RdsControl) and isinstance(p.lock, aws.S3Lock)
    assert p.db.clients._clients == {}  # no client before the first call
    assert "state_dir" not in p.extras


def test_importing_the_adapter_builds_no_client_and_reads_no_environment():
    code = ("import os; os.environ['AWS_ENDPOINT_URL']='http://127.0.0.1:9'; import runbooks.adapters.aws as a; "
            "import boto3; assert boto3.DEFAULT_SESSION is None; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "ok", out.stderr


def test_unreachable_region_fails_fast(moto_pair, aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    p = ports(moto_pair)
    t0 = time.monotonic()
    d = p.db.describe(P, "payments")
    assert (d.status, d.role) == ("unreachable", "unknown")
    with pytest.raises(Unreachable, match="rds in us-east-1 did not answer"):
        p.db.fence(P, "payments")
    assert not p.health.region(P).healthy
    with pytest.raises(Unreachable):
        p.lock.acquire({"run_id": "r1", "runbook": "failover", "who": "a", "since": "t"})
    assert time.monotonic() - t0 < 10


def test_region_answering_5xx_is_unreachable_and_access_denied_names_the_fix():
    s = Stubs()
    rds = s.stub("rds", P)
    rds.add_client_error("promote_read_replica", "InternalFailure", "boom", 503)
    rds.add_client_error("describe_db_instances", "AccessDenied", "not authorized", 403)
    p = s.ports()
    with pytest.raises(Unreachable, match="HTTP 503"):
        s.clients.call("rds", P, "promote_read_replica", DBInstanceIdentifier="prod-payments")
    with pytest.raises(aws.AwsCallFailed, match="DescribeDBInstances was denied .* runbook role's policy"):
        p.db.promote(P, "payments")


def test_a_throttled_call_is_tried_again_on_the_runbooks_clock_until_it_goes_through():
    """A failover of many databases meets AWS's API quotas (RDS: 300 burst, 12 per second per
    region). A throttle is the region answering: the adapter waits and tries again instead of
    failing the step, paced by the runbook's clock."""
    s = Stubs()
    rds = s.stub("rds", S)
    for _ in range(3):
        rds.add_client_error("describe_db_instances", service_error_code="ThrottlingException",
                             service_message="Rate exceeded", http_status_code=400)
    rds.add_response("describe_db_instances", {"DBInstances": [instance("dr-payments", S, source=PRIMARY_ARN)]})
    ports = s.ports()
    start = s.clock.monotonic()
    assert ports.db.describe(S, "payments").role == "replica"
    waited = s.clock.monotonic() - start
    assert 0 < waited <= 0.5 + 1.0 + 2.0, f"three jittered back-offs (at most 0.5, 1, 2 s), not {waited}"
    s.done()


def test_a_call_throttled_past_the_deadline_fails_naming_the_throttle():
    s = Stubs()
    s.clients.settings = aws.AwsSettings(throttle_deadline=5.0)
    rds = s.stub("rds", S)
    for _ in range(40):
        rds.add_client_error("promote_read_replica", service_error_code="Throttling", service_message="Rate exceeded",
                             http_status_code=400)
    s.ports()  # the adapters built over the stubbed clients, as a runbook would
    start = s.clock.monotonic()
    with pytest.raises(aws.AwsCallFailed, match="Throttling"):
        s.clients.call("rds", S, "promote_read_replica", DBInstanceIdentifier="dr-payments")
    assert 5.0 <= s.clock.monotonic() - start < 5.0 + 1e-6, "it gives up at the deadline, not before or long after"


def test_an_access_denied_answer_is_not_tried_again():
    s = Stubs()
    rds = s.stub("rds", S)
    rds.add_client_error("describe_db_instances", service_error_code="AccessDenied",
                         service_message="not authorized to perform rds:DescribeDBInstances", http_status_code=403)
    ports = s.ports()
    with pytest.raises(aws.AwsCallFailed, match="AccessDenied"):
        ports.db.describe(S, "payments")
    assert s.clock.monotonic() == FakeClock().monotonic(), "no wait before failing a refusal"
    s.done()
