"""What the test suite checks before any stack comes up, and what ``run --failed-tests``
warns about its command."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmatrix.engine.suite import check_before_up, failed_tests_warning
from stackmatrix.errors import SpecError
from stackmatrix.matrix.expand import expand
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Spec

RUN_ID = "20260314-092000-a1b2"


def _spec(folder: Path, tests: str) -> Spec:
    (folder / "matrix.yaml").write_text(
        "axes: {v: [a, b]}\noverlays: [{compose: {services: {db: {image: x}}}}]\n" + tests,
        encoding="utf-8",
    )
    return load_spec(folder / "matrix.yaml")


def test_a_missing_workdir_stops_the_run_before_any_stack_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, "tests: {command: x, workdir: no/such/dir}\n")
    with pytest.raises(SpecError) as caught:
        check_before_up(spec, expand(spec), run_id=RUN_ID, base_env={"PATH": "/usr/bin"})
    assert caught.value.problems == [
        "matrix.yaml:3:30: tests.workdir: directory not found: no/such/dir"
    ]
    assert caught.value.exit_code == 2


def test_a_workdir_made_before_the_run_passes_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, "tests: {command: [sh, -c, 'true'], workdir: later/src}\n")
    (tmp_path / "later" / "src").mkdir(parents=True)  # what a nox session does before
    check_before_up(spec, expand(spec), run_id=RUN_ID, base_env={"PATH": "/usr/bin:/bin"})


def test_failed_tests_after_the_command_own_arguments_get_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, "tests:\n  command: pytest test/dialect/postgresql -x\n")
    assert failed_tests_warning(spec) == (
        "matrix.yaml:4:12: tests.command has no ${{ failed }} and there is no tests.rerun:"
        " the failed testcases are added after the command's own arguments, which may run"
        " more than them (set tests.rerun, or put ${{ failed }} in tests.command;"
        " see docs/matrix.md)"
    )


@pytest.mark.parametrize(
    "tests",
    [
        "tests: {command: [pytest, '${{ failed }}']}\n",
        "tests: {command: 'pytest ${{ failed }} -x', shell: true}\n",
        "tests: {command: [pytest, test/], rerun: [pytest, '${{ failed }}']}\n",
    ],
    ids=["failed-in-command", "failed-in-shell-line", "rerun"],
)
def test_no_warning_when_the_spec_says_where_the_failed_tests_go(
    tests: str, tmp_path: Path
) -> None:
    assert failed_tests_warning(_spec(tmp_path, tests)) == ""
