"""Reports of a run: merged JUnit, summary.md (also a CI's step summary), report.html and
results.json (machine-readable; the next run's baseline).

Several run directories (the shards of a CI matrix) combine into one report; a variant found in
more than one directory is taken from the last one given, with a warning. Given a baseline (a
previous run or report), every variant and test x variant is classified against it and the
reports show that first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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
    merge, report = _merge_and_load(run_dirs, out_dir, against_matrix=against_matrix)
    current = snapshot_of(report, ", ".join(map(str, run_dirs)))
    compared = _compare_with_baseline(report, current, baseline)
    try:
        summary, markdown = _write_summary(out_dir, compared, baseline)
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


def _merge_and_load(
    run_dirs: Sequence[Path], out_dir: Path, *, against_matrix: bool
) -> tuple[MergeSummary, RunReport]:
    """Write the merged ``junit.xml`` and read the runs, each JUnit file read once (the merge
    hands over the testcases of each file it reads)."""
    if not run_dirs:
        load_runs(run_dirs)  # raises: nothing to report on
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
    return merge, load_runs(run_dirs, against_matrix=against_matrix, readings=readings)


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


def _write_summary(out_dir: Path, compared: _Compared, baseline: Path | None) -> tuple[Path, str]:
    """Write ``summary.md``; return its path and its Markdown."""
    markdown = render_markdown(compared.report, lead=_comparison_lead(compared, baseline))
    summary = out_dir / SUMMARY_NAME
    write_text_atomic(summary, markdown)
    return summary, markdown


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
