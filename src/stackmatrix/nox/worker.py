"""One variant of a nox session, run in a worker process of its own.

nox -j runs each session in a child process and, on Ctrl-C, SIGKILLs the child's process
group two seconds after SIGTERM: too soon to tear a stack down. So a variant runs in a worker
in its own session. The nox session forwards signals to it, and the worker treats the end of
its stdin (the session process died) as an interrupt too; either way it still tears down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.lifecycle import run_variant
from stackmatrix.engine.processes import signal_handlers
from stackmatrix.engine.spawn import spawn
from stackmatrix.engine.suite import check_before_up
from stackmatrix.errors import SpecError, StackmatrixError
from stackmatrix.matrix.expand import Variant, expand
from stackmatrix.nox.run_dir import RESULT_NAME, Matrix, record, say, stand_in
from stackmatrix.report.plots import keep_plot
from stackmatrix.results.journal import Status, VariantResult
from stackmatrix.spec.load import load_spec

if TYPE_CHECKING:
    import nox

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds stackmatrix/


def tests_environment(session: nox.Session) -> dict[str, str]:
    """The environment nox's ``session.run`` would give a command: the session env on top
    of nox's own, the session's bin directories first on PATH."""
    env = {k: v for k, v in {**os.environ, **session.env}.items() if v is not None}
    paths = list(session.bin_paths or [])
    if paths:
        env["PATH"] = os.pathsep.join([*paths, *([env["PATH"]] if env.get("PATH") else [])])
    return env


@dataclass
class _Forwarder:
    """While a worker runs, SIGINT/SIGTERM of the session process become its SIGTERM."""

    worker: subprocess.Popen[bytes] | None = None
    received: list[int] = field(default_factory=list)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            print("stackmatrix: stopping; tearing the stack down", file=sys.stderr, flush=True)
        self._forward()

    def attach(self, worker: subprocess.Popen[bytes]) -> None:
        self.worker = worker
        if self.received:
            self._forward()

    def _forward(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.worker.send_signal(signal.SIGTERM)

    def installed(self) -> contextlib.AbstractContextManager[None]:
        return signal_handlers(self.handle)


def run_worker(
    session: nox.Session, matrix: Matrix, variant: Variant, *, pid: int
) -> tuple[VariantResult, bool]:
    """Run the variant in a worker process; its result, and whether a signal interrupted it."""
    result_path = matrix.run_dir / variant.id / RESULT_NAME
    result_path.unlink(missing_ok=True)
    request = {
        "spec": str(matrix.spec.path),
        "profile": matrix.profile,
        "variant": variant.id,
        "run_id": matrix.run_id,
        "out_dir": str(matrix.out_dir),
        "report": matrix.report,
        "pid": pid,
        "env": tests_environment(session),
        # `nox -s matrix-X -- -k foo`: nox's posargs go to the test command.
        "args": list(session.posargs),
    }
    code = (
        f"import sys; sys.path.insert(0, {str(_PACKAGE_ROOT)!r}); "
        "from stackmatrix.nox.worker import worker_main; sys.exit(worker_main())"
    )
    forwarder = _Forwarder()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    with forwarder.installed(), os.fdopen(write_end, "wb") as lifeline:
        try:
            worker = spawn([sys.executable, "-P", "-c", code], stdin=read_end)
        finally:
            os.close(read_end)
        forwarder.attach(worker)
        with contextlib.suppress(BrokenPipeError):
            lifeline.write(json.dumps(request).encode() + b"\n")
            lifeline.flush()
        returncode = worker.wait()
    interrupted = bool(forwarder.received)
    try:
        data = json.loads(result_path.read_text(encoding="utf-8"))
        return VariantResult.from_dict(data), interrupted
    except (OSError, ValueError, KeyError, TypeError):
        reason = f"the variant runner exited with code {returncode} and recorded no result"
        status = Status.INTERRUPTED if interrupted else Status.ERROR
        result = stand_in(matrix, variant, reason, status)
        record(matrix, result, pid=pid)
        return result, interrupted


def worker_main() -> int:
    """Entry point of the worker process: run one variant, record it, refresh the reports."""
    request = json.loads(sys.stdin.readline())
    cancel, interrupted = threading.Event(), threading.Event()

    def stop(_signum: int = 0, _frame: FrameType | None = None) -> None:
        interrupted.set()
        cancel.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)

    def watch_session() -> None:
        sys.stdin.read()  # returns at EOF: the session process is gone
        stop()

    threading.Thread(target=watch_session, name="stackmatrix-lifeline", daemon=True).start()
    try:
        spec = load_spec(Path(request["spec"]), profile=request["profile"])
        variants = tuple(expand(spec))
        variant = next(v for v in variants if v.id == request["variant"])
    except (StackmatrixError, StopIteration) as error:
        say(f"stackmatrix: cannot run variant {request['variant']}: {error or 'not found'}")
        return 2
    matrix = Matrix(
        spec, variants, request["profile"], Path(request["out_dir"]), request["run_id"],
        request["report"],
    )  # fmt: skip
    try:  # what would fail only once the stack is up: before it comes up
        check_before_up(spec, [variant], run_id=matrix.run_id, base_env=request["env"])
    except SpecError as error:
        for line in error.problems:
            say(f"stackmatrix: error: {line}")
        reason = "; ".join(error.problems)
        record(matrix, stand_in(matrix, variant, reason, Status.ERROR), pid=request["pid"])
        return 2
    started = time.monotonic()

    def on_phase(variant_id: str, phase: str) -> None:
        say(f"stackmatrix: {variant_id}: {phase} (+{time.monotonic() - started:.1f} s)")

    job = VariantJob(
        spec=spec,
        variant=variant,
        run_id=matrix.run_id,
        run_dir=matrix.run_dir,
        cancel=cancel,
        interrupted=interrupted,
        on_phase=on_phase,
        base_env=request["env"],
        extra_args=tuple(request.get("args", ())),
        after_stats=keep_plot,
    )
    record(matrix, run_variant(job), pid=request["pid"])
    return 0
