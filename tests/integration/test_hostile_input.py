"""Hostile input on real runs: axis values made to break shells and paths, JUnit reports made to
attack XML readers, and secrets that must not reach reports, command lines or the network."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from stackmatrix.matrix.expand import ID_PATTERN

from ._matrix import Project, make_project
from .conftest import labelled_objects
from .faults._support import (
    add_services,
    by_id,
    command_lines,
    copy_fixture,
    edit_spec,
    files_containing,
    force_remove,
    gc,
)

pytestmark = pytest.mark.usefixtures("docker_engine")

BOOKWORM = "debian:bookworm-slim"
MASK = "••••••"
BOX = {"image": BOOKWORM, "init": True, "command": ["sleep", "600"]}


def _spec_without_echo(project: Project, **changes: Any) -> None:
    """Replace make_project's echo stack by *changes* (overlays, ready, tests, ...)."""

    def change(spec: dict[str, Any]) -> None:
        spec["ready"] = {}
        spec.update(changes)

    edit_spec(project, change)


# -- axis values --------------------------------------------------------------------------------


# The command as a list of words, and as one line that `sh -c` runs (values go in quoted).
COMMANDS: dict[str, dict[str, Any]] = {
    "words": {"command": ["python3", "value_check.py", "${{ matrix.v }}"]},
    "shell": {"shell": True, "command": "python3 value_check.py ${{ matrix.v }} && true"},
}


@pytest.mark.parametrize("form", COMMANDS)
def test_hostile_axis_values_arrive_intact_and_break_nothing(tmp_path: Path, form: str) -> None:
    token = secrets.token_hex(4)
    pwned = Path(f"/tmp/pwned-{token}")
    values = [
        f"$(touch {pwned}-a)",
        f"`touch {pwned}-b`; touch {pwned}-c #",
        f"../../../escape-{token}",
        "line one\nline two",
        "ünïcødé ☃ 日本 ${HOME} 'single' \"double\" & | > <",
    ]
    project = make_project(tmp_path, axes={"v": values})
    (tmp_path / "values.json").write_text(json.dumps(values))
    copy_fixture("value_check.py", project)
    box = {**BOX, "environment": {"HOSTILE": "${{ matrix.v }}"}}
    _spec_without_echo(
        project,
        overlays=[{"when": {}, "compose": {"services": {"box": box}}}],
        tests={
            **COMMANDS[form],
            "env": {"FROM_TEMPLATE": "${{ matrix.v }}"},
            "timeout": "60s",
        },
        run={"jobs": 3, "down_timeout": "2s"},
    )
    outside_before = sorted(p.name for p in tmp_path.parent.iterdir())

    done = project.run("run")

    assert done.returncode == 0, done.stdout + done.stderr
    journal = project.journal()
    variants = journal["variants"]
    assert [v["values"]["v"] for v in variants] == values
    assert {v["status"] for v in variants} == {"passed"}  # value_check found it intact
    # No shell ever ran the values.
    assert sorted(Path("/tmp").glob(f"pwned-{token}*")) == []
    # Ids and project names are safe slugs; the run directory holds exactly the variants.
    ids = [v["id"] for v in variants]
    assert len(set(ids)) == len(values)
    assert all(ID_PATTERN.match(i) for i in ids), ids
    projects = [v["project"] for v in variants]
    assert len(set(projects)) == len(values)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", p) for p in projects), projects
    run_dir = project.run_dir()
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == sorted(ids)
    for path in run_dir.rglob("*"):
        assert path.resolve().is_relative_to(run_dir), path
    # Nothing was written beside the project or above it.
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside_before
    assert [p for p in (tmp_path, *tmp_path.parents) if (p / f"escape-{token}").exists()] == []


# -- JUnit reports ------------------------------------------------------------------------------


