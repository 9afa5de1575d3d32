"""The run's ``prepare`` stage: every unique image pulled, and every unique tagged build made,
once, a few at a time, before any stack comes up.

In CI the images are often the largest cost of a compatibility matrix (and a public registry
limits anonymous pulls), so six variants that share two images pull two, not twelve. A variant
whose image could not be had is an error with the registry's or the builder's words; the
others run. What each variant used is recorded: the image id and repo digest per service.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales.exceptions import DockerException

from stackmatrix.compose.render import dump_compose, holds_secrets, project_name, render
from stackmatrix.engine.docker import docker_client, docker_command, error_text, run_engine
from stackmatrix.engine.job import networks_created
from stackmatrix.engine.processes import run_logged, signal_handlers
from stackmatrix.engine.provenance import IMAGE_IDENTITY_FORMAT
from stackmatrix.engine.stack import Cancelled, Stack, StackFailure
from stackmatrix.errors import EngineError, Interrupted
from stackmatrix.matrix.expand import Variant
from stackmatrix.redact import compose_secrets, redact_file, redact_text, secret_values
from stackmatrix.results.files import write_private_if
from stackmatrix.spec.models import Spec

LOG = logging.getLogger("stackmatrix")
PARALLEL = 3  # pulls and builds at once: more saturates a CI runner's link and CPU
PULL_TIMEOUT = 600.0  # one pull of one image: a stalled registry must not hang a run
ATTEMPTS = 4  # a transient registry error is tried again after 1, 2 and 4 s
# What docker says when a registry is briefly unwell: worth another try.
_TRANSIENT = re.compile(
    r"\b(50[0234]|429)\b|toomanyrequests|too many requests|timeout|timed out|"
    r"connection reset|connection refused|unexpected EOF|temporarily unavailable|"
    r"service unavailable|bad gateway",
    re.IGNORECASE,
)


class PullPolicy(enum.StrEnum):
    """When an image is pulled, as compose's ``pull_policy`` says it."""

    MISSING = "missing"  # only when the engine does not have it
    ALWAYS = "always"  # every run (a moving tag like postgres:17 is refreshed)
    NEVER = "never"  # never: a missing image is an error


@dataclass(frozen=True)
class Need:
    """One image a variant needs: pulled by reference, or built (a service with ``build``)."""

    image: str  # the reference, or the tag a build makes
    build: tuple[str, str] | None = None  # (variant id, service) whose compose builds it


@dataclass
class Outcome:
    """How getting one image went."""

    image: str
    action: str = ""  # "pull", "build", or "" when it was there already
    seconds: float = 0.0
    error: str = ""
    detail: str = ""  # the builder's last lines, when a build failed
    started_at: float = 0.0  # epoch seconds
    image_id: str = ""
    digest: str = ""


@dataclass(frozen=True)
class Prepared:
    """What the prepare stage did, for the journal and for each variant."""

    outcomes: Mapping[str, Outcome]  # image -> outcome
    needs: Mapping[str, Mapping[str, Need]]  # variant id -> service -> need
    seconds: float = 0.0
    # variant id -> why it cannot run, and the longer story (a build's output)
    problems: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    networks: int = 1  # the most networks one variant's stack creates

    def images_of(self, variant: str) -> dict[str, dict[str, str]]:
        """service -> {image, id, digest} of what *variant* runs."""
        found: dict[str, dict[str, str]] = {}
        for service, need in self.needs.get(variant, {}).items():
            outcome = self.outcomes.get(need.image)
            if outcome is not None:
                found[service] = {
                    "image": need.image,
                    "id": outcome.image_id,
                    "digest": outcome.digest,
                }
        return found

    def phases_of(self, variant: str) -> dict[str, float]:
        """The time spent getting *variant*'s images: ``pull`` and ``build`` seconds."""
        phases = {"pull": 0.0, "build": 0.0}
        for outcome in self._outcomes_of(variant):
            if outcome.action:
                phases[outcome.action] += outcome.seconds
        return {name: round(seconds, 3) for name, seconds in phases.items()}

    def phase_starts_of(self, variant: str) -> dict[str, float]:
        """When *variant*'s first pull and first build began (epoch seconds)."""
        starts: dict[str, float] = {}
        for outcome in self._outcomes_of(variant):
            if outcome.action and outcome.started_at:
                first = starts.get(outcome.action, outcome.started_at)
                starts[outcome.action] = min(first, outcome.started_at)
        return starts

    def _outcomes_of(self, variant: str) -> list[Outcome]:
        images = dict.fromkeys(n.image for n in self.needs.get(variant, {}).values())
        return [self.outcomes[image] for image in images if image in self.outcomes]

    def summary(self) -> dict[str, Any]:
        """The run-level record for run.json."""
        return {
            "seconds": round(self.seconds, 3),
            "pull_seconds": round(sum(o.seconds for o in self._done("pull")), 3),
            "build_seconds": round(sum(o.seconds for o in self._done("build")), 3),
            "images": [_record_of(o) for o in self.outcomes.values()],
        }

    def _done(self, action: str) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.action == action]


