"""What a variant really ran: each service's image and version, and the tests' environment.

Three questions, each asked when its answer is there: :func:`images_only` (the images the
stack knows or its rendered compose document names, also after a failed ``up``),
:func:`service_provenance` (those images and each service's own version, once the stack is
ready) and :func:`test_environment` (the tests' Python and, with ``tests.versions``, their
packages, once the setup steps ran);
:func:`collect_provenance` asks all three. A service's version comes from its probe's own
protocol (``postgres``, ``redis``), from the spec's ``versions`` (a command inside the
service, or a regular expression over the head of its log), or from its ``--version`` inside
the container. Every question has a deadline (:data:`ASK_TIMEOUT`, the packages
:data:`PACKAGES_TIMEOUT`) and a bounded output; what gets no answer stays empty. Every raw
output is masked before anything is read out of it, and every value again once cut.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import probes
from stackmatrix.engine.docker import docker_command, run_engine
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.spawn import spawn
from stackmatrix.engine.stack import Stack
from stackmatrix.engine.suite import (
    IN_SERVICE_JUNIT,
    _template_context,
    environment_for,
    temp_dir,
    tests_environment,
)
from stackmatrix.errors import EngineError
from stackmatrix.junit.merged_suites import MAX_PROVENANCE_PACKAGES
from stackmatrix.redact import MASK, redact_text, secret_values
from stackmatrix.results.files import open_new
from stackmatrix.results.journal import Provenance, ServiceProvenance
from stackmatrix.spec.load import Probe, VersionQuery
from stackmatrix.spec.templates import TemplateError

LOG = logging.getLogger("stackmatrix")
ASK_TIMEOUT = 5.0  # seconds one question may take (a command, a log, an inspect)
# ``tests.versions`` may start an interpreter that looks at every installed package
# (``pip list`` takes seconds on a busy machine).
PACKAGES_TIMEOUT = 30.0
KILL_GRACE = 2.0  # seconds the docker client outlives a command killed in its container
KILLED = 128 + signal.SIGKILL  # the exit code of a command ``timeout -s KILL`` ended
OUTPUT_CAP = 64 * 1024  # bytes of a command's output read at most
LOG_HEAD = 256 * 1024  # bytes at the start of a service's log that a ``log`` pattern reads
LOG_LINES = 2000  # lines of that head (or of a command's output) a pattern searches
LINE_CAP = 4096  # characters of each line a pattern searches
MAX_PACKAGES = MAX_PROVENANCE_PACKAGES
VALUE_CAP = 100  # characters kept of a version, a package name or its version
WORKERS = 8
IMAGE_IDENTITY_FORMAT = (
    "{{.Id}}\t{{range $i, $d := .RepoDigests}}{{if eq $i 0}}{{$d}}{{end}}{{end}}"
)
"""``docker image inspect --format``: an image's id, a tab, its first repo digest (if any)."""
# -S: no site packages to load; the interpreter's own version is all that is asked.
PYTHON_VERSION = ("python3", "-S", "-c", "import sys; print(sys.version.split()[0])")
# In a container, a command runs under ``timeout -s KILL`` when the image has one: killing
# the docker client at its deadline would leave the command running in there. ``sh -c``
# gets the seconds as $0 and the command as "$@".
_UNDER_TIMEOUT = (
    'if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL "$0" "$@"; fi; exec "$@"'
)
# ``NAME==VERSION`` (pip freeze) or ``NAME VERSION`` (pip list, npm ls --parseable, ...).
# The output is masked before it is read: a name may start with the mask.
_PACKAGE = re.compile(
    rf"^(?P<name>(?:[A-Za-z0-9@]|{re.escape(MASK)})[^\s=]*)(?:==|\s+)(?P<version>[^\s=]\S*)$"
)
_RULE = re.compile(r"^[-=\s]+$")  # the line under a table's header (``---- -------``)
_FAILURES = (DockerException, EngineError, OSError, ValueError)

T = TypeVar("T")


def collect_provenance(
    job: VariantJob,
    stack: Stack,
    compose: Mapping[str, Any],
    ports: Mapping[str, Mapping[str, str]],
    secrets: Sequence[str],
) -> Provenance:
    """The provenance of *job*'s ready stack, rendered as *compose*: :func:`service_provenance`,
    then :func:`test_environment`. Never raises, never blocks past its deadlines."""
    found = service_provenance(job, stack, compose, ports, secrets)
    return test_environment(job, stack, ports, secrets, found)


def images_only(stack: Stack, compose: Mapping[str, Any], secrets: Sequence[str]) -> Provenance:
    """The images of *stack*'s services, from what the stack knows (its containers, else the
    ``image`` its rendered compose document *compose* names) and one bounded ``docker image
    inspect`` for their digests; no server is asked. Usable after a failed ``up``; never
    raises."""
    return _images(stack, compose, secrets, stack.cancel)


