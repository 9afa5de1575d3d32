"""Provenance under hostile output: secrets cut by a pattern, output that never ends, slow
commands, patterns over long logs, and the questions asked one phase at a time.

The same scripted engine and golden project as ``test_provenance.py``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import provenance
from stackmatrix.engine.docker import EngineTimeout
from stackmatrix.engine.provenance import images_only, parse_packages_counted, service_provenance
from stackmatrix.engine.stack import Stack
from stackmatrix.redact import MASK
from stackmatrix.results.journal import Provenance, ServiceProvenance
from tests.unit.engine.test_provenance import (
    PG_ID,
    Engine,
    _collect,
    _containers,
    _executable,
    _job,
    _no_threads_left,
    _stack,
    engine,
)

__all__ = ["_no_threads_left", "engine"]  # fixtures, used by name


# -- no piece of a secret -----------------------------------------------------------------------


def test_a_group_that_would_cut_a_secret_finds_only_the_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    engine.execs = {(cache, "cat", "/v"): "build tok-5e3c7a1f9b\n"}
    job = _job(
        tmp_path,
        "versions: {cache: {command: [cat, /v], match: 'build \\w+-(\\w+)'}}\n"
        "tests: {command: 'true'}\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=["tok-5e3c7a1f9b"])
    assert "5e3c7a1f9b" not in repr(found)
    assert found.services["cache"].version == ""


def test_one_line_of_a_secret_over_many_lines_is_not_read_from_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    secret = "-----KEY-----\nq8Zr2Lw0pXv\n-----END-----"  # noqa: S105 - what is masked
    engine.log = f"starting\n{secret}\nready\n"
    job = _job(tmp_path, "versions: {hog: {log: '^(q8\\S+)'}}\ntests: {command: 'true'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=[secret])
    assert "q8Zr2Lw0pXv" not in repr(found)


def test_a_secret_with_a_space_is_not_read_as_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    job = _job(
        tmp_path,
        "tests: {command: 'true', versions: [sh, -c, 'echo pw 12345; echo shop==1.0']}\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch), secrets=["pw 12345"])
    assert found.packages == {"shop": "1.0"}
    assert "12345" not in repr(found)


def test_a_server_version_holding_a_secret_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    db = _containers()["db"]
    engine.execs = {(db, "postgres", "--version"): "postgres (PostgreSQL) 17.2 tok-9a8b7c\n"}
    job = _job(tmp_path, "ready: {db: {postgres: 5432}}\ntests: {command: 'true'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch), {"db": {}}, secrets=["tok-9a8b7c"])
    assert found.services["db"].version == f"17.2 {MASK}"


# -- the tests' packages on the host ------------------------------------------------------------


def test_a_script_over_many_lines_prints_its_packages_and_nothing_of_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    script = "echo shop==1.0; echo warn==9 >&2; exit 0\nleaked==2"
    job = _job(tmp_path, f"tests: {{command: 'true', versions: [sh, -c, {json.dumps(script)}]}}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert found.packages == {"shop": "1.0"}  # not the script's own lines, not stderr


def test_output_that_never_ends_is_cut_at_its_cap_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    job = _job(tmp_path, "tests: {command: 'true', versions: [yes, 'shop==1.0']}\n")
    started = time.monotonic()
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert time.monotonic() - started < provenance.PACKAGES_TIMEOUT / 3
    assert found.packages == {"shop": "1.0"}
    assert list(job.directory.iterdir()) == []


def test_packages_past_the_cap_or_in_cut_output_are_counted_as_left_out() -> None:
    many = "".join(f"p{i}=={i}\n" for i in range(provenance.MAX_PACKAGES + 5))
    assert parse_packages_counted(many)[1] == 5
    found, cut = parse_packages_counted("a==1\nb==2\nc==", complete=False)
    assert (found, cut) == ({"a": "1", "b": "2"}, 1)  # the cut last line is not read
    assert parse_packages_counted("a==1\n") == ({"a": "1"}, 0)


# -- slow commands and logs ---------------------------------------------------------------------


def _answering_then(engine: Engine, text: str, failure: Exception) -> Callable[..., str]:
    """``run_engine`` that records, prints *text* to the sink, then raises *failure*."""

    def answer(command: Sequence[str], *, sink: Callable[[bytes], None] | None = None,
               **_kw: Any) -> str:  # fmt: skip
        engine.calls.append([str(c) for c in command])
        if "inspect" in command:
            return ""
        if sink is not None:
            sink(text.encode())
        raise failure

    return answer


@pytest.mark.parametrize(
    "failure",
    [EngineTimeout("no answer", what="`docker compose logs`"),
     DockerException(["docker"], provenance.KILLED, b"", b"")],
    ids=["client-deadline", "killed-in-the-container"],
)  # fmt: skip
def test_what_came_before_a_deadline_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, failure: Exception
) -> None:
    stack = _stack(tmp_path, monkeypatch)
    monkeypatch.setattr(provenance, "run_engine", _answering_then(engine, "v 3.1\n", failure))
    slow_log = EngineTimeout("no answer", what="`docker compose logs`")
    logs = _answering_then(engine, "started 9.4\n", slow_log)
    monkeypatch.setattr("stackmatrix.engine.stack.run_engine", logs)
    job = _job(
        tmp_path,
        "versions: {cache: {command: [cat, /v], match: 'v (\\S+)'}, hog: {log: 'started (\\S+)'}}\n"
        "tests: {command: 'true'}\n",
    )
    found = _collect(job, stack)
    assert (found.services["cache"].version, found.services["hog"].version) == ("3.1", "9.4")


def test_a_command_in_a_container_runs_under_timeout_or_bare_without_a_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    engine.execs = {(cache, "cat", "/v"): "2.0\n"}
    job = _job(tmp_path, "versions: {cache: {command: [cat, /v]}}\ntests: {command: 'true'}\n")
    assert _collect(job, _stack(tmp_path, monkeypatch)).services["cache"].version == "2.0"
    assert engine.deadlines == [5]

    engine.no_shell, engine.calls = True, []
    assert _collect(job, _stack(tmp_path, monkeypatch)).services["cache"].version == "2.0"
    execs = engine.execs_of(cache)
    assert ["sh" in c for c in execs] == [True, False]  # then bare
    assert execs[-1][-2:] == ["cat", "/v"]


def test_in_a_service_the_tests_variables_go_in_by_file_not_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    cache = _containers()["cache"]
    engine.execs = {(cache, *provenance.PYTHON_VERSION): "3.12.8\n", (cache, "pip", "freeze"): ""}
    job = _job(
        tmp_path,
        "tests:\n  command: 'true'\n  where: cache\n  versions: 'pip freeze'\n"
        "  env: {VIRTUAL_ENV: /venv, PATH: '/venv/bin:/usr/bin', API_TOKEN: tok-77c1d2}\n",
    )
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert found.python == "3.12.8"
    assert len(engine.env_files) == 2
    assert all("VIRTUAL_ENV=/venv\n" in f and "PATH=/venv/bin:/usr/bin\n" in f
               for f in engine.env_files)  # fmt: skip
    assert not any("tok-77c1d2" in part for call in engine.calls for part in call)
    assert list(job.directory.iterdir()) == []  # the files went


# -- patterns -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("x\n" * (provenance.LOG_LINES - 1) + "v 1.0\n", "v (\\S+)", "1.0"),
        ("x\n" * provenance.LOG_LINES + "v 1.0\n", "v (\\S+)", ""),
        ("x" * (provenance.LINE_CAP + 10) + " v 1.0\n", "v (\\S+)", ""),
        ("redis 7.4\n", "(postgres \\S+)|redis (\\S+)", "7.4"),
        ("redis\n", "redis( \\S+)?", ""),
    ],
    ids=[
        "last-line-read",
        "past-the-lines",
        "past-the-line-cap",
        "second-alternative",
        "no-group-took-part",
    ],
)
def test_a_log_pattern_searches_a_bounded_head_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine, case: tuple[str, str, str]
) -> None:
    log, pattern, version = case
    engine.log = log
    job = _job(tmp_path, f"versions: {{hog: {{log: '{pattern}'}}}}\ntests: {{command: 'true'}}\n")
    assert _collect(job, _stack(tmp_path, monkeypatch)).services["hog"].version == version


def test_the_command_fallback_asks_a_server_whose_port_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    db = _containers()["db"]
    engine.execs = {(db, "postgres", "--version"): "postgres (PostgreSQL) 17.2\n"}
    job = _job(tmp_path, "ready: {db: {postgres: 5432}}\ntests: {command: 'true'}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch), {"db": {}})
    assert (found.services["db"].version, found.services["db"].version_source) == (
        "17.2",
        "command",
    )


# -- one phase at a time ------------------------------------------------------------------------


def test_after_a_failed_up_the_rendered_compose_names_each_image(
    tmp_path: Path, engine: Engine
) -> None:
    compose = {
        "services": {
            "db": {"image": "postgres:17"},
            "app": {"build": "."},
            "debug": {"image": "busybox", "profiles": ["debug"]},
        }
    }
    stack = Stack(
        project="shop-a",
        compose_file=tmp_path / "not-read.yaml",
        project_directory=tmp_path,
        services=["db", "app", "debug"],
        cancel=threading.Event(),
    )
    assert images_only(stack, compose, []) == Provenance(
        services={"db": ServiceProvenance(image="postgres:17")}
    )
    assert engine.calls == []  # no container yet: nothing to inspect
    assert images_only(stack, {"services": ["db"]}, []) == Provenance()  # never raises


def test_images_only_asks_no_server_and_keeps_the_containers_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    found = images_only(_stack(tmp_path, monkeypatch), {}, [])
    assert found.services["db"] == ServiceProvenance("postgres:15", PG_ID)
    assert [c for c in engine.calls if "exec" in c or "logs" in c] == []


def test_the_test_environment_is_added_to_the_services_asked_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    _executable(bin_dir / "python3", "#!/bin/sh\necho 3.99.1\n")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}
    job = _job(tmp_path, "tests: {command: 'true'}\n", env=env)
    job.directory.mkdir(parents=True)
    stack = _stack(tmp_path, monkeypatch)
    services = service_provenance(job, stack, {}, {}, [])
    assert services.python == ""  # the tests' Python is asked after the setup steps
    found = provenance.test_environment(job, stack, {}, [], services)
    assert (found.services, found.python) == (services.services, "3.99.1")


def test_the_packages_left_out_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    script = f"for i in $(seq 1 {provenance.MAX_PACKAGES + 5}); do echo p$i==1; done"
    job = _job(tmp_path, f"tests: {{command: 'true', versions: [sh, -c, {json.dumps(script)}]}}\n")
    found = _collect(job, _stack(tmp_path, monkeypatch))
    assert (len(found.packages), found.packages_cut) == (provenance.MAX_PACKAGES, 5)
    endless = _job(tmp_path, "tests: {command: 'true', versions: [yes, 'shop==1.0']}\n")
    assert _collect(endless, _stack(tmp_path, monkeypatch)).packages_cut >= 1
