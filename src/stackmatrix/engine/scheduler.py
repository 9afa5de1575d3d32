"""Schedule many variants: a thread pool, --jobs, fail-fast, signals, and the run journal.

A variant holds one of the ``--jobs`` slots from its start until its logs and stats are
collected (its ``on_released``; a stack that claims a host port or another host-wide name:
until it is down) or, if it never gets that far, until it ends. Its stack's
removal (``down``) then goes on in the background while the next variant comes up: at most
``background_downs`` such removals at once, each still a part of its variant (its result is
recorded when its ``down`` is done), so a run, stopped or not, always waits for all of them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from stackmatrix.engine.job import Released, StatsHook, VariantJob
from stackmatrix.engine.lifecycle import run_variant
from stackmatrix.engine.prepare import Outcome, Prepared, PullPolicy, prepare
from stackmatrix.engine.processes import signal_handlers
from stackmatrix.engine.suite import check_before_up, has_report
from stackmatrix.errors import Interrupted, StackmatrixError
from stackmatrix.junit.write import write_error_junit
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import RunJournal, Status, VariantResult, exit_code_of
from stackmatrix.results.run_dir import DEFAULT_OUT, journal_of, new_run_id, prepare_run_dir
from stackmatrix.spec.load import Spec

LOG = logging.getLogger("stackmatrix")
# Networks of the stacks alive at once by default, running or coming down: the engine's
# default address pools hold about 30 (some are other people's).
MAX_NETWORKS = 24


class RunObserver(Protocol):
    """Who is told how a run goes (the console, in the command line)."""

    def start(self, variants: Sequence[Variant], *, run_dir: Path, jobs: int) -> None:
        """The run begins: these variants, this many at once."""

    def phase(self, variant_id: str, phase: str) -> None:
        """A variant entered a phase (``up``, ``tests``, ...)."""

    def note(self, text: str) -> None:
        """Something the person running it should read now."""

    def finished(self, result: VariantResult) -> None:
        """A variant ended."""

    def done(self, journal: RunJournal, run_dir: Path) -> None:
        """The run ended; its journal is written."""


class _Quiet:
    """The observer, minus its failures: output that cannot be written (a closed pipe,
    ``stackmatrix run | head``) never stops a variant or the run. Once writing fails, nothing
    more is written; the run goes on, and its journal, reports and exit code are whole."""

    def __init__(self, observer: RunObserver) -> None:
        self._observer = observer
        self.lost = False

    def _call(self, method: Callable[[], object]) -> None:
        if self.lost:
            return
        try:
            method()
        except Exception as error:
            self.lost = True
            LOG.debug("the run's output is lost: %s", error)

    def start(self, variants: Sequence[Variant], *, run_dir: Path, jobs: int) -> None:
        self._call(lambda: self._observer.start(variants, run_dir=run_dir, jobs=jobs))

    def phase(self, variant_id: str, phase: str) -> None:
        self._call(lambda: self._observer.phase(variant_id, phase))

    def note(self, text: str) -> None:
        self._call(lambda: self._observer.note(text))

    def finished(self, result: VariantResult) -> None:
        self._call(lambda: self._observer.finished(result))

    def done(self, journal: RunJournal, run_dir: Path) -> None:
        self._call(lambda: self._observer.done(journal, run_dir))


@dataclass
class _Signals:
    """SIGINT/SIGTERM set the events; a second signal only says teardown is still running."""

    cancel: threading.Event
    interrupted: threading.Event
    console: RunObserver
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
    # Modules only the end of a run needs, imported in the background once tests start.
    warm_up: tuple[str, ...] = ()
    # Called with a variant's stats.json while its stack comes down (the CLI draws its plot).
    after_stats: StatsHook | None = None
    extra_args: tuple[str, ...] = ()  # appended to every variant's test command
    # `run --failed`: the run this one runs again; with --failed-tests, each variant's failed
    # testcases (a variant missing here runs all of its tests)
    rerun_of: str | None = None
    failed_tests: Mapping[str, tuple[str, ...]] | None = None
    pull: PullPolicy = PullPolicy.MISSING  # when the prepare stage pulls an image
    # How many stacks may be coming down in the background, beside the `jobs` variants that
    # hold a slot; None: the spec's `run.background_downs`, else as many as `jobs` (within
    # MAX_NETWORKS); 0: a variant holds its slot until its stack is down.
    background_downs: int | None = None

    @property
    def downs(self) -> int:
        """:meth:`downs_for` stacks of one network each."""
        return self.downs_for(1)

    def downs_for(self, networks: int) -> int:
        """The bound on background teardowns when a stack creates *networks* networks: at
        most ``jobs + downs`` stacks exist at once.

        As many as ``jobs`` by default: variants of one matrix often end their tests
        together, and with fewer downs allowed the slots of the others wait for a down to
        end before the next variants may start. A stack coming down frees its memory as its
        containers stop; what stays bounded is the number of networks: the engine's default
        address pools hold about 30, so the stacks alive at once create at most
        :data:`MAX_NETWORKS` (at least one down in the background, whatever ``jobs``).
        """
        downs = self.background_downs
        if downs is None:
            downs = self.spec.run.background_downs
        if downs is None:
            stacks = MAX_NETWORKS // max(1, networks)
            return max(1, min(self.jobs, stacks - self.jobs))
        return max(0, downs)


def _retryable(status: Status, exit_code: int | None) -> bool:
    """The tests ran and failed (not the stack): worth running again to measure flakiness."""
    return exit_code is not None and status in (Status.FAILED, Status.EXPERIMENTAL_FAILED)


def run_with_retries(job: VariantJob, retries: int) -> VariantResult:
    """Run a variant; while its tests fail and retries are left, keep the attempt and rerun.

    An attempt that will run again keeps its slot through its teardown: only the last
    attempt passes its release on.
    """
    statuses: list[str] = []
    junits: list[str] = []

    def released(release: Released) -> None:
        again = _retryable(release.status, release.exit_code) and not job.cancel.is_set()
        if len(statuses) >= retries or not again:
            job.on_released(release)

    attempt_job = replace(job, on_released=released)
    while True:
        result = run_variant(attempt_job)
        retryable = _retryable(result.status, result.exit_code)
        if len(statuses) >= retries or not retryable or job.cancel.is_set():
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


@dataclass
class _Flight:
    """A variant started: whether it still holds its slot, and the release that frees it."""

    variant: Variant
    released: Future[Released]
    holds_slot: bool = True


def _resolve(future: Future[Released], release: Released) -> None:
    """Tell the scheduler of *release* (once: a second release of a variant is no news)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(release)


