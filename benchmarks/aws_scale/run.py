"""Failover of N databases through the AWS adapters, with AWS's own waits and limits modelled.

    .venv/bin/python -m benchmarks.aws_scale [--sizes 1,10,50] [--promotion-seconds 300]

The sandbox's N-database figure measures two cores hosting 2N PostgreSQL servers. In AWS the
servers are not ours: what the runbook adds is its own parallelism, its polling and the API
quotas it shares with everything else in the account. This benchmark runs the real failover
runbook (gates, fence, unfence, promote, DNS, verify; its engine, plans and AWS adapters
unchanged) against:

- moto, in-process, for the AWS APIs (RDS, EC2 security groups, Route53, S3 lock, SNS, Secrets
  Manager): the pair has the stacks' shape, N primaries in us-east-1 behind one database security
  group, N cross-region replicas in us-west-2 behind another, a failover pair of records per
  database, every PRIMARY guarded by the one pin check the runbook inverts;
- a model of what moto does not do, each figure from AWS's documentation:
  - promotion of a read replica takes `--promotion-seconds` (default 300, the stacks'
    `expected_promotion_seconds`; the RDS User Guide says promotion takes "a few minutes"): until
    then DescribeDBInstances shows the instance `modifying`, still a replica, and SQL shows it in
    recovery;
  - RDS API throttling per account and region: a token bucket of 300 requests, refilled at 12 per
    second (RDS User Guide, "Request throttling for the Amazon RDS API");
  - Route 53 API throttling per account: a bucket of 50 requests refilled at 10 per second, shared by
    every operation (Route 53 Developer Guide, "Throttling for Amazon Route 53 API requests");
  - a throttled request is retried the way the adapters' botocore client would (standard retry
    mode, `AwsSettings.max_attempts` attempts in all, jittered exponential back-off), then fails
    with `ThrottlingException` / `Throttling` as AWS would answer it;
  - every control-plane call costs `--api-latency` seconds (0.1 s: an assumption, not a documented
    figure) and every SQL connection `--sql-latency` (0.05 s, likewise); EC2's throttling is not
    modelled (its quotas per action are not all published).
- a stand-in for PostgreSQL at the SQL port's boundary (the adapter's `connect`), which answers
  the adapter's queries from the modelled promotion state; database endpoints resolve to loopback
  listeners, so the health probe's TCP connect is real.

Time is a virtual clock injected into the runbook: it moves only when every thread that uses it
waits on it, so five minutes of promotion cost no five minutes here, and the runbook's own work
costs no virtual time. The figure is the runbook's duration in virtual seconds (its journal's
first event to its last step); the target is N=50 within 1.1x of N=1. Beside it: the runbook's
own CPU per database (process CPU minus what moto and the stand-ins spent), and the throttled
requests.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
from dataclasses import dataclass

from benchmarks.aws_scale.aws_model import Model, ModelledClients
from benchmarks.aws_scale.standins import P, SqlSession, build_pair, loopback_listeners, resolve_to_loopback
from benchmarks.aws_scale.virtual_clock import VirtualClock


@dataclass
class Result:
    n: int
    code: int
    seconds: float | None
    runbook_cpu: float
    calls: dict[str, int]
    throttled: dict[str, int]
    failed: dict[str, int]
    error: str | None
    steps: dict[str, float]



def one(n: int, args: argparse.Namespace, seed: int) -> Result:
    import boto3
    from moto import mock_aws

    from contract import outputs as contract
    from runbooks import failover
    from runbooks.adapters.aws import AwsSettings, aws_ports

    clock = VirtualClock()
    settings = AwsSettings()
    model = Model(clock, args.promotion_seconds, args.api_latency, args.sql_latency, settings.max_attempts,
                  random.Random(seed))
    try:
        with mock_aws(), loopback_listeners(2 * n) as ports, resolve_to_loopback(".rds.amazonaws.com"):
            session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench",
                                            region_name=P)
            doc, servers = build_pair(session, n, ports, model)
            outputs_file = io.StringIO(json.dumps(doc))
            path = args.workdir / f"outputs-{n}.json"
            path.write_text(outputs_file.getvalue())

            def connect(info):
                clock.sleep(model.sql_latency)
                return SqlSession(servers[info.host])

            def ports_factory(outputs: contract.Outputs, clk):
                return aws_ports(outputs, clk, clients=ModelledClients(session, model), connect=connect)

            out = io.StringIO()
            cpu0 = time.process_time()
            code = failover.main(["--outputs", str(path), "--yes", "--output", "json",
                                  "--state-dir", str(args.workdir / f"state-{n}-{seed}")],
                                 ports_factory=ports_factory, clock=clock, stdout=out)
            cpu = time.process_time() - cpu0
            result = json.loads(out.getvalue())
    finally:
        clock.stop()
    cpu -= clock.cpu  # the driver's, which slept through the set-up
    steps: dict[str, float] = {}
    for s in result.get("steps") or []:
        kind = str(s.get("step", s.get("name", "?"))).split(":")[0]
        if s.get("seconds") is not None:
            steps[kind] = max(steps.get(kind, 0.0), float(s["seconds"]))
    return Result(n, code, result.get("rto_seconds"), max(cpu - model.service_cpu, 0.0), dict(model.calls),
                  dict(model.throttled), dict(model.failed), result.get("error"), steps)



def main(argv: list[str] | None = None) -> int:
    import tempfile
    from pathlib import Path

    p = argparse.ArgumentParser(prog="python -m benchmarks.aws_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,10,50", help="database counts, comma-separated (default 1,10,50)")
    p.add_argument("--repeat", type=int, default=1, help="runs per size (default 1; the model is deterministic "
                   "but for the throttling back-off's jitter)")
    p.add_argument("--promotion-seconds", type=float, default=300.0,
                   help="how long RDS takes to promote a replica (default 300)")
    p.add_argument("--api-latency", type=float, default=0.1, help="seconds per control-plane call (default 0.1)")
    p.add_argument("--sql-latency", type=float, default=0.05, help="seconds per SQL connection (default 0.05)")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"failover through the AWS adapters; promotion {args.promotion_seconds:g} s, API call "
          f"{args.api_latency:g} s, SQL connection {args.sql_latency:g} s; RDS quota 300 burst / 12 per s per "
          "region, Route 53 quota 50 burst / 10 per s per account", flush=True)
    print(f"{'databases':>9}  {'virtual s':>9}  {'x N=' + str(sizes[0]):>7}  {'runbook CPU s/db':>16}  "
          f"{'real s':>6}  calls (throttled)", flush=True)
    base = None
    code = 0
    with tempfile.TemporaryDirectory(prefix="regionpair-aws-scale-") as tmp:
        args.workdir = Path(tmp)
        for n in sizes:
            runs = []
            for r in range(args.repeat):
                t0 = time.monotonic()
                res = one(n, args, seed=r)
                runs.append((res, time.monotonic() - t0))
            ok = [res for res, _ in runs if res.code == 0 and res.seconds is not None]
            res, real = runs[-1]
            calls = ", ".join(f"{svc} {c} ({res.throttled.get(svc, 0)})" for svc, c in sorted(res.calls.items()))
            if not ok:
                code = 1
                print(f"{n:>9}  FAILED (exit {res.code}): {res.error}", flush=True)
                if res.failed:
                    print(f"{'':>11}requests that failed after every retry: "
                          + ", ".join(f"{k} {v}" for k, v in sorted(res.failed.items())), flush=True)
                print(f"{'':>11}{calls}", flush=True)
                continue
            seconds = statistics.median(r.seconds for r in ok)
            base = base if base is not None else seconds
            per_db = statistics.median(r.runbook_cpu for r in ok) / n
            print(f"{n:>9}  {seconds:9.1f}  {seconds / base:7.2f}  {per_db:16.4f}  {real:6.1f}  {calls}", flush=True)
            if res.failed:
                print(f"{'':>11}throttled past botocore's own attempts (the adapter tried them again): "
                      + ", ".join(f"{k} {v}" for k, v in sorted(res.failed.items())), flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
