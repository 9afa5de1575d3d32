"""stackmatrix.nox on real stacks: a user's noxfile runs its matrix with `nox -j 2`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from junitparser import JUnitXml

from stackmatrix.nox import RUN_ID_ENV

from .conftest import labelled_objects

pytestmark = pytest.mark.usefixtures("docker_engine")
PROJECT = Path(__file__).parent / "nox_project"
IDS = ["flavor-a", "flavor-b"]


def copy_project(tmp_path: Path) -> Path:
    """The example project in a fresh folder (its .nox and .stackmatrix land there)."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return root


def nox_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nox", "-f", str(root / "noxfile.py"), *args]


def nox_env(run_id: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKMATRIX_", "NOXIT_"))}
    return env | {"NO_COLOR": "1", "GITHUB_STEP_SUMMARY": "", RUN_ID_ENV: run_id, **extra}


def journal(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / ".stackmatrix/runs/latest/run.json").read_text())
    return data


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in data["variants"]}


def test_nox_j2_runs_both_variants_side_by_side_and_merges(
    tmp_path: Path, session_run_id: str
) -> None:
    root = copy_project(tmp_path)
    run_id = f"{session_run_id}-nox-pass"

    done = subprocess.run(
        nox_command(root, "-j", "2", "-s", "matrix"),
        cwd=root,
        env=nox_env(run_id),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "matrix-flavor-a: success" in output
    assert "matrix-flavor-b: success" in output
    assert "matrix: success" in output
    data = journal(root)
    assert data["run_id"] == run_id
    assert data["exit_code"] == 0
    variants = by_id(data)
    assert sorted(variants) == IDS
    assert {v["status"] for v in variants.values()} == {"passed"}
    # Each nox session ran its stack in a nox subprocess of its own, at the same time.
    (a0, a1), (b0, b1) = ((variants[v]["started_at"], variants[v]["finished_at"]) for v in IDS)
    assert a0 < b1
    assert b0 < a1
    run_dir = (root / ".stackmatrix/runs/latest").resolve()
    assert run_dir.name == run_id
    for vid in IDS:
        log = (run_dir / vid / "tests.log").read_text()
        # The tests reached their own stack and ran with the session's virtualenv python.
        assert f"echo replied '{vid[-1]}:hi'" in log
        assert f"python {root / '.nox' / f'matrix-{vid}'}" in log
    merged = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    cases = {(case.classname, case.name) for suite in merged for case in suite}
    assert cases == {
        (f"[{vid}] check", name)
        for vid in IDS
        for name in ("test_reply", "test_session_venv", "test_wanted_outcome")
    }
    summary = (run_dir / "summary.md").read_text()
    assert "`flavor-a`" in summary
    assert "`flavor-b`" in summary
    assert labelled_objects(run_id) == set()


def test_a_failing_variant_fails_its_session_and_the_run_is_still_merged(
    tmp_path: Path, session_run_id: str
) -> None:
    root = copy_project(tmp_path)
    run_id = f"{session_run_id}-nox-fail"

    done = subprocess.run(
        nox_command(root, "-j", "2", "-s", "matrix"),
        cwd=root,
        env=nox_env(run_id, NOXIT_FAIL="flavor-b"),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "matrix-flavor-a: success" in output
    assert "matrix-flavor-b: failed" in output
    assert "Prerequisite session matrix-flavor-b was not successful" in output
    # The merged report was written anyway, by whichever variant session finished last.
    assert "asked to fail by NOXIT_FAIL" in output
    data = journal(root)
    assert data["exit_code"] == 1
    assert {k: v["status"] for k, v in by_id(data).items()} == {
        "flavor-a": "passed",
        "flavor-b": "failed",
    }
    run_dir = root / ".stackmatrix/runs/latest"
    assert "test_wanted_outcome" in (run_dir / "summary.md").read_text()
    assert labelled_objects(run_id) == set()


def test_ctrl_c_during_the_tests_tears_both_stacks_down(
    tmp_path: Path, session_run_id: str
) -> None:
    root = copy_project(tmp_path)
    run_id = f"{session_run_id}-nox-int"
    markers = tmp_path / "running"
    markers.mkdir()
    log = (tmp_path / "nox.log").open("w")
    # A terminal's Ctrl-C goes to the foreground process group: nox gets its own here. A
    # shell's background job (`.ci/run &`) ignores SIGINT, and children inherit that: nox
    # must start with SIGINT at its default, as in a terminal, for Ctrl-C to reach it.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            nox_command(root, "-j", "2", "-s", "matrix"),
            cwd=root,
            env=nox_env(run_id, NOXIT_HANG=str(markers)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        deadline = time.monotonic() + 180
        while sorted(p.name for p in markers.iterdir()) != IDS:
            assert proc.poll() is None, (tmp_path / "nox.log").read_text()
            assert time.monotonic() < deadline, "the tests of both variants never started"
            time.sleep(0.2)
        assert len([o for o in labelled_objects(run_id) if o.startswith("container:")]) == 2

        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(timeout=240)
        except subprocess.TimeoutExpired:
            ps = ["ps", "-eo", "pid,pgid,stat,etime,args"]
            processes = subprocess.run(ps, check=False, capture_output=True, text=True).stdout
            log.flush()
            pytest.fail(
                "nox did not end within 240 s of Ctrl-C\n--- nox.log (tail) ---\n"
                + (tmp_path / "nox.log").read_text()[-6000:]
                + "\n--- processes ---\n"
                + "\n".join(line for line in processes.splitlines() if "python" in line)
            )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

    output = (tmp_path / "nox.log").read_text()
    assert code == 130, output
    # nox returned only once both stacks were gone.
    assert labelled_objects(run_id) == set(), output
    assert {v["status"] for v in by_id(journal(root)).values()} == {"interrupted"}
    assert "tearing the stack down" in output


def test_nox_posargs_reach_the_test_command(tmp_path: Path, session_run_id: str) -> None:
    root = copy_project(tmp_path)
    run_id = f"{session_run_id}-nox-args"

    done = subprocess.run(
        nox_command(root, "-s", "matrix-flavor-a", "--", "--verbose", "-k", "reply"),
        cwd=root,
        env=nox_env(run_id),
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    log = (root / ".stackmatrix/runs/latest/flavor-a/tests.log").read_text()
    assert log.splitlines()[0].endswith("check.py --verbose -k reply")
    assert labelled_objects(run_id) == set()