def _never_started(variant: Variant, run_dir: Path, *, interrupted: bool) -> VariantResult:
    """The result of a variant that was cancelled before it began; CI still sees it."""
    reason = "never started: " + (
        "the run was interrupted" if interrupted else "fail-fast stopped the run"
    )
    status = Status.INTERRUPTED if interrupted else Status.CANCELLED
    result = VariantResult.never_ran(variant, status=status, reason=reason)
    write_error_junit(run_dir / variant.id / "junit.xml", variant_id=variant.id, message=reason)
    return result


class _WarmUp:
    """Imports what only the end of a variant or run needs (plots, reports), in the background.

    It starts when the first variant begins its tests: by then the busiest part of bring-up
    (compose creating containers) is over, and the plotting library (a second of CPU to
    import) is loaded before the first variant draws its plot.
    """

    def __init__(self, modules: Sequence[str], on_phase: Callable[[str, str], None]) -> None:
        self._modules = tuple(modules)
        self._on_phase = on_phase
        self._lock = threading.Lock()
        self._started = False

    def phase(self, variant: str, phase: str) -> None:
        """A PhaseCallback: passes the phase on, and starts the imports at the first tests."""
        self._on_phase(variant, phase)
        if phase not in ("tests", "collect") or not self._modules:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="stackmatrix-warm-up", daemon=True).start()

    def _load(self) -> None:
        try:
            for module in self._modules:
                importlib.import_module(module)
        except Exception as error:  # the report imports it again and says what is wrong
            LOG.debug("warm-up import failed: %s", error)


