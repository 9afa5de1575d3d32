"""Reports never hide a failure or report a false green: the grid's order and its promise,
failures once per test and message, runs that never finished or ended on an error, test id
rewrites and tests that do not apply, baseline wording, matrix order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stackmatrix.report.build import ReportPaths, build_reports, load_runs, summary_text
from stackmatrix.report.model import NA, Severity, Verdict
from stackmatrix.report.results_tests import results_rows
from stackmatrix.results.journal import Status
from tests.unit.report.handmade import T0, Case, Plan, grid_variants, write_run

VARIANTS = grid_variants(["13", "15"], ["a", "b"])
IDS = [ident for ident, _ in VARIANTS]


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _grid_tests(markdown: str) -> list[str]:
    section = markdown.split("### Tests that did not pass on every variant", 1)[1]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def _build(run_dir: Path, **options: object) -> tuple[ReportPaths, str, str]:
    paths = build_reports([run_dir], run_dir, **options)  # type: ignore[arg-type]
    return (
        paths,
        paths.summary.read_text(encoding="utf-8"),
        paths.html.read_text(encoding="utf-8"),
    )


# -- the grid: severity first, and every row in report.html ------------------------------------


def test_failures_that_differ_by_variant_come_before_skips_and_none_fall_off(
    tmp_path: Path,
) -> None:
    skipped = [Case("tests.test_skip", f"test_skip_{n:03}", "skip", "no") for n in range(250)]
    plans = []
    for ident, values in VARIANTS:
        on_13 = values["postgres"] == "13"
        cases = [
            *skipped,
            Case("tests.test_both", "test_everywhere", "fail", "always"),
            Case("tests.test_db", "test_locale", "fail" if on_13 else "pass", "no locale"),
            Case("tests.test_db", "test_json", "skip" if on_13 else "pass", "old"),
        ]
        plans.append(Plan(ident, values, Status.FAILED, cases))
    write_run(tmp_path, plans)
    rows = load_runs([tmp_path]).grid()
    assert [r.severity for r in rows[:3]] == [
        Severity.FAILS_ON_SOME,
        Severity.FAILS_EVERYWHERE,
        Severity.DIFFERS,
    ]
    _, md, html = _build(tmp_path)
    listed = _grid_tests(md)
    # The three tests that matter open the table although they came last in the file.
    assert listed[:3] == [
        "tests.test_db::test_locale",
        "tests.test_both::test_everywhere",
        "tests.test_db::test_json",
    ]
    assert len(listed) == 200
    assert "53 more tests are in report.html." in md
    # ... and they are: every one of the 253 rows is in the page.
    for n in range(250):
        assert f'<td class="test">tests.test_skip::test_skip_{n:03}</td>' in html
    assert html.count('<tr class="sev') == 253
    assert '<details class="page"><summary>tests 201 to 253 of 253' in html


def test_report_html_holds_every_row_of_a_huge_grid_folded(tmp_path: Path) -> None:
    plans = [
        Plan(
            ident,
            values,
            Status.FAILED,
            [
                Case("tests.test_many", f"test_{n}", "fail" if n % 2 else "skip", "x")
                for n in range(12_000)
            ],
        )
        for ident, values in VARIANTS[:2]
    ]
    write_run(tmp_path, plans)
    _, _, html = _build(tmp_path)
    assert html.count('<tr class="sev') == 12_000
    # The first 200 rows are open; the rest fold in pages of 1000, closed.
    grid = html.split('<section id="grid">', 1)[1].split("</section>", 1)[0]
    assert grid.count('<details class="page">') == 12
    assert '<details class="page" open' not in html
    assert len(html) < 10 * 2**20


# -- failures once per test and message ---------------------------------------------------------


def test_report_html_holds_every_failure_summary_md_sends_the_reader_to(tmp_path: Path) -> None:
    cases = [Case("tests.test_many", f"test_{n}", "fail", f"boom {n}") for n in range(2_600)]
    write_run(tmp_path, [Plan(IDS[0], VARIANTS[0][1], Status.FAILED, cases)])
    _, md, html = _build(tmp_path)
    assert "- ... and 2550 more in report.html" in md
    failures = html.split('<section id="failures">', 1)[1].split("</section>", 1)[0]
    assert failures.count('<div class="msg">') == 2_600
    assert all(f"boom {n}</div>" in failures for n in (0, 1_999, 2_000, 2_599))
    # Past the first 2000, folded in a page, closed.
    assert failures.count('<details class="page">') == 1
    assert "<summary>failures 2001 to 2600 of 2600</summary>" in failures


def test_a_variant_that_never_ran_is_badged_with_its_status_not_as_an_error(
    tmp_path: Path,
) -> None:
    write_run(
        tmp_path,
        [
            Plan(IDS[0], VARIANTS[0][1], Status.ERROR, None, reason="db did not become healthy"),
            Plan(IDS[1], VARIANTS[1][1], Status.CANCELLED, None, reason="cancelled: fail-fast"),
        ],
    )
    _, _, html = _build(tmp_path)
    failures = html.split('<section id="failures">', 1)[1]
    assert '<span class="badge error">error</span> variant' in failures
    assert '<span class="badge cancelled">cancelled</span> variant' in failures
    assert '<span class="badge error">error</span> variant <b>postgres-13_driver-b' not in html


def test_one_failure_on_many_variants_is_listed_once_naming_them(tmp_path: Path) -> None:
    plans = [
        Plan(ident, values, Status.FAILED if values["postgres"] == "13" else Status.PASSED,
             [Case("t.Locale", "test_c_utf8",
                   "fail" if values["postgres"] == "13" else "pass",
                   'could not create locale "C.utf8"')])
        for ident, values in VARIANTS
    ]  # fmt: skip
    write_run(tmp_path, plans)
    _, md, html = _build(tmp_path)
    failures = md.split("### Failures", 1)[1]
    assert failures.count("test_c_utf8") == 1
    assert failures.strip().splitlines() == [
        "- `t.Locale::test_c_utf8` fails on postgres=13 \\(2 variants\\): could not create locale"
        ' "C.utf8"'
    ]
    assert html.count("could not create locale &quot;C.utf8&quot;</div>") == 1
    text = summary_text([tmp_path])
    assert "  t.Locale::test_c_utf8 fails on postgres=13 (2 variants): could not create" in text


# -- a run that never finished, or ended on an error, is never green ---------------------------


def test_a_run_that_never_finished_is_incomplete_and_names_what_never_ran(
    tmp_path: Path,
) -> None:
    write_run(
        tmp_path,
        [Plan(IDS[0], VARIANTS[0][1], Status.PASSED, [Case("t", "test_a")])],
        finished=False,
        matrix_variants=tuple(IDS),
    )
    report = load_runs([tmp_path])
    assert report.verdict is Verdict.INCOMPLETE
    _, md, html = _build(tmp_path)
    assert not md.startswith("## ✅")
    assert md.startswith("## ⚠️ stackmatrix shop: 1 variant — 1 passed · incomplete")
    assert "did not record its end: it crashed, was killed, or is still running" in md
    assert (
        "Never finished \\(3 variants\\): postgres-13\\_driver-b, postgres-15\\_driver-a,"
        " postgres-15\\_driver-b" in md
    )
    assert '<span class="badge incomplete">incomplete</span>' in html
    assert "shop: 1 variant — 1 passed — incomplete" in summary_text([tmp_path])


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(2, "the spec or the command line is wrong"), (3, "a stack or the engine failed")],
)
def test_a_run_that_ended_on_an_error_with_no_variant_is_not_green(
    tmp_path: Path, code: int, meaning: str
) -> None:
    write_run(tmp_path, [], exit_code=code)
    _, md, html = _build(tmp_path)
    assert md.startswith("## ❌ stackmatrix shop: 0 variants")
    assert f"ended with exit code {code} \\({meaning}\\)" in md
    assert '<span class="badge failed">failed</span>' in html


def test_a_run_that_recorded_exit_0_and_no_variant_is_not_green(tmp_path: Path) -> None:
    # What a run that stopped on a spec error after its stacks started used to write.
    write_run(tmp_path, [], exit_code=0, matrix_variants=tuple(IDS))
    _, md, _ = _build(tmp_path)
    assert md.startswith("## ⚠️ stackmatrix shop: 0 variants · incomplete")
    assert "ended without a result for any of its variants" in md
    assert "Never finished \\(4 variants\\)" in md


def test_an_interrupted_run_is_not_green(tmp_path: Path) -> None:
    write_run(tmp_path, [], exit_code=130, interrupted=True)
    _, md, _ = _build(tmp_path)
    assert md.startswith("## ❌")


def test_a_run_that_ended_on_an_error_is_green_once_a_later_run_redid_all_it_held(
    tmp_path: Path,
) -> None:
    # The first run's stack failed on every variant (exit 3, no variant's status explains
    # it); the re-run ran all of them again and they passed.
    passing = [Plan(i, v, Status.PASSED, [Case("t", "test_a")]) for i, v in VARIANTS]
    write_run(
        tmp_path / "first",
        passing[:2],
        exit_code=3,
        matrix_variants=tuple(IDS),
        run_id="20260314-092600-00000000000000a1",
    )
    write_run(
        tmp_path / "again",
        passing,
        started_at=T0 + 600,
        exit_code=0,
        matrix_variants=tuple(IDS),
        run_id="20260314-093600-00000000000000a2",
    )
    assert load_runs([tmp_path / "first", tmp_path / "again"]).verdict is Verdict.PASSED
    paths = build_reports([tmp_path / "first", tmp_path / "again"], tmp_path / "report")
    md = paths.summary.read_text(encoding="utf-8")
    assert md.startswith("## ✅ stackmatrix shop: 4 variants — 4 passed\n")
    assert "exit code 3" not in md
    # Only partly redone, or redone before: the error still fails the report.
    write_run(
        tmp_path / "part",
        passing[2:],
        started_at=T0 + 600,
        exit_code=0,
        matrix_variants=tuple(IDS),
        run_id="20260314-093600-00000000000000a3",
    )
    assert load_runs([tmp_path / "first", tmp_path / "part"]).verdict is Verdict.FAILED
    paths = build_reports([tmp_path / "first", tmp_path / "part"], tmp_path / "report-part")
    assert "ended with exit code 3" in paths.summary.read_text(encoding="utf-8")
    assert load_runs([tmp_path / "again", tmp_path / "first"]).verdict is Verdict.FAILED


def test_a_finished_run_that_passed_is_green(tmp_path: Path) -> None:
    write_run(
        tmp_path,
        [Plan(i, v, Status.PASSED, [Case("t", "test_a")]) for i, v in VARIANTS],
        matrix_variants=tuple(IDS),
    )
    _, md, html = _build(tmp_path)
    assert md.startswith("## ✅ stackmatrix shop: 4 variants — 4 passed\n")
    assert "⚠️" not in md
    assert '<span class="badge passed">passed</span>' in html


# -- test id rewrites and tests that do not apply -----------------------------------------------

SQLA_RULES = ({"pattern": r"_postgresql\+[a-z0-9]+_\d+_\d+(?=::)", "replace": ""},)


def _sqlalchemy_like(run_dir: Path, rules: tuple[dict[str, str], ...]) -> None:
    """Class names embed the backend, as SQLAlchemy's generated test classes do."""
    plans = []
    for ident, values in VARIANTS:
        backend = f"_postgresql+{values['driver']}_{values['postgres']}_4"
        on_13 = values["postgres"] == "13"
        cases = [
            Case(f"test.dialect.ReflectionTest{backend}", "test_reflect"),
            Case(f"test.dialect.ReflectionTest{backend}", "test_collation",
                 "fail" if on_13 else "pass", "could not create locale"),
            Case("test.base.test_utils", "test_utils"),
        ]  # fmt: skip
        plans.append(Plan(ident, values, Status.FAILED if on_13 else Status.PASSED, cases))
    write_run(run_dir, plans, test_ids=rules)


