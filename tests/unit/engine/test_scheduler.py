"""Pure parts of running: shards, --only, exit codes, names, redaction, process groups, and
the scheduler's slots with teardowns in the background (variants played by stand-ins)."""

from __future__ import annotations

import io
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_on_whales.exceptions import DockerException

from stackmatrix.ci.provider import Plain
from stackmatrix.console import Console
from stackmatrix.engine import scheduler
from stackmatrix.engine.docker import run_engine
from stackmatrix.engine.job import Released, VariantJob
from stackmatrix.engine.prepare import Prepared
from stackmatrix.engine.processes import run_logged
from stackmatrix.engine.scheduler import RunRequest, run_matrix
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant, expand
from stackmatrix.matrix.select import select_only, select_shard
from stackmatrix.redact import MASK, format_command, redact_env, redact_text
from stackmatrix.results.journal import (
    RunJournal,
    Status,
    TestCounts,
    VariantResult,
    exit_code_of,
    parallelism,
)
from stackmatrix.spec.load import Spec, load_spec
from stackmatrix.spec.values import env_name


def _variants(n: int) -> list[Variant]:
    return [Variant(id=f"v-{i}", values={"v": str(i)}) for i in range(n)]


@given(st.integers(min_value=0, max_value=60), st.integers(min_value=1, max_value=12))
def test_shards_cover_every_variant_exactly_once(n: int, count: int) -> None:
    variants = _variants(n)
    shards = [select_shard(variants, f"{i}/{count}") for i in range(1, count + 1)]
    ids = [v.id for shard in shards for v in shard]
    assert sorted(ids) == sorted(v.id for v in variants)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1/0", "x", "1/2/3", "a/b"])
def test_bad_shards_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        select_shard(_variants(3), bad)


def test_only_accepts_ids_and_patterns_and_names_unknown_ones() -> None:
    variants = _variants(12)
    assert [v.id for v in select_only(variants, ["v-1*"])] == ["v-1", "v-10", "v-11"]
    with pytest.raises(UsageError, match="no such variant") as info:
        select_only(variants, ["v-99"])
    assert "v-99" in str(info.value)


def _result(status: Status) -> VariantResult:
    return VariantResult(id="x", values={}, status=status)


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([Status.PASSED, Status.EXPERIMENTAL_FAILED], 0),
        ([Status.PASSED, Status.FAILED], 1),
        ([Status.FAILED, Status.CANCELLED], 1),
        ([Status.FAILED, Status.ERROR], 3),
        ([Status.PASSED, Status.INTERRUPTED], 130),
        ([], 0),
    ],
)
def test_exit_codes_follow_the_design(statuses: list[Status], code: int) -> None:
    assert exit_code_of([_result(s) for s in statuses], interrupted=False) == code


def test_interrupted_run_exits_130_whatever_finished() -> None:
    assert exit_code_of([_result(Status.PASSED)], interrupted=True) == 130


def test_env_names_are_shell_safe() -> None:
    assert env_name("db", "5432") == "STACKMATRIX_DB_5432"
    assert env_name("my-cache.svc", "53/udp") == "STACKMATRIX_MY_CACHE_SVC_53_UDP"
    assert env_name("axis", "python version") == "STACKMATRIX_AXIS_PYTHON_VERSION"


def test_secrets_are_masked_in_env_urls_and_commands() -> None:
    env = {
        "DB_PASSWORD": "hunter22",
        "API_TOKEN": "abc123",
        "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:5/db",
        "HOME": "/root",
    }
    safe = redact_env(env)
    assert safe["DB_PASSWORD"] == MASK
    assert safe["API_TOKEN"] == MASK
    assert safe["DATABASE_URL"] == f"postgresql://app:{MASK}@127.0.0.1:5/db"
    assert safe["HOME"] == "/root"
    assert "hunter22" not in format_command(["login", "--password", "hunter22"], ["hunter22"])
    assert redact_text("x=hunter22 y", ["hunter22"]) == f"x={MASK} y"


