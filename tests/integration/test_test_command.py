"""The test command is the user's: checked before any stack comes up, given a private working
area and setup steps, and a run's journal, summary and exit code always agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackmatrix.redact import MASK
from stackmatrix.report.plots import PLOT_NAME
from stackmatrix.results.stats import HOST_SERVICE

from ._matrix import Project, make_project

pytestmark = pytest.mark.usefixtures("docker_engine")


def _edit(project: Project, change: dict[str, Any]) -> None:
    """Merge *change* into the tests section of the project's matrix file."""
    spec = yaml.safe_load(project.matrix.read_text())
    spec["tests"].update(change)
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))


def _line_of(project: Project, text: str) -> int:
    """The 1-based line of the matrix file that holds *text*."""
    lines = project.matrix.read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def _by_id(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in journal["variants"]}


def test_a_port_no_variant_publishes_is_a_spec_error_before_any_stack(tmp_path: Path) -> None:
    project = make_project(tmp_path, tests_env={"BAD": "x=${{ ports.echo.9999 }}"})
    line = _line_of(project, "ports.echo.9999")
    column = project.matrix.read_text().splitlines()[line - 1].index("${{ ports.echo.9999") + 1

    done = project.run("run")

    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"stackmatrix: error: matrix.yaml:{line}:{column}: tests.env.BAD:"
        " ${{ ports.echo.9999 }}: service 'echo' publishes no port 9999 (published: 7000)"
        " in every variant"
    ) in done.stderr
    assert not (tmp_path / ".stackmatrix").exists()  # nothing started, nothing recorded


def test_a_test_command_that_does_not_exist_is_caught_before_any_stack(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _edit(project, {"command": ["no-such-test-runner", "--junitxml=${{ junit }}"]})
    line = _line_of(project, "no-such-test-runner")

    done = project.run("run")

    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"matrix.yaml:{line}:5: tests.command[0]: command 'no-such-test-runner' not found on PATH"
    ) in done.stderr
    assert not (tmp_path / ".stackmatrix").exists()
    # A relative path is looked for in tests.workdir.
    _edit(project, {"shell": True, "command": "./run-tests.sh -x"})
    done = project.run("run")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "tests.command: command './run-tests.sh' not found: no such file" in done.stderr


def test_a_template_error_at_run_time_fails_that_variant_only(tmp_path: Path) -> None:
    # Variant a publishes its port through compose's own interpolation, so only the engine
    # knows it (7002, not the 7001 tests.env asks for): that variant fails, b passes.
    extra = {"image": "debian:bookworm-slim", "init": True, "command": ["sleep", "600"]}
    project = make_project(tmp_path, tests_env={"EXTRA": "${{ ports.extra.7001 }}"})
    spec = yaml.safe_load(project.matrix.read_text())
    spec["overlays"] += [
        {"when": {"flavor": "a"}, "compose": {"services": {
            "extra": {**extra, "ports": ["${EXTRA_PORT:-7002}"]}}}},
        {"when": {"flavor": "b"}, "compose": {"services": {"extra": {**extra, "ports": ["7001"]}}}},
    ]  # fmt: skip
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    journal = project.journal()
    assert journal["exit_code"] == 3
    variants = _by_id(journal)
    assert variants["flavor-b"]["status"] == "passed"
    assert variants["flavor-a"]["status"] == "error"
    assert variants["flavor-a"]["reason"] == (
        "cannot prepare the test command: ${{ ports.extra.7001 }}: service 'extra' publishes"
        " no port 7001; published: echo.7000, extra.7002"
    )


