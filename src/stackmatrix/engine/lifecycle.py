"""The life of one variant: render, build, up, ready, tests, collect, down -> a VariantResult."""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackmatrix.compose.render import (
    dump_compose,
    expand_template,
    holds_secrets,
    load_compose,
    project_name,
    render,
)
from stackmatrix.engine.processes import ProcessOutcome, run_logged
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.engine.stats import StatsSampler
from stackmatrix.errors import EngineError
from stackmatrix.junit.write import read_counts, write_error_junit
from stackmatrix.matrix.expand import Variant
from stackmatrix.redact import compose_secrets, redact_file, redact_text, secret_values
from stackmatrix.results.files import write_private_if
from stackmatrix.results.journal import Status, TestCounts, VariantResult
from stackmatrix.spec.load import Spec
from stackmatrix.spec.templates import FAILED_ANYWHERE, FAILED_WORD, TemplateError
from stackmatrix.spec.values import env_name, scalar_text

PhaseCallback = Callable[[str, str], None]  # (variant id, phase)
StatsHook = Callable[[Path, str], object]  # (stats.json of a variant, variant id)
LOG = logging.getLogger("stackmatrix")
IN_SERVICE_JUNIT = "/tmp/stackmatrix-junit.xml"  # noqa: S108 - a path inside the test container


@dataclass(frozen=True)
class VariantJob:
    """Everything one variant needs; shared events let the runner stop it."""

    spec: Spec
    variant: Variant
    run_id: str
    run_dir: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    interrupted: threading.Event = field(default_factory=threading.Event)
    keep: bool = False
    on_phase: PhaseCallback = lambda _variant, _phase: None
    base_env: Mapping[str, str] | None = None  # the tests' environment; default os.environ
    rebuild: bool = False  # build images even when their tag exists
    after_stats: StatsHook | None = None  # run beside teardown once stats.json is written
    run_tests: bool = True  # False: bring the stack up and hold it there (`stackmatrix up`)
    extra_args: tuple[str, ...] = ()  # appended to the test command (`-- -k name -x`)
    # `run --failed-tests`: the testcases to run again, for `{{ failed }}`; None: all of them
    failed_tests: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # on every object, beside the run's

    @property
    def directory(self) -> Path:
        """This variant's folder inside the run directory."""
        return self.run_dir / self.variant.id

    @property
    def project(self) -> str:
        """The compose project name."""
        return project_name(self.spec, self.variant, self.run_id)


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


