"""Render one variant into one compose document: pure data in, pure data out."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stackmatrix.compose import labels as names
from stackmatrix.compose.merge import as_mapping, merge, normalize
from stackmatrix.errors import SpecError, UsageError
from stackmatrix.matrix.expand import ID_PATTERN, Variant
from stackmatrix.redact import SECRET_ASSIGNMENT, compose_secrets, interpolate, read_env_file
from stackmatrix.spec.checks import display_path, value_key
from stackmatrix.spec.models import Spec, describe
from stackmatrix.spec.source import load_file, problem
from stackmatrix.spec.templates import EXPRESSION, TemplateError, expand_template
from stackmatrix.spec.values import Scalar, scalar_text

__all__ = [
    "TemplateError",
    "compose_profiles",
    "dump_compose",
    "expand_template",
    "project_name",
    "render",
    "substitute",
    "when_matches",
]


def project_name(spec: Spec, variant: Variant, run_id: str) -> str:
    """The compose project name of a variant in a run: ``<name>-<variant id>-<run id>``."""
    return f"{spec.name}-{variant.id}-{run_id}"


def when_matches(when: Mapping[str, tuple[Scalar, ...]], values: Mapping[str, Scalar]) -> bool:
    """Whether a variant's values satisfy an overlay's ``when`` (each key: any of its values)."""
    for key, allowed in when.items():
        value = values.get(key, False if key == "experimental" else None)
        if value is None or value_key(value) not in {value_key(a) for a in allowed}:
            return False
    return True


def substitute(data: Any, values: Mapping[str, Scalar]) -> Any:
    """A copy of ``data`` with ``${{ matrix.KEY }}`` replaced in every key and string.

    ``$`` in substituted values is doubled so that compose's own interpolation keeps it.
    """

    def text(value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            inner = match[1]
            key = inner.removeprefix("matrix.")
            return scalar_text(values.get(key)).replace("$", "$$") if key != inner else match[0]

        return EXPRESSION.sub(replace, value) if "${{" in value else value

    if isinstance(data, str):
        return text(data)
    if isinstance(data, Mapping):
        return {
            text(k) if isinstance(k, str) else k: substitute(v, values) for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [substitute(item, values) for item in data]
    return data


def compose_profiles(spec: Spec, variant: Variant) -> tuple[str, ...]:
    """The compose profiles a variant turns on: ``run.compose_profiles``, then those of every
    overlay that applies to it, in order."""
    active = dict.fromkeys(spec.run.compose_profiles)
    for overlay in spec.overlays:
        if when_matches(overlay.when, variant.values):
            active.update(dict.fromkeys(overlay.compose_profiles))
    return tuple(active)


def render(
    spec: Spec, variant: Variant, *, run_id: str, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The compose document of ``variant``: base files, then matching overlays, merged;
    matrix values substituted; labels (the run's and the variant's, and *labels*), loopback
    ports and absolute paths applied."""
    if not ID_PATTERN.match(run_id):
        raise UsageError(f"invalid run id {run_id!r}: use lowercase letters, digits, '-' and '_'")
    values = variant.values
    document: dict[str, Any] = {}
    for path in spec.compose:
        name = display_path(path)
        data = load_file(path, name).data
        if not isinstance(data, Mapping):
            raise SpecError(
                problem(name, None, "(root)", f"expected a compose mapping, found {describe(data)}")
            )
        document = merge(document, normalize(substitute(data, values), path.parent))
    for overlay in spec.overlays:
        if when_matches(overlay.when, values):
            document = merge(
                document, normalize(substitute(overlay.compose, values), spec.path.parent)
            )
    document = _inline_includes(document, ())
    document.pop("name", None)
    document.pop("version", None)
    _label(document, {**(labels or {}), names.RUN: run_id, names.VARIANT: variant.id})
    return document


MAX_INCLUDE_DEPTH = 8


