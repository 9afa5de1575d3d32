"""Nightly compatibility history: classifying a run against a baseline, and what the reports
show of it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from functools import partial
from operator import itemgetter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackmatrix.ci.provider import detect
from stackmatrix.cli.main import main
from stackmatrix.errors import ReportError
from stackmatrix.junit.read import Outcome
from stackmatrix.report.baseline import (
    FLIPS_FOR_FLAKY,
    HISTORY_RUNS,
    CaseRecord,
    Change,
    Mark,
    Snapshot,
    VariantRecord,
    alternating,
    classify,
    compare,
    extend,
    snapshot_of,
)
from stackmatrix.report.build import ReportPaths, build_reports
from stackmatrix.report.model import load_runs
from stackmatrix.report.results_file import (
    _test_row,
    load_baseline,
    snapshot_from_merged_junit,
    snapshot_from_results,
)
from stackmatrix.report.results_tests import results_rows
from stackmatrix.report.text import md_escape
from stackmatrix.results.journal import RunJournal, Status
from tests.unit.report.sample_run import build_sample_run, write_pytest_junit

P, F, R, S = Mark.PASS, Mark.FAIL, Mark.FLAKY, Mark.SKIP
ORDERS = "tests.integration.test_orders"
NUMERIC = f"{ORDERS}::test_order_total_uses_numeric"
LIST_ORDERS = f"{ORDERS}::test_list_orders"
UPGRADE = "tests.integration.test_migrations::test_upgrade"
EVICTION = "tests.integration.test_cache::test_cache_eviction"
REDIS_OFF = {
    "test_cache_hit": ("skipped", "redis is off in this variant", ""),
    "test_cache_eviction": ("skipped", "redis is off in this variant", ""),
}
FAIL_LIST = {"test_list_orders": ("failure", "assert 3 == 2", "tests/x.py:9: AssertionError")}


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


# --------------------------------------------------------------------------------------------
# Classification, pure


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        ((P,), F, Change.REGRESSION),
        ((F,), P, Change.FIXED),
        ((F,), F, Change.STILL_FAILING),
        ((P,), P, Change.UNCHANGED),
        ((), F, Change.NEW),
        ((), P, Change.NEW),
        ((P,), R, Change.FLAKY),  # passed on a retry now
        ((F,), R, Change.FLAKY),
        ((R,), F, Change.FLAKY),  # the baseline itself passed only on a retry
        ((F, R), F, Change.FLAKY),
        ((R,), P, Change.UNCHANGED),  # passing cleanly after a flake is no news
        ((P, F, P), F, Change.FLAKY),  # alternating: three flips
        ((F, P, F), P, Change.FLAKY),
        ((F, P), F, Change.REGRESSION),  # fixed, then broken again: two flips are not yet flaky
        ((P, F), P, Change.FIXED),
        ((P, S), F, Change.REGRESSION),  # a skip is not a result: compared with the last run
        ((F, S, S), P, Change.FIXED),
        ((S,), F, Change.REGRESSION),
        ((P,), S, Change.UNCHANGED),
        ((F, F, F), F, Change.STILL_FAILING),
    ],
)
def test_classify(before: tuple[Mark, ...], now: Mark, expected: Change) -> None:
    assert classify(before, now) is expected


def test_flakiness_older_than_the_history_window_is_forgotten() -> None:
    # The window holds HISTORY_RUNS runs, the current one included.
    assert classify((R, *[P] * (HISTORY_RUNS - 2)), F) is Change.FLAKY
    assert classify((R, *[P] * (HISTORY_RUNS - 1)), F) is Change.REGRESSION
    flip_flop = (P, F) * FLIPS_FOR_FLAKY
    assert alternating(flip_flop)
    assert not alternating((*flip_flop, *[P] * HISTORY_RUNS))


def test_history_keeps_the_last_runs() -> None:
    assert extend((P, F), R) == (P, F, R)
    assert extend((P,) * HISTORY_RUNS, F) == (*(P,) * (HISTORY_RUNS - 1), F)
    assert extend((P, F), None) == (P, F)  # a variant that never finished adds nothing


marks = st.sampled_from(list(Mark))


@given(st.lists(marks, max_size=14), marks)
def test_classes_agree_with_the_current_outcome(before: list[Mark], now: Mark) -> None:
    change = classify(before, now)
    if now is F:
        assert change in {Change.REGRESSION, Change.STILL_FAILING, Change.FLAKY, Change.NEW}
    elif now is P:
        assert change in {Change.FIXED, Change.UNCHANGED, Change.FLAKY, Change.NEW}
    elif now is R:
        assert change is Change.FLAKY
    else:
        assert change in {Change.UNCHANGED, Change.NEW}


def _variant(ident: str, status: Status, *, ran: bool = True, flaky: bool = False) -> VariantRecord:
    mark = {Status.PASSED: R if flaky else P, Status.CANCELLED: None}.get(status, F)
    return VariantRecord(
        ident, status, flaky=flaky, ran_tests=ran, history=(mark,) if mark is not None else ()
    )


def _case(variant: str, test: str, outcome: Outcome, *, flaky: bool = False) -> CaseRecord:
    mark = {Outcome.PASSED: R if flaky else P, Outcome.SKIPPED: S}.get(outcome, F)
    return CaseRecord(variant, test, outcome, flaky=flaky, history=(mark,))


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(Outcome))),
        max_size=12,
        unique_by=lambda t: t[0],
    )
)
def test_a_run_compared_with_itself_has_no_regression_or_fix(
    outcomes: list[tuple[str, Outcome]],
) -> None:
    failing = any(o in (Outcome.FAILED, Outcome.ERROR) for _, o in outcomes)
    snapshot = Snapshot(
        "run",
        (_variant("v", Status.FAILED if failing else Status.PASSED),),
        tuple(_case("v", test, outcome) for test, outcome in outcomes),
    )
    comparison = compare(snapshot, snapshot)
    found = {v.change for v in comparison.variants} | {c.change for c in comparison.cases}
    assert found <= {Change.UNCHANGED, Change.STILL_FAILING}
    assert not comparison.changed


def test_compare_variants_and_tests() -> None:
    before = Snapshot(
        "prev",
        (
            _variant("pg13", Status.FAILED),
            _variant("pg15", Status.PASSED),
            _variant("pg16", Status.PASSED),
            _variant("gone", Status.PASSED),
            _variant("broken", Status.PASSED),
        ),
        (
            _case("pg13", "t_numeric", Outcome.FAILED),
            _case("pg13", "t_list", Outcome.PASSED),
            _case("pg13", "t_dropped", Outcome.PASSED),
            _case("pg15", "t_list", Outcome.PASSED),
            _case("broken", "t_list", Outcome.PASSED),
        ),
    )
    now = Snapshot(
        "now",
        (
            _variant("pg13", Status.PASSED),
            _variant("pg15", Status.FAILED),
            _variant("pg16", Status.PASSED, flaky=True),
            _variant("pg17", Status.FAILED),
            _variant("broken", Status.ERROR, ran=False),
        ),
        (
            _case("pg13", "t_numeric", Outcome.PASSED),
            _case("pg13", "t_list", Outcome.PASSED),
            _case("pg15", "t_list", Outcome.FAILED),
            _case("pg15", "t_brand_new", Outcome.ERROR),  # absent before, variant passed
            _case("pg16", "t_list", Outcome.PASSED, flaky=True),
            _case("pg17", "t_list", Outcome.FAILED),
        ),
    )
    comparison = compare(now, before)
    assert comparison.baseline == "prev"
    assert {v.id: v.change for v in comparison.variants} == {
        "pg13": Change.FIXED,
        "pg15": Change.REGRESSION,
        "pg16": Change.FLAKY,
        "pg17": Change.NEW,
        "broken": Change.REGRESSION,
        "gone": Change.REMOVED,
    }
    assert {(c.variant, c.test): c.change for c in comparison.cases} == {
        ("pg13", "t_numeric"): Change.FIXED,
        ("pg13", "t_list"): Change.UNCHANGED,
        ("pg13", "t_dropped"): Change.REMOVED,
        ("pg15", "t_list"): Change.REGRESSION,
        ("pg15", "t_brand_new"): Change.REGRESSION,
        ("pg16", "t_list"): Change.FLAKY,
        ("pg17", "t_list"): Change.NEW,
        ("broken", "t_list"): Change.NOT_RUN,  # its stack failed: the tests did not run
    }
    not_run = next(c for c in comparison.cases if c.change is Change.NOT_RUN)
    assert not_run.history == (P,)  # carried over to the next comparison
    regression = next(v for v in comparison.variants if v.id == "pg15")
    assert (regression.before, regression.status, regression.history) == (
        Status.PASSED,
        Status.FAILED,
        (P, F),
    )


# --------------------------------------------------------------------------------------------
# Crafted runs


def _sample(path: Path, run_id: str) -> Path:
    """The sample run without resource samples: plots are not what these tests look at."""
    journal = build_sample_run(path, run_id=run_id)
    variants = tuple(dataclasses.replace(v, stats=None) for v in journal.variants)
    dataclasses.replace(journal, variants=variants).write(path)
    return path


def _rerun(
    run_dir: Path,
    variant: str,
    status: Status,
    outcomes: Mapping[str, tuple[str, str, str]],
    *,
    earlier: Sequence[Mapping[str, tuple[str, str, str]]] = (),
    reason: str = "",
) -> None:
    """Give *variant* of *run_dir* new final testcases and earlier attempts (under --retries)."""
    vdir = run_dir / variant
    counts = write_pytest_junit(vdir / "junit.xml", outcomes)
    junits = []
    for attempt, attempt_outcomes in enumerate(earlier, start=1):
        write_pytest_junit(vdir / f"junit.attempt-{attempt}.xml", attempt_outcomes)
        junits.append(f"{variant}/junit.attempt-{attempt}.xml")
    journal = RunJournal.read(run_dir)
    variants = tuple(
        dataclasses.replace(
            v,
            status=status,
            tests=counts,
            reason=reason,
            exit_code=int(bool(counts.failed)),
            attempt_statuses=("failed",) * len(earlier),
            attempt_junits=tuple(junits),
        )
        if v.id == variant
        else v
        for v in journal.variants
    )
    dataclasses.replace(journal, variants=variants).write(run_dir)


def _current_run(path: Path) -> Path:
    """The night after the sample run: one fix, one regression, one flake, the rest as before."""
    _sample(path, "20260315-0200-c3d4")
    _rerun(path, "postgres-13_redis-off", Status.PASSED, REDIS_OFF)
    _rerun(
        path,
        "postgres-15_redis-off",
        Status.PASSED,
        REDIS_OFF,
        earlier=[{**REDIS_OFF, "test_upgrade": ("failure", "deadlock detected", "")}],
    )
    _rerun(path, "postgres-15_redis-on", Status.FAILED, FAIL_LIST, reason="1 test failed")
    return path


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    return _sample(tmp_path / "nightly-1", "20260314-0200-a1b2")


@pytest.fixture
def current(tmp_path: Path) -> Path:
    return _current_run(tmp_path / "nightly-2")


def _section(markdown: str, heading: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    body = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line:
            body.append(line)
    return body


def test_summary_shows_the_four_classes_first(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    paths = build_reports([current], tmp_path / "report", baseline=previous)
    md = paths.summary.read_text(encoding="utf-8")
    lines = md.splitlines()
    assert lines[0].startswith("## ❌ stackmatrix shop: 5 variants")
    assert lines[2] == f"### Compared with `{previous}`"
    # Whole variants and tests are counted apart.
    assert lines[4] == (
        "🔴 regressions: 1 variant, 1 test on 1 variant · 🟢 fixed: 1 variant, 1 test on 1"
        " variant · 🟡 flaky: 1 variant, 1 test on 1 variant · 🟠 still failing: 2 variants,"
        " 1 test on 1 variant"
    )
    assert _section(md, "#### 🔴 Regressions") == [
        "- `postgres-15_redis-on` (variant): passed → failed · 1 test failed",
        f"- `postgres-15_redis-on` · `{LIST_ORDERS}`: passed → failed · assert 3 == 2",
    ]
    assert _section(md, "#### 🟢 Fixed") == [
        "- `postgres-13_redis-off` (variant): failed → passed",
        f"- `postgres-13_redis-off` · `{NUMERIC}`: failed → passed",
    ]
    assert _section(md, "#### 🟡 Flaky") == [
        "- `postgres-15_redis-off` (variant): passed → passed · passed on attempt 2 of 2",
        f"- `postgres-15_redis-off` · `{UPGRADE}`: passed → passed"
        " · failed in an earlier attempt, passed on retry",
    ]
    assert _section(md, "#### 🟠 Still failing") == [
        "- `postgres-17_redis-off` (variant): error → error"
        " · service db did not become healthy within 2m0s",
        "- `postgres-17_redis-on` (variant): failed \\(experimental\\) → failed \\(experimental\\)"
        " · 1 test failed",
        f"- `postgres-17_redis-on` · `{EVICTION}`: failed → failed · assert 0 &gt; 0",
    ]
    # The usual tables follow the comparison.
    assert lines.index("### Variants") > lines.index("#### 🟠 Still failing (3)")
    assert "| `postgres-15_redis-off` | ✅ passed (passed on attempt 2 of 2) |" in md
    assert paths.comparison is not None
    assert paths.comparison.count(Change.REGRESSION) == 2


def test_html_shows_the_comparison_before_the_variants(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    html = build_reports([current], tmp_path / "r", baseline=previous).html.read_text("utf-8")
    assert html.index('<section id="comparison">') < html.index('<section id="variants">')
    section = html.split('<section id="comparison">', 1)[1].split("</section>", 1)[0]
    for change in ("regression", "fixed", "flaky", "still-failing"):
        assert f'<span class="badge {change}">{change}</span>' in section
    assert f'<td class="case">{LIST_ORDERS}</td><td>passed → failed</td>' in section
    assert '<a href="#variant-postgres-15_redis-on">' in section


def test_results_json_carries_statuses_outcomes_and_classes(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    paths = build_reports([current], tmp_path / "r", baseline=previous)
    assert paths.results == tmp_path / "r" / "results.json"
    data = json.loads(paths.results.read_text(encoding="utf-8"))
    assert data["baseline"] == str(previous)
    variants = {v["id"]: v for v in data["variants"]}
    assert variants["postgres-15_redis-off"] == {
        "id": "postgres-15_redis-off",
        "status": "passed",
        "flaky": True,
        "attempts": 2,
        "experimental": False,
        "ran_tests": True,
        "reason": "",
        "change": "flaky",
        "before": "passed",
        "history": ["pass", "flaky"],
    }
    tests = {(t["variant"], t["test"]): t for t in results_rows(data)}
    assert len(tests) == 4 * 8  # every test x variant that ran tests
    assert tests["postgres-15_redis-on", LIST_ORDERS] == {
        "variant": "postgres-15_redis-on",
        "test": LIST_ORDERS,
        "outcome": "failed",
        "flaky": False,
        "change": "regression",
        "before": "pass",
        "history": ["pass", "fail"],
        "message": "assert 3 == 2",
        "before_outcome": "passed",
    }
    assert tests["postgres-13_redis-off", NUMERIC]["change"] == "fixed"


def test_without_a_baseline_flaky_results_are_listed_and_nothing_is_compared(
    current: Path,
) -> None:
    paths = build_reports([current], current)
    md = paths.summary.read_text(encoding="utf-8")
    assert "Compared with" not in md
    assert paths.comparison is None
    assert _section(md, "### 🟡 Flaky: passed on a retry") == [
        "- `postgres-15_redis-off` · `(variant)`: passed on attempt 2 of 2",
        f"- `postgres-15_redis-off` · `{UPGRADE}`: failed in an earlier attempt, passed on retry",
    ]
    html = paths.html.read_text(encoding="utf-8")
    assert '<section id="flaky">' in html
    assert '<section id="comparison">' not in html
    data = json.loads(paths.results.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    assert data["baseline"] is None
    assert {t["change"] for t in results_rows(data)} == {None}
    text = load_runs([current])
    assert [v.flaky_tests for v in text.variants if v.flaky_tests] == [(UPGRADE,)]


def test_a_run_without_retries_has_no_flaky_section(previous: Path) -> None:
    md = build_reports([previous], previous).summary.read_text(encoding="utf-8")
    assert "Flaky" not in md
    assert "Compared with" not in md


# --------------------------------------------------------------------------------------------
# Every kind of baseline


def _changes(paths: ReportPaths) -> dict[tuple[str, str | None], Change]:
    assert paths.comparison is not None
    found: dict[tuple[str, str | None], Change] = {
        (v.id, None): v.change for v in paths.comparison.variants
    }
    found.update({(c.variant, c.test): c.change for c in paths.comparison.cases})
    return {k: v for k, v in found.items() if v is not Change.UNCHANGED}


EXPECTED = {
    ("postgres-13_redis-off", None): Change.FIXED,
    ("postgres-13_redis-off", NUMERIC): Change.FIXED,
    ("postgres-15_redis-off", None): Change.FLAKY,
    ("postgres-15_redis-off", UPGRADE): Change.FLAKY,
    ("postgres-15_redis-on", None): Change.REGRESSION,
    ("postgres-15_redis-on", LIST_ORDERS): Change.REGRESSION,
    ("postgres-17_redis-off", None): Change.STILL_FAILING,
    ("postgres-17_redis-on", None): Change.STILL_FAILING,
    ("postgres-17_redis-on", EVICTION): Change.STILL_FAILING,
}


@pytest.mark.parametrize(
    "kind",
    ["run dir", "run.json", "report dir", "results.json", "report dir without results.json"],
)
def test_every_kind_of_baseline_gives_the_same_classes(
    kind: str, previous: Path, current: Path, tmp_path: Path
) -> None:
    report_dir = tmp_path / "previous-report"
    build_reports([previous], report_dir)
    match kind:
        case "run dir":
            (previous / "results.json").unlink(missing_ok=True)
            baseline = previous
        case "run.json":
            baseline = previous / "run.json"
        case "report dir":
            baseline = report_dir
        case "results.json":
            baseline = report_dir / "results.json"
        case _:
            (report_dir / "results.json").unlink()
            baseline = report_dir
    paths = build_reports([current], tmp_path / "out", baseline=baseline)
    assert _changes(paths) == EXPECTED
    assert paths.comparison is not None
    assert paths.comparison.baseline == str(baseline)


def test_merged_junit_of_shards_serves_as_a_baseline(previous: Path, tmp_path: Path) -> None:
    shards = []
    for index, keep in enumerate(
        [{"postgres-13_redis-off", "postgres-15_redis-off"}, {"postgres-17_redis-off"}]
    ):
        shard = tmp_path / f"shard-{index}"
        shutil.copytree(previous, shard)
        journal = RunJournal.read(shard)
        variants = tuple(v for v in journal.variants if v.id in keep)
        dataclasses.replace(journal, variants=variants).write(shard)
        shards.append(shard)
    build_reports(shards, tmp_path / "merged")
    snapshot = snapshot_from_merged_junit(tmp_path / "merged" / "junit.xml")
    assert {v.id: v.status for v in snapshot.variants} == {
        "postgres-13_redis-off": Status.FAILED,
        "postgres-15_redis-off": Status.PASSED,
        "postgres-17_redis-off": Status.ERROR,
    }
    numeric = next(c for c in snapshot.cases if c.test == NUMERIC)
    assert (numeric.variant, numeric.outcome) == ("postgres-13_redis-off", Outcome.FAILED)
    assert numeric.message == "AssertionError: assert Decimal('10.5') == 10.50"
    assert not [c for c in snapshot.cases if c.variant == "postgres-17_redis-off"]


def test_history_across_nights_turns_alternation_into_flakiness(tmp_path: Path) -> None:
    """pass, fail, pass, fail on four nights: a regression, a fix, then flaky."""
    seen = []
    baseline: Path | None = None
    for night, failing in enumerate([False, True, False, True]):
        run = tmp_path / f"run-{night}"
        _sample(run, f"night-{night}")
        _rerun(
            run,
            "postgres-15_redis-on",
            Status.FAILED if failing else Status.PASSED,
            FAIL_LIST if failing else {},
        )
        out = tmp_path / f"report-{night}"
        paths = build_reports([run], out, baseline=baseline)
        if paths.comparison is not None:
            case = next(
                c
                for c in paths.comparison.cases
                if (c.variant, c.test) == ("postgres-15_redis-on", LIST_ORDERS)
            )
            seen.append((case.change, case.history))
        baseline = out
    assert seen == [
        (Change.REGRESSION, (P, F)),
        (Change.FIXED, (P, F, P)),
        (Change.FLAKY, (P, F, P, F)),
    ]
    md = (tmp_path / "report-3" / "summary.md").read_text(encoding="utf-8")
    assert (
        f"- `postgres-15_redis-on` · `{LIST_ORDERS}`: passed → failed"
        " · failed now; last runs: ✅❌✅❌"
    ) in md


def test_tests_of_a_variant_that_could_not_run_keep_their_history(
    previous: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    _sample(broken, "night-2")
    journal = RunJournal.read(broken)
    variants = tuple(
        dataclasses.replace(v, status=Status.ERROR, junit=None, reason="db never healthy")
        if v.id == "postgres-13_redis-off"
        else v
        for v in journal.variants
    )
    dataclasses.replace(journal, variants=variants).write(broken)
    first = build_reports([broken], tmp_path / "r2", baseline=previous)
    assert first.comparison is not None
    numeric = next(c for c in first.comparison.cases if c.test == NUMERIC and c.outcome is None)
    assert numeric.change is Change.NOT_RUN
    fixed = _current_run(tmp_path / "night-3")
    second = build_reports([fixed], tmp_path / "r3", baseline=tmp_path / "r2")
    assert _changes(second)["postgres-13_redis-off", NUMERIC] is Change.FIXED


# --------------------------------------------------------------------------------------------
# Baselines that cannot be used


BAD_STATUS = (
    '{"kind": "stackmatrix-results", "format": 1, "variants": [{"id": "x", "status": "melted"}]}'
)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("nope", None, "no such file or directory"),
        ("empty", "", "not a run or report directory"),
        ("results.json", "{oops", "not valid JSON"),
        ("other.json", '{"a": 1}', "neither a run journal (run.json) nor a results.json"),
        ("plain.xml", "<testsuite/>", "not a report merged by stackmatrix"),
        ("r.json", BAD_STATUS, "variants[0]: 'melted' is not a valid Status"),
        ("newer.json", '{"kind": "stackmatrix-results", "format": 99}', "format 99 is not"),
        ("list.json", "[1]", "neither a run journal"),
        ("journal.json", '{"run_id": "r", "variants": [1]}', "not a readable run journal"),
        (
            "attempts.json",
            '{"kind": "stackmatrix-results", "format": 1,'
            ' "variants": [{"id": "x", "status": "passed", "attempts": "many"}]}',
            "malformed: ValueError",
        ),
    ],
)
def test_unusable_baseline_names_path_and_problem(
    name: str, content: str | None, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    if content == "":
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        load_baseline(path)
    assert str(caught.value).startswith(f"baseline {path}: ")
    assert problem in str(caught.value)


def test_unusable_baseline_still_writes_the_reports_then_fails(
    current: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "previous.json"
    bad.write_text("{oops", encoding="utf-8")
    step = tmp_path / "step.md"
    out = tmp_path / "out"
    github = detect({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    publish = partial(github.publish_summary, report=out)
    with pytest.raises(ReportError) as caught:
        build_reports([current], out, baseline=bad, publish_summary=publish)
    message = str(caught.value)
    assert message.startswith(f"baseline {bad}: not valid JSON")
    assert f"the reports of this run are written to {out}, without the comparison" in message
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md.splitlines()[2:5] == [
        f"### Compared with `{bad}`",
        "",
        "⚠️ No comparison: "
        + md_escape(
            f"baseline {bad}: not valid JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 2 (char 1)"
        ),
    ]
    assert step.read_text(encoding="utf-8") == md
    assert "no comparison: baseline" in (out / "report.html").read_text(encoding="utf-8")
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["baseline"] is None
    assert (out / "junit.xml").is_file()


def test_cli_reports_an_unusable_baseline_with_exit_3_and_no_traceback(
    current: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", str(current), "--baseline", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith(f"stackmatrix: error: baseline {tmp_path / 'missing'}: no such file")
    assert "Traceback" not in err
    assert (current / "summary.md").is_file()


def test_a_broken_results_json_falls_back_to_the_run_journal(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    (previous / "results.json").write_text("[]", encoding="utf-8")
    paths = build_reports([current], tmp_path / "out", baseline=previous)
    assert _changes(paths) == EXPECTED
    assert any(
        w.startswith(f"baseline {previous}: ignored results.json: not a stackmatrix results")
        for w in paths.warnings
    )


def test_a_lone_run_json_compares_variant_statuses(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    lone = tmp_path / "lone" / "previous-run.json"
    lone.parent.mkdir()
    shutil.copy(previous / "run.json", lone)
    paths = build_reports([current], tmp_path / "out", baseline=lone)
    changes = _changes(paths)
    assert changes["postgres-15_redis-on", None] is Change.REGRESSION
    # The test was unknown, but its variant passed before: a regression all the same.
    assert changes["postgres-15_redis-on", LIST_ORDERS] is Change.REGRESSION
    assert any("compared by status only" in w for w in paths.warnings)


def test_results_json_round_trips_into_a_snapshot(previous: Path) -> None:
    paths = build_reports([previous], previous)
    assert paths.results is not None
    data = json.loads(paths.results.read_text(encoding="utf-8"))
    snapshot = snapshot_from_results(data, "x")
    direct = snapshot_of(load_runs([previous]), "x")
    assert snapshot.variants == direct.variants
    assert snapshot.cases == direct.cases


def test_results_json_lists_each_test_once_and_reads_back_every_row(
    previous: Path, current: Path, tmp_path: Path
) -> None:
    paths = build_reports([current], tmp_path / "r", baseline=previous)
    assert paths.comparison is not None
    assert paths.results is not None
    data = json.loads(paths.results.read_text(encoding="utf-8"))
    assert data["format"] == 2
    assert len(data["tests"]) == len({c.test for c in paths.comparison.cases})
    # Every row a row per test x variant would hold, read back from the cells and details.
    key = itemgetter("variant", "test")
    expected = sorted((_test_row(c) for c in paths.comparison.cases), key=key)
    assert sorted(results_rows(data), key=key) == expected
    again = snapshot_from_results(data, "x")
    assert {(c.variant, c.test): c.history for c in again.cases} == {
        (c.variant, c.test): c.history
        for c in paths.comparison.cases
        if c.change is not Change.REMOVED
    }