def test_rewritten_test_ids_compare_one_test_across_variants(tmp_path: Path) -> None:
    _sqlalchemy_like(tmp_path, SQLA_RULES)
    rows = load_runs([tmp_path]).grid()
    assert [r.test_id for r in rows] == ["test.dialect.ReflectionTest::test_collation"]
    assert list(rows[0].cells.values()) == ["failed", "failed", "passed", "passed"]
    paths, _, _ = _build(tmp_path)
    assert paths.results is not None
    data = json.loads(paths.results.read_text(encoding="utf-8"))
    tests = {t["test"] for t in results_rows(data)}
    assert tests == {
        "test.dialect.ReflectionTest::test_reflect",
        "test.dialect.ReflectionTest::test_collation",
        "test.base.test_utils::test_utils",
    }


def test_tests_of_a_class_that_ran_nothing_on_a_variant_are_not_applicable(
    tmp_path: Path,
) -> None:
    # Without rewrites each variant has its own classes: nothing is "not run" on the others,
    # it does not apply there, and passing tests make no row.
    _sqlalchemy_like(tmp_path, ())
    rows = load_runs([tmp_path]).grid()
    assert len(rows) == 2  # test_collation on each PostgreSQL 13 variant: it failed
    assert {c for r in rows for c in r.cells.values()} == {NA, "failed"}
    _, md, _ = _build(tmp_path)
    assert "n/a" in md


