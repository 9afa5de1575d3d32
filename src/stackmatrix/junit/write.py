"""JUnit XML written by stackmatrix: the report of a variant that has none of its own, and the
names and properties that mark a variant's results (the merge, :mod:`stackmatrix.junit.merge`,
uses them). Reading is :mod:`stackmatrix.junit.read`; its names are exported here too.
"""

from __future__ import annotations

from pathlib import Path

from junitparser import JUnitXml, TestSuite

from stackmatrix.junit.read import (
    ETREE,
    MAX_JUNIT_BYTES,
    CaseResult,
    Outcome,
    ParsedReport,
    XmlElement,
    clean_xml_text,
    count_outcomes,
    iter_cases,
    parse_junit,
    read_counts,
)
from stackmatrix.results.files import atomic_target

__all__ = [
    "ERROR_CLASSNAME",
    "MAX_ATTRIBUTE_CHARS",
    "MAX_JUNIT_BYTES",
    "CaseResult",
    "Outcome",
    "ParsedReport",
    "clean_xml_text",
    "count_outcomes",
    "iter_cases",
    "parse_junit",
    "read_counts",
    "write_error_junit",
]

MAX_ATTRIBUTE_CHARS = 64 * 1024
"""Longer attribute values (usually failure messages) are cut in the merged file."""

ERROR_CLASSNAME = "stackmatrix"
PROPERTY_VARIANT = "stackmatrix.variant"
PROPERTY_AXIS_PREFIX = "stackmatrix.axis."
PROPERTY_SOURCE = "stackmatrix.source"
SUITE_SEPARATOR = " :: "


def clip_attribute(value: str) -> str:
    value = clean_xml_text(value)
    if len(value) <= MAX_ATTRIBUTE_CHARS:
        return value
    cut = len(value) - MAX_ATTRIBUTE_CHARS
    return f"{value[:MAX_ATTRIBUTE_CHARS]}... [{cut} more characters cut by stackmatrix]"


def write_junit_atomic(xml: JUnitXml, path: Path) -> None:
    with atomic_target(path) as tmp:
        xml.write(str(tmp))


def error_case(
    *, classname: str, name: str, message: str, detail: str, tag: str = "error"
) -> XmlElement:
    case = ETREE.Element("testcase", {"classname": classname, "name": name, "time": "0"})
    result = ETREE.SubElement(case, tag, {"message": clip_attribute(message)})
    if tag == "error":
        result.set("type", "stackmatrix")
    if detail:
        result.text = clean_xml_text(detail)
    return case


def write_error_junit(
    path: Path,
    *,
    variant_id: str,
    message: str,
    detail: str = "",
    suite: str = "stackmatrix",
) -> None:
    """Write a JUnit file whose single testcase ``variant <id>`` errored with *message*.

    Used when the tests wrote no report or the stack never came up, so CI viewers still show
    the variant as broken.
    """
    xml = JUnitXml()
    test_suite = TestSuite(clean_xml_text(suite))
    test_suite.add_property(PROPERTY_VARIANT, clean_xml_text(variant_id))
    test_suite._elem.append(  # junitparser's own append is untyped
        error_case(
            classname=ERROR_CLASSNAME,
            name=f"variant {clean_xml_text(variant_id)}",
            message=message,
            detail=detail,
        )
    )
    for elem in (test_suite._elem, xml._elem):
        elem.attrib.update(tests="1", failures="0", errors="1", skipped="0", time="0.000")
    xml._elem.append(test_suite._elem)
    write_junit_atomic(xml, path)
