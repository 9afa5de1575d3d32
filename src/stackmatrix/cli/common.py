"""What the subcommands share: the spec arguments, reading the spec, finding a variant."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from stackmatrix.errors import UsageError

if TYPE_CHECKING:
    from stackmatrix.matrix.expand import Variant
    from stackmatrix.spec.models import Spec

# The parser is built with argparse alone: what reads the spec, the matrix or the run
# directories (pydantic, YAML, the models) is imported by the handler that needs it, so
# `--help` and a wrong command line answer at once.

Handler = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """``-f/--file`` and ``--profile``, shared by every command that reads a matrix file."""
    parser.add_argument(
        "-f", "--file", type=Path, default=Path("matrix.yaml"), metavar="FILE",
        help="the matrix file (default: ./matrix.yaml)",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="P", help="apply the named profile of the matrix file")


def load_spec(path: Path, *, profile: str | None = None) -> Spec:
    """:func:`stackmatrix.spec.load.load_spec`, the spec layer imported when first called."""
    from stackmatrix.spec.load import load_spec as load  # noqa: PLC0415 - see the top

    return load(path, profile=profile)


def read_spec(args: argparse.Namespace) -> Spec:
    """The spec named by ``-f`` and ``--profile``."""
    spec: Spec = load_spec(args.file, profile=args.profile)
    return spec


def find_variant(variants: Sequence[Variant], ident: str) -> Variant:
    """The variant with id ``ident``; a UsageError with a suggestion otherwise."""
    from stackmatrix.spec.checks import did_you_mean  # noqa: PLC0415

    for variant in variants:
        if variant.id == ident:
            return variant
    ids = [variant.id for variant in variants]
    hint = did_you_mean(ident, ids if len(ids) <= 12 else [], "variants are")
    if not hint:
        hint = " (run 'stackmatrix list' to see them)"
    raise UsageError(f"unknown variant {ident!r}{hint}")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where runs are kept (``run`` writes there, ``gc`` reads journals there)."""
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default .stackmatrix)",
    )


def out_dir(args: argparse.Namespace) -> Path:
    """``--out``, else the default folder (results.run_dir.DEFAULT_OUT, loaded when used)."""
    if args.out is not None:
        out: Path = args.out
        return out
    from stackmatrix.results.run_dir import DEFAULT_OUT  # noqa: PLC0415

    return DEFAULT_OUT


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
