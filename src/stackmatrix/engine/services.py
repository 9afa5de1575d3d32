"""The state of a compose service's container as the engine reports it, and what it means for
readiness: still coming, ready, or a final failure (exited, killed, unhealthy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from python_on_whales.components.container.models import ContainerInspectResult

from stackmatrix.compose import labels as compose_labels


@dataclass(frozen=True)
class ServiceState:
    """What ``compose ps`` says about one service's container."""

    service: str
    container_id: str
    status: str  # created / running / exited / dead / ...
    health: str | None  # starting / healthy / unhealthy, or None without a healthcheck
    exit_code: int | None
    health_output: str
    ports: Mapping[str, str]  # "5432" or "53/udp" -> "127.0.0.1:49153" (or "[::1]:49153")
    oom_killed: bool = False
    restarts: int = 0  # how often the engine restarted the container (a `restart:` policy)
    started_ns: int | None = None  # when its process last started, by the engine's clock


def service_state(container: ContainerInspectResult) -> ServiceState:
    labels = (container.config.labels if container.config else None) or {}
    state = container.state
    health = state.health if state else None
    health_output = ""
    if health is not None and health.log:
        last = health.log[-1]
        health_output = f"exit {last.exit_code}: {(last.output or '').strip()}"
    published = container.network_settings.ports if container.network_settings else None
    return ServiceState(
        service=labels.get(compose_labels.COMPOSE_SERVICE, container.name or ""),
        container_id=container.id or "",
        status=(state.status if state else None) or "unknown",
        health=health.status if health is not None else None,
        exit_code=state.exit_code if state else None,
        oom_killed=bool(state and state.oom_killed),
        health_output=health_output,
        ports=published_ports(published or {}),
        restarts=container.restart_count or 0,
        started_ns=_nanoseconds(state.started_at if state else None),
    )


def _nanoseconds(moment: datetime | None) -> int | None:
    """Epoch nanoseconds of an engine timestamp (the engine's zero time for "never")."""
    if moment is None or moment.year < 1971:
        return None
    return int(moment.timestamp() * 1_000_000) * 1000


def published_ports(published: Mapping[str, object]) -> dict[str, str]:
    """Container port -> the address to reach it at: the IPv4 binding, or else the IPv6 one
    (a port published on ``[::]`` only is reached at ``[::1]``)."""
    ports: dict[str, str] = {}
    for key, bindings in published.items():
        name = key.removesuffix("/tcp")
        for binding in bindings if isinstance(bindings, list) else []:
            host_ip = str(binding.get("HostIp") or "127.0.0.1")
            if ":" in host_ip:
                if name not in ports:  # only when no IPv4 binding is there: not a twin
                    ports[name] = f"[{'::1' if host_ip == '::' else host_ip}]:{binding['HostPort']}"
                continue
            ports[name] = f"{host_ip}:{binding['HostPort']}"
    return ports


def crash_looping(state: ServiceState) -> bool:
    """Whether the engine restarted the container after it failed (``restart: always`` and a
    process that exits): it is not ready, and waiting longer does not help."""
    return state.restarts > 0 and (state.status == "restarting" or state.exit_code not in (0, None))


def final_reason(state: ServiceState) -> str:
    # A stopped container's health reads "unhealthy" too: how it stopped says more.
    if state.oom_killed:
        return f"was killed: out of memory (OOMKilled, exit code {state.exit_code})"
    if crash_looping(state):
        times = "once" if state.restarts == 1 else f"{state.restarts} times"
        return f"is crash-looping: it exited with code {state.exit_code} and was restarted {times}"
    if state.status in {"exited", "dead"}:
        return f"exited with code {state.exit_code}"
    if state.health == "unhealthy":
        return "is unhealthy"
    return f"exited with code {state.exit_code}"
