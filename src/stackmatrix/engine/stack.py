"""One compose project: bring-up, readiness, ports, logs, stats and guaranteed teardown.

This is the only module that talks to the Docker engine. Every call goes through one
python-on-whales ``DockerClient`` per stack, each process in its own session (``spawn``) so
that a Ctrl-C in the terminal reaches stackmatrix alone: stackmatrix decides what to stop, and a
second Ctrl-C can never cut a teardown short.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from python_on_whales import DockerClient
from python_on_whales.components.container.models import ContainerInspectResult
from python_on_whales.exceptions import DockerException

from stackmatrix.compose import labels as compose_labels
from stackmatrix.compose.labels import selector
from stackmatrix.engine import probes as _probes
from stackmatrix.engine.docker import (
    LOG_TAIL_LINES,
    EngineTimeout,
    call_timeout,
    docker_client,
    docker_command,
    error_text,
    remove_by_label,
    run_engine,
)
from stackmatrix.engine.events import ContainerEvents
from stackmatrix.engine.processes import run_logged
from stackmatrix.engine.services import ServiceState, crash_looping, final_reason, service_state
from stackmatrix.errors import EngineError
from stackmatrix.redact import redact_text
from stackmatrix.results.files import open_new
from stackmatrix.spec.load import Probe

LOG = logging.getLogger("stackmatrix")
LOG_READERS = 4  # services whose logs are read at once while a variant collects
KILLED = 137  # the exit code of a process killed by SIGKILL (the kernel's OOM killer, say)
OOM_SETTLE = 0.5  # seconds to wait before reading a killed container's OOM flag again
NO_LOG = "(no log: "  # how a log that could not be read begins
DEFAULT_LOG_CAP = 50 * 1024 * 1024  # bytes of one service's log kept in the run directory
UP_TIMEOUT = 300.0  # `compose up` may pull an image the prepare stage did not


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
        profiles: Sequence[str] = (),
        call_timeout: float | None = None,
        up_timeout: float = UP_TIMEOUT,
        services_exact: bool = False,
    ) -> None:
        self.project = project
        self.compose_file = compose_file.resolve()
        self.services = services
        self.keep = keep
        self.profiles = tuple(profiles)
        self._cancel = cancel
        self._down_timeout = down_timeout
        self._call_timeout = call_timeout
        self._up_timeout = up_timeout
        # *services* are exactly the ones compose will start (the file includes no other and
        # uses no compose profiles): `up` need not ask compose which services are active.
        self._services_exact = services_exact
        self._client = docker_client(
            compose_files=[self.compose_file],
            compose_project_name=project,
            compose_project_directory=project_directory,
            compose_profiles=list(self.profiles),
        )
        self.states: dict[str, ServiceState] = {}
        # Service -> (the image reference its container was created from, that image's id).
        self.images: dict[str, tuple[str, str]] = {}
        self.created = False
        self.engine_error: EngineError | None = None  # the first engine failure, the cause
        # The project's events, watched from just before `up` until the stack is healthy.
        self._events: ContainerEvents | None = None

    @property
    def cancel(self) -> threading.Event:
        """Set once the run is ending: a question asked now is not worth its wait."""
        return self._cancel

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
                if tag and not always and self._image_exists(tag):
                    continue
                self._check_cancel()
                outcome = run_logged(
                    self._compose("build", service),
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

    def _image_exists(self, tag: str) -> bool:
        try:
            self._engine(["image", "inspect", "--format", "{{.Id}}", tag], "`docker image inspect`")
        except DockerException:
            return False
        return True

    def _compose(self, *args: str) -> list[str]:
        return [str(part) for part in self._client.client_config.docker_compose_cmd] + list(args)

    def copy_out(self, container_id: str, path: str, destination: Path) -> None:
        """``docker cp CONTAINER:PATH DESTINATION``, bounded like every call of the stack."""
        self._engine(["cp", f"{container_id}:{path}", str(destination)], "`docker cp`")

    def _engine(
        self,
        args: Sequence[str],
        what: str,
        *,
        compose: bool = False,
        timeout: float | None = None,
        sink: Callable[[bytes], None] | None = None,
        idle: bool = False,
    ) -> str:
        """One bounded engine call of this stack; the first engine failure is remembered."""
        command = self._compose(*args) if compose else docker_command(self._client, *args)
        try:
            return run_engine(
                command,
                what=what,
                timeout=timeout if timeout is not None else self._call_timeout,
                cancel=self._cancel,
                sink=sink,
                idle=idle,
            )
        except EngineError as error:
            if self.engine_error is None:
                self.engine_error = error
            raise

    def up(self) -> None:
        """Create and start every service, without waiting (readiness is polled after).

        The services waited for are then the ones compose itself sees: those of ``include``d
        files too, and not those of a compose profile that is not active (compose is asked
        only when the file has either).
        """
        self._check_cancel()
        self.created = True
        # The events of the bring-up are watched from its start: the health wait then begins
        # with a stream that is already there, and with what happened during `up`.
        self._watch(self._up_timeout + max(self._up_timeout, self._call_timeout or call_timeout()))
        try:
            self._engine(
                ["up", "--detach", "--quiet-pull"],
                "`docker compose up`",
                compose=True,
                timeout=max(self._up_timeout, self._call_timeout or call_timeout()),
            )
            if self._services_exact:
                return
            active = self._engine(["config", "--services"], "`docker compose config`", compose=True)
        except DockerException as error:
            self._unwatch()  # no health wait follows (and a kept stack gets no `down`)
            raise StackFailure("docker compose up failed", error_text(error)) from error
        except BaseException:
            self._unwatch()
            raise
        names = active.split()
        self.services = [s for s in self.services if s in names] + [
            s for s in names if s not in self.services
        ]

    def refresh(self) -> dict[str, ServiceState]:
        """Inspect every container of the project: two engine calls, whatever their number.

        (``compose ps`` would load the project and inspect each container on its own; this
        runs at every change while a stack comes up, so it is kept cheap.)
        """
        project = selector(compose_labels.COMPOSE_PROJECT, self.project)
        try:
            ids = self._engine(
                ["container", "ls", "--all", "-q", "--no-trunc", "--filter", project],
                "`docker container ls`",
            ).split()
            found = (
                json.loads(
                    self._engine(["container", "inspect", *ids], "`docker container inspect`")
                )
                if ids
                else []
            )
        except DockerException as error:
            raise EngineError(
                f"cannot inspect project {self.project}: {error_text(error)}"
            ) from error
        states = [service_state(ContainerInspectResult(**item)) for item in found]
        self.states = {state.service: state for state in states}
        self.images = {
            state.service: (
                str((item.get("Config") or {}).get("Image") or ""),
                item.get("Image") or "",
            )
            for state, item in zip(states, found, strict=True)
        }
        return self.states

    def wait_until_healthy(self, timeout: float) -> None:
        """Wait until every service is running and healthy (or exited 0 as a one-shot job).

        The state is read when the project's event stream reports a change (and at least
        every :data:`HEALTH_EVENT_FALLBACK` seconds); a container the stream reports healthy
        is taken as such without reading again, so the last healthcheck to pass ends the wait
        at once.
        """
        deadline = time.monotonic() + timeout
        events = self._watch(timeout)
        try:
            states = self.refresh()
            while True:
                self._check_cancel()
                blocking = self._blocking(states)
                if blocking is None:
                    return
                state, final = blocking
                if final and state.exit_code == KILLED and not state.oom_killed:
                    # The engine may mark a kill for memory only after the exit it caused
                    # (the OOM notice comes late on some cgroup v2 kernels): read once more
                    # before naming the cause.
                    self._cancel.wait(OOM_SETTLE)
                    state = self.refresh().get(state.service, state)
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
                told = events.wait(min(events.interval, left), self._cancel)
                healthy, other = events.take()
                known = {s.container_id for s in states.values()}
                if told and events.streaming and not other and healthy.keys() <= known:
                    states = self._turned_healthy(healthy)
                else:
                    states = self.refresh()
        finally:
            self._unwatch()

    def _watch(self, lasting: float) -> ContainerEvents:
        """The project's event stream, started now unless one runs that lasts long enough; it
        ends by itself *lasting* seconds (and a little) from now, even if stackmatrix was
        killed."""
        now = time.time()
        if self._events is not None and self._events.until < now + lasting:
            self._unwatch()  # it would end before the wait does: a new one replaces it
        if self._events is None:
            # A second back covers a clock that differs a little from the engine's.
            events = ContainerEvents(
                docker_command(self._client), self.project, since=now - 1, until=now + lasting + 5
            )
            self._events = events.__enter__()
        return self._events

    def _unwatch(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            events.close()

    def _turned_healthy(self, reported: Mapping[str, int]) -> dict[str, ServiceState]:
        """The known states, with the containers *reported* healthy (id -> when) healthy.

        Only a container read as running, and reported healthy since its process last
        started: an event from before a restart, delivered late, says nothing of the
        container now.
        """

        def trusted(state: ServiceState) -> bool:
            moment = reported.get(state.container_id)
            return (
                moment is not None
                and state.status == "running"
                and (state.started_ns is None or moment >= state.started_ns)
            )

        self.states = {
            name: replace(state, health="healthy") if trusted(state) else state
            for name, state in self.states.items()
        }
        return self.states

    def _blocking(self, states: Mapping[str, ServiceState]) -> tuple[ServiceState, bool] | None:
        """The first service that is not ready yet, and whether that is final."""
        for name in self.services:
            state = states.get(name)
            if state is None:
                # Not created (yet): depends_on ordering or a failed create.
                missing = ServiceState(name, "", "missing", None, None, "", {})
                return missing, False
            if crash_looping(state):
                return state, True
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
        def address(port: int) -> tuple[str, int]:
            state = self.states.get(service) or self.refresh().get(service)
            published = state.ports.get(str(port)) if state else None
            if published is None:
                raise OSError(f"port {port} of {service!r} is not published")
            host, _, number = published.rpartition(":")
            return host.strip("[]"), int(number)

        def execute(command: list[str]) -> int:
            try:
                self._engine(
                    ["exec", "-T", service, *command], "`docker compose exec`", compose=True
                )
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
            service=service,
            host_port=lambda port: address(port)[1],
            logs=logs,
            execute=execute,
            host=lambda port: address(port)[0],
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
        args = ["logs", "--no-log-prefix", *(["--tail", str(tail)] if tail is not None else [])]
        try:
            return self._engine([*args, service], "`docker compose logs`", compose=True)
        except (DockerException, EngineError) as error:
            return f"{NO_LOG}{_said(error)})"

    def log_head(self, service: str, limit: int, timeout: float) -> str:
        """The first *limit* bytes (or so) of a service's log, stdout and stderr as compose
        interleaves them: what came within *timeout* seconds when it did not all come; empty
        when it cannot be read. A failure here is not the stack's (``engine_error`` stays as
        it was)."""
        head = bytearray()

        def take(chunk: bytes) -> None:
            head.extend(chunk)
            if len(head) >= limit:
                raise _HeadRead

        command = self._compose("logs", "--no-log-prefix", "--no-color", service)
        try:
            run_engine(command, what="`docker compose logs`", timeout=timeout, sink=take)
        except (_HeadRead, EngineTimeout):
            pass  # the head, or what of it came in time
        except (DockerException, EngineError):
            return ""
        return bytes(head[:limit]).decode("utf-8", errors="replace")

    def container_log(self, container_id: str) -> str:
        """The log of one container: by id there is no compose project to load, so quicker."""
        try:
            return self._engine(["logs", container_id], "`docker logs`", idle=True)
        except (DockerException, EngineError) as error:
            return f"{NO_LOG}{_said(error)})"

    def diagnose(self, state: ServiceState) -> str:
        """Health output and the tail of the log of a service that blocks the stack."""
        parts = [f"service {state.service}: status {state.status}"]
        if state.health:
            parts[0] += f", health {state.health}"
        if state.exit_code not in (None, 0) and (
            state.status in {"exited", "dead"} or crash_looping(state)
        ):
            parts[0] += f", exit code {state.exit_code}"
        if state.restarts:
            parts[0] += f", restarted {state.restarts} times"
        if state.oom_killed:
            parts[0] += ", killed by the kernel: out of memory"
        if state.health_output:
            parts.append(f"last health check: {state.health_output}")
        tail = self.logs(state.service, tail=LOG_TAIL_LINES).rstrip()
        parts.append(f"last {LOG_TAIL_LINES} log lines:\n{tail}" if tail else "log is empty")
        return "\n".join(parts)

    def save_logs(
        self,
        logs_dir: Path,
        *,
        cap: int = DEFAULT_LOG_CAP,
        secrets: Sequence[str] = (),
    ) -> dict[str, Path]:
        """Stream every service's log to ``logs_dir/<service>.log``, masked as it comes.

        A log never sits whole in memory, and at most *cap* bytes of it are kept: its head and
        its tail, with a line in between saying how much was cut. An engine that fails or does
        not answer leaves a note in the file; the first such failure stays in ``engine_error``.
        """
        logs_dir.mkdir(parents=True, exist_ok=True)

        def save(service: str) -> Path:
            path = logs_dir / f"{service}.log"
            state = self.states.get(service)
            if state is not None and state.container_id:
                args, what, compose = ["logs", state.container_id], "`docker logs`", False
            else:
                args, what, compose = (
                    ["logs", "--no-log-prefix", service],
                    "`docker compose logs`",
                    True,
                )
            with os.fdopen(open_new(path), "wb") as out:  # never through a link
                log = CappedLog(out, cap=cap, secrets=secrets)
                try:
                    self._engine(args, what, compose=compose, sink=log.write, idle=True)
                    log.close()
                except (DockerException, EngineError) as error:
                    log.close(note=f"{NO_LOG}{_said(error)})")
            return path

        # The services' logs are read at once (each its own `docker logs`, its own file): the
        # variant's slot waits for the slowest, not for their sum.
        workers = max(1, min(LOG_READERS, len(self.services)))
        with ThreadPoolExecutor(workers, thread_name_prefix="stackmatrix-logs") as pool:
            saved = list(pool.map(save, self.services))
        return dict(zip(self.services, saved, strict=True))

    # -- teardown -------------------------------------------------------------------------

    def down(self) -> None:
        """``down -v --remove-orphans``; on failure, remove what carries the project's label.

        Bounded: the containers' stop timeout, then the call deadline. An engine that cannot
        tear down raises :class:`EngineError` naming the call (the first engine failure of
        the stack, its cause, stays in ``engine_error``).
        """
        self._unwatch()  # a bring-up that failed before its health wait ended
        stop = max(1, int(self._down_timeout))
        limit = stop + (self._call_timeout or call_timeout())
        try:
            self._engine(
                ["down", "--volumes", "--remove-orphans", "--timeout", str(stop)],
                "`docker compose down`",
                compose=True,
                timeout=limit,
            )
        except DockerException as error:
            LOG.warning(
                "compose down of %s failed (%s); removing by label", self.project, _said(error)
            )
            remove_by_label(
                f"{compose_labels.COMPOSE_PROJECT}={self.project}", timeout=self._call_timeout
            )


class _HeadRead(Exception):
    """Enough of a log is read: the call that streams it ends here."""


def _said(error: DockerException | EngineError) -> str:
    return error_text(error) if isinstance(error, DockerException) else str(error)


class CappedLog:
    """A log written as it streams: masked, and cut in the middle beyond *cap* bytes.

    The first half of the cap is written as it comes; after that only the most recent bytes
    are held (at most the other half), and written at the end behind a line saying how much
    was cut. Masking runs on whole lines (a secret is never split across two maskings); a
    line longer than :data:`LINE_LIMIT` is masked in pieces that overlap by the longest
    secret, so a secret on a piece boundary is still masked.
    """

    LINE_LIMIT = 64 * 1024

    def __init__(
        self, out: BinaryIO, *, cap: int = DEFAULT_LOG_CAP, secrets: Sequence[str] = ()
    ) -> None:
        self._out = out
        self._secrets = [s for s in secrets if len(s) >= 3]
        self._keep = max((len(s) for s in self._secrets), default=1) - 1
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._carry = ""
        self._head_left = max(0, cap // 2)
        self._tail_size = max(0, cap - self._head_left - 200)  # room for the line about the cut
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self.total = 0  # bytes written to the log, after masking
        self.cut = 0

    def write(self, chunk: bytes) -> None:
        """Take the next piece of the stream."""
        text = self._carry + self._decoder.decode(chunk)
        end = text.rfind("\n") + 1
        if end == 0 and len(text) > self.LINE_LIMIT:
            end = self._safe_cut(text, len(text) - self._keep)
        self._carry = text[end:]
        if end:
            self._emit(redact_text(text[:end], self._secrets).encode("utf-8"))

    def _safe_cut(self, text: str, cut: int) -> int:
        """*cut*, moved back to the start of a secret that would straddle it."""
        for secret in self._secrets:
            start = text.find(secret, max(0, cut - len(secret) + 1))
            while 0 <= start < cut < start + len(secret):
                cut = start
                start = text.find(secret, max(0, cut - len(secret) + 1))
        return cut

    def _emit(self, data: bytes) -> None:
        self.total += len(data)
        if self._head_left:
            end = self._head_left
            if len(data) > end:  # the head is full: end it at a line boundary when one is near
                newline = data.rfind(b"\n", max(0, end - 4096), end)
                end = newline + 1 if newline >= 0 else end
            head, data = data[:end], data[end:]
            self._out.write(head)
            self._head_left = 0 if data else self._head_left - len(head)
        if not data:
            return
        self._tail.append(data)
        self._tail_bytes += len(data)
        while self._tail and self._tail_bytes - len(self._tail[0]) >= self._tail_size:
            dropped = self._tail.popleft()
            self._tail_bytes -= len(dropped)
            self.cut += len(dropped)

    def close(self, note: str = "") -> None:
        """Write what is held: the last line, the tail after the note of the cut, *note*."""
        rest = self._carry + self._decoder.decode(b"", final=True)
        self._carry = ""
        if rest:
            self._emit(redact_text(rest, self._secrets).encode("utf-8"))
        tail = b"".join(self._tail)
        self._tail.clear()
        extra = len(tail) - self._tail_size
        if extra > 0:
            # Start the tail at a line boundary when one is near, so no line shows half.
            newline = tail.find(b"\n", extra, extra + 4096)
            start = newline + 1 if newline >= 0 else extra
            self.cut += start
            tail = tail[start:]
        if self.cut:
            kept = self.total - self.cut
            self._out.write(
                f"\n[stackmatrix: {self.cut} bytes of this log cut here; "
                f"{kept} of {self.total} kept, the first and the last]\n".encode()
            )
        self._out.write(tail)
        if note:
            self._out.write(f"{note}\n".encode())
        self._out.flush()


_BUILD_LOCKS: dict[str, threading.Lock] = {}
_BUILD_LOCKS_GUARD = threading.Lock()


def _build_lock(key: str) -> threading.Lock:
    with _BUILD_LOCKS_GUARD:
        return _BUILD_LOCKS.setdefault(key, threading.Lock())
