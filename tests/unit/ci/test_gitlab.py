"""GitLab CI: detected from GITLAB_CI, collapsible sections in the log, no step summary or
annotations; the child pipeline under GitLab's job cap, valid against GitLab's CI schema; and a
merged JUnit whose testcases survive GitLab's classname + name de-duplication."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import pytest
import yaml
from junitparser import JUnitXml

from stackmatrix.ci.gitlab import GitLabCI, section_name
from stackmatrix.ci.gitlab_pipeline import (
    MAX_JOBS,
    REPORT_JOB,
    PipelineOptions,
    gitlab_pipeline,
    gitlab_pipeline_yaml,
)
from stackmatrix.ci.provider import Provider, detect
from stackmatrix.errors import UsageError
from stackmatrix.junit.merge import merge_paths
from stackmatrix.matrix.expand import Variant
from stackmatrix.report.model import load_runs
from tests.unit.report.sample_run import build_sample_run


def variants(count: int, *, experimental: int = 0) -> list[Variant]:
    return [
        Variant(
            id=f"v-{n:03}",
            values=MappingProxyType({"v": n, "experimental": n >= count - experimental}),
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """GitLab's CI schema as check-jsonschema ships it (vendored, no network)."""
    package = importlib.util.find_spec("check_jsonschema")
    if package is None or package.origin is None:
        if (Path(sys.executable).parent / "mypy").is_file():
            pytest.fail("check-jsonschema is not installed: install requirements/dev.lock")
        pytest.skip("check-jsonschema is not installed; only the test extras are here")
    path = Path(package.origin).parent / "builtin_schemas" / "vendor" / "gitlab-ci.json"
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def problems(schema: dict[str, Any], text: str) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


# -- the provider ----------------------------------------------------------------------------


def test_gitlab_is_detected_from_its_environment() -> None:
    provider: Provider = detect({"GITLAB_CI": "true", "CI": "true"})
    assert isinstance(provider, GitLabCI)
    assert provider.name == "gitlab"
    assert provider.folds_blocks
    assert detect({"CI": "true"}).name == "plain"


def test_a_block_is_a_collapsed_section() -> None:
    provider = GitLabCI({"GITLAB_CI": "true"}, clock=lambda: 1_773_480_000.5)
    text = provider.block("✅ postgres-15_redis-on passed (8 tests, 47s)", ["one", "two"])
    assert text == (
        "\x1b[0Ksection_start:1773480000:postgres-15_redis-on_passed_8_tests_47s"
        "[collapsed=true]\r\x1b[0K✅ postgres-15_redis-on passed (8 tests, 47s)\n"
        "one\ntwo\n"
        "\x1b[0Ksection_end:1773480000:postgres-15_redis-on_passed_8_tests_47s\r\x1b[0K\n"
    )


def test_section_names_keep_to_what_gitlab_accepts() -> None:
    assert section_name("a b/c:d.e-f_g") == "a_b_c_d.e-f_g"
    assert section_name("✅✅") == "stackmatrix"
    assert len(section_name("x" * 300)) == 64


def test_gitlab_has_no_step_summary_and_no_annotations(tmp_path: Path) -> None:
    provider = GitLabCI({"GITLAB_CI": "true"})
    build_sample_run(tmp_path / "run")
    assert provider.step_summary() is None
    assert provider.publish_summary("## x\n", report=tmp_path) is None
    assert provider.annotations(load_runs([tmp_path / "run"])) == []


# -- the child pipeline ----------------------------------------------------------------------


def job_names(pipeline: dict[str, Any]) -> list[str]:
    return [key for key in pipeline if key != "stages" and not key.startswith(".")]


def test_three_hundred_variants_need_shards() -> None:
    with pytest.raises(UsageError) as raised:
        gitlab_pipeline(variants(300), PipelineOptions())
    message = str(raised.value)
    assert "300 variants" in message
    # The cap is stackmatrix's (plain jobs, not parallel:matrix): it says so, not GitLab's.
    assert "301 jobs, more than the 200 stackmatrix puts in one child pipeline" in message
    assert "--shards N" in message
    assert "--shards 4" in message
    with pytest.raises(UsageError, match=r"--shards 12\)"):
        gitlab_pipeline(variants(2_000), PipelineOptions())


def test_the_cap_counts_the_report_job() -> None:
    assert len(job_names(gitlab_pipeline(variants(MAX_JOBS - 1), PipelineOptions()))) == MAX_JOBS
    with pytest.raises(UsageError):
        gitlab_pipeline(variants(MAX_JOBS), PipelineOptions())
    with pytest.raises(UsageError, match="--shards 199 or fewer"):
        gitlab_pipeline(variants(300), PipelineOptions(), shards=200)
    with pytest.raises(UsageError, match="at least 1"):
        gitlab_pipeline(variants(3), PipelineOptions(), shards=0)
    with pytest.raises(UsageError, match="no variants"):
        gitlab_pipeline([], PipelineOptions())


