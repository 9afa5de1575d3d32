"""Load and validate a matrix file into a `Spec`, reporting every problem with FILE:LINE:COL."""

from __future__ import annotations

import os
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stackmatrix.errors import SpecError
from stackmatrix.spec.checks import check, did_you_mean
from stackmatrix.spec.models import (
    PROBE_KINDS,
    PROBE_SHORTHAND,
    CommandProbe,
    HttpProbe,
    LogProbe,
    Overlay,
    PostgresProbe,
    Probe,
    Profile,
    ProfileExtension,
    RedisProbe,
    RunOptions,
    Spec,
    TcpProbe,
    TestsSpec,
    VersionQuery,
    describe,
)
from stackmatrix.spec.source import Document, KeyPath, Mark, format_path, load_file, problem
from stackmatrix.spec.templates import LEGACY_JUNIT
from stackmatrix.spec.values import Scalar

__all__ = [
    "CommandProbe",
    "HttpProbe",
    "LogProbe",
    "Overlay",
    "PostgresProbe",
    "Probe",
    "Profile",
    "ProfileExtension",
    "RedisProbe",
    "RunOptions",
    "Scalar",
    "Spec",
    "SpecDeprecationWarning",
    "TcpProbe",
    "TestsSpec",
    "VersionQuery",
    "load_spec",
]


class SpecDeprecationWarning(FutureWarning):
    """A matrix file uses a form that still works but will not in a later version."""


_NAME_RULE = "a name of lowercase letters, digits, '-' and '_' that starts with a letter or digit"
# Compiled by re when an error first needs it, not by every start.
_UNION_PART = r"^(function-\w+|tagged-union|nullable|union|json-or-python|lax-or-strict)\["


class _Source:
    """Maps validation locations back to positions in the matrix file."""

    def __init__(self, name: str, document: Document) -> None:
        self.name = name
        self.document = document
        self.renames: dict[KeyPath, KeyPath] = {}
        self.leaves: set[KeyPath] = set()  # values that validation split into parts
        self.found: list[tuple[Mark, str]] = []

    def original(self, loc: KeyPath) -> KeyPath:
        for _ in range(4):  # renames chain: a probe shorthand inside a single-probe mapping
            for end in range(len(loc), 0, -1):
                target = self.renames.get(loc[:end])
                if target is not None:
                    loc = target + loc[end:]
                    break
            else:
                break
        for end in range(1, len(loc)):
            if loc[:end] in self.leaves:
                return loc[:end]
        return loc

    def add(self, loc: KeyPath, message: str, *, at_key: bool = False) -> None:
        path = self.original(loc)
        mark = self.document.key_mark(path) if at_key else self.document.value_mark(path)
        self.found.append((mark, problem(self.name, mark, format_path(path), message)))

    def raise_found(self, external: Sequence[str] = ()) -> None:
        if self.found or external:
            lines = [text for _, text in sorted(dict.fromkeys(self.found), key=lambda f: f[0])]
            raise SpecError(lines + list(dict.fromkeys(external)))


def load_spec(path: Path, *, profile: str | None = None) -> Spec:
    """Load, validate and check a matrix file; apply ``profile`` if given.

    Raises SpecError listing every problem, each as ``FILE:LINE:COL: key.path: message``.
    """
    if profile is not None:
        load_spec(path)  # the file without the profile must be valid too
    name = str(path)
    absolute = Path(os.path.abspath(path))  # noqa: PTH100 - keep symlinks as the user wrote them
    document = load_file(absolute, name)
    source = _Source(name, document)
    raw = document.data
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else describe(raw)
        source.add((), f"expected a mapping with keys like name, axes and tests, found {found}")
        source.raise_found()
    data = _prepare(raw, source, absolute, profile)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _report(error, source)
        source.raise_found()
        raise AssertionError("unreachable") from exc  # pragma: no cover
    checker = check(spec)
    for issue in checker.issues:
        source.add(issue.loc, issue.message, at_key=issue.at_key)
    source.raise_found(checker.external)
    _warn_deprecated(checker.deprecated, source)
    return spec


