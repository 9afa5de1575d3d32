"""A CI run played locally: gha-matrix shards, one run per shard, one merged report; and the
reusable workflow (.github/workflows/matrix.yml) replayed step by step, its scripts run as the
runner runs them, its uploads and downloads copied the way the artifact actions lay them out.

Either must say exactly what a single local run of the same matrix says.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
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
        tests_env={"CHECK_MODE": "${{ matrix.flavor }}"},
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


# -- the reusable workflow, step by step ---------------------------------------------------------

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "matrix.yml"
_PATH = re.compile(r"\b(inputs|matrix|steps|env|runner|github|strategy|needs)((?:\.[\w-]+)+)")
_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass
class _Job:
    """What one job of the replayed workflow sees: its contexts and its own runner folder."""

    contexts: dict[str, Any]
    temp: Path
    env: dict[str, str] = field(default_factory=dict)
    failed: bool = False

    def lookup(self, path: str) -> Any:
        head, *keys = path.split(".")
        value: Any = self.contexts.get(head, {}) if head != "env" else self.env
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def evaluate(self, expression: str) -> Any:
        """The few expression forms the workflow uses: context paths, ``||``, ``&&``, ``==``,
        ``!=``, quoted strings, ``always()`` and ``success()``."""
        python = _PATH.sub(lambda m: f"_get({m[0]!r})", expression)
        python = python.replace("&&", " and ").replace("||", " or ")
        python = python.replace("always()", "True").replace("success()", "(not _failed)")
        return eval(python, {"_get": self.lookup, "_failed": self.failed})  # noqa: S307

    def fill(self, template: str) -> str:
        return _TEMPLATE.sub(lambda m: _text(self.evaluate(m[1])), template)


def _upload(job: _Job, options: dict[str, Any], store: Path) -> None:
    """upload-artifact: the one folder given, less the `!` paths, as the artifact's root."""
    lines = [job.fill(line) for line in str(options["path"]).splitlines() if line.strip()]
    (source,) = [Path(line) for line in lines if not line.startswith("!")]
    # Compared as written, not resolved: `latest` is a link to the run directory itself.
    excluded = {Path(line[1:]).absolute() for line in lines if line.startswith("!")}
    name = job.fill(options["name"])
    if options.get("overwrite") is True:
        shutil.rmtree(store / name, ignore_errors=True)
    assert not (store / name).exists(), f"artifact {name} uploaded twice"
    shutil.copytree(
        source, store / name, symlinks=True,
        ignore=lambda d, names: [n for n in names if (Path(d) / n).absolute() in excluded],
    )  # fmt: skip


def _download(job: _Job, options: dict[str, Any], store: Path) -> None:
    """download-artifact with merge-multiple: every matching artifact's files in one folder."""
    assert options["merge-multiple"] is True
    target = Path(job.fill(options["path"]))
    for artifact in sorted(store.iterdir()):
        if fnmatch.fnmatchcase(artifact.name, job.fill(options["pattern"])):
            shutil.copytree(artifact, target, dirs_exist_ok=True, symlinks=True)


def _index(cache: Path) -> list[str]:
    index = cache / "index.json"
    saved: list[str] = json.loads(index.read_text()) if index.exists() else []
    return saved


def _cache_restore(job: _Job, options: dict[str, Any], cache: Path) -> None:
    """actions/cache/restore: the entry of the exact key, else the newest whose key starts with
    the first restore key that matches any."""
    saved = _index(cache)
    key = job.fill(options["key"])
    prefixes = [job.fill(line) for line in options.get("restore-keys", "").splitlines()]
    found = [entry for entry in saved if entry == key]
    for prefix in (p for p in prefixes if p.strip()):
        found = found or [entry for entry in saved if entry.startswith(prefix)]
    if found:
        shutil.copytree(cache / str(saved.index(found[-1])), Path(job.fill(options["path"])))


def _cache_save(job: _Job, options: dict[str, Any], cache: Path) -> None:
    saved = _index(cache)
    key = job.fill(options["key"])
    assert key not in saved, f"cache key {key} saved twice"
    shutil.copytree(Path(job.fill(options["path"])), cache / str(len(saved)))
    (cache / "index.json").write_text(json.dumps([*saved, key]))


def _run_job(spec: dict[str, Any], job: _Job, *, workspace: Path, store: Path) -> dict[str, Any]:
    """Every step of *spec* as the runner would: returns the job's step outputs."""
    job.env = {k: job.fill(str(v)) for k, v in {**WORKFLOW_ENV, **spec.get("env", {})}.items()}
    outputs: dict[str, Any] = {}
    job.contexts["steps"] = outputs
    workdir = workspace / job.fill(spec["defaults"]["run"]["working-directory"])
    for step in spec["steps"]:
        condition = step.get("if", "success()")
        if not re.search(r"\b(always|success|failure|cancelled)\(\)", condition):
            condition = f"success() && ({condition})"  # as GitHub reads a bare condition
        if not job.evaluate(condition):
            continue
        uses = step.get("uses", "")
        if uses.startswith(("actions/checkout@", "actions/setup-python@")):
            continue  # the project folder is the checkout; this Python runs stackmatrix
        if uses.startswith("actions/upload-artifact@"):
            _upload(job, step["with"], store)
            continue
        if uses.startswith("actions/download-artifact@"):
            _download(job, step["with"], store)
            continue
        if uses.startswith("actions/cache/restore@"):
            _cache_restore(job, step["with"], store.parent / "cache")
            continue
        if uses.startswith("actions/cache/save@"):
            _cache_save(job, step["with"], store.parent / "cache")
            continue
        assert not uses, f"no replay for {uses}"
        if step.get("name") == "Install stackmatrix":
            continue  # installed already: the stackmatrix under test
        output = job.temp / f"output-{len(outputs)}"
        output.touch()
        env = {
            **os.environ, "NO_COLOR": "1", **job.env,
            **{k: job.fill(str(v)) for k, v in step.get("env", {}).items()},
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RUNNER_TEMP": str(job.temp), "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(job.temp / "step_summary.md"), "GITHUB_ACTIONS": "true",
        }  # fmt: skip
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", job.fill(step["run"])],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        job.failed = job.failed or done.returncode != 0
        assert done.returncode == 0, f"{step.get('name')}: {done.stdout}{done.stderr}"
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text().splitlines() if line]
            outputs[step["id"]] = {"outputs": dict(pairs)}
    return outputs


