"""Every non-Docker subprocess goes through here: logged, redacted, killable as a group."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from stackmatrix.engine.spawn import spawn
from stackmatrix.redact import format_command
from stackmatrix.results.files import open_new

LOG = logging.getLogger("stackmatrix")
KILL_GRACE = 3.0


@dataclass(frozen=True)
class ProcessOutcome:
    """How a command ended."""

    exit_code: int | None  # None when it could not be started
    duration: float
    timed_out: bool = False
    cancelled: bool = False
    start_error: str = ""


def run_logged(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float | None,
    cancel: threading.Event,
    secrets: Sequence[str] = (),
    shell: bool = False,
) -> ProcessOutcome:
    """Run *argv* in its own process group, output to *log_path*; kill it on timeout/cancel."""
    started = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_new(log_path), "wb") as log:  # never through a link the tests left
        log.write(f"$ {format_command(argv, secrets)}\n".encode())
        log.flush()
        LOG.debug("running %s", format_command(argv, secrets))
        try:
            proc = spawn(
                argv[0] if shell else list(argv),
                shell=shell,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as error:
            message = f"cannot start {argv[0]!r}: {error.strerror or error}"
            log.write(f"stackmatrix: {message}\n".encode())
            return ProcessOutcome(None, time.monotonic() - started, start_error=message)
        guard = _start_guard(proc.pid)
        deadline = None if timeout is None else started + timeout
        timed_out = cancelled = False
        try:
            while proc.poll() is None:
                if cancel.is_set():
                    cancelled = True
                elif deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                if timed_out or cancelled:
                    kill_group(proc)
                    break
                cancel.wait(0.05)
            code = proc.wait()
            duration = time.monotonic() - started
            # What the command left running in its group (a forgotten server, say) ends too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        finally:
            _release_guard(guard)
        if timed_out:
            log.write(f"\nstackmatrix: killed after the {timeout:g} s timeout\n".encode())
        elif cancelled:
            log.write(b"\nstackmatrix: killed: the run was cancelled\n")
    return ProcessOutcome(code, duration, timed_out=timed_out, cancelled=cancelled)


# Started beside every command: it waits on a pipe only stackmatrix can write to. A byte from
# stackmatrix ends it quietly; end-of-file means stackmatrix died without cleaning up (kill -9),
# and then the guard ends the command's process group itself: TERM, a grace period, KILL.
_GUARD = f"""
import os, signal, sys, time
if not sys.stdin.buffer.read(1):
    group = int(sys.argv[1])
    try:
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + {KILL_GRACE}
        while time.monotonic() < deadline:
            time.sleep(0.1)
            os.killpg(group, 0)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
"""


def _start_guard(group: int) -> subprocess.Popen[bytes] | None:
    """The guard of process group *group*; None if it cannot start (the run goes on)."""
    try:
        return spawn(  # a session of its own: a Ctrl-C in the terminal is stackmatrix's
            [sys.executable, "-I", "-S", "-c", _GUARD, str(group)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as error:
        LOG.warning("cannot start the guard of process group %d: %s", group, error)
        return None


def _release_guard(guard: subprocess.Popen[bytes] | None) -> None:
    """Tell the guard the command is over; it then ends without touching anything."""
    if guard is None or guard.stdin is None:
        return
    with contextlib.suppress(OSError):
        guard.stdin.write(b"x")
        guard.stdin.close()
    try:
        guard.wait(5)
    except subprocess.TimeoutExpired:
        guard.kill()
        guard.wait()


@contextlib.contextmanager
def signal_handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to *handler* while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children that ignored SIGTERM may still hold the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
