"""Subcommands that touch the engine or the results: run, gc, merge, report, gha-matrix."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from python_on_whales.exceptions import DockerException

from stackmatrix.ci.github import gha_matrix_json
from stackmatrix.cli.main import Subparsers, add_spec_arguments, read_spec
from stackmatrix.console import Console
from stackmatrix.engine.gc import collect, find_leftovers
from stackmatrix.engine.scheduler import (
    DEFAULT_OUT,
    RunRequest,
    default_jobs,
    run_matrix,
    select_only,
    select_shard,
)
from stackmatrix.engine.stack import docker_client, error_text
from stackmatrix.errors import EngineError, UsageError
from stackmatrix.junit.merge import merge_paths
from stackmatrix.matrix.expand import expand

ENGINE_ANSWER_TIMEOUT = 10.0


def ensure_engine() -> None:
    """Fail fast, with a hint, when the engine or Compose v2 cannot be used.

    Both questions are asked at once, and bounded: an engine socket that accepts but never
    answers must not hang a CI job.
    """
    client = docker_client()
    answers: dict[str, BaseException | None] = {}

    def engine() -> None:
        if client.version().server is None:
            raise EngineError("no Docker engine answered")

    def ask(name: str, question: Callable[[], object]) -> None:
        try:
            question()
            answers[name] = None
        except BaseException as error:
            answers[name] = error

    workers = [
        threading.Thread(target=ask, args=args, name=f"stackmatrix-check-{args[0]}", daemon=True)
        for args in (("engine", engine), ("compose", client.compose.version))
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + ENGINE_ANSWER_TIMEOUT
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    hint = "is dockerd running? scripts/bootstrap.sh installs and starts it"
    if "engine" not in answers:
        raise EngineError(
            f"the Docker engine is not reachable: it did not answer within "
            f"{ENGINE_ANSWER_TIMEOUT:g} s ({hint})"
        )
    error = answers["engine"]
    if error is not None:
        said = error_text(error) if isinstance(error, DockerException) else str(error)
        raise EngineError(f"the Docker engine is not reachable ({hint}): {said}") from error
    if "compose" not in answers:
        raise EngineError(
            f"`docker compose version` did not answer within {ENGINE_ANSWER_TIMEOUT:g} s"
        )
    if answers["compose"] is not None:
        raise EngineError("`docker compose` (Compose v2) is not available") from answers["compose"]


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where runs are kept (``run`` writes there, ``gc`` reads journals there)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder (default .stackmatrix)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run(args: argparse.Namespace) -> int:
    spec = read_spec(args)
    variants = expand(spec)
    if args.only:
        variants = select_only(variants, args.only)
    if args.shard:
        variants = select_shard(variants, args.shard)
    console = Console()
    if not variants:
        console.note("no variant to run in this selection")
        return 0
    ensure_engine()
    request = RunRequest(
        spec=spec,
        variants=tuple(variants),
        out_dir=args.out,
        jobs=args.jobs or default_jobs(spec),
        fail_fast=args.fail_fast or spec.run.fail_fast,
        keep=args.keep,
        rebuild=args.build,
        retries=args.retries,
        profile=args.profile,
        shard=args.shard,
    )

    def reports(run_dir: Path) -> None:
        # Loaded in the background while the stacks run (see _runner): start-up stays short.
        from stackmatrix.report.build import build_reports, github_annotations  # noqa: PLC0415

        try:
            paths = build_reports([run_dir], run_dir)
        except Exception as error:
            console.note(f"could not build the reports: {error}")
            return
        for warning in paths.warnings:
            console.note(f"report: {warning}")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in github_annotations([run_dir]):
                print(line, file=sys.stderr)

    journal, _run_dir = run_matrix(request, console, finish=reports)
    if args.keep:
        for result in journal.variants:
            if result.project:
                compose = _run_dir / (result.compose_file or "")
                print(
                    f"kept {result.id}: docker compose -p {result.project} -f {compose} ps\n"
                    f"  remove: docker compose -p {result.project} down -v --remove-orphans"
                    f"  (or: stackmatrix gc --run {journal.run_id})",
                    file=sys.stderr,
                )
    return journal.exit_code or 0


def register_run(subparsers: Subparsers) -> None:
    """``stackmatrix run``."""
    parser = subparsers.add_parser("run", help="run the matrix: stacks up, tests, reports, down")
    add_spec_arguments(parser)
    parser.add_argument(
        "--only", nargs="+", metavar="ID", help="run only these variants (ids or globs)"
    )
    parser.add_argument("--jobs", "-j", type=_positive, metavar="N", help="stacks at a time")
    parser.add_argument(
        "--fail-fast", action="store_true", help="stop everything at the first failure"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stacks up for debugging")
    parser.add_argument(
        "--build", action="store_true", help="rebuild images even when their tag exists"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="rerun a variant whose tests failed up to N times (a later pass marks it flaky)",
    )
    parser.add_argument("--shard", metavar="I/N", help="run the I-th of N deterministic shards")
    add_out_argument(parser)
    parser.set_defaults(handler=_run)


def _gc(args: argparse.Namespace) -> int:
    ensure_engine()
    removed = collect(args.out, everything=args.all, run_id=args.run)
    for leftover in removed:
        print(
            f"removed run {leftover.run_id}: {leftover.containers} containers, "
            f"{leftover.networks} networks, {leftover.volumes} volumes"
        )
    left = find_leftovers(args.out)
    if left:
        print(
            "still there (active, or not from this folder; use --all or --run ID): "
            + ", ".join(f"{x.run_id}{' (active)' if x.active else ''}" for x in left)
        )
    elif not removed:
        print("nothing to remove")
    return 0


def register_gc(subparsers: Subparsers) -> None:
    """``stackmatrix gc``."""
    parser = subparsers.add_parser("gc", help="remove leftovers of crashed or kept runs by label")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every stackmatrix object on this engine")
    which.add_argument("--run", metavar="ID", help="the objects of one run")
    add_out_argument(parser)
    parser.set_defaults(handler=_gc)


def _merge(args: argparse.Namespace) -> int:
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
    paths = build_reports(args.run_dirs, out, baseline=args.baseline)
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


def _gha_matrix(args: argparse.Namespace) -> int:
    print(gha_matrix_json(expand(read_spec(args)), shards=args.shards))
    return 0


def register_gha_matrix(subparsers: Subparsers) -> None:
    """``stackmatrix gha-matrix``."""
    parser = subparsers.add_parser(
        "gha-matrix", help="print the JSON for a GitHub Actions strategy.matrix (fromJSON)"
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--shards", type=_positive, metavar="N", help="at most N jobs, each a shard"
    )
    parser.set_defaults(handler=_gha_matrix)


ENGINE_COMMANDS = (register_run, register_gc, register_merge, register_report, register_gha_matrix)