def test_a_test_missing_where_its_class_ran_is_still_not_run(tmp_path: Path) -> None:
    plans = [
        Plan(IDS[0], VARIANTS[0][1], Status.PASSED, [Case("t.C", "test_a"), Case("t.C", "test_b")]),
        Plan(IDS[1], VARIANTS[1][1], Status.PASSED, [Case("t.C", "test_a")]),
    ]
    write_run(tmp_path, plans)
    rows = load_runs([tmp_path]).grid()
    assert [(r.test_id, dict(r.cells)) for r in rows] == [
        ("t.C::test_b", {IDS[0]: "passed", IDS[1]: None})
    ]


# -- merged reports: matrix order ----------------------------------------------------------------


def test_merged_reports_order_variants_as_the_matrix_does(tmp_path: Path) -> None:
    dirs = []
    for shard in (2, 1):
        ids = IDS[shard - 1 :: 2]
        plans = [Plan(i, v, Status.PASSED, [Case("t", "x")]) for i, v in VARIANTS if i in ids]
        run_dir = tmp_path / f"shard-{shard}"
        write_run(run_dir, plans, run_id=f"r{shard}", shard=f"{shard}/2",
                  matrix_variants=tuple(IDS))  # fmt: skip
        dirs.append(run_dir)
    report = load_runs(dirs)
    assert [v.id for v in report.variants] == IDS


