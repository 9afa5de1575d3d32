"""Checks of a matrix file that span several keys: axes vs exclude/include/overlays,
template references, services known from the compose files."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from stackmatrix.errors import SpecError
from stackmatrix.spec.models import AXIS_PATTERN, Spec, describe
from stackmatrix.spec.source import (
    Document,
    KeyPath,
    format_path,
    load_file,
    problem,
    read_text,
)
from stackmatrix.spec.templates import legacy_forms, modern, references, stray_references
from stackmatrix.spec.values import Scalar, env_name

# Expansion is linear in the cross product: cap it so a typo cannot expand 10**10 variants.
MAX_COMBINATIONS = 100_000


class Issue(NamedTuple):
    """A problem at a key path of the matrix file (``at_key``: point at the key, not the value)."""

    loc: KeyPath
    message: str
    at_key: bool = False


def did_you_mean(word: str, choices: Iterable[str], what: str = "") -> str:
    """`` — did you mean 'x'?``, or `` — expected one of: a, b``, or empty without choices."""
    import difflib  # noqa: PLC0415 - a suggestion is only made for a mistake

    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" — did you mean {close[0]!r}?"
    if not options:
        return ""
    return f" — {what or 'expected one of'}: {', '.join(options)}"


def display_path(path: Path) -> str:
    """A path as messages show it: relative to the working directory when below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def value_key(value: Scalar) -> tuple[str, Scalar]:
    """Equality of matrix values: ``1 == 1.0``, but ``1 != true`` and ``1 != '1'``."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    return ("string", value)


def show(value: Scalar) -> str:
    """A matrix value as messages show it."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def walk_strings(data: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """Every string value inside nested mappings and lists, with its path."""
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from walk_strings(value, (*path, key))
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            yield from walk_strings(value, (*path, index))


_MATRIX_FORM = "${{ matrix.KEY }}"
# References that mean nothing in a setup step: it writes no report and reruns nothing.
_NOT_IN_SETUP = ("junit", "failed")


class TemplateText(NamedTuple):
    """A text of the matrix file whose ``${{ ... }}`` stackmatrix expands for the tests:
    where it is, what it says, and where it runs (``host`` or a service)."""

    loc: KeyPath
    text: str
    where: str
    setup: bool = False


def template_texts(spec: Spec) -> list[TemplateText]:
    """Every templated text of ``tests``: command, rerun, env, and each setup step's."""
    tests = spec.tests
    texts: list[TemplateText] = []

    def add(
        loc: KeyPath, command: tuple[str, ...] | str | None, where: str, *, setup: bool
    ) -> None:
        if isinstance(command, str):
            texts.append(TemplateText(loc, command, where, setup))
        elif command is not None:
            texts.extend(TemplateText((*loc, i), w, where, setup) for i, w in enumerate(command))

    add(("tests", "command"), tests.command, tests.where, setup=False)
    add(("tests", "rerun"), tests.rerun, tests.where, setup=False)
    texts += [TemplateText(("tests", "env", k), v, tests.where) for k, v in tests.env.items()]
    for index, step in enumerate(tests.setup):
        base = ("tests", "setup", index)
        add((*base, "command"), step.command, step.where, setup=True)
        texts += [
            TemplateText((*base, "env", k), v, step.where, setup=True) for k, v in step.env.items()
        ]
    return texts


