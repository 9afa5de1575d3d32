"""Resource samples without an engine: reading the stats stream, and the plots kept per variant."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from stackmatrix.engine.stats import HostProcesses, _values, stats_frames
from stackmatrix.report.build import build_reports
from stackmatrix.report.plots import PLOT_NAME, keep_plot
from tests.unit.report.sample_run import build_sample_run

# What `docker stats --format '{{json .}}' A B` prints when its output is not a terminal: the
# screen is redrawn (cursor home, clear) with one line per container for every frame.
_ROW = (
    '{{"BlockIO":"0B / 4.1kB","CPUPerc":"{cpu}","Container":"{name}","ID":"{id}",'
    '"MemPerc":"0.21%","MemUsage":"{mem} / 23.54GiB","Name":"{name}","NetIO":"1.2kB / 648B",'
    '"PIDs":"2"}}'
)


def _stream(*frames: list[tuple[str, str, str, str]]) -> list[str]:
    lines = []
    for number, frame in enumerate(frames):
        for position, (cid, name, cpu, mem) in enumerate(frame):
            prefix = ("\x1b[J" if number else "") + "\x1b[H" if position == 0 else ""
            lines.append(prefix + _ROW.format(id=cid, name=name, cpu=cpu, mem=mem) + "\n")
        lines.append(" \x1b[K\n")
    return lines


def test_frames_group_one_row_per_container() -> None:
    first = [("aaaaaaaaaaaa", "db", "0.00%", "50MiB"), ("bbbbbbbbbbbb", "cache", "0.00%", "3MiB")]
    second = [("aaaaaaaaaaaa", "db", "12.50%", "51MiB"), ("bbbbbbbbbbbb", "cache", "1.5%", "3MiB")]
    frames = list(stats_frames(_stream(first, second)))
    assert [[row["Name"] for row in frame] for frame in frames] == [["db", "cache"]] * 2
    values = _values(frames[1][0])
    assert values is not None
    assert values["cpu_percent"] == 12.5
    assert values["memory_bytes"] == 51 * 2**20
    assert values["net_rx_bytes"] == 1200  # Docker prints "received / sent"
    assert values["net_tx_bytes"] == 648
    assert values["block_write_bytes"] == 4100


def test_a_frame_ends_as_soon_as_every_container_is_in_it() -> None:
    rows = [("aaaaaaaaaaaa", "db", "1%", "50MiB"), ("bbbbbbbbbbbb", "cache", "2%", "3MiB")]
    stream = iter(_stream(rows, rows))
    frames = stats_frames(stream, size=2)
    assert [row["Name"] for row in next(frames)] == ["db", "cache"]
    # The frame came out without reading into the next one (half a second later, live).
    assert len([line for line in stream if "{" in line]) == 2


def test_a_frame_missing_a_container_ends_where_a_container_repeats() -> None:
    short = [("aaaaaaaaaaaa", "db", "1%", "50MiB")]
    full = [("aaaaaaaaaaaa", "db", "2%", "51MiB"), ("bbbbbbbbbbbb", "cache", "3%", "3MiB")]
    frames = list(stats_frames(_stream(short, full), size=2))
    assert [[row["CPUPerc"] for row in frame] for frame in frames] == [["1%"], ["2%", "3%"]]


def test_a_stopped_container_row_has_no_values_and_garbage_is_skipped() -> None:
    stopped = (
        '{"BlockIO":"--","CPUPerc":"--","Container":"x","ID":"x","MemPerc":"--",'
        '"MemUsage":"-- / --","Name":"x","NetIO":"--","PIDs":"--"}'
    )
    frames = list(stats_frames(["\x1b[H" + stopped + "\n", "not json\n", "{broken\n"]))
    assert len(frames) == 1
    assert _values(frames[0][0]) is None


def _plots(html: str) -> dict[str, str]:
    found = re.findall(
        r'alt="CPU and memory per service of ([^"]+)" src="data:[^,]+,([^"]+)"', html
    )
    return {variant: base64.b64decode(data).decode() for variant, data in found}


def test_report_reuses_a_kept_plot_only_when_drawn_from_the_same_samples(tmp_path: Path) -> None:
    run = tmp_path / "run"
    build_sample_run(run)
    variant = "postgres-15_redis-on"
    stats_file = run / variant / "stats.json"
    kept = keep_plot(stats_file, variant)
    assert kept == run / variant / PLOT_NAME
    first_line, drawing = kept.read_text(encoding="utf-8").split("\n", 1)
    assert first_line.startswith("<!-- stackmatrix plot ")
    assert "<svg" in drawing
    # The report shows the kept file: mark it to tell it apart from a fresh drawing.
    kept.write_text(kept.read_text(encoding="utf-8").replace("Memory", "Kept memory"))
    plots = _plots(build_reports([run], run).html.read_text(encoding="utf-8"))
    assert len(plots) == 4
    assert "Kept memory" in plots[variant]
    # New samples make the kept plot stale: the report draws the plot again.
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    stats["samples"] = stats["samples"][:5]
    stats_file.write_text(json.dumps(stats), encoding="utf-8")
    plots = _plots(build_reports([run], run).html.read_text(encoding="utf-8"))
    assert "Kept memory" not in plots[variant]
    assert ">Memory<" in plots[variant]


def test_no_plot_is_kept_without_samples(tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps({"interval": 1, "samples": [], "peaks": {}}))
    assert keep_plot(stats_file, "v") is None
    assert not (tmp_path / PLOT_NAME).exists()


_BUSY = "x = bytearray(64 * 2**20)\nwhile True:\n    x[0] = 1\n"


def test_the_host_processes_of_a_variant_are_its_sessions_whatever_they_fork(
    tmp_path: Path,
) -> None:
    script = tmp_path / "busy.py"
    script.write_text(_BUSY, encoding="utf-8")
    ours = {**os.environ, "STACKMATRIX_PROJECT": "shop-pg-15-r1"}
    theirs = {**os.environ, "STACKMATRIX_PROJECT": "shop-pg-17-r1"}
    # As the test command starts: a session of its own; the memory is in a grandchild.
    test_command = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} {script}; true"], env=ours, start_new_session=True
    )
    other_variant = subprocess.Popen(
        [sys.executable, str(script)], env=theirs, start_new_session=True
    )
    host = HostProcesses("shop-pg-15-r1")
    try:
        readings = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            reading = host.reading()
            if reading is not None and reading["memory_bytes"] >= 64 * 2**20:
                readings.append(reading)
                if len(readings) == 3:
                    break
            time.sleep(0.5)
        assert len(readings) == 3
        # One 64 MiB process counted (not the other variant's), and it burns CPU.
        assert all(64 * 2**20 <= r["memory_bytes"] < 128 * 2**20 for r in readings)
        assert readings[-1]["cpu_percent"] > 5
        assert readings[-1]["memory_limit_bytes"] > readings[-1]["memory_bytes"]
    finally:
        for proc in (test_command, other_variant):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert host.reading() is None  # nothing of the variant runs any more
