"""Subcommands over what runs left: merge, report (no engine)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stackmatrix.cli.common import Subparsers
from stackmatrix.errors import ReportError, UsageError

if TYPE_CHECKING:
    from stackmatrix.report.build import ReportPaths


def _merge(args: argparse.Namespace) -> int:
    from stackmatrix.junit.merge import merge_paths  # noqa: PLC0415 - loaded when used

    summary = merge_paths(args.inputs, args.output)
    counts = summary.counts
    print(
        f"{args.output}: {summary.inputs} inputs, {counts.total} testcases "
        f"({counts.passed} passed, {counts.failed} failed, {counts.errors} errors, "
        f"{counts.skipped} skipped)"
    )
    for problem in summary.broken:
        print(f"  broken input {problem.path}: {problem.problem}", file=sys.stderr)
    return 0


def register_merge(subparsers: Subparsers) -> None:
    """``stackmatrix merge``."""
    parser = subparsers.add_parser(
        "merge", help="merge JUnit files and run directories, keeping variants"
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="JUNIT_OR_RUN_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    parser.set_defaults(handler=_merge)


FAIL_ON = ("regression", "failure", "incomplete")
"""What ``report --fail-on`` can make it fail on."""

EXIT_FAILURE = 1  # --fail-on failure / regression: like a run whose tests failed
DEFAULT_HISTORY_NIGHTS = 30  # as stackmatrix.report.history.DEFAULT_NIGHTS; not loaded for --help
EXIT_INCOMPLETE = 3  # --fail-on incomplete: results are missing, as when a stack failed


def parse_fail_on(value: str) -> list[str]:
    """``--fail-on regression,failure`` (also given several times)."""
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in FAIL_ON]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected one or more of {', '.join(FAIL_ON)} (comma-separated)"
        )
    return chosen


def _report(args: argparse.Namespace) -> int:
    from stackmatrix.ci.provider import detect  # noqa: PLC0415 - loaded when used
    from stackmatrix.report.baseline import Change  # noqa: PLC0415 - see _run's reports()
    from stackmatrix.report.changes import tally_words  # noqa: PLC0415
    from stackmatrix.report.inputs import resolve_inputs  # noqa: PLC0415
    from stackmatrix.report.model import Verdict  # noqa: PLC0415
    from stackmatrix.report.text import completeness_lines  # noqa: PLC0415

    fail_on = {c for chosen in args.fail_on or () for c in chosen}
    if "regression" in fail_on and args.baseline is None:
        raise UsageError("--fail-on regression needs --baseline PREVIOUS to compare with")
    inputs = resolve_inputs(args.run_dirs)
    for note in inputs.notes:
        print(f"note: {note}", file=sys.stderr)
    run_dirs = list(inputs.run_dirs)
    out = args.out or (run_dirs[0] if len(run_dirs) == 1 else Path("stackmatrix-report"))
    provider = detect()
    publish = functools.partial(provider.publish_summary, report=out)
    # With --history the step summary waits for the lines on the nights (see _history).
    held: list[str] = []
    paths = _build(args, run_dirs, out, publish, held)
    print(f"summary.md   {paths.summary}\nreport.html  {paths.html}\njunit.xml    {paths.junit}")
    if paths.results is not None:
        print(f"results.json {paths.results}")
    if paths.comparison is not None:
        words = ", ".join(w for _change, w in tally_words(paths.comparison))
        print(f"compared with {paths.comparison.baseline}: {words}")
    for warning in paths.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.history is not None:
        _history(args, run_dirs=run_dirs, out=out, paths=paths, held=held, publish=publish)
    report = paths.report
    if report is None:  # build_reports always says what it showed
        return 0
    print(f"verdict: {report.verdict.value}")
    for line in completeness_lines(report):
        print(f"  {line}")
    code = 0
    if "failure" in fail_on and report.verdict is Verdict.FAILED:
        code = EXIT_FAILURE
    regressions = paths.comparison.count(Change.REGRESSION) if paths.comparison else 0
    if "regression" in fail_on and regressions:
        code = EXIT_FAILURE
    if "incomplete" in fail_on and not report.completeness.complete:
        code = EXIT_INCOMPLETE
    return code


def _build(
    args: argparse.Namespace,
    run_dirs: Sequence[Path],
    out: Path,
    publish: Callable[[str], Path | None],
    held: list[str],
) -> ReportPaths:
    """build_reports; with --history the step summary is not published but added to *held*
    (published by _history), unless building fails after writing."""
    from stackmatrix.report.build import build_reports  # noqa: PLC0415 - loaded when used

    try:
        return build_reports(
            run_dirs,
            out,
            baseline=args.baseline,
            publish_summary=held.append if args.history is not None else publish,
            against_matrix=True,
        )
    except ReportError:
        for markdown in held:
            publish(markdown)
        raise


def _history(
    args: argparse.Namespace,
    *,
    run_dirs: Sequence[Path],
    out: Path,
    paths: ReportPaths,
    held: Sequence[str],
    publish: Callable[[str], Path | None],
) -> None:
    """``--history``: write history.html, add the lines on what changed since the night before
    to summary.md and print them; then publish the step summary *held* back for them. Bad
    history input leaves the reports written (and published) and raises UsageError."""
    from stackmatrix.report.history import (  # noqa: PLC0415 - loaded when used
        build_history,
        night_of_report,
        night_of_runs,
        read_nights,
        since_previous,
    )
    from stackmatrix.report.history_html import (  # noqa: PLC0415
        HISTORY_NAME,
        render_history_html,
    )
    from stackmatrix.report.text import md_escape  # noqa: PLC0415
    from stackmatrix.results.files import write_text_atomic  # noqa: PLC0415

    section = ""
    try:
        source = ", ".join(map(str, run_dirs))
        current = (
            night_of_report(paths.report, source)
            if paths.report is not None
            else night_of_runs(run_dirs, source)
        )
        nights, notes = read_nights(args.history, current)
        history = build_history(nights, window=args.history_nights, notes=notes)
        lines = since_previous(history)
        counted = f"{len(history.nights)} night" + ("s" if len(history.nights) != 1 else "")
        section = (
            "\n### Since the previous night\n\n"
            + "".join(f"- {md_escape(line)}\n" for line in lines)
            + f"\n{counted} in {HISTORY_NAME}.\n"
        )
        page = out / HISTORY_NAME
        name = paths.report.name if paths.report is not None else ""
        try:
            write_text_atomic(page, render_history_html(history, name))
            summary = paths.summary.read_text(encoding="utf-8")
            write_text_atomic(paths.summary, summary.rstrip("\n") + "\n" + section)
        except OSError as exc:
            section = ""
            raise ReportError(f"cannot write {page}: {exc}") from exc
    finally:
        for markdown in held:
            publish(markdown.rstrip("\n") + "\n" + section if section else markdown)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"history.html {page} ({counted})")
    for line in lines:
        print(f"  {line}")


def positive_int(value: str) -> int:
    """A whole number of at least 1 (``--history-nights``)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number of at least 1")
    return number


