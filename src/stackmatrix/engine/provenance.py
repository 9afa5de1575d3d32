"""What a variant really ran: each service's image and version, and the tests' environment.

Asked once the stack is ready: the images from the containers the stack already inspected
and one ``docker image inspect`` for all their digests; each service's version from its
probe's own protocol (``postgres``, ``redis``), from the spec's ``versions`` (a command inside
the service, or a regular expression over its log), or, for a PostgreSQL or Redis server that
wants a password, from its ``--version``; the tests' Python and, with ``tests.versions``, the
versions of their packages, where the tests run. Every question is asked at once, each within
:data:`ASK_TIMEOUT` seconds (the packages within :data:`PACKAGES_TIMEOUT`) and a bounded
output; what gets no answer stays empty.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from stackmatrix.engine import probes
from stackmatrix.engine.docker import docker_command, run_engine
from stackmatrix.engine.job import VariantJob
from stackmatrix.engine.processes import run_logged
from stackmatrix.engine.stack import Stack
from stackmatrix.engine.suite import environment_for, temp_dir
from stackmatrix.errors import EngineError
from stackmatrix.redact import redact_text, secret_values
from stackmatrix.results.journal import Provenance, ServiceProvenance
from stackmatrix.spec.load import Probe, VersionQuery
from stackmatrix.spec.templates import TemplateError

LOG = logging.getLogger("stackmatrix")
ASK_TIMEOUT = 5.0  # seconds one question may take (a command, a log, an inspect)
# ``tests.versions`` may start an interpreter that looks at every installed package
# (``pip list`` takes seconds on a busy machine).
PACKAGES_TIMEOUT = 30.0
OUTPUT_CAP = 64 * 1024  # bytes of a command's output read at most
LOG_HEAD = 1024 * 1024  # bytes at the start of a service's log that a ``log`` pattern reads
MAX_PACKAGES = 200
VALUE_CAP = 100  # characters kept of a version, a package name or its version
WORKERS = 8
# -S: no site packages to load; the interpreter's own version is all that is asked.
PYTHON_VERSION = ("python3", "-S", "-c", "import sys; print(sys.version.split()[0])")
# ``NAME==VERSION`` (pip freeze) or ``NAME VERSION`` (pip list, npm ls --parseable, ...).
_PACKAGE = re.compile(r"^(?P<name>[A-Za-z0-9@][^\s=]*)(?:==|\s+)(?P<version>[^\s=]\S*)$")
_RULE = re.compile(r"^[-=\s]+$")  # the line under a table's header (``---- -------``)
_FAILURES = (DockerException, EngineError, OSError, ValueError)

T = TypeVar("T")


def collect_provenance(
    job: VariantJob,
    stack: Stack,
    ports: Mapping[str, Mapping[str, str]],
    secrets: Sequence[str],
) -> Provenance:
    """The provenance of *job*'s ready stack: never raises, never blocks past its deadlines;
    what cannot be asked stays empty. Every value is masked with *secrets*."""
    services = sorted(stack.states)
    images = {service: stack.images.get(service, ("", "")) for service in services}
    env = _host_environment(job, ports)
    # The tests' expanded variables are secret too (a password put together from templates).
    secrets = [*secrets, *secret_values(env, job.spec.secrets)]
    if job.cancel.is_set():  # the run is ending: what is known already, nothing asked
        versions: dict[str, tuple[str, str]] = {}
        digests: dict[str, str] = {}
        python, packages = "", ""
    else:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="stackmatrix-provenance") as pool:
            ids = {image_id for _, image_id in images.values() if image_id}
            asked_digests = pool.submit(_quiet, image_digests, stack.client, ids, job)
            asked = {
                service: pool.submit(_quiet, _service_version, job, stack, ports, service)
                for service in services
            }
            asked_python = pool.submit(
                _quiet, _where_tests_run, job, stack, env, PYTHON_VERSION, ASK_TIMEOUT
            )
            command = job.spec.tests.versions
            asked_packages = (
                pool.submit(_quiet, _where_tests_run, job, stack, env, command, PACKAGES_TIMEOUT)
                if command
                else None
            )
            digests = asked_digests.result() or {}
            versions = {service: future.result() or ("", "") for service, future in asked.items()}
            python = _first_line(asked_python.result() or "")
            packages = (asked_packages.result() or "") if asked_packages else ""

    def mask(text: str, cap: int | None = VALUE_CAP) -> str:
        masked = redact_text(text, secrets).strip()
        return masked if cap is None else masked[:cap]

    entries = {}
    for service in services:
        reference, image_id = images[service]
        version, source = versions.get(service, ("", ""))
        version = mask(version)
        entries[service] = ServiceProvenance(
            image=mask(reference, None),
            image_id=mask(image_id, None),
            digest=mask(digests.get(image_id, ""), None),
            version=version,
            version_source=source if version else "",
        )
    return Provenance(
        services=entries,
        python=mask(python) if re.fullmatch(r"\d+\.\d+\S*", python) else "",
        packages={mask(name): mask(value) for name, value in parse_packages(packages).items()},
    )


def _quiet(ask: Callable[..., T], *args: object) -> T | None:
    """*ask*'s answer, or None when it failed (the engine, a command that cannot start)."""
    try:
        return ask(*args)
    except _FAILURES as error:
        LOG.debug("provenance: %s failed: %s", getattr(ask, "__name__", ask), error)
        return None


