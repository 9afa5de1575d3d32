"""The engine streams a stack follows: resource stats (what the sampler records, that it
stops cleanly, and that a run samples its stack's whole life) and container events (what
wakes the wait for health)."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import Container, DockerClient

from stackmatrix.engine.docker import docker_command
from stackmatrix.engine.events import ContainerEvents
from stackmatrix.engine.stats import StatsSampler

from ._matrix import make_project
from .conftest import LABEL
from .faults._support import edit_spec, proc_files

pytestmark = pytest.mark.integration

MIB = 2**20
# perl-base is in every Debian minbase image: hold 48 MiB of memory, then sleep.
HOLD_48_MIB = ["perl", "-e", '$| = 1; $x = "a" x (48 * 1024 * 1024); print "held\\n"; sleep 120']


def _holding(client: DockerClient, container: Container) -> None:
    """Wait until the hog has its 48 MiB (it says so once the string is built)."""
    deadline = time.monotonic() + 30
    while "held" not in client.container.logs(container):
        assert time.monotonic() < deadline, "the hog never got its memory"
        time.sleep(0.05)


@pytest.fixture
def start(docker_engine: DockerClient, session_run_id: str) -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    for container in started:
        docker_engine.container.remove(container, force=True, volumes=True)


def _run(client: DockerClient, run_id: str, command: list[str]) -> Container:
    return client.run(
        "debian:bookworm-slim",
        command,
        detach=True,
        init=True,
        labels={LABEL: run_id},
    )


def _docker_children(subcommand: bytes) -> list[str]:
    """Command lines of this process's children that are `docker ... SUBCOMMAND` processes."""
    children = {
        pid
        for pid, status in proc_files("status")
        for line in status.decode().splitlines()
        if line.startswith("PPid:") and int(line.split()[1]) == os.getpid()
    }
    return [
        cmdline.replace(b"\0", b" ").decode(errors="replace")
        for pid, cmdline in proc_files("cmdline")
        if pid in children and subcommand in cmdline.split(b"\0")
    ]


def _stats_children() -> list[str]:
    return _docker_children(b"stats")


def test_sampler_records_memory_of_every_container_and_leaves_no_process(
    docker_engine: DockerClient, session_run_id: str, start: list[Container], tmp_path: Path
) -> None:
    hog = _run(docker_engine, session_run_id, HOLD_48_MIB)
    start.append(hog)
    containers = {hog.id: "hog"}
    with StatsSampler(docker_engine, lambda: dict(containers), interval=0.5) as sampler:
        time.sleep(2.5)
        # A service that starts later is sampled too: the stream follows the set of containers.
        idle = _run(docker_engine, session_run_id, ["sleep", "120"])
        start.append(idle)
        containers[idle.id] = "idle"
        time.sleep(2.5)
    assert _stats_children() == []
    times = [sample["t"] for sample in sampler.samples]
    assert len(times) >= 5
    assert times == sorted(times)
    assert all(b - a >= 0.4 for a, b in itertools.pairwise(times))  # ~ the interval
    peaks = sampler.peaks()
    assert set(peaks) == {"hog", "idle"}
    assert peaks["hog"]["memory_bytes"] >= 48 * MIB
    assert peaks["idle"]["memory_bytes"] < 16 * MIB
    assert (sampler.peak_memory() or 0) >= 48 * MIB
    written = json.loads(sampler.write(tmp_path / "stats.json").read_text())
    assert written["peak_total_memory_bytes"] == sampler.peak_memory()
    assert written["samples"] == sampler.samples


def test_a_stack_up_briefly_still_gets_a_sample(
    docker_engine: DockerClient, session_run_id: str, start: list[Container]
) -> None:
    hog = _run(docker_engine, session_run_id, HOLD_48_MIB)
    start.append(hog)
    _holding(docker_engine, hog)
    with StatsSampler(docker_engine, lambda: {hog.id: "hog"}, interval=1.0) as sampler:
        pass  # the tests ended at once: leaving waits (briefly) for a first sample
    assert len(sampler.samples) == 1
    assert sampler.samples[0]["containers"]["hog"]["memory_bytes"] >= 48 * MIB
    assert _stats_children() == []


