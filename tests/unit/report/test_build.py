"""Reports of a run: summary.md, the terminal table, annotations, report.html, shards."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
from collections.abc import Callable
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path

import junitparser
import pytest
import xmlschema

from stackmatrix.ci.github import GitHubActions
from stackmatrix.ci.provider import detect
from stackmatrix.errors import ReportError
from stackmatrix.report import build
from stackmatrix.report.build import (
    ReportPaths,
    build_reports,
    load_runs,
    summary_text,
)
from stackmatrix.results.files import OutputError
from stackmatrix.results.journal import RunJournal, Status
from tests.unit.report.sample_run import build_sample_run

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parents[1] / "junit" / "junit.xsd"))
NUMERIC = "tests.integration.test_orders::test_order_total_uses_numeric"


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports built here must never land in the step summary of the CI job running them."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "20260314-0926-a1b2"
    build_sample_run(path)
    return path


def _github_step_summary(step: Path, report: Path) -> Callable[[str], Path | None]:
    """What `stackmatrix report` hands build_reports on GitHub, writing to *step*."""
    github = detect({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    return partial(github.publish_summary, report=report)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    """The sample run's reports, built once for the tests that only read them."""
    path = tmp_path_factory.mktemp("runs") / "20260314-0926-a1b2"
    build_sample_run(path)
    return build_reports(
        [path], path, publish_summary=_github_step_summary(path.parent / "step.md", path)
    )


def _grid_row(markdown: str, test_id: str) -> list[str]:
    for line in markdown.splitlines():
        if line.startswith(f"| `{test_id}` |"):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    raise AssertionError(f"{test_id} not in the grid")