def test_journal_round_trips_through_json(tmp_path: Path) -> None:
    result = VariantResult(
        id="pg-15", values={"pg": "15"}, status=Status.FAILED, tests=TestCounts(3, 2, 1, 0, 0),
        phases={"up": 1.5}, ports={"db": {"5432": "127.0.0.1:4000"}},
    )  # fmt: skip
    journal = RunJournal(
        run_id="r",
        name="n",
        spec_file="m.yaml",
        spec_digest="d",
        started_at=1.0,
        variants=(result,),
    )
    journal.write(tmp_path)
    again = RunJournal.read(tmp_path)
    assert again == journal
    assert again.variants[0].status is Status.FAILED


def test_a_hung_process_group_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    outcome = run_logged(
        ["sh", "-c", script], log_path=tmp_path / "log", env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path, timeout=1, cancel=threading.Event(),
    )  # fmt: skip
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )
    assert "killed after the 1 s timeout" in (tmp_path / "log").read_text()


_CTRL_C_FLOOD = """
import json, os, signal, sys, tempfile, threading, time
from pathlib import Path
from stackmatrix.engine import spawn
from stackmatrix.engine.docker import run_engine
from stackmatrix.engine.processes import run_logged, signal_handlers

caught = []
unborn = spawn._unborn
spawn._unborn = lambda proc: caught.append(unborn(proc)) or caught[-1]
flooding = True

def flood():
    while flooding:
        os.killpg(os.getpid(), signal.SIGINT)
        time.sleep(0.005)

failures = []
with signal_handlers(lambda signum, frame: None), tempfile.TemporaryDirectory() as tmp:
    thread = threading.Thread(target=flood)
    thread.start()
    for i in range(60):
        try:
            run_engine(["true"], what="`docker compose down`")
        except Exception as error:
            failures.append(repr(error))
        outcome = run_logged(
            ["true"], log_path=Path(tmp) / f"{i}.log", env={"PATH": "/usr/bin:/bin"},
            cwd=Path(tmp), timeout=10, cancel=threading.Event(),
        )
        if outcome.exit_code != 0:
            failures.append(repr(outcome))
    flooding = False
    thread.join()
print(json.dumps({"caught": sum(caught), "failures": failures}))
"""


