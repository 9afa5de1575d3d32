"""The `stackmatrix` command line: one small function registers each subcommand."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO, TypeAlias

from stackmatrix import __version__
from stackmatrix.compose.render import dump_compose, holds_secrets, render
from stackmatrix.engine.processes import write_private_if
from stackmatrix.errors import StackmatrixError, UsageError
from stackmatrix.matrix.expand import Variant, expand
from stackmatrix.spec.checks import did_you_mean
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Scalar, Spec

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """``-f/--file`` and ``--profile``, shared by every command that reads a matrix file."""
    parser.add_argument(
        "-f", "--file", type=Path, default=Path("matrix.yaml"), metavar="FILE",
        help="the matrix file (default: ./matrix.yaml)",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="P", help="apply the named profile of the matrix file")


def read_spec(args: argparse.Namespace) -> Spec:
    """The spec named by ``-f`` and ``--profile``."""
    spec: Spec = load_spec(args.file, profile=args.profile)
    return spec


def find_variant(variants: Sequence[Variant], ident: str) -> Variant:
    """The variant with id ``ident``; a UsageError with a suggestion otherwise."""
    for variant in variants:
        if variant.id == ident:
            return variant
    ids = [variant.id for variant in variants]
    hint = did_you_mean(ident, ids if len(ids) <= 12 else [], "variants are")
    if not hint:
        hint = " (run 'stackmatrix list' to see them)"
    raise UsageError(f"unknown variant {ident!r}{hint}")


def _cell(value: Scalar | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_table(variants: Sequence[Variant]) -> str:
    """Variants as an aligned text table: id, then one column per matrix key."""
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
    lines = [
        json.dumps(
            {"id": v.id, "values": dict(v.values), "experimental": v.experimental},
            ensure_ascii=False,
        )
        for v in variants
    ]
    return "[\n" + ",\n".join(f"  {line}" for line in lines) + ("\n]\n" if lines else "]\n")


def _list(args: argparse.Namespace) -> int:
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
    spec = read_spec(args)
    variant = find_variant(expand(spec), args.variant)
    data = render(spec, variant, run_id=args.run_id)
    text = dump_compose(data)
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(text)
    else:
        try:
            write_private_if(args.output, text, private=holds_secrets(data, spec.secrets))
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


# Each entry adds one subcommand; a new command appends its register function here.
COMMANDS: list[Callable[[Subparsers], None]] = [
    register_list,
    register_render,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="stackmatrix",
        description="Run a test suite against a matrix of Docker Compose stacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    # The engine-side commands import this module's helpers, so they are loaded here.
    from stackmatrix.cli.run import ENGINE_COMMANDS  # noqa: PLC0415

    for register in (*COMMANDS, *ENGINE_COMMANDS):
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        handler: Handler = args.handler
        return handler(args)
    except StackmatrixError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for line in problems:
            print(f"stackmatrix: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stackmatrix: interrupted", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The ``stackmatrix`` console script: :func:`main`, then an immediate exit.

    By then every file stackmatrix wrote is closed and every stack is down; what remains is
    the interpreter's own teardown of the plotting and engine libraries, about 0.2 s a CI
    step would wait for. So the standard streams are flushed and the process ends at once.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
