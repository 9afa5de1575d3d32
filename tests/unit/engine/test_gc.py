"""What ``stackmatrix gc`` removes and what it keeps, decided on given engine listings.

The engine's part of gc is two calls: a label listing per kind of object (``docker container
ls``, ``network ls``, ``volume ls`` with ``--format {{.Label ...}}``) and a removal by label.
Here both answer from a table of labelled objects; the run journals are real files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from python_on_whales.exceptions import DockerException

from stackmatrix.cli.main import main
from stackmatrix.compose import labels
from stackmatrix.engine import gc, preflight
from stackmatrix.engine.gc import Leftover, collect, find_leftovers, known_here
from stackmatrix.errors import EngineError
from stackmatrix.results.journal import RunJournal
from stackmatrix.results.run_dir import (
    LIVE_FILE,
    live_processes,
    mark_live,
    prepare_run_dir,
    process_start_time,
)

T0 = 1_773_480_000.0
FINISHED = "20260314-090000-aaaa"  # ended normally (its process may still be alive)
CRASHED = "20260314-091000-bbbb"  # never finished, its process is gone: kill -9, a reboot
ACTIVE = "20260314-092000-cccc"  # running right now (this very process)
FOREIGN = "20260314-093000-dddd"  # made from another folder or machine: no journal here
KINDS = ("container", "network", "volume")
STILL_THERE = "still there (active, or not from this folder; use --all or --run ID): "


@dataclass
class _Engine:
    """Labelled objects on a pretend engine: kind -> the run id of each object."""

    objects: dict[str, list[str]]
    listings: list[list[str]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    fail: str | None = None

    def run(self, args: Sequence[str], **_bounds: object) -> str:
        self.listings.append(list(args))
        if self.fail is not None:
            raise DockerException(list(args), 1, b"", self.fail.encode())
        return "".join(f"{run_id}\n" for run_id in self.objects.get(args[1], []))

    def remove_by_label(self, label: str) -> int:
        self.removals.append(label)
        name, _, run_id = label.partition("=")
        assert name == labels.RUN
        gone = 0
        for kind, owners in self.objects.items():
            gone += owners.count(run_id)
            self.objects[kind] = [owner for owner in owners if owner != run_id]
        return gone


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def _journal(out: Path, run_id: str, *, pid: int | None, finished: bool) -> None:
    run_dir = out / "runs" / run_id
    run_dir.mkdir(parents=True)
    RunJournal(
        run_id=run_id,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="0" * 64,
        started_at=T0,
        finished_at=T0 + 60 if finished else None,
        exit_code=0 if finished else None,
        pid=pid,
    ).write(run_dir)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder with the journals of three runs (FOREIGN has none)."""
    folder = tmp_path / ".stackmatrix"
    _journal(folder, FINISHED, pid=os.getpid(), finished=True)
    _journal(folder, CRASHED, pid=_dead_pid(), finished=False)
    _journal(folder, ACTIVE, pid=os.getpid(), finished=False)
    return folder


def _objects() -> dict[str, list[str]]:
    return {
        "container": [FINISHED, ACTIVE, FINISHED, CRASHED, ACTIVE, FOREIGN, ACTIVE],
        "network": [FINISHED, ACTIVE, FOREIGN],
        "volume": [CRASHED, FINISHED],
    }


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> _Engine:
    fake = _Engine(_objects())
    monkeypatch.setattr(gc, "docker_command", lambda _client, *args: ["docker", *args])
    monkeypatch.setattr(gc, "run_engine", fake.run)
    monkeypatch.setattr(gc, "remove_by_label", fake.remove_by_label)
    monkeypatch.setattr(preflight, "ensure_engine", lambda: None)  # for the command line
    return fake


def _removed(engine: _Engine) -> list[str]:
    return [label.removeprefix(f"{labels.RUN}=") for label in engine.removals]


# -- what is left, and which of it is active --------------------------------------------------


def test_leftovers_are_counted_per_run_and_kind(out: Path, engine: _Engine) -> None:
    assert find_leftovers(out) == [
        Leftover(FINISHED, containers=2, networks=1, volumes=1, active=False),
        Leftover(CRASHED, containers=1, networks=0, volumes=1, active=False),
        Leftover(ACTIVE, containers=3, networks=1, volumes=0, active=True),
        Leftover(FOREIGN, containers=1, networks=1, volumes=0, active=False),
    ]


def test_one_listing_per_kind_reads_the_run_label_itself(out: Path, engine: _Engine) -> None:
    find_leftovers(out)
    label_format = f'{{{{.Label "{labels.RUN}"}}}}'
    # Containers also say where their compose file is: the run directory of a foreign run.
    with_home = label_format + '\t{{.Label "com.docker.compose.project.config_files"}}'
    assert engine.listings == [
        ["docker", "container", "ls", "--all", "--filter", f"label={labels.RUN}",
         "--format", with_home],
        ["docker", "network", "ls", "--filter", f"label={labels.RUN}", "--format", label_format],
        ["docker", "volume", "ls", "--filter", f"label={labels.RUN}", "--format", label_format],
    ]  # fmt: skip


