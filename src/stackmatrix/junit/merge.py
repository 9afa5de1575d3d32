"""JUnit XML: the variant-aware merge of many reports into one.

The merged file keeps the variant of every result, in three places a CI viewer can see:

- each suite is renamed ``<variant> :: <suite>`` (nested suites are flattened to
  ``<variant> :: <outer> / <inner>``, since the common JUnit schema has no nesting);
- each suite carries ``<properties>``: ``stackmatrix.variant``, ``stackmatrix.axis.<key>`` for
  every matrix value and ``stackmatrix.source`` (the file it came from);
- each testcase's classname is prefixed with ``[<variant>] `` (``[postgres-15_redis-on]
  tests.test_x``), because GitHub test reporters key a test on classname + name and would
  otherwise fold the same test of two variants into one.

Counts in the output are recomputed from the testcases (see :mod:`stackmatrix.junit.read`).
Nothing is dropped: an unreadable input becomes one error testcase naming the file and the
problem, and elements the common schema has no place for are kept as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from junitparser import JUnitXml

from stackmatrix.errors import ReportError, UsageError
from stackmatrix.junit.read import (
    ETREE,
    Outcome,
    ParsedReport,
    XmlElement,
    case_groups,
    clean_xml_text,
    counts_of,
    outcome_of,
    parse_junit,
    to_float,
)
from stackmatrix.junit.write import (
    ERROR_CLASSNAME,
    MAX_ATTRIBUTE_CHARS,
    PROPERTY_AXIS_PREFIX,
    PROPERTY_SOURCE,
    PROPERTY_VARIANT,
    SUITE_SEPARATOR,
    clip_attribute,
    error_case,
    write_junit_atomic,
)
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal, Status, TestCounts
from stackmatrix.spec.values import scalar_text

# Schema order of a testcase's children (properties first, as pytest writes them).
_CASE_CHILD_ORDER = {
    "properties": 0,
    "skipped": 1,
    "error": 2,
    "failure": 3,
    "system-out": 4,
    "system-err": 5,
}


@dataclass(frozen=True)
class JunitInput:
    """One JUnit file to merge, and the variant it belongs to (``None``: keep names as they are)."""

    path: Path
    variant_id: str | None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokenInput:
    """An input that could not be read; it became one error testcase in the merged file."""

    path: Path
    variant_id: str | None
    problem: str


@dataclass(frozen=True)
class MergeSummary:
    """What a merge read and wrote."""

    output: Path
    inputs: int
    testcases_in: int  # testcases found in the readable inputs
    testcases_out: int  # testcases written: testcases_in + one per broken or missing input
    counts: TestCounts
    broken: tuple[BrokenInput, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MissingReport:
    """A variant that has no JUnit file at all (cancelled, or never got that far)."""

    variant_id: str
    values: Mapping[str, Any]
    status: Status
    reason: str


@dataclass
class _Tally:
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    cases_in: int = 0
    cases_out: int = 0

    def as_counts(self) -> TestCounts:
        return counts_of(self.counts)


def _new_suite(
    name: str, variant_id: str | None, values: Mapping[str, Any], source: str
) -> XmlElement:
    suite = ETREE.Element("testsuite", {"name": clean_xml_text(name)})
    props = ETREE.SubElement(suite, "properties")
    pairs: list[tuple[str, str]] = []
    if variant_id is not None:
        pairs.append((PROPERTY_VARIANT, variant_id))
        pairs.extend((f"{PROPERTY_AXIS_PREFIX}{k}", scalar_text(v)) for k, v in values.items())
    pairs.append((PROPERTY_SOURCE, source))
    for key, value in pairs:
        ETREE.SubElement(props, "property", {"name": key, "value": clean_xml_text(value)})
    return suite


def _finish_suite(suite: XmlElement, tally: dict[Outcome, int], time: float) -> None:
    suite.set("tests", str(sum(tally.values())))
    suite.set("failures", str(tally[Outcome.FAILED]))
    suite.set("errors", str(tally[Outcome.ERROR]))
    suite.set("skipped", str(tally[Outcome.SKIPPED]))
    _normalise_time(suite)
    if suite.get("time") is None:
        suite.set("time", f"{time:.3f}")


def _normalise_time(elem: XmlElement) -> None:
    """Write ``time`` as plain seconds (``1,234.5`` -> ``1234.500``); drop it if unreadable, since
    readers such as junitparser fail on a time that is not a number."""
    raw = elem.get("time")
    if raw is None:
        return
    seconds = to_float(raw)
    if seconds is None:
        del elem.attrib["time"]
    else:
        elem.set("time", f"{seconds:.3f}")


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


def _add_report(
    out_root: XmlElement,
    parsed: ParsedReport,
    item: JunitInput,
    tally: _Tally,
) -> None:
    root = parsed.root
    assert root is not None  # noqa: S101 - callers only pass readable reports
    variant = item.variant_id
    prefix = f"[{variant}]" if variant is not None else ""
    for original, name, cases in case_groups(root, item.path.stem):
        extras = [c for c in original if c.tag in ("system-out", "system-err")]
        own_props = [c for c in original if c.tag == "properties"]
        if not cases and not extras and any(c.tag == "testsuite" for c in original):
            continue  # a pure container of nested suites
        full_name = f"{variant}{SUITE_SEPARATOR}{name}" if variant is not None else name
        suite = _new_suite(full_name, variant, item.values, str(item.path))
        _copy_suite_metadata(
            original,
            suite,
            own_props,
            attributes=original is not root or root.tag == "testsuite",
            drop_own=variant is not None,
        )
        suite_tally = dict.fromkeys(Outcome, 0)
        time = 0.0
        for case in cases:
            outcome = _normalise_case(case, prefix)
            suite_tally[outcome] += 1
            time += to_float(case.get("time")) or 0.0
            suite.append(case)
        for name_tag in ("system-out", "system-err"):
            chunks = [c.text or "" for c in extras if c.tag == name_tag]
            if any(chunks):
                ETREE.SubElement(suite, name_tag).text = "\n".join(chunks)
        _finish_suite(suite, suite_tally, time)
        out_root.append(suite)
        tally.cases_in += len(cases)
        tally.cases_out += len(cases)
        for outcome, n in suite_tally.items():
            tally.counts[outcome] += n


def _add_synthetic(
    out_root: XmlElement,
    *,
    variant_id: str | None,
    values: Mapping[str, Any],
    source: str,
    name: str,
    message: str,
    detail: str,
    skipped: bool,
    tally: _Tally,
) -> None:
    full_name = (
        f"{variant_id}{SUITE_SEPARATOR}{ERROR_CLASSNAME}"
        if variant_id is not None
        else ERROR_CLASSNAME
    )
    suite = _new_suite(full_name, variant_id, values, source)
    prefix = f"[{variant_id}] " if variant_id is not None else ""
    case = error_case(
        classname=f"{prefix}{ERROR_CLASSNAME}",
        name=name,
        message=message,
        detail=detail,
        tag="skipped" if skipped else "error",
    )
    suite.append(case)
    outcome = Outcome.SKIPPED if skipped else Outcome.ERROR
    suite_tally = dict.fromkeys(Outcome, 0)
    suite_tally[outcome] = 1
    _finish_suite(suite, suite_tally, 0.0)
    out_root.append(suite)
    tally.cases_out += 1
    tally.counts[outcome] += 1


def _merge(
    items: Sequence[JunitInput | MissingReport],
    output: Path,
    *,
    warnings: Sequence[str] = (),
) -> MergeSummary:
    xml = JUnitXml("stackmatrix")
    # Suites go in as elements: JUnitXml.add_testsuite compares each new suite with all others.
    out_root = xml._elem
    tally = _Tally()
    broken: list[BrokenInput] = []
    notes = list(warnings)
    for item in items:
        if isinstance(item, MissingReport):
            cancelled = item.status is Status.CANCELLED
            _add_synthetic(
                out_root,
                variant_id=item.variant_id,
                values=item.values,
                source="",
                name=f"variant {item.variant_id}",
                message=f"no JUnit report: variant {item.status.value}"
                + (f": {item.reason}" if item.reason else ""),
                detail="",
                skipped=cancelled,
                tally=tally,
            )
            continue
        parsed = parse_junit(item.path)
        notes.extend(parsed.warnings)
        if parsed.root is None:
            broken.append(BrokenInput(item.path, item.variant_id, parsed.problem))
            _add_synthetic(
                out_root,
                variant_id=item.variant_id,
                values=item.values,
                source=str(item.path),
                name=f"junit {item.path.name}",
                message=f"cannot read JUnit report {item.path}: {parsed.problem}",
                detail=f"file: {item.path}\nproblem: {parsed.problem}",
                skipped=False,
                tally=tally,
            )
            continue
        _add_report(out_root, parsed, item, tally)
    counts = tally.as_counts()
    total_time = sum(to_float(s.get("time")) or 0.0 for s in out_root)
    out_root.set("tests", str(counts.total))
    out_root.set("failures", str(counts.failed))
    out_root.set("errors", str(counts.errors))
    out_root.set("skipped", str(counts.skipped))
    out_root.set("time", f"{total_time:.3f}")
    out_root.text = "\n"
    for suite in out_root:
        suite.tail = "\n"
    write_junit_atomic(xml, output)
    return MergeSummary(
        output=output,
        inputs=len(items),
        testcases_in=tally.cases_in,
        testcases_out=tally.cases_out,
        counts=counts,
        broken=tuple(broken),
        warnings=tuple(notes),
    )


def merge_junit(inputs: Sequence[JunitInput], output: Path) -> MergeSummary:
    """Merge JUnit files into *output*, keeping the variant of every result (see module doc).

    Broken inputs become one error testcase naming the file and the problem; the merge always
    completes.
    """
    return _merge(inputs, output)


def _read_journal(run_dir: Path) -> RunJournal:
    try:
        return RunJournal.read(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{run_dir / JOURNAL_NAME}: cannot read the run journal: {exc}") from exc


def _collect(
    entries: Sequence[tuple[Path, bool]],
) -> tuple[list[JunitInput | MissingReport], list[str]]:
    chosen: dict[tuple[str, str], tuple[Path, JunitInput | MissingReport]] = {}
    notes: list[str] = []
    for index, (path, is_run_dir) in enumerate(entries):
        if not is_run_dir:
            chosen[("file", str(index))] = (path, JunitInput(path, None))
            continue
        for variant in _read_journal(path).variants:
            item: JunitInput | MissingReport
            if variant.junit:
                item = JunitInput(path / variant.junit, variant.id, dict(variant.values))
            else:
                item = MissingReport(
                    variant.id, dict(variant.values), variant.status, variant.reason
                )
            key = ("variant", variant.id)
            if key in chosen:
                notes.append(
                    f"variant {variant.id} appears in {chosen[key][0]} and {path}; using {path}"
                )
                del chosen[key]
            chosen[key] = (path, item)
    return [item for _, item in chosen.values()], notes


def merge_paths(paths: Sequence[Path], output: Path) -> MergeSummary:
    """Merge JUnit files and run directories (folders with ``run.json``) into *output*.

    A plain JUnit file keeps its names; a run directory contributes each variant's report,
    annotated with the variant. A variant found in several run directories is taken from the
    last one.
    """
    entries: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            if not (path / JOURNAL_NAME).is_file():
                raise UsageError(f"{path}: a directory given to merge must contain {JOURNAL_NAME}")
            entries.append((path, True))
        else:
            entries.append((path, False))
    items, notes = _collect(entries)
    return _merge(items, output, warnings=notes)
