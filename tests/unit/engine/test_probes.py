"""Readiness probes against real sockets on 127.0.0.1 that the tests start themselves.

Each probe is one try: ``None`` when the service answers as it should, else one short line
that ends up in the variant's reason. The PostgreSQL and Redis peers speak only as much of
their protocol as the probe reads (``tests/unit/engine/peers.py``).
"""

from __future__ import annotations

import http.server
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from stackmatrix.engine import probes
from stackmatrix.engine.probes import (
    ProbeContext,
    attempt,
    describe,
    poll_interval,
    server_version,
    version_commands,
    version_in_output,
)
from stackmatrix.spec.load import (
    CommandProbe,
    HttpProbe,
    LogProbe,
    PostgresProbe,
    Probe,
    RedisProbe,
    TcpProbe,
)
from tests.unit.engine.peers import (
    greeting,
    hang_up,
    http_peer,
    pg_auth,
    pg_error,
    pg_message,
    pg_startup,
    postgres_peer,
    read_until,
    redis_peer,
    refusing,
    saying,
    serving,
    silent,
    wait_for_close,
)


def _published(container_port: int, host_port: int) -> ProbeContext:
    """A service that publishes *container_port* on 127.0.0.1:*host_port*, and nothing else."""

    def host_port_of(port: int) -> int:
        if port != container_port:
            raise OSError(f"port {port} of 'db' is not published")
        return host_port

    return ProbeContext(
        service="db",
        host_port=host_port_of,
        logs=lambda: pytest.fail("a socket probe read the logs"),
        execute=lambda _command: pytest.fail("a socket probe ran a command"),
    )


def _one_line(reason: str | None) -> str:
    """The reason of a probe that is not ready: present, one line, short."""
    assert reason is not None, "the probe said ready"
    assert "\n" not in reason
    assert len(reason) <= 120, reason
    return reason