def _images(
    stack: Stack, compose: Mapping[str, Any], secrets: Sequence[str], cancel: threading.Event
) -> Provenance:
    if not stack.states and stack.created and not cancel.is_set():
        with contextlib.suppress(*_FAILURES):
            stack.refresh()
    references = _compose_images(stack, compose)
    images = {**{s: (ref, "") for s, ref in references.items()}, **stack.images}
    ids = {image_id for _, image_id in images.values() if image_id}
    digests = {} if cancel.is_set() else _quiet(image_digests, stack.client, ids, cancel)
    entries = {}
    for service in sorted(images):
        reference, image_id = images[service]
        entry = ServiceProvenance(
            image=_mask(reference, secrets, None),
            image_id=_mask(image_id, secrets, None),
            digest=_mask((digests or {}).get(image_id, ""), secrets, None),
        )
        if entry != ServiceProvenance():
            entries[service] = entry
    return Provenance(services=entries)


def service_provenance(
    job: VariantJob,
    stack: Stack,
    compose: Mapping[str, Any],
    ports: Mapping[str, Mapping[str, str]],
    secrets: Sequence[str],
) -> Provenance:
    """The images of :func:`images_only` and each service's own version (asked all at
    once): the services only. Never raises; a cancelled run asks no server."""
    found = _images(stack, compose, secrets, job.cancel)
    if job.cancel.is_set():
        return found
    services = sorted(stack.states)
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="stackmatrix-provenance") as pool:
        asked = {
            s: pool.submit(_quiet, _service_version, job, stack, ports, s, secrets)
            for s in services
        }
        versions = {s: future.result() or ("", "") for s, future in asked.items()}
    entries = dict(found.services)
    for service, (raw, source) in versions.items():
        version = _mask(raw, secrets)
        if version:
            entry = entries.get(service, ServiceProvenance())
            entries[service] = dataclasses.replace(entry, version=version, version_source=source)
    return dataclasses.replace(found, services=entries)


def test_environment(
    job: VariantJob,
    stack: Stack,
    ports: Mapping[str, Mapping[str, str]],
    secrets: Sequence[str],
    provenance: Provenance,
) -> Provenance:
    """*provenance* with the tests' Python and packages, asked where the tests run, with
    their environment. Never raises; a cancelled run asks nothing."""
    if job.cancel.is_set():
        return provenance
    env = _tests_env(job, ports)
    # The tests' expanded variables are secret too (a password put together from templates).
    secrets = [*secrets, *secret_values(env, job.spec.secrets)]
    command = job.spec.tests.versions
    with ThreadPoolExecutor(2, thread_name_prefix="stackmatrix-provenance") as pool:
        asked_python = pool.submit(
            _quiet, _where_tests_run, job, stack, env, PYTHON_VERSION, ASK_TIMEOUT
        )
        asked_packages = (
            pool.submit(_quiet, _where_tests_run, job, stack, env, command, PACKAGES_TIMEOUT)
            if command
            else None
        )
        python_out = asked_python.result() or ("", True)
        packages_out = (asked_packages.result() or ("", False)) if asked_packages else ("", True)
    python = _first_line(redact_text(python_out[0], secrets))
    text, complete = packages_out
    packages, cut = parse_packages_counted(redact_text(text, secrets), complete=complete)
    return dataclasses.replace(
        provenance,
        python=_mask(python, secrets) if re.fullmatch(r"\d+\.\d+\S*", python) else "",
        packages={_mask(name, secrets): _mask(v, secrets) for name, v in packages.items()},
        packages_cut=cut,
    )


def _mask(text: str, secrets: Sequence[str], cap: int | None = VALUE_CAP) -> str:
    """*text* masked, stripped, then cut to *cap* characters (masked again: no piece of a
    secret survives the cut)."""
    masked = redact_text(text, secrets).strip()
    return masked if cap is None else redact_text(masked[:cap], secrets)


def _quiet(ask: Callable[..., T], *args: object) -> T | None:
    """*ask*'s answer, or None when it failed (the engine, a command that cannot start)."""
    try:
        return ask(*args)
    except _FAILURES as error:
        LOG.debug("provenance: %s failed: %s", getattr(ask, "__name__", ask), error)
        return None


def _compose_images(stack: Stack, compose: Mapping[str, Any]) -> dict[str, str]:
    """Service -> the ``image`` the rendered compose document *compose* names, for the
    services the stack runs (those of an inactive profile left out)."""
    services = compose.get("services")
    if not isinstance(services, Mapping):
        return {}
    wanted = set(stack.services)
    return {
        str(name): str(config["image"])
        for name, config in services.items()
        if isinstance(config, Mapping)
        and config.get("image")
        and (name in wanted or not wanted)
        and (not config.get("profiles") or set(config["profiles"]) & set(stack.profiles))
    }