def _first_journal(request: RunRequest, run_dir: Path) -> RunJournal:
    """The journal of a run that has just begun, already written into *run_dir*."""
    journal = journal_of(
        request.spec,
        request.run_id,
        started_at=time.time(),
        profile=request.profile,
        shard=request.shard,
        jobs=request.jobs,
        pid=os.getpid(),
        rerun_of=request.rerun_of,
        rerun_tests=request.failed_tests is not None,
    )
    journal.write(run_dir)
    return journal


class _Run:
    """One run in progress: the variants not yet started, the results so far, the journal."""

    def __init__(
        self, request: RunRequest, console: RunObserver, run_dir: Path, journal: RunJournal
    ) -> None:
        self._request = request
        self._console = console
        self._run_dir = run_dir
        self._journal = journal
        self._cancel = threading.Event()
        self._interrupted = threading.Event()
        self._warm_up = _WarmUp(request.warm_up, console.phase)
        self._pending = deque(request.variants)
        self._results: dict[str, VariantResult] = {}
        self._prepared: Prepared | None = None
        self._downs = request.downs  # bounded again by the networks once prepared

    def execute(self) -> None:
        """Run the variants, --jobs at a time; those that never started are recorded as such."""
        signals = _Signals(self._cancel, self._interrupted, self._console)
        with signals.installed():
            self._prepare()
            # Every variant, from its start to its stack's removal, has a thread: those that
            # hold a slot and those whose stacks come down. Leaving the pool waits for all.
            networks = self._prepared.networks if self._prepared is not None else 1
            self._downs = self._request.downs_for(networks)
            workers = self._request.jobs + self._downs
            with ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="stackmatrix-variant"
            ) as pool:
                self._schedule(pool)
        for variant in self._pending:
            self._record(
                _never_started(variant, self._run_dir, interrupted=self._interrupted.is_set())
            )

    def _prepare(self) -> None:
        """Pull and build every unique image once; a variant whose image failed is an error
        without a stack, the others go on."""
        request = self._request

        def said(outcome: Outcome) -> None:
            if outcome.action or outcome.error:
                verb = "pulled" if outcome.action == "pull" else "built"
                what = (
                    f"failed: {outcome.error}"
                    if outcome.error
                    else f"{verb} in {outcome.seconds:.1f}s"
                )
                self._console.note(f"prepare: {outcome.image} {what}")

        self._prepared = prepared = prepare(
            request.spec,
            list(self._pending),
            run_id=request.run_id,
            run_dir=self._run_dir,
            policy=request.pull,
            rebuild=request.rebuild,
            cancel=self._cancel,
            on_image=said,
            on_phase=self._warm_up.phase,
        )
        self._journal = replace(self._journal, prepare=prepared.summary())
        self._journal.write(self._run_dir)
        if self._cancel.is_set():
            # Stopped while the images were fetched: no variant started, each says so.
            interrupted = self._interrupted.is_set()
            status = Status.INTERRUPTED if interrupted else Status.CANCELLED
            reason = "interrupted" if interrupted else "cancelled by fail-fast"
            stopped = {v.id: (reason, "") for v in self._pending}
            self._fail_before_start(stopped, status)
            return
        self._fail_before_start(dict(prepared.problems), Status.ERROR)
        failed = [v for v in request.variants if v.id in prepared.problems and not v.experimental]
        if request.fail_fast and failed:
            self._console.note(f"fail-fast: {failed[0].id} error; stopping the rest")
            self._cancel.set()

    def _fail_before_start(self, why: dict[str, tuple[str, str]], status: Status) -> None:
        """Record the pending variants named in *why* as ended before their stack came up."""
        assert self._prepared is not None  # noqa: S101 - called after the prepare stage
        for variant in [v for v in self._pending if v.id in why]:
            self._pending.remove(variant)
            reason, detail = why[variant.id]
            result = VariantResult.of_variant(
                variant, status=status, reason=reason, detail=detail,
                junit=f"{variant.id}/junit.xml",
            )  # fmt: skip
            write_error_junit(self._run_dir / variant.id / "junit.xml", variant_id=variant.id,
                              message=reason)  # fmt: skip
            self._record(result)

    def _with_images(self, result: VariantResult) -> VariantResult:
        """*result* with what the prepare stage found for its variant: images and times."""
        if self._prepared is None or result.images:
            return result
        before = self._prepared.phases_of(result.id)
        phases = {**before, **result.phases}
        phases["build"] = round(before.get("build", 0.0) + result.phases.get("build", 0.0), 3)
        starts = {**result.phase_starts, **self._prepared.phase_starts_of(result.id)}
        return replace(
            result, phases=phases, phase_starts=starts, images=self._prepared.images_of(result.id)
        )

    def final_journal(self, aborted: BaseException | None = None) -> RunJournal:
        """The journal of the run as it ended (every result, the exit code), written.

        A run *aborted* by an error records every variant without a result as never
        finished, and the exit code the process ends with: never a green run.
        """
        if aborted is not None:
            interrupted = isinstance(aborted, KeyboardInterrupt | Interrupted)
            status = Status.INTERRUPTED if interrupted else Status.ERROR
            reason = "interrupted" if interrupted else f"the run stopped: {_describe(aborted)}"
            for variant in self._request.variants:
                if variant.id not in self._results:
                    result = VariantResult.never_ran(variant, status=status, reason=reason)
                    self._results[variant.id] = result
                    junit = self._run_dir / variant.id / "junit.xml"
                    if not has_report(junit):  # what the tests wrote is never overwritten
                        with contextlib.suppress(StackmatrixError, OSError):
                            write_error_junit(junit, variant_id=variant.id, message=reason)
        ordered = self._ordered_results()
        interrupted = self._interrupted.is_set() or isinstance(
            aborted, KeyboardInterrupt | Interrupted
        )
        code = exit_code_of(ordered, interrupted=interrupted)
        if aborted is not None:
            code = abort_exit_code(aborted)
        journal = replace(
            self._journal,
            variants=ordered,
            finished_at=time.time(),
            exit_code=code,
            interrupted=interrupted,
        )
        journal.write(self._run_dir)
        return journal

    def _schedule(self, pool: ThreadPoolExecutor) -> None:
        """Keep the slots full until every variant ran or the run was stopped; then wait for
        every variant started, teardowns in the background included.

        If the scheduling itself fails (the journal cannot be written, say), the variants
        still running are stopped as by fail-fast and waited for, their results kept; then
        the error goes on."""
        flights: dict[Future[VariantResult], _Flight] = {}
        try:
            self._keep_slots_full(pool, flights)
        except BaseException:
            self._cancel.set()
            self._salvage(flights)
            raise

    def _salvage(self, flights: dict[Future[VariantResult], _Flight]) -> None:
        """Wait for the variants of *flights* (cancelled) and keep what each one recorded."""
        for future, flight in list(flights.items()):
            try:
                result = self._result_of(future, flight.variant)
                self._results[result.id] = result
                self._record(result)
            except Exception as error:  # the run is failing already: its journal says so
                LOG.debug("recording %s failed", flight.variant.id, exc_info=error)
            flights.pop(future)

    def _keep_slots_full(
        self, pool: ThreadPoolExecutor, flights: dict[Future[VariantResult], _Flight]
    ) -> None:
        while self._pending or flights:
            self._start_more(pool, flights)
            if not flights:
                break
            watched: list[Future[Any]] = [*flights]
            watched += [flight.released for flight in flights.values() if flight.holds_slot]
            wait(watched, timeout=0.2, return_when=FIRST_COMPLETED)
            for flight in flights.values():
                if flight.holds_slot and flight.released.done():
                    flight.holds_slot = False  # only its `down` is left: the slot is free
                    self._stop_if_fail_fast(flight.variant, flight.released.result().status)
            for future in [future for future in flights if future.done()]:
                variant = flights[future].variant
                result = self._result_of(future, variant)
                flights.pop(future)
                self._record(result)
                self._stop_if_fail_fast(variant, result.status)

    def _start_more(
        self, pool: ThreadPoolExecutor, flights: dict[Future[VariantResult], _Flight]
    ) -> None:
        """Start pending variants while a slot is free and the background teardowns are
        within their bound (a slot whose stack is still coming down counts as one)."""
        limit = self._request.jobs + self._downs
        while self._pending and not self._cancel.is_set() and len(flights) < limit:
            if sum(flight.holds_slot for flight in flights.values()) >= self._request.jobs:
                return
            variant = self._pending.popleft()
            released: Future[Released] = Future()
            job = self._job(variant, released)
            future = pool.submit(run_with_retries, job, self._request.retries)
            flights[future] = _Flight(variant, released)

    def _result_of(self, future: Future[VariantResult], variant: Variant) -> VariantResult:
        """The variant's result; a variant whose life raised is an error, still recorded."""
        try:
            return future.result()
        except Exception as error:  # a defect, not the variant's
            LOG.debug("variant %s raised", variant.id, exc_info=error)
            result = VariantResult.never_ran(
                variant, status=Status.ERROR, reason=f"stackmatrix failed: {error!r}"
            )
            write_error_junit(self._run_dir / variant.id / "junit.xml",
                              variant_id=variant.id, message=result.reason)  # fmt: skip
            return result

    def _job(self, variant: Variant, released: Future[Released]) -> VariantJob:
        return VariantJob(
            spec=self._request.spec,
            variant=variant,
            run_id=self._request.run_id,
            run_dir=self._run_dir,
            cancel=self._cancel,
            interrupted=self._interrupted,
            keep=self._request.keep,
            rebuild=self._request.rebuild,
            prepared=self._prepared is not None,
            on_phase=self._warm_up.phase,
            on_released=lambda release: _resolve(released, release),
            after_stats=self._request.after_stats,
            extra_args=self._request.extra_args,
            failed_tests=(self._request.failed_tests or {}).get(variant.id),
        )

    def _stop_if_fail_fast(self, variant: Variant, status: Status) -> None:
        """Under --fail-fast, a failed or broken variant stops the rest of the run (told as
        soon as its verdict is known: at its release, before its stack is down)."""
        if self._request.fail_fast and status in (Status.FAILED, Status.ERROR):
            if not self._cancel.is_set():
                self._console.note(f"fail-fast: {variant.id} {status}; stopping the rest")
            self._cancel.set()

    def _record(self, result: VariantResult) -> None:
        """Keep *result*, show it, and write the journal with every result so far."""
        result = self._with_images(result)
        self._results[result.id] = result
        self._console.finished(result)
        replace(self._journal, variants=self._ordered_results()).write(self._run_dir)

    def _ordered_results(self) -> tuple[VariantResult, ...]:
        """The results so far, in the order of the request's variants."""
        return tuple(self._results[v.id] for v in self._request.variants if v.id in self._results)


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, StackmatrixError) else repr(error)


