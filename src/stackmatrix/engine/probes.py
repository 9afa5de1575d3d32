"""Readiness probes beyond healthchecks: is a service really answering?

Each probe is one quick attempt that returns ``None`` when ready or a short reason when not;
the stack polls them with a short interval until a deadline.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from stackmatrix.spec.load import (
    CommandProbe,
    HttpProbe,
    LogProbe,
    PostgresProbe,
    Probe,
    RedisProbe,
    TcpProbe,
)

ATTEMPT_TIMEOUT = 1.0
TCP_SETTLE = 0.1
# Socket probes are a connection from this process: cheap, so tried often. Log and command
# probes start a docker process every try: on a small CI machine that costs real CPU.
SOCKET_POLL_INTERVAL = 0.05
ENGINE_POLL_INTERVAL = 0.25


def _loopback(_port: int) -> str:
    return "127.0.0.1"


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may use: the service's published ports, its logs, a way to exec into it."""

    service: str
    host_port: Callable[[int], int]  # container port -> published 127.0.0.1 port
    logs: Callable[[], str]
    execute: Callable[[list[str]], int]  # exit code of a command run inside the service
    host: Callable[[int], str] = _loopback  # container port -> the address it is published on


def describe(probe: Probe) -> str:
    """A short human name for *probe*, e.g. ``postgres:5432``."""
    match probe:
        case TcpProbe() | RedisProbe() | PostgresProbe():
            return f"{probe.kind}:{probe.port}"
        case HttpProbe():
            return f"http:{probe.port}{probe.path}"
        case LogProbe():
            return f"log /{probe.pattern}/"
        case CommandProbe():
            return "command " + " ".join(probe.command)
    return probe.kind  # pragma: no cover - the union above is exhaustive


def poll_interval(probe: Probe) -> float:
    """How long to wait between two tries of *probe*."""
    match probe:
        case LogProbe() | CommandProbe():
            return ENGINE_POLL_INTERVAL
    return SOCKET_POLL_INTERVAL


def attempt(probe: Probe, ctx: ProbeContext) -> str | None:
    """Try *probe* once: ``None`` when ready, else why not."""
    try:
        match probe:
            case TcpProbe():
                return _tcp(ctx, probe)
            case HttpProbe():
                return _http(ctx, probe)
            case PostgresProbe():
                return _postgres(ctx, probe)
            case RedisProbe():
                return _redis(ctx, probe)
            case LogProbe():
                found = re.search(probe.pattern, ctx.logs(), re.MULTILINE)
                return None if found else f"no log line matches /{probe.pattern}/ yet"
            case CommandProbe():
                code = ctx.execute(list(probe.command))
                return None if code == 0 else f"command exited {code}"
    except (OSError, ValueError) as error:  # ValueError: undecodable bytes, say
        return f"{type(error).__name__}: {error}"
    return f"unknown probe {probe!r}"  # pragma: no cover


def _addr(ctx: ProbeContext, port: int) -> tuple[str, int]:
    return (ctx.host(port), ctx.host_port(port))


def _tcp(ctx: ProbeContext, probe: TcpProbe) -> str | None:
    """Connected and not closed at once: docker-proxy accepts on the published port even
    while nothing listens inside the container, and then closes the connection."""
    with socket.create_connection(_addr(ctx, probe.port), timeout=ATTEMPT_TIMEOUT) as conn:
        conn.settimeout(TCP_SETTLE)
        try:
            data = conn.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return None  # still open: a process listens behind the proxy
        return None if data else "connection closed at once: nothing listens behind the port"