def image_digests(
    client: DockerClient, image_ids: Collection[str], cancel: threading.Event | None = None
) -> dict[str, str]:
    """Image id -> its first repo digest (``NAME@sha256:...``), for the images that have one:
    one ``docker image inspect`` for all of them."""
    if not image_ids:
        return {}
    fmt = IMAGE_IDENTITY_FORMAT
    command = docker_command(client, "image", "inspect", "--format", fmt, *sorted(image_ids))
    try:
        out = run_engine(command, what="`docker image inspect`", timeout=ASK_TIMEOUT, cancel=cancel)
    except DockerException as error:  # an image removed meanwhile: the others still print
        out = error.stdout or ""
    found = {}
    for line in out.splitlines():
        image_id, _, digest = line.strip().partition("\t")
        if image_id and digest:
            found[image_id] = digest
    return found


def _service_version(
    job: VariantJob,
    stack: Stack,
    ports: Mapping[str, Mapping[str, str]],
    service: str,
    secrets: Sequence[str],
) -> tuple[str, str]:
    """(version, how it was asked) of one service; ("", "") when it cannot be asked."""
    query = job.spec.versions.get(service)
    if query is not None:
        return _asked_by_spec(job, stack, service, query, secrets)
    for probe in job.spec.ready.get(service, ()):
        address = _address(ports.get(service, {}), probe)
        if address is not None:
            answer = probes.ask_server_version(probe, address)
            if answer.version:
                return redact_text(answer.version, secrets), answer.source
            if not answer.ask_inside:  # it answered, and is not that kind of server
                continue
        for command in probes.version_commands(probe):  # inside: no port needed
            output = redact_text(_exec(job, stack, service, command)[0], secrets)
            version = probes.version_in_output(probe, output)
            if version:
                return version, "command"
    return "", ""


def _asked_by_spec(
    job: VariantJob, stack: Stack, service: str, query: VersionQuery, secrets: Sequence[str]
) -> tuple[str, str]:
    if query.command is not None:
        output = redact_text(_exec(job, stack, service, query.command)[0], secrets)
        return _found(output, query.match) if query.match else _first_line(output), "command"
    head = redact_text(stack.log_head(service, LOG_HEAD, ASK_TIMEOUT), secrets)
    return _found(head, query.log or ""), "log"  # the model holds one of the two


def _found(text: str, pattern: str) -> str:
    """The first group that took part in *pattern*'s first match in *text* (the whole match
    without groups). Searched line by line: the first :data:`LOG_LINES` lines, each cut at
    :data:`LINE_CAP` characters, so a pattern's work is bounded by the text it gets."""
    compiled = re.compile(pattern)
    for line in text.splitlines()[:LOG_LINES]:
        match = compiled.search(line[:LINE_CAP])
        if match is not None:
            if not compiled.groups:
                return match[0]
            return next((g for g in match.groups() if g is not None), "")
    return ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _address(published: Mapping[str, str], probe: Probe) -> tuple[str, int] | None:
    """Where a socket probe's port is published (``127.0.0.1:49153``, ``[::1]:49153``)."""
    port = getattr(probe, "port", None)
    found = published.get(str(port)) if port is not None else None
    if not found:
        return None
    host, _, number = found.rpartition(":")
    return host.strip("[]"), int(number)


