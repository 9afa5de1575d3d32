"""One variant held up by hand: up, env, a real client, test (again, with arguments), exec,
ps, gc leaving it alone, down leaving nothing."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import time
from pathlib import Path

from python_on_whales import DockerClient

from tests.integration._matrix import make_project
from tests.integration.conftest import labelled_objects

MASK = "••••••"


def _exports(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return env


def _checks_running_in(folder: Path) -> list[int]:
    """Pids of echo_check.py processes whose working directory is *folder*."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            where = (proc / "cwd").resolve()
        except OSError:
            continue
        if b"echo_check.py" in command and where == folder.resolve():
            found.append(int(proc.name))
    return found


def _held_objects() -> set[str]:
    return labelled_objects("held")


def test_a_held_variant_is_reached_tested_and_removed(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    project = make_project(tmp_path, axes={"flavor": ["a", "b"]})

    up = project.run("up", "flavor-b")

    assert up.returncode == 0, up.stderr
    env = _exports(up.stdout)
    assert env["STACKMATRIX_VARIANT"] == "flavor-b"
    assert env["STACKMATRIX_PROJECT"] == "it-flavor-b-held"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["ECHO_ADDR"])
    assert env["ECHO_ADDR"] == env["STACKMATRIX_ECHO_7000"]
    assert "stackmatrix down flavor-b" in up.stderr
    env_file = tmp_path / ".stackmatrix" / "held" / "flavor-b" / "stack.env"
    assert f"ECHO_ADDR={env['ECHO_ADDR']}\n" in env_file.read_text()
    assert env_file.stat().st_mode & 0o077 == 0

    # `env` says the same, and a real client reaches the service with it.
    assert _exports(project.run("env", "flavor-b").stdout) == env
    host, port = env["ECHO_ADDR"].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"hello\n")
        assert conn.recv(100) == b"b:hello\n"

    # The tests run against the held stack: no bring-up, so much quicker than a run.
    started = time.monotonic()
    tested = project.run("test", "flavor-b", "--", "-k", "test_reply", "-x")
    test_seconds = time.monotonic() - started
    assert tested.returncode == 0, tested.stderr
    assert "flavor-b: passed, 2 passed, 0 failed" in tested.stderr
    log = (tmp_path / ".stackmatrix" / "held" / "flavor-b" / "tests.log").read_text()
    assert log.splitlines()[0] == "$ python3 echo_check.py -k test_reply -x"
    started = time.monotonic()
    assert project.run("run", "--only", "flavor-b").returncode == 0
    assert test_seconds < time.monotonic() - started

    inside = project.run("exec", "flavor-b", "echo", "--", "cat", "/etc/debian_version")
    assert inside.returncode == 0, inside.stderr
    assert re.match(r"\d+", inside.stdout)

    listed = project.run("ps")
    assert re.search(r"^flavor-b\s+it-flavor-b-held\s+echo \(running\)$", listed.stdout, re.M)

    # gc leaves a held stack alone; `down` removes it, and nothing is left.
    gc = project.run("gc")
    assert "stacks held by 'stackmatrix up'" in gc.stdout
    assert _held_objects()
    down = project.run("down", "flavor-b")
    assert down.returncode == 0, down.stderr
    assert "flavor-b is down" in down.stderr
    assert _held_objects() == set()
    assert not env_file.exists()
    again = project.run("env", "flavor-b")
    assert again.returncode == 2
    assert "is not up: run 'stackmatrix up flavor-b' first" in again.stderr


