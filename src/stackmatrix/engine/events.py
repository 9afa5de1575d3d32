"""The engine's events about a compose project's containers, as a signal to read their state
again: one ``docker events`` process for the whole wait instead of a poll loop. A container
that turned healthy is told by its event alone: its state need not be read again for that."""

from __future__ import annotations

import subprocess
import threading
import time

from stackmatrix.compose import labels as compose_labels
from stackmatrix.compose.labels import selector
from stackmatrix.engine.docker import close_stream, open_stream

# Health is read from the engine, two docker processes a reading: costly on a small CI machine
# running several stacks. So a `docker events` stream of the project says when to read again
# (a container was created, started, died or changed health); without it, every 0.25 s.
HEALTH_POLL_INTERVAL = 0.25
HEALTH_EVENT_FALLBACK = 1.0  # with the event stream: read anyway this often, in case

WATCHED_EVENTS = ("create", "start", "die", "oom", "health_status")


CANCEL_CHECK = 0.05  # a cancelled run is noticed within this while waiting for events


class ContainerEvents:
    """The engine's events about a project's containers, as a signal to read their state again.

    One ``docker events`` process for the whole wait; ``since`` replays what happened between
    that moment and the stream's start, ``until`` ends it. If the stream cannot start or ends,
    :meth:`wait` falls back to a plain poll interval.
    """

    def __init__(self, docker: list[str], project: str, *, since: float, until: float) -> None:
        filters = [
            selector(compose_labels.COMPOSE_PROJECT, project),
            "type=container",
            *(f"event={event}" for event in WATCHED_EVENTS),
        ]
        self._command = [
            *docker, "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
            *(part for f in filters for part in ("--filter", f)),
            # Action and Actor.ID: what every engine API version has (Status and ID are
            # gone from newer ones).
            "--format", "{{.Actor.ID}} {{.TimeNano}} {{.Action}}",
        ]  # fmt: skip
        self.until = until  # when the stream ends by itself (epoch seconds)
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._changed = threading.Event()
        self._lock = threading.Lock()
        # container -> when it was last reported healthy (engine clock, epoch ns), since
        # the last take()
        self._healthy: dict[str, int] = {}
        self._other = False  # any other event since the last take(): read the state again

    @property
    def interval(self) -> float:
        """How long to wait at most before reading the state again."""
        return HEALTH_EVENT_FALLBACK if self.streaming else HEALTH_POLL_INTERVAL

    def __enter__(self) -> ContainerEvents:
        self._process = open_stream(self._command)
        if self._process is None:
            return self  # no event stream: polling
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name="stackmatrix-events", daemon=True
        )
        self._reader.start()
        return self

    @property
    def streaming(self) -> bool:
        """Whether the event stream is there (else only reading the state tells anything)."""
        return self._reader is not None and self._reader.is_alive()

    def _read(self, process: subprocess.Popen[str]) -> None:
        try:
            for line in process.stdout or ():
                container, _, rest = line.strip().partition(" ")
                moment, _, action = rest.partition(" ")
                with self._lock:
                    if action == "health_status: healthy" and container and moment.isdigit():
                        self._healthy[container] = int(moment)
                    else:
                        self._other = True
                self._changed.set()
        finally:
            with self._lock:
                self._other = True
            self._changed.set()  # the stream is over: the wait goes back to polling at once

    def take(self) -> tuple[dict[str, int], bool]:
        """(container -> when it was reported healthy, whether anything else happened) since
        the last call; forgotten once taken."""
        with self._lock:
            healthy, other = dict(self._healthy), self._other
            self._healthy.clear()
            self._other = False
        return healthy, other

    def wait(self, timeout: float, cancel: threading.Event) -> bool:
        """Until the engine reports a change, *cancel* is set, or *timeout* seconds pass;
        whether a change was reported."""
        end = time.monotonic() + timeout
        while not cancel.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._changed.wait(min(left, CANCEL_CHECK)):
                self._changed.clear()
                return True
        return False

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the stream (once; a second call does nothing)."""
        process, self._process = self._process, None
        if process is not None:
            close_stream(process, self._reader)
