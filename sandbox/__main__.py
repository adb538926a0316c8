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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="A local region pair of real servers on loopback.")
    sub = p.add_subparsers(dest="command", required=True)

    u = sub.add_parser("up", help="start everything and write DIR/outputs.json")
    u.add_argument("--dir", required=True)
    u.add_argument("--replication", choices=("async", "sync"), default="async")
    u.add_argument("--link-latency-ms", type=_positive_int, default=0, help="one-way latency added to the link")
    u.add_argument("--dns-ttl", type=_positive_int, default=1, help="TTL of the DNS answers, seconds (default 1)")
    u.add_argument("--databases", type=int, default=1, help="number of database pairs (payments, payments-1, …)")
    u.add_argument("--port", type=int, default=None, help="port of the first database pair (default: a free one)")
    u.add_argument("--base-backup", action=argparse.BooleanOptionalAction, default=True,
                   help="take a base backup of each primary (point-in-time restores start from it; default: on)")
    u.add_argument("--systems", default="postgres", type=lambda t: tuple(x.strip() for x in t.split(",") if x.strip()),
                   help="postgres plus any of kafka, s3: an Apache Kafka cluster per region with MirrorMaker 2 "
                        "between them, and S3 replication (default: postgres)")
    u.add_argument("--kafka-brokers", type=int, default=1, choices=(1, 3),
                   help="brokers per region's Kafka cluster: 1 (default, fast) or 3 (RF 3, min.insync.replicas 2)")
    u.add_argument("--rto-seconds", type=int, default=30)
    u.add_argument("--rpo-seconds", type=int, default=5)

    s = sub.add_parser("status", help="every component, its process, port and state")
    s.add_argument("--dir", required=True)
    s.add_argument("--output", choices=("text", "json"), default="text")

    d = sub.add_parser("down", help="stop everything (idempotent)")
    d.add_argument("--dir", required=True)

    f = sub.add_parser("fault", help="inject a fault")
    f.add_argument("--dir", required=True)
    f.add_argument("--database", default=None, help="limit to one database (default: all)")
    f.add_argument("fault", choices=("kill-primary", "kill-replica", "kill-region", "partition", "heal", "slow-link",
                                     "restart-database", "restart-cluster", "restart-region"))
    f.add_argument("arg", nargs="?",
                   help="REGION for kill-region/restart-database/restart-cluster/restart-region, MS for slow-link")

    w = sub.add_parser("workload", help="write through the DNS names and log every acknowledged write")
    w.add_argument("--dir", required=True)
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--rate", type=float, default=200.0, help="writes per second in total (default 200)")
    w.add_argument("--clients", type=int, default=4)
    w.add_argument("--log", required=True)
    w.add_argument("--kafka-rate", type=float, default=100.0,
                   help="Kafka records per second when the sandbox runs kafka (default 100; 0: none)")
    w.add_argument("--s3-rate", type=float, default=20.0,
                   help="object PUTs per second when the sandbox runs s3 replication (default 20; 0: none)")
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
    from sandbox._layout import check_region

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
            print(_fault(sb, args))
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