class Checker:
    """Collects the cross-key problems of one validated spec."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.issues: list[Issue] = []
        # Older template forms in use: (key path, form, expression), in file order.
        self.deprecated: list[tuple[KeyPath, str, str]] = []
        self.external: list[str] = []  # problems located in other files (compose files)
        self.services: set[str] | None = set()
        # A profile narrows the axes: values were checked against the whole file already.
        self.all_values = spec.profile is None

    def add(self, loc: KeyPath, message: str, *, at_key: bool = False) -> None:
        self.issues.append(Issue(loc, message, at_key))

    def run(self) -> None:
        self.check_axes()
        self.check_exclude()
        self.check_include()
        self.check_overlays()
        self.check_compose_files()
        self.check_services()
        self.check_tests()
        self.check_environment_names()

    def check_axes(self) -> None:
        spec = self.spec
        if not spec.axes and not spec.include:
            self.add((), "expected at least one axis under 'axes' or one entry under 'include'")
        combinations = math.prod(len(values) for values in spec.axes.values())
        if combinations > MAX_COMBINATIONS:
            self.add(
                ("axes",),
                f"the axes multiply to {combinations:,} combinations; at most "
                f"{MAX_COMBINATIONS:,} are supported (split the matrix, or move the wide "
                "axes into a profile)",
                at_key=True,
            )
        for name, values in spec.axes.items():
            if not re.match(AXIS_PATTERN, name):
                self.add(
                    ("axes", name),
                    f"invalid axis name {name!r}: use letters, digits, '-' and '_', "
                    "starting with a letter or '_'",
                    at_key=True,
                )
            if not values:
                self.add(("axes", name), f"axis {name!r} has no values; expected a non-empty list")
            seen: dict[tuple[str, Scalar], int] = {}
            for index, value in enumerate(values):
                first = seen.setdefault(value_key(value), index)
                if first != index:
                    self.add(
                        ("axes", name, index),
                        f"duplicate value {show(value)} (same as index {first})",
                    )
                if name == "experimental" and not isinstance(value, bool):
                    self.add(
                        ("axes", name, index), f"expected true or false, found {describe(value)}"
                    )

    def check_exclude(self) -> None:
        axes = self.spec.axes
        for index, entry in enumerate(self.spec.exclude):
            if not entry:
                self.add(
                    ("exclude", index), "an empty exclude entry would exclude every combination"
                )
            for key, value in entry.items():
                if key not in axes:
                    hint = did_you_mean(key, axes, "axes are")
                    self.add(("exclude", index, key), f"unknown axis {key!r}{hint}", at_key=True)
                elif self.all_values and value_key(value) not in {value_key(v) for v in axes[key]}:
                    known = ", ".join(show(v) for v in axes[key])
                    self.add(
                        ("exclude", index, key),
                        f"{show(value)} is not a value of axis {key!r} (values: {known})",
                    )

    def check_include(self) -> None:
        for index, entry in enumerate(self.spec.include):
            if not entry:
                self.add(("include", index), "an empty include entry adds nothing")
            flag = entry.get("experimental", False)
            if not isinstance(flag, bool):
                self.add(
                    ("include", index, "experimental"),
                    f"expected true or false, found {describe(flag)}",
                )

    def known_values(self) -> dict[str, set[tuple[str, Scalar]]]:
        """Every value each matrix key can take."""
        known: dict[str, set[tuple[str, Scalar]]] = {
            k: {value_key(v) for v in vs} for k, vs in self.spec.axes.items()
        }
        for entry in self.spec.include:
            for key, value in entry.items():
                known.setdefault(key, set()).add(value_key(value))
        known.setdefault("experimental", set()).update({value_key(True), value_key(False)})
        return known

    def check_overlays(self) -> None:
        known = self.known_values()
        for index, overlay in enumerate(self.spec.overlays):
            for key, values in overlay.when.items():
                loc = ("overlays", index, "when", key)
                if key not in known:
                    self.add(
                        loc, f"unknown matrix key {key!r}{did_you_mean(key, known)}", at_key=True
                    )
                    continue
                for position, value in enumerate(values):
                    if self.all_values and value_key(value) not in known[key]:
                        where = loc if len(values) == 1 else (*loc, position)
                        self.add(where, f"{show(value)} is never a value of {key!r}")
            for path, text in walk_strings(overlay.compose, ("overlays", index, "compose")):
                for message in self.expression_problems(text):
                    self.add(path, message)

    def expression_problems(self, text: str) -> Iterator[str]:
        keys = self.spec.matrix_keys
        for expression, stray in stray_references(text):
            if stray.kind == "matrix":
                yield (
                    f"{expression} would stay literal here: write {modern(expression)}"
                    " (compose fragments substitute only ${{ matrix.KEY }})"
                )
            else:
                yield (
                    f"{expression} would stay literal here: compose fragments substitute only"
                    f" {_MATRIX_FORM}; {stray.kind} is known to tests.command, tests.env and"
                    " tests.setup"
                )
        for expression, ref in references(text, compose=True):
            if ref is None:
                yield f"unsupported expression {expression}: only {_MATRIX_FORM} is substituted"
            elif ref.key not in keys and ref.key != "experimental":
                yield f"unknown matrix key {ref.key!r} in {expression}{did_you_mean(ref.key, keys)}"

    def check_compose_files(self) -> None:
        for index, path in enumerate(self.spec.compose):
            if not path.is_file():
                self.add(("compose", index), f"file not found: {display_path(path)}")
                self.services = None
                continue
            name = display_path(path)
            try:
                document = load_file(path, name)
            except SpecError as exc:
                self.external.extend(exc.problems)
                self.services = None
                continue
            self.scan_compose(document, name)

    def scan_compose(self, document: Document, name: str) -> None:
        data = document.data
        if not isinstance(data, Mapping):
            self.external.append(
                problem(
                    name,
                    document.value_mark(()),
                    "(root)",
                    f"expected a compose mapping, found {describe(data)}",
                )
            )
            self.services = None
            return
        services = data.get("services") or {}
        if isinstance(services, Mapping) and self.services is not None:
            self.services.update(services)
        for path, text in walk_strings(data, ()):
            for message in self.expression_problems(text):
                self.external.append(
                    problem(name, document.value_mark(path), format_path(path), message)
                )

    def check_services(self) -> None:
        for overlay in self.spec.overlays:
            services = overlay.compose.get("services")
            if isinstance(services, Mapping) and self.services is not None:
                self.services.update(services)
        if self.services is None:
            return  # a compose file is broken: do not guess
        if not self.services:
            self.add(
                (), "no services: list compose files under 'compose' or add services in an overlay"
            )
            return
        named: dict[str, Iterable[str]] = {"ready": self.spec.ready, "versions": self.spec.versions}
        for key, services in named.items():
            for service in services:
                if service not in self.services:
                    hint = did_you_mean(service, self.services, "services are")
                    self.add((key, service), f"unknown service {service!r}{hint}", at_key=True)
        for first, second in _colliding(sorted(self.services)):
            self.add(
                (),
                f"services {first!r} and {second!r} give the tests the same variables"
                f" ({env_name(first)}_PORT): rename one of them",
            )

    def check_environment_names(self) -> None:
        """Two matrix keys that become one STACKMATRIX_AXIS_ variable would overwrite it."""
        keys = list(dict.fromkeys([*self.spec.axes, *self.spec.matrix_keys]))
        for first, second in _colliding(keys):
            self.add(
                ("axes", second) if second in self.spec.axes else (),
                f"matrix keys {first!r} and {second!r} both become {env_name('axis', first)}:"
                " rename one of them",
                at_key=second in self.spec.axes,
            )

    def check_tests(self) -> None:
        tests = self.spec.tests
        if tests.where != "host" and self.services is not None and tests.where not in self.services:
            hint = did_you_mean(tests.where, self.services, "expected 'host' or a service")
            self.add(("tests", "where"), f"unknown service {tests.where!r}{hint}")
        for index, step in enumerate(tests.setup):
            if (
                step.where != "host"
                and self.services is not None
                and step.where not in self.services
            ):
                hint = did_you_mean(step.where, self.services, "expected 'host' or a service")
                self.add(
                    ("tests", "setup", index, "where"), f"unknown service {step.where!r}{hint}"
                )
        keys = self.spec.matrix_keys
        for item in template_texts(self.spec):
            loc = item.loc
            for form, expression in legacy_forms(item.text):
                self.deprecated.append((loc, form, expression))
            for expression, ref in references(item.text, compose=False):
                if ref is None:
                    self.add(loc, f"unknown reference {expression}: expected matrix.KEY, "
                                  "ports.SERVICE.PORT, variant, run_id, variant_dir, junit or "
                                  "failed")  # fmt: skip
                elif ref.kind == "matrix" and ref.key not in keys and ref.key != "experimental":
                    hint = did_you_mean(ref.key, keys)
                    self.add(loc, f"unknown matrix key {ref.key!r} in {expression}{hint}")
                elif ref.kind == "ports" and self.services and ref.service not in self.services:
                    hint = did_you_mean(ref.service, self.services, "services are")
                    self.add(loc, f"unknown service {ref.service!r} in {expression}{hint}")
                elif item.setup and ref.kind in _NOT_IN_SETUP:
                    self.add(loc, f"{expression} means nothing in a setup step (only the tests"
                                  " write a report or run failed testcases again)")  # fmt: skip
                elif ref.kind == "variant_dir" and item.where != "host":
                    self.add(loc, f"{expression} is a folder on the host; this command runs in"
                                  f" service {item.where!r}")  # fmt: skip


def _colliding(names: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of distinct names that become the same environment variable name."""
    first: dict[str, str] = {}
    pairs = []
    for name in names:
        seen = first.setdefault(env_name(name), name)
        if seen != name:
            pairs.append((seen, name))
    return pairs


