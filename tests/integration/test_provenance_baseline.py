"""A nightly that explains itself: two real runs of one matrix, the second on an image rebuilt
with another ``VERSION``, and ``report --baseline`` names the version change next to the test
that changed outcome on it, and lists quietly the variant the upgrade did not break.

The server's version comes from the image (``/etc/server-version``, written by the build), asked
with the spec's ``versions`` key; the suite speaks protocol 1 only, so the strict variant fails
on version 2 and the lenient one passes on both.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._matrix import Project

pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.timeout(600)]

STACK = Path(__file__).parent / "stacks" / "provenance_baseline"
BEFORE, AFTER = "1.4.0", "2.0.0"


@pytest.fixture
def images() -> Iterator[list[str]]:
    """This test's own image tag first; it and every image added to the list are removed
    afterwards (the build a rebuild left untagged)."""
    made = [f"stackmatrix-test/provenance-baseline:{secrets.token_hex(4)}"]
    yield made
    for found in made:
        subprocess.run(["docker", "image", "rm", "-f", found], capture_output=True, check=False)


def _project(root: Path, tag: str) -> Project:
    shutil.copy(STACK / "check.py", root / "check.py")
    service = {
        # The build arg comes from the host, so both runs read the same matrix file.
        "build": {"context": str(STACK), "args": {"VERSION": "${SERVER_VERSION:-0.0.0}"}},
        "image": tag,
        "init": True,
        "ports": ["7000"],
    }
    spec: dict[str, Any] = {
        "name": "nightly",
        "axes": {"mode": ["strict", "lenient"]},
        "overlays": [{"when": {}, "compose": {"services": {"app": service}}}],
        "ready": {"app": {"log": "^listening"}},
        "versions": {"app": {"command": ["cat", "/etc/server-version"]}},
        "tests": {
            "command": ["python3", "check.py"],
            "env": {"APP_ADDR": "${{ ports.app.7000 }}", "MODE": "${{ matrix.mode }}"},
            "timeout": "60s",
        },
        "run": {"jobs": 2, "up_timeout": "2m", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return Project(root)


def _image_id(journal: dict[str, Any], variant: str) -> str:
    found = next(v for v in journal["variants"] if v["id"] == variant)
    image_id: str = found["provenance"]["services"]["app"]["image_id"]
    return image_id


def test_report_names_the_version_change_beside_the_tests_it_broke(
    tmp_path: Path, images: list[str]
) -> None:
    image = images[0]
    project = _project(tmp_path, image)
    first = project.run("run", env={"SERVER_VERSION": BEFORE})
    assert first.returncode == 0, first.stdout + first.stderr
    night_one, journal_one = project.run_dir(), project.journal()
    images.append(_image_id(journal_one, "mode-strict"))
    second = project.run("run", "--build", env={"SERVER_VERSION": AFTER})
    assert second.returncode == 1, second.stdout + second.stderr  # the strict variant's test
    night_two, journal_two = project.run_dir(), project.journal()
    assert night_two != night_one
    for journal, version in ((journal_one, BEFORE), (journal_two, AFTER)):
        for variant in journal["variants"]:
            app = variant["provenance"]["services"]["app"]
            assert (app["version"], app["version_source"]) == (version, "command")
            assert app["image"] == image
    rebuilt = _image_id(journal_two, "mode-strict")
    assert rebuilt.startswith("sha256:")
    assert rebuilt != _image_id(journal_one, "mode-strict")

    out = tmp_path / "compared"
    done = project.run("report", str(night_two), "--baseline", str(night_one), "--out", str(out))

    assert done.returncode == 0, done.stdout + done.stderr  # no --fail-on: reports written
    summary = (out / "summary.md").read_text(encoding="utf-8")
    change = f"app {BEFORE} → {AFTER}"
    assert f"- 🔴 regression on `mode-strict`: 1 test; {change} since the baseline" in summary, (
        summary
    )
    assert (
        "- `mode-strict` · `version_check::test_speaks_protocol_1`: passed → failed ·"
        f" protocol 1 wanted, got {AFTER}" in summary
    ), summary
    assert "test_replies" not in summary.split("### Variants")[0]  # it passed both nights
    assert "Versions changed with no change of outcome:" in summary
    assert f"- {change} on `mode-lenient`" in summary
    # The variant table says what each night ran.
    row = next(ln for ln in summary.splitlines() if ln.startswith("| `mode-strict` |"))
    assert f" | app {AFTER} · {rebuilt[:19]}; python 3." in row, row
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"{change} since the baseline" in html
    assert f"<td>image id</td><td>{rebuilt}</td>" in html
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    strict = next(v for v in results["variants"] if v["id"] == "mode-strict")
    assert [c["text"] for c in strict["provenance_changes"]] == [change]

    gated = project.run(
        "report", str(night_two), "--baseline", str(night_one), "--out", str(out),
        "--fail-on", "regression",
    )  # fmt: skip
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "Traceback" not in gated.stderr
