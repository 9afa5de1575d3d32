"""The life of one variant: render, build, up, ready, tests, collect, down -> a VariantResult."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from stackmatrix.compose.render import (
    compose_profiles,
    dump_compose,
    holds_secrets,
    load_compose,
    render,
)
from stackmatrix.engine.job import Released, VariantJob, host_wide_names
from stackmatrix.engine.provenance import (
    collect_provenance,
    images_only,
    service_provenance,
    test_environment,
)
from stackmatrix.engine.services import ServiceState, final_reason
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.engine.stats import HostProcesses, StatsSampler
from stackmatrix.engine.suite import SETUP_LOG, has_report, judge, run_setup, run_suite, temp_dir
from stackmatrix.errors import EngineError, StackmatrixError
from stackmatrix.junit.write import read_counts, write_error_junit
from stackmatrix.redact import compose_secrets, redact_text, secret_values
from stackmatrix.results.files import remove_links, seal_variant_dir, write_private_if
from stackmatrix.results.journal import Provenance, Status, TestCounts, VariantResult

LOG = logging.getLogger("stackmatrix")
# Seconds the collect phase waits for the provenance asked beside the tests (each of its
# questions has its own, shorter deadline); past it, only the images are recorded.
PROVENANCE_WAIT = 40.0


class _Recorder:
    """Times phases and tells the runner which one is current."""

    def __init__(self, job: VariantJob) -> None:
        self.job = job
        self.phases: dict[str, float] = {}
        self.starts: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.job.on_phase(self.job.variant.id, name)
        self.starts[name] = time.time()
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - began, 3)


def run_variant(job: VariantJob) -> VariantResult:
    """Bring the variant's stack up, test against it, collect, and always tear it down."""
    return _VariantRun(job).run()


def run_tests_on_held_stack(job: VariantJob) -> VariantResult:
    """Run the tests of *job* against its stack, held up by an earlier ``stackmatrix up``."""
    return _VariantRun(job).test_held()


def _changed_while_testing(before: Mapping[str, ServiceState], stack: Stack) -> list[str]:
    """What happened to the services that were running when the tests began: a container
    removed (by a person, another tool, a `gc`), or one that stopped, and how."""
    if not before:
        return []
    try:
        after = stack.refresh()
    except (StackmatrixError, StackFailure):
        return []  # the engine's trouble is teardown's to record
    changed = []
    for service, state in sorted(before.items()):
        if state.status != "running":
            continue
        now = after.get(service)
        if now is None or now.container_id != state.container_id:
            changed.append(f"container of service '{service}' was removed while the tests ran")
        elif now.status != "running":
            changed.append(f"service '{service}' {final_reason(now)} while the tests ran")
    return changed


class _BackgroundProvenance:
    """The provenance of a ready stack, asked beside its setup and tests: the services at
    once, the tests' environment once the setup steps ran (they may install the packages
    under test)."""

    def __init__(
        self,
        job: VariantJob,
        stack: Stack,
        compose: Mapping[str, Any],
        ports: Mapping[str, Mapping[str, str]],
        secrets: list[str],
    ) -> None:
        self._asked = (job, stack, compose, ports, tuple(secrets))
        self._setup_over = threading.Event()
        self._environment = False
        self._found: Provenance | None = None
        self._thread = threading.Thread(target=self._ask, name="stackmatrix-provenance")
        self._thread.daemon = True
        self._thread.start()

    def setup_over(self, *, ask_environment: bool) -> None:
        """The setup steps are done (or never will be): ask the tests' environment or not."""
        if not self._setup_over.is_set():
            self._environment = ask_environment
            self._setup_over.set()

    def _ask(self) -> None:
        job, stack, compose, ports, secrets = self._asked
        try:
            self._found = service_provenance(job, stack, compose, ports, secrets)
            self._setup_over.wait()
            if self._environment:
                self._found = test_environment(job, stack, ports, secrets, self._found)
        except Exception as error:  # the variant goes on with what was found
            LOG.warning("could not ask the provenance of %s: %s", job.variant.id, error)

    def result(self, timeout: float) -> Provenance | None:
        """What was found, once the questions are over; None if they outlast *timeout*."""
        self.setup_over(ask_environment=False)
        self._thread.join(timeout)
        if self._thread.is_alive():
            LOG.warning("provenance of %s: no answer within %.0f s", self._asked[0].variant.id,
                        timeout)  # fmt: skip
            return None
        return self._found


def _why(error: BaseException) -> str:
    return error.reason if isinstance(error, StackFailure) else str(error)