def _inline_includes(document: dict[str, Any], chain: tuple[Path, ...]) -> dict[str, Any]:
    """The document with its ``include:`` files merged in, under it.

    Compose would load an included file as a model of its own, where the labels stackmatrix
    puts on every service, network and volume do not reach: inlined, they do, so what an
    include brings is labelled, waited for, logged and removed like the rest. Its relative
    paths are resolved against its own project directory, and an ``env_file`` of the entry
    interpolates its variables, as compose does.
    """
    entries = document.pop("include", None)
    if not entries:
        return document
    if not isinstance(entries, list):
        raise SpecError(f"include: expected a list of files, found {describe(entries)}")
    if len(chain) >= MAX_INCLUDE_DEPTH:
        raise SpecError(f"include: more than {MAX_INCLUDE_DEPTH} levels deep (at {chain[-1]})")
    included: dict[str, Any] = {}
    for entry in entries:
        item = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(item, Mapping) or not item.get("path"):
            raise SpecError(f"include: expected a path or a mapping with 'path', found {entry!r}")
        paths = [item["path"]] if isinstance(item["path"], str) else list(item["path"])
        env_files = item.get("env_file") or []
        env_files = [env_files] if isinstance(env_files, str) else list(env_files)
        environ = {k: v for f in env_files for k, v in read_env_file(Path(str(f)))}
        for raw in paths:
            path = Path(str(raw))
            name = display_path(path)
            if path in chain:
                raise SpecError(f"include: {name} includes itself")
            data = load_file(path, name).data
            if not isinstance(data, Mapping):
                raise SpecError(
                    problem(
                        name, None, "(root)", f"expected a compose mapping, found {describe(data)}"
                    )
                )
            if environ:
                data = _interpolated(data, {**environ, **os.environ})
            base = (
                Path(str(item["project_directory"]))
                if item.get("project_directory")
                else path.parent
            )
            part = _inline_includes(normalize(data, base), (*chain, path))
            part.pop("name", None)
            part.pop("version", None)
            included = merge(included, part)
    merged: dict[str, Any] = merge(included, document)
    return merged


def _interpolated(data: Any, environ: Mapping[str, str]) -> Any:
    """*data* with compose's ``${NAME}`` references replaced from *environ* (``$`` kept)."""
    if isinstance(data, str):
        return interpolate(data, environ).replace("$", "$$") if "$" in data else data
    if isinstance(data, Mapping):
        return {key: _interpolated(value, environ) for key, value in data.items()}
    if isinstance(data, list):
        return [_interpolated(item, environ) for item in data]
    return data


def _label(document: dict[str, Any], labels: Mapping[str, str]) -> None:
    services = document.get("services")
    if isinstance(services, dict):
        for service in services.values():
            if isinstance(service, dict):
                service["labels"] = {**as_mapping(service.get("labels")), **labels}
    networks = document.get("networks")
    document["networks"] = networks = dict(networks) if isinstance(networks, Mapping) else {}
    networks.setdefault("default", {})
    for section in ("networks", "volumes"):
        declared = document.get(section)
        if not isinstance(declared, dict):
            continue
        for name, config in declared.items():
            entry = {} if config is None else config
            if isinstance(entry, dict) and not entry.get("external"):
                entry["labels"] = {**as_mapping(entry.get("labels")), **labels}
            declared[name] = entry


# libyaml's emitter when PyYAML has it (4-5x faster; the same text for compose documents).
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


# Strings that a YAML 1.2 reader (compose) would read as numbers or booleans stay quoted.
_NOT_A_STRING = re.compile(
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|~|null|Null|NULL|)$"
)


def _represent_str(dumper: yaml.representer.SafeRepresenter, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else ("'" if _NOT_A_STRING.match(value) else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def holds_secrets(
    data: Mapping[str, Any], secret_names: Sequence[str] = (), project_dir: Path | None = None
) -> bool:
    """Whether a compose document carries something secret (so: keep it private): a value of
    a secret-looking variable or of one named in *secret_names* (the spec's ``secrets``)."""
    return bool(compose_secrets(data, secret_names, project_dir=project_dir)) or bool(
        SECRET_ASSIGNMENT.search(dump_compose(data))
    )


def load_compose(path: Path) -> dict[str, Any]:
    """A compose file stackmatrix wrote (``dump_compose``), read back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def dump_compose(data: Mapping[str, Any]) -> str:
    """YAML text of a compose document; the same data always gives the same bytes."""
    return yaml.dump(
        dict(data),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
    )
