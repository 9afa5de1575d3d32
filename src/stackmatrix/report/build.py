"""Reports of a run: merged JUnit, summary.md (also a CI's step summary), report.html and
results.json (machine-readable; the next run's baseline).

Several run directories (the shards of a CI matrix) combine into one report; a variant found in
more than one directory is taken from the last one given, with a warning. Given a baseline (a
previous run or report), every variant and test x variant is classified against it and the
reports show that first.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from stackmatrix.errors import ReportError
from stackmatrix.junit.merge import MergeSummary, merge_paths, without_cycle_collection
from stackmatrix.junit.read import CaseResult
from stackmatrix.report.baseline import Comparison, Snapshot, compare, rewrite_tests, snapshot_of
from stackmatrix.report.changes import changes_markdown
from stackmatrix.report.html import render_html
from stackmatrix.report.model import (
    JunitReadings,
    RunReport,
    load_runs,
    test_id_rewrite,
)
from stackmatrix.report.results_file import (
    RESULTS_NAME,
    dump_results,
    load_baseline,
    results_document,
)
from stackmatrix.report.text import (
    MAX_FAILURES_LISTED,
    md_code,
    md_escape,
    render_markdown,
    render_text,
)
from stackmatrix.results.files import write_text_atomic
from stackmatrix.results.journal import RunJournal

JUNIT_NAME = "junit.xml"
SUMMARY_NAME = "summary.md"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class ReportPaths:
    """The files :func:`build_reports` wrote."""

    junit: Path
    summary: Path
    html: Path
    step_summary: Path | None
    merge: MergeSummary
    warnings: tuple[str, ...] = ()
    results: Path | None = None
    comparison: Comparison | None = None  # None without a (readable) baseline
    report: RunReport | None = None  # what the reports show


@without_cycle_collection
def build_reports(
    run_dirs: Sequence[Path],
    out_dir: Path,
    *,
    publish_summary: Callable[[str], Path | None] | None = None,
    baseline: Path | None = None,
    against_matrix: bool = False,
) -> ReportPaths:
    """Write ``junit.xml`` (merged), ``summary.md``, ``report.html`` and ``results.json`` into
    *out_dir*.

    The Markdown summary is also handed to *publish_summary* (a CI provider's
    ``publish_summary``, which cuts it to what the CI takes; its return is
    ``ReportPaths.step_summary``; see :mod:`stackmatrix.ci.provider`). With a
    *baseline* (a previous run directory, report directory, ``run.json`` or ``results.json``)
    the reports open with the comparison.
    A baseline that cannot be read still leaves this run's reports written, without the
    comparison and with a warning in them, and then raises ReportError. *against_matrix*:
    judge what is missing against the whole matrix (``stackmatrix report``).
    """
    pending, report = _merge_and_load(run_dirs, out_dir, against_matrix=against_matrix)
    try:
        current = snapshot_of(report, ", ".join(map(str, run_dirs)))
        compared = _compare_with_baseline(report, current, baseline)
        markdown = render_markdown(compared.report, lead=_comparison_lead(compared, baseline))
    finally:
        merge = pending.result()  # junit.xml is written before any other report
    try:
        summary = _write_summary(out_dir, markdown)
        html = _write_html(out_dir, compared)
        results = _write_results(out_dir, compared, current)
        step_summary = publish_summary(markdown) if publish_summary is not None else None
    except OSError as exc:
        raise ReportError(f"cannot write reports: {exc}") from exc
    if compared.problem:
        raise ReportError(
            f"{compared.problem} (the reports of this run are written to {out_dir}, without the"
            " comparison)"
        )
    return ReportPaths(
        junit=out_dir / JUNIT_NAME,
        summary=summary,
        html=html,
        step_summary=step_summary,
        merge=merge,
        warnings=tuple(dict.fromkeys((*compared.report.warnings, *merge.warnings))),
        results=results,
        comparison=compared.comparison,
        report=compared.report,
    )


PARALLEL_FROM_BYTES = 16 * 2**20
"""JUnit input from which the merged ``junit.xml`` is written by a second process while this
one reads the reports (each file is then parsed twice, once in each process, at the same
time): on a machine of two cores or more, and without other threads to fork with."""


class _PendingMerge:
    """The merge of the JUnit reports into ``junit.xml``: done, or under way in a second
    process (forked) that sends back its summary or its error."""

    def __init__(
        self,
        done: MergeSummary | None = None,
        process: multiprocessing.process.BaseProcess | None = None,
        receiver: Connection | None = None,
    ) -> None:
        self._done, self._process, self._receiver = done, process, receiver

    def result(self) -> MergeSummary:
        """The merge's summary, once it has ended; raises what the merge raised."""
        if self._done is not None:
            return self._done
        assert self._process is not None  # noqa: S101 - made with one
        assert self._receiver is not None  # noqa: S101 - made with one
        try:
            sent = self._receiver.recv_bytes()
        except EOFError:
            sent = b""
        finally:
            self._receiver.close()
            self._process.join()
        if not sent:
            raise ReportError(
                "cannot write reports: the merge of the JUnit reports stopped"
                f" (exit code {self._process.exitcode})"
            )
        ok, value = pickle.loads(sent)  # noqa: S301 - from the process this one forked
        if not ok:
            if isinstance(value, OSError):
                raise ReportError(f"cannot write reports: {value}") from value
            raise value
        summary: MergeSummary = value
        self._done = summary
        return summary