def _http(ctx: ProbeContext, probe: HttpProbe) -> str | None:
    # Loaded by the first http probe (0.1 s of CPU): most stacks have none, and every run's
    # first stack waits for what its start-up imports.
    import http.client  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    host, port = _addr(ctx, probe.port)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}{probe.path}"
    try:
        with urllib.request.urlopen(url, timeout=ATTEMPT_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError:
        raise  # a refused or dropped connection: attempt() says which
    except http.client.HTTPException as error:  # not HTTP at all (another protocol answers)
        said = str(error).strip()[:60]
        return f"not an HTTP reply ({type(error).__name__}: {said!r})"
    if probe.status is not None:
        return None if status == probe.status else f"HTTP {status}, want {probe.status}"
    return None if status < 400 else f"HTTP {status}"


def _pg_startup(probe: PostgresProbe) -> bytes:
    """The StartupMessage (protocol 3.0) for the probe's user and database."""
    params = b"".join(
        key + b"\0" + value.encode() + b"\0"
        for key, value in ((b"user", probe.user), (b"database", probe.database))
    )
    body = struct.pack("!I", 196608) + params + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def _postgres(ctx: ProbeContext, probe: PostgresProbe) -> str | None:
    """Speak the start of the PostgreSQL protocol: an auth request means it accepts sessions."""
    with socket.create_connection(_addr(ctx, probe.port), timeout=ATTEMPT_TIMEOUT) as conn:
        conn.sendall(_pg_startup(probe))
        reply = conn.recv(1024)
    if not reply:
        return "connection closed without a reply"
    if reply[:1] == b"R":
        return None
    if reply[:1] == b"E":
        # Each field is one type byte, then its text: M the message, C the SQLSTATE code.
        fields = [f.decode(errors="replace") for f in reply[5:].split(b"\0") if f]
        message = next((f[1:] for f in fields if f.startswith("M")), "error")
        codes = [f[1:] for f in fields if f.startswith("C")]
        # Auth and missing-database errors still mean the server accepts connections.
        if codes and codes[0][:2] in {"28", "3D"}:
            return None
        return f"server says: {message}"
    return f"unexpected reply {reply[:1]!r}"


def _redis(ctx: ProbeContext, probe: RedisProbe) -> str | None:
    with socket.create_connection(_addr(ctx, probe.port), timeout=ATTEMPT_TIMEOUT) as conn:
        conn.sendall(b"PING\r\n")
        reply = conn.recv(256)
    if reply.startswith((b"+PONG", b"-NOAUTH")):
        return None
    return f"reply {reply[:40]!r}"


# -- the server's own version -------------------------------------------------------------------

VERSION_TIMEOUT = 2.0  # seconds a server has to say its version, over one connection
_REPLY_CAP = 64 * 1024  # bytes read from a server at most while asking its version
_PG_TERMINATE = b"X" + struct.pack("!I", 4)


@dataclass(frozen=True)
class ServerVersion:
    """What a server said of its version over its own protocol."""

    version: str = ""
    source: str = ""  # how it was asked: postgres, redis, valkey
    # Whether the version may still be found inside the container: the server wants a
    # password, is still loading, or never answered. A server that answered in some other
    # protocol (not that kind of server at all) is not asked again, from inside or not.
    ask_inside: bool = False


def server_version(probe: Probe, address: tuple[str, int]) -> tuple[str, str]:
    """The version the server behind *probe* reports, and how it was asked (``postgres``,
    ``redis``, ``valkey``); ``("", "")`` when its kind cannot ask, or the server did not say
    within :data:`VERSION_TIMEOUT`. Never raises."""
    answer = ask_server_version(probe, address)
    return answer.version, answer.source


def ask_server_version(probe: Probe, address: tuple[str, int]) -> ServerVersion:
    """:func:`server_version`, and whether the container may still say it. Never raises."""
    try:
        match probe:
            case PostgresProbe():
                return _postgres_version(address, probe)
            case RedisProbe():
                return _redis_version(address)
    except (TimeoutError, ConnectionError):
        return ServerVersion(ask_inside=True)  # no answer, or a hang-up before one
    except (OSError, ValueError, struct.error):
        pass  # it answered, but not as that kind of server does
    return ServerVersion()


def version_commands(probe: Probe) -> tuple[tuple[str, ...], ...]:
    """Commands that print the version of the server behind *probe* when run inside its
    container, tried in order when the server itself does not say (a password it wants)."""
    match probe:
        case PostgresProbe():
            return (("postgres", "--version"), ("psql", "-V"))
        case RedisProbe():
            return (("redis-server", "--version"), ("valkey-server", "--version"))
    return ()


_PG_BANNER = re.compile(r"\(PostgreSQL\)\s+(\S[^\n]*)")  # postgres (PostgreSQL) 15.14 (Debian ...)
_REDIS_BANNER = re.compile(r"^(Redis|Valkey) server v=(\S+)", re.MULTILINE)


def version_in_output(probe: Probe, output: str) -> str:
    """The version in what one of :func:`version_commands` printed, written as the server
    itself says it (``15.14 (Debian 15.14-0+deb12u1)``, ``7.0.15``, ``valkey 8.1.1``)."""
    match probe:
        case PostgresProbe():
            found = _PG_BANNER.search(output)
            return found[1].strip() if found else ""
        case RedisProbe():
            banner = _REDIS_BANNER.search(output)
            if banner is None:
                return ""
            return f"valkey {banner[2]}" if banner[1] == "Valkey" else banner[2]
    return ""


def _postgres_version(address: tuple[str, int], probe: PostgresProbe) -> ServerVersion:
    """``server_version`` from the ParameterStatus messages a server sends once it lets the
    session in (trust authentication); empty when it asks for a password first."""
    with socket.create_connection(address, timeout=VERSION_TIMEOUT) as conn:
        conn.sendall(_pg_startup(probe))
        reader = _Reader(conn)
        try:
            while True:
                kind, payload = reader.pg_message()
                if kind == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
                    # It wants a password: the probe has none to give, the container may.
                    return ServerVersion(ask_inside=True)
                if kind == b"S":
                    name, _, rest = payload.partition(b"\0")
                    if name == b"server_version":
                        said = rest.split(b"\0", 1)[0].decode("utf-8", errors="replace")
                        return ServerVersion(said, "postgres") if said else ServerVersion()
                if kind in (b"E", b"Z"):  # refused, or ready for queries with no version said
                    return ServerVersion(ask_inside=kind == b"E")
        finally:
            with contextlib.suppress(OSError):  # a polite goodbye; the server may be gone
                conn.sendall(_PG_TERMINATE)


def _redis_version(address: tuple[str, int]) -> ServerVersion:
    """``INFO server``: ``redis_version``, or Valkey's own ``valkey_version`` when present.

    A Redis error (``-NOAUTH``, ``-LOADING``, ``INFO`` renamed away, too many clients) or a
    server that hangs up without a word may still have its version said inside its
    container; a reply that is no RESP at all is some other server.
    """
    with socket.create_connection(address, timeout=VERSION_TIMEOUT) as conn:
        conn.sendall(b"INFO server\r\n")
        reader = _Reader(conn)
        try:
            head = reader.line()
        except ConnectionError:
            return ServerVersion(ask_inside=not reader.received)
        if not head.startswith(b"$"):
            return ServerVersion(ask_inside=head.startswith(b"-"))
        size = int(head[1:])
        if not 0 < size <= _REPLY_CAP:
            return ServerVersion()
        text = reader.exactly(size).decode("utf-8", errors="replace")
    fields = dict(line.partition(":")[::2] for line in text.splitlines() if ":" in line)
    valkey = fields.get("valkey_version", "").strip()
    if valkey:
        return ServerVersion(f"valkey {valkey}", "valkey")
    redis = fields.get("redis_version", "").strip()
    return ServerVersion(redis, "redis") if redis else ServerVersion()


class _Reader:
    """Bytes from a connection, as a server's reply is read: by length or by line, bounded."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._data = b""
        self._read = 0
        self._deadline = time.monotonic() + VERSION_TIMEOUT  # for the whole reply, however slow

    def _more(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the server took too long to say its version")
        self._conn.settimeout(left)
        chunk = self._conn.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._read += len(chunk)
        if self._read > _REPLY_CAP + 4096:
            raise ValueError("the server says too much")
        self._data += chunk

    @property
    def received(self) -> bool:
        """Whether the server sent anything at all."""
        return self._read > 0

    def exactly(self, size: int) -> bytes:
        while len(self._data) < size:
            self._more()
        out, self._data = self._data[:size], self._data[size:]
        return out

    def line(self) -> bytes:
        while b"\r\n" not in self._data:
            self._more()
        out, _, self._data = self._data.partition(b"\r\n")
        return out

    def pg_message(self) -> tuple[bytes, bytes]:
        kind = self.exactly(1)
        (length,) = struct.unpack("!I", self.exactly(4))
        if not 4 <= length <= _REPLY_CAP:
            raise ValueError(f"a message of {length} bytes")
        return kind, self.exactly(length - 4)