WORKFLOW_ENV: dict[str, Any] = {}


def test_the_reusable_workflow_replayed_merges_to_what_a_single_run_says(tmp_path: Path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    WORKFLOW_ENV.update(workflow.get("env", {}))
    jobs = workflow["jobs"]
    declared = (workflow["on"] if "on" in workflow else workflow[True])["workflow_call"]
    inputs = {name: spec["default"] for name, spec in declared["inputs"].items()}
    inputs.update({"shards": 2, "stackmatrix": ".", "baseline": True})
    (tmp_path / "project").mkdir()
    project = make_project(
        tmp_path / "project",
        axes={"flavor": ["a", "b", "fail"]},
        include=[{"flavor": "fail", "experimental": True}],
        tests_env={"CHECK_MODE": "${{ matrix.flavor }}"},
    )
    store = tmp_path / "artifacts"
    store.mkdir()
    (tmp_path / "cache").mkdir()
    github = {"run_attempt": "1", "ref_name": "main", "run_id": "7", "base_ref": ""}

    def new_job(name: str, run_id: str = "7", **contexts: Any) -> _Job:
        temp = tmp_path / "runners" / name
        temp.mkdir(parents=True)
        return _Job({"inputs": inputs, "github": {**github, "run_id": run_id},
                     "runner": {"temp": str(temp)}, **contexts}, temp)  # fmt: skip

    # The "matrix" job.
    matrix_job = new_job("matrix")
    _run_job(jobs["matrix"], matrix_job, workspace=project.root, store=store)
    include = json.loads(matrix_job.fill(jobs["matrix"]["outputs"]["matrix"]))["include"]
    assert [entry["shard"] for entry in include] == ["1/2", "2/2"]

    # The "variants" jobs, each on a runner of its own.
    for index, entry in enumerate(include):
        job = new_job(f"variants-{index}", matrix=entry,
                      strategy={"job-index": index, "job-total": len(include)})  # fmt: skip
        _run_job(jobs["variants"], job, workspace=project.root, store=store)
        summary = (job.temp / "step_summary.md").read_text(encoding="utf-8")
        assert all(variant in summary for variant in entry["variants"])

    # Upload layout: one artifact per job and attempt, each a run directory, no `latest`.
    artifacts = sorted(p.name for p in store.iterdir())
    assert artifacts == ["stackmatrix-run-0-attempt-1", "stackmatrix-run-1-attempt-1"]
    for name in artifacts:
        (run_dir,) = list((store / name).iterdir())
        assert (run_dir / "run.json").is_file()
        assert not run_dir.is_symlink()

    # The "report" job.
    report_job = new_job("report")
    _run_job(jobs["report"], report_job, workspace=project.root, store=store)
    merged = report_job.temp / "merged"
    assert "stackmatrix-report" in sorted(p.name for p in store.iterdir())
    assert (store / "stackmatrix-report" / "junit.xml").is_file()

    # The same matrix run once, locally.
    single = project.run("run", "--out", "single")
    assert single.returncode == 0, single.stdout + single.stderr
    single_dir = project.run_dir("single")
    assert _testcases(merged / "junit.xml") == _testcases(single_dir / "junit.xml")
    shard_statuses: dict[str, str] = {}
    for name in artifacts:
        for run_json in (store / name).glob("*/run.json"):
            shard_statuses.update(_statuses(json.loads(run_json.read_text())))
    assert shard_statuses == _statuses(project.journal("single"))
    assert shard_statuses == {
        "flavor-a": "passed",
        "flavor-b": "passed",
        "flavor-fail": "experimental-failed",
    }
    step_summary = (report_job.temp / "step_summary.md").read_text(encoding="utf-8")
    assert step_summary == (merged / "summary.md").read_text(encoding="utf-8")
    assert "Compared with" not in step_summary  # the first run on this branch: no baseline

    _the_next_report_compares(new_job("report-again", run_id="8"), jobs["report"], project.root,
                              store)  # fmt: skip


def _the_next_report_compares(job: _Job, spec: dict[str, Any], root: Path, store: Path) -> None:
    """The next run's report job (same shards, for brevity) compares with the results the
    cache kept of the first, and replaces the report artifact."""
    _run_job(spec, job, workspace=root, store=store)
    compared = (job.temp / "step_summary.md").read_text(encoding="utf-8")
    assert "### Compared with" in compared
    assert "results.json" in compared.split("### Compared with", 1)[1].splitlines()[0]
    cached = json.loads((store.parent / "cache" / "index.json").read_text())
    assert cached == ["stackmatrix-baseline-main-7-1", "stackmatrix-baseline-main-8-1"]
    report_artifact = (store / "stackmatrix-report" / "summary.md").read_text(encoding="utf-8")
    assert "### Compared with" in report_artifact
