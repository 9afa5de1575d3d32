"""`stackmatrix report` as a user runs it: completeness against the matrix, --fail-on and its
exit codes, folders of runs, baseline wording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackmatrix.ci.github import STEP_SUMMARY_LIMIT
from stackmatrix.cli.main import main
from stackmatrix.results.journal import Status
from tests.unit.ci.big_run import build_big_run
from tests.unit.report.handmade import T0, Case, Plan, grid_variants, write_run

VARIANTS = grid_variants(["13", "15", "17"], ["a"])
IDS = tuple(ident for ident, _ in VARIANTS)


@pytest.fixture(autouse=True)
def _outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI", "CI"):
        monkeypatch.delenv(name, raising=False)


def _shard(
    runs: Path,
    index: int,
    count: int,
    *,
    run_id: str,
    failing: tuple[str, ...] = (),
    started: float = T0,
    **journal: Any,
) -> Path:
    ids = IDS[index - 1 :: count]
    plans = [
        Plan(
            i,
            v,
            Status.FAILED if i in failing else Status.PASSED,
            [Case("t.C", "test_x", "fail" if i in failing else "pass", "boom")],
        )
        for i, v in VARIANTS
        if i in ids
    ]
    run_dir = runs / run_id
    write_run(
        run_dir,
        plans,
        run_id=run_id,
        shard=f"{index}/{count}",
        matrix_variants=IDS,
        started_at=started,
        **journal,
    )
    return run_dir


def test_a_missing_shard_is_named_and_fails_only_with_fail_on_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _shard(tmp_path, 1, 3, run_id="r1")
    three = _shard(tmp_path, 3, 3, run_id="r3")
    out = tmp_path / "merged"
    assert main(["report", str(one), str(three), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict: incomplete" in printed
    assert "Missing shards: 2/3." in printed
    assert "Missing: 1 of 3 matrix variants are in none of the run directories:" in printed
    assert "postgres-15_driver-a" in printed
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("## ⚠️ stackmatrix shop: 2 variants — 2 passed · incomplete")
    assert main(["report", str(one), str(three), "--out", str(out), "--fail-on", "incomplete"]) == 3
    assert main(["report", str(one), str(three), "--out", str(out), "--fail-on", "failure"]) == 0


def test_every_shard_there_is_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = [str(_shard(tmp_path, i, 3, run_id=f"r{i}")) for i in (1, 2, 3)]
    code = main(["report", *dirs, "--out", str(tmp_path / "m"), "--fail-on", "incomplete,failure"])
    assert code == 0
    assert "verdict: passed" in capsys.readouterr().out


def test_fail_on_failure_and_incomplete_together(tmp_path: Path) -> None:
    one = _shard(tmp_path, 1, 3, run_id="r1", failing=("postgres-13_driver-a",))
    out = str(tmp_path / "m")
    assert main(["report", str(one), "--out", out, "--fail-on", "failure"]) == 1
    # Missing results outrank failed tests, as a broken stack outranks them in `run`.
    assert main(["report", str(one), "--out", out, "--fail-on", "failure",
                 "--fail-on", "incomplete"]) == 3  # fmt: skip


def test_a_crashed_run_is_incomplete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _shard(tmp_path, 1, 1, run_id="r1", finished=False)
    (run / "postgres-17_driver-a" / "junit.xml").unlink()
    # The journal of a run killed before its last variant finished.
    data = json.loads((run / "run.json").read_text(encoding="utf-8"))
    data["variants"] = data["variants"][:2]
    (run / "run.json").write_text(json.dumps(data), encoding="utf-8")
    assert main(["report", str(run), "--fail-on", "incomplete"]) == 3
    printed = capsys.readouterr().out
    assert "Run r1 did not record its end" in printed
    assert "Never finished (1 variants): postgres-17_driver-a." in printed


def test_fail_on_regression_needs_a_baseline_and_fails_on_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _shard(tmp_path / "night1", 1, 1, run_id="n1")
    now = _shard(tmp_path / "night2", 1, 1, run_id="n2", failing=("postgres-15_driver-a",))
    assert main(["report", str(now), "--fail-on", "regression"]) == 2
    assert "--fail-on regression needs --baseline" in capsys.readouterr().err
    assert main(["report", str(before), "--baseline", str(before), "--fail-on", "regression"]) == 0
    code = main(["report", str(now), "--baseline", str(before), "--fail-on", "regression"])
    assert code == 1
    assert "regressions: 1 variant, 1 test on 1 variant" in capsys.readouterr().out


def test_an_unknown_fail_on_word_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _shard(tmp_path, 1, 1, run_id="r1")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(run), "--fail-on", "regresion"])
    assert exit_info.value.code == 2
    assert "expected one or more of regression, failure, incomplete" in capsys.readouterr().err


def test_the_out_folder_means_the_newest_run_and_its_shards_never_latest_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / ".stackmatrix" / "runs"
    # Yesterday's full run, then today's three shards (each job its own run directory).
    _shard(runs, 1, 1, run_id="20260313-020000-0000000000000001", started=T0 - 86_400,
           failing=IDS)  # fmt: skip
    for i in (1, 2, 3):
        _shard(runs, i, 3, run_id=f"20260314-02000{i}-000000000000000{i}", started=T0 + i)
    (runs / "latest").symlink_to("20260314-020003-0000000000000003")
    out = tmp_path / "report"
    for given in (tmp_path / ".stackmatrix", runs):
        assert (
            main(["report", str(given), "--out", str(out), "--fail-on", "failure,incomplete"]) == 0
        )
        captured = capsys.readouterr()
        assert "verdict: passed" in captured.out
        assert "the newest run and the 2 that complete it" in captured.err
        assert "1 older runs left out" in captured.err
        md = (out / "summary.md").read_text(encoding="utf-8")
        assert md.startswith("## ✅ stackmatrix shop: 3 variants — 3 passed\n")
        assert "appears in" not in md  # no variant was read twice


def test_a_link_and_its_target_are_read_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    run = _shard(runs, 1, 1, run_id="r1")
    (runs / "latest").symlink_to("r1")
    assert main(["report", str(runs / "latest"), str(run), "--out", str(tmp_path / "m")]) == 0
    assert "the same run as" in capsys.readouterr().err
    md = (tmp_path / "m" / "summary.md").read_text(encoding="utf-8")
    assert "3 variants — 3 passed" in md


def test_a_folder_without_runs_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no run here" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_errors_in_both_runs_read_error_to_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def night(path: Path, run_id: str) -> Path:
        plans = [
            Plan(i, v, Status.FAILED, [Case("t.C", "test_x", "error", "fixture broke"),
                                       Case("t.C", "test_y", "fail", "assert")])
            for i, v in VARIANTS[:2]
        ]  # fmt: skip
        write_run(path, plans, run_id=run_id)
        return path

    before = night(tmp_path / "n1", "n1")
    now = night(tmp_path / "n2", "n2")
    assert main(["report", str(now), "--baseline", str(before)]) == 0
    md = (now / "summary.md").read_text(encoding="utf-8")
    assert "`t.C::test_x`: error → error" in md
    assert "`t.C::test_y`: failed → failed" in md
    assert "failed → error" not in md
    # Two tests, each on two variants, and two whole variants, counted apart.
    assert "still failing: 2 variants, 2 tests on 2 variants" in capsys.readouterr().out


def test_a_step_summary_over_github_s_limit_is_cut_to_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long parametrized test ids make summary.md well over 1 MiB; GitHub shows none of a step
    # summary above that, so `report` cuts what it appends and says so at the end.
    build_big_run(tmp_path / "run", pad=5000)
    step_summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "report")]) == 0
    full = (tmp_path / "report" / "summary.md").read_bytes()
    assert len(full) > STEP_SUMMARY_LIMIT
    written = step_summary.read_text(encoding="utf-8")
    assert len(written.encode("utf-8")) <= STEP_SUMMARY_LIMIT
    closing = written.rstrip("\n").splitlines()[-1]
    assert closing.startswith("> ✂️ This summary was cut to fit GitHub's 1 MiB step summary:")
    assert f"`{tmp_path / 'report'}` on the runner" in closing


def test_a_run_without_a_start_time_in_a_folder_is_left_out_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    for i in (1, 2, 3):
        _shard(runs, i, 3, run_id=f"r{i}", started=T0 + i)
    broken = runs / "r0"
    _shard(runs, 1, 1, run_id="r0", failing=IDS)
    document = json.loads((broken / "run.json").read_text(encoding="utf-8"))
    document["started_at"] = None
    (broken / "run.json").write_text(json.dumps(document), encoding="utf-8")
    assert main(["report", str(runs), "--out", str(tmp_path / "m"), "--fail-on", "failure"]) == 0
    captured = capsys.readouterr()
    assert (
        f"note: {broken}: left out: its run.json has no start time (started_at is null,"
        " not a number)" in captured.err
    )
    assert "Traceback" not in captured.err
    assert "verdict: passed" in captured.out
    # Alone in its folder, it is a usage error saying the same.
    for i in (1, 2, 3):
        (runs / f"r{i}").rename(tmp_path / f"r{i}")
    assert main(["report", str(runs)]) == 2
    assert "has no start time" in capsys.readouterr().err