@pytest.fixture
def quick_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent peer costs one attempt timeout; keep it short."""
    monkeypatch.setattr(probes, "ATTEMPT_TIMEOUT", 0.3)


# -- tcp --------------------------------------------------------------------------------------


def test_tcp_is_ready_while_the_listener_keeps_the_connection_open() -> None:
    with serving(wait_for_close) as port:
        assert attempt(TcpProbe(port=5432), _published(5432, port)) is None


def test_tcp_is_ready_when_the_server_speaks_first() -> None:
    with serving(greeting(b"SSH-2.0-OpenSSH_9.6\r\n")) as port:
        assert attempt(TcpProbe(port=22), _published(22, port)) is None


def test_tcp_closed_at_once_is_the_docker_proxy_with_nothing_behind_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A generous settle time: the close must be seen even on a loaded machine.
    monkeypatch.setattr(probes, "TCP_SETTLE", 1.0)
    with serving(hang_up) as port:
        reason = attempt(TcpProbe(port=5432), _published(5432, port))
    assert reason == "connection closed at once: nothing listens behind the port"


def _every_socket_probe(port: int) -> list[Probe]:
    return [TcpProbe(port=port), HttpProbe(port=port), PostgresProbe(port=port),
            RedisProbe(port=port)]  # fmt: skip


@pytest.mark.parametrize("kind", ["tcp", "http", "postgres", "redis"])
def test_a_refused_connection_says_so(kind: str) -> None:
    probe = next(p for p in _every_socket_probe(6000) if p.kind == kind)
    with refusing() as port:
        reason = _one_line(attempt(probe, _published(6000, port)))
    assert "Connection refused" in reason
    assert reason.startswith(("ConnectionRefusedError: ", "URLError: "))


@pytest.mark.parametrize("kind", ["tcp", "http", "postgres", "redis"])
def test_an_unpublished_port_is_named(kind: str) -> None:
    probe = next(p for p in _every_socket_probe(6379) if p.kind == kind)
    reason = attempt(probe, _published(5432, 1))
    assert reason == "OSError: port 6379 of 'db' is not published"


# -- http -------------------------------------------------------------------------------------


def test_http_is_ready_on_200_from_the_path_it_asked_for() -> None:
    seen: list[str] = []
    with serving(http_peer(200, seen, reason="OK")) as port:
        assert attempt(HttpProbe(port=8080, path="/healthz"), _published(8080, port)) is None
    assert seen == ["GET /healthz HTTP/1.1"]


@pytest.mark.parametrize(("status", "reason"), [(500, "HTTP 500"), (503, "HTTP 503")])
def test_http_server_errors_are_not_ready(status: int, reason: str) -> None:
    with serving(http_peer(status, [])) as port:
        assert attempt(HttpProbe(port=8080), _published(8080, port)) == reason


def test_http_client_errors_are_not_ready() -> None:
    # The code takes < 400 as ready; HttpProbe's docstring and the JSON schema say
    # "any status below 500". This pins what the code does (see the report of this test).
    with serving(http_peer(404, [])) as port:
        assert attempt(HttpProbe(port=8080), _published(8080, port)) == "HTTP 404"


def test_http_with_a_status_wants_exactly_that_status() -> None:
    with serving(http_peer(200, [])) as port:
        reason = attempt(HttpProbe(port=8080, status=204), _published(8080, port))
    assert reason == "HTTP 200, want 204"


def test_http_with_an_error_status_is_ready_when_it_comes() -> None:
    # e.g. an app that answers 401 until a login: the 401 itself means it is up.
    with serving(http_peer(401, [])) as port:
        assert attempt(HttpProbe(port=8080, status=401), _published(8080, port)) is None


@pytest.mark.usefixtures("quick_attempts")
def test_http_server_that_never_answers_times_out() -> None:
    began = time.monotonic()
    with serving(silent) as port:
        reason = _one_line(attempt(HttpProbe(port=8080), _published(8080, port)))
    assert reason == "TimeoutError: timed out"
    assert time.monotonic() - began < 2


def _read_request_and_hang_up(conn: socket.socket) -> None:
    read_until(conn, b"\r\n\r\n")


def test_http_server_that_hangs_up_without_a_response_says_so() -> None:
    with serving(_read_request_and_hang_up) as port:
        reason = _one_line(attempt(HttpProbe(port=8080), _published(8080, port)))
    assert reason == "RemoteDisconnected: Remote end closed connection without response"


def test_http_garbage_from_the_server_is_a_reason_not_a_crash() -> None:
    # What an HTTP probe meets on a Redis port, say: Redis answers the request line itself.
    with serving(saying(b"-ERR unknown command 'GET'\r\n")) as port:
        reason = _one_line(attempt(HttpProbe(port=6379), _published(6379, port)))
    assert "BadStatusLine" in reason


# -- postgres ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [pg_auth(0), pg_auth(3), pg_auth(5, b"salt"), pg_auth(10, b"SCRAM-SHA-256\0\0")],
    ids=["trust", "password", "md5", "scram"],
)
def test_postgres_is_ready_when_it_asks_for_authentication(reply: bytes) -> None:
    seen: list[tuple[int, dict[str, str]]] = []
    probe = PostgresProbe(port=5432, user="shop", database="orders")
    with serving(postgres_peer(reply, seen)) as port:
        assert attempt(probe, _published(5432, port)) is None
    # Protocol 3.0, and the user and database of the probe.
    assert seen == [(196608, {"user": "shop", "database": "orders"})]


def test_postgres_reads_the_default_user_and_database() -> None:
    seen: list[tuple[int, dict[str, str]]] = []
    with serving(postgres_peer(pg_auth(0), seen)) as port:
        assert attempt(PostgresProbe(port=5432), _published(5432, port)) is None
    assert seen == [(196608, {"user": "postgres", "database": "postgres"})]


def test_postgres_starting_up_gives_the_servers_message() -> None:
    reply = pg_error("57P03", "the database system is starting up")
    with serving(postgres_peer(reply, [])) as port:
        reason = attempt(PostgresProbe(port=5432), _published(5432, port))
    assert reason == "server says: the database system is starting up"


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("28000", 'no pg_hba.conf entry for host "172.18.0.1", user "shop", database "orders"'),
        ("28P01", 'password authentication failed for user "shop"'),
        ("3D000", 'database "orders" does not exist'),
    ],
)
def test_postgres_refusing_this_login_still_accepts_connections(
    sqlstate: str, message: str
) -> None:
    with serving(postgres_peer(pg_error(sqlstate, message), [])) as port:
        assert attempt(PostgresProbe(port=5432), _published(5432, port)) is None


def test_postgres_error_response_is_not_ready() -> None:
    # An error that is not about the login is no readiness.
    reply = pg_error("53300", "sorry, too many clients already")
    with serving(postgres_peer(reply, [])) as port:
        reason = _one_line(attempt(PostgresProbe(port=5432), _published(5432, port)))
    assert reason.startswith("server says: ")


def test_postgres_that_hangs_up_without_a_reply_says_so() -> None:
    seen: list[tuple[int, dict[str, str]]] = []
    with serving(postgres_peer(b"", seen)) as port:
        reason = attempt(PostgresProbe(port=5432), _published(5432, port))
    assert reason == "connection closed without a reply"
    assert len(seen) == 1


@pytest.mark.parametrize("kind", ["http", "postgres", "redis"])
def test_a_server_that_hangs_up_before_reading_is_not_ready(kind: str) -> None:
    # Closing with the probe's bytes unread resets the connection, or not, depending on
    # timing: either way a reason, never ready and never a crash.
    probe = next(p for p in _every_socket_probe(6000) if p.kind == kind)
    with serving(hang_up) as port:
        _one_line(attempt(probe, _published(6000, port)))


def test_postgres_port_answering_something_else_names_the_first_byte() -> None:
    with serving(saying(b"HTTP/1.1 400 Bad Request\r\n\r\n")) as port:
        reason = attempt(PostgresProbe(port=5432), _published(5432, port))
    assert reason == "unexpected reply b'H'"


@pytest.mark.usefixtures("quick_attempts")
def test_postgres_that_never_answers_times_out() -> None:
    with serving(silent) as port:
        reason = attempt(PostgresProbe(port=5432), _published(5432, port))
    assert reason == "TimeoutError: timed out"


# -- redis ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply", [b"+PONG\r\n", b"-NOAUTH Authentication required.\r\n"], ids=["pong", "noauth"]
)
def test_redis_is_ready_on_pong_or_when_it_wants_a_password(reply: bytes) -> None:
    seen: list[bytes] = []
    with serving(redis_peer(reply, seen)) as port:
        assert attempt(RedisProbe(port=6379), _published(6379, port)) is None
    assert seen == [b"PING\r\n"]


def test_redis_loading_its_dataset_is_not_ready_and_quotes_the_reply() -> None:
    reply = b"-LOADING Redis is loading the dataset in memory\r\n"
    with serving(redis_peer(reply, [])) as port:
        reason = _one_line(attempt(RedisProbe(port=6379), _published(6379, port)))
    assert reason == "reply b'-LOADING Redis is loading the dataset in'"  # 40 bytes at most


def test_redis_garbage_is_quoted_not_decoded() -> None:
    with serving(redis_peer(b"\x00\xff\xfe\x15\x03\x01\x00\x02\x02\n", [])) as port:
        reason = _one_line(attempt(RedisProbe(port=6379), _published(6379, port)))
    assert reason == r"reply b'\x00\xff\xfe\x15\x03\x01\x00\x02\x02\n'"


def test_redis_that_hangs_up_without_a_reply_shows_an_empty_reply() -> None:
    seen: list[bytes] = []
    with serving(redis_peer(b"", seen)) as port:
        reason = attempt(RedisProbe(port=6379), _published(6379, port))
    assert reason == "reply b''"
    assert seen == [b"PING\r\n"]


@pytest.mark.usefixtures("quick_attempts")
def test_redis_that_never_answers_times_out() -> None:
    with serving(silent) as port:
        reason = attempt(RedisProbe(port=6379), _published(6379, port))
    assert reason == "TimeoutError: timed out"


# -- log and command: through the context, no socket ------------------------------------------


def _engine(logs: str = "", exit_code: int = 0, ran: list[list[str]] | None = None) -> ProbeContext:
    def execute(command: list[str]) -> int:
        if ran is not None:
            ran.append(command)
        return exit_code

    def no_port(port: int) -> int:
        raise AssertionError(f"a log or command probe asked for port {port}")

    return ProbeContext(service="db", host_port=no_port, logs=lambda: logs, execute=execute)


_PG_LOG = (
    "PostgreSQL init process complete; ready for start up.\n"
    "2026-03-14 09:20:03.101 UTC [1] LOG:  database system is ready to accept connections\n"
)


@pytest.mark.parametrize(
    ("pattern", "ready"),
    [
        ("ready to accept connections$", True),  # $ at the end of any line: MULTILINE
        (r"^PostgreSQL init process complete", True),
        (r"^2026-03-14 .* LOG: ", True),
        (r"^database system", False),  # ^ is the start of a line, not of any word
        ("listening on IPv4", False),
    ],
)
def test_log_probe_matches_any_line_of_the_log(pattern: str, ready: bool) -> None:
    reason = attempt(LogProbe(pattern=pattern), _engine(logs=_PG_LOG))
    assert reason == (None if ready else f"no log line matches /{pattern}/ yet")


def test_command_probe_runs_the_command_in_the_service_and_reads_its_exit_code() -> None:
    ran: list[list[str]] = []
    probe = CommandProbe(command=("pg_isready", "-U", "shop"))
    assert attempt(probe, _engine(exit_code=0, ran=ran)) is None
    assert ran == [["pg_isready", "-U", "shop"]]
    assert attempt(probe, _engine(exit_code=2)) == "command exited 2"


# -- names and pacing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "name"),
    [
        (TcpProbe(port=6379), "tcp:6379"),
        (PostgresProbe(port=5432, user="shop"), "postgres:5432"),
        (RedisProbe(port=6380), "redis:6380"),
        (HttpProbe(port=8080, path="/healthz"), "http:8080/healthz"),
        (HttpProbe(port=80), "http:80/"),
        (LogProbe(pattern="ready to accept"), "log /ready to accept/"),
        (CommandProbe(command=("pg_isready", "-q")), "command pg_isready -q"),
    ],
)
def test_each_probe_has_a_short_name(probe: Probe, name: str) -> None:
    assert describe(probe) == name


_SOCKET_PROBES: list[Callable[[], Probe]] = [
    lambda: TcpProbe(port=1),
    lambda: HttpProbe(port=1),
    lambda: PostgresProbe(port=1),
    lambda: RedisProbe(port=1),
]


def test_probes_that_start_a_docker_process_are_tried_less_often() -> None:
    engine = {poll_interval(LogProbe(pattern="x")), poll_interval(CommandProbe(command=("x",)))}
    sockets = {poll_interval(make()) for make in _SOCKET_PROBES}
    assert len(engine) == 1
    assert len(sockets) == 1
    assert min(engine) > max(sockets)


def test_an_http_probe_reaches_a_port_published_on_ipv6() -> None:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6

    with Server(("::1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        context = ProbeContext(
            service="web",
            host_port=lambda _port: server.server_address[1],
            logs=lambda: "",
            execute=lambda _command: 0,
            host=lambda _port: "::1",
        )
        try:
            assert attempt(HttpProbe(port=80, path="/up"), context) is None
        finally:
            server.shutdown()
    assert seen == ["/up"]


# -- the server's own version -------------------------------------------------------------------
# A PostgreSQL server with trust authentication sends AuthenticationOk, then ParameterStatus
# messages (server_version among them), BackendKeyData and ReadyForQuery. Redis answers
# `INFO server` with one bulk string of `field:value` lines.

LOOPBACK = "127.0.0.1"


def _pg_status(name: str, value: str) -> bytes:
    return pg_message(b"S", name.encode() + b"\0" + value.encode() + b"\0")


PG_SESSION = (
    pg_auth(0)
    + _pg_status("application_name", "")
    + _pg_status("client_encoding", "UTF8")
    + _pg_status("server_version", "15.14 (Debian 15.14-0+deb12u1)")
    + _pg_status("TimeZone", "Etc/UTC")
    + pg_message(b"K", struct.pack("!II", 4242, 17))
    + pg_message(b"Z", b"I")
)


def _pg_then_goodbye(reply: bytes, seen: list[bytes]) -> Callable[[socket.socket], None]:
    """A server that sends *reply* after the StartupMessage and records what comes next."""

    def answer(conn: socket.socket) -> None:
        pg_startup(conn)
        conn.sendall(reply)
        seen.append(read_until(conn, b"\x00\x00\x00\x04"))

    return answer


def test_postgres_with_trust_authentication_says_its_server_version() -> None:
    goodbye: list[bytes] = []
    with serving(_pg_then_goodbye(PG_SESSION, goodbye)) as port:
        found = server_version(PostgresProbe(port=5432), (LOOPBACK, port))
    assert found == ("15.14 (Debian 15.14-0+deb12u1)", "postgres")
    assert goodbye == [b"X\x00\x00\x00\x04"]  # Terminate: the session ends politely


def test_postgres_messages_split_across_reads_still_give_the_version() -> None:
    def trickle(conn: socket.socket) -> None:
        pg_startup(conn)
        for start in range(0, len(PG_SESSION), 7):
            conn.sendall(PG_SESSION[start : start + 7])
            time.sleep(0.001)
        wait_for_close(conn)

    with serving(trickle) as port:
        assert server_version(PostgresProbe(port=5432), (LOOPBACK, port))[0].startswith("15.14")


@pytest.mark.parametrize(
    "reply",
    [
        pg_auth(10, b"SCRAM-SHA-256\0\0"),  # it wants a password the probe does not have
        pg_auth(5, b"salt"),
        pg_error("3D000", 'database "postgres" does not exist'),
        pg_auth(0) + pg_message(b"Z", b"I"),  # ready, and never said its version
        b"",  # hung up
        b"N\xff\xff\xff\xff",  # a message length no server sends
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
    ],
    ids=["scram", "md5", "no-database", "no-version", "hang-up", "huge-length", "not-postgres"],
)
def test_postgres_that_does_not_say_its_version_gives_nothing(reply: bytes) -> None:
    with serving(postgres_peer(reply, [])) as port:
        assert server_version(PostgresProbe(port=5432), (LOOPBACK, port)) == ("", "")


def test_a_silent_server_gives_no_version_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(probes, "VERSION_TIMEOUT", 0.3)
    for probe in (PostgresProbe(port=5432), RedisProbe(port=6379)):
        with serving(silent) as port:
            started = time.monotonic()
            assert server_version(probe, (LOOPBACK, port)) == ("", "")
        assert time.monotonic() - started < 3


def test_no_server_at_all_gives_no_version() -> None:
    with refusing() as port:
        assert server_version(PostgresProbe(port=5432), (LOOPBACK, port)) == ("", "")
        assert server_version(RedisProbe(port=6379), (LOOPBACK, port)) == ("", "")


def _info(*lines: str) -> bytes:
    body = "".join(f"{line}\r\n" for line in lines).encode()
    return b"$" + str(len(body)).encode() + b"\r\n" + body + b"\r\n"


def test_redis_says_its_version_in_info_server() -> None:
    seen: list[bytes] = []
    reply = _info(
        "# Server", "redis_version:7.0.15", "redis_git_sha1:00000000", "redis_mode:standalone"
    )
    with serving(redis_peer(reply, seen)) as port:
        assert server_version(RedisProbe(port=6379), (LOOPBACK, port)) == ("7.0.15", "redis")
    assert seen == [b"INFO server\r\n"]


def test_valkey_says_its_own_version_not_the_redis_one_it_is_compatible_with() -> None:
    reply = _info("# Server", "redis_version:7.2.4", "server_name:valkey", "valkey_version:8.1.1")
    with serving(redis_peer(reply, [])) as port:
        found = server_version(RedisProbe(port=6379), (LOOPBACK, port))
    assert found == ("valkey 8.1.1", "valkey")


@pytest.mark.parametrize(
    "reply",
    [
        b"-NOAUTH Authentication required.\r\n",
        b"-LOADING Redis is loading the dataset in memory\r\n",
        _info("# Server", "redis_mode:standalone"),
        b"$99999999\r\n",
        b"+PONG\r\n",
        b"",
    ],
    ids=["noauth", "loading", "no-version-field", "huge", "not-a-bulk-string", "hang-up"],
)
def test_redis_that_does_not_say_its_version_gives_nothing(reply: bytes) -> None:
    with serving(redis_peer(reply, [])) as port:
        assert server_version(RedisProbe(port=6379), (LOOPBACK, port)) == ("", "")


@pytest.mark.parametrize(
    "probe",
    [TcpProbe(port=1), HttpProbe(port=1), LogProbe(pattern="x"), CommandProbe(command=("x",))],
    ids=["tcp", "http", "log", "command"],
)
def test_other_probe_kinds_cannot_ask_a_version(probe: Probe) -> None:
    assert server_version(probe, (LOOPBACK, 1)) == ("", "")
    assert version_commands(probe) == ()
    assert version_in_output(probe, "v=1.2.3 (PostgreSQL) 9") == ""


@pytest.mark.parametrize(
    ("probe", "output", "version"),
    [
        (PostgresProbe(port=5432), "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n",
         "15.14 (Debian 15.14-0+deb12u1)"),
        (PostgresProbe(port=5432), "psql (PostgreSQL) 17.2\n", "17.2"),
        (PostgresProbe(port=5432), "sh: postgres: not found\n", ""),
        (RedisProbe(port=6379), "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0",
         "7.0.15"),
        (RedisProbe(port=6379), "Valkey server v=8.1.1 sha=00000000:1 malloc=libc",
         "valkey 8.1.1"),
        (RedisProbe(port=6379), "", ""),
    ],
    ids=["postgres", "psql", "postgres-missing", "redis", "valkey", "nothing"],
)  # fmt: skip
def test_a_version_command_inside_the_container_is_read_as_the_server_says_it(
    probe: Probe, output: str, version: str
) -> None:
    assert version_commands(probe)  # there is something to run for this kind
    assert version_in_output(probe, output) == version


def test_a_server_that_trickles_its_reply_is_cut_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(probes, "VERSION_TIMEOUT", 0.5)

    def trickle(conn: socket.socket) -> None:
        read_until(conn, b"\r\n")
        conn.sendall(b"$60\r\n")
        for _ in range(60):  # one byte every 0.1 s: each read is quick, the whole is not
            conn.sendall(b"x")
            time.sleep(0.1)

    with serving(trickle) as port:
        started = time.monotonic()
        assert server_version(RedisProbe(port=6379), (LOOPBACK, port)) == ("", "")
        assert time.monotonic() - started < 2


def test_the_version_question_opens_the_session_the_readiness_probe_opens() -> None:
    probe = PostgresProbe(port=5432, user="shop", database="orders")
    ready: list[tuple[int, dict[str, str]]] = []
    asked: list[tuple[int, dict[str, str]]] = []
    with serving(postgres_peer(pg_auth(0), ready)) as port:
        assert attempt(probe, _published(5432, port)) is None
    with serving(postgres_peer(PG_SESSION, asked)) as port:
        assert server_version(probe, (LOOPBACK, port))[1] == "postgres"
    assert ready == asked == [(196608, {"user": "shop", "database": "orders"})]
