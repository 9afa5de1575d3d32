"""`stackmatrix run` on real stacks: parallel bring-up, readiness, tests, failures, teardown."""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from python_on_whales import DockerClient

from ._matrix import make_project
from .conftest import labelled_objects
from .faults._support import pid_alive

pytestmark = pytest.mark.usefixtures("docker_engine")


def _by_id(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    variants: list[dict[str, Any]] = journal["variants"]
    return {v["id"]: v for v in variants}


def test_four_variants_two_at_a_time_pass_and_overlap(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a", "b"], "size": ["1", "2"]})

    done = project.run("run", "--jobs", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    journal = project.journal()
    variants = _by_id(journal)
    assert sorted(variants) == [
        "flavor-a_size-1", "flavor-a_size-2", "flavor-b_size-1", "flavor-b_size-2",
    ]  # fmt: skip
    assert {v["status"] for v in variants.values()} == {"passed"}
    # Every variant's check reached its own echo server: the reply carried its own values.
    run_dir = project.run_dir()
    for vid, variant in variants.items():
        flavor, size = (part.split("-")[1] for part in vid.split("_"))
        log = (run_dir / vid / "tests.log").read_text()
        assert f"echo replied '{flavor}-{size}:hi'" in log
        assert variant["tests"]["passed"] == 2
        assert set(variant["ports"]["echo"]) == {"7000"}
        assert variant["ports"]["echo"]["7000"].startswith("127.0.0.1:")
        assert (run_dir / vid / "logs" / "echo.log").read_text().startswith("listening")
        assert (run_dir / vid / "compose.yaml").is_file()
    # Two at a time, and really side by side: some pair of stacks was up at the same moment.
    spans = sorted((v["started_at"], v["finished_at"]) for v in variants.values())
    overlaps = sum(1 for (_, a1), (b0, _) in itertools.pairwise(spans) if b0 < a1)
    assert overlaps >= 1
    assert len({v["project"] for v in variants.values()}) == 4
    assert (run_dir / "junit.xml").is_file()


def test_a_service_that_never_gets_healthy_is_an_error_with_diagnosis(tmp_path: Path) -> None:
    sick = {
        "image": "debian:bookworm-slim",
        "init": True,
        "command": [
            "sh", "-c", "echo 'sick service starting'; echo 'cannot find my config' >&2; sleep 600"
        ],
        "healthcheck": {
            "test": ["CMD", "sh", "-c", "echo 'config missing'; exit 1"],
            "interval": "1s",
            "retries": 2,
        },
    }  # fmt: skip
    project = make_project(tmp_path, axes={"flavor": ["a", "b"]}, run={"up_timeout": "20s"})
    # Only variant b gets the sick service.
    spec = yaml.safe_load(project.matrix.read_text())
    spec["overlays"].append({"when": {"flavor": "b"}, "compose": {"services": {"sick": sick}}})
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variants = _by_id(project.journal())
    assert variants["flavor-a"]["status"] == "passed"
    bad = variants["flavor-b"]
    assert bad["status"] == "error"
    assert "'sick'" in bad["reason"]
    assert "unhealthy" in bad["reason"]
    assert "config missing" in bad["detail"]
    assert "cannot find my config" in bad["detail"]
    junit = (project.run_dir() / bad["id"] / "junit.xml").read_text()
    assert "sick" in junit
    assert "ERROR" in done.stderr + done.stdout


def test_failing_suite_fails_and_experimental_failure_passes_the_run(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]}, check_mode="fail")
    done = project.run("run")
    assert done.returncode == 1, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    assert variant["status"] == "failed"
    assert variant["tests"]["failed"] == 1
    assert variant["exit_code"] == 1

    (tmp_path / "exp").mkdir()
    experimental = make_project(
        tmp_path / "exp",
        axes={"flavor": ["a"]},
        include=[{"flavor": "a", "experimental": True}],
        check_mode="fail",
    )
    done = experimental.run("run")
    assert done.returncode == 0, done.stdout + done.stderr
    (variant,) = experimental.journal()["variants"]
    assert variant["status"] == "experimental-failed"
    assert variant["experimental"] is True


def test_hung_tests_are_killed_at_their_timeout_with_their_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        check_mode="fork-hang",
        tests_timeout="3s",
        tests_env={"CHILD_PID_FILE": str(pid_file)},
    )
    started = time.monotonic()
    done = project.run("run")
    elapsed = time.monotonic() - started

    assert done.returncode == 1, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    assert variant["status"] == "failed"
    assert "timed out after 3 s" in variant["reason"]
    assert elapsed < 60
    child = int(pid_file.read_text())
    assert not pid_alive(child)
    assert (
        "killed after the 3 s timeout" in (project.run_dir() / "flavor-a" / "tests.log").read_text()
    )


