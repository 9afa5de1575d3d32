"""Subcommands that only read the matrix file: list, render, gha-matrix, gitlab-matrix (no
engine)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from stackmatrix.cli.common import Subparsers, add_spec_arguments, find_variant, positive, read_spec
from stackmatrix.errors import UsageError

# What each command needs is imported by its handler: the parser is built without the spec
# models, the compose renderer or the CI generators, and `list` loads neither of the latter.
if TYPE_CHECKING:
    from stackmatrix.matrix.expand import Variant
    from stackmatrix.spec.values import Scalar


def format_table(variants: Sequence[Variant]) -> str:
    """Variants as an aligned text table: id, then one column per matrix key."""
    from stackmatrix.spec.values import scalar_text  # noqa: PLC0415 - loaded with the spec

    def _cell(value: Scalar | None) -> str:
        # A variant without this key (an include may add keys to some variants only): a dash.
        return "-" if value is None else scalar_text(value)

    keys: dict[str, None] = {}
    for variant in variants:
        keys.update(dict.fromkeys(variant.values))
    header = ["VARIANT", *keys]
    rows = [[v.id, *(_cell(v.values.get(key)) for key in keys)] for v in variants]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    experimental = sum(v.experimental for v in variants)
    summary = f"{len(variants)} variant{'s' if len(variants) != 1 else ''}"
    if experimental:
        summary += f" ({experimental} experimental)"
    return "\n".join([*lines, summary]) + "\n"


def variants_json(variants: Sequence[Variant]) -> str:
    """Variants as JSON: a list of ``{"id", "values", "experimental"}``, one variant a line."""
    import json  # noqa: PLC0415 - loaded by the commands that print JSON only

    lines = [
        json.dumps(
            {"id": v.id, "values": dict(v.values), "experimental": v.experimental},
            ensure_ascii=False,
        )
        for v in variants
    ]
    return "[\n" + ",\n".join(f"  {line}" for line in lines) + ("\n]\n" if lines else "]\n")


def _list(args: argparse.Namespace) -> int:
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    variants = expand(read_spec(args))
    out: TextIO = sys.stdout
    out.write(variants_json(variants) if args.json else format_table(variants))
    return 0


def register_list(subparsers: Subparsers) -> None:
    """``stackmatrix list``."""
    parser = subparsers.add_parser("list", help="list the variants of the matrix")
    add_spec_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_list)


def _render(args: argparse.Namespace) -> int:
    from stackmatrix.compose.render import dump_compose, holds_secrets, render  # noqa: PLC0415
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    spec = read_spec(args)
    variant = find_variant(expand(spec), args.variant)
    data = render(spec, variant, run_id=args.run_id)
    text = dump_compose(data)
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(text)
    else:
        from stackmatrix.results.files import write_private_if  # noqa: PLC0415 - with -o only

        try:
            write_private_if(
                args.output,
                text,
                private=holds_secrets(data, spec.secrets, project_dir=spec.path.parent),
            )
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0


def register_render(subparsers: Subparsers) -> None:
    """``stackmatrix render``."""
    parser = subparsers.add_parser("render", help="print the compose file of one variant")
    parser.add_argument("variant", metavar="VARIANT", help="a variant id, as 'list' shows it")
    add_spec_arguments(parser)
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout"
    )
    parser.add_argument(
        "--run-id", default="render", metavar="ID", help="run id for labels (default: render)"
    )
    parser.set_defaults(handler=_render)


def _gha_matrix(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from stackmatrix.ci.github_matrix import gha_matrix_json  # noqa: PLC0415
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    variants = expand(read_spec(args))
    if args.failed is not None:
        from stackmatrix.report.rerun import plan_rerun, variants_to_rerun  # noqa: PLC0415

        rerun = plan_rerun(args.failed)
        variants = variants_to_rerun(variants, rerun)
        if not variants:
            # GitHub Actions refuses an empty matrix: the workflow skips the job on this.
            print(f"stackmatrix: every variant of run {rerun.run_id} passed", file=sys.stderr)
            print(json.dumps({"include": []}))
            return 0
    print(gha_matrix_json(variants, shards=args.shards))
    return 0


def register_gha_matrix(subparsers: Subparsers) -> None:
    """``stackmatrix gha-matrix``, and ``stackmatrix gitlab-matrix`` beside it."""
    parser = subparsers.add_parser(
        "gha-matrix", help="print the JSON for a GitHub Actions strategy.matrix (fromJSON)"
    )
    add_spec_arguments(parser)
    parser.add_argument("--shards", type=positive, metavar="N", help="at most N jobs, each a shard")
    parser.add_argument(
        "--failed",
        type=Path,
        metavar="RUN_DIR",
        help="only the variants that did not pass in that run (a run dir or an --out folder);"
        " each job then runs `stackmatrix run --failed RUN_DIR --shard I/N`",
    )
    parser.set_defaults(handler=_gha_matrix)
    register_gitlab_matrix(subparsers)


def _gitlab_matrix(args: argparse.Namespace) -> int:
    from stackmatrix.ci.gitlab_pipeline import PipelineOptions, gitlab_pipeline_yaml  # noqa: PLC0415
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    variants = expand(read_spec(args))
    options = PipelineOptions(
        file=str(args.file),
        profile=args.profile,
        image=args.image,
        tags=tuple(args.tag),
        setup=args.setup,
        fail_on=tuple(args.fail_on),
        **({"install": args.install} if args.install else {}),
    )
    text = gitlab_pipeline_yaml(variants, options, shards=args.shards)
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"stackmatrix: wrote {args.output}", file=sys.stderr)
    return 0


def register_gitlab_matrix(subparsers: Subparsers) -> None:
    """``stackmatrix gitlab-matrix``."""
    parser = subparsers.add_parser(
        "gitlab-matrix",
        help="write a GitLab CI child pipeline: a job per variant or shard, then a report job",
    )
    add_spec_arguments(parser)
    parser.add_argument(
        "--shards", type=positive, metavar="N", help="at most N variant jobs, each a shard"
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout"
    )
    parser.add_argument("--image", metavar="IMAGE", help="the jobs' image (default: the runner's)")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="a runner tag the jobs need (a runner with Docker); repeatable",
    )
    parser.add_argument(
        "--install",
        metavar="CMD",
        help="how each job installs stackmatrix (default: pip install of this version)",
    )
    parser.add_argument(
        "--setup", metavar="CMD", help="a command each variant job runs before its shard"
    )
    parser.add_argument(
        "--fail-on",
        type=_report_fail_on,
        default=["incomplete"],
        metavar="WHAT",
        help=(
            "what fails the report job: failure, incomplete (comma-separated), or none"
            " (default: incomplete)"
        ),
    )
    parser.set_defaults(handler=_gitlab_matrix)


def _report_fail_on(value: str) -> list[str]:
    """``--fail-on`` of the report job: as ``report --fail-on``, less regression (the
    pipeline's report job has no baseline), or ``none``."""
    if value.strip() == "none":
        return []
    # The parser of `report` and its modules: loaded when gitlab-matrix is given --fail-on.
    from stackmatrix.cli.results import parse_fail_on  # noqa: PLC0415

    chosen = parse_fail_on(value)
    if "regression" in chosen:
        raise argparse.ArgumentTypeError(
            "regression: the report job has no baseline to compare with"
        )
    return chosen
