"""The night an upstream image no longer starts: its variant never gets ready, yet its run
still records the image it ran, and ``report --baseline`` names the image change beside the
variant that broke.

The image is built here from ``debian:bookworm-slim``; a build arg decides whether its
command starts (and logs ``listening``) or exits at once.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._matrix import Project

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.timeout(600)]

DOCKERFILE = """\
FROM debian:bookworm-slim
ARG BROKEN=no
ENV BROKEN=$BROKEN
CMD ["sh", "-c", "if [ \\"$BROKEN\\" = yes ]; then echo crashed; exit 3; fi; \
echo listening; exec sleep infinity"]
"""


@pytest.fixture
def images() -> Iterator[list[str]]:
    """This test's own image tag first; it and every image added are removed afterwards."""
    made = [f"stackmatrix-test/provenance-failed-up:{secrets.token_hex(4)}"]
    yield made
    for found in made:
        subprocess.run(["docker", "image", "rm", "-f", found], capture_output=True, check=False)


def _project(root: Path, tag: str) -> Project:
    context = root / "image"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    service = {
        "build": {"context": str(context), "args": {"BROKEN": "${BROKEN:-no}"}},
        "image": tag,
        "init": True,
    }
    spec: dict[str, Any] = {
        "name": "nightly",
        "axes": {"mode": ["only"]},
        "overlays": [{"when": {}, "compose": {"services": {"app": service}}}],
        "ready": {"app": {"log": "^listening"}},
        "tests": {"command": ["python3", "-c", "pass"], "timeout": "60s"},
        "run": {"up_timeout": "1m", "ready_timeout": "20s", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return Project(root)


def _app(journal: dict[str, Any]) -> dict[str, str]:
    (variant,) = journal["variants"]
    app: dict[str, str] = variant["provenance"]["services"]["app"]
    return app


def test_an_image_that_no_longer_starts_is_still_named_against_the_baseline(
    tmp_path: Path, images: list[str]
) -> None:
    tag = images[0]
    project = _project(tmp_path, tag)
    first = project.run("run", env={"BROKEN": "no"})
    assert first.returncode == 0, first.stdout + first.stderr
    night_one, before = project.run_dir(), _app(project.journal())
    images.append(before["image_id"])

    second = project.run("run", "--build", env={"BROKEN": "yes"})
    assert second.returncode != 0, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    night_two, journal = project.run_dir(), project.journal()
    (variant,) = journal["variants"]
    assert variant["status"] == "error", variant
    after = _app(journal)
    assert after["image"] == before["image"] == tag
    assert after["image_id"].startswith("sha256:")
    assert after["image_id"] != before["image_id"]
    assert after["version"] == ""  # never ready: no server was asked

    out = tmp_path / "compared"
    done = project.run("report", str(night_two), "--baseline", str(night_one), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.md").read_text(encoding="utf-8")
    change = f"app image {before['image_id'][:19]} → {after['image_id'][:19]}"
    assert f"{change} since the baseline" in summary, summary
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    (row,) = [v for v in results["variants"] if v["id"] == "mode-only"]
    assert [c["aspect"] for c in row["provenance_changes"]] == ["image"]
