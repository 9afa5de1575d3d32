"""The template syntax of a matrix file: ``${{ ... }}`` (the one GitHub Actions users know).

* In compose fragments and base compose files only ``${{ matrix.KEY }}`` is substituted;
  compose's own ``${VAR}`` is not touched.
* In ``tests.command``, ``tests.rerun``, ``tests.env`` and ``tests.setup``: ``matrix.KEY``,
  ``ports.SERVICE.PORT``, ``variant``, ``run_id``, ``variant_dir`` (the variant's private
  folder on the host), ``junit``, ``failed`` (the testcases a ``run --failed-tests`` runs
  again, empty otherwise).
* The older forms ``{{ ... }}`` (without ``$``) and ``{junit}`` still work there, with a
  deprecation warning (:func:`legacy_forms`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from stackmatrix.errors import SpecError
from stackmatrix.spec.values import scalar_text

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
TEMPLATE = re.compile(r"\$?\{\{\s*(.*?)\s*\}\}|\{junit\}")
# `{{ ... }}` not preceded by `$`: the older form (or, in compose text, a literal).
BARE = re.compile(r"(?<!\$)\{\{\s*(.*?)\s*\}\}")
LEGACY_BRACES = "{{ ... }}"
LEGACY_JUNIT = "{junit}"
_MATRIX = re.compile(r"^matrix\.(?P<key>[^\s.{}]+)$")
_PORTS = re.compile(r"^ports\.(?P<service>[^\s{}]+)\.(?P<port>[0-9]+)$")
_WORDS = ("variant", "run_id", "variant_dir", "junit", "failed")
# `{{ failed }}` as a whole word of a command: the testcases to run again, one word each.
FAILED_ANYWHERE = re.compile(r"\$?\{\{\s*failed\s*\}\}")
FAILED_WORD = re.compile(rf"^{FAILED_ANYWHERE.pattern}$")


class TemplateError(SpecError):
    """A ``${{ ... }}`` reference cannot be expanded (unknown port, unknown key)."""


class Reference(NamedTuple):
    """One parsed reference: ``kind`` is matrix, ports, variant, run_id or junit."""

    kind: str
    text: str
    key: str = ""
    service: str = ""
    port: int = 0


def parse_reference(inner: str) -> Reference | None:
    """Parse the inside of ``{{ ... }}``; None if it is not a reference stackmatrix knows."""
    if inner in _WORDS:
        return Reference(inner, inner)
    if match := _MATRIX.match(inner):
        return Reference("matrix", inner, key=match["key"])
    if match := _PORTS.match(inner):
        return Reference("ports", inner, service=match["service"], port=int(match["port"]))
    return None


def references(text: str, *, compose: bool) -> Iterator[tuple[str, Reference | None]]:
    """Every ``(expression, reference)`` in ``text``; compose text only knows ``matrix.KEY``."""
    pattern = EXPRESSION if compose else TEMPLATE
    for match in pattern.finditer(text):
        inner = "junit" if match[0] == "{junit}" else match[1]
        ref = parse_reference(inner)
        if compose and ref is not None and ref.kind != "matrix":
            ref = None
        yield match[0], ref


def legacy_forms(text: str) -> Iterator[tuple[str, str]]:
    """Every ``(form, expression)`` of the older syntax in a tests text: ``{{ ... }}``
    written without ``$``, and ``{junit}``."""
    for match in TEMPLATE.finditer(text):
        if match[0] == "{junit}":
            yield LEGACY_JUNIT, match[0]
        elif not match[0].startswith("$"):
            yield LEGACY_BRACES, match[0]


def stray_references(text: str) -> Iterator[tuple[str, Reference]]:
    """``{{ ... }}`` without ``$`` in compose text whose inside is a stackmatrix reference:
    it would stay literal (only ``${{ matrix.KEY }}`` is substituted there). Other
    ``{{ ... }}`` (Go templates like ``{{.State}}``) are compose's business."""
    for match in BARE.finditer(text):
        ref = parse_reference(match[1])
        if ref is not None:
            yield match[0], ref


def modern(expression: str) -> str:
    """The ``${{ ... }}`` spelling of a reference written in any form."""
    inner = "junit" if expression == "{junit}" else expression.lstrip("$")[2:-2].strip()
    return f"${{{{ {inner} }}}}"


def expand_template(
    text: str, context: Mapping[str, Any], *, quote: Callable[[str], str] | None = None
) -> str:
    """Expand ``{{ ports.S.P }}``, ``{{ matrix.K }}``, ``{{ variant }}``, ``{{ run_id }}``,
    ``{{ junit }}`` (and ``{junit}``) in ``text``.

    ``context`` holds ``matrix`` (values), ``ports`` (service -> container port ->
    ``127.0.0.1:HOSTPORT``), ``variant``, ``run_id`` and ``junit``. Raises TemplateError for a
    reference that cannot be expanded. *quote* is applied to every value put in (a shell
    command line gets ``shlex.quote``: a value is always one word, never shell code).
    """
    put = quote or str
    return TEMPLATE.sub(lambda match: put(_value(match, context)), text)


def _value(match: re.Match[str], context: Mapping[str, Any]) -> str:
    """The text one reference stands for."""
    inner = "junit" if match[0] == "{junit}" else match[1]
    ref = parse_reference(inner)
    if ref is None:
        raise TemplateError(f"{match[0]}: unknown reference; {_KNOWN}")
    if ref.kind == "matrix":
        return scalar_text(Mapping.get(context.get("matrix") or {}, ref.key))
    if ref.kind == "ports":
        return _port(match[0], ref, context.get("ports") or {})
    if ref.kind not in context:
        raise TemplateError(f"{match[0]}: no value for {ref.kind!r} here")
    return scalar_text(context[ref.kind])


_KNOWN = (
    "expected one of ${{ matrix.KEY }}, ${{ ports.SERVICE.PORT }}, ${{ variant }}, "
    "${{ run_id }}, ${{ variant_dir }}, ${{ junit }}, ${{ failed }}"
)


def _port(expression: str, ref: Reference, ports: Mapping[str, Mapping[Any, str]]) -> str:
    published = ports.get(ref.service) or {}
    for port, address in published.items():
        if str(port).removesuffix("/tcp") == str(ref.port):
            return address
    known = ", ".join(f"{service}.{port}" for service in ports for port in ports[service])
    where = f"service {ref.service!r} publishes no port {ref.port}"
    if ref.service not in ports:
        where = f"service {ref.service!r} publishes no ports"
    raise TemplateError(f"{expression}: {where}; published: {known or 'none'}")
