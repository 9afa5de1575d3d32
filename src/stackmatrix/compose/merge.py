"""Compose documents as data: normalise one file (absolute paths, long port syntax, list forms
as mappings) and merge several the way `docker compose -f a -f b` does."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stackmatrix.errors import SpecError

LOOPBACK = "127.0.0.1"
_AS_MAPPING = ("environment", "labels", "annotations", "sysctls")
_REPLACED = {("command",), ("entrypoint",), ("healthcheck", "test")}
_REMOTE = ("http://", "https://", "git://", "git@", "ssh://", "github.com/")
_CONTEXT_SCHEMES = ("docker-image://", "service:", "oci-layout://", "target:")


def _is_local(path: str) -> bool:
    return bool(path) and not path.startswith(("$", "~", *_REMOTE))


def _absolute(path: str, base: Path) -> str:
    return os.path.normpath(base / path) if _is_local(path) else path


def as_mapping(value: Any, *, separator: str = "=") -> dict[str, Any]:
    """``["A=1", "B"]`` -> ``{"A": "1", "B": None}``; a mapping is copied."""
    if isinstance(value, Mapping):
        return dict(value)
    result: dict[str, Any] = {}
    for item in value or []:
        key, sep, rest = str(item).partition(separator)
        result[key] = rest if sep else None
    return result


def normalize(document: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A copy of one compose document with relative paths made absolute against ``base``
    and every list form that compose merges by key turned into a mapping."""
    out: dict[str, Any] = {key: _copy(value) for key, value in document.items()}
    services = out.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                services[name] = _service(service, base)
    for section in ("configs", "secrets"):
        for item in (out.get(section) or {}).values():
            if isinstance(item, dict) and isinstance(item.get("file"), str):
                item["file"] = _absolute(item["file"], base)
    for section in ("volumes", "networks"):
        if isinstance(out.get(section), dict):
            for name, item in out[section].items():
                out[section][name] = {} if item is None else item
                if isinstance(item, dict) and "labels" in item:
                    item["labels"] = as_mapping(item["labels"])
    if isinstance(out.get("include"), list):
        out["include"] = [_include(item, base) for item in out["include"]]
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return value


def _include(item: Any, base: Path) -> Any:
    if isinstance(item, str):
        return _absolute(item, base)
    if isinstance(item, dict):
        for key in ("path", "env_file"):
            if isinstance(item.get(key), str):
                item[key] = _absolute(item[key], base)
            elif isinstance(item.get(key), list):
                item[key] = [_absolute(p, base) if isinstance(p, str) else p for p in item[key]]
        if isinstance(item.get("project_directory"), str):
            item["project_directory"] = _absolute(item["project_directory"], base)
    return item


def _service(service: dict[str, Any], base: Path) -> dict[str, Any]:
    for key in _AS_MAPPING:
        if key in service and service[key] is not None:
            service[key] = as_mapping(service[key])
    if "build" in service:
        service["build"] = _build(service["build"], base)
    for key in ("env_file", "label_file"):
        if key in service:
            service[key] = [_env_file(item, base) for item in _as_list(service[key])]
    if isinstance(service.get("volumes"), list):
        service["volumes"] = [_volume(item, base) for item in service["volumes"]]
    extends = service.get("extends")
    if isinstance(extends, dict) and isinstance(extends.get("file"), str):
        extends["file"] = _absolute(extends["file"], base)
    if isinstance(service.get("depends_on"), list):
        service["depends_on"] = {
            str(name): {"condition": "service_started"} for name in service["depends_on"]
        }
    if isinstance(service.get("networks"), list):
        service["networks"] = dict.fromkeys(map(str, service["networks"]))
    if isinstance(service.get("ports"), list):
        service["ports"] = _unique([port for item in service["ports"] for port in long_ports(item)])
    return service


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _build(build: Any, base: Path) -> Any:
    if isinstance(build, str):
        return {"context": _absolute(build, base)}
    if not isinstance(build, dict):
        return build
    context = build.get("context", ".")
    build["context"] = _absolute(context, base) if isinstance(context, str) else context
    for key in ("args", "labels"):
        if key in build and build[key] is not None:
            build[key] = as_mapping(build[key])
    extra = build.get("additional_contexts")
    if extra is not None:
        extra = as_mapping(extra)
        build["additional_contexts"] = {
            name: _absolute(path, base)
            if isinstance(path, str) and not path.startswith(_CONTEXT_SCHEMES)
            else path
            for name, path in extra.items()
        }
    return build


