"""``stackmatrix gc``: remove what runs left on the engine."""

from __future__ import annotations

import argparse

from stackmatrix.cli.common import Subparsers, add_out_argument, out_dir


def _gc(args: argparse.Namespace) -> int:
    # The engine side loads when the command runs: the command line starts without it.
    from stackmatrix.engine.gc import collect, find_leftovers  # noqa: PLC0415
    from stackmatrix.engine.preflight import ensure_engine  # noqa: PLC0415

    ensure_engine()
    removed = collect(
        out_dir(args), everything=args.all, run_id=args.run, force=args.force, dry_run=args.dry_run
    )
    verb = "would remove" if args.dry_run else "removed"
    for leftover in removed:
        print(
            f"{verb} run {leftover.run_id}: {leftover.containers} containers, "
            f"{leftover.networks} networks, {leftover.volumes} volumes"
        )
    taken = {leftover.run_id for leftover in removed}
    left = [x for x in find_leftovers(out_dir(args)) if not args.dry_run or x.run_id not in taken]
    alive = []
    if args.all or args.run:
        alive = [x for x in left if x.active and (args.run is None or x.run_id == args.run)]
        for leftover in alive:
            print(
                f"kept run {leftover.run_id}: it is still running "
                f"({leftover.containers} containers, {leftover.networks} networks, "
                f"{leftover.volumes} volumes); --force removes it anyway"
            )
        left = [x for x in left if x not in alive]
    if left:
        print(
            "still there (active, or not from this folder; use --all or --run ID): "
            + ", ".join(f"{x.run_id}{_why_kept(x.run_id, x.active)}" for x in left)
        )
    elif not removed and not alive:
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
    which.add_argument(
        "--all",
        action="store_true",
        help="every stackmatrix object on this engine, but those of runs still alive",
    )
    which.add_argument("--run", metavar="ID", help="the objects of one run")
    parser.add_argument(
        "--force",
        action="store_true",
        help="remove the objects of runs still alive too (their process keeps running)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be removed; remove nothing"
    )
    add_out_argument(parser)
    parser.set_defaults(handler=_gc)
