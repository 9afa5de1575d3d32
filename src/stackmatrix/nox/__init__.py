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
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, assert_never

import nox
import nox.command
import nox.registry
from nox.logger import logger

from stackmatrix.errors import StackmatrixError, UsageError
from stackmatrix.matrix.expand import ID_PATTERN, Variant, expand
from stackmatrix.nox.run_dir import Matrix, ensure_run_dir, finish
from stackmatrix.nox.worker import run_worker
from stackmatrix.results.journal import Status, VariantResult
from stackmatrix.results.run_dir import new_run_id
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.values import scalar_text

__all__ = ["RUN_ID_ENV", "matrix_sessions"]

RUN_ID_ENV = "STACKMATRIX_NOX_RUN_ID"
_TAIL_LINES = 30


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
    matrix = Matrix(spec, variants, profile, out_dir, run_id, report)
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
            tags.append(re.sub(r"\s+", "-", f"{key}-{scalar_text(value)}"))
    if variant.experimental:
        tags.append("experimental")
    return list(dict.fromkeys(tags))


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
        f"{k}={scalar_text(v)}" for k, v in variant.values.items() if k != "experimental"
    )
    return values + (" (experimental: may fail)" if variant.experimental else "")


def _variant_session(
    matrix: Matrix, variant: Variant, install: tuple[str, ...]
) -> Callable[[nox.Session], None]:
    def run(session: nox.Session) -> None:
        if install:
            session.install(*install)
        ensure_run_dir(matrix)
        result, interrupted = run_worker(session, matrix, variant, pid=_nox_pid(session))
        if interrupted and result.status is not Status.INTERRUPTED:
            logger.error(f"{variant.id}: {result.status} before the interrupt arrived")
            raise KeyboardInterrupt
        _verdict(matrix, result)

    run.__doc__ = _describe(variant) or variant.id
    return run


def _report_session(matrix: Matrix) -> Callable[[nox.Session], None]:
    def report(session: nox.Session) -> None:
        ensure_run_dir(matrix)
        journal = finish(matrix, pid=_nox_pid(session), missing_did_not_run=True)
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


def _verdict(matrix: Matrix, result: VariantResult) -> None:
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


def _show_failure(matrix: Matrix, result: VariantResult) -> None:
    if result.detail:
        print(result.detail, flush=True)
    if result.tests_log:
        log = matrix.run_dir / result.tests_log
        with contextlib.suppress(OSError):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            print(f"--- last lines of {log}", *lines[-_TAIL_LINES:], sep="\n", flush=True)