class _VariantRun:
    """The mutable bookkeeping of one variant while it runs; it ends as a VariantResult."""

    def __init__(self, job: VariantJob) -> None:
        self.job = job
        self.dir = job.directory
        self.rec = _Recorder(job)
        self.started = time.time()
        self.junit = self.dir / "junit.xml"
        self.compose_path = self.dir / "compose.yaml"
        self.status, self.reason, self.detail = Status.ERROR, "", ""
        self.exit_code: int | None = None
        self.ports: dict[str, dict[str, str]] = {}
        self.logs: dict[str, str] = {}
        self.peak: int | None = None
        self.stats_file: str | None = None
        self.tests_log: str | None = None
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
                self.secrets.extend(compose_secrets(data, names))
                private = holds_secrets(data, names)
                write_private_if(self.compose_path, dump_compose(data), private=private)
            services: Mapping[str, Any] = data.get("services", {})
            stack = self._stack(list(services))
            with stack:
                builds = {n: cfg.get("image") for n, cfg in services.items() if "build" in cfg}
                self._drive(stack, builds)
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except EngineError as error:
            self.status, self.reason = Status.ERROR, str(error)
        return self._result()

    def _stack(self, services: list[str]) -> Stack:
        return Stack(
            project=self.job.project,
            compose_file=self.compose_path,
            project_directory=self.job.spec.path.parent,
            services=services,
            cancel=self.job.cancel,
            down_timeout=self.job.spec.run.down_timeout,
            keep=self.job.keep,
        )

    def test_held(self) -> VariantResult:
        """Run the tests against this variant's stack, which is already up (``stackmatrix
        test``): no render, no bring-up, no teardown."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.junit.unlink(missing_ok=True)
        stack = self._stack([])
        try:
            self.secrets.extend(
                compose_secrets(load_compose(self.compose_path), self.job.spec.secrets)
            )
            stack.refresh()
            self.ports = stack.ports()
            with self.rec.phase("tests"):
                outcome = _run_tests(self.job, stack, self.ports, self.junit, self.secrets)
            self.tests_log = f"{self.job.variant.id}/tests.log"
            self.exit_code = outcome.exit_code
            self.status, self.reason = _judge(outcome, self.junit, self.job)
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except Cancelled:
            self.status, self.reason = Status.INTERRUPTED, "interrupted"
        except EngineError as error:
            self.status, self.reason = Status.ERROR, str(error)
        for written in (self.junit, self.dir / "tests.log"):
            redact_file(written, self.secrets)
        return self._result()

    def _drive(self, stack: Stack, builds: Mapping[str, str | None]) -> None:
        """Build, up, ready, tests; then collect and down whatever happened."""
        spec = self.job.spec
        sampler = StatsSampler(stack.client, stack.container_ids, interval=spec.run.stats_interval)
        try:
            if self.job.cancel.is_set():
                raise Cancelled
            with self.rec.phase("build"):
                stack.build(builds, log_path=self.dir / "build.log", always=self.job.rebuild)
            with self.rec.phase("up"):
                stack.up()
            # Sampling starts with the containers, so the first (slow) sample is in before
            # the tests begin and the tests' whole span is covered.
            with sampler:
                with self.rec.phase("ready"):
                    stack.wait_until_healthy(spec.run.up_timeout)
                    # Probes of services this variant lacks (e.g. cache off) do not apply.
                    probes = {svc: p for svc, p in spec.ready.items() if svc in stack.services}
                    stack.wait_until_ready(probes, spec.run.ready_timeout)
                self.ports = stack.ports()
                if not self.job.run_tests:
                    self.status = Status.PASSED  # up and ready: held for the person who asked
                    return
                with self.rec.phase("tests"):
                    outcome = _run_tests(self.job, stack, self.ports, self.junit, self.secrets)
            self.tests_log = f"{self.job.variant.id}/tests.log"
            self.exit_code = outcome.exit_code
            self.status, self.reason = _judge(outcome, self.junit, self.job)
        except StackFailure as failure:
            self.status, self.reason, self.detail = Status.ERROR, failure.reason, failure.detail
        except Cancelled:
            interrupted = self.job.interrupted.is_set()
            self.status = Status.INTERRUPTED if interrupted else Status.CANCELLED
            self.reason = "interrupted" if interrupted else "cancelled by fail-fast"
        finally:
            with self.rec.phase("collect"):
                self._collect(stack, sampler)
                for written in (self.junit, self.dir / "tests.log", *self.dir.glob("logs/*.log")):
                    redact_file(written, self.secrets)
            # The resource plot is drawn (CPU) while the engine tears the stack down (waiting).
            plotting = self._start_plot()
            try:
                with self.rec.phase("down"):
                    if not self.job.keep:
                        stack.down()
                        stack.keep = True  # done: the context exit must not repeat it
            finally:
                if plotting is not None:
                    plotting.join()

    def _collect(self, stack: Stack, sampler: StatsSampler) -> None:
        if stack.created:
            saved = stack.save_logs(self.dir / "logs")
            self.logs = {s: str(p.relative_to(self.job.run_dir)) for s, p in saved.items()}
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
        if status not in (Status.PASSED, Status.FAILED) or not _has_report(self.junit):
            message = reason or "the tests wrote no JUnit report"
            if status in (Status.PASSED, Status.FAILED) and reason:
                message = f"{reason}; the tests wrote no JUnit report"
            write_error_junit(
                self.junit,
                variant_id=variant.id,
                message=redact_text(message, self.secrets),
                detail=redact_text(self.detail, self.secrets),
            )
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
            stats=self.stats_file,
            logs=self.logs,
        )


def _has_report(junit: Path) -> bool:
    return junit.is_file() and junit.stat().st_size > 0


def _judge(outcome: ProcessOutcome, junit: Path, job: VariantJob) -> tuple[Status, str]:
    """Status and reason from how the test command ended and what its report says."""
    if outcome.cancelled:
        raise Cancelled
    if outcome.start_error:
        return Status.ERROR, outcome.start_error
    timeout = job.spec.tests.timeout
    if outcome.timed_out:
        return Status.FAILED, f"tests timed out after {timeout:g} s; their process group was killed"
    counts = read_counts(junit) if _has_report(junit) else None
    if outcome.exit_code != 0:
        bad = f" ({counts.failed} failed, {counts.errors} errors)" if counts else ""
        return Status.FAILED, f"tests exited with code {outcome.exit_code}{bad}"
    if counts and (counts.failed or counts.errors):
        return (
            Status.FAILED,
            f"exit code 0 but the report has {counts.failed} failed, {counts.errors} errors",
        )
    return Status.PASSED, ""


def tests_environment(
    job: VariantJob,
    ports: Mapping[str, Mapping[str, str]],
    junit: str,
    context: Mapping[str, Any],
) -> dict[str, str]:
    """The variables the tests get on top of the caller's environment (DESIGN.md)."""
    variant = job.variant
    env = {
        "STACKMATRIX_VARIANT": variant.id,
        "STACKMATRIX_RUN_ID": job.run_id,
        "STACKMATRIX_PROJECT": job.project,
        "STACKMATRIX_JUNIT": junit,
    }
    for service, published in ports.items():
        for port, address in published.items():
            env[env_name(service, port.replace("/", "_"))] = address
    for key, value in variant.values.items():
        env[env_name("axis", key)] = scalar_text(value)
    for key, template in job.spec.tests.env.items():
        env[key] = expand_template(template, context)
    return env


