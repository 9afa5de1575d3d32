"""The `stackmatrix` command line: the parser of every subcommand, errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from stackmatrix import __version__
from stackmatrix.cli import gc, held, matrix, results, run
from stackmatrix.cli.common import Handler, Subparsers
from stackmatrix.errors import Interrupted, StackmatrixError, UsageError

# Each module registers its subcommands; a new command adds its register function here.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    matrix.register_list,
    matrix.register_render,
    run.register_run,
    run.register_pull,
    held.register_held,
    gc.register_gc,
    results.register_merge,
    results.register_report,
    matrix.register_gha_matrix,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="stackmatrix",
        description="Run a test suite against a matrix of Docker Compose stacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def _say(text: str) -> None:
    """A line on stderr; a closed stderr (``2>&1 | head``) loses it, never the exit code."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr)


_show_warning = warnings.showwarning


def _show_spec_warning(  # noqa: PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Deprecations of the matrix file as a person reads them: where, what, what to write."""
    # Only a loaded spec.load warns of the matrix file: the command line never imports it
    # for a warning (`--help` loads no spec at all).
    load = sys.modules.get("stackmatrix.spec.load")
    spec_warning = getattr(load, "SpecDeprecationWarning", None)
    if spec_warning is not None and issubclass(category, spec_warning):
        _say(f"stackmatrix: warning: {message}")
    else:
        _show_warning(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    warnings.showwarning = _show_spec_warning
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first `--` belongs to the command stackmatrix runs (the tests', or
    # one inside a service), whatever options it has: argparse never sees it.
    passed: list[str] | None = None
    if "--" in words:
        cut = words.index("--")
        words, passed = words[:cut], words[cut + 1 :]
    try:
        args = parser.parse_args(words)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        if passed is not None and not getattr(args, "takes_arguments", False):
            raise UsageError(f"{args.command} takes no arguments after --")
        args.passed = passed or []
        handler: Handler = args.handler
        return handler(args)
    except StackmatrixError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        for line in problems:
            _say(f"stackmatrix: error: {line}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("stackmatrix: interrupted")
        return Interrupted.exit_code


def entry() -> NoReturn:
    """The ``stackmatrix`` console script: :func:`main`, then an immediate exit.

    By then every file stackmatrix wrote is closed and every stack is down; what remains is
    the interpreter's own teardown of the plotting and engine libraries, about 0.2 s a CI
    step would wait for. So the standard streams are flushed and the process ends at once.
    """
    code = main()
    logging = sys.modules.get("logging")  # not imported by --help or list: nothing to flush
    if logging is not None:
        logging.shutdown()
    _save_coverage()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _save_coverage() -> None:
    # The test suite measures the command lines it starts; coverage writes its data at exit,
    # which os._exit skips, so it is written here when coverage is measuring this process.
    coverage = sys.modules.get("coverage")
    current = coverage.Coverage.current() if coverage is not None else None
    if current is not None:
        current.stop()
        current.save()
