"""``stackmatrix run --failed --failed-tests``: what it says before any stack comes up."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmatrix.cli.main import main
from stackmatrix.results.journal import RunJournal

RUN_ID = "20260314-092000-a1b2"
WARNING = (
    "stackmatrix: warning: matrix.yaml:4:12: tests.command has no ${{ failed }} and there is"
    " no tests.rerun: the failed testcases are added after the command's own arguments,"
    " which may run more than them (set tests.rerun, or put ${{ failed }} in tests.command;"
    " see docs/matrix.md)"
)


def _rerun(
    folder: Path, tests: str, capsys: pytest.CaptureFixture[str], *words: str
) -> tuple[int, list[str]]:
    """``run --failed RUN --failed-tests`` after a run in which everything passed: nothing to
    run again, so no engine is reached."""
    (folder / "matrix.yaml").write_text(
        "axes: {v: [a]}\noverlays: [{compose: {services: {db: {image: x}}}}]\n" + tests,
        encoding="utf-8",
    )
    run_dir = folder / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    RunJournal(
        run_id=RUN_ID,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="0" * 64,
        started_at=1.0,
        finished_at=2.0,
        exit_code=0,
    ).write(run_dir)
    code = main(["run", "-f", "matrix.yaml", "--failed", str(run_dir), *words])
    return code, capsys.readouterr().err.splitlines()


def test_failed_tests_appended_to_a_command_that_names_its_tests_warn_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    tests = "tests:\n  command: pytest test/dialect/postgresql --junitxml=${{ junit }}\n"
    code, lines = _rerun(tmp_path, tests, capsys, "--failed-tests")
    assert code == 0
    assert lines[1] == WARNING
    assert lines.count(WARNING) == 1
    assert lines[-1] == "stackmatrix: no variant to run in this selection"


@pytest.mark.parametrize(
    ("tests", "words"),
    [
        ("tests:\n  command: pytest test/ -x\n", ()),  # --failed alone runs whole suites
        (
            "tests:\n  command: pytest test/\n  rerun: [pytest, '${{ failed }}']\n",
            ("--failed-tests",),
        ),
        ("tests:\n  command: [pytest, '${{ failed }}']\n", ("--failed-tests",)),
    ],
    ids=["without-failed-tests", "rerun", "failed-in-command"],
)
def test_no_warning_when_the_failed_tests_have_their_place(
    tests: str,
    words: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = _rerun(tmp_path, tests, capsys, *words)
    assert code == 0
    assert not [line for line in lines if "warning:" in line]
