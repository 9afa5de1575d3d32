"""Fault injection on real stacks: interrupts at every phase, broken engines, containers and
commands. Each test checks what the user sees and, through the autouse leak check (and here
explicitly, right at exit), that nothing labelled is left behind."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._matrix import Project, make_project
from .conftest import labelled_objects
from .faults._support import (
    BOUND,
    Watched,
    add_services,
    by_id,
    copy_fixture,
    edit_spec,
    force_remove,
    gc,
    pid_alive,
    pids_with_env,
    remove_images,
)
from .second_engine import SecondEngine, second_engine

pytestmark = pytest.mark.usefixtures("docker_engine")

BOOKWORM = "debian:bookworm-slim"


@pytest.fixture
def image_tags() -> Iterator[list[str]]:
    """Tags of images a test builds; removed afterwards."""
    tags: list[str] = []
    yield tags
    remove_images(tags)


def _one_variant(tmp_path: Path, **kwargs: Any) -> Project:
    return make_project(tmp_path, axes={"flavor": ["a"]}, **kwargs)


def _only_variant(project: Project) -> dict[str, Any]:
    (variant,) = project.journal()["variants"]
    assert isinstance(variant, dict)
    return variant


def _assert_reports(run_dir: Path) -> None:
    for name in ("run.json", "junit.xml", "summary.md", "report.html"):
        assert (run_dir / name).is_file(), f"{name} missing from {run_dir}"


# -- interrupts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interrupt:
    """Where variant b is when the run is told to stop, and how it is told."""

    phase: str
    signals: tuple[signal.Signals, ...]
    group: bool  # signal the whole process group, as a terminal's Ctrl-C does
    b_status: str  # what b's result must say afterwards
    # Images are built before any stack comes up (the prepare stage): a signal during b's
    # build finds a not started either.
    a_finished: bool = True

    def __str__(self) -> str:
        return f"{self.phase}-" + "-".join(s.name for s in self.signals)


INTERRUPTS = [
    pytest.param(
        Interrupt("build", (signal.SIGINT,), group=False, b_status="interrupted", a_finished=False),
        id="build-SIGINT",
    ),
    pytest.param(
        Interrupt("ready", (signal.SIGTERM,), group=False, b_status="interrupted"),
        id="ready-SIGTERM",
    ),
    # Once b's tests have finished, its result stands: it passed. The run still says 130.
    pytest.param(
        Interrupt("collect", (signal.SIGINT, signal.SIGINT), group=True, b_status="passed"),
        id="collect-SIGINT-SIGINT",
    ),
    pytest.param(
        Interrupt("down", (signal.SIGINT, signal.SIGINT), group=True, b_status="passed"),
        id="down-SIGINT-SIGINT",
    ),
]


def _slow_at(phase: str, project: Project, image_tags: list[str]) -> None:
    """Make variant b slow in *phase*; variant a stays quick."""
    token = secrets.token_hex(4)
    b = {"flavor": "b"}
    match phase:
        case "build":
            context = project.root / "slow"
            context.mkdir()
            # The token defeats the build cache: the step really runs every time.
            (context / "Dockerfile").write_text(f"FROM {BOOKWORM}\nRUN echo {token} && sleep 30\n")
            tag = f"stackmatrix-faults/slow-build:{token}"
            image_tags.append(tag)
            slow = {"build": {"context": "slow"}, "image": tag, "init": True,
                    "command": ["sleep", "600"]}  # fmt: skip
            add_services(project, {"slow": slow}, when=b)
        case "ready":
            never_healthy = {
                "image": BOOKWORM, "init": True, "command": ["sleep", "600"],
                "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "retries": 1000},
            }  # fmt: skip
            add_services(project, {"sluggish": never_healthy}, when=b)
        case "collect":
            # About 13 MB of log: `compose logs` takes seconds to collect it.
            chatty = {
                "image": BOOKWORM, "init": True,
                "command": ["sh", "-c", "yes 'a chatty service logs this line again and again' "
                            "| head -n 200000; exec sleep 600"],
            }  # fmt: skip
            add_services(project, {"chatty": chatty}, when=b)
        case "down":
            # PID 1 without init ignores SIGTERM: stopping it waits for down_timeout.
            stubborn = {"image": BOOKWORM, "command": ["sleep", "600"]}
            add_services(project, {"stubborn": stubborn}, when=b)
        case _:
            raise AssertionError(phase)


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_interrupt_at_each_phase_exits_promptly_and_keeps_finished_results(
    tmp_path: Path, interrupt: Interrupt, image_tags: list[str]
) -> None:
    project = make_project(
        tmp_path, axes={"flavor": ["a", "b"]}, run={"jobs": 2, "down_timeout": "6s"}
    )
    copy_fixture("after_first.py", project)
    edit_spec(project, lambda spec: spec["tests"].update(command=["python3", "after_first.py"]))
    _slow_at(interrupt.phase, project, image_tags)

    run = Watched(project, "run")
    if interrupt.a_finished:
        run.wait_for(r"^ok\s+flavor-a\b", rf"^\s+flavor-b: {interrupt.phase}$")
    else:
        run.wait_for(rf"^\s+flavor-b: {interrupt.phase}$")
    for sig in interrupt.signals:
        run.signal(sig, group=interrupt.group)
        time.sleep(0.3)
    code, seconds = run.finish()

    assert code == 130, run.output
    assert seconds < BOUND, f"took {seconds:.1f} s to stop:\n{run.output}"
    assert f"{interrupt.signals[0].name}: stopping" in run.output
    journal = project.journal()
    assert journal["interrupted"] is True
    assert journal["exit_code"] == 130
    assert labelled_objects(journal["run_id"]) == set()  # right at exit, not eventually
    run_dir = project.run_dir()
    _assert_reports(run_dir)
    variants = by_id(journal)
    a, b = variants["flavor-a"], variants["flavor-b"]
    # The signal really landed in the phase under test.
    # (The phase is announced just before its start is stamped: allow for that.)
    began = b["phase_starts"][interrupt.phase]
    assert began - 0.5 <= (run.signalled_wall or 0) <= began + b["phases"][interrupt.phase]
    if interrupt.a_finished:
        # The variant that finished before the signal keeps its result and its files.
        assert a["status"] == "passed"
        assert a["tests"]["passed"] == 2
        assert (run_dir / "flavor-a" / "logs" / "echo.log").read_text().startswith("listening")
        assert "echo replied" in (run_dir / "flavor-a" / "tests.log").read_text()
    else:
        assert (a["status"], a["reason"]) == ("interrupted", "interrupted")
    assert b["status"] == interrupt.b_status
    assert (run_dir / "flavor-b" / "junit.xml").is_file()
    assert "flavor-b" in (run_dir / "summary.md").read_text()
    if interrupt.b_status == "interrupted":
        assert b["reason"] == "interrupted"
        assert "interrupted" in (run_dir / "flavor-b" / "junit.xml").read_text()
        assert "tests" not in b["phases"]
    if interrupt.phase == "build":
        assert "up" not in b["phases"], "the stack was brought up after the interrupt"


# -- the engine -------------------------------------------------------------------------------


def _dead_socket(tmp_path: Path) -> tuple[str, socket.socket]:
    """A unix socket nobody listens on (bound, never accepting)."""
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return f"unix://{path}", sock


def test_engine_unreachable_at_start_is_a_clear_error_exit_3(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    host, sock = _dead_socket(tmp_path)
    with sock:
        started = time.monotonic()
        done = project.run("run", env={"DOCKER_HOST": host}, timeout=60)
    assert time.monotonic() - started < BOUND
    assert done.returncode == 3, done.stderr
    assert "stackmatrix: error: the Docker engine is not reachable" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".stackmatrix").exists()  # nothing was started, nothing recorded


def test_engine_unreachable_message_says_what_docker_said(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    host, sock = _dead_socket(tmp_path)
    with sock:
        done = project.run("run", env={"DOCKER_HOST": host}, timeout=60)
    assert done.returncode == 3
    assert host in done.stderr, done.stderr


def test_missing_compose_plugin_is_a_clear_error_exit_3(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    # A docker front that knows no `compose`, as a docker CLI without the plugin answers.
    real, bin_dir = shutil.which("docker"), tmp_path / "bin"
    bin_dir.mkdir()
    front = bin_dir / "docker"
    front.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = compose ]; then echo "docker: \'compose\' is not a docker command." >&2;'
        " exit 1; fi\n"
        f'exec {real} "$@"\n'
    )
    front.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = project.run("run", env={"PATH": path}, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "stackmatrix: error: `docker compose` (Compose v2) is not available" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".stackmatrix").exists()


def test_engine_that_never_answers_fails_within_bounds(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(str(path))
        silent.listen(8)
        run = Watched(project, "run", env={"DOCKER_HOST": f"unix://{path}"})
        run.signalled_at = time.monotonic()  # measure from the start
        code, seconds = run.finish(timeout=15)
    assert seconds < 15
    assert code == 3, run.output
    assert "not reachable" in run.output or "did not answer" in run.output


# -- containers -------------------------------------------------------------------------------


def test_a_container_that_exits_at_once_is_an_error_with_its_log(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    crash = {"image": BOOKWORM, "command": ["sh", "-c", "echo 'config file missing' >&2; exit 3"]}
    add_services(project, {"crash": crash})

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"] == "service 'crash' exited with code 3"
    assert "config file missing" in variant["detail"]
    assert "reason: service 'crash' exited with code 3" in done.stderr
    run_dir = project.run_dir()
    _assert_reports(run_dir)
    assert "exited with code 3" in (run_dir / "flavor-a" / "junit.xml").read_text()
    assert "tests" not in variant["phases"]


def test_a_container_killed_mid_test_fails_the_variant(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    kill_echo = (
        'docker kill $(docker ps -q --filter "label=com.docker.compose.project='
        '$STACKMATRIX_PROJECT" --filter label=com.docker.compose.service=echo) >/dev/null; '
        "exec python3 echo_check.py"
    )
    edit_spec(project, lambda spec: spec["tests"].update(command=["sh", "-c", kill_echo]))

    done = project.run("run")

    # The stack fell apart under the tests: a stack failure (exit 3), named first.
    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"].startswith(
        "service 'echo' exited with code 137 while the tests ran; tests exited with code 1"
    ), variant["reason"]
    run_dir = project.run_dir()
    assert "ConnectionRefusedError" in (run_dir / "flavor-a" / "tests.log").read_text()
    assert (run_dir / "flavor-a" / "logs" / "echo.log").is_file()
    _assert_reports(run_dir)


def _memory_hog(project: Project) -> None:
    hog = {
        "image": BOOKWORM, "mem_limit": "32m", "memswap_limit": "32m",
        "command": ["perl", "-e", "$$x = q(x) x (512 * 1024 * 1024); sleep 600"],
    }  # fmt: skip
    add_services(project, {"hog": hog})


def test_a_container_out_of_memory_is_an_error(tmp_path: Path) -> None:
    project = _one_variant(tmp_path)
    _memory_hog(project)

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"] == (
        "service 'hog' was killed: out of memory (OOMKilled, exit code 137)"
    )
    assert "killed by the kernel: out of memory" in variant["detail"]
    _assert_reports(project.run_dir())


def test_a_pinned_port_taken_on_the_host_is_an_error_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        project = _one_variant(tmp_path)
        pinned = {"image": BOOKWORM, "init": True, "command": ["sleep", "600"],
                  "ports": [f"{port}:7000"]}  # fmt: skip
        add_services(project, {"pinned": pinned})

        done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"] == "docker compose up failed"
    assert f"127.0.0.1:{port}" in variant["detail"]
    assert f"127.0.0.1:{port}" in done.stderr
    _assert_reports(project.run_dir())


def test_an_image_that_fails_to_build_is_an_error_with_the_build_output(
    tmp_path: Path, image_tags: list[str]
) -> None:
    project = _one_variant(tmp_path)
    (tmp_path / "broken").mkdir()
    step = f"step-{secrets.token_hex(4)}-fails"
    (tmp_path / "broken" / "Dockerfile").write_text(f"FROM {BOOKWORM}\nRUN echo {step} && exit 1\n")
    tag = f"stackmatrix-faults/broken:{secrets.token_hex(4)}"
    image_tags.append(tag)
    add_services(project, {"broken": {"build": {"context": "broken"}, "image": tag}})

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"] == (
        f"service broken: image {tag}: building the image of service 'broken' failed"
    )
    assert step in variant["detail"]  # the failing step, as the builder reported it
    assert "up" not in variant["phases"]
    _assert_reports(project.run_dir())


# -- the test command -------------------------------------------------------------------------


def test_a_test_command_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    """A missing command is refused before up (tests/integration/test_test_command.py); one
    that goes missing after that check (here a setup step removes it) fails its variant."""
    project = _one_variant(tmp_path)
    runner = tmp_path / "run-tests"
    runner.write_text("#!/bin/sh\nexit 0\n")
    runner.chmod(0o755)

    def edit(spec: dict[str, Any]) -> None:
        spec["tests"].update(command=["./run-tests", "--junitxml=${{ junit }}"])
        spec["tests"]["setup"] = {"command": ["rm", str(runner)]}

    edit_spec(project, edit)

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"] == "cannot start './run-tests': No such file or directory"
    run_dir = project.run_dir()
    assert "run-tests" in (run_dir / "flavor-a" / "junit.xml").read_text()
    assert "run-tests" in (run_dir / "summary.md").read_text()


def test_forked_children_that_ignore_sigterm_die_with_the_test_command(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    project = _one_variant(tmp_path, tests_timeout="3s")
    # A child and a grandchild, all ignoring SIGTERM; only the process group's SIGKILL ends them.
    script = (
        "trap '' TERM; "
        '(trap \'\' TERM; sleep 600 & echo $! >> "$PIDS"; wait) & echo $! >> "$PIDS"; '
        "echo started; wait"
    )

    def change(spec: dict[str, Any]) -> None:
        spec["tests"]["command"] = ["sh", "-c", script]
        spec["tests"]["env"]["PIDS"] = str(pids)

    edit_spec(project, change)

    started = time.monotonic()
    done = project.run("run")

    assert time.monotonic() - started < 60
    assert done.returncode == 1, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "failed"
    assert "timed out after 3 s" in variant["reason"]
    children = [int(line) for line in pids.read_text().split()]
    assert len(children) == 2
    assert [pid for pid in children if pid_alive(pid)] == []
    assert (
        "killed after the 3 s timeout" in (project.run_dir() / "flavor-a" / "tests.log").read_text()
    )


# -- the output directory ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["under-a-file", "in-proc"])
def test_an_unwritable_output_directory_is_a_clear_error(tmp_path: Path, where: str) -> None:
    project = _one_variant(tmp_path)
    (tmp_path / "a-file").write_text("not a directory\n")
    out = "a-file/out" if where == "under-a-file" else f"/proc/stackmatrix-{secrets.token_hex(3)}"

    done = project.run("run", "--out", out)

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stderr
    assert re.search(rf"^stackmatrix: error: .*{re.escape(out)}", done.stderr, re.M), done.stderr


# -- a run killed with SIGKILL, then gc ---------------------------------------------------------


def test_gc_removes_everything_a_killed_run_left(tmp_path: Path) -> None:
    project = _one_variant(tmp_path, check_mode="hang")
    run = Watched(project, "run")
    run.wait_for(r"^\s+flavor-a: tests$")
    run_id = project.journal()["run_id"]
    deadline = time.monotonic() + 10  # the phase is announced just before the command starts
    while not (tests_running := pids_with_env("STACKMATRIX_RUN_ID", run_id)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    run.kill()  # SIGKILL: no handler, no teardown
    try:
        left_by_kill = labelled_objects(run_id)
        # The test command runs in a session of its own; its guard ends it once the run is gone.
        deadline = time.monotonic() + 15
        while (tests_left := pids_with_env("STACKMATRIX_RUN_ID", run_id)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        for pid in tests_left:
            os.kill(pid, signal.SIGKILL)
        collected = gc(project)
        left_by_gc = labelled_objects(run_id)
    finally:
        force_remove(run_id)

    assert tests_running, "the test command should have been running"
    assert tests_left == [], "the test command outlived the killed run"
    assert left_by_kill, "a killed run should have left its stack"
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert re.search(rf"^removed run {run_id}: 1 containers, 1 networks", collected.stdout, re.M), (
        collected.stdout
    )
    assert left_by_gc == set()
    again = gc(project)
    assert run_id not in again.stdout


def test_gc_is_not_upset_by_another_run_removing_its_containers(tmp_path: Path) -> None:
    token = secrets.token_hex(4)
    ours, theirs = f"gc-ours-{token}", f"gc-theirs-{token}"
    ids = {
        run_id: subprocess.run(
            ["docker", "run", "-d", "--init", "--label", f"io.stackmatrix.run={run_id}",
             BOOKWORM, "sleep", "600"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for run_id in (ours, theirs)
    }  # fmt: skip
    # A docker front that, right after gc's first listing, removes the other run's container,
    # as that run's own teardown would at the same moment.
    real, mark = shutil.which("docker"), tmp_path / "raced"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        '  "ps "*|"container ls"|"container list"|"container ps")\n'
        f'    if [ ! -e "{mark}" ]; then\n'
        f'      : > "{mark}"; out=$("{real}" "$@"); code=$?\n'
        f'      "{real}" rm -f {ids[theirs]} >/dev/null 2>&1\n'
        "      printf '%s\\n' \"$out\"; exit $code\n"
        "    fi;;\n"
        "esac\n"
        f'exec "{real}" "$@"\n'
    )
    (bin_dir / "docker").chmod(0o755)
    try:
        done = Project(tmp_path).run(
            "gc", "--run", ours, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}
        )
        assert mark.exists()  # the other run's container vanished after gc had listed it
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"removed run {ours}: 1 containers" in done.stdout
        assert labelled_objects(ours) == set()
    finally:
        subprocess.run(["docker", "rm", "-f", *ids.values()], capture_output=True, check=False)


# -- an engine that freezes or dies while a run uses it -----------------------------------------


@pytest.fixture(scope="module")
def engine2(docker_engine: object) -> Iterator[SecondEngine]:
    """A second engine of this module's own, holding the base image; a test may break it."""
    with second_engine() as engine:
        engine.load_image(BOOKWORM)
        yield engine


