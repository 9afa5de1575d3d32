"""The test suite against a stack: its command (templates, `${{ failed }}`, extra arguments),
its environment, where it runs (the host or a service), the setup steps before it, and the
verdict on how it ended."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from python_on_whales.exceptions import DockerException

from stackmatrix.compose.merge import published_ports
from stackmatrix.compose.render import expand_template, render
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.processes import ProcessOutcome, run_logged
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.errors import EngineError, SpecError
from stackmatrix.junit.write import read_counts
from stackmatrix.matrix.expand import Variant
from stackmatrix.redact import secret_values
from stackmatrix.results.files import open_new
from stackmatrix.results.journal import Status
from stackmatrix.spec.checks import display_path, spec_location, template_texts
from stackmatrix.spec.models import SetupStep, Spec, split_command
from stackmatrix.spec.source import KeyPath
from stackmatrix.spec.templates import (
    FAILED_ANYWHERE,
    FAILED_WORD,
    TEMPLATE,
    TemplateError,
    references,
)
from stackmatrix.spec.values import env_name, scalar_text

LOG = logging.getLogger("stackmatrix")


IN_SERVICE_JUNIT = "/tmp/stackmatrix-junit.xml"  # noqa: S108 - a path inside the test container
SETUP_LOG = "setup.log"
TAIL_LINES = 30  # of a failed setup step's output, in the variant's detail


def temp_dir(job: VariantJob) -> Path:
    """The variant's private TMPDIR on the host: ``<variant dir>/tmp``."""
    return job.directory.absolute() / "tmp"


def has_report(junit: Path) -> bool:
    return junit.is_file() and junit.stat().st_size > 0


def judge(outcome: ProcessOutcome, junit: Path, job: VariantJob) -> tuple[Status, str]:
    """Status and reason from how the test command ended and what its report says."""
    if outcome.cancelled:
        raise Cancelled
    if outcome.start_error:
        return Status.ERROR, outcome.start_error
    timeout = job.spec.tests.timeout
    if outcome.timed_out:
        return Status.FAILED, f"tests timed out after {timeout:g} s; their process group was killed"
    counts = read_counts(junit) if has_report(junit) else None
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
    if "variant_dir" in context:
        env["STACKMATRIX_VARIANT_DIR"] = str(context["variant_dir"])
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
    job: VariantJob, ports: Mapping[str, Mapping[str, str]], junit: str, *, host: bool = True
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "ports": {svc: dict(p) for svc, p in ports.items()},
        "matrix": {k: scalar_text(v) for k, v in job.variant.values.items()},
        "variant": job.variant.id,
        "run_id": job.run_id,
        "junit": junit,
        "failed": " ".join(job.failed_tests or ()),
    }
    if host:  # a folder on the host means nothing inside a service's container
        context["variant_dir"] = str(job.directory.absolute())
    return context


