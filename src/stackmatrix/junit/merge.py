"""JUnit XML: the variant-aware merge of many reports into one.

The merged file keeps the variant of every result, in three places a CI viewer can see:

- each suite is renamed ``<variant> :: <suite>`` (nested suites are flattened to
  ``<variant> :: <outer> / <inner>``, since the common JUnit schema has no nesting);
- each suite carries ``<properties>``: ``stackmatrix.variant``, ``stackmatrix.axis.<key>`` for
  every matrix value, ``stackmatrix.provenance.*`` for what the variant ran (each service's
  image, image id, digest and version; the tests' Python and packages) and
  ``stackmatrix.source`` (the file it came from);
- each testcase's classname is prefixed with ``[<variant>] `` (``[postgres-15_redis-on]
  tests.test_x``), because GitHub test reporters key a test on classname + name and would
  otherwise fold the same test of two variants into one.

Counts in the output are recomputed from the testcases (see :mod:`stackmatrix.junit.read`).
Nothing is dropped: an unreadable input becomes one error testcase naming the file and the
problem, and elements the common schema has no place for are kept as text.
"""

from __future__ import annotations

import functools
import gc
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar
from xml.sax.saxutils import quoteattr

from stackmatrix.errors import ReportError, UsageError
from stackmatrix.junit.merged_suites import (
    finish_suite,
    is_container_only,
    merged_suite_text,
    new_suite,
)
from stackmatrix.junit.read import (
    CaseResult,
    Outcome,
    ParsedReport,
    XmlElement,
    case_groups,
    counts_of,
    parse_junit,
    to_float,
)
from stackmatrix.junit.serialise import serialise
from stackmatrix.junit.write import ERROR_CLASSNAME, SUITE_SEPARATOR, error_case
from stackmatrix.results.files import atomic_target
from stackmatrix.results.journal import JOURNAL_NAME, Provenance, RunJournal, Status, TestCounts

_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_cycle_collection(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """*func*, run with the cyclic garbage collector paused: reading a million testcases makes
    millions of objects that form no cycles, and every collection would walk them all."""

    @functools.wraps(func)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


@dataclass(frozen=True)
class JunitInput:
    """One JUnit file to merge, and the variant it belongs to (``None``: keep names as they are)."""

    path: Path
    variant_id: str | None
    values: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)  # what the variant ran


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
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class _Tally:
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    cases_in: int = 0
    cases_out: int = 0

    def as_counts(self) -> TestCounts:
        return counts_of(self.counts)

    def add_read(self, outcomes: Mapping[Outcome, int], *, cases: int) -> None:
        """Count *cases* testcases read from an input and written, with these *outcomes*."""
        self.cases_in += cases
        self.cases_out += cases
        for outcome, n in outcomes.items():
            self.counts[outcome] += n


class _SuiteWriter:
    """The suites of the merged file, each written out (to a scratch file) as soon as it is
    complete, so no more than one input's tree is held at a time."""

    def __init__(self, body: IO[str]) -> None:
        self._body = body
        self.time = 0.0

    def append(self, suite: XmlElement) -> None:
        """Write *suite* (one line break after it) and add its time to the total."""
        suite.tail = "\n"
        self.write(serialise(suite), to_float(suite.get("time")) or 0.0)

    def write(self, text: str, time: float) -> None:
        """Write a suite's XML *text*, whose time is *time*."""
        self.time += time
        self._body.write(text)


ReadCallback = Callable[[Path, tuple[CaseResult, ...], str], None]
"""Told of each JUnit file a merge reads: its path, its testcases as
:func:`~stackmatrix.junit.read.iter_cases` reads them, and why it is unreadable (or "")."""


def _root_tag(counts: TestCounts, time: float) -> str:
    """The merged file's opening: declaration and ``<testsuites>`` with the totals."""
    attributes = {
        "name": "stackmatrix",
        "tests": str(counts.total),
        "failures": str(counts.failed),
        "errors": str(counts.errors),
        "skipped": str(counts.skipped),
        "time": f"{time:.3f}",
    }
    pairs = " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items())
    return f"<?xml version='1.0' encoding='utf-8'?>\n<testsuites {pairs}>\n"


