"""The tests' own registry: real pushes and pulls, and what the engine does when a registry fails.

What these tests pin down about the engine (dockerd 20.10): a pull asks for the tag's manifest
with HEAD; when that fails it asks once more with GET (the HEAD answer has no body to read an
error from), and then gives up: no retry, no back-off. So one failing manifest request is
absorbed and two fail the pull, at once, with the status in the message.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from .conftest import IN_CI
from .registry import INSTALL_HINT, REGISTRY_BINARY, Registry, Request, local_registry, tiny_image

BASE_IMAGE = "debian:bookworm-slim"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def _require_registry_binary() -> None:
    """Skip without docker-registry locally; fail under CI=true, where it must be installed."""
    if shutil.which(REGISTRY_BINARY) is None:
        reason = f"{REGISTRY_BINARY} is not installed: {INSTALL_HINT}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def registry(docker_engine: DockerClient, tmp_path: Path) -> Iterator[Registry]:
    """A running registry with its fault front, stopped after the test."""
    _require_registry_binary()
    with local_registry(tmp_path) as running:
        yield running


def _image_id(reference: str) -> str | None:
    done = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", reference],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def _pull(reference: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "pull", reference], capture_output=True, text=True, check=False, timeout=60
    )


def _raw(address: str, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (without Date, which differs by the second) and body of one request."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, headers={"Accept": MANIFEST_TYPES})
        response = connection.getresponse()
        headers = [(k, v) for k, v in response.getheaders() if k.lower() != "date"]
        return response.status, headers, response.read()
    finally:
        connection.close()


def test_pushed_image_pulls_back_with_the_same_id(registry: Registry) -> None:
    original = _image_id(BASE_IMAGE)
    assert original is not None, f"{BASE_IMAGE} is missing: run scripts/bootstrap.sh"

    reference = registry.push(BASE_IMAGE, "stackmatrix/bookworm:v1")
    assert reference == f"{registry.address}/stackmatrix/bookworm:v1"
    registry.forget(reference)
    assert _image_id(reference) is None
    before = registry.manifest_requests("stackmatrix/bookworm", "v1")

    pulled = _pull(reference)

    assert pulled.returncode == 0, pulled.stderr
    assert f"Status: Downloaded newer image for {reference}" in pulled.stdout
    assert _image_id(reference) == original
    assert registry.manifest_requests("stackmatrix/bookworm", "v1") >= before + 1


def test_pull_of_an_image_gone_locally_downloads_its_layers(registry: Registry) -> None:
    with tiny_image() as image:
        original = _image_id(image)
        reference = registry.push(image, "stackmatrix/tiny:v1")
        registry.forget(reference)
    # Both of its tags are gone, so the image is too, layers and all.
    assert original is not None
    assert _image_id(original) is None

    pulled = _pull(reference)

    assert pulled.returncode == 0, pulled.stderr
    assert _image_id(reference) == original
    blob_downloads = [
        r
        for r in registry.access_log()
        if r.method == "GET" and r.path.startswith("/v2/stackmatrix/tiny/blobs/sha256:")
    ]
    # The image config and its one layer.
    assert len(blob_downloads) == 2
    assert {r.status for r in blob_downloads} == {200}


def test_front_answers_exactly_what_the_registry_answers(registry: Registry) -> None:
    with tiny_image() as image:
        registry.push(image, "stackmatrix/tiny:v1")
    _, _, manifest = _raw(registry.address, "GET", "/v2/stackmatrix/tiny/manifests/v1")
    layer_digest: str = json.loads(manifest)["layers"][0]["digest"]

    for method, path in [
        ("HEAD", "/v2/stackmatrix/tiny/manifests/v1"),
        ("GET", "/v2/stackmatrix/tiny/manifests/v1"),
        ("HEAD", f"/v2/stackmatrix/tiny/blobs/{layer_digest}"),
        ("GET", f"/v2/stackmatrix/tiny/blobs/{layer_digest}"),
        ("GET", "/v2/stackmatrix/tiny/manifests/missing"),
    ]:
        direct = _raw(registry.address, method, path)
        fronted = _raw(registry.front.address, method, path)
        assert fronted == direct, f"{method} {path}"
    status, headers, body = _raw(
        registry.front.address, "HEAD", "/v2/stackmatrix/tiny/manifests/v1"
    )
    assert status == 200
    assert body == b""
    assert dict(headers)["Content-Length"] == str(len(manifest))
    assert dict(headers)["Docker-Content-Digest"].startswith("sha256:")


def test_engine_pushes_and_pulls_through_the_front(registry: Registry) -> None:
    with tiny_image() as image:
        original = _image_id(image)
        reference = f"{registry.front.address}/stackmatrix/tiny:v1"
        subprocess.run(["docker", "tag", image, reference], check=True)
        pushed = subprocess.run(
            ["docker", "push", reference], capture_output=True, text=True, check=False
        )
        assert pushed.returncode == 0, pushed.stderr
        registry.forget(reference)
    assert original is not None
    assert _image_id(original) is None

    pulled = _pull(reference)

    assert pulled.returncode == 0, pulled.stderr
    assert _image_id(reference) == original
    # Uploads follow the registry's Location headers: they name the front, so they came through it.
    forwarded = {(r.method, r.path.split("/uploads/")[0]) for r in registry.front.forwarded}
    assert ("PATCH", "/v2/stackmatrix/tiny/blobs") in forwarded
    assert ("PUT", "/v2/stackmatrix/tiny/manifests/v1") in forwarded
    assert registry.front.injected == []


def test_two_503s_fail_the_pull_at_once_and_the_next_pull_succeeds(registry: Registry) -> None:
    with tiny_image() as image:
        registry.push(image, "stackmatrix/tiny:v1")
    registry.front.fail_manifest("stackmatrix/tiny", "v1", status=503, times=2)
    reference = f"{registry.front.address}/stackmatrix/tiny:v1"

    started = time.monotonic()
    first = _pull(reference)
    took = time.monotonic() - started

    assert first.returncode == 1
    assert first.stderr.strip() == (
        "Error response from daemon: received unexpected HTTP status: 503 Service Unavailable"
    )
    # One HEAD and one GET, then it gave up: no retries, no back-off. (The two may reach the
    # front on two connections at once, so the order they are recorded in is not asserted.)
    manifest = "/v2/stackmatrix/tiny/manifests/v1"
    assert sorted(registry.front.injected, key=lambda r: r.method) == [
        Request("GET", manifest, 503),
        Request("HEAD", manifest, 503),
    ]
    assert took < 5
    assert _image_id(reference) is None
    assert registry.manifest_requests("stackmatrix/tiny", "v1") == 0

    second = _pull(reference)

    assert second.returncode == 0, second.stderr
    assert _image_id(reference) is not None
    assert registry.manifest_requests("stackmatrix/tiny", "v1") == 1


def test_one_503_is_absorbed_by_the_engines_get_after_head(registry: Registry) -> None:
    with tiny_image() as image:
        registry.push(image, "stackmatrix/tiny:v1")
    registry.front.fail_manifest("stackmatrix/tiny", "v1", status=503, times=1)
    reference = f"{registry.front.address}/stackmatrix/tiny:v1"

    pulled = _pull(reference)

    assert pulled.returncode == 0, pulled.stderr
    manifest = "/v2/stackmatrix/tiny/manifests/v1"
    assert registry.front.injected == [Request("HEAD", manifest, 503)]
    assert Request("GET", manifest, 200) in registry.access_log()


def test_429_fails_the_pull_with_the_registrys_message(registry: Registry) -> None:
    with tiny_image() as image:
        registry.push(image, "stackmatrix/tiny:v1")
    registry.front.fail_manifest("stackmatrix/tiny", "v1", status=429)

    pulled = _pull(f"{registry.front.address}/stackmatrix/tiny:v1")

    assert pulled.returncode == 1
    assert pulled.stderr.strip() == (
        "Error response from daemon: toomanyrequests: "
        "too many requests (injected by the test front)"
    )
    manifest = "/v2/stackmatrix/tiny/manifests/v1"
    # The engine's HEAD and GET may reach the front's threads in either order.
    assert sorted(registry.front.injected, key=repr) == sorted(
        [Request("HEAD", manifest, 429), Request("GET", manifest, 429)], key=repr
    )


def test_404_fails_the_pull_naming_the_tag(registry: Registry) -> None:
    with tiny_image() as image:
        registry.push(image, "stackmatrix/tiny:v1")
    registry.front.fail_manifest("stackmatrix/tiny", "v1", status=404)
    reference = f"{registry.front.address}/stackmatrix/tiny:v1"

    for _ in range(2):
        pulled = _pull(reference)
        assert pulled.returncode == 1
        assert pulled.stderr.strip() == (
            f"Error response from daemon: manifest for {reference} not found: "
            "manifest unknown: manifest unknown"
        )
    assert _image_id(reference) is None
    # The image is there all along: only the front said otherwise.
    direct = _pull(f"{registry.address}/stackmatrix/tiny:v1")
    assert direct.returncode == 0, direct.stderr


def test_everything_is_gone_after_the_block(docker_engine: DockerClient, tmp_path: Path) -> None:
    _require_registry_binary()
    with local_registry(tmp_path) as running, tiny_image() as image:
        reference = running.push(image, "stackmatrix/tiny:v1")
        assert running.local_references() == [reference]
        addresses = [running.address, running.front.address]

    assert _image_id(reference) is None
    for address in addresses:
        host, port = address.rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError):
            http.client.HTTPConnection(host, int(port), timeout=2).request("GET", "/v2/")


def test_missing_registry_binary_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with (
        pytest.raises(FileNotFoundError, match="apt-get install docker-registry"),
        local_registry(tmp_path),
    ):
        pass
