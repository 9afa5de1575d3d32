"""The parser of a command line that names a command holds only the parsers of its module:
it must take that command line exactly as the parser of every command does."""

from __future__ import annotations

import argparse

import pytest

from stackmatrix.cli.main import COMMANDS, build_parser

NAMES = [name for _module, _function, names in COMMANDS for name in names]


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(subparsers.choices)


def test_the_table_names_every_command_its_modules_register() -> None:
    assert _commands(build_parser()) == NAMES
    for _module, _function, names in COMMANDS:
        assert set(names) <= set(_commands(build_parser(names[0])))


def test_a_command_line_naming_no_command_gets_every_parser() -> None:
    assert _commands(build_parser(None)) == NAMES
    assert _commands(build_parser("lst")) == NAMES
    assert _commands(build_parser("--help")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_command_has_the_same_help_and_errors_alone(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = []
    for parser in (build_parser(), build_parser(name)):
        for argv in ([name, "--help"], [name, "--no-such-option"]):
            with pytest.raises(SystemExit) as caught:
                parser.parse_args(argv)
            seen.append((argv, caught.value.code, *capsys.readouterr()))
    assert seen[:2] == seen[2:]
    assert seen[0][2].startswith(f"usage: stackmatrix {name} ")
    assert seen[1][1] == 2
    assert "error: " in seen[1][3]


def test_a_command_line_parses_alike_with_one_or_every_parser() -> None:
    argv = ["gitlab-matrix", "-f", "m.yaml", "--shards", "2", "--fail-on", "failure", "--tag", "x"]
    assert vars(build_parser().parse_args(argv)) == vars(build_parser(argv[0]).parse_args(argv))


def _every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [parser, *subparsers.choices.values()]


@pytest.mark.parametrize("columns", [None, "37", "150"])
def test_help_is_laid_out_as_argparse_lays_it_out(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    ours = [p.format_help() for p in _every_parser(build_parser())]
    theirs = []
    for parser in _every_parser(build_parser()):
        parser.formatter_class = argparse.HelpFormatter
        theirs.append(parser.format_help())

    assert ours == theirs
    # The width is the terminal's: wide help lines where it is wide (80 columns otherwise).
    widest = max(len(line) for text in ours for line in text.splitlines())
    assert widest > 80 if columns == "150" else widest <= 80
