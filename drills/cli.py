"""`python -m runbooks.drill`: the drill's options, their checks, and the entry point that runs a
sandbox drill, a broker loss or an AWS drill-stacks run and prints its summary or report document.

    python -m runbooks.drill [--target sandbox|stacks] [--scenario region-outage|switchover|db-loss|broker-loss]
                             [--replication sync|async] [--failback] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from drills import broker_loss
from drills.report import summary_lines
from drills.sandbox_drill import SandboxDrill
from runbooks.core import helptext
from runbooks.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RunbookError

DESCRIPTION = "Drills: a whole failover rehearsed and measured from what clients saw acknowledged."

SCENARIOS = ("region-outage", "switchover", "db-loss", "broker-loss")

DRILL_EXIT_CODES = helptext.exit_codes(
    (0, "the drill passed"),
    (1, "it failed: the report says why (a step, an objective, a loss, an endpoint, a notification)"),
    (2, "bad input: nothing was started"), (130, "interrupted: the sandbox was stopped (drill stacks: destroyed)"))


def parser() -> argparse.ArgumentParser:
    from sandbox import DEFAULT_SYSTEMS
    p = argparse.ArgumentParser(prog="python -m runbooks.drill", description=DESCRIPTION,
                                formatter_class=helptext.Formatter, epilog=DRILL_EXIT_CODES)
    p.add_argument("--target", choices=["sandbox", "stacks"], default="sandbox",
                   help="sandbox: a local region pair started for the drill; stacks: ephemeral AWS drill stacks")
    p.add_argument("--scenario", choices=SCENARIOS, default="region-outage",
                   help="region-outage: the primary region and its link die; switchover: planned, zero loss; "
                        "db-loss: the primary databases die, the region lives; broker-loss: one of three Kafka "
                        "brokers of the primary region is SIGKILLed, nothing acknowledged is lost, nothing fails over")
    p.add_argument("--replication", choices=["sync", "async"], default="sync",
                   help="PostgreSQL's replication only (sync: synchronous commit); Kafka and S3 replicate "
                        "asynchronously whatever this says")
    p.add_argument("--failback", action="store_true", help="return home after the failover, measured too")
    p.add_argument("--api-down", action="store_true",
                   help="region-outage: the home region's control plane goes down with it, so the failover's fence "
                        "cannot be applied; with --failback the drill proves the failback re-fences home first "
                        "(default: off)")
    p.add_argument("--report-dir", type=Path, help="where the report goes (default: reports/drill-<time>)")
    p.add_argument("--output", choices=["text", "json"], default="text",
                   help="text: progress and a summary for people; json: the report document for machines")
    sb = p.add_argument_group("sandbox target")
    sb.add_argument("--warmup", type=float, default=3.0, help="seconds of workload before the fault (default 3)")
    sb.add_argument("--rate", type=int, default=200, help="workload writes per second (default 200)")
    sb.add_argument("--databases", type=int, default=1, help="database pairs (default 1)")
    sb.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                    help="data stores in the drill: postgres plus any of kafka, s3 (default: all three, as "
                         "`python -m sandbox up`)")
    sb.add_argument("--kafka-rate", type=int, default=100, help="Kafka records per second (default 100)")
    sb.add_argument("--s3-rate", type=int, default=20, help="object PUTs per second (default 20)")
    sb.add_argument("--link-latency-ms", type=int, default=0, help="one-way latency between the regions (default 0)")
    sb.add_argument("--dns-ttl", type=int, default=1, help="TTL of the service names (default 1 s)")
    sb.add_argument("--settle", type=float, default=1.0, help="seconds of workload after recovery (default 1)")
    sb.add_argument("--broker-down", type=float, default=15.0,
                    help="broker-loss: seconds from the kill before the drill goes on (default 15)")
    sb.add_argument("--restart-broker", action="store_true",
                    help="broker-loss: start the killed broker again and wait until it is back in every ISR")
    sb.add_argument("--sandbox-dir", type=Path, help="where the sandbox lives (default: a new temporary dir)")
    sb.add_argument("--keep-files", action="store_true", help="keep the sandbox's files after it is stopped")
    st = p.add_argument_group("stacks target (needs the pulumi CLI and AWS credentials)")
    st.add_argument("--prefix", default="drill", help="drill stacks are PREFIX-prod and PREFIX-dr")
    st.add_argument("--project-dir", type=Path, default=Path("."),
                    help="the Pulumi project directory, with Pulumi.prod.yaml and Pulumi.dr.yaml")
    st.add_argument("--primary-region", default="us-east-1", help="AWS region of the drill's prod stack")
    st.add_argument("--dr-region", default="us-west-2", help="AWS region of the drill's dr stack")
    return p


def validate(args) -> None:
    problems = []
    if args.warmup < 0.5:
        problems.append(f"--warmup {args.warmup}: at least 0.5 s, so the lag estimate has samples")
    if not 1 <= args.rate <= 5000:
        problems.append(f"--rate {args.rate}: from 1 to 5000 writes/s")
    if not 1 <= args.databases <= 20:
        problems.append(f"--databases {args.databases}: from 1 to 20")
    if not 0 <= args.link_latency_ms <= 5000:
        problems.append(f"--link-latency-ms {args.link_latency_ms}: from 0 to 5000")
    if not 0 <= args.dns_ttl <= 300:
        problems.append(f"--dns-ttl {args.dns_ttl}: from 0 to 300")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if "postgres" not in systems or any(s not in ("postgres", "kafka", "s3") for s in systems):
        problems.append(f"--systems {args.systems}: postgres plus any of kafka, s3 (e.g. postgres,kafka,s3)")
    if args.api_down and args.scenario != "region-outage":
        problems.append("--api-down: only with --scenario region-outage (the region and its control plane go down)")
    if args.scenario == "broker-loss":
        if "kafka" not in systems:
            problems.append("--scenario broker-loss: needs Kafka; add it to --systems (e.g. postgres,kafka)")
        if args.failback:
            problems.append("--failback: a broker loss fails nothing over; use --restart-broker to bring the broker back")
        if not 0 <= args.broker_down <= 600:
            problems.append(f"--broker-down {args.broker_down}: from 0 to 600 s")
    elif args.restart_broker:
        problems.append("--restart-broker: only with --scenario broker-loss")
    if args.target == "stacks" and args.scenario != "region-outage":
        problems.append(f"--scenario {args.scenario}: drill stacks rehearse region-outage only")
    if problems:
        raise BadArgs("; ".join(problems))


class BadArgs(RunbookError):
    exit_code = EXIT_BAD_INPUT


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None, stdout=None) -> int:
    args = parser().parse_args(argv)
    out = stdout or sys.stdout
    json_mode = args.output == "json"

    def say(line: str) -> None:
        if not json_mode:
            print(line, file=out, flush=True)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    result: dict
    try:
        validate(args)
        if args.target == "stacks":
            from drills import aws_stacks
            result = aws_stacks.main_for_drill(args, say)
        else:
            result = SandboxDrill(args, say).run()
        code = EXIT_OK if result.get("passed") else EXIT_FAILED
    except RunbookError as exc:
        code, result = exc.exit_code, {"error": str(exc), "passed": False}
        say(f"drill: {exc}")
    except KeyboardInterrupt:
        code, result = EXIT_INTERRUPTED, {"error": "interrupted; the sandbox was stopped", "passed": False}
        say("drill: interrupted; the sandbox was stopped")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if json_mode:
        print(json.dumps(result, indent=2, sort_keys=True, default=str), file=out, flush=True)
    elif "files" in result:
        for line in (broker_loss.summary_lines(result) if result.get("scenario") == "broker-loss"
                     else summary_lines(result)):
            say(line)
        for r in result.get("reasons", []):
            say(f"  - {r}")
    return code