class _Listener:
    """A TCP port on 127.0.0.1 that counts who connects (nobody should)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


@dataclass(frozen=True)
class _JunitRun:
    """One run whose variants each wrote one kind of hostile JUnit report."""

    run_dir: Path
    output: str
    variants: dict[str, dict[str, Any]]
    planted: str  # the content of a local file that an external entity names
    fetches: int  # connections to the port an external DTD names


@pytest.fixture(scope="module")
def junit_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerClient) -> _JunitRun:
    """Run a matrix whose tests exit 0 but write an XXE, an external DTD, an entity bomb, a
    24 MiB attribute or invalid UTF-8 as their JUnit report (see faults/hostile_junit.py)."""
    root = tmp_path_factory.mktemp("junit")
    planted = root / "planted.txt"
    planted_line = f"planted-{secrets.token_hex(8)}"
    planted.write_text(planted_line + "\n")
    kinds = ["xxe", "dtd", "bomb", "huge", "badutf8"]
    project = make_project(root, axes={"junit": kinds})
    copy_fixture("hostile_junit.py", project)
    listener = _Listener()
    try:
        _spec_without_echo(
            project,
            overlays=[{"when": {}, "compose": {"services": {"box": BOX}}}],
            tests={
                "command": ["python3", "hostile_junit.py"],
                "env": {"PLANTED_FILE": str(planted), "DTD_PORT": str(listener.port)},
                "timeout": "60s",
            },
            run={"jobs": 5, "down_timeout": "2s"},
        )
        done = project.run("run", timeout=180)
    finally:
        listener.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert labelled_objects(project.journal()["run_id"]) == set()
    return _JunitRun(
        run_dir=project.run_dir(),
        output=done.stdout + done.stderr,
        variants=by_id(project.journal()),
        planted=planted_line,
        fetches=listener.connections,
    )


def test_hostile_junit_reports_are_refused_or_repaired_and_reported(junit_run: _JunitRun) -> None:
    run_dir, variants = junit_run.run_dir, junit_run.variants
    summary = (run_dir / "summary.md").read_bytes().decode("utf-8")  # strictly valid UTF-8
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    # Entities are refused, never expanded: the planted file is read by nobody.
    for kind in ("xxe", "bomb"):
        variant = variants[f"junit-{kind}"]
        assert variant["status"] == "failed"
        assert variant["tests"]["errors"] == 1
    # One failure on several variants is listed once, naming them.
    (refused,) = [line for line in summary.splitlines() if "XML entities are not allowed" in line]
    assert "junit-xxe" in refused, refused
    assert "junit-bomb" in refused, refused
    assert html.count("XML entities are not allowed") >= 2
    assert files_containing(run_dir, junit_run.planted) == []
    assert junit_run.planted not in junit_run.output
    # An external DTD is never fetched.
    assert junit_run.fetches == 0
    assert variants["junit-dtd"]["status"] == "passed"
    # A 24 MiB attribute is read, counted and cut short in the reports.
    huge = variants["junit-huge"]
    assert (huge["tests"]["total"], huge["tests"]["failed"]) == (2, 1)
    for report in ("run.json", "summary.md", "report.html", "junit.xml"):
        size = (run_dir / report).stat().st_size
        assert size < 1024 * 1024, f"{report} is {size} bytes"
    # Invalid UTF-8 and terminal escapes are repaired, and the repair is said.
    bad = variants["junit-badutf8"]
    assert (bad["tests"]["total"], bad["tests"]["failed"]) == (2, 1)
    assert "invalid UTF-8 bytes replaced" in junit_run.output
    assert "\x1b" not in summary
    assert "\x1b" not in html


def test_every_file_of_the_run_directory_stays_small(junit_run: _JunitRun) -> None:
    sizes = {p.name: p.stat().st_size for p in junit_run.run_dir.iterdir() if p.is_file()}
    assert "run.json" in sizes
    assert {name: size for name, size in sizes.items() if size >= 1024 * 1024} == {}


# -- secrets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SecretRun:
    """One run whose tests and services were given secrets, and everything it produced."""

    project: Project
    run_dir: Path
    output: str
    step_summary: Path
    test_secrets: dict[str, str]  # tests.env and inherited, printed by the tests: never to show
    service_secrets: tuple[str, ...]  # in a service's compose environment, printed in its log


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory: pytest.TempPathFactory, docker_engine: DockerClient) -> _SecretRun:
    """Run a matrix whose tests print every secret they get and whose services log theirs.

    Variant a: the tests fail, with the secrets in their output and their JUnit report.
    Variant b: a service prints its password and exits at once, so its log reaches the result.
    """
    root = tmp_path_factory.mktemp("secrets")
    tag = secrets.token_hex(4)
    spec_secrets = {
        "API_TOKEN": f"tok-{tag}-api",
        "DB_PASSWORD": f"pw-{tag}-db",
        "SERVICE_KEY": f"key-{tag}-svc",
        "MY_SECRET": f"sec-{tag}-mine",
        # No secret-looking name: listed in `secrets`; and templated, so what must not show
        # is its value once expanded.
        "SHOP_DSN": f"dsn-{tag}-shop@${{{{ ports.echo.7000 }}}}",
    }
    inherited = {"CI_DEPLOY_TOKEN": f"ci-{tag}-deploy"}
    service_secret = f"pg-{tag}-service"
    admin_phrase = f"phrase-{tag}-admin"  # no secret-looking name: listed in `secrets`
    project = make_project(root, axes={"flavor": ["a", "b"]})
    copy_fixture("leaky_check.py", project)
    names = ",".join([*spec_secrets, *inherited])
    # The token also appears literally on the command line: it must be masked when printed.
    command = ["python3", "leaky_check.py", "--token", spec_secrets["API_TOKEN"]]

    def change(spec: dict[str, Any]) -> None:
        spec["tests"].update(command=command, env={**spec_secrets, "LEAKED_NAMES": names})
        spec["secrets"] = ["SHOP_DSN", "ADMIN_PHRASE"]

    edit_spec(project, change)
    env = {"POSTGRES_PASSWORD": service_secret, "ADMIN_PHRASE": admin_phrase}
    db = {
        **BOX,
        "environment": env,
        "command": [
            "sh", "-c",
            'echo "db up, password $$POSTGRES_PASSWORD, admin $$ADMIN_PHRASE"; exec sleep 600',
        ],
    }  # fmt: skip
    refuse = 'echo "auth failed for password $$POSTGRES_PASSWORD, $$ADMIN_PHRASE"; exit 1'
    crash = {"image": BOOKWORM, "environment": env, "command": ["sh", "-c", refuse]}
    add_services(project, {"db": db}, when={"flavor": "a"})
    add_services(project, {"crash": crash}, when={"flavor": "b"})
    step_summary = root / "step-summary.md"

    done = project.run(
        "run",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step_summary), **inherited},
    )

    assert done.returncode == 3, done.stdout + done.stderr
    statuses = {v["id"]: v["status"] for v in project.journal()["variants"]}
    assert statuses == {"flavor-a": "failed", "flavor-b": "error"}
    assert labelled_objects(project.journal()["run_id"]) == set()
    return _SecretRun(
        project=project,
        run_dir=project.run_dir(),
        output=done.stdout + done.stderr,
        step_summary=step_summary,
        test_secrets={**spec_secrets, "SHOP_DSN": f"dsn-{tag}-shop@127.0.0.1:", **inherited},
        service_secrets=(service_secret, admin_phrase),
    )


def test_secrets_stay_out_of_the_journal_and_the_printed_command_line(
    secret_run: _SecretRun,
) -> None:
    journal = (secret_run.run_dir / "run.json").read_text()
    for name, value in secret_run.test_secrets.items():
        assert value not in journal, f"{name} in run.json"
    header = (secret_run.run_dir / "flavor-a" / "tests.log").read_text().splitlines()[0]
    assert header == f"$ python3 leaky_check.py --token {MASK}"
    # Compose files that carry a secret are readable by their owner only.
    for variant in ("flavor-a", "flavor-b"):
        compose = secret_run.run_dir / variant / "compose.yaml"
        assert all(secret in compose.read_text() for secret in secret_run.service_secrets)
        assert stat.S_IMODE(compose.stat().st_mode) & 0o077 == 0, oct(compose.stat().st_mode)


def test_secrets_printed_by_the_tests_are_masked_in_every_report(secret_run: _SecretRun) -> None:
    run_dir = secret_run.run_dir
    places = {
        "summary.md": (run_dir / "summary.md").read_text(),
        "report.html": (run_dir / "report.html").read_text(),
        "junit.xml": (run_dir / "junit.xml").read_text(),
        "results.json": (run_dir / "results.json").read_text(),
        "tests.log": (run_dir / "flavor-a" / "tests.log").read_text(),
        "step summary": secret_run.step_summary.read_text(),
        "printed output and annotations": secret_run.output,
    }
    assert "::error " in secret_run.output  # annotations were printed
    leaks = [
        f"{name} in {place}"
        for name, value in secret_run.test_secrets.items()
        for place, text in places.items()
        if value in text
    ]
    assert leaks == []


def test_secrets_of_service_environments_are_masked_in_results(secret_run: _SecretRun) -> None:
    run_dir = secret_run.run_dir
    crash = by_id(json.loads((run_dir / "run.json").read_text()))["flavor-b"]
    assert "auth failed for password" in crash["detail"]
    places = {
        "run.json": (run_dir / "run.json").read_text(),
        "summary.md": (run_dir / "summary.md").read_text(),
        "report.html": (run_dir / "report.html").read_text(),
        "results.json": (run_dir / "results.json").read_text(),
        "junit.xml": (run_dir / "junit.xml").read_text(),
        "flavor-b/junit.xml": (run_dir / "flavor-b" / "junit.xml").read_text(),
        "printed output": secret_run.output,
    }
    leaks = [p for p, text in places.items() for s in secret_run.service_secrets if s in text]
    assert leaks == []


def test_secrets_of_in_service_tests_never_appear_on_a_command_line(tmp_path: Path) -> None:
    token = f"tok-{secrets.token_hex(8)}"
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    edit_spec(
        project,
        lambda spec: spec["tests"].update(
            where="echo",
            command=["sh", "-c", "printenv API_TOKEN | sha256sum; sleep 4"],
            env={"API_TOKEN": token},
        ),
    )
    seen: list[bytes] = []
    stop = threading.Event()

    def watch() -> None:
        needle = token.encode()
        while not stop.is_set():
            seen.extend(line for line in command_lines() if needle in line)
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        project.run("run")
    finally:
        stop.set()
        watcher.join(5)
    tests_log = (project.run_dir() / "flavor-a" / "tests.log").read_text()
    # The service did get the secret...
    assert hashlib.sha256(f"{token}\n".encode()).hexdigest() in tests_log
    # ...but no process ever showed it.
    assert seen == []


def test_ports_are_published_on_loopback_only(tmp_path: Path) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    (tmp_path / "base.yaml").write_text(
        "services:\n  based:\n    image: debian:bookworm-slim\n    init: true\n"
        "    command: [sleep, '600']\n    ports: ['7007']\n"
    )
    many = {**BOX, "ports": ["7001", {"target": 7002}, "7003-7004", "7005/udp", "127.0.0.1::7006"]}
    add_services(project, {"many": many})
    edit_spec(project, lambda spec: spec.update(compose=["base.yaml"]))

    done = project.run("run", "--keep")
    run_id = project.journal()["run_id"]
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=io.stackmatrix.run={run_id}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        inspected = json.loads(
            subprocess.run(
                ["docker", "inspect", *ids], capture_output=True, text=True, check=True
            ).stdout
        )
    finally:
        collected = gc(project, "--run", run_id)
        left_by_gc = labelled_objects(run_id)
        force_remove(run_id)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert left_by_gc == set()
    bindings = {
        (c["Name"], port, b["HostIp"])
        for c in inspected
        for port, published in (c["NetworkSettings"]["Ports"] or {}).items()
        for b in published or []
    }
    ports = {port for _, port, _ in bindings}
    assert ports == {"7000/tcp", "7001/tcp", "7002/tcp", "7003/tcp", "7004/tcp",
                     "7005/udp", "7006/tcp", "7007/tcp"}  # fmt: skip
    assert {ip for _, _, ip in bindings} == {"127.0.0.1"}, sorted(bindings)
    (variant,) = project.journal()["variants"]
    assert all(a.startswith("127.0.0.1:") for p in variant["ports"].values() for a in p.values())


# -- links in the run directory -----------------------------------------------------------------

LINKER = """\
set -eu
dir="$(dirname "$STACKMATRIX_JUNIT")"  # the variant's folder of the run directory
test -f "$dir/compose.yaml"
case "$STACKMATRIX_VARIANT" in
  links-files)
    ln -s "$OUTSIDE/report.xml" "$STACKMATRIX_JUNIT"
    mkdir -p "$dir/logs"
    ln -s "$OUTSIDE/echo.log" "$dir/logs/echo.log"
    ln -s "$OUTSIDE/echo.log" "$dir/build.log"
    ln -s "$OUTSIDE" "$dir/uploaded-folder"
    ;;
  links-folder)
    ln -s "$OUTSIDE/report.xml" "$STACKMATRIX_JUNIT"
    ln -s "$OUTSIDE/logs" "$dir/logs"
    mkfifo "$dir/pipe"
    ;;
