"""Provenance on real stacks: what each service really ran, as run.json records it.

One variant brings up five services: PostgreSQL, Redis and Valkey built from Debian's
packages (their versions read over their own protocols), a service built with a ``VERSION``
build arg (asked with a command), and one pulled from a registry on loopback (so its image has
a repo digest) whose log names its version with a secret in it, and one whose version
pattern would cut a piece out of that secret. The expected values come from
the images themselves (``postgres --version``, ``redis-server --version``, ``docker image
inspect``), never from a number written here.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from python_on_whales import DockerClient

from ._matrix import Project
from .registry import Registry, local_registry

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "stackmatrix-example/postgres:15"
REDIS = "stackmatrix-example/redis:bookworm"
VALKEY = "stackmatrix-example/valkey:trixie"  # Valkey is packaged from trixie on
APP_VERSION = "2.4.1-rc.3"
APP = f"stackmatrix-test/provenance-app:{APP_VERSION}"
SIGNING_KEY = "k3y-provenance-9f8e7d6c"
MASK = "••••••"


@pytest.fixture(scope="module")
def registry(
    docker_engine: DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    with local_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def _docker(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def _matrix(root: Path, box_image: str) -> Project:
    images = ROOT / "examples" / "images"
    services: dict[str, Any] = {
        "db": {
            "build": {
                "context": str(images / "postgres"),
                "args": {"SUITE": "bookworm", "PG": "15"},
            },
            "image": POSTGRES,
            "ports": ["5432"],
        },
        "cache": {
            "build": {"context": str(images / "redis"), "args": {"SUITE": "bookworm"}},
            "image": REDIS,
            "ports": ["6379"],
        },
        "valkey": {
            "build": {
                "context": str(images / "redis"),
                "args": {"SUITE": "trixie", "SERVER": "valkey"},
            },
            "image": VALKEY,
            "ports": ["6379"],
        },
        "app": {
            "build": {
                "context": str(Path(__file__).parent / "stacks" / "provenance"),
                "args": {"VERSION": APP_VERSION},
            },
            "image": APP,
            "init": True,
        },
        "box": {
            "image": box_image,
            "init": True,
            "environment": {"SIGNING_KEY": SIGNING_KEY},
            "command": [
                "sh",
                "-c",
                'echo "started, version 3.1.4+$$SIGNING_KEY"; exec sleep infinity',
            ],
        },
        # A log line whose version pattern would cut the secret: only masking comes out.
        "stamp": {
            "image": box_image,
            "init": True,
            "environment": {"SIGNING_KEY": SIGNING_KEY},
            "command": ["sh", "-c", 'echo "build $$SIGNING_KEY"; exec sleep infinity'],
        },
    }
    spec = {
        "name": "prov",
        "axes": {"flavor": ["a"]},
        "overlays": [{"when": {}, "compose": {"services": services}}],
        "ready": {
            "db": {"postgres": 5432},
            "cache": {"redis": 6379},
            "valkey": {"redis": 6379},
            "box": {"log": "^started"},
            "stamp": {"log": "^build"},
        },
        "versions": {
            "app": {"command": ["cat", "/etc/server-version"]},
            "box": {"log": r"started, version (\S+)"},
            "stamp": {"log": r"build \w+-\w+-(\w+)"},
        },
        "tests": {
            "command": ["python3", "-c", "pass"],
            "versions": ["python3", "-m", "pip", "list", "--format=freeze"],
            "timeout": "60s",
        },
        "run": {"up_timeout": "5m", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Project(root)


@pytest.fixture(scope="module")
def provenance(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    box = registry.push("debian:bookworm-slim", "prov/box:1")  # pushed: it has a repo digest
    project = _matrix(tmp_path_factory.mktemp("provenance"), box)
    # The tests' python3 is this interpreter: its packages are the ones to be recorded.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

    done = project.run("run", env={"PATH": path}, timeout=540)

    assert done.returncode == 0, done.stdout + done.stderr
    (variant,) = project.journal()["variants"]
    result: dict[str, Any] = variant["provenance"]
    result["box_reference"] = box
    result["run_dir"] = str(project.run_dir())
    return result


def test_postgres_and_redis_say_the_versions_their_images_hold(provenance: dict[str, Any]) -> None:
    said = _docker("run", "--rm", POSTGRES, "postgres", "--version")
    postgres = re.search(r"\(PostgreSQL\) (.+)", said)
    assert postgres is not None, said
    said = _docker("run", "--rm", REDIS, "redis-server", "--version")
    redis = re.search(r"v=(\S+)", said)
    assert redis is not None, said

    said = _docker("run", "--rm", VALKEY, "valkey-server", "--version")
    valkey = re.search(r"v=(\S+)", said)
    assert valkey is not None, said

    services = provenance["services"]
    assert services["db"]["version"] == postgres[1]
    assert services["db"]["version_source"] == "postgres"
    assert services["cache"]["version"] == redis[1]
    assert services["cache"]["version_source"] == "redis"
    # Valkey says the Redis version it is compatible with too; its own is the one recorded.
    assert services["valkey"]["version"] == f"valkey {valkey[1]}"
    assert services["valkey"]["version_source"] == "valkey"


def test_each_service_names_its_image_and_the_id_it_ran(provenance: dict[str, Any]) -> None:
    services = provenance["services"]
    box = provenance["box_reference"]
    assert sorted(services) == ["app", "box", "cache", "db", "stamp", "valkey"]
    for service, reference in (("db", POSTGRES), ("cache", REDIS), ("app", APP), ("box", box)):
        assert services[service]["image"] == reference
        assert services[service]["image_id"] == _docker(
            "image", "inspect", "--format", "{{.Id}}", reference
        )
    # Built here: no registry ever gave them a digest. Pushed: the registry's digest.
    assert [services[s]["digest"] for s in ("db", "cache", "app")] == ["", "", ""]
    name = box.rsplit(":", 1)[0]
    digests = _docker("image", "inspect", "--format", "{{json .RepoDigests}}", box)
    assert services["box"]["digest"].startswith(f"{name}@sha256:")
    assert services["box"]["digest"] in digests


def test_a_command_of_the_spec_reads_the_version_the_build_wrote(
    provenance: dict[str, Any],
) -> None:
    app = provenance["services"]["app"]
    assert (app["version"], app["version_source"]) == (APP_VERSION, "command")


def test_a_version_that_holds_a_secret_is_masked(provenance: dict[str, Any]) -> None:
    box = provenance["services"]["box"]
    assert (box["version"], box["version_source"]) == (f"3.1.4+{MASK}", "log")
    assert provenance["services"]["stamp"]["version"] == ""  # its pattern finds only the mask
    assert SIGNING_KEY not in repr(provenance)
    assert SIGNING_KEY.rpartition("-")[2] not in repr(provenance)


def test_the_tests_python_and_packages_are_those_of_their_environment(
    provenance: dict[str, Any],
) -> None:
    assert provenance["python"] == platform.python_version()
    packages = provenance["packages"]
    for name in ("pydantic", "python-on-whales", "PyYAML"):
        assert packages[name] == importlib.metadata.version(name)
    assert 10 <= len(packages) <= 200


def test_no_artifact_of_the_run_holds_the_secret_or_a_piece_of_it(
    provenance: dict[str, Any],
) -> None:
    run_dir = Path(provenance["run_dir"])
    for name in ("run.json", "results.json", "junit.xml", "summary.md", "report.html"):
        assert (run_dir / name).is_file(), name
    pieces = (SIGNING_KEY, SIGNING_KEY.rpartition("-")[2], SIGNING_KEY.partition("-")[2])
    leaks = []
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or path.name == "compose.yaml":  # the one file that must hold it
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        leaks += [f"{path.relative_to(run_dir)}: {piece}" for piece in pieces if piece in text]
    assert leaks == []
    version = f"3.1.4+{MASK}"
    junit = (run_dir / "junit.xml").read_text(encoding="utf-8")
    assert f'name="stackmatrix.provenance.service.box.version" value="{version}"' in junit
    # summary.md's cell is one short line, cut before the fifth service: no leak is all it owes.
    assert version in (run_dir / "report.html").read_text(encoding="utf-8")
    for name in ("results.json", "run.json"):  # JSON may write the mask as \u2022
        data = json.loads((run_dir / name).read_text(encoding="utf-8"))
        assert version in json.dumps(data, ensure_ascii=False), name
