"""A stack that pins a host port, on real stacks: with ``--jobs 1`` it is down before the
next variant comes up, even when its down takes long, so every variant gets the port."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path
from typing import Any

import pytest

from ._matrix import make_project
from .conftest import labelled_objects
from .faults._support import add_services, by_id

pytestmark = pytest.mark.usefixtures("docker_engine")

# PID 1 without init ignores SIGTERM: `down` waits its stop timeout, the port still bound.
LISTENER = (
    "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => '0.0.0.0:7000',"
    " Listen => 5, ReuseAddr => 1) or die $!; while (my $c = $s->accept) { close $c }"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _down_ended(variant: dict[str, Any]) -> float:
    return float(variant["phase_starts"]["down"] + variant["phases"]["down"])


def test_with_one_job_a_pinned_host_port_is_free_for_each_next_variant(tmp_path: Path) -> None:
    port = _free_port()
    project = make_project(
        tmp_path, axes={"flavor": ["a", "b", "c"]}, run={"jobs": 1, "down_timeout": "4s"}
    )
    pinned = {
        "image": "debian:bookworm-slim",
        "command": ["perl", "-e", LISTENER.replace("$", "$$")],
        "ports": [f"{port}:7000"],
    }
    add_services(project, {"pinned": pinned})

    done = project.run("run", "--jobs", "1")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "port is already allocated" not in output
    journal = project.journal()
    assert labelled_objects(journal["run_id"]) == set()
    variants = [by_id(journal)[vid] for vid in ("flavor-a", "flavor-b", "flavor-c")]
    assert [v["status"] for v in variants] == ["passed"] * 3, variants
    for earlier, later in itertools.pairwise(variants):
        assert earlier["phases"]["down"] >= 3.5  # the listener held the port that long
        assert later["phase_starts"]["up"] >= _down_ended(earlier) - 0.01, (earlier, later)