def run_suite(
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
        context = _template_context(job, ports, junit_target, host=not in_service)
        extra = tests_environment(job, ports, junit_target, context)
        argv = _command(job, context)
    except (KeyError, ValueError, TemplateError) as error:
        raise StackFailure(f"cannot prepare the test command: {error}") from error
    outcome = _run_command(
        job, stack, argv, extra, where=tests.where, shell=tests.shell,
        log_path=job.directory / "tests.log", timeout=tests.timeout, secrets=secrets,
    )  # fmt: skip
    if in_service and not outcome.cancelled:
        _copy_out(stack, tests.where, junit)
    return outcome


def _append_unfollowed(log: Path, part: Path) -> None:
    """Append *part* (a step's output) to *log*, neither read nor written through a link."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        source = os.open(part, os.O_RDONLY | flags)
    except OSError:
        return  # no output, or a link the step left: nothing to take
    with (
        os.fdopen(source, "rb") as read,
        os.fdopen(
            os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | flags, 0o644), "ab"
        ) as whole,
    ):
        shutil.copyfileobj(read, whole)
    part.unlink(missing_ok=True)


def _read_unfollowed(path: Path) -> str:
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as read:
            return read.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_setup(
    job: VariantJob, stack: Stack, ports: Mapping[str, Mapping[str, str]], secrets: list[str]
) -> None:
    """Run the spec's setup steps in order, their output into ``setup.log``; a step that does
    not end with exit code 0 is a StackFailure with the tail of its output."""
    log = job.directory / SETUP_LOG
    part = job.directory / f".{SETUP_LOG}.part"
    os.close(open_new(log))  # empty, and a regular file: never through a link
    steps = job.spec.tests.setup
    for number, step in enumerate(steps, start=1):
        name = f"setup step {number}" if len(steps) > 1 else "setup"
        try:
            extra, argv = _setup_command(job, step, ports)
        except (KeyError, ValueError, TemplateError) as error:
            raise StackFailure(f"cannot prepare the {name} command: {error}") from error
        outcome = _run_command(
            job, stack, argv, extra, where=step.where, shell=step.shell,
            log_path=part, timeout=step.timeout, secrets=secrets,
        )  # fmt: skip
        _append_unfollowed(log, part)
        if outcome.cancelled:
            raise Cancelled
        problem = _setup_problem(outcome, step)
        if problem:
            tail = _read_unfollowed(log).splitlines()[-TAIL_LINES:]
            raise StackFailure(f"{name} failed: {problem}", "\n".join(tail))


def _setup_problem(outcome: ProcessOutcome, step: SetupStep) -> str:
    if outcome.start_error:
        return outcome.start_error
    if outcome.timed_out:
        return f"timed out after {step.timeout:g} s; its process group was killed"
    if outcome.exit_code != 0:
        return f"exited with code {outcome.exit_code}"
    return ""


def _setup_command(
    job: VariantJob, step: SetupStep, ports: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], list[str]]:
    """The extra environment and the expanded command of one setup step."""
    context = _template_context(job, ports, "", host=step.where == "host")
    context.pop("junit")
    context.pop("failed")
    extra = tests_environment(job, ports, "", context)
    extra.pop("STACKMATRIX_JUNIT")
    for key, template in step.env.items():
        extra[key] = expand_template(template, context)
    if isinstance(step.command, str):
        return extra, [expand_template(step.command, context, quote=shlex.quote)]
    return extra, [expand_template(word, context) for word in step.command]


def _run_command(
    job: VariantJob,
    stack: Stack,
    argv: list[str],
    extra: dict[str, str],
    *,
    where: str,
    shell: bool,
    log_path: Path,
    timeout: float | None,
    secrets: list[str],
) -> ProcessOutcome:
    """Run a command of the tests (or of a setup step) on the host or in service *where*.

    On the host it gets the variant's private ``TMPDIR``; in a service, every variable of
    *extra* goes in by name only (``-e NAME``): compose takes the value from its own
    environment, so no secret ever sits on a command line (readable in /proc).
    """
    if where != "host":
        env_flags = [flag for key in extra for flag in ("-e", key)]
        if shell:
            argv = ["sh", "-c", argv[0]]
        argv = [
            "docker", "compose", "-p", job.project, "-f", str(stack.compose_file),
            "exec", "-T", *env_flags, where, *argv,
        ]  # fmt: skip
    else:
        tmp = temp_dir(job)
        tmp.mkdir(parents=True, exist_ok=True)
        extra = {**extra, "TMPDIR": str(tmp)}
    env = {**(os.environ if job.base_env is None else job.base_env), **extra}
    secrets.extend(secret_values(extra, job.spec.secrets))
    return run_logged(
        argv,
        log_path=log_path,
        env=env,
        cwd=job.spec.tests.workdir,
        timeout=timeout,
        cancel=job.cancel,
        secrets=secrets,
        shell=shell and where == "host",
    )


def _command(job: VariantJob, context: Mapping[str, Any]) -> list[str]:
    """The test command with its templates expanded, the testcases to run again in place of
    ``${{ failed }}`` (or after it, when it has none), and the extra arguments at the end."""
    tests = job.spec.tests
    failed = list(job.failed_tests or ())
    command = tests.rerun if job.failed_tests is not None and tests.rerun else tests.command
    if isinstance(command, str):  # `shell: true`: one command line for `sh -c`
        line = command
        if job.failed_tests is not None and not FAILED_ANYWHERE.search(line):
            line += " ${{ failed }}"
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
    if job.failed_tests is not None and not any(FAILED_ANYWHERE.search(p) for p in command):
        argv.extend(failed)
    return [*argv, *job.extra_args]


def failed_tests_warning(spec: Spec) -> str:
    """What ``run --failed-tests`` warns about when it can only add the testcases after the
    test command's own arguments (no ``tests.rerun``, no ``${{ failed }}`` in the command):
    those may name a folder or more tests, which then run too. Empty when there is no need."""
    tests = spec.tests
    if tests.rerun:
        return ""
    parts = [tests.command] if isinstance(tests.command, str) else tests.command
    if any(FAILED_ANYWHERE.search(part) for part in parts):
        return ""
    where = spec_location(spec, ("tests", "command"))
    return (
        f"{where} has no ${{{{ failed }}}} and there is no tests.rerun: the failed testcases"
        " are added after the command's own arguments, which may run more than them"
        " (set tests.rerun, or put ${{ failed }} in tests.command; see docs/matrix.md)"
    )


def _copy_out(stack: Stack, service: str, junit: Path) -> None:
    state = stack.refresh().get(service)
    if state is None or not state.container_id:
        return
    try:
        stack.copy_out(state.container_id, IN_SERVICE_JUNIT, junit)
    except (DockerException, EngineError):  # no report there: the variant says so
        junit.unlink(missing_ok=True)


# First words of a shell command line that are the shell's own (or set variables): nothing
# to look for on PATH.
_SHELL_WORDS = frozenset(
    [
        "!",
        ".",
        ":",
        "[",
        "{",
        "(",
        "alias",
        "builtin",
        "case",
        "cd",
        "command",
        "eval",
        "exec",
        "export",
        "false",
        "for",
        "if",
        "read",
        "set",
        "source",
        "test",
        "time",
        "trap",
        "true",
        "ulimit",
        "umask",
        "unset",
        "until",
        "wait",
        "while",
    ]
)
_SHELL_SYNTAX = frozenset("$`;|&<>()*?[]{}~")


def check_before_up(
    spec: Spec,
    variants: Sequence[Variant],
    *,
    run_id: str,
    base_env: Mapping[str, str] | None = None,
    rerun: bool = False,
) -> None:
    """Problems a run would only meet once its stacks are up, found before any comes up: a
    host command that does not exist, a ``${{ ports.S.P }}`` that a variant's rendered
    compose file does not publish, a ``tests.workdir`` that does not exist (yet: ``list`` and
    ``render`` never need it). Raises SpecError, each problem at FILE:LINE:COL."""
    workdir = spec.tests.workdir
    if not workdir.is_dir():  # every host command would fail to start there
        where = spec_location(spec, ("tests", "workdir"))
        raise SpecError([f"{where}: directory not found: {display_path(workdir)}"])
    problems = [*_missing_commands(spec, variants, run_id, base_env, rerun=rerun)]
    problems += _unpublished_ports(spec, variants, run_id, rerun=rerun)
    if problems:
        raise SpecError(problems)


def _host_commands(spec: Spec, *, rerun: bool) -> Iterator[tuple[KeyPath, str]]:
    """``(key path, first word)`` of every command that runs on the host."""
    tests = spec.tests
    commands: list[tuple[KeyPath, tuple[str, ...] | str, str]] = []
    if rerun and tests.rerun is not None:
        commands.append((("tests", "rerun"), tests.rerun, tests.where))
    else:
        commands.append((("tests", "command"), tests.command, tests.where))
    for index, step in enumerate(tests.setup):
        commands.append((("tests", "setup", index, "command"), step.command, step.where))
    for loc, command, where in commands:
        if where != "host":
            continue  # the service's container: nothing to look at before it is up
        if isinstance(command, tuple):
            yield (*loc, 0), command[0]
            continue
        try:
            words = split_command(command)
        except ValueError:
            continue
        first = words[0] if words else ""
        plain = not TEMPLATE.search(first) and (_SHELL_SYNTAX & set(first) or "=" in first)
        if first and first not in _SHELL_WORDS and not plain:
            yield loc, first


def _missing_commands(
    spec: Spec,
    variants: Sequence[Variant],
    run_id: str,
    base_env: Mapping[str, str] | None,
    *,
    rerun: bool,
) -> Iterator[str]:
    env = os.environ if base_env is None else base_env
    search = env.get("PATH", os.defpath)
    workdir = spec.tests.workdir
    for loc, word in _host_commands(spec, rerun=rerun):
        seen: set[str] = set()
        for variant in variants:
            context = {
                "matrix": {k: scalar_text(v) for k, v in variant.values.items()},
                "variant": variant.id,
                "run_id": run_id,
            }
            try:
                name = expand_template(word, context)
            except TemplateError:
                break  # it names a port or a file known only later
            if name in seen:
                continue
            seen.add(name)
            why = _not_runnable(name, workdir, search)
            if why:
                where = spec_location(spec, loc, word)
                of = f" (variant {variant.id})" if name != word else ""
                yield f"{where}: {why}{of}"


def _not_runnable(name: str, workdir: Path, search: str) -> str:
    """Why command *name* cannot start from *workdir* with this PATH; empty if it can."""
    if "/" in name:
        path = workdir / Path(name).expanduser()
        if not path.is_file():
            return f"command {name!r} not found: no such file (from {workdir})"
        if not os.access(path, os.X_OK):
            return f"command {name!r} is not executable"
        return ""
    if shutil.which(name, path=search) is None:
        return f"command {name!r} not found on PATH"
    return ""


def _unpublished_ports(
    spec: Spec, variants: Sequence[Variant], run_id: str, *, rerun: bool
) -> list[str]:
    texts = [
        item
        for item in template_texts(spec)
        if rerun or item.loc[:2] != ("tests", "rerun")
        if not rerun or spec.tests.rerun is None or item.loc[:2] != ("tests", "command")
    ]
    wanted = [
        (item, expression, ref)
        for item in texts
        for expression, ref in references(item.text, compose=False)
        if ref is not None and ref.kind == "ports"
    ]
    if not wanted:
        return []
    found: dict[tuple[KeyPath, str, str], list[str]] = {}
    for variant in variants:
        document = render(spec, variant, run_id=run_id)
        services = document.get("services") or {}
        for item, expression, ref in wanted:
            if ref.service not in services:
                if "include" in document:
                    continue  # services of an included file are compose's to know
                why = f"service {ref.service!r} is not in the variant"
            else:
                published = published_ports(services[ref.service])
                if published is None or ref.port in published:
                    continue
                ports = ", ".join(map(str, sorted(published))) or "none"
                why = f"service {ref.service!r} publishes no port {ref.port} (published: {ports})"
            found.setdefault((item.loc, expression, why), []).append(variant.id)
    problems = []
    for (loc, expression, why), ids in found.items():
        which = "every variant" if len(ids) == len(variants) else "variants " + ", ".join(ids)
        if len(ids) == 1 and len(variants) > 1:
            which = f"variant {ids[0]}"
        problems.append(f"{spec_location(spec, loc, expression)}: {expression}: {why} in {which}")
    return problems
