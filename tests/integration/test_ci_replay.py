"""A CI run played locally: gha-matrix shards, one run per shard, one merged report.

It must say exactly what a single local run of the same matrix says.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from junitparser import JUnitXml

from ._matrix import make_project

pytestmark = pytest.mark.usefixtures("docker_engine")


def _testcases(junit: Path) -> set[tuple[str, str, str]]:
    """(classname, name, outcome) of every testcase of a merged report."""
    cases = set()
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            outcome = type(case.result[0]).__name__ if case.result else "passed"
            cases.add((case.classname, case.name, outcome))
    return cases


def _statuses(journal: dict[str, Any]) -> dict[str, str]:
    return {v["id"]: v["status"] for v in journal["variants"]}


def test_sharded_ci_run_merges_to_what_a_single_run_says(tmp_path: Path) -> None:
    # The experimental variant really fails, so the comparison covers failures too.
    project = make_project(
        tmp_path,
        axes={"flavor": ["a", "b", "fail"]},
        include=[{"flavor": "fail", "experimental": True}],
        tests_env={"CHECK_MODE": "{{ matrix.flavor }}"},
    )

    # The "matrix" job.
    shown = project.run("gha-matrix", "--shards", "2")
    assert shown.returncode == 0, shown.stderr
    include = json.loads(shown.stdout)["include"]
    assert [entry["shard"] for entry in include] == ["1/2", "2/2"]

    # The "variants" jobs: each on its own machine, each uploading out/runs/ without `latest`.
    artifacts = tmp_path / "artifacts"
    for entry in include:
        done = project.run("run", "--shard", entry["shard"], "--out", f"out-{entry['shard'][0]}")
        assert done.returncode == 0, done.stdout + done.stderr
        run_dir = project.run_dir(f"out-{entry['shard'][0]}")
        shutil.copytree(run_dir, artifacts / run_dir.name)

    # The "report" job.
    shards = sorted(str(p) for p in artifacts.iterdir())
    merged = project.run("report", *shards, "--out", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stdout + merged.stderr

    # The same matrix run once, locally.
    single = project.run("run", "--out", "single")
    assert single.returncode == 0, single.stdout + single.stderr
    single_dir = project.run_dir("single")

    shard_statuses: dict[str, str] = {}
    for shard in shards:
        shard_statuses.update(_statuses(json.loads((Path(shard) / "run.json").read_text())))
    assert shard_statuses == _statuses(project.journal("single"))
    assert shard_statuses == {
        "flavor-a": "passed",
        "flavor-b": "passed",
        "flavor-fail": "experimental-failed",
    }
    assert _testcases(tmp_path / "merged" / "junit.xml") == _testcases(single_dir / "junit.xml")
    summary = (tmp_path / "merged" / "summary.md").read_text()
    for variant in shard_statuses:
        assert variant in summary
