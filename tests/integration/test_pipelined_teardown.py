"""Teardown off the critical path, on real stacks: the next variant comes up while the last
one comes down, every down is awaited (also when the run is interrupted), nothing is left."""

from __future__ import annotations

import itertools
import signal
from pathlib import Path
from typing import Any

import pytest

from ._matrix import make_project
from .conftest import labelled_objects
from .faults._support import Watched, add_services, by_id

pytestmark = pytest.mark.usefixtures("docker_engine")

# PID 1 without init ignores SIGTERM: `down` waits the stop timeout for it, then kills it.
STUBBORN = {"image": "debian:bookworm-slim", "command": ["sleep", "600"]}


def _down_ended(variant: dict[str, Any]) -> float:
    starts: dict[str, float] = variant["phase_starts"]
    phases: dict[str, float] = variant["phases"]
    return starts["down"] + phases["down"]


def test_with_one_job_the_next_variant_comes_up_while_the_last_comes_down(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path, axes={"flavor": ["a", "b", "c"]}, run={"jobs": 1, "down_timeout": "2s"}
    )
    add_services(project, {"stubborn": STUBBORN})  # each down takes 2 s or more

    done = project.run("run", "--jobs", "1")

    assert done.returncode == 0, done.stdout + done.stderr
    journal = project.journal()
    assert journal["jobs"] == 1
    assert labelled_objects(journal["run_id"]) == set()  # every down was awaited before exit
    variants = [by_id(journal)[vid] for vid in ("flavor-a", "flavor-b", "flavor-c")]
    assert [v["status"] for v in variants] == ["passed"] * 3
    for earlier, later in itertools.pairwise(variants):
        assert earlier["phases"]["down"] >= 1.5
        # The later one's bring-up began once the earlier one's logs were in, while its
        # stack was still coming down.
        assert earlier["phase_starts"]["down"] <= later["started_at"]  # one job at a time
        assert later["phase_starts"]["up"] < _down_ended(earlier), (earlier, later)
    for variant in variants:  # a result is whole once its down is done (phases: rounded ms)
        assert variant["finished_at"] >= _down_ended(variant) - 0.01
    output = done.stdout + done.stderr
    assert "  flavor-a: down" in output
    assert output.index("  flavor-b: up") < output.index("flavor-a  2 passed")


def test_an_interrupt_during_a_background_down_waits_for_it_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path,
        axes={"flavor": ["a", "b", "c"]},
        # b's tests hang: the signal finds them running, whenever it comes
        include=[{"flavor": f, "mode": "hang" if f == "b" else "pass"} for f in "abc"],
        run={"jobs": 1, "down_timeout": "10s"},
        tests_env={"CHECK_MODE": "${{ matrix.mode }}"},
    )
    add_services(project, {"stubborn": STUBBORN}, when={"flavor": "a"})  # a's down: 10 s

    run = Watched(project, "run")
    run.wait_for(r"^\s+flavor-a: down$", r"^\s+flavor-b: tests$")
    run.signal(signal.SIGINT, group=True)
    run.wait_for(r"SIGINT: stopping")  # two signals sent at once may arrive as one
    run.signal(signal.SIGINT, group=True)  # a second Ctrl-C does not cut a teardown short
    code, _ = run.finish()

    assert code == 130, run.output
    assert "SIGINT again: still tearing down" in run.output
    journal = project.journal()
    assert journal["interrupted"] is True
    assert journal["exit_code"] == 130
    assert labelled_objects(journal["run_id"]) == set()  # right at exit, not eventually
    variants = by_id(journal)
    a, b = variants["flavor-a"], variants["flavor-b"]
    assert run.signalled_wall is not None
    assert a["phase_starts"]["down"] < run.signalled_wall < _down_ended(a)  # signalled in it
    assert a["status"] == "passed"  # its tests had finished; its down ran to its end
    assert a["phases"]["down"] >= 9
    assert not a["teardown"]
    assert b["status"] == "interrupted", (b["reason"], run.output)
    assert variants["flavor-c"]["reason"] == "never started: the run was interrupted"
