"""The Docker client: how stackmatrix calls docker, streams its output, reads its errors and
removes objects by label. Every engine call of the other engine modules starts here."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from stackmatrix.engine.spawn import spawn
from stackmatrix.errors import EngineError

LOG = logging.getLogger("stackmatrix")
LOG_TAIL_LINES = 30
TIMEOUT_VARIABLE = "STACKMATRIX_ENGINE_TIMEOUT"
DEFAULT_CALL_TIMEOUT = 60.0
PING_TIMEOUT = 4.0  # how long `docker version` may take to tell a busy engine from a frozen one
PING_AFTER = 1.0  # a call still running this long after a cancel: is the engine there at all?
FROZEN_HOLD = 10.0  # after a failed ping, calls fail at once for this long instead of waiting
STDERR_KEEP = 64 * 1024
READ_SIZE = 256 * 1024
GONE = ("Cannot connect to the Docker daemon", "Is the docker daemon running")


class EngineTimeout(EngineError):
    """An engine call did not answer within its deadline (a frozen or overloaded engine)."""

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what  # the call, as ``docker logs`` in backticks


class EngineGone(EngineError):
    """The engine stopped answering at all (dockerd died, its socket is gone)."""

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what  # the call, as ``docker logs`` in backticks


def call_timeout() -> float:
    """The deadline of one engine call: ``$STACKMATRIX_ENGINE_TIMEOUT`` seconds, else 60."""
    raw = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    return value if value > 0 else DEFAULT_CALL_TIMEOUT


class _Engine:
    """What this process knows about the engine's health, shared by every stack."""

    lock = threading.Lock()
    frozen_at: float | None = None  # a ping got no answer at this (monotonic) time
    suspect = False  # a call ran past its deadline: ping before waiting on the next one
    silent = ""  # the call that got no answer first, since the engine last answered


def _no_answer(what: str) -> None:
    """Remember that *what* got no answer (the first such call is what messages name)."""
    with _Engine.lock:
        _Engine.suspect = True
        _Engine.silent = _Engine.silent or what