def spec_location(spec: Spec, loc: KeyPath, needle: str = "") -> str:
    """``FILE:LINE:COL: key.path`` of the value at *loc* in the spec's file; the column is
    that of *needle* (a template reference) when it is on the value's first lines."""
    name = display_path(spec.path)
    try:
        document = load_file(spec.path, name)
    except SpecError:
        return f"{name}: {format_path(loc)}"
    path = loc
    if path[:3] == ("tests", "setup", 0) and ("tests", "setup", 0) not in document.values:
        path = ("tests", "setup", *path[3:])  # one step written as a mapping, not a list
    mark = document.value_mark(path)
    line, column = mark.line, mark.column
    if needle:
        lines = read_text(spec.path, name).splitlines()
        for number in range(mark.line, min(mark.line + 20, len(lines)) + 1):
            start = mark.column - 1 if number == mark.line else 0
            found = lines[number - 1].find(needle, start)
            if found >= 0:
                line, column = number, found + 1
                break
    return f"{name}:{line}:{column}: {format_path(path)}"


def check(spec: Spec) -> Checker:
    """Cross-key problems of ``spec``: ``issues`` in the matrix file, ``external`` problems in
    compose files, and the ``deprecated`` template forms it uses."""
    checker = Checker(spec)
    checker.run()
    return checker
