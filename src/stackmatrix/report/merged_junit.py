"""A ``junit.xml`` merged by stackmatrix, read back variant by variant: each test's worst
outcome, and the stand-in testcases stackmatrix wrote for a variant without a readable report.

A testcase's variant is the ``stackmatrix.variant`` property of its suite, else the
``[<variant>]`` prefix of its classname (see :mod:`stackmatrix.junit.merge`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from stackmatrix.junit.merged_suites import provenance_of_properties
from stackmatrix.junit.read import Outcome, XmlElement, outcome_of, suites_of_root
from stackmatrix.junit.write import ERROR_CLASSNAME, PROPERTY_AXIS_PREFIX, PROPERTY_VARIANT
from stackmatrix.report.baseline import OUTCOME_SEVERITY
from stackmatrix.results.journal import Provenance

_PREFIX = re.compile(r"^\[(?P<variant>[^\]]+)\] ?(?P<rest>.*)$", re.DOTALL)


@dataclass(frozen=True)
class MergedCase:
    """One testcase of a merged ``junit.xml``, with the variant it belongs to."""

    variant: str
    experimental: bool  # what its suite's stackmatrix.axis.experimental property says
    test: str  # ``classname::name``, the ``[<variant>]`` prefix taken off
    outcome: Outcome
    message: str
    stand_in: bool  # stackmatrix's error testcase for a missing or unreadable report
    # What its suite's stackmatrix.provenance.* properties say the variant ran.
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class MergedVariant:
    """Every testcase of one variant in a merged ``junit.xml``."""

    experimental: bool = False
    # test -> its worst outcome and the message of that outcome
    tests: dict[str, tuple[Outcome, str]] = field(default_factory=dict)
    stand_ins: list[Outcome] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)


def _properties(suite: XmlElement) -> dict[str, str]:
    found: dict[str, str] = {}
    for child in suite:
        if child.tag == "properties":
            for prop in child:
                if prop.tag == "property" and prop.get("name"):
                    found[prop.get("name")] = prop.get("value") or ""
    return found


def merged_cases(root: XmlElement, fallback: str) -> Iterator[MergedCase]:
    """Every testcase under *root* that names its variant; *fallback* names a nameless root
    suite."""
    for suite, _name in suites_of_root(root, fallback):
        props = _properties(suite)
        experimental = props.get(f"{PROPERTY_AXIS_PREFIX}experimental") == "true"
        provenance = provenance_of_properties(props)
        for case in (c for c in suite if c.tag == "testcase"):
            classname, name = case.get("classname") or "", case.get("name") or ""
            prefix = _PREFIX.match(classname)
            variant = props.get(PROPERTY_VARIANT) or (prefix["variant"] if prefix else None)
            if variant is None:
                continue
            if prefix and prefix["variant"] == variant:
                classname = prefix["rest"]
            outcome, result = outcome_of(case)
            yield MergedCase(
                variant=variant,
                experimental=experimental,
                test=f"{classname}::{name}" if classname else name,
                outcome=outcome,
                message=(result.get("message") or "") if result is not None else "",
                stand_in=classname == ERROR_CLASSNAME and name.startswith(("variant ", "junit ")),
                provenance=provenance,
            )


def group_by_variant(cases: Iterable[MergedCase]) -> dict[str, MergedVariant]:
    """*cases* by variant, in the order the variants first appear; a test found more than once
    keeps its worst outcome."""
    variants: dict[str, MergedVariant] = {}
    for case in cases:
        found = variants.setdefault(case.variant, MergedVariant())
        found.experimental = case.experimental
        if case.provenance:
            found.provenance = case.provenance
        if case.stand_in:
            found.stand_ins.append(case.outcome)
            continue
        known = found.tests.get(case.test)
        if known is None or OUTCOME_SEVERITY[case.outcome] > OUTCOME_SEVERITY[known[0]]:
            found.tests[case.test] = (case.outcome, case.message)
    return variants