def test_three_hundred_variants_in_shards_validate_against_gitlab_s_schema(
    schema: dict[str, Any],
) -> None:
    options = PipelineOptions(
        file="ci/matrix.yaml", profile="nightly", image="python:3.12", tags=("docker",),
        setup="make images",
    )  # fmt: skip
    text = gitlab_pipeline_yaml(variants(300, experimental=75), options, shards=4)
    assert problems(schema, text) == []
    pipeline = yaml.safe_load(text)
    assert job_names(pipeline) == [
        "stackmatrix shard 1 of 4", "stackmatrix shard 2 of 4", "stackmatrix shard 3 of 4",
        "stackmatrix shard 4 of 4", REPORT_JOB,
    ]  # fmt: skip
    first = pipeline["stackmatrix shard 1 of 4"]
    assert first["script"] == [
        "stackmatrix run --file ci/matrix.yaml --profile nightly --shard 1/4 --out .stackmatrix-ci"
    ]
    assert first["artifacts"]["paths"] == [".stackmatrix-ci/runs/"]
    assert first["artifacts"]["exclude"] == [".stackmatrix-ci/runs/latest"]
    assert first["artifacts"]["when"] == "always"
    template = pipeline[".stackmatrix"]
    assert template["image"] == "python:3.12"
    assert template["tags"] == ["docker"]
    assert template["before_script"][1] == "make images"
    # Shards deal the variants out in turn: each holds required ones, so none may fail.
    assert [pipeline[n].get("allow_failure", False) for n in job_names(pipeline)[:4]] == [
        False, False, False, False,
    ]  # fmt: skip
    report = pipeline[REPORT_JOB]
    assert report["when"] == "always"
    assert report["stage"] == pipeline["stages"][-1]
    assert report["artifacts"]["reports"] == {"junit": "stackmatrix-report/junit.xml"}
    assert report["before_script"] == [template["before_script"][0]]  # no setup to merge


def test_one_job_per_variant_marks_experimental_ones(schema: dict[str, Any]) -> None:
    text = gitlab_pipeline_yaml(variants(3, experimental=1), PipelineOptions())
    assert problems(schema, text) == []
    pipeline = yaml.safe_load(text)
    assert job_names(pipeline) == ["stackmatrix v-000", "stackmatrix v-001", "stackmatrix v-002",
                                   REPORT_JOB]  # fmt: skip
    assert pipeline["stackmatrix v-002"]["allow_failure"] is True
    assert "allow_failure" not in pipeline["stackmatrix v-000"]
    assert pipeline["stackmatrix v-001"]["script"] == [
        "stackmatrix run --file matrix.yaml --only v-001 --out .stackmatrix-ci"
    ]
    assert text.startswith("# Written by stackmatrix ")


def test_the_schema_check_catches_a_broken_pipeline(schema: dict[str, Any]) -> None:
    text = gitlab_pipeline_yaml(variants(2), PipelineOptions())
    broken = text.replace("  script:", "  scrpit:", 1)
    assert any("scrpit" in p for p in problems(schema, broken))


# -- GitLab's test report ----------------------------------------------------------------------


def gitlab_test_report(junit_files: list[Path]) -> dict[tuple[str, str], str]:
    """The testcases GitLab keeps of one job's JUnit reports: like its parser, one entry per
    status and hash of classname + name; a later testcase with the same key replaces an
    earlier one."""
    kept: dict[tuple[str, str], str] = {}
    for path in junit_files:
        for suite in JUnitXml.fromfile(str(path)):
            for case in suite:
                status = type(case.result[0]).__name__.lower() if case.result else "success"
                key = hashlib.sha256(f"{case.classname}{case.name}".encode()).hexdigest()
                kept[(status, key)] = f"{case.classname}::{case.name}"
    return kept


def count_cases(path: Path) -> int:
    return sum(1 for suite in JUnitXml.fromfile(str(path)) for _case in suite)


def test_the_merged_junit_keeps_every_variant_under_gitlab_s_de_duplication(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    build_sample_run(run)
    merged = tmp_path / "junit.xml"
    merge_paths([run], merged)
    total = count_cases(merged)
    assert total == 33  # 4 variants x 8 tests, and the errored variant's one
    kept = gitlab_test_report([merged])
    assert len(kept) == total
    # Each variant's own test of numeric totals is there, under its own name.
    numeric = sorted(
        name for name in kept.values() if name.endswith("test_order_total_uses_numeric")
    )
    assert numeric == [
        "[postgres-13_redis-off] tests.integration.test_orders::test_order_total_uses_numeric",
        "[postgres-15_redis-off] tests.integration.test_orders::test_order_total_uses_numeric",
        "[postgres-15_redis-on] tests.integration.test_orders::test_order_total_uses_numeric",
        "[postgres-17_redis-on] tests.integration.test_orders::test_order_total_uses_numeric",
    ]


def test_the_variants_own_reports_would_hide_each_other(tmp_path: Path) -> None:
    # The same test run on four variants, published raw in one job: GitLab keeps one per status.
    run = tmp_path / "run"
    build_sample_run(run)
    raw = sorted(run.glob("*/junit.xml"))
    total = sum(count_cases(path) for path in raw)
    assert len(gitlab_test_report(raw)) < total


def test_the_gitlab_ci_yml_of_the_docs_validates(schema: dict[str, Any]) -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "gitlab.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    assert len(blocks) == 2  # the parent pipeline, and the child it writes
    for block in blocks:
        assert problems(schema, block) == []
    parent = yaml.safe_load(blocks[0])
    assert "stackmatrix gitlab-matrix --shards 4" in " ".join(
        parent["stackmatrix-pipeline"]["script"]
    )
    written = gitlab_pipeline(variants(2), PipelineOptions(tags=("docker",)), shards=2)
    shown = yaml.safe_load(blocks[1])
    assert shown["stackmatrix report"]["script"] == written[REPORT_JOB]["script"]
    assert (
        shown["stackmatrix shard 1 of 2"]["script"] == written["stackmatrix shard 1 of 2"]["script"]
    )
