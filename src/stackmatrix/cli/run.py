"""``stackmatrix run``: the matrix, stacks up, tests, reports, down.

The engine side (and python-on-whales with it) is imported when the command runs, not when
the command line starts: ``--help``, ``list`` and ``gha-matrix`` never load it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from stackmatrix.cli.common import (
    Subparsers,
    add_out_argument,
    add_spec_arguments,
    out_dir,
    positive,
    read_spec,
)
from stackmatrix.errors import StackmatrixError

# `--failed` with no RUN_DIR: the latest run under --out.
_LATEST = Path("\0latest")


def non_negative(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return value


if TYPE_CHECKING:
    from stackmatrix.ci.provider import Provider
    from stackmatrix.console import Console
    from stackmatrix.engine.preflight import EngineCheck
    from stackmatrix.engine.scheduler import RunRequest
    from stackmatrix.matrix.expand import Variant
    from stackmatrix.report.rerun import Rerun
    from stackmatrix.results.journal import RunJournal
    from stackmatrix.spec.load import Spec


def _run(args: argparse.Namespace) -> int:
    from stackmatrix.engine.preflight import EngineCheck  # noqa: PLC0415 - see the docstring

    # The engine is asked first: its answer comes while the spec is read and validated.
    with EngineCheck() as engine_check:
        return _run_checked(args, engine_check)


def _run_checked(args: argparse.Namespace, engine_check: EngineCheck) -> int:
    from stackmatrix.ci.provider import detect  # noqa: PLC0415 - see the docstring
    from stackmatrix.console import Console  # noqa: PLC0415

    rerun = _rerun_of(args)
    if rerun is not None and args.profile is None and rerun.profile is not None:
        args.profile = rerun.profile  # the variants to run again are those of that profile
    spec = read_spec(args)
    variants = _selected_variants(spec, args, rerun)
    provider = detect()
    console = Console(provider=provider)
    if rerun is not None:
        console.note(f"re-running what did not pass in run {rerun.run_id} ({rerun.run_dir})")
    if rerun is not None and args.failed_tests:
        from stackmatrix.engine.suite import failed_tests_warning  # noqa: PLC0415

        warning = failed_tests_warning(spec)
        if warning:
            console.note(f"warning: {warning}")
    if not variants:
        console.note("no variant to run in this selection")
        return 0
    from stackmatrix.engine.scheduler import run_matrix  # noqa: PLC0415 - see the docstring

    engine_check.wait()
    finish = functools.partial(_publish_reports, provider=provider, console=console)
    request = _run_request(args, spec, variants, rerun)
    try:
        journal, run_dir = run_matrix(request, console, finish=finish)
    except StackmatrixError:
        raise
    except Exception as error:  # recorded in run.json with this exit code (3)
        raise StackmatrixError(f"the run stopped: {error!r}") from error
    if args.keep:
        with contextlib.suppress(OSError):  # a closed stderr: the stacks are listed in run.json
            _print_kept_stacks(journal, run_dir)
    return journal.exit_code or 0


def _rerun_of(args: argparse.Namespace) -> Rerun | None:
    """What ``--failed [RUN_DIR]`` (or ``--failed-tests``) names: by default the latest run."""
    if args.failed is None and not args.failed_tests:
        return None
    from stackmatrix.report.rerun import plan_rerun  # noqa: PLC0415 - loaded when used

    return plan_rerun(args.failed if args.failed not in (None, _LATEST) else out_dir(args))


def _selected_variants(
    spec: Spec, args: argparse.Namespace, rerun: Rerun | None = None
) -> list[Variant]:
    """The variants of *spec* that ``--failed``, ``--only`` and ``--shard`` select."""
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415 - see the docstring
    from stackmatrix.matrix.select import select_only, select_shard  # noqa: PLC0415

    variants = expand(spec)
    if rerun is not None:
        from stackmatrix.report.rerun import variants_to_rerun  # noqa: PLC0415

        variants = variants_to_rerun(variants, rerun)
    if args.only:
        variants = select_only(variants, args.only)
    if args.shard:
        variants = select_shard(variants, args.shard)
    return variants


def _run_request(
    args: argparse.Namespace, spec: Spec, variants: Sequence[Variant], rerun: Rerun | None
) -> RunRequest:
    """What the command line asks to run, and how."""
    failed_tests = None
    if rerun is not None and args.failed_tests:
        from stackmatrix.report.rerun import pytest_node_ids  # noqa: PLC0415

        failed_tests = {
            ident: tuple(pytest_node_ids(cases, spec.tests.workdir))
            for ident, cases in rerun.failed.items()
            if cases
        }
    from stackmatrix.engine.prepare import PullPolicy  # noqa: PLC0415 - see the docstring
    from stackmatrix.engine.scheduler import RunRequest  # noqa: PLC0415
    from stackmatrix.matrix.select import default_jobs  # noqa: PLC0415

    return RunRequest(
        spec=spec,
        variants=tuple(variants),
        out_dir=out_dir(args),
        jobs=args.jobs or default_jobs(spec),
        background_downs=args.background_downs,
        fail_fast=args.fail_fast or spec.run.fail_fast,
        keep=args.keep,
        rebuild=args.build,
        retries=args.retries,
        profile=args.profile,
        shard=args.shard,
        warm_up=WARM_UP_MODULES,
        after_stats=_keep_plot,
        extra_args=tuple(args.passed),
        rerun_of=None if rerun is None else rerun.run_id,
        failed_tests=failed_tests,
        pull=PullPolicy(args.pull or spec.run.pull),
    )


# What the end of a run needs (the resource plots, the reports): imported in the background
# once the first tests start, not before the first stack.
WARM_UP_MODULES = (
    "stackmatrix.report.plots",
    "stackmatrix.report.build",
)


def _keep_plot(stats_file: Path, salt: str) -> object:
    """Draw a variant's resource plot beside its stats.json, while its stack comes down."""
    from stackmatrix.report.plots import keep_plot  # noqa: PLC0415 - see WARM_UP_MODULES

    return keep_plot(stats_file, salt)


