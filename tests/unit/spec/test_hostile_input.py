"""Hostile matrix files: bombs, deep nesting, code-running tags, huge matrices.

Each case runs the real command line in a child process with a time and memory limit, so a
regression shows as a failed test, never as a hung or swapping test run. Every case must end
in bounded time with exit 2 and one `FILE:LINE:COL` error, without a traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SECONDS = 15.0
MEMORY = 1024 * 1024 * 1024  # address space of the child: far above a sane run's needs
TAIL = "overlays: [{compose: {services: {db: {image: x}}}}]\ntests: {command: 'true'}\n"


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _stackmatrix(cwd: Path, *args: str, seconds: float = SECONDS) -> Outcome:
    """`stackmatrix ARGS` with a dead engine address: no case may get as far as the engine."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stackmatrix", *args],
            cwd=cwd,
            env={**os.environ, "DOCKER_HOST": f"unix://{cwd}/no-engine.sock", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=seconds,
            preexec_fn=_limit_memory,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"stackmatrix {' '.join(args)} still running after {seconds} s")
    return Outcome(done.returncode, done.stderr)


def _laughs(levels: int, width: int) -> str:
    lines = ["x-l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [
        f"x-l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)
    ]
    return "\n".join(lines) + "\n"


def _merges(levels: int, width: int) -> str:
    lines = ["x-m0: &m0 {a: 1, b: 2, c: 3}"]
    lines += [f"x-m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + "]}"
              for i in range(1, levels)]  # fmt: skip
    return "\n".join(lines) + "\n"


def _deep_block(depth: int) -> str:
    return "".join("  " * (i + 2) + "-\n" for i in range(depth)) + "  " * (depth + 2) + "a\n"


# name -> (matrix.yaml text, the message expected after "FILE:LINE:COL: ")
CASES: dict[str, tuple[str, str]] = {
    "billion-laughs": (
        "name: bomb\n" + _laughs(10, 10) + "axes: {v: [a]}\n" + TAIL,
        "the document expands to more than",
    ),
    "merge-key-bomb": (
        "name: bomb\n" + _merges(10, 10) + "axes: {v: [a]}\n" + TAIL,
        "the document expands to more than",
    ),
    "deep-flow-nesting": (
        "name: deep\naxes: {v: " + "[" * 100_000 + "a" + "]" * 100_000 + "}\n" + TAIL,
        "nesting deeper than",
    ),
    "deep-block-nesting": (
        "name: deep\naxes:\n  v:\n" + _deep_block(5_000) + TAIL,
        "nesting deeper than",
    ),
    "python-object-tag": (
        "name: tag\naxes: {v: !!python/object/apply:os.system ['touch PWNED']}\n" + TAIL,
        "unsupported tag '!!python/object/apply:os.system'",
    ),
    "python-name-tag": (
        "name: !!python/name:os.system tag\naxes: {v: [a]}\n" + TAIL,
        "unsupported tag '!!python/name:os.system'",
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["list", "run"])
def test_hostile_matrix_file_is_a_bounded_spec_error(
    tmp_path: Path, case: str, command: str
) -> None:
    text, message = CASES[case]
    (tmp_path / "matrix.yaml").write_text(text)

    outcome = _stackmatrix(tmp_path, command)

    assert outcome.code == 2, outcome.stderr
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("stackmatrix: error: matrix.yaml:"), outcome.stderr
    assert message in lines[0]
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / ".stackmatrix").exists()


def test_alias_bomb_in_a_base_compose_file_is_a_bounded_spec_error(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        _laughs(10, 10) + "services:\n  db: {image: 'debian:bookworm-slim'}\n"
    )
    (tmp_path / "matrix.yaml").write_text(
        "name: base\ncompose: [base.yaml]\naxes: {v: [a]}\ntests: {command: 'true'}\n"
    )
    for command in ("list", "run"):
        outcome = _stackmatrix(tmp_path, command)
        assert outcome.code == 2, outcome.stderr
        assert outcome.stderr.startswith("stackmatrix: error: base.yaml:"), outcome.stderr
        assert "the document expands to more than" in outcome.stderr


def _matrix_bomb(axes: int, width: int) -> str:
    rows = "".join(f"  a{i}: [{', '.join(str(j) for j in range(width))}]\n" for i in range(axes))
    return f"name: wide\naxes:\n{rows}" + TAIL


def test_a_matrix_with_billions_of_variants_is_a_bounded_spec_error(tmp_path: Path) -> None:
    (tmp_path / "matrix.yaml").write_text(_matrix_bomb(10, 10))

    # A cap is checked before expanding: it answers as fast as any other spec error.
    outcome = _stackmatrix(tmp_path, "list", seconds=8)

    assert outcome.code == 2, outcome.stderr
    assert outcome.stderr.startswith("stackmatrix: error: matrix.yaml:"), outcome.stderr
    assert "axes" in outcome.stderr


def test_a_large_but_sane_matrix_still_lists(tmp_path: Path) -> None:
    """The limits above must not catch a real matrix: 4 axes of 5 values, 625 variants."""
    (tmp_path / "matrix.yaml").write_text(_matrix_bomb(4, 5))
    outcome = _stackmatrix(tmp_path, "list")
    assert outcome.code == 0, outcome.stderr
