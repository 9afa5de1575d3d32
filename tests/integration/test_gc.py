"""``stackmatrix gc`` on a real engine: a run still going is never removed unless forced, a
dead one is, and a pid that now names another process does not keep a dead run alive."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from ._matrix import Project, make_project
from .conftest import labelled_objects
from .faults._support import Watched, force_remove, gc, pids_with_env

pytestmark = pytest.mark.usefixtures("docker_engine")


def _running(tmp_path: Path) -> tuple[Project, Watched, str]:
    project = make_project(tmp_path, axes={"flavor": ["a"]}, check_mode="hang")
    run = Watched(project, "run")
    run.wait_for(r"^\s+flavor-a: tests$")
    return project, run, project.journal()["run_id"]


def _removed_line(run_id: str, verb: str = "removed") -> str:
    return rf"^{verb} run {run_id}: 1 containers, 1 networks, 0 volumes$"


def test_gc_all_keeps_a_live_run_lists_it_and_force_removes_it(tmp_path: Path) -> None:
    project, run, run_id = _running(tmp_path)
    try:
        dry = gc(project, "--all", "--dry-run")
        kept = gc(project, "--all")
        left_by_all = labelled_objects(run_id)
        forced = gc(project, "--all", "--force")
        left_by_force = labelled_objects(run_id)
    finally:
        run.kill()
        force_remove(run_id)
    for done in (dry, kept, forced):
        assert done.returncode == 0, done.stdout + done.stderr
    keeping = (
        f"kept run {run_id}: it is still running (1 containers, 1 networks, 0 volumes); "
        "--force removes it anyway"
    )
    assert keeping in dry.stdout.splitlines()
    assert not re.search(_removed_line(run_id, "would remove"), dry.stdout, re.M)
    assert keeping in kept.stdout.splitlines()
    assert len(left_by_all) == 2  # the container and the network are still there
    assert re.search(_removed_line(run_id), forced.stdout, re.M), forced.stdout
    assert left_by_force == set()


def test_gc_removes_a_dead_run_even_when_its_pid_was_given_to_another_process(
    tmp_path: Path,
) -> None:
    project, run, run_id = _running(tmp_path)
    run.kill()  # SIGKILL: no teardown
    try:
        deadline = time.monotonic() + 15  # the test command's guard ends it
        while (left := pids_with_env("STACKMATRIX_RUN_ID", run_id)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        # The system gives the dead run's pid to another process: here, this test's own.
        journal_path = project.run_dir() / "run.json"
        journal = json.loads(journal_path.read_text())
        journal["pid"] = os.getpid()
        journal_path.write_text(json.dumps(journal))
        dry = gc(project, "--all", "--dry-run")
        left_by_dry = labelled_objects(run_id)
        collected = gc(project)
        left_by_gc = labelled_objects(run_id)
    finally:
        force_remove(run_id)
    assert re.search(_removed_line(run_id, "would remove"), dry.stdout, re.M), dry.stdout
    assert len(left_by_dry) == 2  # --dry-run removed nothing
    assert re.search(_removed_line(run_id), collected.stdout, re.M), collected.stdout
    assert left_by_gc == set()
