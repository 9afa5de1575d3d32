"""GitHub Actions annotations: the ``::error`` / ``::warning`` workflow commands of a run's
failures, pointing at the file and line where each happened (at most
:data:`MAX_ANNOTATIONS` of each a step, as GitHub shows)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from stackmatrix.junit.read import CaseResult
from stackmatrix.report.groups import FailureGroup, Kind, failure_groups
from stackmatrix.report.model import RunReport
from stackmatrix.report.text import MAX_FAILURES_LISTED, status_label
from stackmatrix.results.journal import Status

MAX_ANNOTATIONS = 10
"""GitHub shows at most this many error annotations, and as many warnings, of one step."""

_LOCATIONS = (
    # pytest and go: a line starting with FILE:LINE: (e.g. the last frame of a traceback)
    re.compile(r"^\s*(?P<file>[\w./\\-]+\.\w+):(?P<line>\d+):", re.MULTILINE),
    # jest / node: "at Object.<anonymous> (/repo/src/cart.test.js:31:27)"
    re.compile(r"\((?P<file>[^()\s]+\.\w+):(?P<line>\d+)(?::\d+)?\)"),
    # python tracebacks: File "tests/test_x.py", line 12
    re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)'),
)


def location_of(case: CaseResult) -> tuple[str, int] | None:
    """Where a failure happened: the testcase's file/line attributes, else the last location
    found in its message or traceback."""
    if case.file and case.line is not None:
        return case.file, case.line
    text = f"{case.message}\n{case.text}"
    for pattern in _LOCATIONS:
        found = list(pattern.finditer(text))
        if found:
            return found[-1]["file"], int(found[-1]["line"])
    return None


def _relative_to_workspace(file: str, workspace: Path | None) -> str:
    path = Path(file)
    if workspace is not None and path.is_absolute():
        try:
            return path.relative_to(workspace).as_posix()
        except ValueError:
            return file
    return file


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_MAX_IDS_IN_MESSAGE = 30


def workflow_commands(report: RunReport, *, workspace: Path | None = None) -> list[str]:
    """``::error`` workflow commands for the failures of *report*, grouped by test (or variant
    problem) and message as :func:`~stackmatrix.report.groups.failure_groups` orders them, most
    useful first; ``::warning`` for failures of experimental variants only.

    At most :data:`MAX_ANNOTATIONS` of each level: past that, the last one counts the failures
    left out and says where they all are.
    """
    every = failure_groups(report)
    listed = min(len(every), MAX_FAILURES_LISTED)  # summary.md's Failures list
    groups = [g for g in every if not _only_cancelled(g, report)]
    commands: list[str] = []
    for level, members in (
        ("error", [g for g in groups if not g.experimental]),
        ("warning", [g for g in groups if g.experimental]),
    ):
        shown = members if len(members) <= MAX_ANNOTATIONS else members[: MAX_ANNOTATIONS - 1]
        commands += [_annotation(level, group, report, workspace) for group in shown]
        rest = members[len(shown) :]
        if rest:
            commands.append(_more_annotation(level, rest, listed=listed, of=len(every)))
    return commands


def _only_cancelled(group: FailureGroup, report: RunReport) -> bool:
    # A variant the run never got to (stopped, fail-fast) did not fail: nothing to point at.
    if group.kind is not Kind.VARIANT:
        return False
    statuses = {v.id: v.result.status for v in report.variants}
    return all(statuses.get(ident) is Status.CANCELLED for ident in group.variants)


def _annotation(level: str, group: FailureGroup, report: RunReport, workspace: Path | None) -> str:
    props = []
    case = next(iter(group.cases.values()), None)
    where = location_of(case) if case is not None else None
    if where is not None:
        file = _relative_to_workspace(where[0], workspace)
        props += [f"file={_escape_property(file)}", f"line={where[1]}"]
    match group.kind:
        case Kind.TEST:
            what = group.test_id
        case Kind.JUNIT:
            what = "JUnit report"
        case Kind.VARIANT:
            first = next(v for v in report.variants if v.id == group.variants[0])
            what = status_label(first.result.status)
    props.append(f"title={_escape_property(f'{group.variants_text}: {what}')}")
    message = group.message
    if len(group.variants) > 1:
        ids = list(group.variants[:_MAX_IDS_IN_MESSAGE])
        more = len(group.variants) - len(ids)
        named = ", ".join(ids) + (f" and {more} more" if more else "")
        message += f"\n{group.verb} on {len(group.variants)} variants: {named}"
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def _more_annotation(level: str, rest: Sequence[FailureGroup], *, listed: int, of: int) -> str:
    occurrences = sum(len(g.variants) for g in rest)
    variants = len({ident for g in rest for ident in g.variants})
    noun = "failure" if len(rest) == 1 else "failures"
    title = f"{len(rest)} more {noun} not annotated"
    message = (
        f"{len(rest)} more {noun} ({occurrences} on {variants} "
        f"{'variant' if variants == 1 else 'variants'}) are not annotated: GitHub shows "
        f"{MAX_ANNOTATIONS} a step. Every failure is in report.html; the step summary lists"
        f" {listed} of the {of} (fewer if it was cut to fit GitHub's 1 MiB)."
    )
    return f"::{level} title={_escape_property(title)}::{_escape_data(message)}"
