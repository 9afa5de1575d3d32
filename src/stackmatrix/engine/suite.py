"""The test suite against a stack: its command (templates, `{{ failed }}`, extra arguments),
its environment, where it runs (the host or a service) and the verdict on how it ended."""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stackmatrix.compose.render import expand_template
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.processes import ProcessOutcome, run_logged
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.junit.write import read_counts
from stackmatrix.redact import secret_values
from stackmatrix.results.journal import Status
from stackmatrix.spec.templates import FAILED_ANYWHERE, FAILED_WORD, TemplateError
from stackmatrix.spec.values import env_name, scalar_text

LOG = logging.getLogger("stackmatrix")


IN_SERVICE_JUNIT = "/tmp/stackmatrix-junit.xml"  # noqa: S108 - a path inside the test container


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
    if job.failed_tests is not None and not any(FAILED_ANYWHERE.search(p) for p in command):
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