def test_what_the_tests_leave_running_ends_with_them(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        check_mode="leave-child",
        tests_env={"CHILD_PID_FILE": str(pid_file)},
    )
    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    assert project.journal()["variants"][0]["status"] == "passed"
    assert not pid_alive(int(pid_file.read_text()))


@pytest.mark.parametrize(
    ("sig", "moment", "code"),
    [
        (signal.SIGINT, "up", 130),
        (signal.SIGINT, "tests", 130),
        (signal.SIGTERM, "up", 130),
        (signal.SIGTERM, "tests", 130),
    ],
)
def test_signals_stop_the_run_and_tear_everything_down(
    tmp_path: Path, sig: signal.Signals, moment: str, code: int
) -> None:
    project = make_project(
        tmp_path,
        axes={"flavor": ["a", "b", "c"]},
        check_mode="hang" if moment == "tests" else "pass",
        run={"jobs": 2},
    )
    proc = project.popen("run")
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 90
    marker = "tests" if moment == "tests" else "up"
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if f": {marker}" in line:
            break
    else:  # pragma: no cover - diagnostic only
        proc.kill()
        pytest.fail(f"never reached {marker}: {seen}")
    if moment == "tests":
        time.sleep(1)
    proc.send_signal(sig)
    if sig == signal.SIGINT:
        time.sleep(0.3)
        proc.send_signal(sig)  # a second Ctrl-C must not skip the teardown
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, seen + out
    journal = project.journal()
    assert journal["interrupted"] is True
    statuses = {v["id"]: v["status"] for v in journal["variants"]}
    assert set(statuses) == {"flavor-a", "flavor-b", "flavor-c"}
    assert set(statuses.values()) <= {"interrupted", "passed"}
    for vid in statuses:
        assert (project.run_dir() / vid / "junit.xml").is_file()
    assert labelled_objects(journal["run_id"]) == set()


def test_two_runs_of_one_matrix_at_once_do_not_collide(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a", "b"]})
    first = project.popen("run", "--out", "one")
    second = project.popen("run", "--out", "two")
    out1, _ = first.communicate(timeout=240)
    out2, _ = second.communicate(timeout=240)
    assert first.returncode == 0, out1
    assert second.returncode == 0, out2
    one, two = project.journal("one"), project.journal("two")
    assert one["run_id"] != two["run_id"]
    projects = {v["project"] for v in one["variants"]} | {v["project"] for v in two["variants"]}
    assert len(projects) == 4


def test_fail_fast_cancels_queued_variants_and_stops_running_ones(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        axes={"flavor": ["bad", "slow", "queued1", "queued2"]},
        check_mode="pass",
        run={"jobs": 2},
    )
    spec = yaml.safe_load(project.matrix.read_text())
    # 'bad' fails fast; 'slow' hangs until fail-fast stops it; the rest never start.
    spec["tests"]["command"] = [
        "sh", "-c",
        'case "$STACKMATRIX_AXIS_FLAVOR" in bad) exit 1;; slow) sleep 600;; esac; '
        "python3 echo_check.py",
    ]  # fmt: skip
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))

    started = time.monotonic()
    done = project.run("run", "--fail-fast")
    assert time.monotonic() - started < 120
    assert done.returncode == 1, done.stdout + done.stderr
    statuses = {v["id"]: v["status"] for v in project.journal()["variants"]}
    assert statuses["flavor-bad"] == "failed"
    assert statuses["flavor-slow"] == "cancelled"
    assert statuses["flavor-queued1"] == "cancelled"
    assert statuses["flavor-queued2"] == "cancelled"


def test_keep_leaves_the_stack_up_and_says_how_to_remove_it(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    done = project.run("run", "--keep")
    journal = project.journal()
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        (variant,) = journal["variants"]
        client = DockerClient(compose_project_name=variant["project"])
        assert [c.state.running for c in client.compose.ps()] == [True]
        assert "down -v" in done.stderr + done.stdout
    finally:
        gc = project.run("gc", "--run", journal["run_id"])
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert labelled_objects(journal["run_id"]) == set()


def test_retries_measure_flakiness_instead_of_guessing(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        check_mode="flaky",
        tests_env={"FLAKY_MARKER": str(tmp_path / "ran-once")},
    )
    done = project.run("run", "--retries", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    assert variant["status"] == "passed"
    assert variant["attempts"] == 2
    assert variant["flaky"] is True
    assert variant["attempt_statuses"] == ["failed"]
    kept = project.run_dir() / variant["attempt_junits"][0]
    assert "failure" in kept.read_text()
    assert "flaky" in done.stderr
