"""What one variant needs to run: its spec, values, run, folder and the events that stop it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackmatrix.compose.merge import long_ports
from stackmatrix.compose.render import project_name
from stackmatrix.errors import StackmatrixError
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import Status
from stackmatrix.spec.load import Spec


@dataclass(frozen=True)
class Released:
    """A variant done with its job slot: its tests (if it got that far) ended, its logs and
    stats are collected, only its stack's removal (``down``) is left, or is done too for a
    stack that claims host-wide names; its verdict is known."""

    variant_id: str
    status: Status
    exit_code: int | None  # of the test command; None when it never ran


def networks_created(compose: Mapping[str, Any]) -> int:
    """How many networks the engine creates for the rendered *compose* document: each one it
    declares that is not external, and the project's default network when a service joins
    no network of its own (and shares no other's network stack)."""
    declared = compose.get("networks")
    declared = declared if isinstance(declared, Mapping) else {}
    own = [n for n, c in declared.items() if not (isinstance(c, Mapping) and c.get("external"))]
    services = compose.get("services")
    uses_default = any(
        isinstance(service, Mapping)
        and not service.get("network_mode")
        and (not service.get("networks") or "default" in service.get("networks", ()))
        for service in (services if isinstance(services, Mapping) else {}).values()
    )
    return len(set(own) | ({"default"} if uses_default else set()))


def host_wide_names(compose: Mapping[str, Any]) -> tuple[str, ...]:
    """What the rendered *compose* document claims on the whole host, beyond its project:
    published host ports it pins, container names, external volumes and networks. Two
    stacks claiming one of them cannot both exist, so such a stack is down before the next
    variant comes up."""
    claims: list[str] = []
    services = compose.get("services")
    for name, service in sorted((services if isinstance(services, Mapping) else {}).items()):
        if not isinstance(service, Mapping):
            continue
        if service.get("container_name"):
            claims.append(f"service '{name}': container_name {service['container_name']}")
        ports = service.get("ports")
        for item in ports if isinstance(ports, list) else []:
            try:
                entries = long_ports(item)
            except StackmatrixError:  # render reads them first; an odd one claims nothing
                continue
            for entry in entries:
                if entry.get("published"):
                    claims.append(
                        f"service '{name}': host port {entry['host_ip']}:{entry['published']}"
                    )
    for kind in ("volumes", "networks"):
        declared = compose.get(kind)
        for name, config in sorted((declared if isinstance(declared, Mapping) else {}).items()):
            if isinstance(config, Mapping) and config.get("external"):
                claims.append(f"external {kind[:-1]} '{config.get('name') or name}'")
    return tuple(claims)


PhaseCallback = Callable[[str, str], None]  # (variant id, phase)
ReleaseCallback = Callable[[Released], None]


StatsHook = Callable[[Path, str], object]  # (stats.json of a variant, variant id)


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
    prepared: bool = False  # the run's prepare stage made the tagged images: only untagged here
    after_stats: StatsHook | None = None  # run beside teardown once stats.json is written
    run_tests: bool = True  # False: bring the stack up and hold it there (`stackmatrix up`)
    extra_args: tuple[str, ...] = ()  # appended to the test command (`-- -k name -x`)
    # `run --failed-tests`: the testcases to run again, for `${{ failed }}`; None: all of them
    failed_tests: tuple[str, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # on every object, beside the run's
    # Called once the variant no longer needs its job slot: its tests ran and its logs and
    # stats are collected; only the stack's removal (``down``) is left (a stack with
    # host_wide_names: once it is down). Never called by a variant that ends before its
    # teardown (a compose file that does not render, a defect).
    on_released: ReleaseCallback = lambda _released: None

    @property
    def directory(self) -> Path:
        """This variant's folder inside the run directory."""
        return self.run_dir / self.variant.id

    @property
    def project(self) -> str:
        """The compose project name."""
        return project_name(self.spec, self.variant, self.run_id)
