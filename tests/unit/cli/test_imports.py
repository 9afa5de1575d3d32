"""The commands that only read the matrix file start without the engine side or the plots,
and ``--help`` without even the spec layer (pydantic, YAML)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("python_on_whales", "junitparser", "stackmatrix.engine", "stackmatrix.report.plots")
# What building the parser needs none of: the spec layer, the reports, the CI generators.
NOT_FOR_HELP = (
    *HEAVY,
    "pydantic",
    "yaml",
    "defusedxml",
    "stackmatrix.spec",
    "stackmatrix.matrix",
    "stackmatrix.compose",
    "stackmatrix.results",
    "stackmatrix.report",
    "stackmatrix.junit",
    "stackmatrix.ci",
    "stackmatrix.console",
)

PROBE = """
import contextlib, importlib, io, json, os, sys
for name in filter(None, os.environ.get("ALSO_IMPORT", "").split(",")):
    importlib.import_module(name)
from stackmatrix.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(*argv: str, also_import: str = "") -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True, text=True, check=True, cwd=ROOT, timeout=60,
        env={**os.environ, "ALSO_IMPORT": also_import},
    )  # fmt: skip
    outcome = json.loads(done.stdout)
    return outcome["code"], outcome["modules"]


def _among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of *packages* or inside one."""
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["list", "-f", "matrix.yaml"],
    ["list", "-f", "matrix.yaml", "--json"],
    ["render", "postgres-15_redis-on", "-f", "matrix.yaml"],
    ["gha-matrix", "-f", "matrix.yaml", "--shards", "2"],
])  # fmt: skip
def test_pure_commands_load_no_engine_no_plots_no_junit(argv: list[str]) -> None:
    code, modules = _loaded(*argv)

    assert code == 0
    assert _among(modules, HEAVY) == []


@pytest.mark.parametrize("argv", [["--help"], ["list", "--help"], ["run", "--help"], []])
def test_help_and_a_bare_command_line_load_no_spec_layer(argv: list[str]) -> None:
    code, modules = _loaded(*argv)

    assert code == (2 if not argv else 0)
    assert _among(modules, NOT_FOR_HELP) == []


def test_list_loads_the_spec_but_neither_ci_nor_reports() -> None:
    code, modules = _loaded("list", "-f", "matrix.yaml")

    assert code == 0
    assert "stackmatrix.spec.models" in modules  # it did read the matrix file
    assert _among(modules, ("stackmatrix.ci", "stackmatrix.report", "stackmatrix.compose")) == []


@pytest.mark.parametrize("also_import", [
    "stackmatrix.engine.docker",
    "stackmatrix.spec.load",
    "junitparser",
])  # fmt: skip
def test_the_probe_sees_an_import(also_import: str) -> None:
    # Proof that the probe would see it: the module imported beside the same command.
    code, modules = _loaded("--help", also_import=also_import)

    assert code == 0
    assert also_import in modules
    assert _among(modules, NOT_FOR_HELP) != []


# The modules of the commands that do not read a matrix file, or that run stacks.
OTHER_COMMANDS = ("stackmatrix.cli.run", "stackmatrix.cli.held", "stackmatrix.cli.gc",
                  "stackmatrix.cli.results")  # fmt: skip


@pytest.mark.parametrize("argv", [
    ["list", "-f", "matrix.yaml"],
    ["render", "postgres-15_redis-on", "-f", "matrix.yaml"],
    ["gha-matrix", "-f", "matrix.yaml"],
])  # fmt: skip
def test_a_matrix_command_loads_neither_the_other_commands_nor_plugin_discovery(
    argv: list[str],
) -> None:
    code, modules = _loaded(*argv)

    assert code == 0
    assert _among(modules, OTHER_COMMANDS) == []
    # pydantic looks for plugins in every distribution's metadata; the spec models need none.
    assert "importlib.metadata" not in modules


def test_the_full_help_loads_every_command() -> None:
    code, modules = _loaded("--help")

    assert code == 0
    assert _among(modules, OTHER_COMMANDS) == sorted(OTHER_COMMANDS)
