"""Stacks held up for a person: one variant brought up exactly as a run would, left up under a
stable project name, reached, tested again and again, and taken down when asked.

A held stack's objects carry the run label ``held`` (no run directory knows it, so a plain
``gc`` leaves them) and ``io.stackmatrix.held=true``; its files live in ``OUT/held/<id>/``.
"""

from __future__ import annotations

import shlex
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from python_on_whales.exceptions import DockerException

from stackmatrix.compose import labels
from stackmatrix.compose.render import load_compose
from stackmatrix.engine.docker import (
    docker_client,
    docker_command,
    error_text,
    remove_by_label,
    run_engine,
)
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.lifecycle import run_tests_on_held_stack, run_variant
from stackmatrix.engine.stack import Stack
from stackmatrix.engine.suite import environment_for
from stackmatrix.errors import EngineError, UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.redact import compose_secrets, redact_env, redact_text, secret_values
from stackmatrix.results.files import write_private_if
from stackmatrix.results.journal import Status, VariantResult
from stackmatrix.spec.models import Spec

HELD_RUN_ID = "held"
ENV_FILE = "stack.env"


@dataclass(frozen=True)
class HeldStack:
    """A held stack as the engine lists it."""

    project: str
    variant: str
    services: tuple[str, ...]
    states: tuple[str, ...]  # one per container: running, exited, ...


def held_job(
    spec: Spec,
    variant: Variant,
    out_dir: Path,
    *,
    run_tests: bool = True,
    extra_args: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
) -> VariantJob:
    """The job of *variant*'s held stack: the same render, build and readiness as a run."""
    return VariantJob(
        spec=spec,
        variant=variant,
        run_id=HELD_RUN_ID,
        run_dir=out_dir / "held",
        cancel=cancel or threading.Event(),
        keep=True,
        run_tests=run_tests,
        extra_args=extra_args,
        labels={labels.HELD: "true"},
    )


def bring_up(job: VariantJob) -> VariantResult:
    """Bring the stack up and hold it; a stack that does not get ready is taken down again."""
    result = run_variant(job)
    if result.status is not Status.PASSED:  # an experimental variant's failure is a failure here
        take_down(job)
    return result


def environment(job: VariantJob) -> dict[str, str]:
    """The tests' environment of a held stack, with its ports as the engine has them now."""
    stack = _stack(job)
    stack.refresh()
    if not stack.states:
        raise UsageError(f"{job.variant.id} is not up: run 'stackmatrix up {job.variant.id}' first")
    return environment_for(job, stack.ports())


def write_env_file(job: VariantJob, env: dict[str, str]) -> Path:
    """``OUT/held/<id>/stack.env``: the environment as a ``.env`` file (private: it may hold
    secrets)."""
    path = job.directory / ENV_FILE
    text = "".join(f"{key}={_env_value(value)}\n" for key, value in env.items())
    write_private_if(path, text, private=True)
    return path


def masked_environment(job: VariantJob, env: dict[str, str]) -> dict[str, str]:
    """*env* as it may be shown in a terminal or a CI log: the values of secret variables
    masked, and every secret of the stack (its compose file's, the tests') masked wherever
    it appears in another value (a DSN, say)."""
    names = job.spec.secrets
    secrets = secret_values(env, names)
    compose = job.directory / "compose.yaml"
    if compose.is_file():
        secrets += compose_secrets(load_compose(compose), names, project_dir=job.spec.path.parent)
    return {key: redact_text(value, secrets) for key, value in redact_env(env, names).items()}


def export_lines(env: dict[str, str]) -> str:
    """``export NAME=value`` lines a shell can ``eval``."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def run_tests(job: VariantJob) -> VariantResult:
    """The test command (with ``job.extra_args``) against the held stack."""
    _compose_file(job)
    environment(job)  # says clearly when the stack is not up
    return run_tests_on_held_stack(job)


def compose_command(job: VariantJob, *args: str) -> list[str]:
    """``docker compose`` for the held stack's project, then *args*."""
    return ["docker", "compose", "-p", job.project, "-f", str(_compose_file(job)), *args]


def _compose_file(job: VariantJob) -> Path:
    compose = job.directory / "compose.yaml"
    if not compose.is_file():
        raise UsageError(
            f"{job.variant.id} is not held up from {job.run_dir.parent}"
            f" (no {compose}): run 'stackmatrix up {job.variant.id}' first"
        )
    return compose


def take_down(job: VariantJob) -> None:
    """``down -v --remove-orphans`` of the held stack (and anything else with its project)."""
    _stack(job).down()
    remove_by_label(f"{labels.COMPOSE_PROJECT}={job.project}")
    (job.directory / ENV_FILE).unlink(missing_ok=True)


def held_stacks() -> list[HeldStack]:
    """Every held stack on the engine, whatever matrix it came from."""
    docker = docker_command(docker_client())
    fields = (labels.COMPOSE_PROJECT, labels.VARIANT, labels.COMPOSE_SERVICE)
    template = "\t".join(f'{{{{.Label "{name}"}}}}' for name in fields) + "\t{{.State}}"
    try:
        out = run_engine(
            [*docker, "container", "ls", "--all", "--filter",
             f"label={labels.HELD}=true", "--format", template],
            what="`docker container ls`",
        )  # fmt: skip
    except DockerException as error:
        raise EngineError(f"cannot list the held stacks: {error_text(error)}") from error
    found: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for line in out.splitlines():
        project, variant, service, state = [*line.split("\t"), "", "", "", ""][:4]
        found[(project, variant)].append((service, state))
    return [
        HeldStack(
            project, variant, tuple(s for s, _ in sorted(rows)), tuple(t for _, t in sorted(rows))
        )
        for (project, variant), rows in sorted(found.items())
    ]


def _stack(job: VariantJob) -> Stack:
    return Stack(
        project=job.project,
        compose_file=job.directory / "compose.yaml",
        project_directory=job.spec.path.parent,
        services=[],
        cancel=job.cancel,
        down_timeout=job.spec.run.down_timeout,
        keep=True,
    )


def _env_value(value: str) -> str:
    # Single quotes: compose's .env reader and a shell's `.` take them literally ($ included).
    if value and all(c.isalnum() or c in "@%+=:,./-_" for c in value):
        return value
    return shlex.quote(value)
