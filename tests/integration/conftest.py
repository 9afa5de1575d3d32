"""Integration-test foundation: a real engine, unique run ids, guaranteed teardown, leak checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

LABEL = "io.stackmatrix.run"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def labelled_objects(run_id: str | None = None) -> set[str]:
    """Every container, network and volume carrying the stackmatrix run label (of one run)."""
    label_filter = f"label={LABEL}" if run_id is None else f"label={LABEL}={run_id}"
    found: set[str] = set()
    for kind in ("container", "network", "volume"):
        listing = ["ls", "-aq"] if kind == "container" else ["ls", "-q"]
        out = subprocess.run(
            ["docker", kind, *listing, "--filter", label_filter],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found.update(f"{kind}:{line}" for line in out.split())
    return found


@pytest.fixture(scope="session")
def docker_engine() -> DockerClient:
    """A reachable Docker engine with Compose v2; skips locally, fails under CI=true."""
    client = DockerClient()
    try:
        client.info()
        client.compose.version()
    except (DockerException, FileNotFoundError) as error:
        reason = f"no usable Docker engine/compose ({error}); run scripts/bootstrap.sh"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return client


@pytest.fixture(scope="session")
def session_run_id() -> str:
    """A run id unique to this test session; tests derive their project names from it."""
    return "t" + secrets.token_hex(4)


@pytest.fixture(autouse=True)
def _no_labelled_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any integration test that leaves a labelled container, network or volume behind."""
    if request.node.get_closest_marker("integration") is None:
        yield
        return
    request.getfixturevalue("docker_engine")
    before = labelled_objects()
    yield
    leaked = labelled_objects() - before
    # Objects of another process's run on this engine vanish when it tears down; a leak stays.
    deadline = time.monotonic() + 10
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked &= labelled_objects()
    if leaked:
        pytest.fail(f"Docker objects with label {LABEL} left behind: {sorted(leaked)}")


ComposeUp = Callable[[Path, str], DockerClient]


@pytest.fixture
def compose_up(docker_engine: DockerClient, session_run_id: str) -> Iterator[ComposeUp]:
    """Bring up compose files under unique project names; always torn down afterwards."""
    started: list[DockerClient] = []
    counter = iter(range(1_000_000))

    def up(compose_file: Path, name: str) -> DockerClient:
        project = f"{name}-{session_run_id}-{next(counter)}"
        client = DockerClient(compose_files=[compose_file], compose_project_name=project)
        started.append(client)
        client.compose.up(detach=True, wait=True, quiet=True)
        return client

    yield up
    for client in started:
        client.compose.down(volumes=True, remove_orphans=True, timeout=2, quiet=True)
