"""The repo's own example matrix, for real: PostgreSQL 13 and 17 with the shop's test suite.

The shop's stock feed uses MERGE, which PostgreSQL 13 lacks: the matrix must find exactly that,
on the experimental PostgreSQL 13 variant only, and the run must still pass. The report is then
opened in headless Chromium as a person would see it (STACKMATRIX_SCREENSHOT=PATH keeps a
screenshot; docs/report.png is made this way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import junitparser
import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
VARIANTS = ("postgres-13_redis-off", "postgres-17_redis-on")

# On a fresh machine the first test also builds the PostgreSQL and Redis images.
pytestmark = [pytest.mark.usefixtures("docker_engine"), pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example")
    # The tests' `python` must be the one that has the shop's test dependencies.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "stackmatrix", "run", "--only", *VARIANTS, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PATH": path, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return (out / "runs" / "latest").resolve()


def test_the_matrix_finds_the_merge_incompatibility_on_postgres_13_only(example_run: Path) -> None:
    variants = {v["id"]: v for v in json.loads((example_run / "run.json").read_text())["variants"]}
    old, new = variants["postgres-13_redis-off"], variants["postgres-17_redis-on"]

    assert new["status"] == "passed"
    assert new["tests"]["total"] >= 20
    assert new["tests"]["failed"] == 0
    assert old["status"] == "experimental-failed"
    assert old["tests"]["failed"] >= 1
    assert old["tests"]["passed"] >= 20

    summary = (example_run / "summary.md").read_text()
    grid = summary.split("did not pass on every variant", 1)[1]
    feed_rows = [row for row in grid.splitlines() if row.startswith("|") and "stock_feed" in row]
    assert feed_rows
    for row in feed_rows:  # fails on 13, passes on 17
        assert row.index("❌") < row.index("✅")
    assert 'syntax error at or near "MERGE"' in summary
    assert (example_run / "postgres-17_redis-on" / "logs" / "cache.log").read_text()
    stats = json.loads((example_run / "postgres-17_redis-on" / "stats.json").read_text())
    assert {"db", "cache"} <= set(stats["peaks"])


def test_the_real_report_in_a_browser(example_run: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        reason = "chromium is not installed (scripts/bootstrap.sh installs it)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    screenshot = Path(os.environ.get("STACKMATRIX_SCREENSHOT") or tmp_path / "report.png")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
    ]  # fmt: skip
    page = (example_run / "report.html").as_uri()
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", page],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "postgres-13_redis-off" in dom
    assert "postgres-17_redis-on" in dom
    assert 'syntax error at or near "MERGE"' in dom.replace("&quot;", '"')
    assert dom.count('<img class="plot"') == 2  # the resource plots, one per variant
    subprocess.run(
        [chromium, *flags, "--window-size=1280,2000", f"--screenshot={screenshot}", page],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.stat().st_size > 20_000


def _stackmatrix(*args: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "stackmatrix", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": path, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _junit_cases(path: Path) -> list[str]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = [xml] if isinstance(xml, junitparser.TestSuite) else list(xml)
    return [f"{case.classname}::{case.name}" for suite in suites for case in suite]


def test_run_failed_runs_the_failed_variants_then_only_their_failed_tests(
    example_run: Path, tmp_path: Path
) -> None:
    first = json.loads((example_run / "run.json").read_text())
    failed_before = {
        v["id"]: v["tests"]["failed"] for v in first["variants"] if v["status"] != "passed"
    }
    assert list(failed_before) == ["postgres-13_redis-off"]
    out = tmp_path / "out"

    again = _stackmatrix("run", "--failed", str(example_run), "--out", str(out))

    assert again.returncode == 0, again.stdout + again.stderr
    rerun = json.loads((out / "runs" / "latest" / "run.json").read_text())
    assert rerun["rerun_of"] == first["run_id"]
    assert [v["id"] for v in rerun["variants"]] == ["postgres-13_redis-off"]
    whole = _junit_cases(out / "runs" / "latest" / "postgres-13_redis-off" / "junit.xml")
    assert len(whole) == first["variants"][0]["tests"]["total"]

    only = _stackmatrix("run", "--failed", str(example_run), "--failed-tests", "--out", str(out))

    assert only.returncode == 0, only.stdout + only.stderr
    latest = out / "runs" / "latest"
    cases = _junit_cases(latest / "postgres-13_redis-off" / "junit.xml")
    assert len(cases) == failed_before["postgres-13_redis-off"]
    assert all("stock_feed" in case for case in cases)
    assert json.loads((latest / "run.json").read_text())["rerun_tests"] is True

    # The matrix of a CI re-run: only the variant that failed.
    matrix = _stackmatrix("gha-matrix", "--failed", str(example_run))
    assert matrix.returncode == 0, matrix.stderr
    assert [e["id"] for e in json.loads(matrix.stdout)["include"]] == ["postgres-13_redis-off"]
