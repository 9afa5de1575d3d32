"""What the prepare stage takes from a rendered compose file (no engine)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import prepare
from stackmatrix.engine.docker import docker_client
from stackmatrix.engine.job import networks_created
from stackmatrix.engine.prepare import Need, PullPolicy, _needs_of
from stackmatrix.matrix.expand import Variant


def test_images_to_pull_and_tagged_builds_to_make() -> None:
    data = {
        "services": {
            "db": {"image": "postgres:17"},
            "app": {"build": {"context": "."}, "image": "shop/app:1"},
            "untagged": {"build": {"context": "."}},
            "proxy": {"image": "${REGISTRY:-docker.io}/nginx:1"},
        }
    }

    needs = _needs_of(Variant("v", {}), data)

    # An untagged build is named after its variant's project (nothing to share), and compose
    # interpolates an image with ${...} from its own environment: both are left to compose.
    assert needs == {
        "db": Need("postgres:17"),
        "app": Need("shop/app:1", build=("v", "app")),
    }


def test_an_image_already_there_is_asked_once_and_keeps_its_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[str]] = []

    def engine(command: Sequence[str], **_kw: Any) -> str:
        calls.append(list(command))
        return "sha256:abc\tpostgres@sha256:def\n"

    monkeypatch.setattr(prepare, "run_engine", engine)
    outcome = prepare._pull(docker_client(), "postgres:17", PullPolicy.MISSING, threading.Event())

    assert (outcome.action, outcome.image_id, outcome.digest) == (
        "",
        "sha256:abc",
        "postgres@sha256:def",
    )
    assert [c[c.index("image") :][:2] for c in calls] == [["image", "inspect"]]  # no pull


def test_an_image_missing_under_policy_never_is_an_error_without_a_pull(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def engine(command: Sequence[str], **_kw: Any) -> str:
        raise DockerException(list(command), 1, b"", b"Error: No such image: postgres:17")

    monkeypatch.setattr(prepare, "run_engine", engine)
    outcome = prepare._pull(docker_client(), "postgres:17", PullPolicy.NEVER, threading.Event())
    assert outcome.error == "not on this engine, and the pull policy is 'never'"
    assert outcome.image_id == ""


@pytest.mark.parametrize(
    ("compose", "networks"),
    [
        ({"services": {"db": {}, "app": {}}}, 1),  # the project's default network
        ({"services": {"db": {"networks": ["back"]}, "app": {"networks": ["front", "back"]}},
          "networks": {"front": {}, "back": {}}}, 2),
        ({"services": {"db": {"networks": ["back"]}, "app": {}},
          "networks": {"back": {}}}, 2),  # app is on the default one
        ({"services": {"db": {"network_mode": "host"}}}, 0),
        ({"services": {"db": {"networks": ["shared"]}},
          "networks": {"shared": {"external": True}}}, 0),
    ],
    ids=["default", "two-declared", "declared-and-default", "host-mode", "external"],
)  # fmt: skip
def test_the_networks_a_stack_creates_are_counted(compose: dict[str, Any], networks: int) -> None:
    assert networks_created(compose) == networks
