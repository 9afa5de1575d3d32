"""Nox sessions from a matrix file: one session per variant, and a report session that merges.

In a noxfile::

    from stackmatrix.nox import matrix_sessions

    matrix_sessions("matrix.yaml", install=["-e", ".[test]"])

``nox -l`` then lists ``matrix-<variant id>`` for every variant and ``matrix``;
``nox -j 3 -s matrix`` runs the variants three at a time and merges their reports, and
``nox -t postgres-15`` runs only the variants where the axis ``postgres`` is ``15``.
docs/nox.md describes the sessions, their verdicts and their output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, assert_never

import nox
import nox.command
import nox.registry
from nox.logger import logger

from stackmatrix import __version__
from stackmatrix._errors import StackmatrixError, UsageError
from stackmatrix._expand import ID_PATTERN, Variant, expand
from stackmatrix._junit import write_error_junit
from stackmatrix._proc import signal_handlers
from stackmatrix._reports import build_reports, github_annotations, summary_text
from stackmatrix._results import RunJournal, Status, VariantResult, write_json_atomic
from stackmatrix._runner import exit_code_of, new_run_id, prepare_run_dir, spec_digest
from stackmatrix._spec import Spec, load_spec
from stackmatrix._variant import VariantJob, run_variant

if sys.platform != "win32":
    import fcntl

__all__ = ["RUN_ID_ENV", "matrix_sessions"]

RUN_ID_ENV = "STACKMATRIX_NOX_RUN_ID"
RESULT_NAME = "result.json"  # a variant's VariantResult, next to its junit.xml
_LOCK_NAME = ".nox.lock"
_DID_NOT_RUN = "did not run: its session was not part of this nox run"
_TAIL_LINES = 30
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class _Matrix:
    """One ``matrix_sessions`` call: the expanded spec and where its run writes."""

    spec: Spec
    variants: tuple[Variant, ...]
    profile: str | None
    out_dir: Path
    run_id: str
    report: str

    @property
    def run_dir(self) -> Path:
        """``OUT/runs/<run-id>``, shared by every session of this nox invocation."""
        return self.out_dir / "runs" / self.run_id

    def session_name(self, variant: Variant) -> str:
        """The nox session name of a variant: ``<report>-<variant id>``."""
        return f"{self.report}-{variant.id}"


def matrix_sessions(
    path: str | os.PathLike[str] = "matrix.yaml",
    *,
    profile: str | None = None,
    install: Sequence[str] = (),
    python: str | None = None,
    report: str = "matrix",
    out: str | os.PathLike[str] = ".stackmatrix",
    venv_backend: str | None = None,
    default: bool = True,
) -> list[str]:
    """Register one nox session per variant of the matrix file *path*, and a report session.

    Variant sessions are named ``<report>-<variant id>``, tagged ``<report>`` and
    ``AXIS-VALUE`` for every matrix value (plus ``experimental``), and allow parallel runs.
    Each installs *install* (arguments of ``session.install``) into its environment, then
    brings its stack up, runs the matrix's tests with that environment, and tears it down.
    The session named *report* requires them all and merges their results into
    ``OUT/runs/<run-id>/``. Returns the registered names, the report session last.

    A matrix file with errors registers only the report session, which fails listing them.
    """
    if not isinstance(python, str | None):
        raise TypeError("python: give one interpreter (a variant's sessions would share its stack)")
    if isinstance(install, str):
        raise TypeError(f"install: give a list of arguments, e.g. [{install!r}]")
    if not ID_PATTERN.match(report):
        raise ValueError(f"report: {report!r} must match {ID_PATTERN.pattern}")
    registered = nox.registry.get()
    out_dir = Path(out).absolute()
    _refuse_shared_output(out_dir, registered)
    common = {"python": python, "venv_backend": venv_backend, "default": default}
    try:
        run_id = _shared_run_id()
        spec = load_spec(Path(path).absolute(), profile=profile)
        variants = tuple(expand(spec))
    except StackmatrixError as error:
        broken = _broken_session(str(path), error)
        _register(broken, report, [report], registered, out_dir, venv_backend="none")
        return [report]
    matrix = _Matrix(spec, variants, profile, out_dir, run_id, report)
    names = [matrix.session_name(v) for v in variants]
    clash = sorted({*names, report} & set(registered))
    if clash:
        raise ValueError(f"nox sessions already registered: {', '.join(clash)}")
    for variant, name in zip(variants, names, strict=True):
        _register(
            _variant_session(matrix, variant, tuple(install)),
            name,
            variant_tags(variant, report),
            registered,
            out_dir,
            allow_parallel=True,
            **common,
        )
    _register(
        _report_session(matrix),
        report,
        [report],
        registered,
        out_dir,
        requires=names,
        allow_parallel=True,
        venv_backend="none",
        default=default,
    )
    return [*names, report]


def variant_tags(variant: Variant, common: str) -> list[str]:
    """*common*, ``AXIS-VALUE`` for every value of *variant*, and ``experimental`` if it is."""
    tags = [common]
    for key, value in variant.values.items():
        if key != "experimental":
            tags.append(re.sub(r"\s+", "-", f"{key}-{_value_text(value)}"))
    if variant.experimental:
        tags.append("experimental")
    return list(dict.fromkeys(tags))


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _shared_run_id() -> str:
    """The run id of this nox invocation; nox's parallel workers inherit it from the env."""
    run_id = os.environ.get(RUN_ID_ENV)
    if run_id is None:
        run_id = new_run_id()
        os.environ[RUN_ID_ENV] = run_id
    elif not ID_PATTERN.match(run_id):
        raise UsageError(f"{RUN_ID_ENV}={run_id!r}: a run id must match {ID_PATTERN.pattern}")
    return run_id