def test_a_run_whose_process_belongs_to_someone_else_counts_as_active(
    tmp_path: Path, engine: _Engine
) -> None:
    # pid 1 exists on every machine; signalling it is refused unless root: alive either way.
    _journal(tmp_path, "20260314-094000-eeee", pid=1, finished=False)
    engine.objects = {"container": ["20260314-094000-eeee"]}
    (leftover,) = find_leftovers(tmp_path)
    assert leftover.active


def test_a_journal_without_a_pid_is_not_active(tmp_path: Path, engine: _Engine) -> None:
    # Journals older than the pid field: nothing says the run is alive.
    _journal(tmp_path, "20260314-094000-ffff", pid=None, finished=False)
    engine.objects = {"volume": ["20260314-094000-ffff"]}
    assert find_leftovers(tmp_path) == [Leftover("20260314-094000-ffff", 0, 0, 1, False)]
    assert [x.run_id for x in collect(tmp_path)] == ["20260314-094000-ffff"]


def test_objects_whose_label_is_empty_belong_to_no_run(tmp_path: Path, engine: _Engine) -> None:
    engine.objects = {"container": ["", FOREIGN], "network": [""]}
    assert [x.run_id for x in find_leftovers(tmp_path)] == [FOREIGN]


def test_a_listing_the_engine_refuses_is_an_engine_error(out: Path, engine: _Engine) -> None:
    engine.fail = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    with pytest.raises(EngineError) as error:
        find_leftovers(out)
    assert str(error.value) == (
        "cannot list Docker objects: "
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    )


def test_known_here_means_a_journal_in_this_folder(out: Path) -> None:
    assert known_here(FINISHED, out)
    assert not known_here(FOREIGN, out)
    assert not known_here(FINISHED, out.parent / "elsewhere")


# -- what collect removes ---------------------------------------------------------------------


def test_by_default_only_runs_of_this_folder_whose_process_is_gone(
    out: Path, engine: _Engine
) -> None:
    removed = collect(out)
    assert [x.run_id for x in removed] == [FINISHED, CRASHED]
    assert _removed(engine) == [FINISHED, CRASHED]
    assert {kind: sorted(set(owners)) for kind, owners in engine.objects.items()} == {
        "container": sorted([ACTIVE, FOREIGN]),
        "network": sorted([ACTIVE, FOREIGN]),
        "volume": [],
    }


def test_all_removes_every_labelled_object_whoever_made_it_but_live_runs(
    out: Path, engine: _Engine
) -> None:
    removed = collect(out, everything=True)
    assert [x.run_id for x in removed] == [FINISHED, CRASHED, FOREIGN]
    assert {kind: sorted(set(owners)) for kind, owners in engine.objects.items()} == {
        "container": [ACTIVE],
        "network": [ACTIVE],
        "volume": [],
    }


def test_force_removes_live_runs_too(out: Path, engine: _Engine) -> None:
    removed = collect(out, everything=True, force=True)
    assert [x.run_id for x in removed] == [FINISHED, CRASHED, ACTIVE, FOREIGN]
    assert engine.objects == {kind: [] for kind in KINDS}


def test_dry_run_lists_what_would_go_and_removes_nothing(out: Path, engine: _Engine) -> None:
    assert [x.run_id for x in collect(out, everything=True, dry_run=True)] == [
        FINISHED, CRASHED, FOREIGN,
    ]  # fmt: skip
    assert engine.removals == []
    assert engine.objects == _objects()


def test_run_of_a_live_run_is_kept_unless_forced(out: Path, engine: _Engine) -> None:
    assert collect(out, run_id=ACTIVE) == []
    assert [x.run_id for x in collect(out, run_id=ACTIVE, force=True)] == [ACTIVE]


@pytest.mark.parametrize("run_id", [FOREIGN, CRASHED])
def test_run_removes_that_run_alone_even_foreign(out: Path, engine: _Engine, run_id: str) -> None:
    removed = collect(out, run_id=run_id)
    assert [x.run_id for x in removed] == [run_id]
    assert _removed(engine) == [run_id]
    assert all(run_id not in owners for owners in engine.objects.values())


def test_run_of_an_id_with_nothing_left_removes_nothing(out: Path, engine: _Engine) -> None:
    assert collect(out, run_id="20990101-000000-0000") == []
    assert engine.removals == []


def test_all_and_run_together_mean_that_run(out: Path, engine: _Engine) -> None:
    # The command line forbids both at once; the function lets the narrower one win.
    assert [x.run_id for x in collect(out, everything=True, run_id=FOREIGN)] == [FOREIGN]


# -- what `stackmatrix gc` prints -------------------------------------------------------------