def _record_of(outcome: Outcome) -> dict[str, Any]:
    record: dict[str, Any] = {
        "image": outcome.image,
        "action": outcome.action or "present",
        "seconds": round(outcome.seconds, 3),
        "id": outcome.image_id,
        "digest": outcome.digest,
    }
    if outcome.error:
        record["error"] = outcome.error
    return record


def prepare(
    spec: Spec,
    variants: Sequence[Variant],
    *,
    run_id: str,
    run_dir: Path,
    policy: PullPolicy = PullPolicy.MISSING,
    rebuild: bool = False,
    cancel: threading.Event | None = None,
    on_image: Callable[[Outcome], None] = lambda _outcome: None,
    on_phase: Callable[[str, str], None] = lambda _variant, _phase: None,
) -> Prepared:
    """Pull and build what *variants* need, each unique image once; see the module docstring.

    A caller with no *cancel* event of its own (``stackmatrix pull``) gets one here, set by
    SIGINT or SIGTERM: the pulls and builds in flight are stopped and :class:`Interrupted`
    is raised once they have ended.
    """
    if cancel is not None:
        return _prepare(spec, variants, run_id=run_id, run_dir=run_dir, policy=policy,
                        rebuild=rebuild, cancel=cancel, on_image=on_image,
                        on_phase=on_phase)  # fmt: skip
    own = threading.Event()
    signalled: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        signalled.append(signum)
        own.set()

    with signal_handlers(stop):
        prepared = _prepare(spec, variants, run_id=run_id, run_dir=run_dir, policy=policy,
                            rebuild=rebuild, cancel=own, on_image=on_image,
                            on_phase=on_phase)  # fmt: skip
    if signalled:
        raise Interrupted(f"interrupted ({signal.Signals(signalled[0]).name}): pulls stopped")
    return prepared


def _prepare(
    spec: Spec,
    variants: Sequence[Variant],
    *,
    run_id: str,
    run_dir: Path,
    policy: PullPolicy,
    rebuild: bool,
    cancel: threading.Event,
    on_image: Callable[[Outcome], None],
    on_phase: Callable[[str, str], None],
) -> Prepared:
    started = time.monotonic()
    needs: dict[str, dict[str, Need]] = {}
    composes: dict[str, Path] = {}
    # What a build may print: the host's secrets, the tests' (it may share a variable), and
    # every secret of each compose file (environment, env_file, build args, interpolation).
    tests_env = {name: str(value) for name, value in spec.tests.env.items()}
    secrets = secret_values({**os.environ, **tests_env}, spec.secrets)
    networks = 1
    for variant in variants:
        data = render(spec, variant, run_id=run_id)
        networks = max(networks, networks_created(data))
        secrets += compose_secrets(data, spec.secrets, project_dir=spec.path.parent)
        needs[variant.id] = _needs_of(variant, data)
        if any(need.build for need in needs[variant.id].values()):
            composes[variant.id] = _write_compose(spec, variant, data, run_dir)
    unique: dict[str, Need] = {}
    for per_service in needs.values():
        for need in per_service.values():
            unique.setdefault(need.image, need)
    client = docker_client()

    def get(need: Need) -> Outcome:
        if cancel.is_set():
            return Outcome(need.image, error="cancelled before it was fetched")
        phase = "pull" if need.build is None else "build"
        for variant_id, per_service in needs.items():
            if any(n.image == need.image for n in per_service.values()):
                on_phase(variant_id, phase)
        started_at = time.time()
        try:
            if need.build is not None:
                variant_id, service = need.build
                outcome = _build(
                    spec, need.image, composes[variant_id], service, run_id=run_id,
                    rebuild=rebuild, cancel=cancel,
                )  # fmt: skip
                redact_file(composes[variant_id].parent / "build.log", secrets)
            else:
                outcome = _pull(client, need.image, policy, cancel)
        except DockerException as error:  # the engine said no to an inspect, say
            outcome = Outcome(need.image, error=_one_line(error_text(error)))
        outcome.error = redact_text(outcome.error, secrets)
        outcome.detail = redact_text(outcome.detail, secrets)
        outcome.started_at = started_at
        if not outcome.error and not outcome.image_id:  # pulled or built: asked again now
            outcome.image_id, outcome.digest = _identity(client, need.image, cancel)
        on_image(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="stackmatrix-prepare") as pool:
        outcomes = dict(zip(unique, pool.map(get, unique.values()), strict=True))
    problems = {}
    for variant_id, per_service in needs.items():
        for service, need in per_service.items():
            outcome = outcomes[need.image]
            if outcome.error:
                reason = f"service {service}: image {need.image}: {outcome.error}"
                problems[variant_id] = (reason, outcome.detail)
                break
    return Prepared(outcomes, needs, time.monotonic() - started, problems, networks)


