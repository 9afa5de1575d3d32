"""Which service holds a stack back, and whether waiting longer could help - without an engine.

The state of each container is what ``docker inspect`` prints; ``inspect_project.json`` is that
output for one compose project (a healthy database, a cache without a healthcheck, a finished
migration job, an app that crashed, a container the kernel killed for memory). A ``Stack`` is
built for real: its constructor only prepares a python-on-whales client and runs nothing.
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from python_on_whales.components.container.models import ContainerInspectResult
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import docker as docker_module
from stackmatrix.engine import stack as stack_module
from stackmatrix.engine.docker import EngineGone, EngineTimeout, error_text, run_engine
from stackmatrix.engine.events import HEALTH_EVENT_FALLBACK, HEALTH_POLL_INTERVAL, ContainerEvents
from stackmatrix.engine.services import ServiceState
from stackmatrix.engine.services import final_reason as _final_reason
from stackmatrix.engine.services import service_state as _service_state
from stackmatrix.engine.stack import Cancelled, CappedLog, Stack, StackFailure
from stackmatrix.spec.load import RedisProbe, TcpProbe
from tests.unit.engine.peers import redis_peer, refusing, serving, wait_for_close

GOLDEN = Path(__file__).with_name("inspect_project.json")
PROJECT = "shop-pg-15-r1"


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No docker (nor setsid) on PATH: a test that reached the engine would fail loudly."""
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _inspected() -> dict[str, ServiceState]:
    found: list[dict[str, Any]] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    states = (_service_state(ContainerInspectResult(**item)) for item in found)
    return {state.service: state for state in states}


def _stack(tmp_path: Path, services: Sequence[str]) -> Stack:
    return Stack(
        project=PROJECT,
        compose_file=tmp_path / "compose.yaml",
        project_directory=tmp_path,
        services=list(services),
        cancel=threading.Event(),
    )


def _state(
    service: str,
    status: str = "running",
    *,
    health: str | None = None,
    exit_code: int | None = None,
    oom_killed: bool = False,
    health_output: str = "",
    ports: Mapping[str, str] | None = None,
) -> ServiceState:
    code = exit_code if exit_code is not None else (0 if status == "running" else None)
    return ServiceState(
        service=service,
        container_id=f"{service}-0123456789ab",
        status=status,
        health=health,
        exit_code=code,
        health_output=health_output,
        ports=ports or {},
        oom_killed=oom_killed,
    )


# -- what `docker inspect` says, read ---------------------------------------------------------


def test_inspect_output_reads_into_service_states() -> None:
    states = _inspected()
    assert list(states) == ["db", "cache", "migrate", "app", "hog"]  # by the compose label
    db = states["db"]
    assert (db.status, db.health, db.oom_killed) == ("running", "healthy", False)
    assert db.container_id.startswith("5c3d1b2a9e8f")
    # The last health check, not the first.
    assert db.health_output == "exit 0: /var/run/postgresql:5432 - accepting connections"
    # tcp ports by number alone, other protocols keep theirs.
    assert db.ports == {"5432": "127.0.0.1:32770", "514/udp": "127.0.0.1:32771"}
    assert states["cache"].health is None  # no healthcheck: no Health in the output at all
    assert states["hog"].oom_killed
    assert states["hog"].exit_code == 137
    assert (states["migrate"].status, states["migrate"].exit_code) == ("exited", 0)


def test_a_port_bound_on_every_interface_is_read_once_without_its_ipv6_twin() -> None:
    assert _inspected()["cache"].ports == {"6379": "0.0.0.0:6379"}


def test_a_container_without_compose_labels_is_named_by_its_container_name() -> None:
    bare = ContainerInspectResult(**{"Id": "abc", "Name": "lonely", "State": {"Status": "created"}})
    state = _service_state(bare)
    assert (state.service, state.status, state.health, state.ports) == (
        "lonely", "created", None, {}
    )  # fmt: skip


def test_an_empty_binding_host_ip_means_loopback() -> None:
    item = {
        "Id": "abc",
        "Config": {"Labels": {"com.docker.compose.service": "db"}},
        "State": {"Status": "running"},
        "NetworkSettings": {"Ports": {"5432/tcp": [{"HostIp": "", "HostPort": "33265"}],
                                      "9187/tcp": None}},
    }  # fmt: skip
    assert _service_state(ContainerInspectResult(**item)).ports == {"5432": "127.0.0.1:33265"}


