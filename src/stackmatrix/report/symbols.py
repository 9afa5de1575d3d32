"""How every enum reads, in one table each: the words and icons of statuses, outcomes, the
classes of a baseline comparison and the marks of a history.

The terminal, summary.md, report.html, the step summary and the annotations all look a value
up here; ``tests/unit/report/test_symbols.py`` checks that every member has its row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from stackmatrix.junit.read import Outcome
from stackmatrix.report.baseline import Change, Mark
from stackmatrix.report.model import Verdict
from stackmatrix.results.journal import Status


@dataclass(frozen=True)
class StatusLook:
    """A variant's status: a word for tables, an icon for Markdown, the console's mark and its
    ANSI colour."""

    label: str
    icon: str
    mark: str
    colour: str


@dataclass(frozen=True)
class Look:
    """A word (plain text), a label (a sentence's word) and an icon (Markdown, HTML)."""

    word: str
    label: str
    icon: str


STATUS: Mapping[Status, StatusLook] = MappingProxyType({
    Status.PASSED: StatusLook("passed", "✅", "ok", "32"),
    Status.FAILED: StatusLook("failed", "❌", "FAILED", "31;1"),
    Status.ERROR: StatusLook("error", "💥", "ERROR", "31;1"),
    Status.EXPERIMENTAL_FAILED: StatusLook(
        "failed (experimental)", "⚠️", "failed (experimental)", "33"
    ),
    Status.CANCELLED: StatusLook("cancelled", "⏹️", "cancelled", "2"),
    Status.INTERRUPTED: StatusLook("interrupted", "⏸️", "interrupted", "33"),
})  # fmt: skip

OUTCOME: Mapping[Outcome, Look] = MappingProxyType({
    Outcome.PASSED: Look("pass", "passed", "✅"),
    Outcome.FAILED: Look("FAIL", "failed", "❌"),
    Outcome.ERROR: Look("ERROR", "error", "💥"),
    Outcome.SKIPPED: Look("skip", "skipped", "⏭️"),
})  # fmt: skip
NOT_RUN = Look("-", "not run", "—")  # a grid cell of a test that did not run on a variant
# A grid cell of a test whose kind (classname) ran no test at all on a variant.
NOT_APPLICABLE = Look("n/a", "not applicable", "n/a")

VERDICT: Mapping[Verdict, Look] = MappingProxyType({
    Verdict.PASSED: Look("passed", "passed", "✅"),
    Verdict.FAILED: Look("failed", "failed", "❌"),
    Verdict.INCOMPLETE: Look("incomplete", "incomplete", "⚠️"),
})  # fmt: skip

CHANGE: Mapping[Change, Look] = MappingProxyType({
    Change.REGRESSION: Look("regression", "Regressions", "🔴"),
    Change.FIXED: Look("fixed", "Fixed", "🟢"),
    Change.FLAKY: Look("flaky", "Flaky", "🟡"),
    Change.STILL_FAILING: Look("still failing", "Still failing", "🟠"),
    Change.NEW: Look("new", "New", "🆕"),
    Change.REMOVED: Look("removed", "Removed", "⚪"),
    Change.NOT_RUN: Look("not run", "Not run", "⚪"),
    Change.UNCHANGED: Look("unchanged", "Unchanged", "⚪"),
})  # fmt: skip

MARK: Mapping[Mark, Look] = MappingProxyType({
    Mark.PASS: Look("pass", "passed", "✅"),
    Mark.FAIL: Look("FAIL", "failed", "❌"),
    Mark.FLAKY: Look("retry-pass", "passed on retry", "🔁"),
    Mark.SKIP: Look("skip", "skipped", "⏭️"),
})  # fmt: skip
ABSENT = Look("-", "absent", "—")  # a history mark of a run where the test was not there
