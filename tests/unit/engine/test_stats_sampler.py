"""The background sampler of a stack's resources, fed by a stand-in for ``docker stats``.

The stand-in is a small script that prints what the streaming ``docker container stats
--format '{{json .}}' ID...`` prints: a redrawn screen, one JSON row per container it was asked
for, a frame every 0.1 s, memory growing frame by frame. The sampler is the real one.
"""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from stackmatrix.engine import stats
from stackmatrix.engine.docker import docker_client
from stackmatrix.engine.stats import StatsSampler

DB = "5c3d1b2a9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b"
CACHE = "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8"

_DOCKER_STATS = textwrap.dedent("""\
    import json, sys, time
    ids = sys.argv[sys.argv.index("{{json .}}") + 1:]
    with open(sys.argv[1], "a") as calls:
        calls.write(" ".join(i[:12] for i in ids) + "\\n")
    for n in range(600):
        time.sleep(0.1)
        for position, cid in enumerate(ids):
            prefix = ("\\x1b[J" if n else "") + "\\x1b[H" if position == 0 else ""
            row = {"BlockIO": "0B / 4.1kB", "CPUPerc": f"{n}.00%", "Container": cid[:12],
                   "ID": cid[:12], "MemPerc": "0.21%", "MemUsage": f"{10 + n}MiB / 23.54GiB",
                   "Name": "c" + cid[:4], "NetIO": "1.2kB / 648B", "PIDs": "2"}
            print(prefix + json.dumps(row), flush=True)
        print(" \\x1b[K", flush=True)
    """)


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand in for `docker stats`; returns the file where each start writes its ids."""
    script = tmp_path / "docker_stats.py"
    script.write_text(_DOCKER_STATS, encoding="utf-8")
    log = tmp_path / "calls.txt"
    log.touch()

    def command(_client: object, *args: str) -> list[str]:
        return [sys.executable, str(script), str(log), *args]

    monkeypatch.setattr(stats, "docker_command", command)
    return log


def _sampler(containers: Callable[[], Mapping[str, str]], interval: float) -> StatsSampler:
    return StatsSampler(docker_client(), containers, interval=interval)


def _wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_samples_cover_every_container_once_per_interval(calls: Path, tmp_path: Path) -> None:
    sampler = _sampler(lambda: {DB: "db", CACHE: "cache"}, interval=0.2)
    with sampler:
        _wait_for(lambda: len(sampler.samples) >= 3)
    samples = sampler.samples
    assert all(set(s["containers"]) == {"db", "cache"} for s in samples)
    times = [s["t"] for s in samples]
    # The stream sends a frame every 0.1 s; one in each 0.2 s interval is kept.
    assert all(later - earlier >= 0.17 for earlier, later in itertools.pairwise(times))
    assert calls.read_text().splitlines() == [f"{DB[:12]} {CACHE[:12]}"]  # one stream only

    db = [s["containers"]["db"]["memory_bytes"] for s in samples]
    assert db == sorted(db)
    assert sampler.peaks()["db"]["memory_bytes"] == db[-1]
    cache = [s["containers"]["cache"]["memory_bytes"] for s in samples]
    assert sampler.peak_memory() == max(a + b for a, b in zip(db, cache, strict=True))

    written = json.loads(sampler.write(tmp_path / "stats.json").read_text(encoding="utf-8"))
    assert written["interval"] == 0.2
    assert written["samples"] == samples
    assert written["peak_total_memory_bytes"] == sampler.peak_memory()
    assert set(written["peaks"]) == {"db", "cache"}


def test_a_container_that_starts_later_restarts_the_stream_with_it(calls: Path) -> None:
    running = {DB: "db"}
    sampler = _sampler(lambda: dict(running), interval=0.1)
    with sampler:
        _wait_for(lambda: len(sampler.samples) >= 1)
        running[CACHE] = "cache"
        _wait_for(lambda: "cache" in sampler.samples[-1]["containers"])
    assert calls.read_text().splitlines() == [DB[:12], f"{DB[:12]} {CACHE[:12]}"]
    assert set(sampler.samples[0]["containers"]) == {"db"}


def test_without_running_containers_nothing_is_started(calls: Path) -> None:
    sampler = _sampler(dict, interval=0.1)
    began = time.monotonic()
    with sampler:
        threading.Event().wait(0.2)
    assert time.monotonic() - began < 2
    assert sampler.samples == []
    assert sampler.peak_memory() is None
    assert calls.read_text() == ""


def test_a_brief_stack_still_gets_its_first_sample(calls: Path) -> None:
    # Left at once: the first frame is 0.1 s away, and the sampler waits for it.
    sampler = _sampler(lambda: {DB: "db"}, interval=1.0)
    with sampler:
        pass
    assert len(sampler.samples) == 1
    assert sampler.samples[0]["containers"]["db"]["memory_bytes"] == 10 * 2**20


def test_samples_after_write_are_dropped(calls: Path, tmp_path: Path) -> None:
    sampler = _sampler(lambda: {DB: "db"}, interval=0.1)
    with sampler:
        _wait_for(lambda: len(sampler.samples) >= 1)
        sampler.write(tmp_path / "stats.json")
        kept = len(sampler.samples)
        threading.Event().wait(0.35)
    assert len(sampler.samples) == kept


def test_the_samples_times_are_anchored_to_the_clock(calls: Path, tmp_path: Path) -> None:
    before = time.time()
    sampler = _sampler(lambda: {DB: "db"}, interval=0.1)
    sampler.start()
    _wait_for(lambda: len(sampler.samples) >= 2)
    sampler.stop()
    after = time.time()
    written = json.loads(sampler.write(tmp_path / "stats.json").read_text(encoding="utf-8"))
    # `t` counts from `started_at`, a Unix time: a sample can be placed among run.json's phases.
    assert before <= written["started_at"] <= after
    assert all(before <= written["started_at"] + s["t"] <= after for s in written["samples"])


def test_start_and_stop_happen_once_and_a_stopped_sampler_stays_stopped(calls: Path) -> None:
    never = _sampler(lambda: {DB: "db"}, interval=0.1)
    never.stop()  # never started: nothing to end
    never.start()
    threading.Event().wait(0.3)
    assert never.samples == []
    assert never.started_at is None

    sampler = _sampler(lambda: {DB: "db"}, interval=0.1)
    sampler.start()
    sampler.start()
    _wait_for(lambda: len(sampler.samples) >= 1)
    sampler.stop()
    sampler.stop()
    kept = len(sampler.samples)
    threading.Event().wait(0.3)
    assert len(sampler.samples) == kept  # the stream is gone: nothing more comes in
    assert calls.read_text().splitlines() == [DB[:12]]  # one stream, started once