# -- the blocking rule ------------------------------------------------------------------------


def test_the_golden_project_is_ready_without_the_services_that_failed(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ["db", "cache", "migrate"])
    assert stack._blocking(_inspected()) is None  # migrate exited 0: a job that finished


def test_an_oom_killed_container_blocks_for_good_and_says_so(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ["db", "cache", "migrate", "hog"])
    blocking = stack._blocking(_inspected())
    assert blocking is not None
    state, final = blocking
    assert (state.service, final) == ("hog", True)
    assert _final_reason(state) == "was killed: out of memory (OOMKilled, exit code 137)"


def test_a_crashed_container_with_a_healthcheck_is_reported_by_its_exit_code(
    tmp_path: Path,
) -> None:
    stack = _stack(tmp_path, ["db", "app"])
    blocking = stack._blocking(_inspected())
    assert blocking is not None
    state, final = blocking
    assert (state.service, final) == ("app", True)
    assert _final_reason(state) == "exited with code 1"


def test_an_oom_kill_is_named_even_when_the_service_has_a_healthcheck() -> None:
    state = _state("db", "exited", health="unhealthy", exit_code=137, oom_killed=True)
    assert _final_reason(state) == "was killed: out of memory (OOMKilled, exit code 137)"


@pytest.mark.parametrize(
    ("state", "final", "reason"),
    [
        pytest.param(_state("db", "created"), False, None, id="created"),
        pytest.param(_state("db", health="starting"), False, None, id="starting"),
        pytest.param(_state("db", "restarting", exit_code=1), False, None, id="restarting"),
        pytest.param(_state("db", "paused"), False, None, id="paused"),
        pytest.param(_state("db", health="unhealthy"), True, "is unhealthy", id="unhealthy"),
        pytest.param(_state("db", "exited", exit_code=1), True, "exited with code 1", id="exit-1"),
        pytest.param(
            _state("db", "exited", exit_code=137), True, "exited with code 137", id="exit-137"
        ),
        pytest.param(_state("db", "dead", exit_code=255), True, "exited with code 255", id="dead"),
        pytest.param(
            _state("db", "exited", exit_code=137, oom_killed=True),
            True,
            "was killed: out of memory (OOMKilled, exit code 137)",
            id="oom",
        ),
    ],
)
def test_a_service_blocks_and_only_some_states_are_final(
    tmp_path: Path, state: ServiceState, final: bool, reason: str | None
) -> None:
    stack = _stack(tmp_path, ["db"])
    assert stack._blocking({"db": state}) == (state, final)
    if reason is not None:
        assert _final_reason(state) == reason


@pytest.mark.parametrize(
    "state",
    [
        _state("db"),
        _state("db", health="healthy"),
        _state("db", "exited", exit_code=0),
    ],
    ids=["running", "healthy", "job-done"],
)
def test_ready_states_do_not_block(tmp_path: Path, state: ServiceState) -> None:
    assert _stack(tmp_path, ["db"])._blocking({"db": state}) is None


def test_a_service_not_created_yet_blocks_but_not_for_good(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ["db", "app"])
    blocking = stack._blocking({"db": _state("db", health="healthy")})
    assert blocking == (ServiceState("app", "", "missing", None, None, "", {}), False)


def test_services_are_judged_in_the_stacks_order(tmp_path: Path) -> None:
    # The app has crashed already, but the database ahead of it is still starting: it is the
    # database that is reported (and the crash once the database is healthy).
    stack = _stack(tmp_path, ["db", "app"])
    states = {
        "app": _state("app", "exited", exit_code=3),
        "db": _state("db", health="starting"),
    }
    assert stack._blocking(states) == (states["db"], False)
    states["db"] = _state("db", health="healthy")
    assert stack._blocking(states) == (states["app"], True)


def test_containers_of_services_the_stack_does_not_wait_for_are_ignored(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ["db"])
    states = {"db": _state("db"), "debug-shell": _state("debug-shell", "exited", exit_code=1)}
    assert stack._blocking(states) is None


