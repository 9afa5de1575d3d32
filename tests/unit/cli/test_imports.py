"""The commands that only read the matrix file start without the engine side or the plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("python_on_whales", "matplotlib", "stackmatrix.engine")

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


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["list", "-f", "matrix.yaml"],
    ["list", "-f", "matrix.yaml", "--json"],
    ["render", "postgres-15_redis-on", "-f", "matrix.yaml"],
    ["gha-matrix", "-f", "matrix.yaml", "--shards", "2"],
])  # fmt: skip
def test_pure_commands_load_no_engine_and_no_plots(argv: list[str]) -> None:
    code, modules = _loaded(*argv)

    assert code == 0
    heavy = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == []


def test_the_probe_sees_an_engine_import() -> None:
    # Proof that the probe would see it: the engine side imported beside the same command.
    code, modules = _loaded("--help", also_import="stackmatrix.engine.docker")

    assert code == 0
    assert "python_on_whales" in modules
