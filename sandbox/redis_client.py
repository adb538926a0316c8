"""A minimal Redis client (RESP2 over TCP): the few commands the cache runbooks and the sandbox need,
without a client library. Arguments are sent as bulk strings (binary safe); replies are decoded into
bytes, ints, lists, or raise RespError with the server's message."""

from __future__ import annotations

import socket


class RespError(Exception):
    """An error reply from the server (``-ERR …``)."""


class Redis:
    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Redis":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def command(self, *args) -> object:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the Redis server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the Redis server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line[:40]!r}")

    def scan_all(self, count: int = 1000) -> list[bytes]:
        cursor, keys = b"0", []
        for _ in range(1_000_000):  # bounded: SCAN ends when the cursor returns to 0
            cursor, batch = self.command("SCAN", cursor, "COUNT", count)
            keys += batch
            if cursor == b"0":
                return keys
        raise RespError("SCAN did not finish")
