"""Scheduling many variants, with the life of one variant given: fail-fast, never-started
variants, retries, a signal, and the run journal on disk.

``run_variant`` is the one engine-bound step (one compose stack per variant); here it is a
stand-in that plays each variant's outcome from a plan and writes the files a real variant
writes (``junit.xml``, ``tests.log``). Everything around it is the real scheduler, console,
journal and run directory.
"""

from __future__ import annotations

import io
import os
import signal
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stackmatrix.ci.provider import Plain
from stackmatrix.console import Console
from stackmatrix.engine import scheduler
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.prepare import Prepared
from stackmatrix.engine.scheduler import RunRequest, run_matrix
from stackmatrix.errors import SpecError
from stackmatrix.junit.read import read_counts
from stackmatrix.matrix.expand import expand
from stackmatrix.results.journal import RunJournal, Status, TestCounts, VariantResult
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.models import Spec


def _spec(tmp_path: Path, versions: Sequence[str]) -> Spec:
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(
        'services:\n  db: {image: "postgres:${{ matrix.pg }}"}\n', encoding="utf-8"
    )
    axis = ", ".join(f'"{v}"' for v in versions)
    (project / "matrix.yaml").write_text(
        textwrap.dedent(f"""\
            name: shop
            compose: compose.yaml
            axes: {{pg: [{axis}]}}
            tests: {{command: ["sh", "-c", "exit 0"]}}
            """),
        encoding="utf-8",
    )
    return load_spec(project / "matrix.yaml")


class _Plan:
    """The outcome of each attempt of each variant; a variant not in the plan passes."""

    def __init__(self, plan: dict[str, list[Status]], *, delay: dict[str, float] | None = None):
        self.plan = plan
        self.delay = delay or {}
        self.started: list[str] = []
        self.lock = threading.Lock()

    def run_variant(self, job: VariantJob) -> VariantResult:
        vid = job.variant.id
        with self.lock:
            self.started.append(vid)
            attempt = self.started.count(vid)
        job.on_phase(vid, "up")
        job.on_phase(vid, "tests")
        time.sleep(self.delay.get(vid, 0.0))
        statuses = self.plan.get(vid, [Status.PASSED])
        status = statuses[min(attempt, len(statuses)) - 1]
        job.directory.mkdir(parents=True, exist_ok=True)
        failed = status is Status.FAILED
        (job.directory / "junit.xml").write_text(
            f'<testsuite name="t" tests="1" failures="{int(failed)}"><testcase name="a">'
            + ("<failure message='boom'/>" if failed else "")
            + "</testcase></testsuite>\n",
            encoding="utf-8",
        )
        (job.directory / "tests.log").write_text(f"attempt {attempt}\n", encoding="utf-8")
        return VariantResult(
            id=vid,
            values=dict(job.variant.values),
            status=status,
            reason="tests exited with code 1" if failed else "",
            exit_code=int(failed) if status in (Status.PASSED, Status.FAILED) else None,
            tests=TestCounts(total=1, passed=int(not failed), failed=int(failed)),
            junit=f"{vid}/junit.xml",
        )


def _request(spec: Spec, out: Path, **options: Any) -> RunRequest:
    return RunRequest(
        spec=spec,
        variants=tuple(expand(spec)),
        out_dir=out,
        run_id="20260314-092000-a1b2",
        **options,
    )


