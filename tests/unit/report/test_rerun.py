"""What `run --failed` and `gha-matrix --failed` take from an earlier run, and how a report
over a run and its re-run reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stackmatrix.errors import UsageError
from stackmatrix.junit.read import CaseResult, Outcome
from stackmatrix.matrix.expand import Variant
from stackmatrix.report.model import load_runs
from stackmatrix.report.rerun import (
    find_run_dir,
    plan_rerun,
    pytest_node_ids,
    variants_to_rerun,
)
from stackmatrix.results.journal import RunJournal
from tests.unit.report.sample_run import build_sample_run

NUMERIC = "tests.integration.test_orders::test_order_total_uses_numeric"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "runs" / "20260314-0926-a1b2"
    build_sample_run(path)
    (path.parent / "latest").symlink_to(path.name)
    return path


def test_the_variants_that_did_not_pass_and_their_failed_testcases(run_dir: Path) -> None:
    rerun = plan_rerun(run_dir)

    journal = RunJournal.read(run_dir)
    assert rerun.run_id == journal.run_id
    assert rerun.variants == tuple(r.id for r in journal.variants if r.status.value != "passed")
    assert "postgres-15_redis-on" not in rerun.variants
    failed = {v: [c.test_id for c in cases] for v, cases in rerun.failed.items()}
    assert failed["postgres-13_redis-off"] == [NUMERIC]
    # A variant whose stack errored has no real failed testcase: all of its tests run again.
    assert failed["postgres-17_redis-off"] == []


def test_a_run_is_found_from_the_output_folder_or_its_runs_folder(run_dir: Path) -> None:
    out = run_dir.parents[1]
    assert find_run_dir(out) == find_run_dir(out / "runs") == find_run_dir(run_dir) == run_dir
    with pytest.raises(UsageError, match="no run here"):
        find_run_dir(out / "nowhere")


def test_pytest_node_ids_find_the_module_file(tmp_path: Path) -> None:
    (tmp_path / "tests" / "integration").mkdir(parents=True)
    (tmp_path / "tests" / "integration" / "test_orders.py").touch()
    cases = [
        CaseResult("s", "tests.integration.test_orders", "test_total[13-on]", Outcome.FAILED),
        CaseResult("s", "tests.integration.test_orders.TestCart", "test_add", Outcome.ERROR),
        CaseResult("s", "tests.integration.test_orders.TestCart", "test_add", Outcome.ERROR),
        CaseResult("s", "tests.elsewhere", "test_gone", Outcome.FAILED),
    ]

    assert pytest_node_ids(cases, tmp_path) == [
        "tests/integration/test_orders.py::test_total[13-on]",
        "tests/integration/test_orders.py::TestCart::test_add",
        "tests/elsewhere.py::test_gone",
    ]


def test_a_variant_the_matrix_no_longer_has_is_named(run_dir: Path) -> None:
    rerun = plan_rerun(run_dir)
    today = [Variant(id="postgres-13_redis-off", values={"postgres": "13"})]

    with pytest.raises(UsageError, match=r"no longer has: .*postgres-17_redis-off"):
        variants_to_rerun(today, rerun)


def test_a_report_over_a_run_and_its_rerun_shows_each_tests_last_outcome(
    run_dir: Path, tmp_path: Path
) -> None:
    first = RunJournal.read(run_dir)
    again = tmp_path / "again"
    variant = next(r for r in first.variants if r.id == "postgres-13_redis-off")
    (again / variant.id).mkdir(parents=True)
    # The re-run ran the one failed test, which passes now.
    (again / variant.id / "junit.xml").write_text(
        '<testsuite name="pytest" tests="1"><testcase classname="tests.integration.test_orders"'
        ' name="test_order_total_uses_numeric" time="0.1"/></testsuite>\n',
        encoding="utf-8",
    )
    rerun = dataclasses.replace(
        first,
        run_id="20260314-1000-c3d4",
        variants=(dataclasses.replace(variant, junit=f"{variant.id}/junit.xml"),),
        rerun_of=first.run_id,
        rerun_tests=True,
    )
    rerun.write(again)

    report = load_runs([run_dir, again])

    combined = next(v for v in report.variants if v.id == variant.id)
    earlier = next(v for v in load_runs([run_dir]).variants if v.id == variant.id)
    assert [c.test_id for c in combined.cases] == [c.test_id for c in earlier.cases]
    outcome = {c.test_id: c.outcome for c in combined.cases}
    assert outcome[NUMERIC] is Outcome.PASSED
    assert combined.counts.failed == 0
    assert combined.counts.total == earlier.counts.total
    assert not any("appears in" in w for w in report.warnings)


def test_a_testcase_without_a_classname_keeps_its_name(tmp_path: Path) -> None:
    cases = [CaseResult("s", "", "checks the feed", Outcome.FAILED)]
    assert pytest_node_ids(cases, tmp_path) == ["checks the feed"]


def test_a_run_that_never_finished_reruns_the_variants_it_never_recorded(run_dir: Path) -> None:
    journal = RunJournal.read(run_dir)
    passed = tuple(r for r in journal.variants if r.status.value == "passed")
    dataclasses.replace(journal, variants=passed, finished_at=None).write(run_dir)
    today = [Variant(r.id, dict(r.values)) for r in journal.variants]

    chosen = [v.id for v in variants_to_rerun(today, plan_rerun(run_dir))]

    assert chosen == [r.id for r in journal.variants if r.status.value != "passed"]
