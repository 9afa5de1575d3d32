"""`stackmatrix report` over run directories that real runs left: a run killed mid-tests is
incomplete (never green) and names the variants that never finished; the shards of a sharded
run are found in the --out folder, and a missing one is named and fails --fail-on incomplete."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ._matrix import make_project
from .conftest import labelled_objects
from .faults._support import Watched, force_remove, pids_with_env

pytestmark = pytest.mark.usefixtures("docker_engine")


def test_a_run_killed_mid_tests_is_reported_incomplete_not_green(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a", "b"]}, check_mode="hang")
    run = Watched(project, "run")
    run.wait_for(r"^\s+flavor-a: tests$", r"^\s+flavor-b: tests$")
    run_id = project.journal()["run_id"]
    run.kill()  # SIGKILL: the journal never records the end
    try:
        deadline = time.monotonic() + 15
        while (left := pids_with_env("STACKMATRIX_RUN_ID", run_id)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert labelled_objects(run_id), "a killed run leaves its stacks (gc's job)"
    finally:
        force_remove(run_id)
    run_dir = project.run_dir()

    done = project.run("report", str(run_dir), "--fail-on", "incomplete")

    assert done.returncode == 3, done.stdout + done.stderr
    assert "verdict: incomplete" in done.stdout
    assert f"Run {run_id} did not record its end" in done.stdout
    assert "Never finished (2 variants): flavor-a, flavor-b." in done.stdout
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert not summary.startswith("## ✅"), summary
    assert summary.startswith("## ⚠️ stackmatrix it: 0 variants · incomplete")
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<span class="badge incomplete">incomplete</span>' in html
    assert "Traceback" not in done.stderr
    # Without --fail-on the report says the same and exits 0, as before.
    assert project.run("report", str(run_dir)).returncode == 0


def test_shards_in_the_out_folder_and_a_missing_shard(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a", "b", "c"]})
    first = project.run("run", "--shard", "1/2")
    assert first.returncode == 0, first.stdout + first.stderr
    # One shard alone: its own reports are green (it ran all it was to run) ...
    assert (project.run_dir() / "summary.md").read_text(encoding="utf-8").startswith("## ✅")

    # ... but against the matrix, the second shard is missing.
    alone = project.run("report", ".stackmatrix", "--out", "merged", "--fail-on", "incomplete")
    assert alone.returncode == 3, alone.stdout + alone.stderr
    assert "Missing shards: 2/2." in alone.stdout
    assert "Missing: 1 of 3 matrix variants are in none of the run directories: flavor-b." in (
        alone.stdout
    )

    second = project.run("run", "--shard", "2/2")
    assert second.returncode == 0, second.stdout + second.stderr
    both = project.run(
        "report", ".stackmatrix/runs", "--out", "merged", "--fail-on", "incomplete,failure"
    )
    assert both.returncode == 0, both.stdout + both.stderr
    assert "verdict: passed" in both.stdout
    assert "the newest run and the 1 that complete it" in both.stderr
    merged = (tmp_path / "merged" / "summary.md").read_text(encoding="utf-8")
    assert merged.startswith("## ✅ stackmatrix it: 3 variants — 3 passed\n")
    # Matrix order, though the shards split it a, c | b.
    rows = [ln.split("`")[1] for ln in merged.splitlines() if ln.startswith("| `flavor-")]
    assert rows == ["flavor-a", "flavor-b", "flavor-c"]
