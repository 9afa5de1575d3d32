"""Results as data: the status of a variant, its record, and the run journal (run.json)."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackmatrix.errors import EngineError, Interrupted
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.files import write_json_atomic

JOURNAL_NAME = "run.json"
JOURNAL_FORMAT = 1
TESTS_FAILED = 1  # the exit code of a run whose stacks worked and whose tests did not


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
class ServiceProvenance:
    """What one service of a variant really ran: its image, and the version it reports."""

    image: str = ""  # the reference the compose file names (``postgres:17``, ``local/pg:17``)
    image_id: str = ""  # the id of the image its container ran (``sha256:...``)
    digest: str = ""  # a repo digest (``NAME@sha256:...``), when the image came from a registry
    version: str = ""  # the server's own version, when it could be asked ("" when not)
    version_source: str = ""  # how it was asked: ``postgres``, ``redis``, ``command``, ``log``

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceProvenance:
        """Read back what ``dataclasses.asdict`` wrote; unknown keys are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known and v is not None})


@dataclass(frozen=True)
class Provenance:
    """What a variant ran: every service's image and version, and the tests' environment."""

    services: Mapping[str, ServiceProvenance] = field(default_factory=dict)
    python: str = ""  # the Python version of the test environment, when it could be asked
    # What the spec's ``tests.versions`` command printed: package -> version.
    packages: Mapping[str, str] = field(default_factory=dict)
    packages_cut: int = 0  # packages the command printed beyond those kept (a bound)

    def __bool__(self) -> bool:
        return bool(self.services or self.python or self.packages)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Provenance:
        """Read back what ``dataclasses.asdict`` wrote (``None``/``{}``: nothing recorded)."""
        if not data:
            return cls()
        services = data.get("services") or {}
        return cls(
            services={str(k): ServiceProvenance.from_dict(v) for k, v in services.items()},
            python=str(data.get("python") or ""),
            packages={str(k): str(v) for k, v in (data.get("packages") or {}).items()},
            packages_cut=_count(data.get("packages_cut")),
        )


def _count(value: object) -> int:
    """A non-negative count read back from JSON (anything else: 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _as_counted(status: Status, *, experimental: bool) -> Status:
    # An experimental variant may fail without failing the run, and not running (a cancelled
    # or never started variant) is a way of failing; an interrupted run is interrupted.
    if experimental and status in (Status.FAILED, Status.ERROR, Status.CANCELLED):
        return Status.EXPERIMENTAL_FAILED
    return status


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
    setup_log: str | None = None  # the output of the spec's setup steps, when it has any
    # What went wrong after the variant did its part (logs not collected, the stack not
    # removed): beside its status, reason and counts, not instead of them.
    teardown: str = ""
    stats: str | None = None
    logs: Mapping[str, str] = field(default_factory=dict)  # service -> log file
    # Earlier attempts under `run --retries`: their statuses and kept JUnit files, oldest first.
    attempt_statuses: tuple[str, ...] = ()
    attempt_junits: tuple[str, ...] = ()
    # What ran: service -> {image, id, digest}, as the prepare stage found it.
    images: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # What ran, as the variant's own containers and servers said: see Provenance.
    provenance: Provenance = field(default_factory=Provenance)

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

    @classmethod
    def never_ran(cls, variant: Variant, *, status: Status, reason: str) -> VariantResult:
        """The result of a variant that has none of its own (never started, or its worker
        died); the reports still show it, with an error report at ``<id>/junit.xml``.

        """
        return cls.of_variant(
            variant, status=status, reason=reason, junit=f"{variant.id}/junit.xml"
        )

    @classmethod
    def of_variant(cls, variant: Variant, *, status: Status, **fields: Any) -> VariantResult:
        """The result of *variant*: its id, values and experimental flag, and *status* as the
        run counts it (an experimental variant's failure is experimental-failed)."""
        return cls(
            id=variant.id,
            values=dict(variant.values),
            status=_as_counted(status, experimental=variant.experimental),
            experimental=variant.experimental,
            **fields,
        )

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
        kwargs["provenance"] = Provenance.from_dict(data.get("provenance"))
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
    rerun_of: str | None = None  # `run --failed`: the id of the run whose failures this re-ran
    rerun_tests: bool = False  # `--failed-tests`: each variant ran only its failed testcases
    # The prepare stage: its time, and every unique image pulled or built once for the run.
    prepare: Mapping[str, Any] | None = None
    # Every variant id of the matrix (profile applied, before --only and --shard), in matrix
    # order, so that `report` over the directories of a sharded run can say what is missing.
    matrix_variants: tuple[str, ...] = ()
    # The spec's test id rewrites, applied before results are compared across variants:
    # each {"pattern": REGEX, "replace": TEXT}, in order (re.sub semantics).
    test_ids: tuple[Mapping[str, str], ...] = ()

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
        kwargs["matrix_variants"] = tuple(data.get("matrix_variants", ()))
        kwargs["test_ids"] = tuple(dict(rule) for rule in data.get("test_ids", ()))
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


def parallelism(results: Sequence[VariantResult]) -> int:
    """The most variants that ran at one moment (what a run really did, whoever scheduled it:
    ``--jobs``, or ``nox -j``); at least 1. A variant counts from its start until its down
    begins (a down may run in the background, holding no job slot), else until its finish."""
    edges = sorted(
        (moment, step)
        for r in results
        if r.started_at is not None and r.finished_at is not None
        for moment, step in ((r.started_at, 1), (r.phase_starts.get("down", r.finished_at), -1))
    )
    running = most = 0
    for _moment, step in edges:  # a finish sorts before a start at the same moment
        running += step
        most = max(most, running)
    return max(1, most)


def exit_code_of(results: Sequence[VariantResult], *, interrupted: bool) -> int:
    """0 all required variants passed; 1 tests failed; 3 a stack failed (also only in its
    teardown); 130 interrupted."""
    if interrupted or any(r.status is Status.INTERRUPTED for r in results):
        return Interrupted.exit_code
    if any(r.status is Status.ERROR for r in results):
        return EngineError.exit_code
    if any(r.teardown for r in results):  # a stack may be left behind: the engine failed
        return EngineError.exit_code
    if any(r.status in (Status.FAILED, Status.CANCELLED) for r in results):
        return TESTS_FAILED
    return 0