def _gc(out: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["gc", "--out", str(out), *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def test_gc_says_what_it_removed_and_what_it_left(
    out: Path, engine: _Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _gc(out, capsys) == [
        f"removed run {FINISHED}: 2 containers, 1 networks, 1 volumes",
        f"removed run {CRASHED}: 1 containers, 0 networks, 1 volumes",
        f"{STILL_THERE}{ACTIVE} (active), {FOREIGN}",
    ]


def test_gc_all_leaves_nothing_but_live_runs(
    out: Path, engine: _Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _gc(out, capsys, "--all")
    assert lines == [
        f"removed run {FINISHED}: 2 containers, 1 networks, 1 volumes",
        f"removed run {CRASHED}: 1 containers, 0 networks, 1 volumes",
        f"removed run {FOREIGN}: 1 containers, 1 networks, 0 volumes",
        f"kept run {ACTIVE}: it is still running (3 containers, 1 networks, 0 volumes); "
        "--force removes it anyway",
    ]


def test_gc_dry_run_says_what_it_would_remove(
    out: Path, engine: _Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _gc(out, capsys, "--dry-run") == [
        f"would remove run {FINISHED}: 2 containers, 1 networks, 1 volumes",
        f"would remove run {CRASHED}: 1 containers, 0 networks, 1 volumes",
        f"{STILL_THERE}{ACTIVE} (active), {FOREIGN}",
    ]
    assert engine.removals == []


def test_gc_with_nothing_to_do_says_so(
    tmp_path: Path, engine: _Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.objects = {}
    assert _gc(tmp_path, capsys) == ["nothing to remove"]


def test_gc_that_only_finds_active_runs_lists_them(
    out: Path, engine: _Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.objects = {"container": [ACTIVE]}
    assert _gc(out, capsys) == [f"{STILL_THERE}{ACTIVE} (active)"]


def test_gc_all_and_run_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["gc", "--all", "--run", FOREIGN])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# -- alive means the same process, not just the same pid ---------------------------------------


REUSED = "20260314-095000-abcd"


def test_a_run_whose_pid_now_names_another_process_is_not_alive(
    tmp_path: Path, engine: _Engine
) -> None:
    # The journal's pid is this very process, but the start time recorded when the run began
    # is not ours: the run's process died and the pid went to another one (this test).
    _journal(tmp_path, REUSED, pid=os.getpid(), finished=False)
    start = process_start_time(os.getpid())
    assert start is not None
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    (tmp_path / "runs" / REUSED / LIVE_FILE).write_text(f"{os.getpid()} {start - 1} {boot}\n")
    engine.objects = {"container": [REUSED]}
    assert find_leftovers(tmp_path) == [Leftover(REUSED, 1, 0, 0, active=False)]
    assert [x.run_id for x in collect(tmp_path, everything=True)] == [REUSED]


def test_a_run_marked_by_a_live_process_is_alive(tmp_path: Path, engine: _Engine) -> None:
    _journal(tmp_path, REUSED, pid=_dead_pid(), finished=False)  # the pid alone says dead
    mark_live(tmp_path / "runs" / REUSED)  # but this process works on it
    engine.objects = {"container": [REUSED]}
    assert find_leftovers(tmp_path) == [Leftover(REUSED, 1, 0, 0, active=True)]
    assert collect(tmp_path, everything=True) == []
    assert live_processes(tmp_path / "runs" / REUSED) == [os.getpid()]


def test_a_mark_from_before_a_reboot_is_not_alive(tmp_path: Path, engine: _Engine) -> None:
    _journal(tmp_path, REUSED, pid=os.getpid(), finished=False)
    start = process_start_time(os.getpid())
    (tmp_path / "runs" / REUSED / LIVE_FILE).write_text(f"{os.getpid()} {start} other-boot\n")
    assert live_processes(tmp_path / "runs" / REUSED) == []


def test_prepare_run_dir_marks_the_run_with_this_process(tmp_path: Path) -> None:
    run_dir = prepare_run_dir(tmp_path, "20260314-095500-0000")
    assert live_processes(run_dir) == [os.getpid()]
    assert (tmp_path / "runs" / "latest").readlink() == Path("20260314-095500-0000")


def test_a_foreign_run_is_found_through_its_containers_compose_file(
    tmp_path: Path, engine: _Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "other-project" / ".stackmatrix"
    _journal(elsewhere, REUSED, pid=None, finished=False)
    mark_live(elsewhere / "runs" / REUSED)
    compose = elsewhere / "runs" / REUSED / "v1" / "compose.yaml"

    def listing(args: Sequence[str], **_bounds: object) -> str:
        return f"{REUSED}\t{compose}\n" if args[1] == "container" else ""

    monkeypatch.setattr(gc, "run_engine", listing)
    here = tmp_path / "here"
    assert find_leftovers(here) == [Leftover(REUSED, 1, 0, 0, active=True)]
    assert collect(here, everything=True) == []