def test_no_running_container_means_no_sample_and_no_process(docker_engine: DockerClient) -> None:
    with StatsSampler(docker_engine, dict, interval=1.0) as sampler:
        pass
    assert sampler.samples == []
    assert _stats_children() == []


def test_engine_events_wake_the_health_wait_and_health_checks_do_not(
    docker_engine: DockerClient, session_run_id: str, start: list[Container]
) -> None:
    project = f"events-{session_run_id}"
    docker = docker_command(docker_engine)
    never = threading.Event()
    now = time.time()
    with ContainerEvents(docker, project, since=now - 1, until=now + 120) as events:
        container = docker_engine.run(
            "debian:bookworm-slim",
            ["sleep", "120"],
            detach=True,
            init=True,
            labels={LABEL: session_run_id, "com.docker.compose.project": project},
            health_cmd="true",
            health_interval=timedelta(seconds=1),
        )
        start.append(container)
        began = time.monotonic()
        while _health(docker_engine, container) != "healthy":
            events.wait(20, never)  # create, start, health_status: each wakes it at once
            assert time.monotonic() - began < 15, "no event woke the wait"
        events.wait(0.1, never)  # the last event, if it came after the reload
        # Healthy and idle: its health checks (an exec every second) are no reason to wake up.
        began = time.monotonic()
        events.wait(2.5, never)
        assert time.monotonic() - began >= 2.4
        assert len(_docker_children(b"events")) == 1
    assert _docker_children(b"events") == []


def _health(client: DockerClient, container: Container) -> str | None:
    health = client.container.inspect(container.id).state.health
    return health.status if health is not None else None


# Ready 6 s after it starts: the `ready` phase lasts long enough for samples.
SLOW_TO_READY = {
    "image": "debian:bookworm-slim",
    "init": True,
    "command": ["sh", "-c", "sleep 6; echo ready; exec sleep 600"],
}
# About 13 MB of log: collecting it takes a while, and is sampled too.
CHATTY = {
    "image": "debian:bookworm-slim",
    "init": True,
    "command": ["sh", "-c", "yes 'a chatty service logs this line again' | head -n 300000; "
                "exec sleep 600"],
}  # fmt: skip


def test_a_run_samples_its_stack_from_ready_through_collect(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        extra_services={"slow": SLOW_TO_READY, "chatty": CHATTY},
        ready={"echo": {"tcp": 7000}, "slow": {"log": "^ready$"}},
        run={"stats_interval": 0.5},
    )

    def slow_tests(spec: dict[str, Any]) -> None:  # 4 s of tests: sampled, by construction
        spec["tests"]["command"] = ["sh", "-c", "sleep 4; exec python3 echo_check.py"]

    edit_spec(project, slow_tests)
    done = project.run("run")
    assert done.returncode == 0, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    starts: dict[str, float] = variant["phase_starts"]
    stats = json.loads((project.run_dir() / variant["stats"]).read_text())
    moments = [stats["started_at"] + sample["t"] for sample in stats["samples"]]

    def sampled_in(first: str, until: str) -> list[float]:
        return [m for m in moments if starts[first] <= m < starts[until]]

    assert sampled_in("ready", "tests"), (starts, moments)
    # Sampled all along the tests, until the logs are in (sampling during collect itself is
    # in test_lifecycle: a fast machine collects this log between two frames).
    assert sampled_in("tests", "collect"), (starts, moments)
    assert moments[-1] >= starts["tests"] + 3, (starts, moments)
    assert starts["up"] <= moments[0]
    assert moments[-1] < starts["down"]  # sampled until the logs were in, not during down
    assert {"echo", "slow", "chatty"} <= set(stats["peaks"])
    assert variant["peak_memory_bytes"] > 0