_OUT_ATTRIBUTE = "stackmatrix_out_dir"


def _refuse_shared_output(out_dir: Path, registered: Mapping[str, Any]) -> None:
    for name, func in registered.items():
        if getattr(func, _OUT_ATTRIBUTE, None) == out_dir:
            raise ValueError(
                f"out: {out_dir} is already used by the matrix session {name!r}; "
                "give each matrix its own output folder"
            )


def _register(
    func: Callable[[nox.Session], None],
    name: str,
    tags: list[str],
    registered: Mapping[str, Any],
    out_dir: Path,
    **options: Any,
) -> None:
    if name in registered:
        raise ValueError(f"nox session already registered: {name}")
    decorated = nox.session(name=name, tags=tags, **options)(func)
    setattr(decorated, _OUT_ATTRIBUTE, out_dir)


# -- sessions ---------------------------------------------------------------------------------


def _broken_session(path: str, error: StackmatrixError) -> Callable[[nox.Session], None]:
    def broken(session: nox.Session) -> None:
        session.error(f"{path} cannot be used:\n{error}")

    broken.__doc__ = f"{path} has errors: run this session to see them"
    return broken


def _describe(variant: Variant) -> str:
    values = ", ".join(
        f"{k}={_value_text(v)}" for k, v in variant.values.items() if k != "experimental"
    )
    return values + (" (experimental: may fail)" if variant.experimental else "")


def _variant_session(
    matrix: _Matrix, variant: Variant, install: tuple[str, ...]
) -> Callable[[nox.Session], None]:
    def run(session: nox.Session) -> None:
        if install:
            session.install(*install)
        _ensure_run_dir(matrix)
        result, interrupted = _run_worker(session, matrix, variant)
        if interrupted and result.status is not Status.INTERRUPTED:
            logger.error(f"{variant.id}: {result.status} before the interrupt arrived")
            raise KeyboardInterrupt
        _verdict(matrix, result)

    run.__doc__ = _describe(variant) or variant.id
    return run


def _report_session(matrix: _Matrix) -> Callable[[nox.Session], None]:
    def report(session: nox.Session) -> None:
        _ensure_run_dir(matrix)
        journal = _finish(matrix, pid=_nox_pid(session), missing_did_not_run=True)
        code = journal.exit_code or 0
        if code:
            bad = sum(1 for v in journal.variants if not v.status.ok)
            _fail(f"{bad} of {len(journal.variants)} variants did not pass (exit code {code})")

    profile = f", profile {matrix.profile}" if matrix.profile else ""
    report.__doc__ = (
        f"Run every variant of {matrix.spec.path.name} and merge the results "
        f"({len(matrix.variants)} variants{profile}; nox -j N runs N side by side)"
    )
    return report


def _nox_pid(session: nox.Session) -> int:
    """The nox process of this run (under ``-j`` sessions run in its child processes)."""
    return os.getppid() if session.parallel else os.getpid()


def _fail(message: str) -> NoReturn:
    logger.error(message)
    raise nox.command.CommandFailed(message)