@pytest.fixture(autouse=True)
def _images_at_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepare stage asks the engine about images; these runs have none to get."""

    def nothing_to_get(_spec: Spec, variants: Sequence[Any], **_: Any) -> Prepared:
        return Prepared(outcomes={}, needs={v.id: {} for v in variants})

    monkeypatch.setattr(scheduler, "prepare", nothing_to_get)


def _run(
    monkeypatch: pytest.MonkeyPatch, request: RunRequest, plan: _Plan
) -> tuple[RunJournal, Path, list[str]]:
    monkeypatch.setattr(scheduler, "run_variant", plan.run_variant)
    out = io.StringIO()
    journal, run_dir = run_matrix(request, Console(out, provider=Plain(), live=False))
    return journal, run_dir, out.getvalue().splitlines()


def test_a_run_records_every_variant_in_matrix_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15", "17"])
    plan = _Plan({}, delay={"pg-13": 0.3})  # the first variant finishes last
    journal, run_dir, lines = _run(monkeypatch, _request(spec, tmp_path / "out", jobs=3), plan)
    assert [v.id for v in journal.variants] == ["pg-13", "pg-15", "pg-17"]
    assert journal.exit_code == 0
    assert journal.finished_at is not None
    assert journal.pid == os.getpid()
    assert RunJournal.read(run_dir) == journal
    assert run_dir == tmp_path / "out" / "runs" / "20260314-092000-a1b2"
    assert (tmp_path / "out" / "runs" / "latest").resolve() == run_dir.resolve()
    assert lines[0] == f"stackmatrix: 3 variant(s), 3 at a time -> {run_dir}"
    assert lines[-1] == "exit code 0"


def test_fail_fast_stops_the_rest_and_still_reports_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15", "17"])
    plan = _Plan({"pg-13": [Status.FAILED]})
    request = _request(spec, tmp_path / "out", jobs=1, fail_fast=True)
    journal, run_dir, lines = _run(monkeypatch, request, plan)
    assert plan.started == ["pg-13"]
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-13", Status.FAILED),
        ("pg-15", Status.CANCELLED),
        ("pg-17", Status.CANCELLED),
    ]
    assert journal.variants[1].reason == "never started: fail-fast stopped the run"
    assert journal.exit_code == 1
    assert "stackmatrix: fail-fast: pg-13 failed; stopping the rest" in lines
    # CI sees the variants that never ran: each has a JUnit report saying why.
    report = run_dir / "pg-15" / "junit.xml"
    assert read_counts(report).errors == 1
    assert "never started: fail-fast stopped the run" in report.read_text(encoding="utf-8")


def test_without_fail_fast_a_failure_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15", "17"])
    plan = _Plan({"pg-13": [Status.FAILED], "pg-15": [Status.ERROR]})
    journal, _, _ = _run(monkeypatch, _request(spec, tmp_path / "out", jobs=1), plan)
    assert plan.started == ["pg-13", "pg-15", "pg-17"]
    assert journal.exit_code == 3  # a stack error outranks failed tests


def test_a_retry_that_passes_marks_the_variant_flaky_and_keeps_the_first_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13"])
    plan = _Plan({"pg-13": [Status.FAILED, Status.PASSED]})
    journal, run_dir, lines = _run(
        monkeypatch, _request(spec, tmp_path / "out", jobs=1, retries=2), plan
    )
    (result,) = journal.variants
    assert plan.started == ["pg-13", "pg-13"]
    assert result.status is Status.PASSED
    assert result.flaky
    assert result.attempt_statuses == ("failed",)
    assert result.attempt_junits == ("pg-13/junit.attempt-1.xml",)
    assert 'failures="1"' in (run_dir / "pg-13" / "junit.attempt-1.xml").read_text()
    assert 'failures="0"' in (run_dir / "pg-13" / "junit.xml").read_text()
    assert (run_dir / "pg-13" / "tests.attempt-1.log").read_text() == "attempt 1\n"
    assert "  attempts: 2 (earlier: failed) - flaky" in lines
    assert journal.exit_code == 0


def test_retries_run_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, ["13"])
    plan = _Plan({"pg-13": [Status.FAILED]})
    journal, _, _ = _run(monkeypatch, _request(spec, tmp_path / "out", retries=2), plan)
    (result,) = journal.variants
    assert plan.started == ["pg-13"] * 3
    assert result.attempt_statuses == ("failed", "failed")
    assert not result.flaky
    assert journal.exit_code == 1


def test_a_stack_error_is_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, ["13"])
    plan = _Plan({"pg-13": [Status.ERROR, Status.PASSED]})
    journal, _, _ = _run(monkeypatch, _request(spec, tmp_path / "out", retries=3), plan)
    assert plan.started == ["pg-13"]
    assert journal.variants[0].status is Status.ERROR
    assert journal.variants[0].attempts == 1


def test_sigint_stops_the_run_and_the_rest_are_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15", "17"])
    plan = _Plan({})

    def interrupted_variant(job: VariantJob) -> VariantResult:
        # The person presses Ctrl-C while the first variant runs; it ends as stopped.
        signal.raise_signal(signal.SIGINT)
        assert job.cancel.wait(5), "SIGINT did not cancel the run"
        assert job.interrupted.is_set()
        result = plan.run_variant(job)
        return VariantResult(id=result.id, values=result.values, status=Status.INTERRUPTED)

    monkeypatch.setattr(scheduler, "run_variant", interrupted_variant)
    handler_before = signal.getsignal(signal.SIGINT)
    out = io.StringIO()
    journal, run_dir = run_matrix(
        _request(spec, tmp_path / "out", jobs=1), Console(out, provider=Plain(), live=False)
    )
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-13", Status.INTERRUPTED),
        ("pg-15", Status.INTERRUPTED),
        ("pg-17", Status.INTERRUPTED),
    ]
    assert journal.variants[2].reason == "never started: the run was interrupted"
    assert journal.interrupted
    assert journal.exit_code == 130
    assert RunJournal.read(run_dir).exit_code == 130
    lines = out.getvalue().splitlines()
    assert "stackmatrix: SIGINT: stopping; tearing down running stacks (this takes a moment)" in (
        lines
    )
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is given back


def test_the_finish_hook_sees_the_final_journal_before_the_console_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15"])
    monkeypatch.setattr(scheduler, "run_variant", _Plan({"pg-15": [Status.FAILED]}).run_variant)
    seen: list[int | None] = []

    def finish(run_dir: Path) -> None:
        seen.append(RunJournal.read(run_dir).exit_code)
        (run_dir / "summary.md").write_text("# shop\n", encoding="utf-8")

    out = io.StringIO()
    run_matrix(
        _request(spec, tmp_path / "out", warm_up=("stackmatrix.no_such_module",)),
        Console(out, provider=Plain(), live=False),
        finish=finish,
    )
    assert seen == [1]
    assert any(line.startswith("summary.md ") for line in out.getvalue().splitlines())


class _ClosedPipe(io.StringIO):
    """A stream whose reader went away after the first line (``run | head -1``)."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_output_that_cannot_be_written_stops_neither_a_variant_nor_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15"])
    monkeypatch.setattr(scheduler, "run_variant", _Plan({"pg-15": [Status.FAILED]}).run_variant)
    stream = _ClosedPipe()
    journal, run_dir = run_matrix(
        _request(spec, tmp_path / "out"), Console(stream, provider=Plain(), live=False)
    )
    assert stream.getvalue().startswith("stackmatrix: 2 variant(s)")
    assert {v.id: v.status for v in journal.variants} == {
        "pg-13": Status.PASSED,
        "pg-15": Status.FAILED,
    }
    assert journal.exit_code == 1
    assert RunJournal.read(run_dir) == journal


