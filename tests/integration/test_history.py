"""`stackmatrix report --history` over seven real nightly runs: a deliberately flaky test (its
failures fixed per night by a counter file), a test that breaks on the sixth night, and an image
rebuilt that same night; the page's flaky rates and counts are the runs' own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._matrix import HERE, Project, echo_service

pytestmark = pytest.mark.usefixtures("docker_engine")

NIGHTS = 7
FLAKY_NIGHTS = {1, 3, 4}  # as stacks/history_check.py
BROKEN_FROM = 5
HISTORY_RUNS_ENV = "STACKMATRIX_HISTORY_RUNS"  # keep the runs here for a look afterwards


def _project(root: Path, image: str) -> Project:
    shutil.copy(HERE / "stacks" / "history_check.py", root / "history_check.py")
    (root / "echo").mkdir()
    # The stamp is a build argument from the host's environment: a new one, a new image id.
    (root / "echo" / "Dockerfile").write_text(
        "FROM debian:bookworm-slim\nARG STAMP=none\nLABEL io.stackmatrix.test.stamp=$STAMP\n"
    )
    service = {
        **echo_service("${{ matrix.flavor }}"),
        "image": image,
        "build": {"context": "echo", "args": {"STAMP": "${HISTORY_STAMP}"}},
    }
    spec: dict[str, Any] = {
        "name": "hist",
        "axes": {"flavor": ["a", "b"]},
        "overlays": [{"when": {}, "compose": {"services": {"echo": service}}}],
        "ready": {"echo": {"tcp": 7000}},
        "tests": {
            "command": ["python3", "history_check.py"],
            "env": {
                "ECHO_ADDR": "${{ ports.echo.7000 }}",
                "HISTORY_NIGHT_FILE": str(root / "night"),
            },
            "timeout": "60s",
        },
        "run": {"jobs": 2, "up_timeout": "60s", "down_timeout": "2s"},
    }
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Project(root)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory, session_run_id: str) -> Iterator[list[Path]]:
    """Seven real runs, one a night (the night's number in a counter file the tests read)."""
    root = tmp_path_factory.mktemp("history")
    image = f"stackmatrix-it-history:{session_run_id}"
    project = _project(root, image)
    run_dirs = []
    _remove_image(image)
    try:
        for night in range(NIGHTS):
            (root / "night").write_text(str(night))
            stamp = "v2" if night >= BROKEN_FROM else "v1"
            if night == BROKEN_FROM:  # built anew, with the new stamp: a new image id
                _remove_image(image)
            done = project.run("run", env={"HISTORY_STAMP": stamp})
            failing = night in FLAKY_NIGHTS or night >= BROKEN_FROM
            assert done.returncode == (1 if failing else 0), done.stdout + done.stderr
            run_dirs.append(project.run_dir())
        keep = Path(os.environ.get(HISTORY_RUNS_ENV, "") or root)
        if keep != root:
            shutil.copytree(root / ".stackmatrix" / "runs", keep, dirs_exist_ok=True)
        yield run_dirs
    finally:
        _remove_image(image)


def _remove_image(image: str) -> None:
    subprocess.run(["docker", "image", "rm", "-f", image], capture_output=True, check=False)


def test_history_of_seven_real_nights(nights: list[Path], tmp_path: Path) -> None:
    assert len({d.name for d in nights}) == NIGHTS
    out = tmp_path / "report"
    done = Project(tmp_path).run(
        "report", str(nights[-1]), "--out", str(out), "--history", *map(str, nights[:-1])
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    page = (out / "history.html").read_text(encoding="utf-8")

    # The flaky test: failed on nights 1, 3 and 4 of 0..6: P F P F F P P.
    flaky_row = _row(page, "history_check::test_flaky")
    assert "flavor-a" in flaky_row
    assert "failed 3 of 7 nights, 4 flips" in flaky_row
    assert '<td class="num rate">43%</td>' in flaky_row
    assert flaky_row.count('class="cell fail"') == len(FLAKY_NIGHTS)
    assert "not failing now" in flaky_row
    # The broken test: failing since the sixth night.
    broken_row = _row(page, "history_check::test_broken")
    assert "flavor-b" in broken_row
    assert "failed 2 of 7 nights, 1 flip" in broken_row
    assert '<td class="num rate">29%</td>' in broken_row
    sixth = json.loads((nights[BROKEN_FROM] / "run.json").read_text())["run_id"]
    assert f'<td class="since">{sixth[:4]}-{sixth[4:6]}-{sixth[6:8]} {sixth}</td>' in broken_row
    assert "history_check::test_reply" not in page  # never failed: no row
    assert "7 nights" in page

    # The image rebuilt on the sixth night is a version change on that night.
    ids = [_image_id(d) for d in nights]
    assert len(set(ids[:BROKEN_FROM])) == 1
    assert ids[BROKEN_FROM] != ids[BROKEN_FROM - 1]
    change = f"echo image {_short(ids[BROKEN_FROM - 1])} → {_short(ids[BROKEN_FROM])}"
    assert f"flavor-a: {change}" in page
    assert f"flavor-b: {change}" in page
    marks = _row_of(page, '<tr class="versions-changed">')
    assert [cell.startswith('<td class="cell changed"') for cell in marks.split("</td>")[1:8]] == [
        night == BROKEN_FROM for night in range(NIGHTS)
    ]

    # What changed since the night before, in three lines: printed and in summary.md.
    lines = [ln.strip() for ln in done.stdout.splitlines() if " since " in ln]
    assert [ln.split(" since ")[0] for ln in lines] == ["New failures", "Fixed", "Version changes"]
    assert lines[0].endswith(": 0")
    assert lines[1].endswith(": 0")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "### Since the previous night" in summary


def _row(page: str, test: str) -> str:
    (row,) = [r for r in page.split("<tr>") if r.startswith(f'<td class="test">{test}')]
    return row


def _row_of(page: str, start: str) -> str:
    return page.split(start, 1)[1].split("</tr>", 1)[0]


def _image_id(run_dir: Path) -> str:
    journal = json.loads((run_dir / "run.json").read_text())
    found = {v["images"]["echo"]["id"] for v in journal["variants"]}
    (image_id,) = found
    assert isinstance(image_id, str)
    assert image_id.startswith("sha256:")
    return image_id


def _short(image_id: str) -> str:
    return image_id[: len("sha256:") + 12]