def _needs_of(variant: Variant, data: Mapping[str, Any]) -> dict[str, Need]:
    needs: dict[str, Need] = {}
    for service, config in (data.get("services") or {}).items():
        if not isinstance(config, Mapping):
            continue
        image = config.get("image")
        if isinstance(image, str) and "$" in image:
            continue  # compose interpolates it from its environment: compose pulls it itself
        if "build" in config:
            # An untagged build gets a name of its variant's project: nothing to share.
            if image:
                needs[service] = Need(str(image), build=(variant.id, service))
        elif image:
            needs[service] = Need(str(image))
    return needs


def _write_compose(spec: Spec, variant: Variant, data: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / variant.id / "compose.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    private = holds_secrets(data, spec.secrets, project_dir=spec.path.parent)
    write_private_if(path, dump_compose(data), private=private)
    return path


def _present(client: Any, image: str, cancel: threading.Event) -> tuple[str, str] | None:
    """(image id, repo digest) of *image* when it is on the engine, else None; asked with a
    deadline, in the one call that also gives the identity a run records."""
    command = docker_command(client, "image", "inspect", "--format", IMAGE_IDENTITY_FORMAT, image)
    try:
        out = run_engine(command, what="`docker image inspect`", cancel=cancel)
    except DockerException:
        return None
    image_id, _, digest = out.strip().partition("\t")
    return image_id, digest


def _pull(client: Any, image: str, policy: PullPolicy, cancel: threading.Event) -> Outcome:
    present = _present(client, image, cancel)
    if policy is PullPolicy.NEVER or (policy is PullPolicy.MISSING and present):
        if present:
            return Outcome(image, image_id=present[0], digest=present[1])
        return Outcome(image, error="not on this engine, and the pull policy is 'never'")
    docker = docker_command(client)
    began = time.monotonic()
    for attempt in range(1, ATTEMPTS + 1):
        with tempfile.TemporaryDirectory(prefix="stackmatrix-pull-") as scratch:
            # Killable (a cancelled run stops it) and bounded (a stalled registry ends).
            log = Path(scratch) / "pull.log"
            done = run_logged([*docker, "pull", "--quiet", image], log_path=log, env=os.environ,
                              cwd=Path(scratch), timeout=PULL_TIMEOUT, cancel=cancel)  # fmt: skip
            said = _one_line(log.read_text(encoding="utf-8", errors="replace").split("\n", 1)[-1])
        if done.exit_code == 0:
            return Outcome(image, "pull", time.monotonic() - began)
        if done.cancelled:
            return Outcome(image, "pull", time.monotonic() - began, "interrupted")
        transient = done.timed_out or bool(_TRANSIENT.search(said))
        if done.timed_out:
            said = f"no answer within {PULL_TIMEOUT:g} s"
        if attempt == ATTEMPTS or not transient or cancel.is_set():
            tries = f" (after {attempt} tries)" if attempt > 1 else ""
            return Outcome(image, "pull", time.monotonic() - began, f"{said}{tries}")
        LOG.info("pull of %s failed (%s); trying again", image, said)
        cancel.wait(2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _build(
    spec: Spec,
    image: str,
    compose: Path,
    service: str,
    *,
    run_id: str,
    rebuild: bool,
    cancel: threading.Event,
) -> Outcome:
    stack = Stack(
        project=project_name(spec, Variant(compose.parent.name, {}), run_id),
        compose_file=compose,
        project_directory=spec.path.parent,
        services=[service],
        cancel=cancel,
        down_timeout=spec.run.down_timeout,
        keep=True,
    )
    began = time.monotonic()
    log = compose.parent / "build.log"
    try:
        built = stack.build({service: image}, log_path=log, always=rebuild)
    except StackFailure as failure:
        return Outcome(image, "build", time.monotonic() - began, failure.reason, failure.detail)
    except Cancelled:
        return Outcome(image, "build", time.monotonic() - began, "interrupted")
    return Outcome(image, "build" if built else "", time.monotonic() - began)


def _identity(client: Any, image: str, cancel: threading.Event) -> tuple[str, str]:
    """(image id, repo digest) of a pulled or built image; empty when the engine cannot say."""
    try:
        return _present(client, image, cancel) or ("", "")
    except EngineError:
        return "", ""


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "docker pull failed"
