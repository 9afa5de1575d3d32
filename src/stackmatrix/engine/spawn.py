"""Starting a process in a session of its own, safe from a Ctrl-C that comes while it starts.

Kept apart, with nothing but the standard library's process modules, so that the engine check
at the very start of a run can use it without waiting for the imports of the rest.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

# Between its vfork() and its setsid() a new process is still in stackmatrix's process group,
# with the default handlers back: a Ctrl-C to the group right then ends it before it runs.
# (fork() would keep our handler there until the exec, at 15-20 ms a process instead of 1.)
SPAWN_TRIES = 10


def spawn(argv: Sequence[str] | str, **options: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, start_new_session=True, **options)``, started again when it
    died before it had its own session, i.e. before it ran (at most SPAWN_TRIES times)."""
    for attempt in range(1, SPAWN_TRIES + 1):
        proc = subprocess.Popen(argv, start_new_session=True, **options)
        if attempt == SPAWN_TRIES or not _unborn(proc):
            return proc
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        import logging  # noqa: PLC0415 - this rare path only: the module stays cheap to import

        logging.getLogger("stackmatrix").debug(
            "%s ended by a signal before it ran; starting it again", proc.args
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _unborn(proc: subprocess.Popen[Any]) -> bool:
    # Popen returns once the child has exec'd or died; a session of its own comes before its
    # exec, and a zombie still has its session.
    try:
        return os.getsid(proc.pid) != proc.pid
    except OSError:
        return False
