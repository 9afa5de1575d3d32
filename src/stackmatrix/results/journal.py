"""Results as data: the status of a variant, its record, and the run journal (run.json)."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_NAME = "run.json"
JOURNAL_FORMAT = 1


class Status(enum.StrEnum):
    """Final status of one variant."""

    PASSED = "passed"
    FAILED = "failed"  # the test suite ran and reported failures
    ERROR = "error"  # the stack or the test command could not do its job
    EXPERIMENTAL_FAILED = "experimental-failed"  # failed or errored, but allowed to
    CANCELLED = "cancelled"  # never finished: fail-fast or never started
    INTERRUPTED = "interrupted"  # stopped by SIGINT/SIGTERM

    @property
    def ok(self) -> bool:
        """Whether this status lets the run exit 0."""
        return self in (Status.PASSED, Status.EXPERIMENTAL_FAILED)


PHASES = ("render", "build", "up", "ready", "tests", "collect", "down")


@dataclass(frozen=True)
class TestCounts:
    """Testcase totals of one variant's JUnit report."""

    __test__ = False  # not a pytest test class, despite the name

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class VariantResult:
    """What happened to one variant. Paths are relative to the run directory."""

    id: str
    values: Mapping[str, Any]
    status: Status
    experimental: bool = False
    project: str = ""
    reason: str = ""  # one human line: why it failed or errored
    detail: str = ""  # longer text: health output, log tail
    exit_code: int | None = None  # of the test command
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None
    phases: Mapping[str, float] = field(default_factory=dict)  # phase -> seconds
    phase_starts: Mapping[str, float] = field(default_factory=dict)  # phase -> epoch start
    ports: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # svc -> port -> addr
    tests: TestCounts = field(default_factory=TestCounts)
    peak_memory_bytes: int | None = None
    compose_file: str | None = None
    junit: str | None = None
    tests_log: str | None = None
    stats: str | None = None
    logs: Mapping[str, str] = field(default_factory=dict)  # service -> log file
    # Earlier attempts under `run --retries`: their statuses and kept JUnit files, oldest first.
    attempt_statuses: tuple[str, ...] = ()
    attempt_junits: tuple[str, ...] = ()

    @property
    def attempts(self) -> int:
        """How many times the variant ran."""
        return len(self.attempt_statuses) + 1

    @property
    def flaky(self) -> bool:
        """Passed on a retry after failing: flaky, measured rather than guessed."""
        return self.status is Status.PASSED and bool(self.attempt_statuses)

    @property
    def duration(self) -> float | None:
        """Wall time of the whole variant, in seconds."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["attempts"] = self.attempts
        data["flaky"] = self.flaky
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantResult:
        """Read back what :meth:`to_dict` wrote."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["status"] = Status(data["status"])
        kwargs["tests"] = TestCounts(**data.get("tests", {}))
        kwargs["attempt_statuses"] = tuple(data.get("attempt_statuses", ()))
        kwargs["attempt_junits"] = tuple(data.get("attempt_junits", ()))
        return cls(**kwargs)


@dataclass(frozen=True)
class RunJournal:
    """The run journal, written to ``run.json`` even when a run is interrupted."""

    run_id: str
    name: str
    spec_file: str
    spec_digest: str
    started_at: float
    finished_at: float | None = None
    profile: str | None = None
    shard: str | None = None  # "I/N"
    exit_code: int | None = None
    interrupted: bool = False
    jobs: int = 1
    pid: int | None = None  # of the stackmatrix process, so `gc` can tell a crashed run
    variants: tuple[VariantResult, ...] = ()
    stackmatrix_version: str = ""
    format: int = JOURNAL_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["variants"] = [v.to_dict() for v in self.variants]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunJournal:
        """Read back what :meth:`to_dict` wrote."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["variants"] = tuple(VariantResult.from_dict(v) for v in data.get("variants", []))
        return cls(**kwargs)

    def write(self, run_dir: Path) -> Path:
        """Write ``run.json`` atomically into *run_dir*."""
        return write_json_atomic(run_dir / JOURNAL_NAME, self.to_dict())

    @classmethod
    def read(cls, path: Path) -> RunJournal:
        """Read a journal from a run directory or a ``run.json`` path."""
        if path.is_dir():
            path = path / JOURNAL_NAME
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary file beside *path* to write; it replaces *path* only once fully written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write *text* (UTF-8), replacing *path* only once fully written."""
    with atomic_target(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write *data* as indented JSON, replacing *path* only once fully written."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