def test_a_closed_output_pipe_neither_stops_the_run_nor_greens_it(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        axes={"flavor": ["pass", "fail"]},
        tests_env={"CHECK_MODE": "${{ matrix.flavor }}"},
    )
    # `stackmatrix run 2>&1 | head -1`: the reader goes away after the first line.
    proc = subprocess.Popen(
        [sys.executable, "-m", "stackmatrix", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(timeout=240)

    journal = json.loads((tmp_path / ".stackmatrix/runs/latest/run.json").read_text())
    assert code == journal["exit_code"] == 1
    assert {v["id"]: v["status"] for v in journal["variants"]} == {
        "flavor-pass": "passed",
        "flavor-fail": "failed",
    }
    title = (tmp_path / ".stackmatrix/runs/latest/summary.md").read_text().splitlines()[0]
    assert "2 variants — 1 passed, 1 failed" in title
    assert "✅" not in title


def test_setup_steps_run_after_readiness_and_before_the_tests(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _edit(project, {"setup": [
        {"shell": True,
         "command": "echo migrating ${{ matrix.flavor }} on ${{ ports.echo.7000 }}; "
                    'echo "tmp=$TMPDIR"; echo "secret=$SETUP_TOKEN"',
         "env": {"SETUP_TOKEN": "hush-${{ variant }}-token"}},
        {"command": ["sh", "-c", "echo in the service; cat /etc/debian_version"],
         "where": "echo", "timeout": "30s"},
    ]})  # fmt: skip

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = project.run_dir()
    for vid, variant in _by_id(project.journal()).items():
        assert variant["status"] == "passed"
        assert list(variant["phases"]).index("setup") == list(variant["phases"]).index("ready") + 1
        assert list(variant["phases"]).index("tests") == list(variant["phases"]).index("setup") + 1
        assert variant["setup_log"] == f"{vid}/setup.log"
        log = (run_dir / vid / "setup.log").read_text()
        address = variant["ports"]["echo"]["7000"]
        assert f"migrating {vid.removeprefix('flavor-')} on {address}" in log
        assert f"tmp={run_dir / vid / 'tmp'}" in log
        assert "in the service" in log
        assert "hush-" not in log  # masked like tests.log
        assert f"secret={MASK}" in log
        assert f"setup {variant['phases']['setup']:.1f}s" in done.stderr


def test_a_failing_setup_step_is_the_variants_error_and_the_tests_never_run(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    _edit(project, {"setup": {"command": ["sh", "-c", "echo relation users missing; exit 3"]}})

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    assert variant["status"] == "error"
    assert variant["reason"] == "setup failed: exited with code 3"
    assert "relation users missing" in variant["detail"]
    assert variant["tests_log"] is None
    assert not (project.run_dir() / "flavor-a" / "tests.log").exists()


def test_each_variant_has_a_private_tmpdir_and_variant_dir(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _edit(project, {
        "shell": True,
        "command": 'echo "$TMPDIR" > "${{ variant_dir }}/tmpdir.txt" && touch "$TMPDIR/scratch"'
                   " && mkdir -p ${{ variant_dir }}/cache && python3 echo_check.py",
    })  # fmt: skip

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = project.run_dir()
    seen = set()
    for vid in ("flavor-a", "flavor-b"):
        tmpdir = (run_dir / vid / "tmpdir.txt").read_text().strip()
        assert tmpdir == str(run_dir / vid / "tmp")
        seen.add(tmpdir)
        assert (run_dir / vid / "cache").is_dir()
        assert not (run_dir / vid / "tmp").exists()  # scratch, not a result: removed
    assert len(seen) == 2


def test_the_host_side_of_the_tests_is_sampled_with_the_containers(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    burn = (
        "import time\nx = bytearray(48 * 2**20)\nend = time.time() + 4\n"
        "while time.time() < end: x[0] = 1\n"
    )
    (tmp_path / "burn.py").write_text(burn)
    _edit(project, {"shell": True, "command": "python3 burn.py && python3 echo_check.py"})

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    variant_dir = project.run_dir() / "flavor-a"
    stats = json.loads((variant_dir / "stats.json").read_text())
    host = [
        s["containers"][HOST_SERVICE] for s in stats["samples"] if HOST_SERVICE in s["containers"]
    ]
    assert len(host) >= 2
    assert max(h["memory_bytes"] for h in host) >= 48 * 2**20
    assert max(h["cpu_percent"] for h in host) > 5
    assert set(stats["peaks"]) == {"echo", HOST_SERVICE}
    assert HOST_SERVICE in (variant_dir / PLOT_NAME).read_text()  # the report's plot shows it
    # The stack's own peak memory is the containers', not the host's test processes.
    assert project.journal()["variants"][0]["peak_memory_bytes"] < 48 * 2**20
