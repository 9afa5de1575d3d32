"""History over many nights: streaks, flaky counts, version changes, bounds, bad input, and
`stackmatrix report --history` as a user runs it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackmatrix.cli.main import main
from stackmatrix.errors import UsageError
from stackmatrix.report.baseline import Mark
from stackmatrix.report.build import build_reports
from stackmatrix.report.history import (
    Night,
    build_history,
    night_headings,
    read_night,
    read_nights,
    since_previous,
)
from stackmatrix.report.history_html import render_history_html
from stackmatrix.results.journal import Provenance, ServiceProvenance, Status
from tests.unit.report.handmade import T0, Case, Plan, write_run

DAY = 86_400.0
# Night by night (7 nights): test_flaky on postgres-15 fails on nights 2, 4 and 5.
FLAKY_NIGHTS = {1, 3, 4}  # zero-based
BROKEN_FROM = 5  # test_broken on postgres-17 fails from the sixth night on


@pytest.fixture(autouse=True)
def _outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI", "CI"):
        monkeypatch.delenv(name, raising=False)


def _db(version: str, image_id: str) -> Provenance:
    return Provenance(
        services={
            "db": ServiceProvenance(
                image="local/pg", image_id=image_id, version=version, version_source="postgres"
            )
        }
    )


def write_night(root: Path, night: int, *, pg17: str = "17.1") -> Path:
    """The run of night *night* (zero-based): two variants, three tests."""
    started = T0 + night * DAY
    run_id = datetime.fromtimestamp(started, UTC).strftime("%Y%m%d-%H%M%S-") + f"{night:016x}"
    flaky = "fail" if night in FLAKY_NIGHTS else "pass"
    broken = "fail" if night >= BROKEN_FROM else "pass"
    plans = [
        Plan(
            "postgres-15",
            {"postgres": "15"},
            status=Status.FAILED if flaky == "fail" else Status.PASSED,
            cases=[
                Case("t", "test_stable"),
                Case("t", "test_flaky", flaky, message="timeout waiting for the db"),
            ],
            extra={"provenance": _db("15.8", "sha256:" + "a" * 64)},
        ),
        Plan(
            "postgres-17",
            {"postgres": "17"},
            status=Status.FAILED if broken == "fail" else Status.PASSED,
            cases=[Case("t", "test_stable"), Case("t", "test_broken", broken, message="boom")],
            extra={"provenance": _db(pg17, "sha256:" + ("b" if pg17 == "17.1" else "c") * 64)},
        ),
    ]
    run_dir = root / run_id
    write_run(run_dir, plans, run_id=run_id, started_at=started)
    return run_dir


def seven_nights(root: Path) -> list[Path]:
    """Seven nights; postgres 17 moves from 17.1 to 17.2 on the sixth."""
    return [write_night(root, n, pg17="17.2" if n >= BROKEN_FROM else "17.1") for n in range(7)]


def test_flaky_counts_streaks_and_order(tmp_path: Path) -> None:
    nights = [read_night(d) for d in seven_nights(tmp_path)]
    history = build_history(list(reversed(nights)))  # ordered by start time, not given order
    assert [n.date for n in history.nights] == [f"2026-03-{14 + n}" for n in range(7)]
    assert len(history.rows) == 2  # test_stable never failed: not a row
    assert history.tests_seen == 4
    broken, flaky = history.rows  # failing now first
    assert broken.test.endswith("test_broken")
    assert broken.variant == "postgres-17"
    assert broken.failing
    assert broken.streak_start == BROKEN_FROM
    assert broken.counts_text == "failed 2 of 7 nights, 1 flip"
    assert flaky.marks == (Mark.PASS, Mark.FAIL, Mark.PASS, Mark.FAIL, Mark.FAIL, Mark.PASS,
                           Mark.PASS)  # fmt: skip
    assert flaky.counts_text == "failed 3 of 7 nights, 4 flips"
    assert flaky.rate == pytest.approx(3 / 7)
    assert flaky.streak_start is None
    assert not flaky.failing
    assert flaky.message == "timeout waiting for the db"


def test_version_changes_on_the_time_line(tmp_path: Path) -> None:
    history = build_history([read_night(d) for d in seven_nights(tmp_path)])
    (change,) = history.changes
    assert change.night == BROKEN_FROM
    # The words of the reports and the baseline (stackmatrix.report.provenance).
    assert change.text == "postgres-17: db postgres 17.1 → 17.2"
    assert {c.text for c in history.first_seen} == {
        "postgres-15: db postgres 15.8 · sha256:aaaaaaaaaaaa",
        "postgres-17: db postgres 17.1 · sha256:bbbbbbbbbbbb",
    }


def test_three_lines_since_the_night_before(tmp_path: Path) -> None:
    dirs = seven_nights(tmp_path)
    nights = [read_night(d) for d in dirs]
    new, fixed, versions = since_previous(build_history(nights[:6]))
    previous = nights[4].label
    assert new == f"New failures since {previous}: 1 (t::test_broken on postgres-17)"
    assert fixed == f"Fixed since {previous}: 1 (t::test_flaky on postgres-15)"
    assert versions == f"Version changes since {previous}: 1 (postgres-17: db postgres 17.1 → 17.2)"
    alone = since_previous(build_history(nights[:1]))
    assert alone[0] == "New failures: none (no previous night in the history)"


def test_window_and_row_bounds(tmp_path: Path) -> None:
    nights = [read_night(d) for d in seven_nights(tmp_path)]
    history = build_history(nights, window=3, max_rows=1)
    assert history.nights_cut == 4
    assert [n.started_at for n in history.nights] == [T0 + n * DAY for n in (4, 5, 6)]
    assert len(history.rows) == 1
    assert history.rows_cut == 1
    page = render_history_html(history)
    assert "4 older nights are left out of this window of 3" in page
    assert "1 more test x variant rows that failed at least once are not shown" in page
    assert page.count('class="night"') == 3


def test_a_night_column_is_headed_by_its_date_with_the_run_id_in_its_title(
    tmp_path: Path,
) -> None:
    dirs = seven_nights(tmp_path)
    page = render_history_html(build_history([read_night(d) for d in dirs]))
    first = dirs[0].name
    assert f'<th class="night" title="2026-03-14 {first}">2026-03-14</th>' in page
    assert page.count('<th class="night"') == 7
    heads = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert first not in heads.replace(f'title="2026-03-14 {first}"', "")


def test_nights_that_share_a_date_are_told_apart_by_their_run_ids_time() -> None:
    hour = 3_600.0
    nights = [
        Night("a", ("20260314-090000-aaaa",), T0),
        Night("b", ("20260314-210000-bbbb",), T0 + 12 * hour),
        Night("c", ("20260315-090000-cccc",), T0 + 24 * hour),
        Night("d", ("20260316-090000-dddd",), T0 + 48 * hour),
        Night("e", ("20260316-090030-eeee",), T0 + 48 * hour + 30),
        Night("f", ("nightly-17",), None),
        Night("g", (), None),
    ]
    assert night_headings(nights) == (
        "2026-03-14 09:00",
        "2026-03-14 21:00",
        "2026-03-15",
        "2026-03-16 09:00:00",
        "2026-03-16 09:00:30",
        "? nightly-17",
        "? g",
    )
    page = render_history_html(
        build_history([replace(n, marks={("v", "t"): Mark.FAIL}) for n in nights])
    )
    assert '<th class="night" title="2026-03-14 20260314-210000-bbbb">2026-03-14 21:00</th>' in page


def test_page_shows_rates_counts_and_is_self_contained(tmp_path: Path) -> None:
    page = render_history_html(build_history([read_night(d) for d in seven_nights(tmp_path)]))
    assert "failed 3 of 7 nights, 4 flips" in page
    assert '<td class="num rate">43%</td>' in page
    assert "failed 2 of 7 nights, 1 flip" in page
    assert "postgres-17: db postgres 17.1 → 17.2" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page


def test_secrets_in_messages_are_masked() -> None:
    night = Night(
        "n", ("20260310-030000-1",), T0,
        marks={("v", "t"): Mark.FAIL},
        messages={("v", "t"): "cannot reach postgresql://app:hunter22@db/app"},
    )  # fmt: skip
    page = render_history_html(build_history([night]))
    assert "hunter22" not in page


def test_a_report_directory_is_a_night(tmp_path: Path) -> None:
    run_dir = write_night(tmp_path / "runs", 1)
    report = tmp_path / "report"
    build_reports([run_dir], report)
    night = read_night(report)
    assert night.run_ids == (run_dir.name,)
    # No run.json beside results.json: the start is the one the run id carries.
    assert night.started_at == T0 + DAY
    assert night.label == f"2026-03-15 {run_dir.name}"
    assert night.marks[("postgres-15", "t::test_flaky")] is Mark.FAIL


def test_a_night_named_twice_is_read_once(tmp_path: Path) -> None:
    run_dir = write_night(tmp_path / "runs", 0)
    (tmp_path / "runs" / "latest").symlink_to(run_dir.name)
    nights, notes = read_nights([run_dir, tmp_path / "runs" / "latest"])
    assert len(nights) == 1
    assert notes == [f"{tmp_path / 'runs' / 'latest'}: the same run as {run_dir}; read once"]


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_bad_history_input_names_it(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "bad"
    if kind == "empty":
        bad.mkdir()
    elif kind == "file":
        bad.write_text("{}")
    with pytest.raises(UsageError, match=f"--history {bad}: "):
        read_night(bad)


def test_cli_writes_history_and_says_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = seven_nights(tmp_path / "runs")
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    out = tmp_path / "out"
    code = main(["report", str(dirs[-1]), "--out", str(out), "--history", *map(str, dirs[:-1])])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"history.html {out / 'history.html'} (7 nights)" in printed
    assert "New failures since" in printed
    assert "Version changes since" in printed
    page = (out / "history.html").read_text(encoding="utf-8")
    assert "failed 3 of 7 nights, 4 flips" in page
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "### Since the previous night" in summary
    assert "- Fixed since" in summary
    assert step_summary.read_text(encoding="utf-8").endswith(summary)
    assert step_summary.read_text(encoding="utf-8").count("### Since the previous night") == 1


def test_cli_window_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = seven_nights(tmp_path / "runs")
    out = tmp_path / "out"
    code = main(["report", str(dirs[-1]), "--out", str(out), "--history", *map(str, dirs[:-1]),
                 "--history-nights", "3"])  # fmt: skip
    assert code == 0
    assert "(3 nights)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["report", str(dirs[-1]), "--history-nights", "0"])
    assert exited.value.code == 2


def test_cli_bad_history_exits_2_keeping_the_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = write_night(tmp_path / "runs", 0)
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    missing = tmp_path / "nowhere"
    code = main(["report", str(run_dir), "--history", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"--history {missing}: no such directory" in err
    assert "Traceback" not in err
    assert (run_dir / "summary.md").is_file()
    assert (run_dir / "report.html").is_file()
    assert not (run_dir / "history.html").exists()
    # The step summary is still published, without the lines on the nights.
    assert step_summary.read_text(encoding="utf-8") == (run_dir / "summary.md").read_text(
        encoding="utf-8"
    )
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert results["run_ids"] == [run_dir.name]


def test_a_night_as_the_nightly_keeps_it(tmp_path: Path) -> None:
    """results.json of the merged report and each shard's run.json, no JUnit files."""
    run_dir = write_night(tmp_path / "runs", 5, pg17="17.2")
    build_reports([run_dir], tmp_path / "merged")
    kept = tmp_path / "history" / "4242"
    (kept / "runs" / run_dir.name).mkdir(parents=True)
    (kept / "results.json").write_bytes((tmp_path / "merged" / "results.json").read_bytes())
    (kept / "runs" / run_dir.name / "run.json").write_bytes((run_dir / "run.json").read_bytes())
    night = read_night(kept)
    assert night.run_ids == (run_dir.name,)
    assert night.started_at == T0 + 5 * DAY  # from run.json
    assert night.marks[("postgres-17", "t::test_broken")] is Mark.FAIL
    assert night.provenance["postgres-17"].services["db"].version == "17.2"