def test_a_variant_whose_runner_raises_is_an_error_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15"])
    plan = _Plan({})

    def run_variant(job: VariantJob) -> VariantResult:
        if job.variant.id == "pg-13":
            raise RuntimeError("a defect")
        return plan.run_variant(job)

    monkeypatch.setattr(scheduler, "run_variant", run_variant)
    journal, run_dir = run_matrix(
        _request(spec, tmp_path / "out"), Console(io.StringIO(), provider=Plain(), live=False)
    )
    by_id = {v.id: v for v in journal.variants}
    assert by_id["pg-15"].status is Status.PASSED
    assert by_id["pg-13"].status is Status.ERROR
    assert by_id["pg-13"].reason == "stackmatrix failed: RuntimeError('a defect')"
    assert read_counts(run_dir / "pg-13" / "junit.xml").errors == 1
    assert journal.exit_code == 3


def test_an_error_that_stops_the_run_is_recorded_with_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13", "15"])

    def broken_prepare(*_args: Any, **_kwargs: Any) -> Prepared:
        raise SpecError("compose.yaml:3:5: services.db: a problem found late")

    monkeypatch.setattr(scheduler, "prepare", broken_prepare)
    out = io.StringIO()
    with pytest.raises(SpecError):
        run_matrix(_request(spec, tmp_path / "out"), Console(out, provider=Plain(), live=False))
    journal = RunJournal.read(tmp_path / "out" / "runs" / "latest")
    assert journal.exit_code == 2
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-13", Status.ERROR),
        ("pg-15", Status.ERROR),
    ]
    assert journal.variants[0].reason == (
        "the run stopped: compose.yaml:3:5: services.db: a problem found late"
    )
    assert out.getvalue().splitlines()[-1] == "exit code 2"


def test_what_would_fail_once_stacks_are_up_is_a_spec_error_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, ["13"])
    matrix = spec.path.read_text(encoding="utf-8")
    (spec.path.parent / "compose.yaml").write_text(
        'services:\n  db: {image: "postgres:${{ matrix.pg }}", ports: ["5432"]}\n'
        '  cache: {image: redis, ports: ["${CACHE_PORT:-6379}"]}\n',
        encoding="utf-8",
    )
    spec.path.write_text(
        matrix.replace(
            'tests: {command: ["sh", "-c", "exit 0"]}',
            "tests:\n"
            "  command: [./bin/tests, '${{ ports.cache.6380 }}']\n"
            "  env: {DB: 'pg://${{ ports.db.5432 }}', BAD: 'pg://${{ ports.db.5433 }}'}\n"
            "  setup: {command: 'no-such-migrate up'}\n",
        ),
        encoding="utf-8",
    )
    spec = load_spec(spec.path)
    monkeypatch.setattr(scheduler, "run_variant", _Plan({}).run_variant)
    monkeypatch.chdir(spec.path.parent)
    with pytest.raises(SpecError) as caught:
        run_matrix(_request(spec, tmp_path / "out"), Console(io.StringIO(), provider=Plain()))
    assert caught.value.problems == [
        "matrix.yaml:5:13: tests.command[0]: command './bin/tests' not found: no such file"
        f" (from {spec.path.parent})",
        "matrix.yaml:7:21: tests.setup.command[0]: command 'no-such-migrate' not found on PATH",
        "matrix.yaml:6:53: tests.env.BAD: ${{ ports.db.5433 }}: service 'db' publishes no port"
        " 5433 (published: 5432) in every variant",
    ]
    assert not (tmp_path / "out").exists()
