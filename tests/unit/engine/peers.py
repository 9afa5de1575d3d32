"""TCP peers the tests own: a real listening socket on 127.0.0.1, an ephemeral port, and one
small function that answers each connection (a fake PostgreSQL or Redis only as far as a
readiness probe reads, an HTTP server, a server that says nothing or hangs up)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator

Answer = Callable[[socket.socket], None]
PEER_TIMEOUT = 5.0  # a peer never waits longer than this for the probe


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False  # server_close() waits for every answer: nothing outlives a test
    block_on_close = True


@contextlib.contextmanager
def serving(answer: Answer) -> Iterator[int]:
    """Listen on 127.0.0.1 while the block runs; each connection is given to *answer*.

    Yields the port. The connection is closed when *answer* returns.
    """

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            conn.settimeout(PEER_TIMEOUT)
            with contextlib.suppress(OSError):  # the probe hung up first: fine
                answer(conn)

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="peer", daemon=True
    )
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(PEER_TIMEOUT)


@contextlib.contextmanager
def refusing() -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def read_exactly(conn: socket.socket, size: int) -> bytes:
    """*size* bytes, or fewer if the other side closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_until(conn: socket.socket, end: bytes) -> bytes:
    """Bytes up to and including *end*, or what came before the other side closed."""
    data = b""
    while end not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def wait_for_close(conn: socket.socket) -> None:
    """Keep the connection open until the probe closes it."""
    while conn.recv(4096):
        pass


def hang_up(_conn: socket.socket) -> None:
    """Accept, then close at once without a byte."""


def silent(conn: socket.socket) -> None:
    """Accept, read whatever comes, never answer; close only when the probe does."""
    wait_for_close(conn)


def greeting(data: bytes) -> Answer:
    """Send *data* as soon as the connection is there (SSH, SMTP), then keep it open."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(data)
        wait_for_close(conn)

    return answer


def saying(data: bytes) -> Answer:
    """Read what the client sends first (if anything, briefly), answer *data*, hang up."""

    def answer(conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            conn.recv(4096)
        conn.sendall(data)

    return answer


# -- PostgreSQL: the start of protocol 3.0 ----------------------------------------------------


def pg_startup(conn: socket.socket) -> tuple[int, dict[str, str]]:
    """Read a StartupMessage: the protocol number and its parameters."""
    (length,) = struct.unpack("!I", read_exactly(conn, 4))
    body = read_exactly(conn, length - 4)
    (protocol,) = struct.unpack("!I", body[:4])
    words = body[4:].split(b"\0")
    params = {
        words[i].decode(): words[i + 1].decode() for i in range(0, len(words) - 1, 2) if words[i]
    }
    return protocol, params


def pg_message(kind: bytes, payload: bytes) -> bytes:
    """One backend message: a type byte, its length, its payload."""
    return kind + struct.pack("!I", len(payload) + 4) + payload


def pg_auth(code: int, extra: bytes = b"") -> bytes:
    """An Authentication message: 0 ok, 3 cleartext password, 5 MD5 (with a salt), 10 SASL."""
    return pg_message(b"R", struct.pack("!I", code) + extra)


def pg_error(sqlstate: str, message: str) -> bytes:
    """An ErrorResponse as a server sends it before a session exists (severity FATAL)."""
    fields = {b"S": "FATAL", b"V": "FATAL", b"C": sqlstate, b"M": message, b"R": "ProcessStartup"}
    payload = b"".join(key + value.encode() + b"\0" for key, value in fields.items()) + b"\0"
    return pg_message(b"E", payload)


def postgres_peer(reply: bytes, seen: list[tuple[int, dict[str, str]]]) -> Answer:
    """A PostgreSQL server as far as the probe goes: read the StartupMessage, send *reply*."""

    def answer(conn: socket.socket) -> None:
        seen.append(pg_startup(conn))
        conn.sendall(reply)

    return answer


# -- Redis: an inline command, a RESP reply -----------------------------------------------------


def redis_peer(reply: bytes, seen: list[bytes]) -> Answer:
    """A Redis server as far as the probe goes: read one inline command line, send *reply*."""

    def answer(conn: socket.socket) -> None:
        seen.append(read_until(conn, b"\r\n"))
        conn.sendall(reply)

    return answer


# -- HTTP/1.1 ---------------------------------------------------------------------------------


def http_peer(status: int, seen: list[str], *, reason: str = "Whatever") -> Answer:
    """An HTTP server that answers every request with *status* and no body."""

    def answer(conn: socket.socket) -> None:
        head = read_until(conn, b"\r\n\r\n").decode("latin-1")
        seen.append(head.split("\r\n", 1)[0])
        conn.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )

    return answer