def _header(markdown: str, first: str) -> list[str]:
    line = next(ln for ln in markdown.splitlines() if ln.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_summary_md_shows_variant_table_grid_and_failures(built: ReportPaths) -> None:
    assert built.summary == built.junit.parent / "summary.md"
    md = built.summary.read_text(encoding="utf-8")
    assert md.startswith("## ❌ stackmatrix shop: 5 variants — 1 failed, 2 passed, 1 error")
    assert "| `postgres-13_redis-off` | ❌ failed | 4 | 1 | 0 | 3 | 47.3s | 201 MiB |" in md
    assert "| `postgres-17_redis-off` | 💥 error | 0 | 0 | 1 | 0 | 2m 00s | - |" in md
    assert "| `postgres-17_redis-on` | ⚠️ failed (experimental) | 7 | 1 | 0 | 0 |" in md
    # "Fails only on postgres-13" at a glance: one ❌ in the row, under postgres-13's column.
    columns = _header(md, "Test")
    row = dict(zip(columns, _grid_row(md, NUMERIC), strict=True))
    assert row == {
        "`postgres-13_redis-off`": "❌",
        "`postgres-15_redis-off`": "✅",
        "`postgres-15_redis-on`": "✅",
        "`postgres-17_redis-on`": "✅",
    }
    # Tests that passed everywhere are not in the grid.
    assert "test_create_order" not in md
    assert "- variant `postgres-17_redis-off`: service db did not become healthy within 2m0s" in md
    assert "AssertionError: assert Decimal\\('10.5'\\) == 10.50" in md


def test_step_summary_is_appended_from_environment(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    provider = detect()
    paths = build_reports(
        [run_dir], run_dir, publish_summary=partial(provider.publish_summary, report=run_dir)
    )
    assert paths.step_summary == step
    text = step.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n## ❌ stackmatrix shop")
    assert text.endswith(paths.summary.read_text(encoding="utf-8"))


def test_no_step_summary_outside_github(run_dir: Path) -> None:
    outside = detect({"CI": "true", "GITHUB_STEP_SUMMARY": "/tmp/not-github.md"})
    assert outside.step_summary() is None
    publish = partial(outside.publish_summary, report=run_dir)
    assert build_reports([run_dir], run_dir, publish_summary=publish).step_summary is None


def test_explicit_step_summary_path(built: ReportPaths) -> None:
    assert built.step_summary is not None
    assert built.step_summary.read_text(encoding="utf-8") == built.summary.read_text(
        encoding="utf-8"
    )


def test_merged_junit_is_written_valid_and_variant_aware(built: ReportPaths) -> None:
    paths = built
    SCHEMA.validate(str(paths.junit))
    xml = junitparser.JUnitXml.fromfile(str(paths.junit))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (33, 2, 1, 5)
    assert paths.merge.testcases_in == paths.merge.testcases_out == 33
    suites = [s.name for s in xml]
    assert "postgres-13_redis-off :: pytest" in suites
    assert "postgres-17_redis-off :: stackmatrix" in suites


def test_summary_text_is_a_plain_table(run_dir: Path) -> None:
    text = summary_text([run_dir])
    lines = text.splitlines()
    assert lines[0] == "shop: 5 variants — 1 failed, 2 passed, 1 error, 1 failed (experimental)"
    assert re.search(
        r"^postgres-15_redis-on\s+passed\s+8\s+0\s+0\s+0\s+49\.3s\s+236 MiB$", text, re.M
    )
    assert f"  {NUMERIC} fails on postgres-13_redis-off: AssertionError" in text
    assert "❌" not in text


def github_annotations(run_dirs: list[Path], *, workspace: Path) -> list[str]:
    github = GitHubActions({"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace)})
    return github.annotations(load_runs(run_dirs))


def test_annotations_point_at_file_and_line(run_dir: Path) -> None:
    commands = github_annotations([run_dir], workspace=Path("/home/runner/work/shop"))
    assert sorted(commands) == sorted(
        [
            "::error file=tests/integration/test_orders.py,line=41,"
            "title=postgres-13_redis-off%3A tests.integration.test_orders%3A%3A"
            "test_order_total_uses_numeric::AssertionError: assert Decimal('10.5') == 10.50",
            "::error title=postgres-17_redis-off%3A error::"
            "service db did not become healthy within 2m0s",
            # Experimental variants may fail: a warning, not an error.
            "::warning file=tests/integration/test_cache.py,line=33,"
            "title=postgres-17_redis-on%3A tests.integration.test_cache%3A%3Atest_cache_eviction"
            "::assert 0 > 0",
        ]
    )


def test_annotations_read_jest_and_go_locations(tmp_path: Path) -> None:
    run = tmp_path / "run"
    journal = build_sample_run(run)
    corpus = Path(__file__).parents[1] / "junit" / "junit_corpus"
    shutil.copy(corpus / "jest_junit.xml", run / "postgres-15_redis-on" / "junit.xml")
    shutil.copy(corpus / "gotestsum.xml", run / "postgres-15_redis-off" / "junit.xml")
    variants = tuple(
        dataclasses.replace(v, status=Status.FAILED) if v.id.startswith("postgres-15") else v
        for v in journal.variants
    )
    dataclasses.replace(journal, variants=variants).write(run)
    commands = github_annotations([run], workspace=Path("/home/runner/work/shop"))
    assert any(
        c.startswith("::error file=web/src/cart.test.js,line=31,title=postgres-15_redis-on")
        for c in commands
    )
    assert any(
        c.startswith("::error file=store_test.go,line=42,title=postgres-15_redis-off")
        for c in commands
    )


def test_html_is_self_contained_and_escaped(built: ReportPaths) -> None:
    html = built.html.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "<link" not in html
    # Every URL the page refers to is relative: nothing is fetched from a network.
    refs = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert refs
    assert all("://" not in ref and not ref.startswith("//") for ref in refs)
    assert 'href="postgres-13_redis-off/logs/db.log"' in html
    assert 'href="postgres-15_redis-on/logs/cache.log"' in html
    assert 'href="postgres-13_redis-off/compose.yaml"' in html
    assert 'href="postgres-13_redis-off/tests.log"' in html
    # One plot per variant that has resource samples (the errored one has none).
    plots = re.findall(r'<img class="plot" alt="CPU and memory per service of ([^"]+)" '
                       r'src="data:image/svg\+xml;base64,([^"]+)"', html)  # fmt: skip
    assert len(plots) == 4
    assert all(base64.b64decode(data).lstrip().startswith(b"<?xml") for _id, data in plots)
    assert "no resource samples" in html
    assert "Decimal(&#x27;10.5&#x27;) == 10.50" in html


def test_html_escapes_names_and_messages_from_tests(tmp_path: Path) -> None:
    run = tmp_path / "run"
    build_sample_run(run)
    junit = run / "postgres-13_redis-off" / "junit.xml"
    hostile = junit.read_text(encoding="utf-8").replace(
        "test_order_total_uses_numeric", "test_&lt;img src=x onerror=alert(1)&gt;"
    )
    junit.write_text(hostile, encoding="utf-8")
    html = build_reports([run], run).html.read_text(encoding="utf-8")
    assert "<img src=x" not in html
    assert "test_&lt;img src=x onerror=alert(1)&gt;" in html


def test_links_are_relative_to_a_separate_output_dir(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    paths = build_reports([run_dir], out)
    assert paths.html == out / "report.html"
    html = paths.html.read_text(encoding="utf-8")
    assert 'href="../runs/20260314-0926-a1b2/postgres-13_redis-off/logs/db.log"' in html
    assert (out / "junit.xml").is_file()
    assert not (run_dir / "report.html").exists()


def _shard(source: Path, target: Path, keep: set[str], run_id: str) -> Path:
    shutil.copytree(source, target)
    journal = RunJournal.read(target)
    variants = tuple(v for v in journal.variants if v.id in keep)
    dataclasses.replace(journal, run_id=run_id, variants=variants).write(target)
    return target


def test_shards_combine_and_a_repeated_variant_is_taken_from_the_later(
    run_dir: Path, tmp_path: Path
) -> None:
    first = _shard(
        run_dir, tmp_path / "s1", {"postgres-13_redis-off", "postgres-15_redis-off"}, "r1"
    )
    second = _shard(
        run_dir, tmp_path / "s2", {"postgres-15_redis-off", "postgres-17_redis-on"}, "r2"
    )
    journal = RunJournal.read(second)
    rerun = tuple(
        dataclasses.replace(v, status=Status.FAILED, reason="flaked on rerun")
        if v.id == "postgres-15_redis-off"
        else v
        for v in journal.variants
    )
    dataclasses.replace(journal, variants=rerun).write(second)
    out = tmp_path / "combined"
    paths = build_reports([first, second], out)
    assert paths.warnings == (
        f"variant postgres-15_redis-off appears in {first} and {second}; using {second}",
    )
    md = paths.summary.read_text(encoding="utf-8")
    assert "| `postgres-15_redis-off` | ❌ failed |" in md
    assert [ln.split("`")[1] for ln in md.splitlines() if ln.startswith("| `postgres-")] == [
        "postgres-13_redis-off",
        "postgres-15_redis-off",
        "postgres-17_redis-on",
    ]
    assert "appears in" in md
    report = load_runs([first, second])
    assert report.run_ids == ("r1", "r2")
    html = paths.html.read_text(encoding="utf-8")
    assert 'href="../s1/postgres-13_redis-off/logs/db.log"' in html
    assert 'href="../s2/postgres-15_redis-off/logs/db.log"' in html


def test_missing_or_broken_inputs_are_reported_not_fatal(run_dir: Path) -> None:
    (run_dir / "postgres-15_redis-on" / "stats.json").unlink()
    (run_dir / "postgres-15_redis-off" / "stats.json").write_text("{oops", encoding="utf-8")
    (run_dir / "postgres-13_redis-off" / "junit.xml").write_text("<testsuite", encoding="utf-8")
    paths = build_reports([run_dir], run_dir)
    html = paths.html.read_text(encoding="utf-8")
    assert "no resource samples were recorded" in html
    assert "cannot read stats.json" in html
    assert "JUnit report: not well-formed XML" in html
    md = paths.summary.read_text(encoding="utf-8")
    assert "- variant `postgres-13_redis-off` JUnit report: not well-formed XML" in md
    assert paths.merge.broken[0].variant_id == "postgres-13_redis-off"


def test_directory_without_journal_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"run\.json: no run journal here"):
        build_reports([tmp_path], tmp_path)


def test_no_run_directory_is_a_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no run directory given"):
        build_reports([], tmp_path)


REPORT_FILES = ("junit.xml", "summary.md", "report.html", "results.json")


@pytest.mark.parametrize("second_process", [False, True])
def test_a_big_run_merged_by_a_second_process_gets_the_same_reports(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_process: bool
) -> None:
    """From PARALLEL_FROM_BYTES of JUnit input on, junit.xml is written by a forked process
    while this one reads the reports: every file comes out as the one-process way writes it."""
    monkeypatch.setattr(build, "PARALLEL_FROM_BYTES", 2**62)
    one = build_reports([run_dir], run_dir)
    expected = {name: (run_dir / name).read_bytes() for name in REPORT_FILES}
    for name in REPORT_FILES:
        (run_dir / name).unlink()
    forks: list[object] = []
    real_start = BaseProcess.start

    def counted_start(self: BaseProcess) -> None:
        forks.append(self)
        real_start(self)

    monkeypatch.setattr(BaseProcess, "start", counted_start)
    monkeypatch.setattr(build, "PARALLEL_FROM_BYTES", 0 if second_process else 2**62)
    two = build_reports([run_dir], run_dir)
    assert len(forks) == (1 if second_process and build._can_fork() else 0)
    assert {name: (run_dir / name).read_bytes() for name in REPORT_FILES} == expected
    assert (two.merge, two.warnings) == (one.merge, one.warnings)


@pytest.mark.parametrize("threshold", [0, 2**62])
def test_a_junit_xml_that_cannot_be_written_fails_the_reports_alike(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """The error of the merge, in this process or in the second one, is the one raised."""
    monkeypatch.setattr(build, "PARALLEL_FROM_BYTES", threshold)
    (run_dir / "junit.xml").mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*junit\.xml: Is a directory"):
        build_reports([run_dir], run_dir)
    assert not (run_dir / "summary.md").exists()
