"""The suites of a merged JUnit file (see :mod:`stackmatrix.junit.merge`): each suite of an
input becomes a new suite named and annotated with its variant (and what it ran), keeping the
input suite's metadata, its testcases in schema order with plain times and clipped attributes,
and counts recomputed from those testcases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from stackmatrix.junit.read import ETREE, Outcome, XmlElement, clean_xml_text, outcome_of, to_float
from stackmatrix.junit.write import (
    MAX_ATTRIBUTE_CHARS,
    PROPERTY_AXIS_PREFIX,
    PROPERTY_SOURCE,
    PROPERTY_VARIANT,
    SUITE_SEPARATOR,
    clip_attribute,
)
from stackmatrix.redact import redact_text
from stackmatrix.results.journal import Provenance, ServiceProvenance
from stackmatrix.spec.values import scalar_text

PROPERTY_PROVENANCE_PREFIX = "stackmatrix.provenance."
"""``stackmatrix.provenance.service.<service>.image`` (``.image_id``, ``.digest``,
``.version``, ``.version_source``), ``stackmatrix.provenance.python`` and
``stackmatrix.provenance.package.<name>``: what the variant of a suite ran."""

MAX_PROVENANCE_PACKAGES = 200
"""The most packages a variant's provenance keeps (the engine's bound too), all of them named
in a suite's properties; ``stackmatrix.provenance.packages_left_out`` counts the rest."""

MAX_PROVENANCE_CHARS = 1000
"""The longest provenance property value (a version string, say), cut beyond it."""

_SERVICE_FIELDS = tuple(f.name for f in dataclasses.fields(ServiceProvenance))
_SERVICE = "service."
_PACKAGE = "package."
_LEFT_OUT = "packages_left_out"


def provenance_properties(provenance: Provenance) -> list[tuple[str, str]]:
    """The properties that say what a variant ran (see :data:`PROPERTY_PROVENANCE_PREFIX`):
    only known values, masked, each at most :data:`MAX_PROVENANCE_CHARS` long."""
    pairs: list[tuple[str, str]] = []
    for service, found in provenance.services.items():
        pairs += [(f"{_SERVICE}{service}.{key}", getattr(found, key)) for key in _SERVICE_FIELDS]
    pairs.append(("python", provenance.python))
    packages = list(provenance.packages.items())
    pairs += [(f"{_PACKAGE}{name}", v) for name, v in packages[:MAX_PROVENANCE_PACKAGES]]
    left_out = max(0, len(packages) - MAX_PROVENANCE_PACKAGES) + provenance.packages_cut
    if left_out:
        pairs.append((_LEFT_OUT, str(left_out)))
    return [
        (
            clean_xml_text(PROPERTY_PROVENANCE_PREFIX + redact_text(key))[:MAX_PROVENANCE_CHARS],
            redact_text(value)[:MAX_PROVENANCE_CHARS],
        )
        for key, value in pairs
        if value
    ]


def provenance_of_properties(properties: Mapping[str, str]) -> Provenance:
    """What :func:`provenance_properties` wrote, read back from a suite's properties (the
    packages left out counted in ``packages_cut``)."""
    services: dict[str, dict[str, str]] = {}
    packages: dict[str, str] = {}
    python, left_out = "", 0
    for name, value in properties.items():
        if not name.startswith(PROPERTY_PROVENANCE_PREFIX):
            continue
        key = name.removeprefix(PROPERTY_PROVENANCE_PREFIX)
        if key == "python":
            python = value
        elif key.startswith(_PACKAGE):
            packages[key.removeprefix(_PACKAGE)] = value
        elif key == _LEFT_OUT:
            left_out = int(value) if value.isdigit() else 1
        elif key.startswith(_SERVICE):
            service, _, field = key.removeprefix(_SERVICE).rpartition(".")
            if service and field in _SERVICE_FIELDS:
                services.setdefault(service, {})[field] = value
    return Provenance(
        services={k: ServiceProvenance(**v) for k, v in services.items()},
        python=python,
        packages=packages,
        packages_cut=left_out,
    )


