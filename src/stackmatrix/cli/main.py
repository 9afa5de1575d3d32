"""The `stackmatrix` command line: the parser of every subcommand, errors to exit codes."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO, cast

from stackmatrix import __version__
from stackmatrix.cli.common import Handler, Subparsers
from stackmatrix.errors import Interrupted, StackmatrixError, UsageError

# Each module of stackmatrix.cli registers its subcommands, in the order --help lists them: a
# new command adds its module, its register function and the names it registers here. A
# command line that names a command imports that module only (`list` does not load the modules
# of `run`, `report` or `gc`, nor build their parsers); any other builds every parser.
COMMANDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("matrix", "register_list", ("list",)),
    ("matrix", "register_render", ("render",)),
    ("run", "register_run", ("run",)),
    ("run", "register_pull", ("pull", "prepare")),
    ("held", "register_held", ("up", "env", "test", "exec", "shell", "ps", "down")),
    ("gc", "register_gc", ("gc",)),
    ("results", "register_merge", ("merge",)),
    ("results", "register_report", ("report",)),
    ("matrix", "register_gha_matrix", ("gha-matrix", "gitlab-matrix")),
)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else the width of the terminal of
    stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, at the width argparse's own formatter finds. argparse makes a
    formatter at every add_argument, and its own asks shutil for the width: importing shutil
    (and the compression modules it loads) was some 4 ms of every start."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
        **kwargs: Any,
    ) -> None:
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


class _Parser(argparse.ArgumentParser):
    """The parser of stackmatrix and of each subcommand (add_subparsers makes them of this
    class): help laid out by :class:`_HelpFormatter` unless a command asks for another."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand, or only with those registered
    beside *command* when it names one (what parsing a command line naming it needs)."""
    parser: argparse.ArgumentParser = _Parser(
        prog="stackmatrix",
        description="Run a test suite against a matrix of Docker Compose stacks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    chosen = [entry for entry in COMMANDS if command in entry[2]] or COMMANDS
    for module_name, function, _names in chosen:
        module = importlib.import_module(f"stackmatrix.cli.{module_name}")
        register = cast("Callable[[Subparsers], None]", getattr(module, function))
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
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
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
