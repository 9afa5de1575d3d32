"""Subcommands over what runs left: merge, report (no engine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackmatrix.ci.provider import detect
from stackmatrix.cli.common import Subparsers
from stackmatrix.errors import UsageError


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


def _report(args: argparse.Namespace) -> int:
    from stackmatrix.report.build import build_reports  # noqa: PLC0415 - see _run's reports()
    from stackmatrix.report.changes import tally_words  # noqa: PLC0415

    missing = [d for d in args.run_dirs if not (d / "run.json").is_file()]
    if missing:
        raise UsageError(f"not a run directory (no run.json): {', '.join(map(str, missing))}")
    out = args.out or (args.run_dirs[0] if len(args.run_dirs) == 1 else Path("stackmatrix-report"))
    step_summary = detect().step_summary()
    paths = build_reports(args.run_dirs, out, baseline=args.baseline, step_summary=step_summary)
    print(f"summary.md   {paths.summary}\nreport.html  {paths.html}\njunit.xml    {paths.junit}")
    if paths.results is not None:
        print(f"results.json {paths.results}")
    if paths.comparison is not None:
        words = ", ".join(w for _change, w in tally_words(paths.comparison))
        print(f"compared with {paths.comparison.baseline}: {words}")
    for warning in paths.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def register_report(subparsers: Subparsers) -> None:
    """``stackmatrix report``."""
    parser = subparsers.add_parser("report", help="(re)build summary.md, report.html and junit.xml")
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
    parser.set_defaults(handler=_report)
