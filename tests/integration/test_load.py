"""Load: twenty real stacks, four at a time, every report complete and nothing left behind.

Deselect with `-k 'not test_load'` when time is short.
"""

from __future__ import annotations

import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from ._matrix import make_project
from .conftest import labelled_objects

pytestmark = pytest.mark.usefixtures("docker_engine")

VARIANTS = 20
JOBS = 4


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_load_twenty_variants_four_at_a_time_complete_with_all_reports(tmp_path: Path) -> None:
    values = [f"s{i:02d}" for i in range(VARIANTS)]
    project = make_project(tmp_path, axes={"n": values}, run={"down_timeout": "2s"})

    started = time.monotonic()
    done = project.run("run", "--jobs", str(JOBS), timeout=600)
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stdout + done.stderr
    journal = project.journal()
    assert labelled_objects(journal["run_id"]) == set()  # right at exit, not eventually
    variants = journal["variants"]
    assert [v["id"] for v in variants] == [f"n-{value}" for value in values]
    assert {v["status"] for v in variants} == {"passed"}
    assert all(v["tests"]["passed"] == 2 for v in variants)
    run_dir = project.run_dir()
    for value in values:
        folder = run_dir / f"n-{value}"
        assert f"echo replied '{value}:hi'" in (folder / "tests.log").read_text()
        assert (folder / "logs" / "echo.log").read_text().startswith("listening")
        assert (folder / "compose.yaml").is_file()
        assert (folder / "junit.xml").is_file()
    merged = ElementTree.parse(run_dir / "junit.xml").getroot()  # noqa: S314 - our own output
    assert len(merged.findall(".//testcase")) == 2 * VARIANTS
    summary = (run_dir / "summary.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert all(f"n-{value}" in summary and f"n-{value}" in html for value in values)
    # --jobs is a ceiling that the run really reaches: variants before their down hold a job
    # slot; a stack coming down in the background does not, and at most --jobs of them do.
    working = [(v["started_at"], v["phase_starts"]["down"]) for v in variants]
    assert 2 <= _most_at_once(working) <= JOBS
    whole = [(v["started_at"], v["finished_at"]) for v in variants]
    assert _most_at_once(whole) <= 2 * JOBS
    assert len({v["project"] for v in variants}) == VARIANTS
    assert elapsed < 420, f"{VARIANTS} variants took {elapsed:.0f} s"