def _publish_reports(run_dir: Path, *, provider: Provider, console: Console) -> None:
    """Build the reports of the run in *run_dir* and publish its CI annotations; a report that
    cannot be built is a note, not a failed run."""
    from stackmatrix.ci.provider import publish_annotations  # noqa: PLC0415

    # Loaded in the background while the stacks run (WARM_UP_MODULES).
    from stackmatrix.report.build import build_reports, load_runs  # noqa: PLC0415

    try:
        paths = build_reports(
            [run_dir], run_dir, publish_summary=partial(provider.publish_summary, report=run_dir)
        )
    except Exception as error:
        console.note(f"could not build the reports: {error}")
        return
    for warning in paths.warnings:
        console.note(f"report: {warning}")
    publish_annotations(provider, load_runs([run_dir]))


def _print_kept_stacks(journal: RunJournal, run_dir: Path) -> None:
    """How to look at and remove each stack that ``--keep`` left up."""
    for result in journal.variants:
        if result.project:
            compose = run_dir / (result.compose_file or "")
            print(
                f"kept {result.id}: docker compose -p {result.project} -f {compose} ps\n"
                f"  remove: docker compose -p {result.project} down -v --remove-orphans"
                f"  (or: stackmatrix gc --run {journal.run_id})",
                file=sys.stderr,
            )


def register_run(subparsers: Subparsers) -> None:
    """``stackmatrix run``."""
    parser = subparsers.add_parser("run", help="run the matrix: stacks up, tests, reports, down")
    add_spec_arguments(parser)
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="ID",
        help="run only these variants: ids, globs (postgres-1*) or axis values (postgres=13)",
    )
    parser.add_argument("--jobs", "-j", type=positive, metavar="N", help="stacks at a time")
    parser.add_argument(
        "--background-downs",
        type=non_negative,
        metavar="N",
        help="stacks coming down in the background beside the running ones"
        " (default: run.background_downs, else as many as --jobs; 0: each down in line)",
    )
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
    parser.add_argument(
        "--failed",
        nargs="?",
        type=Path,
        const=_LATEST,
        metavar="RUN_DIR",
        help="run again only the variants that did not pass in RUN_DIR (default: the latest run)",
    )
    parser.add_argument(
        "--failed-tests",
        action="store_true",
        help="with --failed: each variant runs only its failed testcases (${{ failed }}, or"
        " appended to the test command)",
    )
    _add_pull_argument(parser)
    add_out_argument(parser)
    parser.set_defaults(handler=_run, takes_arguments=True)


def _add_pull_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pull",
        choices=("missing", "always", "never"),
        help="when to pull an image (default: run.pull of the matrix file, else missing)",
    )


def _pull(args: argparse.Namespace) -> int:
    """Pull and build what the selected variants need, once each, and nothing else."""
    import tempfile  # noqa: PLC0415

    from stackmatrix.engine.preflight import ensure_engine  # noqa: PLC0415 - see the docstring
    from stackmatrix.engine.prepare import PullPolicy, prepare  # noqa: PLC0415

    spec = read_spec(args)
    variants = _selected_variants(spec, args)
    ensure_engine()
    with tempfile.TemporaryDirectory(prefix="stackmatrix-pull-") as scratch:
        prepared = prepare(
            spec, variants, run_id="pull", run_dir=Path(scratch),
            policy=PullPolicy(args.pull or spec.run.pull), rebuild=args.build,
        )  # fmt: skip
    for outcome in prepared.outcomes.values():
        done = {"pull": "pulled", "build": "built", "": "present"}[outcome.action]
        line = f"{outcome.image}: {'FAILED: ' + outcome.error if outcome.error else done}"
        if outcome.action and not outcome.error:
            line += f" in {outcome.seconds:.1f}s"
        if outcome.digest:
            line += f" ({outcome.digest})"
        print(line)
    print(
        f"{len(prepared.outcomes)} images for {len(variants)} variants in {prepared.seconds:.1f}s"
        + (f"; {len(prepared.problems)} variants cannot run" if prepared.problems else ""),
        file=sys.stderr,
    )
    return 3 if prepared.problems else 0


def register_pull(subparsers: Subparsers) -> None:
    """``stackmatrix pull`` (also ``prepare``)."""
    for name in ("pull", "prepare"):
        parser = subparsers.add_parser(
            name, help="pull and build every unique image of the matrix once (a CI cache step)"
        )
        add_spec_arguments(parser)
        parser.add_argument("--only", nargs="+", metavar="ID", help="these variants only")
        parser.add_argument("--shard", metavar="I/N", help="the I-th of N shards only")
        parser.add_argument(
            "--build", action="store_true", help="rebuild images even when their tag exists"
        )
        _add_pull_argument(parser)
        parser.set_defaults(handler=_pull, failed=None, failed_tests=False)