def ping(timeout: float = PING_TIMEOUT) -> bool:
    """Whether the engine answers ``docker version`` within *timeout* seconds."""
    try:
        process = spawn(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        answered = False
    else:
        try:
            answered = process.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            _kill(process)
            answered = False
    with _Engine.lock:
        _Engine.frozen_at = None if answered else time.monotonic()
        _Engine.suspect = not answered
        if answered:
            _Engine.silent = ""
    return answered


def _fail_fast(what: str) -> None:
    """Raise at once when the engine was just found frozen; ping it first when in doubt."""
    with _Engine.lock:
        frozen_at, suspect, silent = _Engine.frozen_at, _Engine.suspect, _Engine.silent
    since = f" since {silent} got none" if silent else ""
    if frozen_at is not None and time.monotonic() - frozen_at < FROZEN_HOLD:
        raise EngineTimeout(
            what=what,
            message=f"the Docker engine did not answer {what}: it stopped answering{since}",
        )
    if (suspect or frozen_at is not None) and not ping():
        raise EngineTimeout(
            what=what,
            message=f"the Docker engine did not answer {what}: it does not answer `docker version`"
            f"{since}",
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the call's whole session (``docker compose`` runs a plugin process) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_engine(
    command: Sequence[str],
    *,
    what: str,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    sink: Callable[[bytes], None] | None = None,
    idle: bool = False,
) -> str:
    """Run one docker command with a deadline and return its output.

    *what* names the call in messages (```docker compose down```). The command runs in a
    session of its own and is killed, with whatever it started, at the deadline (*timeout*,
    default :func:`call_timeout`; with *idle* the deadline is for each piece of output, so a
    long log keeps streaming while it flows). Its output goes to *sink* when given, else it is
    returned. Once *cancel* is set, a call still running after a second asks the engine for a
    sign of life and gives up at once if there is none: an interrupted run never waits on a
    frozen engine. A failed command raises :class:`DockerException` (what docker said in
    ``stderr``); no answer, :class:`EngineTimeout`; an engine gone, :class:`EngineGone`.
    """
    _fail_fast(what)
    call = _Call(what, call_timeout() if timeout is None else timeout, cancel, sink, idle)
    return call.run([str(part) for part in command])


class _Call:
    """One bounded docker process: its output read as it comes, its deadline watched."""

    def __init__(
        self,
        what: str,
        limit: float,
        cancel: threading.Event | None,
        sink: Callable[[bytes], None] | None,
        idle: bool,
    ) -> None:
        self.what, self.limit, self.cancel, self.sink, self.idle = what, limit, cancel, sink, idle
        self.out: list[bytes] = []
        self.err = bytearray()
        self.deadline = time.monotonic() + limit
        self.cancelled_at: float | None = None
        self.pinged = False

    def run(self, argv: list[str]) -> str:
        try:
            process = spawn(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as error:
            raise EngineError(f"cannot run {self.what}: {error.strerror or error}") from error
        try:
            self._pump(process)
        except BaseException:
            _kill(process)
            raise
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        code = process.wait()
        stdout = b"".join(self.out)
        stderr = bytes(self.err).decode("utf-8", errors="replace")
        if code == 0:
            return stdout.decode("utf-8", errors="replace")
        if any(sign in stderr for sign in GONE):
            with _Engine.lock:
                _Engine.suspect = True
            said = "\n".join(stderr.strip().splitlines()[-3:])
            raise EngineGone(
                what=self.what, message=f"the Docker engine is gone: {self.what} failed: {said}"
            )
        raise DockerException(argv, code, stdout, bytes(self.err))

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        with selectors.DefaultSelector() as selector:
            for stream, name in ((process.stdout, "out"), (process.stderr, "err")):
                if stream is not None:
                    selector.register(stream, selectors.EVENT_READ, name)
            while selector.get_map():
                self._check()
                wait = min(0.1, max(0.0, self.deadline - time.monotonic()))
                for key, _events in selector.select(wait):
                    chunk = os.read(key.fd, READ_SIZE)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.data == "err":
                        self.err += chunk
                        del self.err[:-STDERR_KEEP]
                    else:
                        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        if self.idle:
            self.deadline = time.monotonic() + self.limit
        if self.sink is None:
            self.out.append(chunk)
        else:
            self.sink(chunk)

    def _check(self) -> None:
        """Raise when the deadline passed, or the run was stopped and the engine is silent."""
        now = time.monotonic()
        if now >= self.deadline:
            _no_answer(self.what)
            raise EngineTimeout(
                what=self.what,
                message=f"the Docker engine did not answer {self.what} within {self.limit:g} s",
            )
        if self.cancel is None or not self.cancel.is_set() or self.pinged:
            return
        self.cancelled_at = now if self.cancelled_at is None else self.cancelled_at
        if now - self.cancelled_at >= PING_AFTER:
            self.pinged = True
            if not ping():
                _no_answer(self.what)
                raise EngineTimeout(
                    what=self.what,
                    message=f"the Docker engine did not answer {self.what}, nor `docker version`"
                    " after the run was stopped",
                )


def docker_client(**kwargs: Any) -> DockerClient:
    """A client that composes docker command lines; they run through :func:`run_engine`,
    :func:`open_stream` or ``run_logged``, each process in a session of its own (``spawn``),
    so the terminal's Ctrl-C reaches stackmatrix alone (we handle it)."""
    return DockerClient(client_call=["docker"], **kwargs)


def docker_command(client: DockerClient, *args: str) -> list[str]:
    """The client's own docker command (``docker`` and its options), then *args*."""
    return [*map(str, client.client_config.docker_cmd), *args]


def open_stream(command: list[str]) -> subprocess.Popen[str] | None:
    """Start a docker command whose output is read line by line as it comes (events, stats);
    None when it cannot start (the caller does without it)."""
    try:
        return spawn(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as error:
        LOG.debug("cannot start %s: %s", " ".join(command[:4]), error)
        return None


def close_stream(process: subprocess.Popen[str], reader: threading.Thread | None = None) -> None:
    """Kill a stream process, reap it, let *reader* (the thread reading it) see the end, and
    close its output."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    process.wait()
    if reader is not None:
        reader.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def error_text(error: DockerException) -> str:
    """What docker said on failure: the tail of its stderr (or stdout), never the exception's
    own text (a python-on-whales repr of the whole command line and both streams)."""
    text = (error.stderr or error.stdout or "").strip()
    if not text:
        return f"docker exited with code {error.return_code} without saying why"
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


def remove_by_label(label: str, *, timeout: float | None = None) -> int:
    """Remove every container, then network and volume, carrying *label*; return how many.

    One listing and one removal per kind, each bounded like every engine call. Objects that
    vanish meanwhile (another process removed them) are simply gone already.
    """
    removed = 0
    kinds = (
        ("container", ["container", "ls", "--all", "-q", "--no-trunc"], ["rm", "-f", "-v"]),
        ("network", ["network", "ls", "-q", "--no-trunc"], ["rm"]),
        ("volume", ["volume", "ls", "-q"], ["rm"]),
    )
    try:
        for kind, listing, removal in kinds:
            what = f"`docker {kind} ls`"
            found = run_engine(
                ["docker", *listing, "--filter", f"label={label}"], what=what, timeout=timeout
            ).split()
            if not found:
                continue
            what = f"`docker {kind} rm`"
            try:
                out = run_engine(["docker", kind, *removal, *found], what=what, timeout=timeout)
            except DockerException as error:
                said = [line for line in (error.stderr or "").splitlines() if line.strip()]
                if not all("No such" in line or "not found" in line for line in said):
                    raise
                out = error.stdout or ""
            removed += len(out.split())
    except DockerException as error:
        raise EngineError(f"cannot remove objects labelled {label}: {error_text(error)}") from error
    return removed
