"""Resource statistics of a stack's containers, sampled in the background while tests run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from stackmatrix._results import write_json_atomic

FIELDS = (
    "cpu_percent",
    "memory_bytes",
    "memory_limit_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "block_read_bytes",
    "block_write_bytes",
)


class StatsSampler:
    """Samples every container of a stack with one ``docker stats`` call per sample."""

    def __init__(
        self,
        client: DockerClient,
        containers: Callable[[], Mapping[str, str]],  # container id -> service name
        *,
        interval: float,
    ) -> None:
        self._client = client
        self._containers = containers
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.errors = 0

    def __enter__(self) -> StatsSampler:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="stackmatrix-stats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        # `docker stats --no-stream` takes 1-2 s; once a sample exists, an in-flight one is
        # dropped rather than waited for (the thread ends on its own, ignoring its result).
        if self._thread is not None and not self.samples:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.sample_once()
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))

    def sample_once(self) -> None:
        """Take one sample of all containers (one engine call)."""
        by_id = dict(self._containers())
        if not by_id:
            return
        try:
            stats = self._client.stats(containers=list(by_id))
        except (DockerException, ValueError, IndexError):
            self.errors += 1  # a container went away mid-sample; the next one will do
            return
        if self._stop.is_set() and self.samples:
            return
        at = round(time.monotonic() - self._started, 3)
        row: dict[str, dict[str, float | int]] = {}
        for stat in stats:
            service = next(
                (svc for cid, svc in by_id.items() if stat.container_id.startswith(cid[:12])),
                stat.container_name,
            )
            row[service] = {
                "cpu_percent": stat.cpu_percentage,
                "memory_bytes": int(stat.memory_used),
                "memory_limit_bytes": int(stat.memory_limit),
                "net_rx_bytes": int(stat.net_download),
                "net_tx_bytes": int(stat.net_upload),
                "block_read_bytes": int(stat.block_read),
                "block_write_bytes": int(stat.block_write),
            }
        with self._lock:
            self.samples.append({"t": at, "containers": row})

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
        """Peak of the summed memory of all containers at one instant, in bytes."""
        totals = [
            sum(int(v["memory_bytes"]) for v in s["containers"].values()) for s in self.samples
        ]
        return max(totals) if totals else None

    def write(self, path: Path) -> Path:
        """Write ``stats.json``: samples and peaks."""
        with self._lock:
            self.samples = list(self.samples)  # a snapshot: a late sample cannot slip in
        return write_json_atomic(
            path,
            {
                "interval": self._interval,
                "samples": self.samples,
                "peaks": self.peaks(),
                "peak_total_memory_bytes": self.peak_memory(),
            },
        )