def abort_exit_code(error: BaseException) -> int:
    """The exit code of a run that *error* stopped: the error's own, 130 for Ctrl-C, else 3."""
    if isinstance(error, KeyboardInterrupt):
        return Interrupted.exit_code
    if isinstance(error, StackmatrixError):
        return error.exit_code
    return StackmatrixError.exit_code


def run_matrix(
    request: RunRequest,
    console: RunObserver,
    *,
    finish: Callable[[Path], None] = lambda _run_dir: None,
) -> tuple[RunJournal, Path]:
    """Run every variant of *request*; return the journal and the run directory.

    What would only fail once stacks are up (a missing test command, a port no variant
    publishes) is a SpecError before anything starts. An error that stops the run later is
    raised again after the journal and reports record it, with the same exit code.
    """
    check_before_up(
        request.spec, request.variants, run_id=request.run_id,
        rerun=request.failed_tests is not None,
    )  # fmt: skip
    quiet = _Quiet(console)
    run_dir = prepare_run_dir(request.out_dir, request.run_id)
    run = _Run(request, quiet, run_dir, _first_journal(request, run_dir))
    quiet.start(request.variants, run_dir=run_dir, jobs=request.jobs)
    aborted: BaseException | None = None
    try:
        run.execute()
    except BaseException as error:
        aborted = error
        raise
    finally:
        journal = run.final_journal(aborted)
        try:
            finish(run_dir)
        except Exception as error:  # the journal is written: reports can be built again
            LOG.warning("could not build the reports: %s", error)
        quiet.done(journal, run_dir)
    return journal, run_dir