def _verdict(matrix: _Matrix, result: VariantResult) -> None:
    """Pass, warn or fail the session from the variant's status."""
    where = matrix.run_dir / result.id
    counts = result.tests
    tally = f"{counts.passed} passed, {counts.failed} failed, {counts.errors} errors"
    match result.status:
        case Status.PASSED:
            logger.success(f"{result.id}: passed ({tally})")
        case Status.EXPERIMENTAL_FAILED:
            logger.warning(f"{result.id}: failed, but it is experimental: {result.reason}")
        case Status.FAILED | Status.ERROR | Status.CANCELLED:
            _show_failure(matrix, result)
            _fail(f"{result.id}: {result.status}: {result.reason} (files: {where})")
        case Status.INTERRUPTED:
            logger.error(f"{result.id}: interrupted; its stack was torn down")
            raise KeyboardInterrupt
        case _:
            assert_never(result.status)


def _show_failure(matrix: _Matrix, result: VariantResult) -> None:
    if result.detail:
        print(result.detail, flush=True)
    if result.tests_log:
        log = matrix.run_dir / result.tests_log
        with contextlib.suppress(OSError):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            print(f"--- last lines of {log}", *lines[-_TAIL_LINES:], sep="\n", flush=True)


# -- one variant, in a process of its own -----------------------------------------------------
#
# nox -j runs each session in a child process and, on Ctrl-C, SIGKILLs the child's process
# group two seconds after SIGTERM: too soon to tear a stack down. So a variant runs in a worker
# in its own session. The nox session forwards signals to it, and the worker treats the end of
# its stdin (the session process died) as an interrupt too; either way it still tears down.


def _tests_environment(session: nox.Session) -> dict[str, str]:
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


def _run_worker(
    session: nox.Session, matrix: _Matrix, variant: Variant
) -> tuple[VariantResult, bool]:
    """Run the variant in a worker process; its result, and whether a signal interrupted it."""
    result_path = matrix.run_dir / variant.id / RESULT_NAME
    result_path.unlink(missing_ok=True)
    pid = _nox_pid(session)
    request = {
        "spec": str(matrix.spec.path),
        "profile": matrix.profile,
        "variant": variant.id,
        "run_id": matrix.run_id,
        "out_dir": str(matrix.out_dir),
        "report": matrix.report,
        "pid": pid,
        "env": _tests_environment(session),
    }
    code = (
        f"import sys; sys.path.insert(0, {str(_PACKAGE_ROOT)!r}); "
        "from stackmatrix.nox import _worker_main; sys.exit(_worker_main())"
    )
    forwarder = _Forwarder()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    with forwarder.installed(), os.fdopen(write_end, "wb") as lifeline:
        try:
            worker = subprocess.Popen(
                [sys.executable, "-P", "-c", code], stdin=read_end, start_new_session=True
            )
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
        result = _stand_in(matrix, variant, reason, status)
        _record(matrix, result, pid=pid)
        return result, interrupted


def _worker_main() -> int:
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
        _say(f"stackmatrix: cannot run variant {request['variant']}: {error or 'not found'}")
        return 2
    matrix = _Matrix(
        spec, variants, request["profile"], Path(request["out_dir"]), request["run_id"],
        request["report"],
    )  # fmt: skip
    started = time.monotonic()

    def on_phase(variant_id: str, phase: str) -> None:
        _say(f"stackmatrix: {variant_id}: {phase} (+{time.monotonic() - started:.1f} s)")

    job = VariantJob(
        spec=spec,
        variant=variant,
        run_id=matrix.run_id,
        run_dir=matrix.run_dir,
        cancel=cancel,
        interrupted=interrupted,
        on_phase=on_phase,
        base_env=request["env"],
    )
    _record(matrix, run_variant(job), pid=request["pid"])
    return 0


