"""The first question of every command that needs the engine: does it answer, and is Compose
v2 there?

Both are asked with plain ``docker`` processes, started at once and answered later, so
``stackmatrix run`` can ask before it reads the spec and have the answer by the time its first
stack needs it (the engine's round trip overlaps the spec's validation). Nothing here imports
python-on-whales: starting the check costs a fork, not an import.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from stackmatrix.engine.spawn import spawn
from stackmatrix.errors import EngineError

ANSWER_TIMEOUT = 10.0  # an engine socket that accepts but never answers must not hang a CI job
HINT = "is dockerd running? scripts/bootstrap.sh installs and starts it"
SAID_LINES = 3  # of what docker printed on stderr, in the error


QUESTIONS: Mapping[str, tuple[str, ...]] = {
    "engine": ("version", "--format", "{{.Server.Version}}"),
    "compose": ("compose", "version", "--short"),
}


@dataclass(frozen=True)
class _Answer:
    answered: bool
    code: int = 0
    out: str = ""
    said: str = ""  # the last lines docker printed on stderr (or why it could not start)


class EngineCheck:
    """The engine and Compose questions, asked when it is made; :meth:`wait` for the answers."""

    def __init__(self) -> None:
        self._deadline = time.monotonic() + ANSWER_TIMEOUT
        self._processes: dict[str, subprocess.Popen[str] | OSError] = {}
        for name, args in QUESTIONS.items():
            try:
                # Its own session: the terminal's Ctrl-C reaches stackmatrix, which handles it.
                self._processes[name] = spawn(
                    ["docker", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                )
            except OSError as error:  # no docker client at all
                self._processes[name] = error

    def __enter__(self) -> EngineCheck:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the questions still running (the command stopped before it needed them)."""
        for process in self._processes.values():
            if not isinstance(process, subprocess.Popen):
                continue
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

    def _answer(self, name: str) -> _Answer:
        process = self._processes[name]
        if isinstance(process, OSError):
            return _Answer(answered=True, code=127, said=str(process))
        try:
            out, err = process.communicate(timeout=max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return _Answer(answered=False)
        said = "; ".join(line.strip() for line in err.strip().splitlines()[-SAID_LINES:])
        return _Answer(answered=True, code=process.returncode, out=out.strip(), said=said)

    def wait(self) -> None:
        """Return when both answered well; else an :class:`EngineError` that says what to do."""
        try:
            engine = self._answer("engine")
            if not engine.answered:
                raise EngineError(
                    f"the Docker engine is not reachable: it did not answer within "
                    f"{ANSWER_TIMEOUT:g} s ({HINT})"
                )
            if engine.code != 0 or not engine.out:
                said = engine.said or "no Docker engine answered"
                raise EngineError(f"the Docker engine is not reachable ({HINT}): {said}")
            compose = self._answer("compose")
            if not compose.answered:
                raise EngineError(
                    f"`docker compose version` did not answer within {ANSWER_TIMEOUT:g} s"
                )
            if compose.code != 0:
                said = f": {compose.said}" if compose.said else ""
                raise EngineError(f"`docker compose` (Compose v2) is not available{said}")
        finally:
            self.close()


def ensure_engine() -> None:
    """Fail fast, with a hint, when the engine or Compose v2 cannot be used (both asked at
    once, and bounded)."""
    EngineCheck().wait()
