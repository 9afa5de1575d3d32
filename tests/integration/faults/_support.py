"""Drive a real `stackmatrix run` under faults: watch its output, signal it, inspect leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.integration._matrix import Project

FAULTS = Path(__file__).parent
BOUND = 20.0
"""Seconds a run may take to exit after it was told to stop."""


def edit_spec(project: Project, change: Callable[[dict[str, Any]], None]) -> None:
    """Load the project's matrix.yaml, let *change* edit it, write it back."""
    spec: dict[str, Any] = yaml.safe_load(project.matrix.read_text())
    change(spec)
    project.matrix.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))


def add_services(
    project: Project, services: dict[str, Any], when: dict[str, Any] | None = None
) -> None:
    """An overlay adding *services* to the variants matching *when* (all by default)."""
    edit_spec(
        project,
        lambda spec: spec["overlays"].append(
            {"when": when or {}, "compose": {"services": services}}
        ),
    )


def copy_fixture(name: str, project: Project) -> None:
    """Copy a file of tests/integration/faults/ next to the project's matrix.yaml."""
    shutil.copy(FAULTS / name, project.root / name)


def by_id(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The journal's variants by id."""
    return {v["id"]: v for v in journal["variants"]}


class Watched:
    """`stackmatrix ARGS` in its own process group, its output read line by line as it comes.

    A process group of its own lets a test signal the group, as a terminal's Ctrl-C does.
    """

    def __init__(self, project: Project, *args: str, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackmatrix", *args],
            cwd=project.root,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.signalled_at: float | None = None
        self.signalled_wall: float | None = None  # epoch seconds, to compare with run.json

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, *patterns: str, timeout: float = 90) -> None:
        """Block until every regex in *patterns* has matched a line (in any order)."""
        wanted = [re.compile(p) for p in patterns]
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if all(any(w.search(line) for line in self.lines) for w in wanted):
                    return
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    self.abandon()
                    raise AssertionError(f"never saw {patterns}; output:\n{''.join(self.lines)}")
                self._changed.wait(min(left, 0.5))

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """Send *sig* to the process (or its whole group); remembers when the first was sent."""
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            self.signalled_wall = time.time()
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def finish(self, timeout: float = 120) -> tuple[int, float]:
        """Wait for the exit; the exit code and seconds since the first signal (0 if none)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.abandon()
            raise AssertionError(f"no exit within {timeout} s; output:\n{self.output}") from None
        self._close()
        since = 0.0 if self.signalled_at is None else time.monotonic() - self.signalled_at
        return code, since

    def kill(self) -> None:
        """SIGKILL the process group (only stackmatrix's own; docker runs in other sessions)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def abandon(self) -> None:
        """The test failed: kill the run and remove its stacks, so the failure leaves nothing."""
        self.kill()
        for run_dir in (self.project.root / ".stackmatrix" / "runs").glob("2*"):
            force_remove(run_dir.name)

    def _close(self) -> None:
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def gc(
    project: Project, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`stackmatrix gc ARGS` in the project's folder."""
    return project.run("gc", *args, env=env)


def pid_alive(pid: int) -> bool:
    """Whether *pid* is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def proc_files(name: str) -> Iterator[tuple[int, bytes]]:
    """``(pid, bytes of /proc/PID/NAME)`` of every process on this host that can be read."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / name).read_bytes()
            except OSError:
                continue


def pids_with_env(name: str, value: str) -> list[int]:
    """Processes whose environment has NAME=VALUE (the test commands of one run)."""
    needle = f"{name}={value}".encode()
    return [pid for pid, environ in proc_files("environ") if needle in environ.split(b"\0")]


def command_lines() -> Iterator[bytes]:
    """The command line of every process on this host."""
    for _pid, cmdline in proc_files("cmdline"):
        yield cmdline


def files_containing(root: Path, needle: str) -> list[str]:
    """Files under *root* whose bytes contain *needle* (paths relative to *root*)."""
    raw = needle.encode()
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and raw in path.read_bytes()
    )


def read_journal(run_dir: Path) -> dict[str, Any]:
    """run.json of a run directory."""
    data: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    return data


def remove_images(tags: list[str]) -> None:
    """Remove images built by a test (images carry no run label: compose builds them)."""
    if tags:
        subprocess.run(["docker", "image", "rm", "-f", *tags], capture_output=True, check=False)


def force_remove(run_id: str) -> None:
    """Remove what a run left, with the docker CLI alone (when the tool under test failed to)."""
    label = f"label=io.stackmatrix.run={run_id}"
    for kind, listing in (("container", ["ls", "-aq"]), ("network", ["ls", "-q"]),
                          ("volume", ["ls", "-q"])):  # fmt: skip
        found = subprocess.run(
            ["docker", kind, *listing, "--filter", label],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if found:
            remove = ["rm", "-f"] if kind != "network" else ["rm"]
            subprocess.run(["docker", kind, *remove, *found], capture_output=True, check=False)