def _say(text: str) -> None:
    """Print, even when nox has stopped reading (after Ctrl-C the stack still goes down)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


# -- the shared run directory -----------------------------------------------------------------


def _ensure_run_dir(matrix: _Matrix) -> None:
    prepare_run_dir(matrix.out_dir, matrix.run_id, shared=True)


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """One session at a time updates the journal and reports (sessions are processes)."""
    with (run_dir / _LOCK_NAME).open("a") as handle:
        if sys.platform != "win32":
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read_results(matrix: _Matrix) -> dict[str, VariantResult]:
    results = {}
    for variant in matrix.variants:
        path = matrix.run_dir / variant.id / RESULT_NAME
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            results[variant.id] = VariantResult.from_dict(json.loads(path.read_text("utf-8")))
    return results


def _stand_in(matrix: _Matrix, variant: Variant, reason: str, status: Status) -> VariantResult:
    """The result of a variant without one of its own; the reports still show it."""
    junit = f"{variant.id}/junit.xml"
    write_error_junit(matrix.run_dir / junit, variant_id=variant.id, message=reason)
    if variant.experimental and status is not Status.INTERRUPTED:
        status = Status.EXPERIMENTAL_FAILED
    return VariantResult(
        id=variant.id,
        values=dict(variant.values),
        status=status,
        experimental=variant.experimental,
        reason=reason,
        junit=junit,
    )


def _record(matrix: _Matrix, result: VariantResult, *, pid: int) -> None:
    """Store a variant's result and refresh the run's journal and merged reports.

    When this completes the matrix and a required variant failed, nox will not run the report
    session (a session whose requirement failed is aborted), so this writes the final report.
    """
    write_json_atomic(matrix.run_dir / result.id / RESULT_NAME, result.to_dict())
    with _locked(matrix.run_dir):
        results = _read_results(matrix)
        complete = all(v.id in results for v in matrix.variants)
        final = complete and not all(r.status.ok for r in results.values())
        if not final:
            _write(matrix, results, pid=pid, final=False)
    if final:
        _say(
            f"stackmatrix: every variant has finished and not all required ones passed, so nox "
            f"aborts the {matrix.report!r} session; the merged report:"
        )
        _finish(matrix, pid=pid, missing_did_not_run=False)
    else:
        _say(f"stackmatrix: results so far: {matrix.run_dir / 'summary.md'}")


def _finish(matrix: _Matrix, *, pid: int, missing_did_not_run: bool) -> RunJournal:
    """Write the final journal and reports of the run, print the summary; return the journal."""
    with _locked(matrix.run_dir):
        results = _read_results(matrix)
        if missing_did_not_run:
            for variant in matrix.variants:
                if variant.id not in results:
                    results[variant.id] = _stand_in(matrix, variant, _DID_NOT_RUN, Status.CANCELLED)
        journal = _write(matrix, results, pid=pid, final=True)
    run_dir = matrix.run_dir
    with contextlib.suppress(StackmatrixError, OSError):
        _say(summary_text([run_dir]).rstrip())
    _say(
        f"stackmatrix: run {matrix.run_id}: {run_dir / 'summary.md'}, "
        f"{run_dir / 'report.html'}, {run_dir / 'junit.xml'}"
    )
    if os.environ.get("GITHUB_ACTIONS") == "true":
        with contextlib.suppress(StackmatrixError, OSError):
            for line in github_annotations([run_dir]):
                print(line, file=sys.stderr, flush=True)
    return journal


def _write(
    matrix: _Matrix, results: Mapping[str, VariantResult], *, pid: int, final: bool
) -> RunJournal:
    """Write ``run.json`` and the merged reports; only the final write reaches
    ``$GITHUB_STEP_SUMMARY``. Call with the run directory locked."""
    ordered = tuple(results[v.id] for v in matrix.variants if v.id in results)
    starts = [r.started_at for r in ordered if r.started_at is not None]
    interrupted = any(r.status is Status.INTERRUPTED for r in ordered)
    journal = RunJournal(
        run_id=matrix.run_id,
        name=matrix.spec.name,
        spec_file=str(matrix.spec.path),
        spec_digest=spec_digest(matrix.spec),
        started_at=min(starts, default=time.time()),
        finished_at=time.time() if final else None,
        profile=matrix.profile,
        exit_code=exit_code_of(ordered, interrupted=interrupted) if final else None,
        interrupted=interrupted,
        pid=pid,
        variants=ordered,
        stackmatrix_version=__version__,
    )
    journal.write(matrix.run_dir)
    try:
        with _quiet_plotting():
            build_reports(
                [matrix.run_dir],
                matrix.run_dir,
                github_step_summary=None if final else Path(os.devnull),
            )
    except (StackmatrixError, OSError) as error:
        _say(f"stackmatrix: could not build the reports: {error}")
    return journal


@contextlib.contextmanager
def _quiet_plotting() -> Iterator[None]:
    """nox logs everything at debug level; the plotting library of report.html is chatty."""
    chatty = [logging.getLogger(name) for name in ("matplotlib", "PIL")]
    levels = [log.level for log in chatty]
    for log in chatty:
        log.setLevel(max(log.level, logging.WARNING))
    try:
        yield
    finally:
        for log, level in zip(chatty, levels, strict=True):
            log.setLevel(level)