# -- waiting for health, with the engine's answers given --------------------------------------


class _ScriptedStack(Stack):
    """A Stack whose engine answers are given: each refresh reads the next set of states (the
    last one repeats), logs are fixed text. Nothing else is replaced."""

    def __init__(
        self,
        tmp_path: Path,
        services: Sequence[str],
        readings: Sequence[Mapping[str, ServiceState]],
        log_text: str = "",
    ) -> None:
        super().__init__(
            project=PROJECT,
            compose_file=tmp_path / "compose.yaml",
            project_directory=tmp_path,
            services=list(services),
            cancel=threading.Event(),
        )
        self._readings = list(readings)
        self._log_text = log_text
        self.refreshes = 0

    def refresh(self) -> dict[str, ServiceState]:
        self.refreshes += 1
        reading = self._readings.pop(0) if len(self._readings) > 1 else self._readings[0]
        self.states = dict(reading)
        return self.states

    def logs(self, service: str, tail: int | None = None) -> str:
        return self._log_text


@pytest.fixture
def no_event_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """`docker events` cannot start: the wait polls the state, as it does without a stream."""
    monkeypatch.setattr(
        stack_module, "docker_command", lambda _client, *args: ["/nonexistent/docker", *args]
    )


@pytest.mark.usefixtures("no_event_stream")
def test_waiting_ends_when_every_service_is_healthy(tmp_path: Path) -> None:
    starting, healthy = _state("db", health="starting"), _state("db", health="healthy")
    created, done = _state("migrate", "created"), _state("migrate", "exited", exit_code=0)
    stack = _ScriptedStack(
        tmp_path,
        ["db", "migrate"],
        [{"db": starting}, {"db": starting, "migrate": created}, {"db": healthy, "migrate": done}],
    )
    stack.wait_until_healthy(timeout=10)
    assert stack.refreshes == 3


@pytest.mark.usefixtures("no_event_stream")
def test_a_crash_fails_the_wait_at_once_with_its_exit_code_and_log(tmp_path: Path) -> None:
    log = "".join(f"line {i}\n" for i in range(100)) + 'Error: relation "orders" does not exist\n'
    healthy = _state("db", health="healthy")
    created, crashed = _state("migrate", "created"), _state("migrate", "exited", exit_code=2)
    stack = _ScriptedStack(
        tmp_path,
        ["db", "migrate"],
        [{"db": healthy, "migrate": created}, {"db": healthy, "migrate": crashed}],
        log_text=log,
    )
    began = time.monotonic()
    with pytest.raises(StackFailure) as failure:
        stack.wait_until_healthy(timeout=30)
    assert time.monotonic() - began < 5  # final: no waiting for the timeout
    assert failure.value.reason == "service 'migrate' exited with code 2"
    assert failure.value.service == "migrate"
    detail = failure.value.detail.splitlines()
    assert detail[0] == "service migrate: status exited, exit code 2"
    assert detail[1] == "last 30 log lines:"
    assert detail[-1] == 'Error: relation "orders" does not exist'