# Schema order of a testcase's children (properties first, as pytest writes them).
_CASE_CHILD_ORDER = {
    "properties": 0,
    "skipped": 1,
    "error": 2,
    "failure": 3,
    "system-out": 4,
    "system-err": 5,
}


def new_suite(
    name: str,
    variant_id: str | None,
    values: Mapping[str, Any],
    source: str,
    provenance: Provenance | None = None,
) -> XmlElement:
    """An empty suite named *name*, whose properties name its variant, the variant's matrix
    values, what it ran (*provenance*) and the file it came from."""
    suite = ETREE.Element("testsuite", {"name": clean_xml_text(name)})
    props = ETREE.SubElement(suite, "properties")
    pairs: list[tuple[str, str]] = []
    if variant_id is not None:
        pairs.append((PROPERTY_VARIANT, variant_id))
        pairs.extend((f"{PROPERTY_AXIS_PREFIX}{k}", scalar_text(v)) for k, v in values.items())
        pairs.extend(provenance_properties(provenance or Provenance()))
    pairs.append((PROPERTY_SOURCE, source))
    for key, value in pairs:
        ETREE.SubElement(props, "property", {"name": key, "value": clean_xml_text(value)})
    return suite


def finish_suite(suite: XmlElement, tally: dict[Outcome, int], time: float) -> None:
    """Set the counts of *suite* from *tally*, and its time unless it has a readable one."""
    suite.set("tests", str(sum(tally.values())))
    suite.set("failures", str(tally[Outcome.FAILED]))
    suite.set("errors", str(tally[Outcome.ERROR]))
    suite.set("skipped", str(tally[Outcome.SKIPPED]))
    _normalise_time(suite)
    if suite.get("time") is None:
        suite.set("time", f"{time:.3f}")


_PLAIN_TIMES: dict[str, str | None] = {}
_PLAIN_TIMES_KEPT = 65_536  # distinct times remembered: test runners write few


def _normalise_time(elem: XmlElement) -> None:
    """Write ``time`` as plain seconds (``1,234.5`` -> ``1234.500``); drop it if unreadable, since
    readers such as junitparser fail on a time that is not a number."""
    raw = elem.get("time")
    if raw is None:
        return
    plain = _PLAIN_TIMES.get(raw, raw)
    if plain is raw:  # not seen yet
        seconds = to_float(raw)
        plain = None if seconds is None else f"{seconds:.3f}"
        if len(_PLAIN_TIMES) < _PLAIN_TIMES_KEPT:
            _PLAIN_TIMES[raw] = plain
    if plain is None:
        del elem.attrib["time"]
    elif plain != raw:
        elem.set("time", plain)


def _clip_attributes(elem: XmlElement) -> None:
    for key, value in elem.attrib.items():
        if len(value) > MAX_ATTRIBUTE_CHARS:
            elem.set(key, clip_attribute(value))


def _as_text_element(child: XmlElement) -> XmlElement:
    kept = ETREE.Element("system-err")
    child.tail = None
    kept.text = clean_xml_text(ETREE.tostring(child, encoding="unicode").strip())
    return kept


def _normalise_case(case: XmlElement, prefix: str) -> Outcome:
    """Prefix the classname, cut huge attributes and put children in schema order."""
    classname = case.get("classname")
    if prefix:
        case.set("classname", f"{prefix} {classname}" if classname else prefix)
    if case.get("name") is None:
        case.set("name", "")
    _normalise_time(case)
    _clip_attributes(case)
    if not len(case):  # most testcases: passed, nothing inside
        if case.text is not None and not case.text.strip():
            case.text = None
        return Outcome.PASSED
    children = list(case)
    kept: list[XmlElement] = []
    extra: list[XmlElement] = []
    seen: set[str] = set()
    for child in children:
        tag = child.tag
        if tag not in _CASE_CHILD_ORDER or (tag in ("properties", "skipped") and tag in seen):
            extra.append(child)
        else:
            seen.add(tag)
            _clip_attributes(child)
            kept.append(child)
    # Elements the common schema has no place for (Surefire's flakyFailure, a second
    # <skipped>) are kept verbatim as text, so nothing the tests reported is lost.
    ordered = sorted(kept, key=lambda c: _CASE_CHILD_ORDER[c.tag]) + [
        _as_text_element(c) for c in extra
    ]
    if ordered != children:
        for child in children:
            case.remove(child)
        case.extend(ordered)
    if case.text is not None and not case.text.strip():
        case.text = None
    return outcome_of(case)[0]