def _warn_deprecated(found: Sequence[tuple[KeyPath, str, str]], source: _Source) -> None:
    """One warning per older template form: where it is first used, and how many more.

    The same file gives the same text, so loading it again in one process (a profile, the nox
    sessions) does not repeat it: the warnings module shows each text once per place.
    """
    by_form: dict[str, list[tuple[Mark, str]]] = {}
    for loc, form, expression in found:
        path = source.original(loc)
        mark = source.document.value_mark(path)
        by_form.setdefault(form, []).append((mark, expression))
    for form, uses in by_form.items():
        mark, expression = min(uses, key=lambda use: use[0])
        more = f" (and {len(uses) - 1} more)" if len(uses) > 1 else ""
        spelled = "${{ junit }}" if form == LEGACY_JUNIT else "${{ ... }}"
        warnings.warn(
            f"{source.name}:{mark.line}: {expression}{more}: the {form} form is deprecated;"
            f" write {spelled}",
            SpecDeprecationWarning,
            stacklevel=1,  # one place: the same text is shown once, whoever loads the file
        )


def _prepare(
    raw: dict[str, Any], source: _Source, path: Path, profile: str | None
) -> dict[str, Any]:
    data = {k: v for k, v in raw.items() if not k.startswith("x-")}
    for key in ("path", "profile"):
        if key in data:
            del data[key]
            hint = did_you_mean(key, _allowed_keys(()))
            source.add((key,), f"unknown key {key!r}{hint}", at_key=True)
    if profile is not None:
        data = _apply_profile(data, profile, source)
    _desugar_ready(data, source)
    if isinstance(data.get("compose"), str):
        source.renames[("compose", 0)] = ("compose",)
    tests = data.get("tests")
    for key in ("command", "rerun", "versions"):
        if isinstance(tests, dict) and isinstance(tests.get(key), str):
            source.leaves.add(("tests", key))
    for service, query in _mapping(data.get("versions")).items():
        if isinstance(query, dict) and isinstance(query.get("command"), str):
            source.leaves.add(("versions", service, "command"))
    setup = tests.get("setup") if isinstance(tests, dict) else None
    if isinstance(setup, dict):
        source.renames[("tests", "setup", 0)] = ("tests", "setup")
    steps = [setup] if isinstance(setup, dict) else setup if isinstance(setup, list) else []
    for index, step in enumerate(steps):
        if isinstance(step, dict) and isinstance(step.get("command"), str):
            base = ("tests", "setup") if isinstance(setup, dict) else ("tests", "setup", index)
            source.leaves.add((*base, "command"))
    data.setdefault("name", _default_name(path))
    data["path"] = path
    data["profile"] = profile
    return data


def _default_name(path: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.parent.name.lower()).strip("-")[:30].strip("-_")
    return slug or "stack"


