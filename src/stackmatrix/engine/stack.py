"""One compose project: bring-up, readiness, ports, logs, stats and guaranteed teardown.

This is the only module that talks to the Docker engine. Every call goes through one
python-on-whales ``DockerClient`` per stack, run in its own session (``setsid``) so that a
Ctrl-C in the terminal reaches stackmatrix alone: stackmatrix decides what to stop, and a
second Ctrl-C can never cut a teardown short.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from python_on_whales import DockerClient
from python_on_whales.components.container.models import ContainerInspectResult
from python_on_whales.exceptions import (
    DockerException,
)
from python_on_whales.utils import run as run_docker

from stackmatrix.compose import labels as compose_labels
from stackmatrix.compose.labels import selector
from stackmatrix.engine import probes as _probes
from stackmatrix.engine.docker import (
    LOG_TAIL_LINES,
    docker_client,
    docker_command,
    error_text,
    remove_by_label,
)
from stackmatrix.engine.events import ContainerEvents
from stackmatrix.engine.processes import run_logged
from stackmatrix.engine.services import ServiceState, final_reason, service_state
from stackmatrix.errors import EngineError
from stackmatrix.spec.load import Probe

LOG = logging.getLogger("stackmatrix")
NO_LOG = "(no log: "  # how a log that could not be read begins


class StackFailure(Exception):
    """The stack could not do its part; the variant fails with this reason and detail."""

    def __init__(self, reason: str, detail: str = "", *, service: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.service = service


class Cancelled(Exception):
    """The run was cancelled (fail-fast or a signal) while this stack was working."""


class Stack:
    """A context manager around one compose project; leaving it always tears the stack down."""

    def __init__(
        self,
        *,
        project: str,
        compose_file: Path,
        project_directory: Path,
        services: list[str],
        cancel: threading.Event,
        down_timeout: float = 10,
        keep: bool = False,
    ) -> None:
        self.project = project
        self.compose_file = compose_file.resolve()
        self.services = services
        self.keep = keep
        self._cancel = cancel
        self._down_timeout = down_timeout
        self._client = docker_client(
            compose_files=[self.compose_file],
            compose_project_name=project,
            compose_project_directory=project_directory,
        )
        self.states: dict[str, ServiceState] = {}
        self.created = False

    @property
    def client(self) -> DockerClient:
        """The python-on-whales client bound to this project."""
        return self._client

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.keep:
            self.down()

    # -- bring-up -------------------------------------------------------------------------

    def build(
        self, builds: Mapping[str, str | None], *, log_path: Path, always: bool = False
    ) -> list[str]:
        """Build the services in *builds* (service -> image tag or None); return those built.

        A tagged image that already exists is reused unless *always*; variants that share a
        tag build it once, the others wait for it instead of building it again side by side.
        A build can take minutes, so unlike the other engine calls it runs as a process of
        its own (the command python-on-whales composes) that a cancelled run kills.
        """
        built = []
        for service, tag in builds.items():
            with _build_lock(tag or f"{self.project}/{service}"):
                if tag and not always and self._client.image.exists(tag):
                    continue
                self._check_cancel()
                command = [str(part) for part in self._client.client_config.docker_compose_cmd]
                # run_logged gives the build a session of its own already; `setsid` would fork
                # (a session leader cannot start a new session) and hide the exit code.
                command = command[1:] if Path(command[0]).name == "setsid" else command
                outcome = run_logged(
                    [*command, "build", service],
                    log_path=log_path,
                    env=os.environ,
                    cwd=self.compose_file.parent,
                    timeout=None,
                    cancel=self._cancel,
                )
                self._check_cancel()
                if outcome.exit_code != 0:
                    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                    raise StackFailure(
                        f"building the image of service {service!r} failed",
                        "\n".join(tail[-LOG_TAIL_LINES:]),
                        service=service,
                    )
                built.append(service)
        return built

    def up(self) -> None:
        """Create and start every service, without waiting (readiness is polled after)."""
        self._check_cancel()
        self.created = True
        try:
            self._client.compose.up(detach=True, quiet=True, wait=False)
        except DockerException as error:
            raise StackFailure("docker compose up failed", error_text(error)) from error

    def refresh(self) -> dict[str, ServiceState]:
        """Inspect every container of the project: two engine calls, whatever their number.

        (``compose ps`` would load the project and inspect each container on its own; this
        runs at every change while a stack comes up, so it is kept cheap.)
        """
        docker = docker_command(self._client, "container")
        project = selector(compose_labels.COMPOSE_PROJECT, self.project)
        try:
            ids = str(run_docker([*docker, "ls", "--all", "-q", "--no-trunc", "--filter", project]))
            found = json.loads(str(run_docker([*docker, "inspect", *ids.split()]))) if ids else []
        except DockerException as error:
            raise EngineError(
                f"cannot inspect project {self.project}: {error_text(error)}"
            ) from error
        states = (service_state(ContainerInspectResult(**item)) for item in found)
        self.states = {state.service: state for state in states}
        return self.states

    def wait_until_healthy(self, timeout: float) -> None:
        """Wait until every service is running and healthy (or exited 0 as a one-shot job)."""
        deadline = time.monotonic() + timeout
        docker = docker_command(self._client)
        now = time.time()
        # A second back covers a clock that differs a little from the engine's; the stream ends
        # by itself after the deadline, even if stackmatrix was killed and cannot end it.
        with ContainerEvents(
            docker, self.project, since=now - 1, until=now + timeout + 5
        ) as events:
            while True:
                self._check_cancel()
                states = self.refresh()
                blocking = self._blocking(states)
                if blocking is None:
                    return
                state, final = blocking
                if final or time.monotonic() >= deadline:
                    why = "did not become healthy" if not final else final_reason(state)
                    if not final:
                        why += f" within {timeout:g} s"
                    raise StackFailure(
                        f"service {state.service!r} {why}",
                        self.diagnose(state),
                        service=state.service,
                    )
                left = max(0.0, deadline - time.monotonic())
                events.wait(min(events.interval, left), self._cancel)

    def _blocking(self, states: Mapping[str, ServiceState]) -> tuple[ServiceState, bool] | None:
        """The first service that is not ready yet, and whether that is final."""
        for name in self.services:
            state = states.get(name)
            if state is None:
                # Not created (yet): depends_on ordering or a failed create.
                missing = ServiceState(name, "", "missing", None, None, "", {})
                return missing, False
            if state.status in {"exited", "dead"}:
                if state.exit_code == 0:
                    continue  # a one-shot job that finished
                return state, True
            if state.health == "unhealthy":
                return state, True
            if state.status != "running" or state.health == "starting":
                return state, False
        return None

    def wait_until_ready(self, probes: Mapping[str, tuple[Probe, ...]], timeout: float) -> None:
        """Poll the ``ready`` probes until each answers, or fail naming the one that did not."""
        deadline = time.monotonic() + timeout
        for service, service_probes in probes.items():
            context = self._probe_context(service)
            for probe in service_probes:
                while True:
                    self._check_cancel()
                    why = _probes.attempt(probe, context)
                    if why is None:
                        break
                    if time.monotonic() >= deadline:
                        state = self.refresh().get(service)
                        raise StackFailure(
                            f"service {service!r} not ready: probe {_probes.describe(probe)} "
                            f"still failing after {timeout:g} s ({why})",
                            self.diagnose(state) if state else "",
                            service=service,
                        )
                    self._cancel.wait(_probes.poll_interval(probe))

    def _probe_context(self, service: str) -> _probes.ProbeContext:
        def host_port(port: int) -> int:
            state = self.states.get(service) or self.refresh().get(service)
            address = state.ports.get(str(port)) if state else None
            if address is None:
                raise OSError(f"port {port} of {service!r} is not published")
            return int(address.rsplit(":", 1)[1])

        def execute(command: list[str]) -> int:
            try:
                self._client.compose.execute(service, command, tty=False)
            except DockerException as error:
                return error.return_code
            return 0

        def logs() -> str:
            state = self.states.get(service)
            if state is not None and state.container_id:
                text = self.container_log(state.container_id)
                if not text.startswith(NO_LOG):
                    return text
            return self.logs(service)  # a container recreated since: compose finds the new one

        return _probes.ProbeContext(
            service=service, host_port=host_port, logs=logs, execute=execute
        )

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    # -- while up -------------------------------------------------------------------------

    def ports(self) -> dict[str, dict[str, str]]:
        """Published ports: service -> container port -> ``127.0.0.1:HOSTPORT``."""
        return {name: dict(state.ports) for name, state in sorted(self.states.items())}

    def container_ids(self) -> dict[str, str]:
        """Running container id -> service name."""
        return {s.container_id: s.service for s in self.states.values() if s.status == "running"}

    def logs(self, service: str, tail: int | None = None) -> str:
        """The log of one service (stdout and stderr), or a note why there is none."""
        try:
            text = self._client.compose.logs(
                services=[service], no_log_prefix=True, tail=None if tail is None else str(tail)
            )
        except DockerException as error:
            return f"{NO_LOG}{error_text(error)})"
        return text if isinstance(text, str) else ""

    def container_log(self, container_id: str) -> str:
        """The log of one container: by id there is no compose project to load, so quicker."""
        try:
            return str(self._client.container.logs(container_id))
        except DockerException as error:
            return f"{NO_LOG}{error_text(error)})"

    def diagnose(self, state: ServiceState) -> str:
        """Health output and the tail of the log of a service that blocks the stack."""
        parts = [f"service {state.service}: status {state.status}"]
        if state.health:
            parts[0] += f", health {state.health}"
        if state.exit_code not in (None, 0) and state.status in {"exited", "dead"}:
            parts[0] += f", exit code {state.exit_code}"
        if state.oom_killed:
            parts[0] += ", killed by the kernel: out of memory"
        if state.health_output:
            parts.append(f"last health check: {state.health_output}")
        tail = self.logs(state.service, tail=LOG_TAIL_LINES).rstrip()
        parts.append(f"last {LOG_TAIL_LINES} log lines:\n{tail}" if tail else "log is empty")
        return "\n".join(parts)

    def save_logs(self, logs_dir: Path) -> dict[str, Path]:
        """Write every service's full log to ``logs_dir/<service>.log``."""
        logs_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for service in self.services:
            path = logs_dir / f"{service}.log"
            state = self.states.get(service)
            if state is not None and state.container_id:
                text = self.container_log(state.container_id)
            else:
                text = self.logs(service)
            path.write_text(text, encoding="utf-8", errors="replace")
            written[service] = path
        return written

    # -- teardown -------------------------------------------------------------------------

    def down(self) -> None:
        """``down -v --remove-orphans``; on failure, remove what carries the project's label."""
        try:
            self._client.compose.down(
                volumes=True,
                remove_orphans=True,
                timeout=max(1, int(self._down_timeout)),
                quiet=True,
            )
        except DockerException as error:
            LOG.warning("compose down of %s failed (%s); removing by label", self.project, error)
            remove_by_label(f"{compose_labels.COMPOSE_PROJECT}={self.project}")


_BUILD_LOCKS: dict[str, threading.Lock] = {}
_BUILD_LOCKS_GUARD = threading.Lock()


def _build_lock(key: str) -> threading.Lock:
    with _BUILD_LOCKS_GUARD:
        return _BUILD_LOCKS.setdefault(key, threading.Lock())
