"""The bootstrap's engine check: a dockerd that answers but cannot run a container is caught."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.integration.second_engine import SecondEngine, second_engine

CHECK = Path(__file__).parents[2] / "scripts" / "check-engine.sh"


@pytest.fixture(scope="module")
def engine_without_bridge(docker_engine: DockerClient) -> Iterator[SecondEngine]:
    with second_engine() as engine:
        yield engine


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_the_working_engine_passes_both_checks(docker_engine: DockerClient) -> None:
    for args in (["bridge"], ["container", "debian:bookworm-slim"]):
        outcome = _check(*args)
        assert (outcome.returncode, outcome.stdout, outcome.stderr) == (0, "", "")


def test_an_engine_without_a_default_bridge_is_named(engine_without_bridge: SecondEngine) -> None:
    outcome = _check("bridge", env=engine_without_bridge.env())

    assert outcome.returncode == 1
    assert outcome.stdout == (
        f"the Docker engine at {engine_without_bridge.host} has no default bridge network"
        " (docker network inspect bridge: Error response from daemon: network bridge not found);"
        " restart dockerd without --bridge none\n"
    )


def test_a_container_that_cannot_start_is_named(engine_without_bridge: SecondEngine) -> None:
    outcome = _check("container", "debian:bookworm-slim", env=engine_without_bridge.env())

    assert outcome.returncode == 1
    assert outcome.stdout.startswith(
        f"the Docker engine at {engine_without_bridge.host} cannot start a container on the"
        " default bridge: "
    )


def test_a_lost_bridge_interface_is_named(tmp_path: Path, docker_engine: DockerClient) -> None:
    # Deleting the real docker0 would break every other test on this machine: a docker front
    # reports a default bridge whose interface does not exist, the state another dockerd leaves.
    front = tmp_path / "docker"
    front.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        '  "network inspect") echo sm-gone0 ;;\n'  # the bridge network names its interface
        '  "context show") echo default ;;\n'  # the local, rootful engine
        '  info*) echo "[name=seccomp] host" ;;\n'
        "esac\n"
    )
    front.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}

    outcome = _check("bridge", env=env)

    assert outcome.returncode == 1
    assert outcome.stdout == (
        "the Docker engine has lost its default bridge interface sm-gone0 (containers cannot"
        " start); restart dockerd to recreate it\n"
    )