def _mapping(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _apply_profile(data: dict[str, Any], name: str, source: _Source) -> dict[str, Any]:
    """The raw document with profile ``name`` applied: its sections replace, ``extend`` appends."""
    profiles = _mapping(data.get("profiles"))
    if name not in profiles:
        hint = did_you_mean(name, profiles, "profiles are") or " — the file defines no profiles"
        source.add(
            ("profiles",) if profiles else (),
            f"unknown profile {name!r}{hint}",
            at_key=bool(profiles),
        )
        source.raise_found()
    chosen = _mapping(profiles[name])
    base: KeyPath = ("profiles", name)
    out = dict(data)
    extend = _mapping(chosen.get("extend"))
    if "axes" in chosen or "axes" in extend:
        axes = _mapping(data.get("axes"))
        for key, values in _mapping(chosen.get("axes")).items():
            axes[key] = values
            source.renames[("axes", key)] = (*base, "axes", key)
        for key, values in _mapping(extend.get("axes")).items():
            _append(
                axes, key, values, source, loc=("axes", key), origin=(*base, "extend", "axes", key)
            )
        out["axes"] = axes
    for section in ("exclude", "include"):
        if chosen.get(section) is not None:
            out[section] = chosen[section]
            source.renames[(section,)] = (*base, section)
        if section in extend:
            origin = (*base, "extend", section)
            _append(out, section, extend[section], source, loc=(section,), origin=origin)
    if isinstance(chosen.get("run"), dict):
        out["run"] = {**_mapping(data.get("run")), **chosen["run"]}
        for key in chosen["run"]:
            source.renames[("run", key)] = (*base, "run", key)
    return out


def _append(
    target: dict[str, Any],
    key: str,
    items: object,
    source: _Source,
    *,
    loc: KeyPath,
    origin: KeyPath,
) -> None:
    old = target.get(key)
    if isinstance(old, list) and isinstance(items, list):
        target[key] = old + items
        for i in range(len(items)):
            source.renames[(*loc, len(old) + i)] = (*origin, i)
    else:
        target[key] = items
        source.renames[loc] = origin


def _desugar_ready(data: dict[str, Any], source: _Source) -> None:
    """``{db: {postgres: 5432}}`` -> ``{db: [{kind: postgres, port: 5432}]}``."""
    ready = data.get("ready")
    if not isinstance(ready, dict):
        return
    out: dict[str, Any] = {}
    for service, given in ready.items():
        probes = [given] if isinstance(given, dict) else given
        if isinstance(given, dict):
            source.renames[("ready", service, 0)] = ("ready", service)
        if not isinstance(probes, list):
            found = describe(probes)
            source.add(("ready", service), f"expected a probe or a list of probes, found {found}")
            continue
        parsed = [_probe(item, ("ready", service, i), source) for i, item in enumerate(probes)]
        out[service] = [probe for probe in parsed if probe is not None]
    data["ready"] = out


def _probe(item: object, loc: KeyPath, source: _Source) -> dict[str, Any] | None:
    kinds = ", ".join(PROBE_KINDS)
    if not isinstance(item, dict) or len(item) != 1:
        found = f"keys {', '.join(map(repr, item))}" if isinstance(item, dict) else describe(item)
        source.add(loc, f"expected a probe with exactly one of {kinds}, found {found}")
        return None
    ((kind, value),) = item.items()
    if kind not in PROBE_KINDS:
        source.add(
            (*loc, kind), f"unknown probe {kind!r}{did_you_mean(kind, PROBE_KINDS)}", at_key=True
        )
        return None
    if isinstance(value, dict):
        return {"kind": kind, **value}
    short = PROBE_SHORTHAND[kind]
    source.renames[(*loc, kind, short)] = (*loc, kind)
    return {"kind": kind, short: value}


def _report(error: ErrorDetails, source: _Source) -> None:
    loc: KeyPath = tuple(
        p for p in error["loc"] if not (isinstance(p, str) and re.match(_UNION_PART, p))
    )
    kind = error["type"]
    found = error.get("input")
    ctx = error.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        source.add(loc[:-1], f"expected a string key, found {describe(found)}", at_key=True)
        return
    match kind:
        case "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            source.add(
                loc, f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), allowed)}", at_key=True
            )
        case "missing":
            source.add(loc[:-1], f"missing required key {loc[-1]!r}")
        case "string_pattern_mismatch" if loc == ("name",):
            source.add(loc, f"expected {_NAME_RULE}, found {describe(found)}")
        case _:
            source.add(loc, _message(kind, error["msg"], found, ctx))


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "path_type": "a path",
}


def _message(kind: str, msg: str, found: object, ctx: Mapping[str, Any]) -> str:
    if kind == "stackmatrix":
        return msg
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, found {describe(found)}"
    bounds = {
        "greater_than_equal": ">= {ge}",
        "greater_than": "> {gt}",
        "less_than_equal": "<= {le}",
        "less_than": "< {lt}",
    }
    if kind in bounds:
        return f"expected a number {bounds[kind].format(**ctx)}, found {describe(found)}"
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return f"expected at most {limit} characters, found {len(str(found))} in {describe(found)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == "^/":
        return f"expected a path that starts with '/', found {describe(found)}"
    if kind == "string_pattern_mismatch":
        return f"expected a string matching {ctx.get('pattern')}, found {describe(found)}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, found {describe(found)}"
    return f"{msg[:1].lower()}{msg[1:]}, found {describe(found)}"


def _allowed_keys(loc: KeyPath) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    internal = ("path", "profile") if model is Spec else ("kind",)
    return [name for name in model.model_fields if name not in internal]


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    current: Any = Spec
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _step(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in args if a is not type(None)]
        for member in members:
            kind = getattr(member, "model_fields", {}).get("kind")
            if kind is not None and kind.default == part:
                return member
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        return _step(models[0], part) if len(models) == 1 else None
    if origin in (tuple, list) and isinstance(part, int):
        return args[0]
    if origin in (dict, Mapping):
        return args[1]
    return None
