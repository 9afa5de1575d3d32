"""Subcommands for one variant's stack held up by hand: up, env, test, exec, shell, ps, down.

From "fails only on PostgreSQL 13" to a fix: ``stackmatrix up postgres-13`` brings that
variant up exactly as ``run`` would and prints how to reach it; ``test`` runs the tests
against it as often as needed (``-- -k name -x`` goes to the test command); ``down`` removes
it. The engine side is imported when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from stackmatrix.cli.common import (
    Subparsers,
    add_out_argument,
    add_spec_arguments,
    find_variant,
    out_dir,
    read_spec,
)
from stackmatrix.errors import EngineError, Interrupted, UsageError
from stackmatrix.format import format_duration

if TYPE_CHECKING:
    from stackmatrix.engine.job import VariantJob


def _job(args: argparse.Namespace, **kwargs: object) -> VariantJob:
    from stackmatrix.engine.held import held_job  # noqa: PLC0415
    from stackmatrix.engine.preflight import ensure_engine  # noqa: PLC0415 - loaded when used
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    spec = read_spec(args)
    variant = find_variant(expand(spec), args.variant)
    ensure_engine()
    return held_job(spec, variant, out_dir(args), **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def _stopped_by_signals(job: VariantJob) -> Iterator[None]:
    """Ctrl-C or SIGTERM stop what the job runs (a build, the tests: their whole process
    group), instead of leaving it running detached; then :class:`Interrupted`."""
    from stackmatrix.engine.processes import signal_handlers  # noqa: PLC0415

    def stop(_signum: int, _frame: object) -> None:
        job.interrupted.set()
        job.cancel.set()

    with signal_handlers(stop):
        yield
    if job.interrupted.is_set():
        raise Interrupted("interrupted")


def _up(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415
    from stackmatrix.engine.suite import check_before_up  # noqa: PLC0415
    from stackmatrix.results.journal import Status  # noqa: PLC0415

    job = _job(args, run_tests=False)
    # What `run` refuses before any stack comes up, `up` refuses too (exit 2, FILE:LINE:COL).
    check_before_up(job.spec, [job.variant], run_id=job.run_id, base_env=job.base_env)
    started = time.monotonic()
    print(f"stackmatrix: bringing {job.variant.id} up as {job.project} ...", file=sys.stderr)
    with _stopped_by_signals(job):
        result = held.bring_up(job)
    if result.status is not Status.PASSED:
        print(f"stackmatrix: {job.variant.id} did not get ready: {result.reason}", file=sys.stderr)
        if result.detail:
            print(result.detail, file=sys.stderr)
        return EngineError.exit_code
    env = held.environment(job)
    env_file = held.write_env_file(job, env)
    shown = env if args.show_secrets else held.masked_environment(job, env)
    sys.stdout.write(held.export_lines(shown))
    masked = [key for key, value in shown.items() if value != env[key]]
    if masked:
        print(
            f"stackmatrix: secret values masked above ({', '.join(masked)}): --show-secrets "
            f"prints them; 'stackmatrix env {job.variant.id}' and {env_file} have them",
            file=sys.stderr,
        )
    print(
        f"stackmatrix: {job.variant.id} is up and ready in "
        f"{format_duration(time.monotonic() - started)}; its environment is above and in "
        f"{env_file}\n"
        f'  eval "$(stackmatrix env {job.variant.id})"     the tests\' variables in this shell\n'
        f"  stackmatrix test {job.variant.id} -- ARGS     run the tests against it\n"
        f"  stackmatrix shell {job.variant.id} SERVICE    a shell inside a service\n"
        f"  stackmatrix down {job.variant.id}             remove it",
        file=sys.stderr,
    )
    return 0


def _env(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415

    job = _job(args)
    env = held.environment(job)
    held.write_env_file(job, env)
    sys.stdout.write(held.export_lines(env))
    return 0


def _test(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415

    job = _job(args, extra_args=tuple(args.passed))
    with _stopped_by_signals(job):
        result = held.run_tests(job)
    counts = result.tests
    junit = job.run_dir / (result.junit or "")
    print(
        f"stackmatrix: {job.variant.id}: {result.status.value}, {counts.passed} passed, "
        f"{counts.failed} failed, {counts.errors} errors, {counts.skipped} skipped in "
        f"{format_duration(result.phases.get('tests'))}"
        + (f" ({result.reason})" if result.reason else "")
        + f"\n  report: {junit}\n  output: {job.run_dir / (result.tests_log or '')}",
        file=sys.stderr,
    )
    if result.exit_code is None:
        return EngineError.exit_code  # the tests never ran: the stack or the command failed
    # A developer at the inner loop wants the truth, experimental variant or not.
    return 0 if result.exit_code == 0 and not (counts.failed or counts.errors) else 1


def _exec(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415

    command = args.passed
    if not command:
        raise UsageError("exec: say what to run after --, e.g. -- psql -U postgres")
    return _run_in(held.compose_command(_job(args), *_exec_args(), args.service, *command))


def _shell(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415

    login = "command -v bash >/dev/null 2>&1 && exec bash || exec sh"
    return _run_in(held.compose_command(_job(args), *_exec_args(), args.service, "sh", "-c", login))


def _ps(args: argparse.Namespace) -> int:
    from stackmatrix.engine.held import held_stacks  # noqa: PLC0415
    from stackmatrix.engine.preflight import ensure_engine  # noqa: PLC0415

    ensure_engine()
    stacks = held_stacks()
    if not stacks:
        print("no stack is held up (stackmatrix up VARIANT holds one)")
        return 0
    rows = [("VARIANT", "PROJECT", "SERVICES")]
    for stack in stacks:
        services = ", ".join(
            f"{s} ({t})" for s, t in zip(stack.services, stack.states, strict=True)
        )
        rows.append((stack.variant, stack.project, services))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
    return 0


def _down(args: argparse.Namespace) -> int:
    from stackmatrix.engine import held  # noqa: PLC0415
    from stackmatrix.matrix.expand import expand  # noqa: PLC0415

    spec = read_spec(args)
    variants = expand(spec)
    if args.variant:
        chosen = [find_variant(variants, args.variant)]
    else:
        from stackmatrix.engine.preflight import ensure_engine  # noqa: PLC0415

        ensure_engine()
        up = {stack.variant for stack in held.held_stacks()}
        chosen = [v for v in variants if v.id in up]
    for variant in chosen:
        args.variant = variant.id
        job = _job(args)
        held.take_down(job)
        print(f"stackmatrix: {variant.id} is down ({job.project} removed)", file=sys.stderr)
    if not chosen:
        print("stackmatrix: no stack of this matrix is held up", file=sys.stderr)
    return 0


def _exec_args() -> list[str]:
    # A terminal gets a terminal; a pipe or a CI log gets plain streams.
    return ["exec"] if sys.stdin.isatty() and sys.stdout.isatty() else ["exec", "-T"]


def _run_in(command: list[str]) -> int:
    import subprocess  # noqa: PLC0415 - 8 ms that the parser (--help) does not need

    try:
        return subprocess.run(command, check=False, env=os.environ).returncode
    except OSError as error:
        raise EngineError(f"cannot run docker compose: {error.strerror or error}") from None


def register_held(subparsers: Subparsers) -> None:
    """``up``, ``env``, ``test``, ``exec``, ``shell``, ``ps`` and ``down``."""

    def variant_command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("variant", metavar="VARIANT", help="a variant id, as 'list' shows it")
        add_spec_arguments(parser)
        add_out_argument(parser)
        return parser

    up = variant_command("up", "bring one variant's stack up and hold it; print its environment")
    up.add_argument(
        "--show-secrets",
        action="store_true",
        help="print secret values as they are (masked by default: terminals end up in CI logs)",
    )
    up.set_defaults(handler=_up)
    variant_command("env", "print the tests' environment of a held stack (export lines)"
                    ).set_defaults(handler=_env)  # fmt: skip
    test = variant_command("test", "run the test command against a held stack [-- ARGS]")
    test.set_defaults(handler=_test, takes_arguments=True)
    run_in = variant_command("exec", "run a command inside a service of a held stack -- CMD")
    run_in.add_argument("service", metavar="SERVICE")
    run_in.set_defaults(handler=_exec, takes_arguments=True)
    shell = variant_command("shell", "a shell inside a service of a held stack")
    shell.add_argument("service", metavar="SERVICE")
    shell.set_defaults(handler=_shell)
    subparsers.add_parser("ps", help="list the stacks held up").set_defaults(handler=_ps)
    down = subparsers.add_parser("down", help="remove held stacks (one, or all of the matrix)")
    down.add_argument("variant", nargs="?", metavar="VARIANT")
    add_spec_arguments(down)
    add_out_argument(down)
    down.set_defaults(handler=_down)