esac
echo "token $API_TOKEN"
"""


def test_links_the_tests_leave_in_the_run_directory_are_refused_never_followed(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    (outside / "logs").mkdir(parents=True)
    token = f"tok-{secrets.token_hex(6)}"
    planted = f"planted-{secrets.token_hex(6)}"
    # A JUnit report that reads as a pass, and a log holding the token: if stackmatrix read
    # the first or masked the second through the link, the reports or the file would show it.
    (outside / "report.xml").write_text(
        f'<testsuite name="{planted}"><testcase classname="{planted}" name="t"/></testsuite>\n'
    )
    (outside / "echo.log").write_text(f"outside log with {token}\n")
    (outside / "logs" / "echo.log").write_text(f"another outside log with {token}\n")
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project", axes={"links": ["files", "folder"]})
    edit_spec(
        project,
        lambda spec: spec["tests"].update(
            command=["sh", "-c", LINKER],
            env={**spec["tests"]["env"], "OUTSIDE": str(outside), "API_TOKEN": token},
        ),
    )

    done = project.run("run")

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert labelled_objects(project.journal()["run_id"]) == set()
    # Nothing outside changed, and nothing was written into the linked folder.
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before
    # The run directory holds regular files and folders only.
    run_dir = project.run_dir()
    odd = [
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.is_symlink() or not (p.is_file() or p.is_dir())
    ]
    assert odd == []
    # Each variant says what was refused; the report outside was never read.
    variants = by_id(project.journal())
    for variant_id in ("links-files", "links-folder"):
        variant = variants[variant_id]
        assert variant["status"] == "failed", variant
        assert "symbolic links not followed: " in variant["reason"], variant
        assert "junit.xml -> " in variant["reason"], variant
    assert "logs/echo.log -> " in variants["links-files"]["reason"]
    assert "uploaded-folder -> " in variants["links-files"]["reason"]
    assert "logs -> " in variants["links-folder"]["reason"]
    assert "pipe (not a regular file)" in variants["links-folder"]["reason"]
    summary = (run_dir / "summary.md").read_text()
    assert "symbolic links not followed" in summary
    assert files_containing(run_dir, planted) == []
    assert planted not in output
    # The service's log was still collected, into the run directory.
    assert (run_dir / "links-folder" / "logs" / "echo.log").is_file()


# -- a full disk under --out --------------------------------------------------------------------

FILLER = """\
python3 echo_check.py; code=$?
if [ "$STACKMATRIX_VARIANT" = "disk-b" ]; then
  echo "token $API_TOKEN"
  journal="$(dirname "$(dirname "$STACKMATRIX_JUNIT")")/run.json"
  for _ in $(seq 200); do  # until disk-a has finished and is recorded
    grep -q '"id": "disk-a"' "$journal" && break
    sleep 0.2
  done
  dd if=/dev/zero of="$FULL/filler" bs=64k 2>/dev/null || true
  echo "the disk is full"