def register_report(subparsers: Subparsers) -> None:
    """``stackmatrix report``."""
    parser = subparsers.add_parser(
        "report",
        help="(re)build summary.md, report.html and junit.xml",
        description=(
            "Rebuild the reports of one or more runs (the shards of a CI matrix) and check"
            " them against the matrix: what is missing, what never finished."
        ),
        epilog=(
            "RUN_DIR: a run directory, or a folder of them (--out's folder or its runs/):"
            " there, the newest run and the runs that complete it (its other shards); the"
            " latest link is never read. Exit codes: 0; 1 with --fail-on failure (a required"
            " variant failed, or a run ended on an error) or --fail-on regression (something"
            " regressed against --baseline); 3 with --fail-on incomplete (a variant or shard"
            " of the matrix is missing or never finished), or when the reports cannot be"
            " built; 2 for a wrong command line. Without --fail-on: 0 once the reports are"
            " written, whatever they say; 2 also for a --history DIR that holds no run (the"
            " reports are written first). With --history: history.html over the nights, and"
            " three lines on what changed since the night before, printed and added to"
            " summary.md. See docs/reports.md and docs/history.md."
        ),
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write (default: the run dir, or ./stackmatrix-report for several)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="PREVIOUS",
        help="a previous run dir, report dir or run.json: classify regressions, fixes, flakes",
    )
    parser.add_argument(
        "--fail-on",
        type=parse_fail_on,
        action="append",
        metavar="WHAT",
        help=(
            "exit non-zero on: failure (1), regression (1, needs --baseline), incomplete (3);"
            " comma-separated or repeated"
        ),
    )
    parser.add_argument(
        "--history",
        type=Path,
        nargs="*",
        action="extend",
        metavar="DIR",
        help=(
            "earlier nights (run or report directories, or a folder of a sharded run's"
            " directories; none: this run alone): also write history.html and say what changed"
            " since the night before"
        ),
    )
    parser.add_argument(
        "--history-nights",
        type=positive_int,
        default=DEFAULT_HISTORY_NIGHTS,
        metavar="N",
        help=f"the newest N nights on history.html (default {DEFAULT_HISTORY_NIGHTS})",
    )
    parser.set_defaults(handler=_report)
