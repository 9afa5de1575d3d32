"""Resource statistics of a stack's containers, sampled in the background over its life.

Sampling starts before the stack is brought up (it waits for the first running container) and
ends after its logs are collected, just before it is torn down: bring-up, readiness, setup,
tests and collection are all covered.

One streaming ``docker stats`` process per stack covers all its containers for the whole span:
the engine sends a frame every 0.5 s, so there is no process spawn per sample, and stopping
never waits for a sample in flight (``docker stats --no-stream`` needs 1-2.5 s per call).
python-on-whales has no streaming ``stats``, and its streaming helper cannot stop the process
it starts, so the stream is started here, from the client's own docker command, and killed
when sampling ends; its rows are parsed by python-on-whales' ``ContainerStats``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from python_on_whales import DockerClient
from python_on_whales.components.container.cli_wrapper import ContainerStats

from stackmatrix.engine.docker import close_stream, docker_command, open_stream
from stackmatrix.results.files import write_json_atomic
from stackmatrix.results.stats import HOST_SERVICE

LOG = logging.getLogger("stackmatrix")
WAIT_FOR_CONTAINERS = 0.05  # how often to look for the stack's running containers
# At the end, with no sample yet, wait for the first one until this long after the stream
# started (the engine's first reading of a container takes about a second).
FIRST_SAMPLE_GRACE = 2.5
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PROC = Path("/proc")


class HostProcesses:
    """CPU, memory and block I/O of the processes a variant runs on the host.

    The test command (and every setup step) starts in a session of its own, with
    ``STACKMATRIX_PROJECT=<project>`` in its environment: the sessions whose leader has it are
    the variant's, and every process in them is counted, whatever it forked. Read from
    ``/proc``; elsewhere there is nothing to read and no sample.
    """

    def __init__(self, project: str, *, proc: Path = _PROC) -> None:
        self._marker = f"STACKMATRIX_PROJECT={project}".encode()
        self._proc = proc
        self._leaders: dict[tuple[int, str], bool] = {}  # (pid, start time) -> ours
        self._previous: tuple[float, int] | None = None  # (monotonic time, CPU ticks)
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def reading(self) -> dict[str, float | int] | None:
        """The processes' numbers now; None while none runs."""
        stats = [stat for stat in map(self._stat, self._pids()) if stat is not None]
        ours = {
            stat["session"]
            for stat in stats
            if stat["pid"] == stat["session"] and self._is_ours(stat["pid"], stat["start"])
        }
        members = [stat for stat in stats if stat["session"] in ours]
        if not members:
            self._previous = None
            return None
        # The leaders' children's times (reaped ones) are in their cutime and cstime.
        ticks = sum(stat["cpu"] + (stat["children"] if stat["pid"] in ours else 0)
                    for stat in members)  # fmt: skip
        now = time.monotonic()
        cpu = 0.0
        if self._previous is not None and now > self._previous[0]:
            spent = max(0, ticks - self._previous[1]) / self._ticks
            cpu = round(100.0 * spent / (now - self._previous[0]), 2)
        self._previous = (now, ticks)
        read, written = 0, 0
        for stat in members:
            io = self._io(stat["pid"])
            read += io.get("read_bytes", 0)
            written += io.get("write_bytes", 0)
        return {
            "cpu_percent": cpu,
            "memory_bytes": sum(stat["rss"] for stat in members) * self._page,
            "memory_limit_bytes": self._memory_total(),
            "net_rx_bytes": 0,
            "net_tx_bytes": 0,
            "block_read_bytes": read,
            "block_write_bytes": written,
        }

    def _pids(self) -> list[int]:
        try:
            return [int(path.name) for path in self._proc.iterdir() if path.name.isdigit()]
        except OSError:
            return []

    def _stat(self, pid: int) -> dict[str, Any] | None:
        try:
            text = (self._proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None  # gone already
        fields = text[text.rfind(")") + 2 :].split()
        try:  # fields from the state on (proc(5) numbers them from 3)
            return {
                "pid": pid,
                "session": int(fields[3]),
                "cpu": int(fields[11]) + int(fields[12]),
                "children": int(fields[13]) + int(fields[14]),
                "start": fields[19],
                "rss": int(fields[21]),
            }
        except (IndexError, ValueError):
            return None

    def _is_ours(self, pid: int, start: str) -> bool:
        key = (pid, start)
        if key not in self._leaders:
            try:
                environ = (self._proc / str(pid) / "environ").read_bytes()
            except OSError:
                environ = b""
            self._leaders[key] = self._marker in environ.split(b"\0")
        return self._leaders[key]

    def _io(self, pid: int) -> dict[str, int]:
        try:
            text = (self._proc / str(pid) / "io").read_text(encoding="utf-8")
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if value.strip().isdigit():
                out[key.strip()] = int(value)
        return out

    def _memory_total(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            for line in (self._proc / "meminfo").read_text(encoding="utf-8").splitlines():
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
        return 0


def stats_frames(lines: Iterable[str], size: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Group ``docker stats --format '{{json .}}'`` output into frames, one row per container.

    The streaming CLI redraws the screen: each frame starts with a cursor-home escape, and
    every container appears once per frame. A frame ends once it has *size* rows (the number
    of containers asked for), or where a container shows up again.
    """
    frame: dict[str, dict[str, Any]] = {}
    for raw in lines:
        text = _ANSI.sub("", raw).strip()
        if not text.startswith("{"):
            continue
        try:
            row = json.loads(text)
        except ValueError:
            continue
        key = str(row.get("ID") or row.get("Container") or "")
        if key in frame:
            yield list(frame.values())
            frame = {}
        frame[key] = row
        if size and len(frame) >= size:
            yield list(frame.values())
            frame = {}
    if frame:
        yield list(frame.values())


def _values(row: Mapping[str, Any]) -> dict[str, float | int] | None:
    """One container's numbers from a stats row; None for a row without any (``--``)."""
    try:
        stat = ContainerStats(dict(row))
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
        return None  # a stopped container shows "--" in every column
    return {
        "cpu_percent": stat.cpu_percentage,
        "memory_bytes": int(stat.memory_used),
        "memory_limit_bytes": int(stat.memory_limit),
        # Docker prints NetIO as "received / sent"; python-on-whales calls the first part
        # net_upload and the second net_download, so the names are crossed here on purpose.
        "net_rx_bytes": int(stat.net_upload),
        "net_tx_bytes": int(stat.net_download),
        "block_read_bytes": int(stat.block_read),
        "block_write_bytes": int(stat.block_write),
    }


class StatsSampler:
    """Keeps one sample per *interval* of every running container of a stack."""

    def __init__(
        self,
        client: DockerClient,
        containers: Callable[[], Mapping[str, str]],  # running container id -> service name
        *,
        interval: float,
        host: HostProcesses | None = None,
    ) -> None:
        self._docker = docker_command(client)
        self._host = host
        self._containers = containers
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None
        self._process_lock = threading.Lock()
        self._first = threading.Event()
        self._streaming_since: float | None = None
        self._final = False
        self._started = 0.0
        self.started_at: float | None = None  # wall-clock time of the samples' ``t`` = 0
        self._last = float("-inf")
        self.samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> StatsSampler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Begin sampling in the background (once; a stopped sampler stays stopped)."""
        if self._thread is not None or self._stop.is_set():
            return
        self._started = time.monotonic()
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._loop, name="stackmatrix-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End sampling and its ``docker stats`` process; again, or never started: nothing."""
        if self._thread is None or self._stop.is_set():
            self._stop.set()
            return
        # A stack that was up briefly still gets a sample if one is about to arrive.
        if not self.samples and self._containers():
            since = self._streaming_since or time.monotonic()  # or it is about to start
            self._first.wait(max(0.0, since + FIRST_SAMPLE_GRACE - time.monotonic()))
        self._stop.set()
        with self._process_lock:
            if self._process is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()  # the thread sees its output end, reaps it and leaves
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        """Stream the current set of containers; restart the stream when that set changes."""
        try:
            while not self._stop.is_set():
                by_id = dict(self._containers())
                if not by_id:
                    self._stop.wait(WAIT_FOR_CONTAINERS)
                    continue
                stream = self._start_process(list(by_id))
                if stream is None:
                    return
                changed = self._follow(stream, by_id)
                self._end_process()
                if not changed:  # the stream ended by itself (containers gone, engine away)
                    self._stop.wait(self._interval)
        except Exception as error:  # samples are a bonus: never let them break a run
            LOG.warning("resource sampling stopped: %s", error)
        finally:
            self._end_process()

    def _start_process(self, ids: list[str]) -> IO[str] | None:
        command = [*self._docker, "container", "stats", "--format", "{{json .}}", *ids]
        with self._process_lock:
            if self._stop.is_set():
                return None
            self._process = open_stream(command)
            if self._process is None:
                return None
            if self._streaming_since is None:
                self._streaming_since = time.monotonic()
            return self._process.stdout

    def _end_process(self) -> None:
        """Stop and reap the stream process (only ever called by the sampling thread)."""
        with self._process_lock:
            process, self._process = self._process, None
        if process is not None:
            close_stream(process)

    def _follow(self, stream: IO[str], by_id: Mapping[str, str]) -> bool:
        """Record frames until the stream ends or the stop; True if the containers changed."""
        for frame in stats_frames(stream, size=len(by_id)):
            if self._stop.is_set():
                return False
            self._record(frame, by_id)
            current = self._containers()
            if current and set(current) != set(by_id):
                return True
        return False

    def _record(self, frame: list[dict[str, Any]], by_id: Mapping[str, str]) -> None:
        now = time.monotonic()
        if now - self._last < self._interval * 0.9:
            return  # the engine streams every 0.5 s; keep one frame per interval
        row: dict[str, dict[str, float | int]] = {}
        for stats in frame:
            values = _values(stats)
            if values is None:
                continue
            short = str(stats.get("ID", ""))[:12]
            service = next(
                (svc for cid, svc in by_id.items() if short and cid.startswith(short)),
                str(stats.get("Name", short)),
            )
            row[service] = values
        if not row:
            return
        if self._host is not None:
            host = self._host.reading()
            if host is not None:
                row[HOST_SERVICE] = host
        self._last = now
        with self._lock:
            if self._final:
                return
            self.samples.append({"t": round(now - self._started, 3), "containers": row})
        self._first.set()

    def peaks(self) -> dict[str, dict[str, float | int]]:
        """The highest value of every field per service."""
        peaks: dict[str, dict[str, float | int]] = {}
        for sample in self.samples:
            for service, values in sample["containers"].items():
                current = peaks.setdefault(service, {})
                for key, value in values.items():
                    current[key] = max(current.get(key, value), value)
        return peaks

    def peak_memory(self) -> int | None:
        """Peak of the summed memory of all containers at one instant, in bytes (the stack's:
        the host's test processes are beside it, not in it)."""
        totals = [
            sum(int(v["memory_bytes"]) for k, v in s["containers"].items() if k != HOST_SERVICE)
            for s in self.samples
        ]
        return max(totals) if totals else None

    def write(self, path: Path) -> Path:
        """Write ``stats.json``: samples (``t`` in seconds after ``started_at``, a Unix time)
        and peaks."""
        with self._lock:
            self._final = True  # a late sample (a thread that did not stop in time) is dropped
        return write_json_atomic(
            path,
            {
                "interval": self._interval,
                "started_at": self.started_at,
                "samples": self.samples,
                "peaks": self.peaks(),
                "peak_total_memory_bytes": self.peak_memory(),
            },
        )
