"""``stackmatrix gc``: remove what runs left on the engine."""

from __future__ import annotations

import argparse

from stackmatrix.cli.common import Subparsers, add_out_argument


def _gc(args: argparse.Namespace) -> int:
    # The engine side loads when the command runs: the command line starts without it.
    from stackmatrix.engine.docker import ensure_engine  # noqa: PLC0415
    from stackmatrix.engine.gc import collect, find_leftovers  # noqa: PLC0415

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
            + ", ".join(f"{x.run_id}{_why_kept(x.run_id, x.active)}" for x in left)
        )
    elif not removed:
        print("nothing to remove")
    return 0


def _why_kept(run_id: str, active: bool) -> str:
    if run_id == "held":  # engine.held.HELD_RUN_ID, not imported: the engine loads lazily
        return " (stacks held by 'stackmatrix up'; 'stackmatrix down' removes them)"
    return " (active)" if active else ""


def register_gc(subparsers: Subparsers) -> None:
    """``stackmatrix gc``."""
    parser = subparsers.add_parser("gc", help="remove leftovers of crashed or kept runs by label")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every stackmatrix object on this engine")
    which.add_argument("--run", metavar="ID", help="the objects of one run")
    add_out_argument(parser)
    parser.set_defaults(handler=_gc)