def test_test_and_exec_without_a_held_stack_say_so(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    project = make_project(tmp_path)

    for command in (["test", "flavor-a"], ["exec", "flavor-a", "echo", "--", "true"]):
        done = project.run(*command)
        assert done.returncode == 2, done.stderr
        assert "run 'stackmatrix up flavor-a' first" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_variant_that_never_gets_ready_is_not_held(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    project = make_project(
        tmp_path,
        extra_services={"broken": {"image": "debian:bookworm-slim", "command": ["false"]}},
        run={"up_timeout": "20s"},
    )

    up = project.run("up", "flavor-a")

    assert up.returncode == 3
    assert "flavor-a did not get ready" in up.stderr
    assert up.stdout == ""
    assert _held_objects() == set()


def test_gc_all_removes_held_stacks(tmp_path: Path, docker_engine: DockerClient) -> None:
    project = make_project(tmp_path)
    assert project.run("up", "flavor-a").returncode == 0
    assert _held_objects()

    gc = project.run("gc", "--all")

    assert gc.returncode == 0, gc.stderr
    assert "removed run held" in gc.stdout
    assert _held_objects() == set()


def test_ctrl_c_during_test_ends_the_test_command_too(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    project = make_project(tmp_path, check_mode="hang")
    assert project.run("up", "flavor-a").returncode == 0
    log = tmp_path / ".stackmatrix" / "held" / "flavor-a" / "tests.log"
    try:
        running = project.popen("test", "flavor-a")
        deadline = time.monotonic() + 60
        while not (log.is_file() and "hanging" in log.read_text()):
            assert time.monotonic() < deadline, "the test command never started"
            time.sleep(0.1)

        running.send_signal(signal.SIGINT)
        output, _ = running.communicate(timeout=20)

        assert running.returncode == 130, output
        assert "interrupted" in output
        time.sleep(0.5)
        assert _checks_running_in(tmp_path) == [], "the test command outlived stackmatrix test"
    finally:
        project.run("down", "flavor-a")
    assert _held_objects() == set()


def test_up_masks_secret_values_unless_asked(tmp_path: Path, docker_engine: DockerClient) -> None:
    token, phrase = f"tok-{time.time_ns()}", f"phrase-{time.time_ns()}"
    project = make_project(
        tmp_path,
        axes={"flavor": ["a"]},
        tests_env={
            "API_TOKEN": token,
            "SHOP_DSN": "postgresql://shop:" + phrase + "@${{ ports.echo.7000 }}/shop",
        },
    )
    try:
        up = project.run("up", "flavor-a")
        assert up.returncode == 0, up.stderr
        shown = _exports(up.stdout)
        # A terminal that ends up in a CI log shows no secret...
        assert shown["API_TOKEN"] == MASK
        assert shown["SHOP_DSN"].startswith(f"postgresql://shop:{MASK}@127.0.0.1:")
        assert token not in up.stdout + up.stderr
        assert phrase not in up.stdout + up.stderr
        assert "secret values masked above (API_TOKEN, SHOP_DSN): --show-secrets" in up.stderr
        # ...while `env` (made for eval) and the private env file have the real values.
        real = _exports(project.run("env", "flavor-a").stdout)
        assert real["API_TOKEN"] == token
        assert phrase in real["SHOP_DSN"]
        env_file = tmp_path / ".stackmatrix" / "held" / "flavor-a" / "stack.env"
        assert f"API_TOKEN={token}\n" in env_file.read_text()
        again = project.run("up", "flavor-a", "--show-secrets")
        assert again.returncode == 0, again.stderr
        assert _exports(again.stdout)["API_TOKEN"] == token
        assert "masked" not in again.stderr
    finally:
        down = project.run("down", "flavor-a")
    assert down.returncode == 0, down.stderr
    assert _held_objects() == set()


def test_up_refuses_a_port_the_variant_does_not_publish_before_anything_starts(
    tmp_path: Path, docker_engine: DockerClient
) -> None:
    project = make_project(tmp_path, tests_env={"DSN": "tcp://${{ ports.echo.9999 }}"})

    up = project.run("up", "flavor-a")

    assert up.returncode == 2, up.stderr
    assert "ports.echo.9999" in up.stderr
    assert "publishes no port 9999" in up.stderr
    assert "bringing" not in up.stderr  # refused before any stack came up
    assert "Traceback" not in up.stderr
    assert _held_objects() == set()