@pytest.mark.usefixtures("no_event_stream")
def test_a_service_that_stays_starting_fails_at_the_deadline(tmp_path: Path) -> None:
    starting = _state("db", health="starting", health_output="exit 2: no response")
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": starting}])
    began = time.monotonic()
    with pytest.raises(StackFailure) as failure:
        stack.wait_until_healthy(timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 3
    assert failure.value.reason == "service 'db' did not become healthy within 0.3 s"
    assert failure.value.detail.splitlines() == [
        "service db: status running, health starting",
        "last health check: exit 2: no response",
        "log is empty",
    ]


@pytest.mark.usefixtures("no_event_stream")
def test_a_cancelled_run_stops_waiting(tmp_path: Path) -> None:
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": _state("db", health="starting")}])
    stack._cancel.set()
    with pytest.raises(Cancelled):
        stack.wait_until_healthy(timeout=30)
    with pytest.raises(Cancelled):
        stack.wait_until_ready({"db": (TcpProbe(port=5432),)}, timeout=30)


EARLIER, LATER = 1_796_000_000_000_000_000, 1_796_000_001_000_000_000  # epoch ns


def _event_stream(monkeypatch: pytest.MonkeyPatch, lines: Sequence[str]) -> None:
    """`docker events` prints *lines* (as ``--format '{{.Actor.ID}} {{.TimeNano}}
    {{.Action}}'`` does), then stays open."""
    script = "".join(f"print({line!r}, flush=True); " for line in lines)
    monkeypatch.setattr(
        stack_module,
        "docker_command",
        lambda _client, *args: [sys.executable, "-c", script + "import time; time.sleep(30)"],
    )


def test_a_healthy_event_ends_the_wait_without_reading_the_state_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # db and cache start; the stream then says each turned healthy. Reading the state once
    # more would show them still starting (the last reading repeats): the events are enough.
    _event_stream(
        monkeypatch,
        [
            f"db-0123456789ab {LATER} health_status: healthy",
            f"cache-0123456789ab {LATER} health_status: healthy",
        ],
    )
    starting = {"db": _state("db", health="starting"), "cache": _state("cache", health="starting")}
    stack = _ScriptedStack(tmp_path, ["db", "cache"], [starting])
    began = time.monotonic()
    stack.wait_until_healthy(timeout=30)
    assert time.monotonic() - began < 5
    assert stack.refreshes == 1
    assert {s.health for s in stack.states.values()} == {"healthy"}


def test_a_healthy_event_from_before_the_container_last_started_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine restarted db after it said "healthy"; that event arrives late, after db was
    # read running and starting again. It says nothing of db now: the wait goes on until db
    # is read healthy.
    _event_stream(monkeypatch, [f"db-0123456789ab {EARLIER} health_status: healthy"])
    monkeypatch.setattr("stackmatrix.engine.events.HEALTH_EVENT_FALLBACK", 0.2)
    restarted = replace(_state("db", health="starting"), started_ns=LATER)
    healthy = replace(_state("db", health="healthy"), started_ns=LATER)
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": restarted}, {"db": healthy}])
    stack.wait_until_healthy(timeout=30)
    assert stack.refreshes == 2  # the stale event did not end the wait


@pytest.mark.parametrize(
    "line",
    [f"db-0123456789ab {LATER} health_status: unhealthy", f"db-0123456789ab {LATER} die",
     f"other-0123456789ab {LATER} health_status: healthy"],
    ids=["unhealthy", "died", "unknown-container"],
)  # fmt: skip
def test_any_other_event_reads_the_state_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    _event_stream(monkeypatch, [line])
    # No reading on a timer here: only the event can make the wait read the state again.
    monkeypatch.setattr("stackmatrix.engine.events.HEALTH_EVENT_FALLBACK", 60.0)
    starting, crashed = _state("db", health="starting"), _state("db", "exited", exit_code=3)
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": starting}, {"db": crashed}])
    began = time.monotonic()
    with pytest.raises(StackFailure, match="exited with code 3"):
        stack.wait_until_healthy(timeout=30)
    assert stack.refreshes == 2
    assert time.monotonic() - began < 10  # read again because of the event, not a timer


# -- waiting for the ready probes, against real sockets ---------------------------------------


def test_ready_probes_reach_the_published_port_of_the_service(tmp_path: Path) -> None:
    with serving(wait_for_close) as port:
        db = _state("db", ports={"5432": f"127.0.0.1:{port}"})
        stack = _ScriptedStack(tmp_path, ["db"], [{"db": db}])
        stack.states = {"db": db}
        stack.wait_until_ready({"db": (TcpProbe(port=5432),)}, timeout=5)
    assert stack.refreshes == 0  # the ports were known: no engine call


def test_ready_probes_are_tried_again_until_they_pass(tmp_path: Path) -> None:
    seen: list[bytes] = []
    loading = redis_peer(b"-LOADING Redis is loading the dataset in memory\r\n", seen)
    pong = redis_peer(b"+PONG\r\n", seen)

    def answer(conn: socket.socket) -> None:
        (loading if len(seen) < 2 else pong)(conn)

    with serving(answer) as port:
        cache = _state("cache", ports={"6379": f"127.0.0.1:{port}"})
        stack = _ScriptedStack(tmp_path, ["cache"], [{"cache": cache}])
        stack.wait_until_ready({"cache": (RedisProbe(port=6379),)}, timeout=5)
    assert seen == [b"PING\r\n"] * 3


def test_a_probe_that_keeps_failing_names_itself_and_its_last_reason(tmp_path: Path) -> None:
    with refusing() as port:
        db = _state("db", ports={"5432": f"127.0.0.1:{port}"})
        stack = _ScriptedStack(tmp_path, ["db"], [{"db": db}], log_text="FATAL: lock file\n")
        with pytest.raises(StackFailure) as failure:
            stack.wait_until_ready({"db": (TcpProbe(port=5432),)}, timeout=0.3)
    assert failure.value.reason == (
        "service 'db' not ready: probe tcp:5432 still failing after 0.3 s "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    )
    assert failure.value.service == "db"
    assert failure.value.detail.splitlines() == [
        "service db: status running",
        "last 30 log lines:",
        "FATAL: lock file",
    ]


def test_a_probe_of_a_port_the_service_does_not_publish_says_so(tmp_path: Path) -> None:
    db = _state("db", ports={"5432": "127.0.0.1:1"})
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": db}])
    with pytest.raises(StackFailure) as failure:
        stack.wait_until_ready({"db": (TcpProbe(port=6379),)}, timeout=0.2)
    assert failure.value.reason.endswith("(OSError: port 6379 of 'db' is not published)")


# -- what a failing service's report shows ----------------------------------------------------


def test_diagnosis_of_an_oom_kill(tmp_path: Path) -> None:
    hog = _inspected()["hog"]
    stack = _ScriptedStack(tmp_path, ["hog"], [{"hog": hog}], log_text="allocating\n\n")
    assert stack.diagnose(hog).splitlines() == [
        "service hog: status exited, exit code 137, killed by the kernel: out of memory",
        "last 30 log lines:",
        "allocating",
    ]


def test_diagnosis_of_an_unhealthy_service_shows_its_last_health_check(tmp_path: Path) -> None:
    app = _inspected()["app"]
    stack = _ScriptedStack(tmp_path, ["app"], [{"app": app}])
    assert stack.diagnose(app).splitlines() == [
        "service app: status exited, health unhealthy, exit code 1",
        "last health check: exit 7: curl: (7) Failed to connect to localhost port 8000 after "
        "0 ms: Couldn't connect to server",
        "log is empty",
    ]


def test_ports_and_running_containers_come_from_the_last_reading(tmp_path: Path) -> None:
    stack = _ScriptedStack(tmp_path, [], [_inspected()])
    stack.refresh()
    assert stack.ports() == {
        "app": {},
        "cache": {"6379": "0.0.0.0:6379"},
        "db": {"5432": "127.0.0.1:32770", "514/udp": "127.0.0.1:32771"},
        "hog": {},
        "migrate": {},
    }
    assert list(stack.ports()) == sorted(stack.ports())
    assert sorted(stack.container_ids().values()) == ["cache", "db"]


# -- the event stream that paces the health wait ----------------------------------------------


def _events(script: str) -> ContainerEvents:
    # Any command stands in for `docker events`: what matters is that it prints lines.
    return ContainerEvents([sys.executable, "-c", script], PROJECT, since=0.0, until=1.0)


def test_an_event_ends_the_wait_early() -> None:
    cancel = threading.Event()
    with _events("import time; print('health_status: healthy', flush=True); time.sleep(30)") as ev:
        began = time.monotonic()
        ev.wait(10, cancel)
        assert time.monotonic() - began < 5
        assert ev.interval == HEALTH_EVENT_FALLBACK  # the stream is alive: read seldom


def test_without_an_event_stream_the_wait_is_a_short_poll() -> None:
    cancel = threading.Event()
    events = ContainerEvents(["/nonexistent/docker"], PROJECT, since=0.0, until=1.0)
    with events as ev:
        assert ev.interval == HEALTH_POLL_INTERVAL
        began = time.monotonic()
        ev.wait(0.2, cancel)
        assert 0.2 <= time.monotonic() - began < 2


def test_a_stream_that_ends_falls_back_to_polling() -> None:
    cancel = threading.Event()
    with _events("pass") as ev:
        ev.wait(10, cancel)  # the end of the stream wakes the wait too
        deadline = time.monotonic() + 5
        while ev.interval != HEALTH_POLL_INTERVAL and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ev.interval == HEALTH_POLL_INTERVAL


def test_a_cancelled_run_ends_the_wait_at_once() -> None:
    cancel = threading.Event()
    cancel.set()
    with _events("import time; time.sleep(30)") as ev:
        began = time.monotonic()
        ev.wait(10, cancel)
        assert time.monotonic() - began < 1


# -- bounded engine calls ---------------------------------------------------------------------


@pytest.fixture
def engine_state() -> Iterator[None]:
    """What the process knows of the engine's health starts and ends clean."""
    engine = docker_module._Engine
    engine.frozen_at, engine.suspect, engine.silent = None, False, ""
    yield
    engine.frozen_at, engine.suspect, engine.silent = None, False, ""


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.mark.usefixtures("engine_state")
def test_an_engine_call_returns_its_output() -> None:
    assert run_engine(_python("print('abc')"), what="`docker x`") == "abc\n"


@pytest.mark.usefixtures("engine_state")
def test_a_call_past_its_deadline_is_killed_with_what_it_started_and_named() -> None:
    began = time.monotonic()
    with pytest.raises(EngineTimeout) as timeout:
        run_engine(
            _python(
                "import subprocess, sys, time;"
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']);"
                "time.sleep(30)"
            ),
            what="`docker logs`",
            timeout=0.5,
        )
    assert time.monotonic() - began < 3
    assert str(timeout.value) == "the Docker engine did not answer `docker logs` within 0.5 s"
    assert timeout.value.what == "`docker logs`"


@pytest.mark.usefixtures("engine_state")
def test_an_idle_deadline_lets_a_call_run_while_its_output_flows() -> None:
    chunks: list[bytes] = []
    code = "import sys, time\nfor i in range(8):\n    print(i, flush=True); time.sleep(0.1)"
    run_engine(_python(code), what="`docker logs`", timeout=0.5, idle=True, sink=chunks.append)
    assert b"".join(chunks).split() == [str(i).encode() for i in range(8)]


@pytest.mark.usefixtures("engine_state")
def test_after_a_cancel_a_call_on_a_silent_engine_gives_up_at_once() -> None:
    # No docker on PATH: `docker version` cannot answer, as on a frozen engine.
    cancel = threading.Event()
    cancel.set()
    began = time.monotonic()
    with pytest.raises(EngineTimeout, match="did not answer `docker compose down`, nor"):
        run_engine(_python("import time; time.sleep(30)"), what="`docker compose down`",
                   timeout=60, cancel=cancel)  # fmt: skip
    assert time.monotonic() - began < 3
    # The engine is known frozen now: the next call does not wait at all.
    began = time.monotonic()
    with pytest.raises(EngineTimeout) as later:
        run_engine(_python("print(1)"), what="`docker container ls`")
    assert str(later.value) == (
        "the Docker engine did not answer `docker container ls`: it stopped answering"
        " since `docker compose down` got none"
    )
    assert time.monotonic() - began < 0.5


@pytest.mark.usefixtures("engine_state")
def test_a_failed_call_says_what_docker_said_and_a_dead_engine_is_named() -> None:
    with pytest.raises(DockerException) as failed:
        run_engine(_python("import sys; sys.stderr.write('No such container: x\\n'); exit(1)"),
                   what="`docker logs`")  # fmt: skip
    assert error_text(failed.value) == "No such container: x"
    gone = "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?"
    with pytest.raises(EngineGone) as dead:
        run_engine(
            _python(f"import sys; sys.stderr.write({gone!r}); exit(1)"), what="`docker logs`"
        )
    assert str(dead.value) == f"the Docker engine is gone: `docker logs` failed: {gone}"


def test_a_python_on_whales_error_without_output_is_never_shown_as_its_repr() -> None:
    error = DockerException(["docker", "logs", "abc"], 124)
    assert error_text(error) == "docker exited with code 124 without saying why"


# -- logs, streamed and capped ----------------------------------------------------------------


def _capped(chunks: Sequence[bytes], cap: int, secrets: Sequence[str] = ()) -> bytes:
    out = io.BytesIO()
    log = CappedLog(out, cap=cap, secrets=secrets)
    for chunk in chunks:
        log.write(chunk)
    log.close()
    return out.getvalue()


def test_a_log_under_the_cap_is_kept_whole_and_masked() -> None:
    text = b"".join(b"line %d password=s3cr3t!\n" % i for i in range(100))
    assert _capped([text], cap=1 << 20, secrets=["s3cr3t!"]) == text.replace(
        b"s3cr3t!", "••••••".encode()
    )


def test_a_secret_split_across_pieces_of_the_stream_is_masked() -> None:
    text = b"start\nthe token is TOPSECRET-123 here\nend\n"
    pieces = [text[i : i + 1] for i in range(len(text))]  # one byte at a time
    assert _capped(pieces, cap=1 << 20, secrets=["TOPSECRET-123"]) == (
        "start\nthe token is •••••• here\nend\n".encode()
    )


def test_a_secret_on_the_boundary_of_a_very_long_line_is_masked() -> None:
    limit = CappedLog.LINE_LIMIT
    secret = "ZZZ-secret-ZZZ"  # noqa: S105
    line = "a" * (limit - 5) + secret + "b" * (limit * 2) + secret + "c" * 10
    data = line.encode()
    pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    out = _capped(pieces, cap=1 << 30, secrets=[secret]).decode()
    assert secret not in out
    assert out == line.replace(secret, "••••••")


def test_utf8_split_across_pieces_stays_intact() -> None:
    data = "é€😀\n".encode() * 3
    assert _capped([data[i : i + 1] for i in range(len(data))], cap=1 << 20) == data


def test_a_log_over_the_cap_keeps_its_head_and_tail_and_says_how_much_was_cut() -> None:
    lines = [b"%08d some log line\n" % i for i in range(200_000)]  # 4.6 MB
    total = sum(map(len, lines))
    cap = 100_000
    out = _capped([b"".join(lines[i : i + 1000]) for i in range(0, len(lines), 1000)], cap=cap)
    assert len(out) <= cap
    assert out.startswith(lines[0])
    assert out.endswith(lines[-1])
    head, rest = out.split(b"\n[stackmatrix: ", 1)
    note, tail = rest.split(b"\n", 1)
    cut = int(note.split()[0])
    assert note.decode().startswith(f"{cut} bytes of this log cut here; ")
    assert len(head) + len(tail) + cut == total
    assert head.endswith(b"some log line\n")  # both parts are whole lines
    assert tail.startswith(b"00")


def test_a_note_why_the_log_ended_comes_last() -> None:
    out = io.BytesIO()
    log = CappedLog(out)
    log.write(b"started\n")
    log.close(note="(no log: the Docker engine did not answer `docker logs` within 5 s)")
    assert out.getvalue() == (
        b"started\n(no log: the Docker engine did not answer `docker logs` within 5 s)\n"
    )


# -- ports on IPv6 only, crash loops ----------------------------------------------------------


def test_a_port_published_on_ipv6_only_is_found_at_its_loopback() -> None:
    item = {
        "Id": "abc",
        "Config": {"Labels": {"com.docker.compose.service": "web"}},
        "State": {"Status": "running"},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "::", "HostPort": "49200"}],
                                      "81/tcp": [{"HostIp": "::1", "HostPort": "49201"}]}},
    }  # fmt: skip
    assert _service_state(ContainerInspectResult(**item)).ports == {
        "80": "[::1]:49200",
        "81": "[::1]:49201",
    }