# -- baseline: rewritten ids, older results.json -------------------------------------------------


def test_an_older_baseline_compares_in_the_current_runs_rewritten_ids(tmp_path: Path) -> None:
    # Last night's results.json, written before the rewrites were set (and before
    # before_outcome existed): ids still carry the backend.
    ident = IDS[0]
    old = {
        "kind": "stackmatrix-results",
        "format": 1,
        "name": "shop",
        "run_ids": ["n1"],
        "baseline": None,
        "variants": [{"id": ident, "status": "failed", "history": ["fail"]}],
        "tests": [
            {"variant": ident, "test": "t.ReflectionTest_postgresql+a_13_4::test_collation",
             "outcome": "error", "history": ["fail"], "message": "no locale"},
        ],
    }  # fmt: skip
    baseline = tmp_path / "previous" / "results.json"
    baseline.parent.mkdir()
    baseline.write_text(json.dumps(old), encoding="utf-8")
    now = tmp_path / "now"
    case = Case("t.ReflectionTest_postgresql+a_13_4", "test_collation", "error", "no locale")
    write_run(now, [Plan(ident, VARIANTS[0][1], Status.FAILED, [case])], test_ids=SQLA_RULES)
    paths = build_reports([now], now, baseline=baseline)
    assert paths.comparison is not None
    [change] = paths.comparison.cases
    assert (change.test, change.change.value) == (
        "t.ReflectionTest::test_collation",
        "still-failing",
    )
    md = paths.summary.read_text(encoding="utf-8")
    assert "`t.ReflectionTest::test_collation`: error → error" in md
