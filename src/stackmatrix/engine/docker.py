"""The Docker client: how stackmatrix calls docker, streams its output, reads its errors and
removes objects by label. Every engine call of the other engine modules starts here."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import (
    DockerException,
    NoSuchContainer,
    NoSuchNetwork,
    NoSuchVolume,
)

from stackmatrix.errors import EngineError

LOG = logging.getLogger("stackmatrix")
LOG_TAIL_LINES = 30
ENGINE_ANSWER_TIMEOUT = 10.0


def docker_client(**kwargs: Any) -> DockerClient:
    """A client whose docker processes ignore the terminal's Ctrl-C (we handle it)."""
    call = ["setsid", "docker"] if shutil.which("setsid") else ["docker"]
    return DockerClient(client_call=call, **kwargs)


def docker_command(client: DockerClient, *args: str) -> list[str]:
    """The client's own docker command (``setsid docker`` and its options), then *args*."""
    return [*map(str, client.client_config.docker_cmd), *args]


def open_stream(command: list[str]) -> subprocess.Popen[str] | None:
    """Start a docker command whose output is read line by line as it comes (events, stats);
    None when it cannot start (the caller does without it)."""
    try:
        return subprocess.Popen(
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
    """What docker said on failure: the tail of its stderr (or stdout)."""
    text = (error.stderr or error.stdout or str(error)).strip()
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


def remove_by_label(label: str) -> int:
    """Remove every container, then network and volume, carrying *label*; return how many.

    Objects that vanish meanwhile (another process removed them) are simply gone already.
    """
    client = docker_client()
    removed = 0
    try:
        for container in client.container.list(all=True, filters={"label": label}):
            with contextlib.suppress(NoSuchContainer):
                client.container.remove(container, force=True, volumes=True)
                removed += 1
        for network in client.network.list(filters={"label": label}):
            with contextlib.suppress(NoSuchNetwork):
                client.network.remove(network)
                removed += 1
        for volume in client.volume.list(filters={"label": label}):
            with contextlib.suppress(NoSuchVolume):
                client.volume.remove(volume)
                removed += 1
    except DockerException as error:
        raise EngineError(f"cannot remove objects labelled {label}: {error_text(error)}") from error
    return removed


def ensure_engine() -> None:
    """Fail fast, with a hint, when the engine or Compose v2 cannot be used.

    Both questions are asked at once, and bounded: an engine socket that accepts but never
    answers must not hang a CI job.
    """
    client = docker_client()
    answers: dict[str, BaseException | None] = {}

    def engine() -> None:
        if client.version().server is None:
            raise EngineError("no Docker engine answered")

    def ask(name: str, question: Callable[[], object]) -> None:
        try:
            question()
            answers[name] = None
        except BaseException as error:
            answers[name] = error

    workers = [
        threading.Thread(target=ask, args=args, name=f"stackmatrix-check-{args[0]}", daemon=True)
        for args in (("engine", engine), ("compose", client.compose.version))
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + ENGINE_ANSWER_TIMEOUT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    hint = "is dockerd running? scripts/bootstrap.sh installs and starts it"
    if "engine" not in answers:
        raise EngineError(
            f"the Docker engine is not reachable: it did not answer within "
            f"{ENGINE_ANSWER_TIMEOUT:g} s ({hint})"
        )
    error = answers["engine"]
    if error is not None:
        said = error_text(error) if isinstance(error, DockerException) else str(error)
        raise EngineError(f"the Docker engine is not reachable ({hint}): {said}") from error
    if "compose" not in answers:
        raise EngineError(
            f"`docker compose version` did not answer within {ENGINE_ANSWER_TIMEOUT:g} s"
        )
    if answers["compose"] is not None:
        raise EngineError("`docker compose` (Compose v2) is not available") from answers["compose"]
