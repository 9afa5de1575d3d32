"""Reports of a run: merged JUnit, summary.md (also the GitHub step summary) and report.html.

Several run directories (the shards of a CI matrix) combine into one report; a variant found in
more than one directory is taken from the last one given, with a warning.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackmatrix._errors import ReportError
from stackmatrix._html import render_html
from stackmatrix._junit import MergeSummary, merge_paths
from stackmatrix._report_model import RunReport, load_runs
from stackmatrix._summary import render_markdown, render_text, workflow_commands

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


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_reports(
    run_dirs: Sequence[Path],
    out_dir: Path,
    *,
    github_step_summary: Path | None = None,
) -> ReportPaths:
    """Write ``junit.xml`` (merged), ``summary.md`` and ``report.html`` into *out_dir*.

    The Markdown summary is also appended to *github_step_summary*, or to the file named by
    ``$GITHUB_STEP_SUMMARY`` when that is set.
    """
    report = load_runs(run_dirs)
    try:
        merge = merge_paths(run_dirs, out_dir / JUNIT_NAME)
        markdown = render_markdown(report)
        summary = out_dir / SUMMARY_NAME
        _write_text(summary, markdown)
        html = out_dir / HTML_NAME
        _write_text(html, render_html(report, out_dir))
        if github_step_summary is None and os.environ.get("GITHUB_STEP_SUMMARY"):
            github_step_summary = Path(os.environ["GITHUB_STEP_SUMMARY"])
        if github_step_summary is not None:
            with github_step_summary.open("a", encoding="utf-8") as handle:
                handle.write(markdown)
    except OSError as exc:
        raise ReportError(f"cannot write reports: {exc}") from exc
    return ReportPaths(
        junit=out_dir / JUNIT_NAME,
        summary=summary,
        html=html,
        step_summary=github_step_summary,
        merge=merge,
        warnings=tuple(dict.fromkeys((*report.warnings, *merge.warnings))),
    )


def summary_text(run_dirs: Sequence[Path]) -> str:
    """A plain-text table of the variants of *run_dirs* and their failures, for the terminal."""
    return render_text(load_runs(run_dirs))


def github_annotations(run_dirs: Sequence[Path], *, workspace: Path | None = None) -> list[str]:
    """GitHub ``::error file=...,line=...::message`` commands for the failures of *run_dirs*.

    Absolute paths are made relative to *workspace* (default ``$GITHUB_WORKSPACE``).
    """
    return workflow_commands(load_runs(run_dirs), workspace=workspace)


__all__ = [
    "ReportPaths",
    "RunReport",
    "build_reports",
    "github_annotations",
    "load_runs",
    "summary_text",
]