fi
exit $code
"""


def test_a_full_disk_under_out_is_a_clear_error_and_destroys_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):  # CI machines run as root: there, a skip would hide the test
            pytest.fail("mounting a small tmpfs needs root, and CI runs as root")
        pytest.skip("mounting a small tmpfs needs root")
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(full)], check=True)
    try:
        (tmp_path / "project").mkdir()
        token = f"tok-{secrets.token_hex(6)}"
        project = make_project(tmp_path / "project", axes={"disk": ["a", "b"]})
        edit_spec(
            project,
            lambda spec: spec["tests"].update(
                command=["sh", "-c", FILLER],
                env={**spec["tests"]["env"], "API_TOKEN": token, "FULL": str(full)},
            ),
        )
        done = project.run("run", "--out", str(full / "out"))
        output = done.stdout + done.stderr
        run_dir = (full / "out" / "runs" / "latest").resolve()
        journal = json.loads((run_dir / "run.json").read_text())  # whole, valid JSON
        tests_log = (run_dir / "disk-b" / "tests.log").read_text()
        junit = (run_dir / "disk-b" / "junit.xml").read_text()
        left = labelled_objects(journal["run_id"])
    finally:
        subprocess.run(["umount", str(full)], check=False)
    assert done.returncode == 3, output
    assert "Traceback" not in output
    assert f"stackmatrix: error: cannot write {run_dir}/" in done.stderr
    assert "No space left on device (the disk under " in done.stderr
    assert left == set()  # teardown happened
    # What was written before the disk filled is still there, whole.
    assert [(v["id"], v["status"]) for v in journal["variants"]] == [("disk-a", "passed")]
    assert 'name="test_reply"' in junit
    assert "the disk is full" in tests_log
    # The secret the tests printed is blanked in place: there was no room for a masked copy.
    assert token not in tests_log
    assert f"token {'*' * len(token)}" in tests_log


# -- the run directory removed or replaced under a run ------------------------------------------

RUN_DIR_OF_TESTS = '"$(dirname "$(dirname "$STACKMATRIX_JUNIT")")"'
VANDALS = {
    "deleted": f"rm -rf {RUN_DIR_OF_TESTS}",
    "a file": f'd={RUN_DIR_OF_TESTS}; rm -rf "$d"; echo not a folder > "$d"',
}


@pytest.mark.parametrize("what", VANDALS)
def test_a_run_directory_removed_under_a_run_is_no_traceback_and_teardown_happens(
    tmp_path: Path, what: str
) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    edit_spec(project, lambda spec: spec["tests"].update(command=["sh", "-c", VANDALS[what]]))

    done = project.run("run")

    output = done.stdout + done.stderr
    assert "Traceback" not in output
    (run_dir,) = (tmp_path / ".stackmatrix" / "runs").glob("2*")
    run_id = run_dir.name
    assert labelled_objects(run_id) == set()
    if what == "deleted":  # recreated by what is written next: the run is recorded
        assert done.returncode in (0, 1), output
        journal = json.loads((run_dir / "run.json").read_text())
        assert [v["id"] for v in journal["variants"]] == ["flavor-a"]
        assert journal["exit_code"] == done.returncode
    else:
        assert done.returncode == 3, output
        assert f"stackmatrix: error: cannot write .stackmatrix/runs/{run_id}/" in done.stderr
        assert "(its folder was removed or replaced while the run went on)" in done.stderr
        assert run_dir.read_text() == "not a folder\n"  # what the tests wrote is left alone


def test_a_latest_that_is_a_real_folder_is_a_clear_error_before_anything_starts(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a"]})
    latest = tmp_path / ".stackmatrix" / "runs" / "latest"
    (latest / "mine").mkdir(parents=True)

    done = project.run("run")

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        "stackmatrix: error: cannot use the output directory .stackmatrix: "
        ".stackmatrix/runs/latest is a folder, not the link to the latest run that "
        "stackmatrix keeps there; move it away or use another --out"
    )
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest"]  # no run dir made
    assert (latest / "mine").is_dir()
