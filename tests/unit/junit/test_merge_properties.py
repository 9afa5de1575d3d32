"""Property: merging never loses or invents a testcase, whatever the shape of the inputs."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackmatrix.junit.merge import JunitInput, merge_junit
from stackmatrix.junit.merged_suites import merged_suite, merged_suite_text
from stackmatrix.junit.read import CaseResult, case_groups
from stackmatrix.junit.write import Outcome, count_outcomes, iter_cases, parse_junit

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=12)
_RESULTS = st.lists(st.sampled_from(["failure", "error", "skipped", "system-out"]), max_size=3)


_TIMES = st.none() | st.sampled_from(["0.1", "1.23456", "1,234.5", "nan", "x", "", "7"])


@dataclass(frozen=True)
class _Case:
    classname: str | None
    name: str | None
    children: tuple[str, ...]
    time: str | None = None
    text: str | None = None
    tail: str | None = None
    reversed: bool = False  # attributes in the other order


_CASES = st.builds(
    _Case,
    st.none() | _TEXT,
    _TEXT | st.none(),
    _RESULTS.map(tuple),
    _TIMES,
    st.none() | st.sampled_from(["", " \n ", "text & more"]),
    st.none() | st.sampled_from(["\n", "  ", "tail <&>"]),
    st.booleans(),
)


def _suite(depth: int) -> st.SearchStrategy[ET.Element]:
    children: st.SearchStrategy[list[ET.Element]] = (
        st.lists(_suite(depth - 1), max_size=2) if depth > 0 else st.just([])
    )
    return st.builds(_build_suite, _TEXT, st.lists(_CASES, max_size=4), children)


def _build_case(case: _Case) -> ET.Element:
    attributes = [("classname", case.classname), ("name", case.name), ("time", case.time)]
    elem = ET.Element("testcase")
    for key, value in reversed(attributes) if case.reversed else attributes:
        if value is not None:
            elem.set(key, value)
    elem.text, elem.tail = case.text, case.tail
    for tag in case.children:
        child = ET.SubElement(elem, tag, {"message": "m"} if tag != "system-out" else {})
        child.text = "detail"
    return elem


def _build_suite(name: str, cases: list[_Case], nested: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", {"name": name, "tests": "7"})
    suite.extend(_build_case(c) for c in cases)
    suite.extend(nested)
    return suite


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    suites = draw(st.lists(_suite(2), min_size=1, max_size=3))
    if len(suites) == 1 and draw(st.booleans()):
        root = suites[0]
    else:
        root = ET.Element("testsuites")
        root.extend(suites)
        root.extend(_build_case(c) for c in draw(st.lists(_CASES, max_size=2)))
    return bytes(ET.tostring(root, encoding="utf-8"))


_VARIANT = st.none() | st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_documents(), _VARIANT), min_size=1, max_size=4))
def test_merge_never_loses_or_invents_a_testcase(docs: list[tuple[bytes, str | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        expected: Counter[tuple[str, str, Outcome]] = Counter()
        for index, (data, variant) in enumerate(docs):
            path = Path(tmp) / f"in{index}.xml"
            path.write_bytes(data)
            inputs.append(JunitInput(path, variant, {"i": index}))
            for case in iter_cases(parse_junit(path)):
                classname = case.classname
                if variant is not None:
                    classname = f"[{variant}] {classname}" if classname else f"[{variant}]"
                expected[(classname, case.name, case.outcome)] += 1
        out = Path(tmp) / "merged.xml"
        read: dict[Path, tuple[CaseResult, ...]] = {}
        summary = merge_junit(inputs, out, on_read=lambda p, cases, _: read.update({p: cases}))
        merged = list(iter_cases(parse_junit(out)))
        # What the merge read of each input is what reading it alone finds.
        for item in inputs:
            alone = tuple(iter_cases(parse_junit(item.path)))
            assert read[item.path] == alone
            assert [c.test_id for c in read[item.path]] == [c.test_id for c in alone]
    got = Counter((c.classname, c.name, c.outcome) for c in merged)
    assert got == expected
    assert summary.broken == ()
    assert summary.testcases_in == summary.testcases_out == sum(expected.values())
    assert summary.counts == count_outcomes(c.outcome for c in merged)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents(), _VARIANT)
def test_a_merged_suite_is_written_as_elementtree_writes_it(
    data: bytes, variant: str | None
) -> None:
    """The merged file writes most testcases straight from their attributes: the text is the
    one ElementTree writes for the merged suite built as elements."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.xml"
        path.write_bytes(data)
        fast_root, tree_root = parse_junit(path).root, parse_junit(path).root
    for (original, name, cases), (twin, _, twin_cases) in zip(
        case_groups(fast_root, "in"), case_groups(tree_root, "in"), strict=True
    ):
        text, tally, _ = merged_suite_text(
            original,
            name,
            cases,
            variant_id=variant,
            values={"k": "v"},
            source="in.xml",
            copy_attributes=True,
        )
        suite, tree_tally = merged_suite(
            twin,
            name,
            twin_cases,
            variant_id=variant,
            values={"k": "v"},
            source="in.xml",
            copy_attributes=True,
        )
        suite.tail = "\n"
        assert text == ET.tostring(suite, encoding="unicode")
        assert tally == tree_tally
