"""Every non-Docker subprocess goes through here: logged, redacted, killable as a group."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from xml.sax.saxutils import escape as xml_escape

LOG = logging.getLogger("stackmatrix")
MASK = "••••••"
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
# userinfo in URLs: scheme://user:password@host
# Bounded repeats keep this linear on huge inputs (a 24 MiB line of letters, say).
URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]{0,30}://[^:/@\s]{1,256}:)(?P<pw>[^@/\s]{1,1024})(?=@)", re.I
)
KILL_GRACE = 3.0


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(SECRET_NAME.search(name))


def redact_text(text: str, secrets: Sequence[str] = ()) -> str:
    """Mask passwords in URLs and every given secret value in *text*."""
    text = URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_env(env: Mapping[str, str], extra_secret_names: Sequence[str] = ()) -> dict[str, str]:
    """A copy of *env* safe to print or store: secret-looking values masked."""
    return {
        key: MASK if is_secret_name(key) or key in extra_secret_names else redact_text(value)
        for key, value in env.items()
    }


def secret_values(env: Mapping[str, str], extra_secret_names: Sequence[str] = ()) -> list[str]:
    """The values of *env* that must never appear in output."""
    return [v for k, v in env.items() if v and (is_secret_name(k) or k in extra_secret_names)]


def compose_secrets(
    compose: Mapping[str, Any], extra_secret_names: Sequence[str] = ()
) -> list[str]:
    """Values of secret ``environment`` entries (secret-looking names, or *extra_secret_names*)
    of every service of a compose dict."""
    found: list[str] = []
    for service in (compose.get("services") or {}).values():
        environment = (service or {}).get("environment") or {}
        if isinstance(environment, Mapping):
            pairs = [(str(k), "" if v is None else str(v)) for k, v in environment.items()]
        else:
            pairs = [tuple(str(item).split("=", 1)) for item in environment if "=" in str(item)]  # type: ignore[misc]
        found.extend(
            value
            for name, value in pairs
            if value and (is_secret_name(name) or name in extra_secret_names)
        )
    return found


def write_private_if(path: Path, text: str, *, private: bool) -> None:
    """Write *text*; the file is created 0600 from the start when it holds secrets."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(mode)  # an existing file keeps its old mode through O_TRUNC


def redact_file(path: Path, secrets: Sequence[str]) -> None:
    """Mask *secrets* (as written, and XML-escaped) in a text file, in place."""
    if not path.is_file():
        return
    wanted = {s for s in secrets if len(s) >= 3}
    wanted |= {xml_escape(s, {'"': "&quot;"}) for s in wanted}
    data = path.read_bytes()
    text = data.decode("utf-8", errors="surrogateescape")
    cleaned = text
    for secret in sorted(wanted, key=len, reverse=True):
        cleaned = cleaned.replace(secret, MASK)
    if cleaned != text:
        path.write_bytes(cleaned.encode("utf-8", errors="surrogateescape"))


def format_command(argv: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """A shell-quoted, redacted rendering of *argv* for logs and messages."""
    return redact_text(shlex.join(argv), secrets)


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
    with log_path.open("wb") as log:
        log.write(f"$ {format_command(argv, secrets)}\n".encode())
        log.flush()
        LOG.debug("running %s", format_command(argv, secrets))
        try:
            proc = subprocess.Popen(
                argv[0] if shell else list(argv),
                shell=shell,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GUARD, str(group)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is stackmatrix's to handle
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
