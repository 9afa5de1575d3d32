"""What the subcommands share: the spec arguments, reading the spec, finding a variant."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.run_dir import DEFAULT_OUT
from stackmatrix.spec.checks import did_you_mean
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Spec

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


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``: where runs are kept (``run`` writes there, ``gc`` reads journals there)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="output folder (default .stackmatrix)",
    )


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