def environment_for(job: VariantJob, ports: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The variables the tests of *job* get on the host, for a stack with these *ports*."""
    junit = str(job.directory / "junit.xml")
    return tests_environment(job, ports, junit, _template_context(job, ports, junit))


def _template_context(
    job: VariantJob, ports: Mapping[str, Mapping[str, str]], junit: str
) -> dict[str, Any]:
    return {
        "ports": {svc: dict(p) for svc, p in ports.items()},
        "matrix": {k: scalar_text(v) for k, v in job.variant.values.items()},
        "variant": job.variant.id,
        "run_id": job.run_id,
        "junit": junit,
        "failed": " ".join(job.failed_tests or ()),
    }


def _run_tests(
    job: VariantJob,
    stack: Stack,
    ports: Mapping[str, Mapping[str, str]],
    junit: Path,
    secrets: list[str],
) -> ProcessOutcome:
    """Run the test command; *secrets* gains the secret values of its expanded environment."""
    tests = job.spec.tests
    in_service = tests.where != "host"
    junit_target = IN_SERVICE_JUNIT if in_service else str(junit)
    try:
        context = _template_context(job, ports, junit_target)
        extra = tests_environment(job, ports, junit_target, context)
        argv = _command(job, context)
    except (KeyError, ValueError, TemplateError) as error:
        raise StackFailure(f"cannot prepare the test command: {error}") from error
    shell = tests.shell and not in_service
    if in_service:
        # `-e NAME` alone: compose takes the value from its own environment, so no secret
        # ever sits on a command line (readable by any local user in /proc).
        env_flags = [flag for key in extra for flag in ("-e", key)]
        if tests.shell and isinstance(tests.command, str):
            argv = ["sh", "-c", argv[0]]
        argv = [
            "docker", "compose", "-p", job.project, "-f", str(stack.compose_file),
            "exec", "-T", *env_flags, tests.where, *argv,
        ]  # fmt: skip
    env = {**(os.environ if job.base_env is None else job.base_env), **extra}
    secrets.extend(secret_values(extra, job.spec.secrets))
    outcome = run_logged(
        argv,
        log_path=job.directory / "tests.log",
        env=env,
        cwd=tests.workdir,
        timeout=tests.timeout,
        cancel=job.cancel,
        secrets=secrets,
        shell=shell,
    )
    if in_service and not outcome.cancelled:
        _copy_out(stack, tests.where, junit)
    return outcome


def _command(job: VariantJob, context: Mapping[str, Any]) -> list[str]:
    """The test command with its templates expanded, the testcases to run again in place of
    ``{{ failed }}`` (or after it, when it has none), and the extra arguments at the end."""
    tests = job.spec.tests
    failed = list(job.failed_tests or ())
    command = tests.rerun if job.failed_tests is not None and tests.rerun else tests.command
    if isinstance(command, str):  # `shell: true`: one command line for `sh -c`
        line = command
        if job.failed_tests is not None and not FAILED_ANYWHERE.search(line):
            line += " {{ failed }}"
        # Every value goes in quoted, as one word, never as shell code; each testcase too.
        pieces = (expand_template(piece, context, quote=shlex.quote)
                  for piece in FAILED_ANYWHERE.split(line))  # fmt: skip
        line = shlex.join(failed).join(pieces)
        return [f"{line} {shlex.join(job.extra_args)}" if job.extra_args else line]
    argv: list[str] = []
    for part in command:
        if FAILED_WORD.match(part):
            argv.extend(failed)
        else:
            argv.append(expand_template(part, context))
    if job.failed_tests is not None and not any(FAILED_WORD.match(p) for p in command):
        argv.extend(failed)
    return [*argv, *job.extra_args]


def _copy_out(stack: Stack, service: str, junit: Path) -> None:
    state = stack.refresh().get(service)
    if state is None or not state.container_id:
        return
    try:
        stack.client.copy((state.container_id, IN_SERVICE_JUNIT), junit)
    except Exception:
        junit.unlink(missing_ok=True)