def _env_file(item: Any, base: Path) -> Any:
    if isinstance(item, str):
        return _absolute(item, base)
    if isinstance(item, dict) and isinstance(item.get("path"), str):
        item["path"] = _absolute(item["path"], base)
    return item


def _volume(item: Any, base: Path) -> Any:
    if isinstance(item, str):
        source, sep, rest = item.partition(":")
        if sep and source.startswith((".", "/", "~")):
            return f"{_absolute(source, base)}:{rest}"
        return item
    if (
        isinstance(item, dict)
        and item.get("type", "bind") == "bind"
        and isinstance(item.get("source"), str)
    ):
        item["source"] = _absolute(item["source"], base)
    return item


def _split_colons(text: str) -> list[str]:
    """Split on ``:`` outside ``${...}`` and ``[...]`` (IPv6 addresses)."""
    parts, current, depth = [], "", 0
    for index, char in enumerate(text):
        if (char == "{" and text[index - 1 : index] == "$") or char == "[":
            depth += 1
        elif char in "}]" and depth:
            depth -= 1
        if char == ":" and not depth:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _number(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _range(text: str) -> list[int] | None:
    low, sep, high = text.partition("-")
    if sep and low.isdigit() and high.isdigit() and int(low) <= int(high):
        return list(range(int(low), int(high) + 1))
    return None


def long_ports(item: Any) -> list[dict[str, Any]]:
    """One ``ports`` entry in compose's long syntax, bound to 127.0.0.1 unless an address is given.

    A port without a published number gets an ephemeral host port; ranges become one entry
    per port where both sides have the same length.
    """
    if isinstance(item, Mapping):
        target = item.get("target")
        target = _number(target) if isinstance(target, str) else target
        return [_port_entry(target, item.get("published"), item.get("host_ip"), item)]
    body, _, protocol = str(item).partition("/")
    parts = _split_colons(body)
    if len(parts) > 3:
        raise SpecError(
            f"ports: cannot read {item!r}; write IPv6 addresses in brackets like [::1]:80:80"
        )
    host_ip = parts[0].strip("[]") if len(parts) == 3 else None
    published = parts[-2] if len(parts) >= 2 else None
    target = parts[-1]
    extra = {"protocol": protocol} if protocol else {}
    targets = _range(target)
    if targets and len(targets) > 1:
        publisheds: list[Any] = _range(published or "") or []
        if len(publisheds) != len(targets):
            publisheds = [published] * len(targets)
        return [_port_entry(t, p, host_ip, extra) for t, p in zip(targets, publisheds, strict=True)]
    return [_port_entry(_number(target), published, host_ip, extra)]


def _port_entry(
    target: Any, published: Any, host_ip: Any, rest: Mapping[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"target": target}
    if published not in (None, "", 0, "0"):
        entry["published"] = str(published)
    entry["host_ip"] = host_ip or LOOPBACK
    entry["protocol"] = rest.get("protocol") or "tcp"
    for key in ("app_protocol", "mode", "name"):
        if key in rest:
            entry[key] = rest[key]
    return entry


def _unique(items: Sequence[Any]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = json.dumps(item, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _volume_target(item: Any) -> str:
    if isinstance(item, Mapping):
        return str(item.get("target"))
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """``override`` merged onto ``base`` with compose's rules: mappings merge, ``command``,
    ``entrypoint`` and ``healthcheck.test`` replace, ``volumes`` merge by target, other lists
    are appended without duplicates."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            sub = (*path, str(key))
            replaced = len(sub) >= 3 and sub[0] == "services" and sub[2:] in _REPLACED
            out[key] = value if replaced or key not in out else merge(out[key], value, sub)
        return out
    if isinstance(base, list) and isinstance(override, list):
        if len(path) == 3 and path[0] == "services" and path[2] == "volumes":
            targets = {_volume_target(item): item for item in override}
            kept = [item for item in base if _volume_target(item) not in targets]
            return _unique(kept + list(override))
        return _unique(list(base) + list(override))
    return override


def published_ports(service: Any) -> set[int] | None:
    """The TCP container ports a service of a rendered document publishes (``ports`` in the
    long syntax :func:`normalize` gives); None when one is not a plain number (a ``${VAR}``
    that compose interpolates later), so that nobody guesses."""
    if not isinstance(service, Mapping):
        return set()
    found: set[int] = set()
    for entry in service.get("ports") or ():
        if not isinstance(entry, Mapping):
            return None
        target = entry.get("target")
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if not isinstance(target, int) or isinstance(target, bool):
            return None
        if str(entry.get("protocol") or "tcp") == "tcp":
            found.add(target)
    return found
