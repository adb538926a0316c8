"""The sandbox's long-running helpers, each its own process: ``python -m sandbox.workers.serve KIND --dir DIR``.

- ``dns``: the authoritative DNS responder (UDP and TCP) for the sandbox zone, answering from
  ``DIR/dns/records.json``, re-read whenever the file changes (the API's record UPSERT);
- ``link``: the TCP relay between the regions on the replication path, with injectable one-way
  latency and partition, controlled through a unix socket;
- ``moto REGION``: moto's S3 on that region's address, which creates the region's versioned
  data bucket once it listens;
- ``replicator``: MirrorMaker 2's supervisor (sandbox/workers/replicator.py);
- ``s3-replication``: the S3 replication worker (sandbox/workers/s3_replication.py).

Each exits on SIGTERM/SIGINT, and on its own when DIR's state file disappears or names another
`up` (so a helper never outlives the sandbox it served, even if `down` was never run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from sandbox.buckets import bucket_name
from sandbox.layout import REGIONS, Layout, State, still_ours, write_json_atomic

log = logging.getLogger("sandbox.serve")

WATCH_INTERVAL_S = 2.0


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def _watch(layout: Layout, state: State, stop: threading.Event) -> None:
    """Block until told to stop or until the sandbox this helper serves is gone."""
    while not stop.wait(WATCH_INTERVAL_S):
        if not still_ours(layout, state.instance):
            log.warning("state file %s gone or replaced; exiting", layout.state_file)
            return


# ---------------------------------------------------------------------------------------------
# DNS
# ---------------------------------------------------------------------------------------------


class RecordsFile:
    """The records the responder serves, re-read when the file is replaced."""

    def __init__(self, path: Path):
        self.path = path
        self._key = None
        self._doc = {"ttl_seconds": 0, "records": {}}
        self._lock = threading.Lock()

    def get(self) -> dict:
        with self._lock:
            try:
                st = self.path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                if key != self._key:
                    self._doc = json.loads(self.path.read_text())
                    self._key = key
            except (FileNotFoundError, json.JSONDecodeError) as exc:
                log.error("cannot read %s (%s); serving the last good records", self.path, exc)
            return self._doc


def serve_dns(layout: Layout, state: State) -> int:
    from dnslib import QTYPE, RCODE, RR, SOA, A, DNSLabel
    from dnslib.server import BaseResolver, DNSLogger, DNSServer

    from sandbox.layout import DNS_ADDRESS, ZONE

    records = RecordsFile(layout.records_file)
    zone = ZONE.lower()
    soa = SOA(mname=f"ns.{zone}", rname=f"hostmaster.{zone}", times=(1, 60, 60, 3600, 1))

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            reply.header.aa = 1
            qname = str(request.q.qname).rstrip(".").lower()
            if not (qname == zone or qname.endswith("." + zone)):
                reply.header.aa = 0
                reply.header.rcode = RCODE.REFUSED
                return reply
            doc = records.get()
            ttl = int(doc.get("ttl_seconds", 0))
            address = doc.get("records", {}).get(qname)
            if address is None and qname != zone:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(RR(DNSLabel(zone), QTYPE.SOA, rdata=soa, ttl=ttl))
            elif address is not None and request.q.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=ttl))
            else:
                reply.add_auth(RR(DNSLabel(zone), QTYPE.SOA, rdata=soa, ttl=ttl))
            return reply

    logger = DNSLogger(log="error", prefix=True)
    resolver = Resolver()
    servers = [DNSServer(resolver, address=DNS_ADDRESS, port=state.dns_port, tcp=tcp, logger=logger)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    print(f"dns: serving {zone} on {DNS_ADDRESS}:{state.dns_port} (udp+tcp) from {layout.records_file}", flush=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    _watch(layout, state, stop)
    for server in servers:
        server.stop()
    return 0


# ---------------------------------------------------------------------------------------------
# The link
# ---------------------------------------------------------------------------------------------


class _Conn:
    def __init__(self, name: str):
        self.name = name
        self.writers: list[asyncio.StreamWriter] = []
        self.tainted = False
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in self.writers:
            transport = w.transport
            if transport is not None:
                transport.abort()


class Link:
    """TCP relay: at each region's address, a port per database leading to the other region's server.

    Partition is a blackhole, like a real one: bytes in either direction are dropped and new
    connections reach nothing (they time out, they are not refused). On heal, every connection
    that lost bytes is reset, as its ends would find out by themselves after their timeouts.
    Latency is added to each direction (one-way), in order, without limiting bandwidth."""

    def __init__(self, layout: Layout, state: State):
        self.layout = layout
        self.state = state
        self.conns: set[_Conn] = set()
        doc = self._load()
        self.partitioned = bool(doc.get("partitioned", False))
        self.latency_ms = int(doc.get("latency_ms", state.link_latency_ms))

    def _load(self) -> dict:
        try:
            return json.loads(self.layout.link_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def describe(self) -> dict:
        return {"partitioned": self.partitioned, "latency_ms": self.latency_ms, "connections": len(self.conns)}

    def _persist(self) -> None:
        write_json_atomic(self.layout.link_file, {"partitioned": self.partitioned, "latency_ms": self.latency_ms})

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        async def read_side() -> None:
            try:
                while not conn.closed:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if self.partitioned:
                        conn.tainted = True
                        continue
                    queue.put_nowait((loop.time() + self.latency_ms / 1000.0, data))
            except (ConnectionError, OSError):
                pass
            finally:
                queue.put_nowait(None)

        async def write_side() -> None:
            try:
                item = await queue.get()
                while item is not None and not conn.closed:
                    due, data = item
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self.partitioned:
                        # a blackhole also swallows what was still on the wire when it began
                        conn.tainted = True
                    else:
                        writer.write(data)
                        await writer.drain()
                    item = await queue.get()
            except (ConnectionError, OSError):
                pass

        await asyncio.gather(read_side(), write_side())
        conn.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: tuple[str, int],
                      name: str) -> None:
        conn = _Conn(name)
        conn.writers.append(writer)
        self.conns.add(conn)
        try:
            if self.partitioned:
                conn.tainted = True  # nothing reaches the far side: hold it until heal resets it
                try:
                    while not conn.closed and self.partitioned:
                        if not await reader.read(65536):
                            break
                except (ConnectionError, OSError):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 5.0)
            except (OSError, asyncio.TimeoutError):
                return
            conn.writers.append(up_writer)
            await asyncio.gather(self._pump(conn, reader, up_writer), self._pump(conn, up_reader, writer))
        finally:
            conn.close()
            self.conns.discard(conn)

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            request = json.loads(line or b"{}")
            if request.get("op") == "set":
                if "latency_ms" in request:
                    self.latency_ms = max(0, int(request["latency_ms"]))
                if "partitioned" in request:
                    was = self.partitioned
                    self.partitioned = bool(request["partitioned"])
                    if was and not self.partitioned:
                        for conn in [c for c in self.conns if c.tainted]:
                            conn.close()
                self._persist()
                print(f"link: {self.describe()}", flush=True)
            reply = {"ok": True, **self.describe()}
        except (ValueError, TypeError, asyncio.TimeoutError) as exc:
            reply = {"ok": False, "error": str(exc)}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def run(self, stop: asyncio.Event) -> None:
        servers = []
        for db in self.state.databases:
            for region in REGIONS:
                other = self.state.other(region)
                target = (self.state.addresses[other], db.port)
                name = f"{db.name}:{region}->{other}"
                servers.append(await asyncio.start_server(
                    lambda r, w, t=target, n=name: self._handle(r, w, t, n),
                    host=self.state.addresses[region], port=db.link_port))
        from sandbox.kafka_cluster import link_routes
        for address, port, to_address, to_port, name in link_routes(self.state):  # MirrorMaker 2's path
            servers.append(await asyncio.start_server(
                lambda r, w, t=(to_address, to_port), n=name: self._handle(r, w, t, n), host=address, port=port))
        sock = Layout.link_socket(self.state)
        sock.unlink(missing_ok=True)
        servers.append(await asyncio.start_unix_server(self._control, path=str(sock)))
        print(f"link: listening, {self.describe()}", flush=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_S)
            except asyncio.TimeoutError:
                if not still_ours(self.layout, self.state.instance):
                    print("link: state file gone or replaced; exiting", flush=True)
                    break
        for server in servers:
            server.close()
        for conn in list(self.conns):
            conn.close()
        sock.unlink(missing_ok=True)


def serve_link(layout: Layout, state: State) -> int:
    asyncio.run(Link(layout, state).run(asyncio.Event()))
    return 0


# ---------------------------------------------------------------------------------------------
# moto (S3)
# ---------------------------------------------------------------------------------------------


def serve_moto(layout: Layout, state: State, region: str) -> int:
    from moto.server import ThreadedMotoServer

    address = state.addresses[region]
    server = ThreadedMotoServer(ip_address=address, port=state.moto_port, verbose=False)
    server.start()
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://{address}:{state.moto_port}", region_name="us-east-1",
                      aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    s3.create_bucket(Bucket=bucket_name(region))
    s3.put_bucket_versioning(Bucket=bucket_name(region), VersioningConfiguration={"Status": "Enabled"})
    print(f"moto: S3 for {region} on http://{address}:{state.moto_port}, bucket {bucket_name(region)} "
          "(versioned)", flush=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    _watch(layout, state, stop)
    server.stop()
    return 0


def _serve_stream(kind: str, layout: Layout, state: State, region: str | None, parser) -> int:
    """MirrorMaker 2's supervisor and the S3 replication worker (sandbox/workers/replicator.py, s3_replication.py)."""
    import faulthandler

    from sandbox.workers import replicator, s3_replication
    # librdkafka's main thread has segfaulted under the supervisor (kernel log: "rdk:main segfault
    # … in librdkafka"): the Python stack of every thread at that moment goes to this log
    faulthandler.enable(file=sys.stderr, all_threads=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    logging.getLogger("sandbox.streams").setLevel(logging.INFO)
    ours = lambda: still_ours(layout, state.instance)  # noqa: E731
    if kind == "replicator":
        return replicator.serve_replicator(layout, state, stop, ours)
    return s3_replication.serve_s3_replication(layout, state, stop, ours)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.workers.serve")
    parser.add_argument("kind", choices=("dns", "link", "moto", "replicator", "s3-replication"))
    parser.add_argument("region", nargs="?", choices=REGIONS)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request is noise
    layout = Layout(args.dir)
    state = layout.read_state()
    started = time.time()
    try:
        if args.kind == "dns":
            return serve_dns(layout, state)
        if args.kind == "link":
            return serve_link(layout, state)
        if args.kind in ("replicator", "s3-replication"):
            return _serve_stream(args.kind, layout, state, args.region, parser)
        if args.region is None:
            parser.error("moto needs a REGION")
        return serve_moto(layout, state, args.region)
    finally:
        print(f"{args.kind}: exiting after {time.time() - started:.1f} s (pid {os.getpid()})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