def image_digests(
    client: DockerClient, image_ids: Collection[str], job: VariantJob
) -> dict[str, str]:
    """Image id -> its first repo digest (``NAME@sha256:...``), for the images that have one:
    one ``docker image inspect`` for all of them."""
    if not image_ids:
        return {}
    template = "{{.Id}}\t{{range $i, $d := .RepoDigests}}{{if eq $i 0}}{{$d}}{{end}}{{end}}"
    command = docker_command(client, "image", "inspect", "--format", template, *sorted(image_ids))
    try:
        out = run_engine(
            command, what="`docker image inspect`", timeout=ASK_TIMEOUT, cancel=job.cancel
        )
    except DockerException as error:  # an image removed meanwhile: the others still print
        out = error.stdout or ""
    found = {}
    for line in out.splitlines():
        image_id, _, digest = line.strip().partition("\t")
        if image_id and digest:
            found[image_id] = digest
    return found


def _service_version(
    job: VariantJob, stack: Stack, ports: Mapping[str, Mapping[str, str]], service: str
) -> tuple[str, str]:
    """(version, how it was asked) of one service; ("", "") when it cannot be asked."""
    query = job.spec.versions.get(service)
    if query is not None:
        return _asked_by_spec(job, stack, service, query)
    for probe in job.spec.ready.get(service, ()):
        address = _address(ports.get(service, {}), probe)
        if address is None:
            continue
        version, source = probes.server_version(probe, address)
        if version:
            return version, source
        for command in probes.version_commands(probe):
            version = probes.version_in_output(probe, _exec(job, stack, service, command))
            if version:
                return version, "command"
    return "", ""


def _asked_by_spec(
    job: VariantJob, stack: Stack, service: str, query: VersionQuery
) -> tuple[str, str]:
    if query.command is not None:
        output = _exec(job, stack, service, query.command)
        return _found(output, query.match) if query.match else _first_line(output), "command"
    pattern = query.log or ""  # the model holds one of the two
    return _found(stack.log_head(service, LOG_HEAD, ASK_TIMEOUT), pattern), "log"


def _found(text: str, pattern: str) -> str:
    """Group 1 of *pattern*'s first match in *text*, or the whole match without groups."""
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        return ""
    return (match[1] or "") if match.re.groups else match[0]


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
) -> str:
    """What *command* prints inside *service*'s running container (its first
    :data:`OUTPUT_CAP` bytes); empty when it fails or the container is not running."""
    state = stack.states.get(service)
    if state is None or state.status != "running" or not state.container_id:
        return ""
    output = _Capped()
    argv = docker_command(stack.client, "exec", state.container_id, *command)
    try:
        run_engine(argv, what="`docker exec`", timeout=timeout, cancel=job.cancel, sink=output.take)
    except _Capped.Full:
        pass
    except DockerException:
        return ""  # not there, or it failed: no version from it
    return output.text()


def _host_environment(job: VariantJob, ports: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment the test command gets on the host (its PATH finds the same
    ``python3``): the caller's, the tests' variables, the variant's TMPDIR."""
    try:
        extra = environment_for(job, ports)
    except (KeyError, ValueError, TemplateError):  # a template only the tests' run can fill
        extra = {}
    base = os.environ if job.base_env is None else job.base_env
    return {**base, **extra, "TMPDIR": str(temp_dir(job))}


def _where_tests_run(
    job: VariantJob,
    stack: Stack,
    env: Mapping[str, str],
    command: Sequence[str],
    timeout: float,
) -> str:
    """What *command* prints where the tests run: in their service, or on the host with
    *env*, the environment the test command gets."""
    where = job.spec.tests.where
    if where != "host":
        return _exec(job, stack, where, command, timeout)
    name = "python" if command is PYTHON_VERSION else "versions"
    log = job.directory / f".provenance-{name}.part"  # read, then removed
    try:
        outcome = run_logged(
            list(command),
            log_path=log,
            env=env,
            cwd=job.spec.tests.workdir,
            timeout=timeout,
            cancel=job.cancel,
        )
        if outcome.exit_code != 0:
            return ""
        return _read_capped(log).split("\n", 1)[1] if log.exists() else ""  # after "$ command"
    except IndexError:
        return ""
    finally:
        log.unlink(missing_ok=True)


def _read_capped(path: Path) -> str:
    with path.open("rb") as read:
        return read.read(OUTPUT_CAP + 4096).decode("utf-8", errors="replace")


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
    lines = text.splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        match = _PACKAGE.match(line.strip())
        if match is None or (following.strip() and _RULE.match(following)):
            continue
        found.setdefault(match["name"], match["version"])
        if len(found) >= MAX_PACKAGES:
            break
    return found