def _copy_suite_metadata(
    original: XmlElement,
    suite: XmlElement,
    own_props: list[XmlElement],
    *,
    attributes: bool,
    drop_own: bool,
) -> None:
    """Carry over the suite's own attributes (counts excepted: they are recomputed) and
    properties; namespaced attributes such as Surefire's xsi:schemaLocation are left behind, and
    so are stackmatrix's own properties when the suite gets new ones (*drop_own*)."""
    if attributes:
        for key, value in original.attrib.items():
            if key not in ("name", "tests", "failures", "errors", "skipped") and key[:1] != "{":
                suite.set(key, clip_attribute(value))
    props = suite[0]
    for group in own_props:
        for prop in group:
            if prop.tag == "property" and not (
                drop_own and (prop.get("name") or "").startswith("stackmatrix.")
            ):
                prop.tail = None
                props.append(prop)


def is_container_only(original: XmlElement, cases: Sequence[XmlElement]) -> bool:
    """Whether *original* holds nothing but nested suites (each of them is merged itself)."""
    return (
        not cases
        and not any(c.tag in ("system-out", "system-err") for c in original)
        and any(c.tag == "testsuite" for c in original)
    )


def merged_suite(
    original: XmlElement,
    name: str,
    cases: Sequence[XmlElement],
    *,
    variant_id: str | None,
    values: Mapping[str, Any],
    source: str,
    copy_attributes: bool,
    provenance: Provenance | None = None,
) -> tuple[XmlElement, dict[Outcome, int]]:
    """The suite that stands for *original* (named *name*, holding *cases*) in the merged file,
    and its tally of outcomes; *copy_attributes*: carry over the attributes of *original*."""
    outputs = [c for c in original if c.tag in ("system-out", "system-err")]
    own_props = [c for c in original if c.tag == "properties"]
    full_name = f"{variant_id}{SUITE_SEPARATOR}{name}" if variant_id is not None else name
    suite = new_suite(full_name, variant_id, values, source, provenance)
    _copy_suite_metadata(
        original,
        suite,
        own_props,
        attributes=copy_attributes,
        drop_own=variant_id is not None,
    )
    prefix = f"[{variant_id}]" if variant_id is not None else ""
    tally, time = _append_cases(suite, cases, prefix)
    _append_outputs(suite, outputs)
    finish_suite(suite, tally, time)
    return suite, tally


def _append_cases(
    suite: XmlElement, cases: Sequence[XmlElement], prefix: str
) -> tuple[dict[Outcome, int], float]:
    """Append *cases* to *suite*, normalised; return their tally of outcomes and their time."""
    tally = dict.fromkeys(Outcome, 0)
    time = 0.0
    for case in cases:
        outcome = _normalise_case(case, prefix)
        tally[outcome] += 1
        time += to_float(case.get("time")) or 0.0
        suite.append(case)
    return tally, time


def _append_outputs(suite: XmlElement, outputs: Sequence[XmlElement]) -> None:
    """Append the input suite's system-out and system-err, each joined into one element."""
    for tag in ("system-out", "system-err"):
        chunks = [c.text or "" for c in outputs if c.tag == tag]
        if any(chunks):
            ETREE.SubElement(suite, tag).text = "\n".join(chunks)