def _add_report(
    out_root: _SuiteWriter,
    parsed: ParsedReport,
    item: JunitInput,
    tally: _Tally,
    read: list[CaseResult] | None,
) -> None:
    """Append every suite of *parsed* (the report of *item*) to *out_root*; count its testcases
    and, given *read*, append them to it as read."""
    root = parsed.root
    assert root is not None  # noqa: S101 - callers only pass readable reports
    for original, name, cases in case_groups(root, item.path.stem):
        if is_container_only(original, cases):
            continue
        text, suite_tally, time = merged_suite_text(
            original,
            name,
            cases,
            variant_id=item.variant_id,
            values=item.values,
            source=str(item.path),
            copy_attributes=original is not root or root.tag == "testsuite",
            provenance=item.provenance,
            read=read,
            read_as=name,
        )
        out_root.write(text, time)
        tally.add_read(suite_tally, cases=len(cases))


def _add_synthetic(
    out_root: _SuiteWriter,
    *,
    variant_id: str | None,
    values: Mapping[str, Any],
    source: str,
    name: str,
    message: str,
    detail: str,
    skipped: bool,
    tally: _Tally,
    provenance: Provenance,
) -> None:
    full_name = (
        f"{variant_id}{SUITE_SEPARATOR}{ERROR_CLASSNAME}"
        if variant_id is not None
        else ERROR_CLASSNAME
    )
    suite = new_suite(full_name, variant_id, values, source, provenance)
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
    finish_suite(suite, suite_tally, 0.0)
    out_root.append(suite)
    tally.cases_out += 1
    tally.counts[outcome] += 1


def _merge(
    items: Sequence[JunitInput | MissingReport],
    output: Path,
    *,
    warnings: Sequence[str] = (),
    on_read: ReadCallback | None = None,
) -> MergeSummary:
    tally = _Tally()
    broken: list[BrokenInput] = []
    notes = list(warnings)
    with (
        atomic_target(output) as target,
        tempfile.TemporaryFile(
            "w+", encoding="utf-8", errors="xmlcharrefreplace", dir=output.parent
        ) as body,
    ):
        out_root = _SuiteWriter(body)
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
                    provenance=item.provenance,
                )
                continue
            parsed = parse_junit(item.path)
            notes.extend(parsed.warnings)
            if parsed.root is None:
                if on_read is not None:
                    on_read(item.path, (), parsed.problem)
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
                    provenance=item.provenance,
                )
                continue
            read: list[CaseResult] | None = [] if on_read is not None else None
            _add_report(out_root, parsed, item, tally, read)
            del parsed
            if on_read is not None and read is not None:
                on_read(item.path, tuple(read), "")
        counts = tally.as_counts()
        body.seek(0)
        with target.open("w", encoding="utf-8", errors="xmlcharrefreplace") as out:
            out.write(_root_tag(counts, out_root.time))
            shutil.copyfileobj(body, out, 1 << 20)
            out.write("</testsuites>")
    return MergeSummary(
        output=output,
        inputs=len(items),
        testcases_in=tally.cases_in,
        testcases_out=tally.cases_out,
        counts=counts,
        broken=tuple(broken),
        warnings=tuple(notes),
    )


def merge_junit(
    inputs: Sequence[JunitInput], output: Path, *, on_read: ReadCallback | None = None
) -> MergeSummary:
    """Merge JUnit files into *output*, keeping the variant of every result (see module doc).

    Broken inputs become one error testcase naming the file and the problem; the merge always
    completes. *on_read* is told of each file read, with its testcases.
    """
    return _merge(inputs, output, on_read=on_read)


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
                item = JunitInput(
                    path / variant.junit, variant.id, dict(variant.values), variant.provenance
                )
            else:
                item = MissingReport(
                    variant.id,
                    dict(variant.values),
                    variant.status,
                    variant.reason,
                    variant.provenance,
                )
            key = ("variant", variant.id)
            if key in chosen:
                notes.append(
                    f"variant {variant.id} appears in {chosen[key][0]} and {path}; using {path}"
                )
                del chosen[key]
            chosen[key] = (path, item)
    return [item for _, item in chosen.values()], notes


@without_cycle_collection
def merge_paths(
    paths: Sequence[Path],
    output: Path,
    *,
    on_read: ReadCallback | None = None,
) -> MergeSummary:
    """Merge JUnit files and run directories (folders with ``run.json``) into *output*.

    A plain JUnit file keeps its names; a run directory contributes each variant's report,
    annotated with the variant. A variant found in several run directories is taken from the
    last one. *on_read* is told of each JUnit file read, with its testcases (so a caller that
    needs them does not read the file again).
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
    return _merge(items, output, warnings=notes, on_read=on_read)