@pytest.mark.parametrize("ipv6_first", [True, False])
def test_an_ipv4_binding_wins_over_its_ipv6_twin_in_either_order(ipv6_first: bool) -> None:
    twins = [{"HostIp": "::", "HostPort": "49300"}, {"HostIp": "0.0.0.0", "HostPort": "49300"}]  # noqa: S104
    twins = twins if ipv6_first else twins[::-1]
    item = {"Id": "abc", "State": {"Status": "running"},
            "NetworkSettings": {"Ports": {"80/tcp": twins}}}  # fmt: skip
    assert _service_state(ContainerInspectResult(**item)).ports == {"80": "0.0.0.0:49300"}


def test_probes_reach_a_port_published_on_ipv6(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        port = server.getsockname()[1]
        stack = _stack(tmp_path, ["web"])
        stack.states = {"web": _state("web", ports={"80": f"[::1]:{port}"})}
        stack.wait_until_ready({"web": (TcpProbe(port=80),)}, timeout=5)


@pytest.mark.parametrize("status", ["restarting", "running"])
def test_a_restarted_container_that_failed_is_crash_looping_and_final(
    tmp_path: Path, status: str
) -> None:
    looping = _state("app", status, exit_code=3)
    looping = ServiceState(**{**looping.__dict__, "restarts": 2})
    blocking = _stack(tmp_path, ["app"])._blocking({"app": looping})
    assert blocking == (looping, True)
    assert _final_reason(looping) == (
        "is crash-looping: it exited with code 3 and was restarted 2 times"
    )


@pytest.mark.parametrize("exact", [True, False])
def test_up_asks_compose_for_the_active_services_only_when_the_file_may_hide_some(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    """Without ``include:`` or compose profiles the rendered services are compose's own: one
    ``up`` and nothing more; otherwise ``config --services`` says which ones start."""
    stack = Stack(
        project=PROJECT,
        compose_file=tmp_path / "compose.yaml",
        project_directory=tmp_path,
        services=["db", "app"],
        cancel=threading.Event(),
        services_exact=exact,
    )
    calls: list[list[str]] = []

    def engine(args: list[str], *_what: object, **_kw: object) -> str:
        calls.append(args)
        return "app\nside\n" if args[0] == "config" else ""

    monkeypatch.setattr(stack, "_engine", engine)
    monkeypatch.setattr(stack, "_watch", lambda _lasting: None)  # no event stream here
    stack.up()

    if exact:
        assert calls == [["up", "--detach", "--quiet-pull"]]
        assert stack.services == ["db", "app"]
    else:
        assert calls == [["up", "--detach", "--quiet-pull"], ["config", "--services"]]
        assert stack.services == ["app", "side"]  # db is in an inactive profile


def test_a_failed_up_of_a_kept_stack_leaves_no_event_stream_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `up` starts watching the project's events; a kept stack gets no `down` to end that
    # stream, so a failed `up` must end it itself.
    _event_stream(monkeypatch, [])
    stack = Stack(
        project=PROJECT,
        compose_file=tmp_path / "compose.yaml",
        project_directory=tmp_path,
        services=["db"],
        cancel=threading.Event(),
        keep=True,
    )
    started: list[ContainerEvents] = []
    watch = stack._watch

    def watching(lasting: float) -> ContainerEvents:
        started.append(watch(lasting))
        return started[-1]

    def refuse(args: list[str], *_what: object, **_kw: object) -> str:
        raise DockerException(["docker", "compose", *args], 1, b"", b"no such image: db:17")

    monkeypatch.setattr(stack, "_watch", watching)
    monkeypatch.setattr(stack, "_engine", refuse)
    with pytest.raises(StackFailure, match="docker compose up failed"), stack:
        stack.up()

    assert len(started) == 1
    assert not started[0].streaming  # its process is gone, its reader ended


def test_a_stream_that_would_end_before_the_health_wait_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _event_stream(monkeypatch, [])
    stack = _ScriptedStack(tmp_path, ["db"], [{"db": _state("db", health="healthy")}])
    short = stack._watch(1.0)  # as `up` would have started it, for a shorter while
    long = stack._watch(120.0)
    try:
        assert long is not short
        assert long.until >= time.time() + 120
        assert not short.streaming
    finally:
        stack._unwatch()


@pytest.mark.usefixtures("no_event_stream")
def test_a_kill_the_engine_marks_as_out_of_memory_only_later_is_still_named_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exit 137 read before the engine set OOMKilled (its OOM notice came after the exit).
    monkeypatch.setattr(stack_module, "OOM_SETTLE", 0.01)
    killed = _state("hog", "exited", exit_code=137)
    marked = _state("hog", "exited", exit_code=137, oom_killed=True)
    stack = _ScriptedStack(tmp_path, ["hog"], [{"hog": killed}, {"hog": marked}])
    with pytest.raises(StackFailure) as failure:
        stack.wait_until_healthy(timeout=30)
    assert failure.value.reason == (
        "service 'hog' was killed: out of memory (OOMKilled, exit code 137)"
    )
