"""The prepare stage against a real registry: each unique image pulled once before the fan-out,
none on a second run, transient registry errors tried again, a missing tag named."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from python_on_whales import DockerClient

from tests.integration._matrix import Project, make_project
from tests.integration.conftest import labelled_objects
from tests.integration.registry import Registry, local_registry

IMAGES = {"a": ("base/bookworm", "v1", "debian:bookworm-slim"),
          "b": ("base/trixie", "v1", "debian:trixie-slim")}  # fmt: skip


@pytest.fixture(scope="module")
def registry(
    docker_engine: DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    with local_registry(tmp_path_factory.mktemp("registry")) as running:
        for name, tag, local in IMAGES.values():
            running.forget(running.push(local, f"{name}:{tag}"))
        yield running


def _project(root: Path, address: str, axes: dict[str, list[str]]) -> Project:
    """Variants on the echo stack whose image comes from the registry at *address*."""
    project = make_project(root, axes=axes)
    spec: dict[str, Any] = yaml.safe_load(project.matrix.read_text())
    for base, (name, tag, _local) in IMAGES.items():
        if base not in axes["base"]:
            continue
        image = {"services": {"echo": {"image": f"{address}/{name}:{tag}"}}}
        spec["overlays"].append({"when": {"base": [base]}, "compose": image})
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False))
    return project


def _heads(registry: Registry) -> dict[str, int]:
    """HEAD requests by tag per image: one is one pull (the engine keeps the manifest)."""
    counts = {}
    for base, (name, tag, _local) in IMAGES.items():
        path = f"/v2/{name}/manifests/{tag}"
        counts[base] = sum(
            1 for r in registry.access_log() if r.method == "HEAD" and r.path == path
        )
    return counts


def _forget_pulled(registry: Registry, address: str) -> None:
    for name, tag, _local in IMAGES.values():
        reference = f"{address}/{name}:{tag}"
        if reference in registry.local_references():
            registry.forget(reference)


def test_six_variants_pull_each_shared_image_once_then_not_at_all(
    registry: Registry, tmp_path: Path
) -> None:
    project = _project(tmp_path, registry.address, {"base": ["a", "b"], "n": ["1", "2", "3"]})
    _forget_pulled(registry, registry.address)
    before = _heads(registry)

    first = project.run("run", "--pull", "always", "--jobs", "3")

    assert first.returncode == 0, first.stdout + first.stderr
    journal = project.journal()
    assert len(journal["variants"]) == 6
    assert {v["status"] for v in journal["variants"]} == {"passed"}
    after = _heads(registry)
    assert {base: after[base] - before[base] for base in IMAGES} == {"a": 1, "b": 1}
    pulled = {i["image"]: i for i in journal["prepare"]["images"]}
    assert {i["action"] for i in pulled.values()} == {"pull"}
    for variant in journal["variants"]:
        image = variant["images"]["echo"]
        assert image["digest"].startswith(image["image"].rsplit(":", 1)[0] + "@sha256:")
        assert image["id"] == pulled[image["image"]]["id"]
        assert "pull" in variant["phases"]
    # Where the time went, in the report: the run's image stage and each variant's phases.
    page = (project.run_dir() / "report.html").read_text()
    assert "images first: " in page
    assert page.count("phases: pull ") == 6
    manifests = len([r for r in registry.access_log() if "/manifests/" in r.path])

    second = project.run("run")  # run.pull: missing

    assert second.returncode == 0, second.stdout + second.stderr
    assert len([r for r in registry.access_log() if "/manifests/" in r.path]) == manifests
    again = project.journal()["prepare"]["images"]
    assert {i["action"] for i in again} == {"present"}


def test_a_registry_that_answers_503_twice_is_tried_again(
    registry: Registry, tmp_path: Path
) -> None:
    front = registry.front.address
    project = _project(tmp_path, front, {"base": ["a"]})
    _forget_pulled(registry, front)
    name, tag, _local = IMAGES["a"]
    registry.front.fail_manifest(name, tag, status=503, times=2)

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(registry.front.injected) == 2
    (image,) = project.journal()["prepare"]["images"]
    assert (image["action"], "error" in image) == ("pull", False)
    assert image["seconds"] >= 1.0  # the second try waited a second


def test_a_missing_tag_fails_its_variants_and_the_rest_run(
    registry: Registry, tmp_path: Path, docker_engine: DockerClient
) -> None:
    front = registry.front.address
    project = _project(tmp_path, front, {"base": ["a", "b"]})
    _forget_pulled(registry, front)
    name, tag, _local = IMAGES["b"]
    registry.front.fail_manifest(name, tag, status=404)

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    journal = project.journal()
    variants = {v["id"]: v for v in journal["variants"]}
    assert variants["base-a"]["status"] == "passed"
    failed = variants["base-b"]
    assert failed["status"] == "error"
    assert failed["reason"].startswith(f"service echo: image {front}/{name}:{tag}: ")
    assert f"{front}/{name}:{tag} not found" in failed["reason"]
    assert "tries" not in failed["reason"]  # a missing tag is not tried again
    assert not failed["project"]  # no stack came up for it
    assert labelled_objects(journal["run_id"]) == set()
    summary = (project.run_dir() / "summary.md").read_text()
    assert "not found" in summary
    assert json.loads((project.run_dir() / "run.json").read_text())["exit_code"] == 3


def _processes() -> str:
    """The command line of every process on this host, one a line."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout


def test_ctrl_c_stops_the_builds_and_pulls_of_stackmatrix_pull(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    tag = f"stackmatrix-it-slow-{secrets.token_hex(4)}:1"
    nap = f"sleep 120.{secrets.randbelow(10**6):06d}"  # no other process on this host has it
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "Dockerfile").write_text(
        f"FROM debian:bookworm-slim\nRUN echo building && {nap}\n"
    )
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        extra_services={"slow": {"image": tag, "build": {"context": "slow"}}},
    )
    pull = project.popen("pull")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ps = _processes()
            if nap in ps:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the build never started")
        pull.send_signal(signal.SIGINT)
        began = time.monotonic()
        output, _ = pull.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if pull.poll() is None:
            os.kill(pull.pid, signal.SIGKILL)
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
    assert pull.returncode == 130, output
    assert took < 15, f"stackmatrix pull took {took:.1f}s to stop"
    assert "stackmatrix: error: interrupted (SIGINT): pulls stopped" in output
    assert "Traceback" not in output
    ps = _processes()
    assert nap not in ps  # the build was stopped, not left running