def _engine_project(root: Path, engine: SecondEngine, tests: str) -> Project:
    """One variant, one idle service on *engine*; the tests run the shell line *tests* with
    ``$ENGINE_PID`` (dockerd) and ``$MARK`` (a file to write when the fault is injected)."""
    spec = {
        "name": "it",
        "axes": {"flavor": ["a"]},
        "overlays": [{"when": {}, "compose": {"services": {"idle": {
            "image": BOOKWORM, "init": True, "command": ["sleep", "600"],
        }}}}],
        "tests": {
            "command": ["sh", "-c", f"{JUNIT}; {tests}"],
            "env": {"ENGINE_PID": str(engine.pid), "MARK": str(root / "fault")},
            "timeout": "120s",
        },
        "run": {"jobs": 1, "up_timeout": "60s", "down_timeout": "2s"},
    }  # fmt: skip
    (root / "matrix.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return Project(root)


def _labelled_on(engine: SecondEngine, run_id: str) -> set[str]:
    found: set[str] = set()
    for kind in ("container", "network", "volume"):
        listing = ["ls", "-aq"] if kind == "container" else ["ls", "-q"]
        out = subprocess.run(
            ["docker", "-H", engine.host, kind, *listing, "--filter",
             f"label=io.stackmatrix.run={run_id}"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        found.update(f"{kind}:{line}" for line in out.split())
    return found


def _fault_time(root: Path) -> float:
    return float((root / "fault").read_text().strip())


FREEZE = 'kill -STOP "$ENGINE_PID"; date +%s.%N > "$MARK"; exit 0'
# The tests' report: one testcase that passed.
JUNIT = (
    'echo \'<testsuite name="t" tests="1"><testcase classname="t" name="ok"/>'
    '</testsuite>\' > "$STACKMATRIX_JUNIT"'
)


def test_an_engine_frozen_after_the_tests_fails_the_run_within_the_deadline_naming_the_call(
    tmp_path: Path, engine2: SecondEngine
) -> None:
    project = _engine_project(tmp_path, engine2, FREEZE)
    env = {**engine2.env(), "STACKMATRIX_ENGINE_TIMEOUT": "5"}
    try:
        done = project.run("run", env=env, timeout=120)
        ended = time.time()
    finally:
        engine2.thaw()
    journal = project.journal()
    variant = _only_variant(project)
    after_gc = gc(project, env=engine2.env())

    # The deadline (5 s), then one `docker version` (4 s) tells the engine is frozen: every
    # later call (the rest of teardown) fails at once.
    assert ended - _fault_time(tmp_path) < 5 + 4 + 6, done.stderr
    assert done.returncode == 3, done.stdout + done.stderr
    # The tests had finished: their result and counts stand, the trouble is recorded beside.
    assert (variant["status"], variant["tests"]["passed"]) == ("passed", 1), variant
    # Which call meets the frozen engine first depends on timing: the collection of logs, or
    # a question still asked beside the tests (provenance); the teardown names it.
    assert re.fullmatch(
        r"teardown failed: the Docker engine did not answer `docker compose down`: it (does not"
        r" answer `docker version`|stopped answering) since `docker [a-z ]+` got none",
        variant["teardown"],
    ), variant
    assert "DockerException" not in done.stdout + done.stderr
    assert "The command executed was" not in done.stdout + done.stderr
    log = (project.run_dir() / "flavor-a" / "logs" / "idle.log").read_text()
    assert log.startswith("(no log: the Docker engine did not answer `docker logs`"), log
    # The stack the frozen engine kept: `gc` removes it once the engine is back.
    assert after_gc.returncode == 0, after_gc.stdout + after_gc.stderr
    assert f"removed run {journal['run_id']}: 1 containers, 1 networks" in after_gc.stdout
    assert _labelled_on(engine2, journal["run_id"]) == set()


def test_sigterm_ends_a_run_within_seconds_while_the_engine_is_frozen(
    tmp_path: Path, engine2: SecondEngine
) -> None:
    # No short deadline here: the default (60 s) must not hold an interrupted run.
    project = _engine_project(tmp_path, engine2, f"{FREEZE.removesuffix('exit 0')} sleep 60")
    run = Watched(project, "run", env=engine2.env())
    try:
        run.wait_for(r"^\s+flavor-a: tests$")
        deadline = time.monotonic() + 30
        while not (tmp_path / "fault").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        run.signal(signal.SIGTERM)
        code, seconds = run.finish(timeout=60)
    finally:
        engine2.thaw()
    run_id = project.journal()["run_id"]
    gc(project, env=engine2.env())

    assert seconds < 12, run.output
    assert code == 130, run.output
    assert _only_variant(project)["status"] in {"interrupted", "error"}
    assert "Traceback" not in run.output
    assert _labelled_on(engine2, run_id) == set()


def test_an_engine_that_dies_during_the_tests_is_the_reason_and_gc_cleans_up_after_it(
    tmp_path: Path, engine2: SecondEngine
) -> None:
    project = _engine_project(
        tmp_path, engine2, 'kill -KILL "$ENGINE_PID"; date +%s.%N > "$MARK"; exit 0'
    )
    try:
        done = project.run("run", env=engine2.env(), timeout=120)
    finally:
        engine2.process.wait(30)  # type: ignore[union-attr]
        engine2.start()
    variant = _only_variant(project)
    run_id = project.journal()["run_id"]
    left = _labelled_on(engine2, run_id)
    after_gc = gc(project, env=engine2.env())

    assert done.returncode == 3, done.stdout + done.stderr
    assert (variant["status"], variant["tests"]["passed"]) == ("passed", 1), variant
    assert variant["teardown"].startswith(
        "teardown failed: the Docker engine did not answer `docker compose down`"
    ), variant
    log = (project.run_dir() / "flavor-a" / "logs" / "idle.log").read_text()
    # Gone (its socket refuses), or no answer when a question asked beside the tests was in
    # flight as it died: either way the log says the engine, not the service.
    assert log.startswith(
        (
            "(no log: the Docker engine is gone: `docker logs` failed: Cannot connect",
            "(no log: the Docker engine did not answer `docker logs`",
        )
    ), log
    assert "The command executed was" not in done.stdout + done.stderr
    assert left, "the dead engine could not take the stack down"
    assert after_gc.returncode == 0, after_gc.stdout + after_gc.stderr
    assert f"removed run {run_id}:" in after_gc.stdout
    assert _labelled_on(engine2, run_id) == set()


def test_an_engine_that_dies_while_the_stack_comes_up_is_the_reason(
    tmp_path: Path, engine2: SecondEngine
) -> None:
    project = _engine_project(tmp_path, engine2, "exit 0")
    never = {"test": ["CMD", "false"], "interval": "1s", "retries": 100}
    edit_spec(project, lambda spec: spec["overlays"][0]["compose"]["services"]["idle"].update(
        healthcheck=never))  # fmt: skip
    run = Watched(project, "run", env=engine2.env())
    try:
        run.wait_for(r"^\s+flavor-a: ready$")
        time.sleep(1)
        run.signalled_at = time.monotonic()  # measure from the engine's death
        engine2.kill()
        code, seconds = run.finish(timeout=60)
    finally:
        engine2.start()
    variant = _only_variant(project)
    run_id = project.journal()["run_id"]
    after_gc = gc(project, env=engine2.env())

    assert code == 3, run.output
    assert seconds < 15, run.output
    # The first cause is the reason; the teardown that failed after it is beside it.
    assert variant["reason"].startswith("the Docker engine is gone: `docker container "), variant
    assert variant["teardown"].startswith("teardown failed: "), variant
    assert "Traceback" not in run.output
    assert after_gc.returncode == 0, after_gc.stdout + after_gc.stderr
    assert _labelled_on(engine2, run_id) == set()


# -- the stack changes under the tests --------------------------------------------------------


def test_a_service_removed_while_the_tests_run_is_named(tmp_path: Path) -> None:
    """Someone (a person, another tool, a careless `docker rm`) removes a service's container
    while the tests run: the variant says so instead of only "tests exited with code 1"."""
    project = _one_variant(tmp_path)
    remove = (
        "docker rm -f $(docker ps -q --filter label=com.docker.compose.project=$STACKMATRIX_PROJECT"
        " --filter label=com.docker.compose.service=echo) >/dev/null; exit 1"
    )
    edit_spec(project, lambda spec: spec["tests"].update({"shell": True, "command": remove}))

    done = project.run("run")

    assert done.returncode == 3, done.stdout + done.stderr
    variant = _only_variant(project)
    assert variant["status"] == "error"
    assert variant["reason"].startswith(
        "container of service 'echo' was removed while the tests ran; tests exited with code 1"
    ), variant["reason"]
    assert "was removed while the tests ran" in (project.run_dir() / "summary.md").read_text()
