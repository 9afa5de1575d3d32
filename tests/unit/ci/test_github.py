"""GitHub's limits: a step summary under 1 MiB (cut section by section, saying what was left out
and where the full report is), at most 10 error and 10 warning annotations a step (grouped by
test and message, the rest counted in one line)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stackmatrix.ci.github import STEP_SUMMARY_LIMIT, GitHubActions, fit_step_summary
from stackmatrix.ci.github_annotations import MAX_ANNOTATIONS
from stackmatrix.ci.provider import detect
from stackmatrix.report.build import build_reports
from stackmatrix.report.model import load_runs
from tests.unit.ci.big_run import EXPERIMENTAL, VARIANTS, build_big_run

RUN_PAGE = "https://github.com/acme/shop/actions/runs/4242"


def github(summary: Path | None = None, **extra: str) -> GitHubActions:
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "4242",
        **extra,
    }
    if summary is not None:
        environ["GITHUB_STEP_SUMMARY"] = str(summary)
    return GitHubActions(environ)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """2,000 failing testcases over 8 variants: the run directory and its report folder."""
    root = tmp_path_factory.mktemp("big")
    assert build_big_run(root / "run") == 2000
    build_reports([root / "run"], root / "report")
    return root / "run", root / "report"


def sections(markdown: str) -> dict[str, tuple[int, int]]:
    """Heading -> (table body rows, list items) of each section of a summary."""
    found: dict[str, tuple[int, int]] = {}
    for chunk in re.split(r"^#+ ", markdown, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        lines = body.splitlines()
        rows = sum(1 for line in lines if line.startswith("|") and not line.startswith("| ---"))
        headers = sum(1 for line in lines if line.startswith("| ---"))  # one header per table
        items = sum(1 for line in lines if line.startswith("- "))
        found[heading] = (rows - headers, items)
    return found


def test_two_thousand_failures_make_a_summary_under_the_limit_and_twenty_annotations(
    big: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, report = big
    step_summary = tmp_path / "step_summary.md"
    provider = github(step_summary)
    markdown = (report / "summary.md").read_text(encoding="utf-8")
    assert provider.publish_summary(markdown, report=report) == step_summary
    written = step_summary.read_text(encoding="utf-8")
    assert len(written.encode("utf-8")) < STEP_SUMMARY_LIMIT
    assert written == markdown  # it fits: nothing cut

    commands = provider.annotations(load_runs([run_dir]))
    errors = [c for c in commands if c.startswith("::error ")]
    warnings = [c for c in commands if c.startswith("::warning ")]
    assert len(errors) == len(warnings) == MAX_ANNOTATIONS
    assert len(commands) == 2 * MAX_ANNOTATIONS
    # 250 tests fail alike on the 7 required variants: 250 groups, 9 shown, 241 counted.
    assert errors[-1] == (
        "::error title=241 more failures not annotated::241 more failures (1687 on 7 variants)"
        " are not annotated: GitHub shows 10 a step. Every failure is in report.html; the step"
        " summary lists 50 of the 500 (fewer if it was cut to fit GitHub's 1 MiB)."
    )
    markdown = (report / "summary.md").read_text(encoding="utf-8")
    failures = markdown.split("### Failures", 1)[1]
    assert len(re.findall(r"^- `", failures, re.M)) == 50
    assert "- ... and 450 more in report.html" in failures
    # The experimental variant fails its own way: 250 warnings on one variant.
    assert warnings[-1].startswith("::warning title=241 more failures not annotated::241 more"
                                   " failures (241 on 1 variant) are not annotated")  # fmt: skip
    # Each shown group names the variants it failed on, and where.
    first = errors[0]
    assert first.startswith("::error file=tests/test_orders_0.py,line=10,title=")
    assert "(7 variants)%3A tests.test_orders_0%3A%3Atest_total[0]::" in first
    named = first.split("fails on 7 variants: ")[1]
    assert named.split(", ") == [v for v in VARIANTS if v != EXPERIMENTAL]
    assert all(EXPERIMENTAL in w for w in warnings[:-1])


def test_a_step_summary_with_little_room_left_is_cut_by_rows_and_says_how_much(
    big: tuple[Path, Path], tmp_path: Path
) -> None:
    _run_dir, report = big
    markdown = (report / "summary.md").read_text(encoding="utf-8")
    step_summary = tmp_path / "step_summary.md"
    earlier = "x" * (STEP_SUMMARY_LIMIT - 12_000) + "\n"  # the step wrote there before us
    step_summary.write_text(earlier, encoding="utf-8")
    provider = github(step_summary, STACKMATRIX_REPORT_ARTIFACT="stackmatrix-report")

    provider.publish_summary(markdown, report=report)

    assert step_summary.stat().st_size <= STEP_SUMMARY_LIMIT
    added = step_summary.read_text(encoding="utf-8")[len(earlier) :]
    before, after = sections(markdown), sections(added)
    assert set(after) == set(before)
    grid = "Tests that did not pass on every variant"
    assert after["Variants" if "Variants" in after else next(iter(after))] == next(
        iter(before.values())
    )  # the variant table is whole
    cut_rows = before[grid][0] - after[grid][0]
    cut_items = before["Failures"][1] - after["Failures"][1]
    assert cut_rows > 0
    assert cut_items > 0
    closing = added.rstrip("\n").splitlines()[-1]
    assert closing.startswith("> ✂️ This summary was cut to fit GitHub's 1 MiB step summary: ")
    assert f"{cut_rows} rows of “{grid}”" in closing
    assert f"{cut_items} entries of “Failures”" in closing
    assert closing.endswith(
        f"The full report (summary.md, report.html) is in the artifact `stackmatrix-report` of"
        f" {RUN_PAGE}."
    )
    # Where rows went, a line says so, inside the section.
    assert added.count("more left out here (see the full report)") == 2


def test_a_summary_that_fits_is_left_alone() -> None:
    markdown = "## ✅ stackmatrix shop\n\n| Variant | Status |\n| --- | --- |\n| `a` | ok |\n"
    assert fit_step_summary(markdown, budget=len(markdown.encode()), where="here") == markdown


def test_the_variant_table_goes_last() -> None:
    rows = [f"| `variant-{n}` | ✅ passed |" for n in range(40)]
    grid = [f"| `tests.test_x::test_{n}` | ❌ |" for n in range(400)]
    markdown = "\n".join([
        "## ❌ stackmatrix shop: 40 variants", "", "| Variant | Status |", "| --- | --- |",
        *rows, "", "### Tests that did not pass on every variant", "", "| Test | `a` |",
        "| --- | :---: |", *grid, "", "✅ passed · ❌ failed",
    ]) + "\n"  # fmt: skip
    fitted = fit_step_summary(markdown, budget=6000, where="in `out/`")
    assert len(fitted.encode()) <= 6000
    assert all(row in fitted for row in rows)
    kept = sum(1 for row in grid if row in fitted)
    assert 0 < kept < len(grid)
    assert fitted.splitlines()[-1].startswith("> ✂️")
    assert f"{len(grid) - kept} rows of “Tests that did not pass on every variant”" in fitted
    assert "✅ passed · ❌ failed" in fitted  # the legend is not an entry: it stays


def test_a_list_s_own_count_of_what_it_left_out_is_no_entry_and_stays() -> None:
    items = [f"- `tests.test_x::test_{n}` fails on `a`: " + "boom " * 20 for n in range(50)]
    more = "- ... and 450 more in report.html"
    markdown = "\n".join(["## ❌ stackmatrix shop", "", "### Failures", "", *items, more]) + "\n"
    fitted = fit_step_summary(markdown, budget=3000, where="in `out/`")
    assert len(fitted.encode()) <= 3000
    kept = sum(1 for item in items if item in fitted)
    assert 0 < kept < len(items)
    assert more in fitted
    assert f"{len(items) - kept} more left out here" in fitted
    assert f": {len(items) - kept} entries of “Failures” left out" in fitted.splitlines()[-1]


def test_a_summary_too_long_even_without_rows_is_cut_by_lines() -> None:
    markdown = "".join(f"paragraph {n} " + "words " * 20 + "\n" for n in range(2000))
    fitted = fit_step_summary(markdown, budget=10_000, where="in `out/`")
    assert len(fitted.encode()) <= 10_000
    assert fitted.startswith("paragraph 0 ")
    assert "the rest of it left out" in fitted.splitlines()[-1]


def test_the_full_report_is_named_by_folder_without_an_artifact(tmp_path: Path) -> None:
    assert github().full_report_place(tmp_path) == f"in `{tmp_path}` on the runner ({RUN_PAGE})"


def test_no_step_summary_file_or_no_room_writes_nothing(tmp_path: Path) -> None:
    assert github().publish_summary("## x\n", report=tmp_path) is None
    full = tmp_path / "full.md"
    full.write_text("x" * STEP_SUMMARY_LIMIT, encoding="utf-8")
    assert github(full).publish_summary("## x\n", report=tmp_path) is None
    assert full.stat().st_size == STEP_SUMMARY_LIMIT


def test_github_is_detected_first() -> None:
    provider = detect({"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"})
    assert provider.name == "github"
