"""The run directory the sessions of one nox invocation share: every session is a process of
its own, so each variant stores its result there, and under a lock the journal and the merged
reports are rewritten from all the results so far."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from stackmatrix.ci.provider import detect, publish_annotations
from stackmatrix.errors import StackmatrixError
from stackmatrix.junit.write import write_error_junit
from stackmatrix.matrix.expand import Variant
from stackmatrix.report.build import build_reports, load_runs, summary_text
from stackmatrix.results.files import write_json_atomic
from stackmatrix.results.journal import RunJournal, Status, VariantResult, parallelism
from stackmatrix.results.run_dir import journal_of, prepare_run_dir
from stackmatrix.spec.load import Spec

if sys.platform != "win32":
    import fcntl

RESULT_NAME = "result.json"  # a variant's VariantResult, next to its junit.xml
_LOCK_NAME = ".nox.lock"
DID_NOT_RUN = "did not run: its session was not part of this nox run"


@dataclass(frozen=True)
class Matrix:
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


def say(text: str) -> None:
    """Print, even when nox has stopped reading (after Ctrl-C the stack still goes down)."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def ensure_run_dir(matrix: Matrix) -> None:
    prepare_run_dir(matrix.out_dir, matrix.run_id, shared=True)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """One session at a time updates the journal and reports (sessions are processes)."""
    with (run_dir / _LOCK_NAME).open("a") as handle:
        if sys.platform != "win32":
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def read_results(matrix: Matrix) -> dict[str, VariantResult]:
    results = {}
    for variant in matrix.variants:
        path = matrix.run_dir / variant.id / RESULT_NAME
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            results[variant.id] = VariantResult.from_dict(json.loads(path.read_text("utf-8")))
    return results


def stand_in(matrix: Matrix, variant: Variant, reason: str, status: Status) -> VariantResult:
    """The result of a variant without one of its own; the reports still show it."""
    result = VariantResult.never_ran(variant, status=status, reason=reason)
    write_error_junit(
        matrix.run_dir / variant.id / "junit.xml", variant_id=variant.id, message=reason
    )
    return result


def record(matrix: Matrix, result: VariantResult, *, pid: int) -> None:
    """Store a variant's result and refresh the run's journal and merged reports.

    When this completes the matrix and a required variant failed, nox will not run the report
    session (a session whose requirement failed is aborted), so this writes the final report.
    """
    write_json_atomic(matrix.run_dir / result.id / RESULT_NAME, result.to_dict())
    with locked(matrix.run_dir):
        results = read_results(matrix)
        complete = all(v.id in results for v in matrix.variants)
        final = complete and not all(r.status.ok for r in results.values())
        if not final:
            write_run(matrix, results, pid=pid, final=False)
    if final:
        say(
            f"stackmatrix: every variant has finished and not all required ones passed, so nox "
            f"aborts the {matrix.report!r} session; the merged report:"
        )
        finish(matrix, pid=pid, missing_did_not_run=False)
    else:
        say(f"stackmatrix: results so far: {matrix.run_dir / 'summary.md'}")


def finish(matrix: Matrix, *, pid: int, missing_did_not_run: bool) -> RunJournal:
    """Write the final journal and reports of the run, print the summary; return the journal."""
    with locked(matrix.run_dir):
        results = read_results(matrix)
        if missing_did_not_run:
            for variant in matrix.variants:
                if variant.id not in results:
                    results[variant.id] = stand_in(matrix, variant, DID_NOT_RUN, Status.CANCELLED)
        journal = write_run(matrix, results, pid=pid, final=True)
    run_dir = matrix.run_dir
    with contextlib.suppress(StackmatrixError, OSError):
        say(summary_text([run_dir]).rstrip())
    say(
        f"stackmatrix: run {matrix.run_id}: {run_dir / 'summary.md'}, "
        f"{run_dir / 'report.html'}, {run_dir / 'junit.xml'}"
    )
    with contextlib.suppress(StackmatrixError, OSError):
        publish_annotations(detect(), load_runs([run_dir]))
    return journal


def write_run(
    matrix: Matrix, results: Mapping[str, VariantResult], *, pid: int, final: bool
) -> RunJournal:
    """Write ``run.json`` and the merged reports; only the final write reaches the CI's step
    summary. Call with the run directory locked."""
    ordered = tuple(results[v.id] for v in matrix.variants if v.id in results)
    starts = [r.started_at for r in ordered if r.started_at is not None]
    interrupted = any(r.status is Status.INTERRUPTED for r in ordered)
    journal = journal_of(
        matrix.spec,
        matrix.run_id,
        started_at=min(starts, default=time.time()),
        finished_at=time.time() if final else None,
        variants=ordered,
        interrupted=interrupted,
        profile=matrix.profile,
        jobs=parallelism(ordered),  # nox's -j decides it: what the sessions really did
        pid=pid,
    )
    journal.write(matrix.run_dir)
    try:
        build_reports(
            [matrix.run_dir],
            matrix.run_dir,
            publish_summary=(
                partial(detect().publish_summary, report=matrix.run_dir) if final else None
            ),
        )
    except (StackmatrixError, OSError) as error:
        say(f"stackmatrix: could not build the reports: {error}")
    return journal
