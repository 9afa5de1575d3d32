"""Schedule many variants: a thread pool, --jobs, fail-fast, signals, and the run journal."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from types import FrameType

from stackmatrix import __version__
from stackmatrix.console import Console
from stackmatrix.engine.lifecycle import VariantJob, run_variant
from stackmatrix.engine.processes import signal_handlers
from stackmatrix.errors import UsageError
from stackmatrix.junit.write import write_error_junit
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import RunJournal, Status, VariantResult
from stackmatrix.spec.load import Spec

DEFAULT_OUT = Path(".stackmatrix")
LOG = logging.getLogger("stackmatrix")


def new_run_id() -> str:
    """A run id unique per invocation, sortable by time: ``20261122-180401-a1b2``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def default_jobs(spec: Spec) -> int:
    """The spec's ``run.jobs``, else one stack per core (at least 2)."""
    return spec.run.jobs or max(2, os.cpu_count() or 2)


def select_shard(variants: Sequence[Variant], shard: str) -> list[Variant]:
    """Variants of shard ``I/N`` (1-based): a deterministic round-robin split."""
    try:
        index_text, count_text = shard.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise UsageError(f"--shard {shard!r}: expected I/N, e.g. 1/3") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {shard!r}: I must be between 1 and N")
    return [v for position, v in enumerate(variants) if position % count == index - 1]


def select_only(variants: Sequence[Variant], only: Sequence[str]) -> list[Variant]:
    """The variants named by ``--only`` (ids or shell-style patterns), in matrix order."""
    unknown = [o for o in only if not any(fnmatchcase(v.id, o) for v in variants)]
    if unknown:
        known = ", ".join(v.id for v in variants)
        raise UsageError(f"--only {', '.join(unknown)}: no such variant (known: {known})")
    return [v for v in variants if any(fnmatchcase(v.id, o) for o in only)]


def spec_digest(spec: Spec) -> str:
    """sha256 of the matrix file's bytes."""
    return hashlib.sha256(spec.path.read_bytes()).hexdigest()


def exit_code_of(results: Sequence[VariantResult], *, interrupted: bool) -> int:
    """0 all required variants passed; 1 tests failed; 3 a stack failed; 130 interrupted."""
    if interrupted or any(r.status is Status.INTERRUPTED for r in results):
        return 130
    if any(r.status is Status.ERROR for r in results):
        return 3
    if any(r.status in (Status.FAILED, Status.CANCELLED) for r in results):
        return 1
    return 0


@dataclass
class _Signals:
    """SIGINT/SIGTERM set the events; a second signal only says teardown is still running."""

    cancel: threading.Event
    interrupted: threading.Event
    console: Console
    received: list[int] = field(default_factory=list)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        self.interrupted.set()
        self.cancel.set()
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            self.console.note(
                f"{name}: stopping; tearing down running stacks (this takes a moment)"
            )
        else:
            self.console.note(f"{name} again: still tearing down, stacks are never left behind")

    def installed(self) -> contextlib.AbstractContextManager[None]:
        return signal_handlers(self.handle)


@dataclass(frozen=True)
class RunRequest:
    """What to run and how."""

    spec: Spec
    variants: tuple[Variant, ...]
    out_dir: Path = DEFAULT_OUT
    jobs: int = 2
    fail_fast: bool = False
    keep: bool = False
    rebuild: bool = False
    retries: int = 0
    run_id: str = field(default_factory=new_run_id)
    profile: str | None = None
    shard: str | None = None


def _retryable(result: VariantResult) -> bool:
    """The tests ran and failed (not the stack): worth running again to measure flakiness."""
    return result.exit_code is not None and result.status in (
        Status.FAILED,
        Status.EXPERIMENTAL_FAILED,
    )


def run_with_retries(job: VariantJob, retries: int) -> VariantResult:
    """Run a variant; while its tests fail and retries are left, keep the attempt and rerun."""
    statuses: list[str] = []
    junits: list[str] = []
    while True:
        result = run_variant(job)
        if len(statuses) >= retries or not _retryable(result) or job.cancel.is_set():
            return replace(result, attempt_statuses=tuple(statuses), attempt_junits=tuple(junits))
        attempt = len(statuses) + 1
        kept = job.directory / f"junit.attempt-{attempt}.xml"
        (job.directory / "junit.xml").replace(kept)
        tests_log = job.directory / "tests.log"
        if tests_log.exists():
            tests_log.replace(job.directory / f"tests.attempt-{attempt}.log")
        statuses.append(result.status.value)
        junits.append(str(kept.relative_to(job.run_dir)))
        job.on_phase(job.variant.id, f"retry {attempt}")


def _never_started(variant: Variant, run_dir: Path, *, interrupted: bool) -> VariantResult:
    """The result of a variant that was cancelled before it began; CI still sees it."""
    reason = "never started: " + (
        "the run was interrupted" if interrupted else "fail-fast stopped the run"
    )
    junit = run_dir / variant.id / "junit.xml"
    write_error_junit(junit, variant_id=variant.id, message=reason)
    return VariantResult(
        id=variant.id,
        values=dict(variant.values),
        status=Status.INTERRUPTED if interrupted else Status.CANCELLED,
        experimental=variant.experimental,
        reason=reason,
        junit=f"{variant.id}/junit.xml",
    )