def _exec(
    job: VariantJob,
    stack: Stack,
    service: str,
    command: Sequence[str],
    timeout: float = ASK_TIMEOUT,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[str, bool]:
    """(what *command* prints on stdout inside *service*'s running container, whether that
    is all of it): its first :data:`OUTPUT_CAP` bytes, or what it printed before its
    deadline; ("", True) when it fails or the container is not running. The variables of
    *env* are set through a private ``--env-file``, never on the command line.

    It runs under ``timeout -s KILL`` (through ``sh -c``) when the image has both, so it ends
    in the container at its deadline, before the client's; without ``sh`` it runs bare."""
    state = stack.states.get(service)
    if state is None or state.status != "running" or not state.container_id:
        return "", True
    seconds = max(1, math.ceil(timeout))
    env_file = job.directory / f".provenance-env-{threading.get_ident()}"
    flags: list[str] = []
    try:
        if env:
            _write_env_file(env_file, env)
            flags = ["--env-file", str(env_file)]
        wrapped = ["sh", "-c", _UNDER_TIMEOUT, str(seconds), *command]
        for argv in (wrapped, list(command)):
            output = _Capped()
            full = docker_command(stack.client, "exec", *flags, state.container_id, *argv)
            try:
                run_engine(
                    full, what="`docker exec`", timeout=seconds + KILL_GRACE,
                    cancel=job.cancel, sink=output.take,
                )  # fmt: skip
            except (_Capped.Full, EngineError):
                return output.text(), False  # what came so far is the answer
            except DockerException as error:
                said = error.stderr or ""
                if argv is wrapped and '"sh"' in said and "not found" in said:
                    continue  # no shell in the image: the command itself, bare
                if error.return_code == KILLED:  # at its deadline, in the container
                    return output.text(), False
                return "", True  # not there, or it failed: no version from it
            return output.text(), True
        return "", True
    finally:
        env_file.unlink(missing_ok=True)


def _write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """*env* as a private ``--env-file`` (a value over many lines cannot go in one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_new(path, private=True), "w", encoding="utf-8") as out:
        out.writelines(f"{k}={v}\n" for k, v in env.items() if "\n" not in v and "=" not in k)


def _tests_env(job: VariantJob, ports: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The variables the tests get where they run (suite's own): on the host the caller's
    environment, the tests' variables and the variant's TMPDIR; in a service the tests'
    variables only (its container has its own environment)."""
    in_service = job.spec.tests.where != "host"
    try:
        if in_service:
            context = _template_context(job, ports, IN_SERVICE_JUNIT, host=False)
            return tests_environment(job, ports, IN_SERVICE_JUNIT, context)
        extra = environment_for(job, ports)
    except (KeyError, ValueError, TemplateError):  # a template only the tests' run can fill
        extra = {}
        if in_service:
            return extra
    base = os.environ if job.base_env is None else job.base_env
    return {**base, **extra, "TMPDIR": str(temp_dir(job))}


def _where_tests_run(
    job: VariantJob,
    stack: Stack,
    env: Mapping[str, str],
    command: Sequence[str],
    timeout: float,
) -> tuple[str, bool]:
    """(what *command* printed where the tests run, whether that is all of it): in their
    service, or on the host with *env*. Empty when it failed."""
    where = job.spec.tests.where
    if where != "host":
        return _exec(job, stack, where, command, timeout, env=env)
    return _run_on_host(list(command), env, job.spec.tests.workdir, timeout, job.cancel)


def _run_on_host(
    argv: list[str], env: Mapping[str, str], cwd: Path, timeout: float, cancel: threading.Event
) -> tuple[str, bool]:
    """(stdout's first :data:`OUTPUT_CAP` bytes, whether it ended on its own with exit code 0)
    of a host command; stderr is discarded; the command's process group is killed at the cap,
    the deadline or a cancel. ("", False) when it failed or printed nothing in time."""
    try:
        proc = spawn(
            argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as error:
        LOG.debug("provenance: cannot start %s: %s", argv[0], error)
        return "", False
    output, ended = _Capped(), False
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None  # noqa: S101 - stdout=PIPE
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while not cancel.is_set() and (left := deadline - time.monotonic()) > 0:
                if not selector.select(min(0.1, left)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    ended = True
                    break
                output.take(chunk)
    except _Capped.Full:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # it, and whatever it left in its group
        if proc.stdout is not None:
            proc.stdout.close()
        code = proc.wait()
    if ended and code != 0:
        return "", False
    return output.text(), ended


class _Capped:
    """The first :data:`OUTPUT_CAP` bytes of a stream; the call ends once they are in."""

    class Full(Exception):
        """Enough is read."""

    def __init__(self) -> None:
        self._data = bytearray()

    def take(self, chunk: bytes) -> None:
        self._data.extend(chunk)
        if len(self._data) >= OUTPUT_CAP:
            raise _Capped.Full

    def text(self) -> str:
        return bytes(self._data[:OUTPUT_CAP]).decode("utf-8", errors="replace")


def parse_packages(text: str) -> dict[str, str]:
    """Package -> version from lines ``NAME==VERSION`` or ``NAME VERSION``; other lines
    (and a table's header above its rule) are ignored; at most :data:`MAX_PACKAGES`."""
    return parse_packages_counted(text)[0]


def parse_packages_counted(text: str, *, complete: bool = True) -> tuple[dict[str, str], int]:
    """:func:`parse_packages`, and how many packages were left out (past
    :data:`MAX_PACKAGES`; at least 1 when the output itself was cut, *complete* false: its
    last line is then read only when a newline ends it)."""
    lines = text.splitlines()
    if not complete and lines and not text.endswith("\n"):
        lines.pop()
    found: dict[str, str] = {}
    left_out = 0
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        match = _PACKAGE.match(line.strip())
        if match is None or (following.strip() and _RULE.match(following)):
            continue
        if match["name"] in found:
            continue
        if len(found) >= MAX_PACKAGES:
            left_out += 1
            continue
        found[match["name"]] = match["version"]
    return found, max(left_out, 0 if complete else 1)
