"""The foundation: a real two-service stack comes up healthy, answers on loopback, goes away."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

from python_on_whales import DockerClient

from .conftest import LABEL, ComposeUp, labelled_objects

# perl-base is part of every Debian minbase image: enough for a tiny TCP echo server.
ECHO_SERVER = (
    "use IO::Socket::INET; $|=1;"
    "my $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000', Listen => 5, ReuseAddr => 1)"
    " or die $!; print qq(listening\\n);"
    "while (my $c = $s->accept) { my $l = <$c>; print $c qq(echo:$l); close $c }"
)


def _write_stack(tmp_path: Path, run_label: str) -> Path:
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        textwrap.dedent(
            f"""\
            services:
              echo:
                image: debian:bookworm-slim
                init: true
                command: ["perl", "-e", {ECHO_SERVER.replace("$", "$$")!r}]
                ports: [{{target: 7000, host_ip: 127.0.0.1}}]
                labels: {{{LABEL}: {run_label}}}
                healthcheck:
                  test: ["CMD", "perl", "-MIO::Socket::INET", "-e",
                         "exit !IO::Socket::INET->new(q(127.0.0.1:7000))"]
                  interval: 1s
                  timeout: 2s
                  retries: 30
              client:
                image: debian:bookworm-slim
                init: true
                command: ["sleep", "infinity"]
                labels: {{{LABEL}: {run_label}}}
                depends_on: {{echo: {{condition: service_healthy}}}}
            networks:
              default:
                labels: {{{LABEL}: {run_label}}}
            """
        )
    )
    return compose


def _published_port(client: DockerClient, service: str, port: int) -> tuple[str, int]:
    (container,) = client.compose.ps(services=[service])
    bindings = (container.network_settings.ports or {})[f"{port}/tcp"]
    assert bindings, f"{service}:{port} is not published"
    return bindings[0]["HostIp"], int(bindings[0]["HostPort"])


def test_two_service_stack_is_healthy_reachable_and_removed(
    compose_up: ComposeUp, tmp_path: Path, session_run_id: str
) -> None:
    client = compose_up(_write_stack(tmp_path, session_run_id), "engine")

    states = {
        (c.config.labels or {})["com.docker.compose.service"]: c.state for c in client.compose.ps()
    }
    assert states["echo"].health is not None
    assert states["echo"].health.status == "healthy"
    assert states["client"].running

    host, port = _published_port(client, "echo", 7000)
    assert host == "127.0.0.1"
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"hello\n")
        assert conn.recv(100) == b"echo:hello\n"

    # The second service reaches the first through the stack's own network, by service name.
    reply = client.compose.execute(
        "client", ["bash", "-c", "exec 3<>/dev/tcp/echo/7000; echo ping >&3; cat <&3"], tty=False
    )
    assert reply == "echo:ping"

    client.compose.down(volumes=True, remove_orphans=True, timeout=2, quiet=True)
    assert labelled_objects(session_run_id) == set()
    assert client.compose.ps(all=True) == []