class _WarmUp:
    """Imports what only the end of a variant or run needs (plots, reports), in the background.

    It starts when the first variant begins its tests: by then the busiest part of bring-up
    (compose creating containers) is over, and the plotting library (a second of CPU to
    import) is loaded before the first variant draws its plot.
    """

    MODULES = (
        "matplotlib.figure",
        "matplotlib.backends.backend_svg",
        "matplotlib.ticker",
        "stackmatrix.report.build",
    )

    def __init__(self, on_phase: Callable[[str, str], None]) -> None:
        self._on_phase = on_phase
        self._lock = threading.Lock()
        self._started = False

    def phase(self, variant: str, phase: str) -> None:
        """A PhaseCallback: passes the phase on, and starts the imports at the first tests."""
        self._on_phase(variant, phase)
        if phase not in ("tests", "collect"):
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="stackmatrix-warm-up", daemon=True).start()

    def _load(self) -> None:
        try:
            for module in self.MODULES:
                importlib.import_module(module)
        except Exception as error:  # the report imports it again and says what is wrong
            LOG.debug("warm-up import failed: %s", error)


def prepare_run_dir(out_dir: Path, run_id: str, *, shared: bool = False) -> Path:
    """Create ``OUT/runs/<run-id>`` and point ``OUT/runs/latest`` at it.

    *shared*: several processes of one run (nox sessions) may each call this.
    """
    runs = out_dir / "runs"
    run_dir = runs / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=shared)
        latest = runs / "latest"
        tmp = runs / f".latest-{run_id}-{os.getpid()}-{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_id)
        tmp.replace(latest)
    except OSError as error:
        raise UsageError(
            f"cannot use the output directory {out_dir}: {error.strerror or error}"
        ) from None
    return run_dir


def run_matrix(
    request: RunRequest,
    console: Console,
    *,
    finish: Callable[[Path], None] = lambda _run_dir: None,
) -> tuple[RunJournal, Path]:
    """Run every variant of *request*; return the journal and the run directory."""
    run_dir = prepare_run_dir(request.out_dir, request.run_id)
    cancel, interrupted = threading.Event(), threading.Event()
    journal = RunJournal(
        run_id=request.run_id,
        name=request.spec.name,
        spec_file=str(request.spec.path),
        spec_digest=spec_digest(request.spec),
        started_at=time.time(),
        profile=request.profile,
        shard=request.shard,
        jobs=request.jobs,
        pid=os.getpid(),
        stackmatrix_version=__version__,
    )
    journal.write(run_dir)
    warm_up = _WarmUp(console.phase)
    results: dict[str, VariantResult] = {}
    signals = _Signals(cancel, interrupted, console)
    console.start(request.variants, run_dir=run_dir, jobs=request.jobs)

    def job(variant: Variant) -> VariantJob:
        return VariantJob(
            spec=request.spec,
            variant=variant,
            run_id=request.run_id,
            run_dir=run_dir,
            cancel=cancel,
            interrupted=interrupted,
            keep=request.keep,
            rebuild=request.rebuild,
            on_phase=warm_up.phase,
        )

    def record(result: VariantResult) -> None:
        results[result.id] = result
        console.finished(result)
        ordered = tuple(results[v.id] for v in request.variants if v.id in results)
        replace(journal, variants=ordered).write(run_dir)

    try:
        with (
            signals.installed(),
            ThreadPoolExecutor(
                max_workers=request.jobs, thread_name_prefix="stackmatrix-variant"
            ) as pool,
        ):
            pending = deque(request.variants)
            running: dict[Future[VariantResult], Variant] = {}
            while pending or running:
                while pending and len(running) < request.jobs and not cancel.is_set():
                    variant = pending.popleft()
                    future = pool.submit(run_with_retries, job(variant), request.retries)
                    running[future] = variant
                if not running:
                    break
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    variant = running.pop(future)
                    result = future.result()
                    record(result)
                    if request.fail_fast and result.status in (Status.FAILED, Status.ERROR):
                        if not cancel.is_set():
                            console.note(
                                f"fail-fast: {variant.id} {result.status}; stopping the rest"
                            )
                        cancel.set()
            for variant in pending:
                record(_never_started(variant, run_dir, interrupted=interrupted.is_set()))
    finally:
        ordered = tuple(results[v.id] for v in request.variants if v.id in results)
        code = exit_code_of(ordered, interrupted=interrupted.is_set())
        journal = replace(
            journal,
            variants=ordered,
            finished_at=time.time(),
            exit_code=code,
            interrupted=interrupted.is_set(),
        )
        journal.write(run_dir)
        finish(run_dir)
        console.done(journal, run_dir)
    return journal, run_dir
