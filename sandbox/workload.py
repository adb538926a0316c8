"""The drill workload: clients that write through the DNS names and log every acknowledged write.

Each client thread resolves its service name through the sandbox's DNS responder with a cache
that keeps an answer until its TTL expires (as a JVM or a pooled libpq client does), connects as
the app user to whatever address the name answered, and inserts one row per tick::

    INSERT INTO drill_writes (id, client_ts, region) VALUES (...) RETURNING region

where ``region`` is the answering server's ``cluster_name``. Every acknowledged write is one JSON
line ``{"id", "t", "region", "database", "ok": true}`` (``t``: client time at the ack, unix
seconds); every failure is ``{"t", "ok": false, "error", "database"}`` (with ``id`` when a write
was attempted, whose outcome is then unknown to the client). Lines are flushed as they are
written, so the log is complete up to the moment the process dies. On an error the client
drops its connection and reconnects at its next tick, resolving again (the cached answer stays
until TTL expiry — that is the realistic part of what a drill measures).

``run_workload`` is used in-process (a thread of a drill) and by ``python -m sandbox workload``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from pathlib import Path

from sandbox.errors import SandboxError
from sandbox.layout import APP_USER, DB_NAME, DNS_ADDRESS, Layout, fqdn

INSERT = ("INSERT INTO drill_writes (id, client_ts, region) VALUES (%s, to_timestamp(%s), "
          "current_setting('cluster_name')) RETURNING region")


class _Log:
    """JSON lines, one per event, flushed as written; shared by the client threads."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", buffering=1)
        self._lock = threading.Lock()
        self.counts: Counter = Counter()

    def write(self, event: dict) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            if self._f.closed:  # a client stuck past the end of the run: its outcome is not part of this log
                return
            self._f.write(line + "\n")
            self._f.flush()
            if event.get("event") == "consumed":
                self.counts["consumed"] += 1
            elif event["ok"]:
                self.counts[f"acked:{event['region']}"] += 1
                self.counts["acked"] += 1
                if event.get("system", "postgres") != "postgres":
                    self.counts[f"acked-{event['system']}"] += 1
            else:
                self.counts["errors"] += 1

    def close(self) -> None:
        with self._lock:
            self._f.close()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


class _Client:
    def __init__(self, index: int, database: str, port: int, resolver, pgpass: Path, log: _Log, interval: float,
                 run_id: str):
        self.index = index
        self.database = database
        self.name = fqdn(database)
        self.port = port
        self.resolver = resolver
        self.pgpass = pgpass
        self.log = log
        self.interval = interval
        self.run_id = run_id
        self.conn = None
        self.lock = threading.Lock()

    def _connect(self):
        import psycopg

        answer = self.resolver.resolve(self.name, "A")  # from the cache until the TTL expires
        address = answer.rrset[0].address
        conn = psycopg.connect(host=address, port=self.port, dbname=DB_NAME, user=APP_USER,
                               passfile=str(self.pgpass), connect_timeout=2, autocommit=True,
                               application_name=f"drill-workload-{self.index}")
        with self.lock:
            self.conn = conn
        return conn

    def _drop(self) -> None:
        with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def cancel(self) -> None:
        """Called at the end of the run: cancel a write stuck (e.g. waiting for a synchronous standby)."""
        with self.lock:
            conn = self.conn
        if conn is not None:
            import psycopg
            try:
                conn.cancel_safe(timeout=2.0)
            except psycopg.Error:
                pass  # the connection is already broken: the stuck write fails and is logged by its thread

    def run(self, start: float, end: float, stop: threading.Event) -> None:
        import dns.exception
        import psycopg

        next_t = start + self.interval * (self.index % 10) / 10.0
        seq = 0
        while not stop.is_set():
            now = time.time()
            if next_t >= end:
                break
            if next_t > now and stop.wait(next_t - now):
                break
            next_t += self.interval
            if next_t < time.time() - 1.0:  # after a stall, keep the rate: skip ticks, do not burst
                next_t = time.time()
            wid = None
            try:
                conn = self.conn or self._connect()
                seq += 1
                wid = f"{self.run_id}-{self.index}-{seq}"
                row = conn.execute(INSERT, (wid, time.time())).fetchone()
                self.log.write({"id": wid, "t": time.time(), "region": row[0], "database": self.database, "ok": True,
                                "system": "postgres"})
            except (psycopg.Error, dns.exception.DNSException, OSError) as exc:
                event = {"t": time.time(), "ok": False, "error": _short(exc), "database": self.database}
                if wid is not None:
                    event["id"] = wid
                self.log.write(event)
                self._drop()
        self._drop()


def run_workload(sandbox_dir: str | Path, seconds: float, rate: float = 200.0, log_path: str | Path = "workload.jsonl",
                 stop_event: threading.Event | None = None, clients: int = 4,
                 databases: list[str] | None = None, kafka_rate: float = 100.0, s3_rate: float = 20.0) -> dict:
    """Write at ``rate`` writes/s in total for ``seconds`` (or until ``stop_event``), spread over
    ``clients`` threads and the sandbox's databases (or ``databases``); return a summary."""
    import dns.resolver

    if seconds <= 0 or rate <= 0:
        raise SandboxError("workload: --seconds and --rate must be positive")
    layout = Layout(sandbox_dir)
    state = layout.read_state()
    names = databases or [db.name for db in state.databases]
    clients = max(clients, len(names))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [DNS_ADDRESS]
    resolver.port = state.dns_port
    resolver.timeout = 0.5
    resolver.lifetime = 1.0
    resolver.cache = dns.resolver.Cache()  # one per process, shared by the clients, TTL-respecting
    log = _Log(Path(log_path))
    stop = stop_event or threading.Event()
    run_id = secrets.token_hex(4)
    interval = clients / rate
    workers = [_Client(i, names[i % len(names)], state.database(names[i % len(names)]).port, resolver, layout.pgpass,
                       log, interval, run_id) for i in range(clients)]
    start = time.time()
    end = start + seconds
    threads = [threading.Thread(target=w.run, args=(start, end, stop), name=f"workload-{w.index}", daemon=True)
               for w in workers]
    # Kafka and S3 clients when the sandbox runs them (sandbox/workload_streams.py)
    from sandbox.workload_streams import stream_workers
    streams = stream_workers(layout, state, log, run_id, kafka_rate, s3_rate)
    threads += [threading.Thread(target=w.run, args=(start, end, stop), name=f"workload-{type(w).__name__}",
                                 daemon=True) for w in streams]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(max(0.0, end - time.time()) + 1.0)
        if any(t.is_alive() for t in threads):
            for w in workers:
                w.cancel()
            stop.set()
            for t in threads:
                t.join(12.0)  # a Kafka consumer drains what is left for up to 10 s
    except KeyboardInterrupt:  # the drill stops the workload with SIGINT: let the consumer drain first
        stop.set()
        for t in threads:
            t.join(12.0)
        raise
    finally:
        stop.set()
        stuck = [t.name for t in threads if t.is_alive()]
        log.close()
    counts = dict(log.counts)
    return {"seconds": round(time.time() - start, 3), "rate": rate, "clients": clients, "databases": names,
            "acked": counts.get("acked", 0), "errors": counts.get("errors", 0),
            "acked_by_region": {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("acked:")},
            "log": str(Path(log_path).resolve()), "run_id": run_id, "stuck_clients": stuck}