class _VariantRun:
    """The mutable bookkeeping of one variant while it runs; it ends as a VariantResult."""

    def __init__(self, job: VariantJob) -> None:
        self.job = job
        self.dir = job.directory
        self.rec = _Recorder(job)
        self.started = time.time()
        self.junit = self.dir / "junit.xml"
        self.compose_path = self.dir / "compose.yaml"
        self.compose: Mapping[str, Any] = {}  # the compose document the stack runs, rendered
        self.status, self.reason, self.detail = Status.ERROR, "", ""
        self.exit_code: int | None = None
        self.ports: dict[str, dict[str, str]] = {}
        self.logs: dict[str, str] = {}
        self.peak: int | None = None
        self.stats_file: str | None = None
        self.tests_log: str | None = None
        self.setup_log: str | None = None
        self.provenance = Provenance()
        self.asking: _BackgroundProvenance | None = None
        self.claims: tuple[str, ...] = ()  # what the stack claims host-wide (a pinned port)
        self.teardown: list[str] = []  # what went wrong after the variant did its part
        self.refused: list[str] = []  # links (and pipes) in the variant's folder, not followed
        # Values never to show: secret variables of the tests (their environment, and the
        # expanded tests.env once the ports are known) and of the services.
        base = os.environ if job.base_env is None else job.base_env
        self.secrets: list[str] = secret_values(
            {**base, **{k: str(v) for k, v in job.spec.tests.env.items()}}, job.spec.secrets
        )

    def run(self) -> VariantResult:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.junit.unlink(missing_ok=True)
        try:
            with self.rec.phase("render"):
                data = render(
                    self.job.spec, self.job.variant, run_id=self.job.run_id, labels=self.job.labels
                )
                names = self.job.spec.secrets
                home = self.job.spec.path.parent  # compose reads its .env there
                self.secrets.extend(compose_secrets(data, names, project_dir=home))
                private = holds_secrets(data, names, project_dir=home)
                write_private_if(self.compose_path, dump_compose(data), private=private)
                self.claims = host_wide_names(data)
                self.compose = data
            services: Mapping[str, Any] = data.get("services", {})
            # Compose alone knows which services start when the file includes others, uses
            # compose profiles, or extends services of another file (which may bring theirs).
            exact = "include" not in data and not any(
                isinstance(cfg, Mapping) and ("profiles" in cfg or "extends" in cfg)
                for cfg in services.values()
            )
            stack = self._stack(list(services), exact=exact)
            with stack:
                builds = {n: cfg.get("image") for n, cfg in services.items() if "build" in cfg}
                if self.job.prepared:  # tagged images were built once for the whole run
                    builds = {n: tag for n, tag in builds.items() if not tag or "$" in tag}
                self._drive(stack, builds)
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except StackmatrixError as error:  # the engine, or a compose file that cannot render
            self.status, self.reason = Status.ERROR, str(error)
        return self._result()

    def _stack(self, services: list[str], *, exact: bool = False) -> Stack:
        return Stack(
            project=self.job.project,
            compose_file=self.compose_path,
            project_directory=self.job.spec.path.parent,
            services=services,
            cancel=self.job.cancel,
            down_timeout=self.job.spec.run.down_timeout,
            keep=self.job.keep,
            profiles=compose_profiles(self.job.spec, self.job.variant),
            call_timeout=self.job.spec.run.engine_timeout,
            services_exact=exact,
        )

    def test_held(self) -> VariantResult:
        """Run the tests against this variant's stack, which is already up (``stackmatrix
        test``): no render, no bring-up, no teardown."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.junit.unlink(missing_ok=True)
        stack = self._stack([])
        asked = False
        try:
            self.compose = load_compose(self.compose_path)
            self.secrets.extend(
                compose_secrets(
                    self.compose, self.job.spec.secrets, project_dir=self.job.spec.path.parent
                )
            )
            stack.refresh()
            self.ports = stack.ports()
            self.provenance = collect_provenance(
                self.job, stack, self.compose, self.ports, self.secrets
            )
            asked = True
            try:
                self._test(stack)
            finally:
                self._drop_temp_dir()
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except Cancelled:
            self.status, self.reason = Status.INTERRUPTED, "interrupted"
        except EngineError as error:
            self.status, self.reason = Status.ERROR, str(error)
        if not asked:  # the stack is not there as it was: its images still name what it ran
            self.provenance = images_only(stack, self.compose, self.secrets)
        self.refused += seal_variant_dir(self.dir, self.secrets)
        return self._result()

    def _setup(self, stack: Stack) -> None:
        """The spec's setup steps against the ready stack (its own phase and log)."""
        if not self.job.spec.tests.setup:
            return
        self.setup_log = f"{self.job.variant.id}/{SETUP_LOG}"
        with self.rec.phase("setup"):
            run_setup(self.job, stack, self.ports, self.secrets)

    def _drop_temp_dir(self) -> None:
        """The variant's TMPDIR goes once its commands are done (its files are the tests'
        scratch, not results), unless the stack is kept for a look."""
        if not self.job.keep:
            shutil.rmtree(temp_dir(self.job), ignore_errors=True)

    def _test(self, stack: Stack) -> None:
        """The test command against *stack*, and the verdict on how it ended."""
        before = dict(stack.states)  # as the stack was when it got ready
        with self.rec.phase("tests"):
            outcome = run_suite(self.job, stack, self.ports, self.junit, self.secrets)
        self.tests_log = f"{self.job.variant.id}/tests.log"
        self.exit_code = outcome.exit_code
        self.status, self.reason = judge(outcome, self.junit, self.job)
        if self.status is Status.FAILED:
            # Tests failing against a stack that fell apart under them: the stack is the news.
            # (Asked only then: a passing run makes no extra engine call.)
            changed = _changed_while_testing(before, stack)
            if changed:
                self.status = Status.ERROR
                self.reason = "; ".join([*changed, self.reason])

    def _drive(self, stack: Stack, builds: Mapping[str, str | None]) -> None:
        """Build, up, ready, tests; then collect and down whatever happened."""
        spec = self.job.spec
        host = HostProcesses(self.job.project)  # the test command and setup steps on the host
        sampler = StatsSampler(
            stack.client, stack.container_ids, interval=spec.run.stats_interval, host=host
        )
        try:
            if self.job.cancel.is_set():
                raise Cancelled
            with self.rec.phase("build"):
                stack.build(builds, log_path=self.dir / "build.log", always=self.job.rebuild)
            # Sampling covers the stack's whole life: it follows each container from the
            # moment the stack knows it (its first health read, in `ready`) until the logs are
            # collected, just before the stack comes down.
            sampler.start()
            with self.rec.phase("up"):
                stack.up()
            with self.rec.phase("ready"):
                stack.wait_until_healthy(spec.run.up_timeout)
                # Probes of services this variant lacks (e.g. cache off) do not apply.
                probes = {svc: p for svc, p in spec.ready.items() if svc in stack.services}
                stack.wait_until_ready(probes, spec.run.ready_timeout)
            self.ports = stack.ports()
            # Asked beside the setup and the tests, which start at once; collected before
            # the logs.
            self.asking = _BackgroundProvenance(
                self.job, stack, self.compose, self.ports, self.secrets
            )
            self._setup(stack)
            self.asking.setup_over(ask_environment=True)
            if not self.job.run_tests:
                self.status = Status.PASSED  # up and ready: held for the person who asked
                return
            self._test(stack)
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except Cancelled:
            interrupted = self.job.interrupted.is_set()
            self.status = Status.INTERRUPTED if interrupted else Status.CANCELLED
            self.reason = "interrupted" if interrupted else "cancelled by fail-fast"
        finally:
            try:
                self._tear_down(stack, sampler)
            finally:  # whatever went wrong in the teardown, the sampling ends with it
                sampler.stop()

    def _tear_down(self, stack: Stack, sampler: StatsSampler) -> None:
        """Collect and down, whatever happened before. Trouble here is recorded beside what
        the variant did (its tests' report and counts, or the first cause of its failure),
        never instead of it."""
        with self.rec.phase("collect"):
            try:
                self._finish_provenance(stack)
                if self.job.run_tests:
                    self._drop_temp_dir()
                self.refused += remove_links(self.dir)  # before anything is written or read
                self._collect(stack, sampler)
            except (StackmatrixError, StackFailure, OSError) as error:
                self.teardown.append(f"collecting logs and stats failed: {_why(error)}")
            finally:  # masked even when collecting failed (a full disk, say)
                sampler.stop()
                self.refused += seal_variant_dir(self.dir, self.secrets)
        # The resource plot is drawn (CPU) while the engine tears the stack down (waiting).
        plotting = self._start_plot()
        try:
            with self.rec.phase("down"):
                # Only the removal is left: the scheduler may start another variant meanwhile
                # (released once the down has its start time: run.json never shows more than
                # --jobs variants between their start and their down). A stack that claims
                # something host-wide (a pinned port) keeps its slot until it is down: the
                # next variant's stack would claim it too.
                if not self.claims:
                    self._release()
                if not self.job.keep:
                    try:
                        stack.down()
                    except (StackmatrixError, StackFailure) as error:
                        self.teardown.append(f"teardown failed: {_why(error)}")
                    stack.keep = True  # done or failed: the context exit must not repeat it
                if self.claims:
                    LOG.debug("%s held its slot until down: %s", self.job.variant.id, self.claims)
                    self._release()
        finally:
            if plotting is not None:
                plotting.join()

    def _finish_provenance(self, stack: Stack) -> None:
        """The provenance asked beside the tests; only the images when the stack never got
        ready (a baseline still names the image that no longer starts) or the questions
        outlast their wait."""
        asking, self.asking = self.asking, None
        found = None if asking is None else asking.result(PROVENANCE_WAIT)
        if found is None:
            found = images_only(stack, self.compose, self.secrets)
        self.provenance = found

    def _release(self) -> None:
        """Tell the scheduler the slot is free; its trouble is no reason to stop the down."""
        try:
            self.job.on_released(Released(self.job.variant.id, self.status, self.exit_code))
        except Exception as error:
            LOG.warning("releasing the slot of %s failed: %s", self.job.variant.id, error)

    def _collect(self, stack: Stack, sampler: StatsSampler) -> None:
        """The services' logs, then the resource samples taken until the logs were in."""
        try:
            if stack.created:
                saved = stack.save_logs(
                    self.dir / "logs", cap=self.job.spec.run.log_cap, secrets=self.secrets
                )
                self.logs = {s: str(p.relative_to(self.job.run_dir)) for s, p in saved.items()}
        finally:
            sampler.stop()
        if sampler.samples:
            sampler.write(self.dir / "stats.json")
            self.stats_file = f"{self.job.variant.id}/stats.json"
            self.peak = sampler.peak_memory()

    def _start_plot(self) -> threading.Thread | None:
        hook = self.job.after_stats
        if self.stats_file is None or hook is None:
            return None
        stats_file, salt = self.job.run_dir / self.stats_file, self.job.variant.id

        def draw() -> None:
            try:
                hook(stats_file, salt)
            except Exception as error:  # the report draws it again, and says what went wrong
                LOG.warning("could not draw the resource plot of %s: %s", salt, error)

        thread = threading.Thread(target=draw, name="stackmatrix-plot", daemon=True)
        thread.start()
        return thread

    def _result(self) -> VariantResult:
        variant = self.job.variant
        status, reason = self.status, self.reason
        if self.refused:
            refused = "; ".join(self.refused)
            reason = f"{reason}; symbolic links not followed: {refused}".lstrip("; ")
        teardown = "; ".join(self.teardown)
        if teardown:
            self.detail = "\n".join(part for part in (self.detail, f"teardown: {teardown}") if part)
        if status not in (Status.PASSED, Status.FAILED) or not has_report(self.junit):
            message = reason or "the tests wrote no JUnit report"
            if status in (Status.PASSED, Status.FAILED) and reason:
                message = f"{reason}; the tests wrote no JUnit report"
            try:
                write_error_junit(
                    self.junit,
                    variant_id=variant.id,
                    message=redact_text(message, self.secrets),
                    detail=redact_text(self.detail, self.secrets),
                )
            except (StackmatrixError, OSError) as error:  # a full disk: the result still counts
                failed = f"writing its error report failed: {_why(error)}"
                self.detail = "\n".join(part for part in (self.detail, failed) if part)
        secrets = self.secrets
        return VariantResult.of_variant(
            variant,
            status=status,
            project=self.job.project,
            reason=redact_text(reason, secrets),
            detail=redact_text(self.detail, secrets),
            exit_code=self.exit_code,
            started_at=self.started,
            finished_at=time.time(),
            phases=self.rec.phases,
            phase_starts=self.rec.starts,
            ports=self.ports,
            tests=read_counts(self.junit) if self.junit.exists() else TestCounts(),
            peak_memory_bytes=self.peak,
            compose_file=f"{variant.id}/compose.yaml" if self.compose_path.exists() else None,
            junit=f"{variant.id}/junit.xml",
            tests_log=self.tests_log,
            setup_log=self.setup_log,
            teardown=redact_text(teardown, secrets),
            stats=self.stats_file,
            logs=self.logs,
            provenance=self.provenance,
        )
