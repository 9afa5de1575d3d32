"""The suites of a merged JUnit file (see :mod:`stackmatrix.junit.merge`): each suite of an
input becomes a new suite named and annotated with its variant (and what it ran), keeping the
input suite's metadata, its testcases in schema order with plain times and clipped attributes,
and counts recomputed from those testcases.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import Any, cast

from stackmatrix.junit.read import (
    ETREE,
    CaseResult,
    Outcome,
    XmlElement,
    clean_xml_text,
    new_case_result,
    outcome_of,
    result_of,
    to_float,
    to_int,
)
from stackmatrix.junit.serialise import (
    ATTRIBUTE_SPECIAL,
    escape_attribute,
    escape_text,
    is_plain,
    serialise,
    serialise_around,
)
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


def merged_suite_text(
    original: XmlElement,
    name: str,
    cases: Sequence[XmlElement],
    *,
    variant_id: str | None,
    values: Mapping[str, Any],
    source: str,
    copy_attributes: bool,
    provenance: Provenance | None = None,
    read: list[CaseResult] | None = None,
    read_as: str = "",
) -> tuple[str, dict[Outcome, int], float]:
    """The XML text of :func:`merged_suite` (a line break after it), its tally and the time it
    gives the suite, written without moving the testcases into a new tree: most testcases
    (passed, nothing inside) are written straight from their attributes. With *read*, every
    testcase is also appended to it as :func:`~stackmatrix.junit.read.iter_cases` reads it
    (suite named *read_as*), from the input as it was."""
    suite = new_suite(
        f"{variant_id}{SUITE_SEPARATOR}{name}" if variant_id is not None else name,
        variant_id,
        values,
        source,
        provenance,
    )
    # Looked for in C: a suite holds thousands of testcases beside them.
    _copy_suite_metadata(
        original,
        suite,
        original.findall("properties"),
        attributes=copy_attributes,
        drop_own=variant_id is not None,
    )
    outputs = original.findall("system-out") + original.findall("system-err")
    _append_outputs(suite, outputs)
    prefix = f"[{variant_id}]" if variant_id is not None else ""
    texts, left, time = _case_texts(cases, prefix, read, sys.intern(read_as))
    if is_plain(suite) and all(is_plain(cases[n]) for n in left):
        tally = dict.fromkeys(Outcome, 0)
        tally[Outcome.PASSED] = len(cases) - len(left)
        for index in left:
            case = cases[index]
            tally[_normalise_case(case, prefix)] += 1
            case_text = serialise(case)
            texts[index] = case_text
        finish_suite(suite, tally, time)
        suite.tail = "\n"
        text = serialise_around(suite, 1, cast("list[str]", texts))  # all filled in now
        if text is not None:
            return text, tally, to_float(suite.get("time")) or 0.0
    # A namespace somewhere: the whole suite as ElementTree writes it.
    whole, tally = merged_suite(
        original,
        name,
        cases,
        variant_id=variant_id,
        values=values,
        source=source,
        copy_attributes=copy_attributes,
        provenance=provenance,
    )
    whole.tail = "\n"
    return serialise(whole), tally, to_float(whole.get("time")) or 0.0


_TIME_ATTRIBUTES: dict[str, tuple[str, float | None, float]] = {}
"""A ``time`` as written in an input -> as the merged file writes it, its seconds as read, and
its seconds as written (what a suite's time adds up)."""


def _time_attribute(raw: str) -> tuple[str, float | None, float]:
    known = _TIME_ATTRIBUTES.get(raw)
    if known is None:
        seconds = to_float(raw)
        plain = None if seconds is None else f"{seconds:.3f}"
        known = (
            "" if plain is None else f' time="{plain}"',
            seconds,
            0.0 if plain is None else (to_float(plain) or 0.0),
        )
        if len(_TIME_ATTRIBUTES) < _PLAIN_TIMES_KEPT:
            _TIME_ATTRIBUTES[raw] = known
    return known


def _attribute(key: str, value: str) -> str:
    """One attribute as the merged file writes it: clipped, escaped, a space before it."""
    if len(value) > MAX_ATTRIBUTE_CHARS:
        value = clip_attribute(value)
    return f' {key}="{escape_attribute(value)}"'


_USUAL = ("classname", "name", "time")
"""The attributes of most testcases, in the order most test runners write them."""


def _case_texts(  # noqa: PLR0912, PLR0915 - one pass over a million testcases, kept flat
    cases: Sequence[XmlElement], prefix: str, read: list[CaseResult] | None, suite_name: str
) -> tuple[list[str | None], list[int], float]:
    """The XML text of each testcase that is passed with nothing inside (None for the others:
    the positions listed second), and the time of them all as the merged file writes it;
    each testcase read into *read* on the way."""
    texts: list[str | None] = []
    left: list[int] = []
    total = 0.0
    intern = sys.intern
    make = new_case_result
    passed = Outcome.PASSED
    special = ATTRIBUTE_SPECIAL.search
    longest = MAX_ATTRIBUTE_CHARS
    # classname as written -> (its attribute in the merged file, the classname as read)
    classes: dict[str, tuple[str, str]] = {}
    ends: dict[str | None, str] = {None: " />", "": " />"}  # the element's end by its tail
    index = -1
    for case in cases:
        index += 1
        attrib = case.attrib
        if len(case) or (case.text is not None and case.text.strip()):
            texts.append(None)
            left.append(index)
            raw_time = attrib.get("time")
            seconds = None
            if raw_time is not None:
                _, seconds, written = _time_attribute(raw_time)
                total += written
            if read is not None:
                outcome, message, text = result_of(case)
                classname = intern(attrib.get("classname") or "")
                name = intern(attrib.get("name") or "")
                line = attrib.get("line")
                read.append(
                    make(
                        suite_name,
                        classname,
                        name,
                        outcome,
                        message,
                        text,
                        attrib.get("file"),
                        to_int(line) if line is not None else None,
                        seconds,
                        intern(f"{classname}::{name}") if classname else name,
                    )
                )
            continue
        end = ends.get(case.tail)
        if end is None:
            end = ends[case.tail] = f" />{escape_text(case.tail)}"
        file = line = None
        if tuple(attrib) == _USUAL:
            raw_class, name, raw_time = attrib["classname"], attrib["name"], attrib["time"]
            known = classes.get(raw_class)
            if known is None:
                known = classes[raw_class] = _class_attribute(raw_class, prefix)
            time_text, seconds, written = _time_attribute(raw_time)
            total += written
            if special(name) is None and len(name) <= longest:
                texts.append(f'<testcase{known[0]} name="{name}"{time_text}{end}')
            else:
                texts.append(f"<testcase{known[0]}{_attribute('name', name)}{time_text}{end}")
            classname = known[1]
        else:
            parts = ["<testcase"]
            classname = ""
            raw_name: str | None = None
            seconds = None
            written = 0.0
            has_class = False
            for key, value in attrib.items():
                if key == "classname":
                    known = classes.get(value)
                    if known is None:
                        known = classes[value] = _class_attribute(value, prefix)
                    parts.append(known[0])
                    classname = known[1]
                    has_class = True
                elif key == "name":
                    raw_name = value
                    parts.append(_attribute(key, value))
                elif key == "time":
                    time_text, seconds, written = _time_attribute(value)
                    parts.append(time_text)
                elif "{" in key:  # a namespace: the testcase is left to ElementTree
                    parts = []
                    break
                else:
                    parts.append(_attribute(key, value))
            if parts:
                if not has_class and prefix:
                    parts.append(_attribute("classname", prefix))
                if raw_name is None:
                    parts.append(' name=""')
                parts.append(end)
                texts.append("".join(parts))
            else:
                texts.append(None)
                left.append(index)
                # The loop stopped at the namespace: the rest as read from the start.
                classname = intern(attrib.get("classname") or "")
                raw_name = attrib.get("name")
                if "time" in attrib:
                    _, seconds, written = _time_attribute(attrib["time"])
            total += written
            name = raw_name or ""
            file = attrib.get("file")
            line = attrib.get("line")
        if read is not None:
            name = intern(name)
            read.append(
                make(
                    suite_name,
                    classname,
                    name,
                    passed,
                    "",
                    "",
                    file,
                    to_int(line) if line is not None else None,
                    seconds,
                    intern(f"{classname}::{name}") if classname else name,
                )
            )
    return texts, left, total


def _class_attribute(raw: str, prefix: str) -> tuple[str, str]:
    """The classname attribute of the merged file for a testcase's *raw* classname, and the
    classname as read (interned)."""
    full = (f"{prefix} {raw}" if raw else prefix) if prefix else raw
    return _attribute("classname", full), sys.intern(raw)