def test_the_three_lines_mask_secrets_in_what_ran() -> None:
    def night(index: int, source: str) -> Night:
        packages = {"shoplib": f"git+https://ci:{source}@git.example/shoplib"}
        return Night(
            f"n{index}", (f"2026031{index}-030000-1",), T0 + index * DAY,
            provenance={"v": Provenance(packages=packages)},
        )  # fmt: skip

    history = build_history([night(0, "tok-old-123"), night(1, "tok-new-456")])
    *_, versions = since_previous(history)
    assert versions.startswith("Version changes since ")
    assert "v: package shoplib git+https://ci:••••••@git.example/shoplib → " in versions
    assert "tok-" not in versions
    assert "tok-" not in render_history_html(history)


def test_cli_history_of_the_first_night_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_night(tmp_path / "runs", 0)
    assert main(["report", str(run_dir), "--history"]) == 0
    printed = capsys.readouterr().out
    assert f"history.html {run_dir / 'history.html'} (1 night)" in printed
    assert "  Fixed: none (no previous night in the history)" in printed
    summary = (run_dir / "summary.md").read_text(encoding="utf-8")
    assert summary.endswith("\n1 night in history.html.\n")


def test_a_huge_suite_keeps_the_page_bounded() -> None:
    tests = [f"tests/test_big.py::test_{n}" for n in range(20_000)]

    def night(index: int) -> Night:
        # Every tenth test fails every other night: 2,000 flaky rows.
        marks = {
            ("v", test): Mark.FAIL if n % 10 == 0 and (n + index) % 2 else Mark.PASS
            for n, test in enumerate(tests)
        }
        return Night(f"n{index}", (f"run-{index:02d}",), T0 + index * DAY, marks=marks)

    nights = [night(index) for index in range(30)]
    history = build_history(nights)
    assert history.tests_seen == 20_000
    assert len(history.rows) == 500
    assert history.rows_cut == 1_500
    page = render_history_html(history)
    assert "1500 more test x variant rows that failed at least once are not shown" in page
    assert len(page.encode()) < 2_000_000