def test_ctrl_c_never_ends_a_command_before_it_runs() -> None:
    # A Ctrl-C to the run's process group every 5 ms (in a session of its own: it reaches no
    # one else) catches some new processes before they have left the group; each of those is
    # started again, and every engine call and test command still runs, and passes.
    done = subprocess.run(
        ["setsid", sys.executable, "-c", _CTRL_C_FLOOD],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    found = json.loads(done.stdout)
    assert found["failures"] == []
    assert found["caught"] > 0  # the race was really run into


def test_a_command_ended_by_a_signal_of_its_own_is_not_cancelled(tmp_path: Path) -> None:
    outcome = run_logged(
        ["sh", "-c", "kill -TERM $$"], log_path=tmp_path / "log",
        env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=5, cancel=threading.Event(),
    )  # fmt: skip
    assert not outcome.cancelled
    assert outcome.exit_code == -signal.SIGTERM


def test_an_engine_call_that_ran_is_not_run_again_whatever_it_died_of(tmp_path: Path) -> None:
    # SIGTERM: a background job of a shell without job control (a CI runner's) ignores SIGINT.
    count = tmp_path / "count"
    with pytest.raises(DockerException, match="code -15"):
        run_engine(["sh", "-c", f"echo ran >> {count}; kill -TERM $$"], what="`docker compose up`")
    assert count.read_text() == "ran\n"


def test_a_missing_command_is_reported_not_raised(tmp_path: Path) -> None:
    outcome = run_logged(
        ["no-such-command-xyz"], log_path=tmp_path / "log", env={}, cwd=tmp_path,
        timeout=5, cancel=threading.Event(),
    )  # fmt: skip
    assert outcome.exit_code is None
    assert "cannot start 'no-such-command-xyz'" in outcome.start_error


@pytest.mark.parametrize(
    ("spans", "most"),
    [
        ([], 1),
        ([(0, 5)], 1),
        ([(0, 5), (1, 6), (2, 3)], 3),
        ([(0, 5), (5, 9), (9, 12)], 1),  # one after the other, each starting as one ends
        ([(0, 4), (1, 2), (3, 8), (5, 6)], 2),
    ],
)
def test_parallelism_is_the_most_variants_running_at_one_moment(
    spans: list[tuple[float, float]], most: int
) -> None:
    results = [
        replace(_result(Status.PASSED), id=f"v{i}", started_at=start, finished_at=end)
        for i, (start, end) in enumerate(spans)
    ]
    assert parallelism(results) == most


def test_parallelism_ends_a_variant_where_its_down_begins() -> None:
    # --jobs 1 with teardown in the background: each variant comes down while the next runs.
    spans = [(0.0, 4.0, 6.0), (4.0, 8.0, 10.0), (8.0, 12.0, 14.0)]  # start, down, finish
    results = [
        replace(
            _result(Status.PASSED),
            id=f"v{i}",
            started_at=start,
            finished_at=end,
            phase_starts={"down": down},
        )
        for i, (start, down, end) in enumerate(spans)
    ]
    assert parallelism(results) == 1
    assert parallelism([replace(r, phase_starts={}) for r in results]) == 2


# -- pipelined teardown: the slot is free once only `down` is left ---------------------------


def _pg_spec(tmp_path: Path, count: int) -> Spec:
    (tmp_path / "compose.yaml").write_text(
        'services:\n  db: {image: "postgres:${{ matrix.pg }}"}\n', encoding="utf-8"
    )
    versions = ", ".join(f'"{10 + i}"' for i in range(count))
    (tmp_path / "matrix.yaml").write_text(
        f"name: shop\ncompose: compose.yaml\naxes: {{pg: [{versions}]}}\n"
        'tests: {command: ["sh", "-c", "exit 0"]}\n',
        encoding="utf-8",
    )
    return load_spec(tmp_path / "matrix.yaml")


class _Life:
    """Each variant's life as the real one lives it: up, tests, collect, its release, then a
    `down` of *down* seconds. Statuses come from *plan* (one per attempt; default passed);
    *interrupt* names a variant whose tests press Ctrl-C (twice). A variant named in *waits*
    begins its down's seconds only once that (variant, moment) happened (or after
    WAIT_LIMIT seconds, when the scheduler never lets it happen): orders, not timings."""

    WAIT_LIMIT = 5.0

    def __init__(
        self,
        *,
        down: float,
        plan: dict[str, list[Status]] | None = None,
        interrupt: str | None = None,
        waits: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.down = down
        self.plan = plan or {}
        self.interrupt = interrupt
        self.waits = waits or {}
        self.happened: dict[tuple[str, str], threading.Event] = {}
        self.lock = threading.Lock()
        self.moments: dict[tuple[str, str], float] = {}  # (variant#attempt, what) -> monotonic
        self.attempts: dict[str, int] = {}
        self.in_flight = self.most_in_flight = 0
        self.holding = self.most_holding = 0

    def _mark(self, who: str, what: str) -> None:
        with self.lock:
            self.moments[(who, what)] = time.monotonic()
        self._event(who.split("#", maxsplit=1)[0], what).set()

    def _event(self, vid: str, what: str) -> threading.Event:
        with self.lock:
            return self.happened.setdefault((vid, what), threading.Event())

    def _count(self, in_flight: int, holding: int) -> None:
        with self.lock:
            self.in_flight += in_flight
            self.holding += holding
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.most_holding = max(self.most_holding, self.holding)

    def at(self, vid: str, what: str, attempt: int = 1) -> float:
        return self.moments[(f"{vid}#{attempt}", what)]

    def started(self) -> list[str]:
        return sorted({who.split("#")[0] for who, what in self.moments if what == "up"})

    def run_variant(self, job: VariantJob) -> VariantResult:
        vid = job.variant.id
        with self.lock:
            self.attempts[vid] = attempt = self.attempts.get(vid, 0) + 1
        who = f"{vid}#{attempt}"
        self._count(1, 1)
        self._mark(who, "up")
        job.on_phase(vid, "up")
        job.on_phase(vid, "tests")
        statuses = self.plan.get(vid, [Status.PASSED])
        status = statuses[min(attempt, len(statuses)) - 1]
        if vid == self.interrupt:
            signal.raise_signal(signal.SIGINT)
            assert job.cancel.wait(5), "SIGINT did not cancel the run"
            signal.raise_signal(signal.SIGINT)  # a second Ctrl-C: teardown still completes
            status = Status.INTERRUPTED
        time.sleep(0.05)
        failed = status is Status.FAILED
        job.directory.mkdir(parents=True, exist_ok=True)
        (job.directory / "junit.xml").write_text(
            f'<testsuite name="t" tests="1" failures="{int(failed)}"><testcase name="a">'
            + ("<failure message='boom'/>" if failed else "")
            + "</testcase></testsuite>\n",
            encoding="utf-8",
        )
        job.on_phase(vid, "collect")
        exit_code = int(failed) if status in (Status.PASSED, Status.FAILED) else None
        self._count(0, -1)
        job.on_released(Released(vid, status, exit_code))
        job.on_phase(vid, "down")
        self._mark(who, "down")
        if vid in self.waits:
            self._event(*self.waits[vid]).wait(self.WAIT_LIMIT)
        time.sleep(self.down)
        self._mark(who, "down ended")
        self._count(-1, 0)
        return VariantResult(
            id=vid, values=dict(job.variant.values), status=status, exit_code=exit_code,
            tests=TestCounts(total=1, passed=int(not failed), failed=int(failed)),
            junit=f"{vid}/junit.xml",
        )  # fmt: skip


@pytest.fixture
def _no_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prepare stage asks the engine about images; these runs have none to get."""

    def nothing_to_get(_spec: Spec, variants: Sequence[Any], **_: Any) -> Prepared:
        return Prepared(outcomes={}, needs={v.id: {} for v in variants})

    monkeypatch.setattr(scheduler, "prepare", nothing_to_get)


def _run_lives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, life: _Life, count: int, **options: Any
) -> tuple[RunJournal, list[str]]:
    spec = _pg_spec(tmp_path, count)
    monkeypatch.setattr(scheduler, "run_variant", life.run_variant)
    request = RunRequest(
        spec=spec, variants=tuple(expand(spec)), out_dir=tmp_path / "out",
        run_id="20260314-092000-a1b2", **options,
    )  # fmt: skip
    out = io.StringIO()
    journal, _ = run_matrix(request, Console(out, provider=Plain(), live=False))
    return journal, out.getvalue().splitlines()


@pytest.mark.usefixtures("_no_images")
def test_the_next_variant_comes_up_while_the_last_one_comes_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each down lasts until the next variant came up, if the scheduler lets it.
    life = _Life(down=0.1, waits={"pg-10": ("pg-11", "up"), "pg-11": ("pg-12", "up")})
    journal, lines = _run_lives(monkeypatch, tmp_path, life, 3, jobs=1)
    ids = ["pg-10", "pg-11", "pg-12"]
    assert [(v.id, v.status) for v in journal.variants] == [(i, Status.PASSED) for i in ids]
    for earlier, later in itertools.pairwise(ids):
        assert life.at(earlier, "down") < life.at(later, "up") < life.at(earlier, "down ended")
    assert (life.most_holding, life.most_in_flight) == (1, 2)  # --jobs 1, one down beside it
    # The console shows each down; a variant's result is in once its down is done, after the
    # next variant came up.
    assert "  pg-10: down" in lines
    finished = next(n for n, line in enumerate(lines) if line.startswith("ok") and "pg-10" in line)
    assert lines.index("  pg-11: up") < finished
    assert lines[0].endswith("1 at a time -> " + str(tmp_path / "out/runs/20260314-092000-a1b2"))
    assert journal.jobs == 1
    assert journal.exit_code == 0


@pytest.mark.usefixtures("_no_images")
@pytest.mark.parametrize("downs", [0, 1, 2])
def test_downs_in_the_background_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, downs: int
) -> None:
    # pg-10 comes down once as many came up as the bound lets in; the others after pg-10.
    beyond = f"pg-{11 + downs}"
    waits = {f"pg-{n}": ("pg-10", "down ended") for n in range(11, 14)}
    waits["pg-10"] = (f"pg-{10 + downs}", "up")
    life = _Life(down=0.05, waits=waits)
    journal, _ = _run_lives(monkeypatch, tmp_path, life, 4, jobs=1, background_downs=downs)
    assert {v.status for v in journal.variants} == {Status.PASSED}
    assert life.most_holding == 1
    assert life.most_in_flight == 1 + downs
    # The variant beyond the bound waits until the first stack is down.
    assert life.at(beyond, "up") >= life.at("pg-10", "down ended")


@pytest.mark.usefixtures("_no_images")
def test_variants_that_end_together_all_hand_their_slots_on_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three variants of a wave end their tests together; each down lasts until the whole
    # next wave came up, if the scheduler lets it (by default it does: as many downs as jobs).
    waits = {f"pg-{n}": (f"pg-{n + 3}", "up") for n in (10, 11, 12)}
    life = _Life(down=0.05, waits=waits)
    journal, _ = _run_lives(monkeypatch, tmp_path, life, 6, jobs=3)
    assert {v.status for v in journal.variants} == {Status.PASSED}
    assert (life.most_holding, life.most_in_flight) == (3, 6)
    for first in (10, 11, 12):  # the next wave came up while the first was still coming down
        assert life.at(f"pg-{first + 3}", "up") < life.at(f"pg-{first}", "down ended")


def test_as_many_downs_in_the_background_as_jobs_by_default(tmp_path: Path) -> None:
    spec = _pg_spec(tmp_path, 1)
    request = RunRequest(spec=spec, variants=tuple(expand(spec)), jobs=3)
    # Within 24 networks of the stacks alive at once, and always at least one.
    jobs = (1, 2, 3, 12, 16, 30)
    assert [replace(request, jobs=n).downs for n in jobs] == [1, 2, 3, 12, 8, 1]
    # Stacks of two networks each (a frontend and a backend, say): 12 stacks at most.
    assert [replace(request, jobs=n).downs_for(2) for n in (3, 8, 12)] == [3, 4, 1]
    # run.background_downs in the spec, then --background-downs over it
    spec = spec.model_copy(update={"run": spec.run.model_copy(update={"background_downs": 0})})
    assert replace(request, spec=spec).downs == 0
    assert replace(request, spec=spec, background_downs=2).downs == 2
    assert replace(request, background_downs=1).downs == 1
    assert replace(request, background_downs=-2).downs == 0


@pytest.mark.usefixtures("_no_images")
def test_an_interrupt_waits_for_the_downs_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    life = _Life(down=1.0, interrupt="pg-11")
    journal, lines = _run_lives(monkeypatch, tmp_path, life, 3, jobs=1)
    returned = time.monotonic()
    # pg-11 was pressed Ctrl-C in while pg-10 came down: pg-10's down ran to its end (twice
    # interrupted), and only then did the run end.
    assert life.at("pg-10", "down") < life.at("pg-11", "up") < life.at("pg-10", "down ended")
    assert life.at("pg-10", "down ended") - life.at("pg-10", "down") >= 1.0
    assert returned >= life.at("pg-10", "down ended")
    assert life.started() == ["pg-10", "pg-11"]
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-10", Status.PASSED),
        ("pg-11", Status.INTERRUPTED),
        ("pg-12", Status.INTERRUPTED),
    ]
    assert journal.variants[2].reason == "never started: the run was interrupted"
    assert journal.interrupted
    assert journal.exit_code == 130
    assert "stackmatrix: SIGINT again: still tearing down, stacks are never left behind" in lines


@pytest.mark.usefixtures("_no_images")
def test_fail_fast_stops_at_the_verdict_not_after_the_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    life = _Life(down=0.4, plan={"pg-10": [Status.FAILED]})
    journal, lines = _run_lives(monkeypatch, tmp_path, life, 3, jobs=1, fail_fast=True)
    assert life.started() == ["pg-10"]  # nothing came up in its slot while it came down
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-10", Status.FAILED),
        ("pg-11", Status.CANCELLED),
        ("pg-12", Status.CANCELLED),
    ]
    assert lines.count("stackmatrix: fail-fast: pg-10 failed; stopping the rest") == 1
    assert journal.exit_code == 1


@pytest.mark.usefixtures("_no_images")
def test_an_attempt_that_runs_again_keeps_its_slot_until_the_last_one_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    life = _Life(down=0.4, plan={"pg-10": [Status.FAILED, Status.PASSED]})
    journal, _ = _run_lives(monkeypatch, tmp_path, life, 2, jobs=1, retries=1)
    assert [(v.id, v.status, v.attempts) for v in journal.variants] == [
        ("pg-10", Status.PASSED, 2),
        ("pg-11", Status.PASSED, 1),
    ]
    assert life.at("pg-11", "up") > life.at("pg-10", "down", attempt=2)
    assert life.at("pg-11", "up") < life.at("pg-10", "down ended", attempt=2)
    assert life.most_holding == 1


@pytest.mark.usefixtures("_no_images")
def test_a_variant_that_ends_before_its_teardown_frees_its_slot_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    life = _Life(down=0.2)

    def run_variant(job: VariantJob) -> VariantResult:
        if job.variant.id == "pg-10":  # never released: say its compose file did not render
            return VariantResult.never_ran(job.variant, status=Status.ERROR, reason="no render")
        return life.run_variant(job)

    spec = _pg_spec(tmp_path, 2)
    monkeypatch.setattr(scheduler, "run_variant", run_variant)
    request = RunRequest(spec=spec, variants=tuple(expand(spec)), out_dir=tmp_path / "out", jobs=1)
    journal, _ = run_matrix(request, Console(io.StringIO(), provider=Plain(), live=False))
    assert [(v.id, v.status) for v in journal.variants] == [
        ("pg-10", Status.ERROR),
        ("pg-11", Status.PASSED),
    ]


class _LongTests(_Life):
    """pg-10 lives as the others do; the tests of every other variant take 30 s, unless the
    run stops them."""

    def run_variant(self, job: VariantJob) -> VariantResult:
        if job.variant.id == "pg-10":
            return super().run_variant(job)
        stopped = job.cancel.wait(30)
        status = Status.CANCELLED if stopped else Status.PASSED
        return VariantResult.never_ran(job.variant, status=status, reason="its tests stopped")


@pytest.mark.usefixtures("_no_images")
def test_a_run_whose_journal_cannot_be_written_stops_the_variants_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = RunJournal.write

    def full_disk_once(journal: RunJournal, run_dir: Path) -> Path:
        if [v.id for v in journal.variants] == ["pg-10"]:
            raise OSError(28, "No space left on device")
        return writes(journal, run_dir)

    monkeypatch.setattr(RunJournal, "write", full_disk_once)
    began = time.monotonic()
    with pytest.raises(OSError, match="No space left"):
        _run_lives(monkeypatch, tmp_path, _LongTests(down=0.0), 2, jobs=2)
    assert time.monotonic() - began < 10  # pg-11 was stopped, not waited for to its end
    journal = json.loads((tmp_path / "out/runs/20260314-092000-a1b2/run.json").read_text())
    assert [(v["id"], v["status"], v["reason"]) for v in journal["variants"]] == [
        ("pg-10", "passed", ""),
        ("pg-11", "cancelled", "its tests stopped"),
    ]
    assert journal["exit_code"] == 3
