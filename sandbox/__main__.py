"""``python -m sandbox``: the command line of the local region pair (see docs/sandbox.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from sandbox.errors import SandboxError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


EXIT_CODES = ("exit codes:\n  0    done\n  1    the sandbox refused or failed (the error says what and how to fix it)\n"
              "  2    bad usage (an unknown or missing option)\n  130  interrupted (`up` stops what it had started)")


def _parser() -> argparse.ArgumentParser:
    from runbooks.core.helptext import Formatter
    from sandbox.layout import DEFAULT_SYSTEMS

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=summary, description=summary, formatter_class=Formatter, epilog=EXIT_CODES)
        c.add_argument("--dir", required=True, help="the sandbox's directory (its state, logs and outputs.json)")
        return c

    p = argparse.ArgumentParser(prog="python -m sandbox", description="A local region pair of real servers on loopback.",
                                formatter_class=Formatter, epilog=EXIT_CODES + "\n`python -m sandbox COMMAND --help` "
                                "describes each command's options")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           help="up, status, down, fault, workload or kafka-backup (one is required)")

    u = command("up", "start everything and write DIR/outputs.json")
    u.add_argument("--replication", choices=("async", "sync"), default="async",
                   help="PostgreSQL's replication: async, or sync (synchronous commit: no acknowledged write lost)")
    u.add_argument("--link-latency-ms", type=_positive_int, default=0,
                   help="one-way latency added to the link between the regions, milliseconds")
    u.add_argument("--dns-ttl", type=_positive_int, default=1, help="TTL of the DNS answers, seconds (default 1)")
    u.add_argument("--databases", type=int, default=1, help="number of database pairs (payments, payments-1, …)")
    u.add_argument("--port", type=int, default=None, help="port of the first database pair (default: a free one)")
    u.add_argument("--base-backup", action=argparse.BooleanOptionalAction, default=True,
                   help="take a base backup of each primary (point-in-time restores start from it; default: on)")
    u.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                   type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()),
                   help="postgres plus any of kafka, s3: an Apache Kafka cluster per region with MirrorMaker 2 "
                        "between them, and S3 replication (default: all three, as the drill; postgres for "
                        "PostgreSQL alone)")
    u.add_argument("--kafka-brokers", type=int, default=1, choices=(1, 3),
                   help="brokers per region's Kafka cluster: 1 (default, fast) or 3 (RF 3, min.insync.replicas 2)")
    u.add_argument("--rto-seconds", type=int, default=30, help="the RTO objective the outputs declare, seconds")
    u.add_argument("--rpo-seconds", type=int, default=5, help="the RPO objective the outputs declare, seconds")

    s = command("status", "every component, its process, port and state")
    s.add_argument("--output", choices=("text", "json"), default="text",
                   help="text: a table for people; json: the whole status for machines")

    command("down", "stop everything (idempotent)")

    f = command("fault", "inject a fault")
    f.add_argument("--database", default=None, help="limit to one database (default: all)")
    f.add_argument("fault", choices=("kill-primary", "kill-replica", "kill-region", "partition", "heal", "slow-link",
                                     "restart-database", "restart-cluster", "restart-region"),
                   help="what to break (or mend): %(choices)s")
    f.add_argument("arg", nargs="?",
                   help="REGION for kill-region/restart-database/restart-cluster/restart-region, MS for slow-link")

    w = command("workload", "write through the DNS names and log every acknowledged write")
    w.add_argument("--seconds", type=float, required=True, help="how long to write (SIGINT stops it earlier)")
    w.add_argument("--rate", type=float, default=200.0, help="writes per second in total (default 200)")
    w.add_argument("--clients", type=int, default=4, help="concurrent PostgreSQL clients sharing the rate")
    w.add_argument("--log", required=True, help="JSON-lines file of every acknowledged write and every error")
    w.add_argument("--kafka-rate", type=float, default=100.0,
                   help="Kafka records per second when the sandbox runs kafka (default 100; 0: none)")
    w.add_argument("--s3-rate", type=float, default=20.0,
                   help="object PUTs per second when the sandbox runs s3 replication (default 20; 0: none)")

    k = command("kafka-backup", "start, stop or show the continuous Kafka topic backup (Parquet into DIR/backups)")
    k.add_argument("action", choices=("start", "stop", "status"), help="what to do: %(choices)s")
    k.add_argument("--topic", action="append", default=[], metavar="TOPIC=CLASS",
                   help="a topic to back up and its class, critical or standard (repeatable; start needs one)")
    k.add_argument("--flush-s", type=float, default=1.0, help="seconds between the backup's writes")
    k.add_argument("--offsets-every-s", type=float, default=10.0,
                   help="seconds between consumer-group offset snapshots")
    return p


def _print_status(st: dict) -> None:
    for region in ("local-east", "local-west"):
        r = st[region]
        print(f"{region} ({r['address']})")
        for name, db in r["databases"].items():
            print(f"  postgres {name:<12} {db['state']:<8} role={db['role'] or '-':<8} pid={db['pid'] or '-':<8} "
                  f"port={db['port']}  log={db['log']}")
        print(f"  s3       {r['s3']['state']:<8} {r['s3']['endpoint']} bucket={r['s3']['bucket']} pid={r['s3']['pid'] or '-'}")
        if "cluster" in r:
            c = r["cluster"]
            active = ", ".join(f"{ns}→{a}" for ns, a in (c.get("active_region") or {}).items())
            print(f"  cluster  {c['state']:<8} context={c['context']} {('ACTIVE_REGION ' + active) if active else ''}")
    dns = st["sandbox"]["dns"]
    print(f"dns        {dns['state']:<8} {st['local-east']['dns']['server']} ttl={dns['ttl_seconds']} s pid={dns['pid'] or '-'}")
    for name, addr in st["local-east"]["dns"]["names"].items():
        print(f"  {name} → {addr}")
    link = st["link"]
    print(f"link       {link['state']:<8} latency={link.get('latency_ms', '-')} ms connections="
          f"{link.get('connections', '-')} pid={link['pid'] or '-'}")


def _fault(sb, args) -> str:
    from sandbox.layout import check_region

    if args.fault in ("kill-primary", "kill-replica"):
        want = "primary" if args.fault == "kill-primary" else "replica"
        done = []
        for name in ([args.database] if args.database else sb.databases):
            regions = [r for r in sb.regions if sb.node(r, name).role() == want]
            if not regions:
                done.append(f"{name}: no running {want}")
            for region in regions:
                done.append(sb.kill_database(region, name))
        return "; ".join(done)
    if args.fault in ("kill-region", "restart-database", "restart-cluster", "restart-region"):
        if not args.arg:
            raise SandboxError(f"fault {args.fault} needs a REGION (local-east or local-west)")
        check_region(args.arg)
        if args.fault == "restart-cluster":
            return sb.start_cluster(args.arg)
        if args.fault == "restart-region":
            return sb.start_region(args.arg)
        return sb.kill_region(args.arg) if args.fault == "kill-region" else sb.start_database(args.arg, args.database)
    if args.fault == "partition":
        return sb.partition()
    if args.fault == "heal":
        return sb.heal()
    if args.arg is None or not args.arg.isdigit():
        raise SandboxError("fault slow-link needs MS, the one-way latency in milliseconds (0 removes it)")
    return sb.slow_link(int(args.arg))


def _interrupt(signum, frame) -> None:
    """SIGTERM ends the CLI the way Ctrl-C does, so `up` stops what it had started."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from sandbox import control

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "up":
            t0 = time.monotonic()
            sb = control.up(args.dir, replication=args.replication, link_latency_ms=args.link_latency_ms,
                            dns_ttl=args.dns_ttl, databases=args.databases, port=args.port,
                            rto_seconds=args.rto_seconds, rpo_seconds=args.rpo_seconds,
                            base_backup=args.base_backup, systems=args.systems,
                            kafka_brokers=args.kafka_brokers)
            print(f"sandbox up in {time.monotonic() - t0:.1f} s: {sb.layout.outputs_file}")
            return 0
        if args.command == "down":
            for line in control.down(args.dir):
                print(line)
            return 0
        sb = control.Sandbox.open(args.dir)
        if args.command == "status":
            st = sb.status()
            if args.output == "json":
                print(json.dumps(st, indent=2, sort_keys=True))
            else:
                _print_status(st)
            return 0
        if args.command == "fault":
            # a fault is an action on the region pair like any other: audited where the runbooks audit
            from runbooks.core.audit import sandbox_audit
            from runbooks.core.clock import SystemClock
            clock = SystemClock()
            audit = sandbox_audit(args.dir, clock, "sandbox", f"fault-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
            what = " ".join(x for x in (args.fault, args.arg, args.database) if x)
            try:
                said = _fault(sb, args)
            except SandboxError as exc:
                audit.record("fault", what, "failed", str(exc))
                raise
            audit.record("fault", what, "injected", said)
            print(said)
            return 0
        if args.command == "kafka-backup":
            from sandbox import kafka_backup as _kafka_backup
            if args.action == "start":
                print(_kafka_backup.start(sb, _kafka_backup.parse_topics(args.topic), flush_s=args.flush_s,
                                          offsets_every_s=args.offsets_every_s))
            elif args.action == "stop":
                print(_kafka_backup.stop(sb))
            else:
                print(json.dumps(_kafka_backup.status(sb.layout), indent=2, sort_keys=True))
            return 0
        if args.command == "workload":
            from sandbox.workload import run_workload

            # the drill and the benchmarks stop the workload with SIGINT. Started in the background
            # of a non-interactive shell (nohup, a CI step's `&`), a process inherits SIGINT ignored
            # and Python then installs no handler: the drill would wait 30 s and kill it
            signal.signal(signal.SIGINT, signal.default_int_handler)
            stop = threading.Event()
            try:
                summary = run_workload(args.dir, seconds=args.seconds, rate=args.rate, log_path=args.log,
                                       stop_event=stop, clients=args.clients, kafka_rate=args.kafka_rate,
                                       s3_rate=args.s3_rate)
            except KeyboardInterrupt:
                stop.set()
                raise
            print(json.dumps(summary, sort_keys=True))
            return 0
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sandbox: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