def _merge_in_child(sender: Connection, run_dirs: Sequence[Path], output: Path) -> None:
    """The second process of :func:`_merge_and_load`: merge, send the summary or the error."""
    try:
        outcome: tuple[bool, object] = (True, merge_paths(run_dirs, output))
    except BaseException as exc:  # every error is the parent's to raise
        outcome = (False, exc)
    try:
        data = pickle.dumps(outcome)
        pickle.loads(data)  # noqa: S301 - its own bytes: an error that cannot be read back
    except Exception:  # an error that does not pickle is sent as text instead
        data = pickle.dumps((False, ReportError(f"cannot write reports: {outcome[1]!r}")))
    sender.send_bytes(data)
    sender.close()


def _junit_bytes(run_dirs: Sequence[Path]) -> int:
    """How many bytes of JUnit reports the journals of *run_dirs* name (0 when one of them
    cannot be read: the merge in this process says why)."""
    total = 0
    try:
        for run_dir in run_dirs:
            for variant in RunJournal.read(run_dir).variants:
                path = run_dir / variant.junit if variant.junit else None
                total += path.stat().st_size if path is not None and path.is_file() else 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0
    return total


def _can_fork() -> bool:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and (cores or 1) > 1
    )


def _merge_and_load(
    run_dirs: Sequence[Path], out_dir: Path, *, against_matrix: bool
) -> tuple[_PendingMerge, RunReport]:
    """Write the merged ``junit.xml`` and read the runs. A big run is merged by a second
    process while this one reads it (see :data:`PARALLEL_FROM_BYTES`); a smaller one in one
    pass here, each JUnit file read once (the merge hands over the testcases it reads)."""
    if not run_dirs:
        load_runs(run_dirs)  # raises: nothing to report on
    if _can_fork() and _junit_bytes(run_dirs) >= PARALLEL_FROM_BYTES:
        receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(
            target=_merge_in_child, args=(sender, run_dirs, out_dir / JUNIT_NAME), daemon=True
        )
        process.start()
        sender.close()
        pending = _PendingMerge(process=process, receiver=receiver)
        try:
            report = load_runs(run_dirs, against_matrix=against_matrix)
        except BaseException:
            pending.result()  # waited for, so junit.xml is as a merge alone leaves it
            raise
        return pending, report
    readings: JunitReadings = {}

    def keep(path: Path, cases: tuple[CaseResult, ...], problem: str) -> None:
        readings[path] = (cases, problem)

    try:
        merge = merge_paths(run_dirs, out_dir / JUNIT_NAME, on_read=keep)
    except OSError as exc:
        load_runs(run_dirs, against_matrix=against_matrix)  # a run's own problem comes first
        raise ReportError(f"cannot write reports: {exc}") from exc
    except Exception:
        load_runs(run_dirs, against_matrix=against_matrix)  # says what is wrong with a run
        raise
    report = load_runs(run_dirs, against_matrix=against_matrix, readings=readings)
    return _PendingMerge(done=merge), report


@dataclass(frozen=True)
class _Compared:
    """A run's report set against its baseline: the comparison, or why there is none."""

    report: RunReport  # with the notes of reading the baseline among its warnings
    comparison: Comparison | None = None  # None without a (readable) baseline
    problem: str = ""  # why the baseline given could not be read


def _compare_with_baseline(
    report: RunReport, current: Snapshot, baseline: Path | None
) -> _Compared:
    """*report* (whose snapshot is *current*) compared with the run at *baseline*, if any."""
    if baseline is None:
        return _Compared(report)
    try:
        previous = load_baseline(baseline)
    except ReportError as exc:
        return _Compared(report, problem=str(exc))
    if report.test_ids:  # the baseline's test ids in this run's terms
        previous = rewrite_tests(previous, test_id_rewrite(report.test_ids)[0])
    return _Compared(
        replace(report, warnings=(*report.warnings, *previous.notes)),
        comparison=compare(current, previous),
    )


def _comparison_lead(compared: _Compared, baseline: Path | None) -> Sequence[str]:
    """The opening of ``summary.md``: the comparison, or why there is none."""
    if compared.comparison is not None:
        return changes_markdown(
            compared.comparison, limit=MAX_FAILURES_LISTED, report=compared.report
        )
    if compared.problem:
        return [
            f"### Compared with {md_code(str(baseline))}",
            "",
            f"⚠️ No comparison: {md_escape(compared.problem)}",
        ]
    return ()


def _write_summary(out_dir: Path, markdown: str) -> Path:
    """Write ``summary.md``; return its path."""
    summary = out_dir / SUMMARY_NAME
    write_text_atomic(summary, markdown)
    return summary


def _write_html(out_dir: Path, compared: _Compared) -> Path:
    """Write ``report.html``; return its path."""
    html = out_dir / HTML_NAME
    # summary.md says it in its comparison section; the page says it in its header.
    page = (
        replace(
            compared.report,
            warnings=(*compared.report.warnings, f"no comparison: {compared.problem}"),
        )
        if compared.problem
        else compared.report
    )
    write_text_atomic(html, render_html(page, out_dir, comparison=compared.comparison))
    return html


def _write_results(out_dir: Path, compared: _Compared, current: Snapshot) -> Path:
    """Write ``results.json``; return its path."""
    results = out_dir / RESULTS_NAME
    document = results_document(compared.report, current, compared.comparison)
    write_text_atomic(results, dump_results(document))
    return results


def summary_text(run_dirs: Sequence[Path], *, against_matrix: bool = False) -> str:
    """A plain-text table of the variants of *run_dirs* and their failures, for the terminal."""
    return render_text(load_runs(run_dirs, against_matrix=against_matrix))


__all__ = [
    "RESULTS_NAME",
    "Comparison",
    "ReportPaths",
    "RunReport",
    "build_reports",
    "load_runs",
    "summary_text",
]
