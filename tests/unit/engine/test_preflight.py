"""The engine check asked before the spec is read: what a person reads when it fails.

A ``docker`` script first on PATH plays the client's side; whether a real engine answers is
``tests/integration/test_faults.py``'s business.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stackmatrix.engine import preflight
from stackmatrix.errors import EngineError


def _fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n{body}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "calls"


def test_an_engine_and_compose_that_answer_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_docker(tmp_path, monkeypatch, 'echo "27.5.1"')
    preflight.ensure_engine()
    asked = sorted(calls.read_text().splitlines())
    assert asked == ["compose version --short", "version --format {{.Server.Version}}"]


def test_an_unreachable_engine_says_what_docker_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = "Cannot connect to the Docker daemon at unix:///nowhere.sock."
    _fake_docker(tmp_path, monkeypatch, f'[ "$1" = version ] && {{ echo "{said}" >&2; exit 1; }}')
    with pytest.raises(EngineError) as caught:
        preflight.ensure_engine()
    assert str(caught.value) == f"the Docker engine is not reachable ({preflight.HINT}): {said}"


def test_a_missing_compose_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        'if [ "$1" = compose ]; then echo "docker: \'compose\' is not a docker command." >&2;'
        " exit 1; fi\necho 27.5.1"
    )
    _fake_docker(tmp_path, monkeypatch, body)
    with pytest.raises(EngineError, match=r"`docker compose` \(Compose v2\) is not available: "):
        preflight.ensure_engine()


def test_an_engine_that_never_answers_fails_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, monkeypatch, "exec sleep 30")
    monkeypatch.setattr(preflight, "ANSWER_TIMEOUT", 0.5)
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"did not answer within 0\.5 s"):
        preflight.ensure_engine()
    assert time.monotonic() - started < 5


def test_no_docker_client_at_all_is_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker nor setsid
    with pytest.raises(EngineError, match="the Docker engine is not reachable"):
        preflight.ensure_engine()


def test_closing_ends_questions_still_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, monkeypatch, "exec sleep 30")
    started = time.monotonic()
    with preflight.EngineCheck() as check:
        processes = list(check._processes.values())
    assert time.monotonic() - started < 5
    assert all(not isinstance(p, OSError) and p.returncode is not None for p in processes)
