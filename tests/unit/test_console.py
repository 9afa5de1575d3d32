"""What a person sees while a run goes: plain lines in a log, ``::group::`` blocks under GitHub
Actions, a live board with colour on a terminal, and the table at the end."""

from __future__ import annotations

import dataclasses
import io
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from stackmatrix.ci.github import GitHubActions
from stackmatrix.ci.provider import Plain
from stackmatrix.console import DETAIL_LINES, Console, results_table
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import RunJournal, Status, TestCounts, VariantResult
from tests.unit.report.handmade import Case, Plan, write_run

T0 = 1_773_480_000.0
GITHUB = GitHubActions({"GITHUB_ACTIONS": "true"})
VARIANTS = [Variant("pg-13", {"pg": "13"}), Variant("pg-15", {"pg": "15"})]


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _a_person_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests run in CI too: the console must not see CI's own environment.
    for name in ("NO_COLOR", "CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)


def _passed(vid: str = "pg-13", **changes: Any) -> VariantResult:
    result = VariantResult(
        id=vid,
        values={"pg": vid.removeprefix("pg-")},
        status=Status.PASSED,
        tests=TestCounts(total=4, passed=3, skipped=1),
        started_at=T0,
        finished_at=T0 + 12.34,
        phases={"up": 1.234, "ready": 2.0, "tests": 9.87},
    )
    return dataclasses.replace(result, **changes)


def _errored(vid: str = "pg-15", **changes: Any) -> VariantResult:
    result = VariantResult(
        id=vid,
        values={"pg": vid.removeprefix("pg-")},
        status=Status.ERROR,
        reason="service 'db' exited with code 1",
        detail="service db: status exited, exit code 1\nlast 30 log lines:\nFATAL: bad config",
        started_at=T0,
        finished_at=T0 + 65.2,
    )
    return dataclasses.replace(result, **changes)


def _journal(*results: VariantResult, exit_code: int = 3) -> RunJournal:
    return RunJournal(
        run_id="20260314-092000-a1b2",
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="0" * 64,
        started_at=T0,
        finished_at=T0 + 70,
        exit_code=exit_code,
        variants=results,
    )


_CLEAR = re.compile(r"\x1b\[(\d+)F\x1b\[J")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_BOARD_ROW = re.compile(r"  (queued|up|ready|tests) +pg-\d+")


def _screen(output: str) -> list[str]:
    """What a terminal shows after *output*: a cursor-up-and-clear erases that many lines."""
    lines: list[str] = []
    position = 0
    for clear in _CLEAR.finditer(output):
        before = output[position : clear.start()]
        assert before == "" or before.endswith("\n"), "the board is cleared mid-line"
        lines.extend(before.splitlines())
        count = int(clear[1])
        assert count <= len(lines), "cleared more lines than were drawn"
        del lines[len(lines) - count :]
        position = clear.end()
    lines.extend(output[position:].splitlines())
    return lines


# -- plain: a CI log or a pipe ----------------------------------------------------------------


def test_a_plain_run_reads_as_lines_then_blocks_then_the_table(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out, provider=Plain())
    run_dir = tmp_path / "runs" / "r1"
    console.start(VARIANTS, run_dir=run_dir, jobs=2)
    console.phase("pg-13", "up")
    console.phase("pg-15", "up")
    console.phase("pg-13", "tests")
    console.finished(_passed())
    console.note("fail-fast: pg-15 error; stopping the rest")
    console.finished(_errored())
    console.done(_journal(_passed(), _errored()), run_dir)  # no run.json: the bare table
    assert out.getvalue().splitlines() == [
        f"stackmatrix: 2 variant(s), 2 at a time -> {run_dir}",
        "  pg-13: up",
        "  pg-15: up",
        "  pg-13: tests",
        "ok       pg-13  3 passed, 0 failed, 0 errors, 1 skipped  in 12.3s",
        "  phases: up 1.2s, ready 2.0s, tests 9.9s",
        "stackmatrix: fail-fast: pg-15 error; stopping the rest",
        "ERROR    pg-15  0 passed, 0 failed, 0 errors, 0 skipped  in 1m 05s",
        "  reason: service 'db' exited with code 1",
        "  | service db: status exited, exit code 1",
        "  | last 30 log lines:",
        "  | FATAL: bad config",
        "",
        "variant  status  passed  failed  errors  skipped  time",
        "pg-13    passed  3       0       0       1        12.3s",
        "pg-15    error   0       0       0       0        1m 05s",
        f"run.json     {run_dir / 'run.json'}",
        "exit code 3",
    ]


def test_not_live_means_no_escape_codes_at_all(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(out, provider=Plain(), live=False)
    console.start(VARIANTS, run_dir=tmp_path, jobs=1)
    console.phase("pg-13", "up")
    console.finished(_errored("pg-13", status=Status.FAILED))
    console.finished(_errored())
    console.done(_journal(), tmp_path)
    assert "\x1b" not in out.getvalue()


def test_done_prints_the_reports_summary_and_the_files_that_exist(tmp_path: Path) -> None:
    journal = _journal(_passed(), _errored())
    journal.write(tmp_path)
    (tmp_path / "summary.md").write_text("# shop\n", encoding="utf-8")
    (tmp_path / "junit.xml").write_text("<testsuites/>\n", encoding="utf-8")
    out = io.StringIO()
    Console(out, provider=Plain()).done(journal, tmp_path)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["", "shop: 2 variants — 1 passed, 1 error"]
    assert "Failures:" in lines
    assert "  variant pg-15: service 'db' exited with code 1" in lines
    # Only the reports that are there, then the journal and the exit code.
    assert lines[-4:] == [
        f"summary.md   {tmp_path / 'summary.md'}",
        f"junit.xml    {tmp_path / 'junit.xml'}",
        f"run.json     {tmp_path / 'run.json'}",
        "exit code 3",
    ]


# -- what a finished variant's block holds ----------------------------------------------------


def test_a_long_detail_keeps_only_its_last_lines() -> None:
    detail = "\n".join(f"log line {i}" for i in range(1, 101))
    out = io.StringIO()
    Console(out, provider=Plain()).finished(_errored(detail=detail))
    quoted = [line for line in out.getvalue().splitlines() if line.startswith("  | ")]
    assert len(quoted) == DETAIL_LINES
    assert quoted[0] == f"  | log line {101 - DETAIL_LINES}"
    assert quoted[-1] == "  | log line 100"


def test_a_variant_that_passed_on_a_retry_is_called_flaky() -> None:
    out = io.StringIO()
    console = Console(out, provider=Plain())
    console.finished(_passed(attempt_statuses=("failed", "failed"), phases={}))
    console.finished(
        _errored(
            "pg-15",
            status=Status.FAILED,
            attempt_statuses=("failed",),
            reason="tests exited with code 1",
            detail="",
        )
    )
    assert out.getvalue().splitlines() == [
        "ok       pg-13  3 passed, 0 failed, 0 errors, 1 skipped  in 12.3s",
        "  attempts: 3 (earlier: failed, failed) - flaky",
        "FAILED   pg-15  0 passed, 0 failed, 0 errors, 0 skipped  in 1m 05s",
        "  attempts: 2 (earlier: failed)",
        "  reason: tests exited with code 1",
    ]


@pytest.mark.parametrize(
    ("status", "mark"),
    [
        (Status.PASSED, "ok      "),
        (Status.FAILED, "FAILED  "),
        (Status.ERROR, "ERROR   "),
        (Status.EXPERIMENTAL_FAILED, "failed (experimental)"),
        (Status.CANCELLED, "cancelled"),
        (Status.INTERRUPTED, "interrupted"),
    ],
)
def test_every_status_has_its_mark(status: Status, mark: str) -> None:
    out = io.StringIO()
    never_ran = VariantResult(id="pg-13", values={}, status=status)
    Console(out, provider=Plain()).finished(never_ran)
    assert out.getvalue() == f"{mark} pg-13  0 passed, 0 failed, 0 errors, 0 skipped  in -\n"


# -- GitHub Actions: one folded group per variant ---------------------------------------------


def test_under_github_each_variant_is_one_group_and_phases_are_not_printed(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    console = Console(out, provider=GITHUB)
    assert not console.live  # a CI log is never a live board
    console.start(VARIANTS, run_dir=tmp_path, jobs=2)
    console.phase("pg-13", "up")
    console.phase("pg-15", "up")
    console.finished(_passed())
    console.finished(_errored())
    assert out.getvalue().splitlines() == [
        f"stackmatrix: 2 variant(s), 2 at a time -> {tmp_path}",
        "::group::ok       pg-13  3 passed, 0 failed, 0 errors, 1 skipped  in 12.3s",
        "  phases: up 1.2s, ready 2.0s, tests 9.9s",
        "::endgroup::",
        "::group::ERROR    pg-15  0 passed, 0 failed, 0 errors, 0 skipped  in 1m 05s",
        "  reason: service 'db' exited with code 1",
        "  | service db: status exited, exit code 1",
        "  | last 30 log lines:",
        "  | FATAL: bad config",
        "::endgroup::",
    ]


@pytest.mark.parametrize("provider", [Plain(), GITHUB], ids=["plain", "github"])
def test_variants_finishing_together_never_interleave(provider: Plain | GitHubActions) -> None:
    out = io.StringIO()
    console = Console(out, provider=provider, live=False)
    ids = [f"v-{i:02d}" for i in range(16)]
    console.start([Variant(v, {}) for v in ids], run_dir=Path("runs/r1"), jobs=16)
    barrier = threading.Barrier(len(ids))
    detail = "\n".join(f"detail {n}" for n in range(30))

    def run(vid: str) -> None:
        barrier.wait()
        for phase in ("up", "ready", "tests"):
            console.phase(vid, phase)
        console.finished(_errored(vid, detail=f"{vid}\n{detail}"))

    threads = [threading.Thread(target=run, args=(vid,)) for vid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    lines = out.getvalue().splitlines()
    heads = [i for i, line in enumerate(lines) if " 0 passed," in line]
    assert len(heads) == len(ids)
    for head in heads:
        vid = lines[head].split()[1]
        block = lines[head + 1 : head + 34]  # reason, 31 detail lines, (endgroup)
        assert block[0] == "  reason: service 'db' exited with code 1"
        assert block[1] == f"  | {vid}"
        assert block[2:32] == [f"  | detail {n}" for n in range(30)]


# -- a terminal: the live board and colour ----------------------------------------------------


def test_a_terminal_gets_a_live_board_unless_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert Console(_Terminal(), provider=Plain()).live
    assert not Console(io.StringIO(), provider=Plain()).live  # a pipe or a file
    assert not Console(_Terminal(), provider=GITHUB).live
    monkeypatch.setenv("CI", "true")
    assert not Console(_Terminal(), provider=Plain()).live


def test_the_live_board_shows_running_and_queued_variants_then_goes(tmp_path: Path) -> None:
    out = _Terminal()
    console = Console(out, provider=Plain())
    variants = [*VARIANTS, Variant("pg-17", {"pg": "17"})]
    console.start(variants, run_dir=tmp_path, jobs=2)
    console.phase("pg-13", "up")
    console.phase("pg-15", "ready")
    board = _screen(_COLOUR.sub("", out.getvalue()))[1:]
    assert [row.split()[:2] for row in board] == [
        ["up", "pg-13"],
        ["ready", "pg-15"],
        ["queued", "pg-17"],
    ]
    assert re.fullmatch(r"  up       pg-13  \d+\.\ds", board[0])

    console.finished(_passed())
    screen = _screen(_COLOUR.sub("", out.getvalue()))
    assert screen[1] == "ok       pg-13  3 passed, 0 failed, 0 errors, 1 skipped  in 12.3s"
    assert [row.split()[:2] for row in screen[3:]] == [["ready", "pg-15"], ["queued", "pg-17"]]

    console.note("SIGINT: stopping; tearing down running stacks (this takes a moment)")
    console.finished(_errored(status=Status.INTERRUPTED, reason="interrupted", detail=""))
    console.done(_journal(_passed(), exit_code=130), tmp_path)
    screen = _screen(_COLOUR.sub("", out.getvalue()))
    assert not [line for line in screen if _BOARD_ROW.match(line)]
    assert screen[-1] == "exit code 130"
    assert "stackmatrix: SIGINT: stopping; tearing down running stacks (this takes a moment)" in (
        screen
    )


def test_a_live_board_colours_the_marks(tmp_path: Path) -> None:
    out = _Terminal()
    console = Console(out, provider=Plain())
    console.finished(_passed())
    console.finished(_errored())
    text = out.getvalue()
    assert "\x1b[32mok      \x1b[0m pg-13" in text
    assert "\x1b[31;1mERROR   \x1b[0m pg-15" in text


def test_no_color_keeps_the_board_but_drops_the_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = _Terminal()
    console = Console(out, provider=Plain())
    assert console.live
    console.start(VARIANTS, run_dir=Path("runs/r1"), jobs=1)
    console.phase("pg-13", "up")
    console.finished(_passed())
    console.done(_journal(_passed(), exit_code=0), Path("runs/r1"))
    text = out.getvalue()
    assert _COLOUR.search(text) is None
    assert _CLEAR.search(text) is not None  # the board was drawn and cleared


def test_the_board_keeps_ticking_while_nothing_happens(tmp_path: Path) -> None:
    out = _Terminal()
    console = Console(out, provider=Plain())
    console.start(VARIANTS[:1], run_dir=tmp_path, jobs=1)
    console.phase("pg-13", "tests")
    drawn = out.getvalue().count("pg-13")
    threading.Event().wait(1.2)  # two ticks of the board's clock
    try:
        assert out.getvalue().count("pg-13") > drawn
    finally:
        console.done(_journal(exit_code=0), tmp_path)


# -- the bare table ---------------------------------------------------------------------------


def test_results_table_aligns_columns_and_says_unknown_times() -> None:
    results = [
        _passed("postgres-13-redis-on"),
        _errored("pg-15"),
        VariantResult(id="pg-17", values={}, status=Status.CANCELLED),
    ]
    assert results_table(results).splitlines() == [
        "variant               status     passed  failed  errors  skipped  time",
        "postgres-13-redis-on  passed     3       0       0       1        12.3s",
        "pg-15                 error      0       0       0       0        1m 05s",
        "pg-17                 cancelled  0       0       0       0        -",
    ]


def test_results_table_of_no_results_is_the_header() -> None:
    assert results_table([]) == "variant  status  passed  failed  errors  skipped  time"


def test_done_lists_a_failure_once_naming_its_variants(tmp_path: Path) -> None:
    plans = [
        Plan(v.id, v.values, Status.FAILED, [Case("t.Locale", "test_c", "fail", "no C.utf8")])
        for v in VARIANTS
    ]
    journal = write_run(tmp_path, plans)
    out = io.StringIO()
    Console(out, provider=Plain()).done(journal, tmp_path)
    lines = out.getvalue().splitlines()
    assert [ln for ln in lines if "test_c" in ln] == [
        "  t.Locale::test_c fails on every variant (2): no C.utf8"
    ]


def test_done_says_a_run_that_ended_on_an_error_is_not_a_passing_run(tmp_path: Path) -> None:
    journal = _journal(exit_code=2)
    journal.write(tmp_path)
    out = io.StringIO()
    Console(out, provider=Plain()).done(journal, tmp_path)
    text = out.getvalue()
    assert "shop: 0 variants — a run ended on an error" in text
    assert "ended with exit code 2 (the spec or the command line is wrong)" in text
