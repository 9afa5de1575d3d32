"""Nightly compatibility history: a run's tests and variants compared with a baseline run.

A :class:`Snapshot` is what one run found for every variant and every test x variant, with a
short history of the runs before it when its source kept one (``results.json`` does).
:func:`compare` classifies the current snapshot against the baseline's: regression, fixed,
still failing, flaky, new, removed, not run or unchanged. Everything here is pure; reading a
baseline from disk is :mod:`stackmatrix.report.results_file`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import pairwise
from typing import assert_never

from stackmatrix.junit.read import CaseResult, Outcome
from stackmatrix.junit.slots import slots_maker
from stackmatrix.report.model import RunReport, VariantReport
from stackmatrix.report.provenance import (
    ProvenanceChange,
    provenance_changes,
    provenance_comparable,
)
from stackmatrix.results.journal import Provenance, Status

HISTORY_RUNS = 10
"""How many runs, the current one included, a history keeps."""

FLIPS_FOR_FLAKY = 3
"""Changes between passing and failing within the history that make a test flaky: passed,
failed, passed and failed again (one fix followed by a new failure is not yet flakiness)."""

OUTCOME_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}
"""Which outcome wins when one test appears several times in a variant's report."""


class Mark(enum.StrEnum):
    """What one run recorded for a test or a variant, as the history keeps it."""

    PASS = "pass"  # noqa: S105 - a word, not a password
    FAIL = "fail"
    FLAKY = "flaky"  # passed on a retry after failing
    SKIP = "skip"


class Change(enum.StrEnum):
    """How a test or a variant compares with the baseline."""

    REGRESSION = "regression"  # did not fail before, fails now
    FIXED = "fixed"  # failed before, passes now
    FLAKY = "flaky"  # passed on a retry now, or keeps alternating in the history
    STILL_FAILING = "still-failing"
    NEW = "new"  # the baseline never saw it
    REMOVED = "removed"  # in the baseline, gone now
    NOT_RUN = "not-run"  # its variant ran no tests now (stack error, cancelled)
    UNCHANGED = "unchanged"


def variant_mark(status: Status, *, flaky: bool = False) -> Mark | None:
    """The history mark of a variant's final status; None when it never finished."""
    match status:
        case Status.PASSED:
            return Mark.FLAKY if flaky else Mark.PASS
        case Status.FAILED | Status.ERROR | Status.EXPERIMENTAL_FAILED:
            return Mark.FAIL
        case Status.CANCELLED | Status.INTERRUPTED:
            return None
        case _:
            assert_never(status)


def outcome_mark(outcome: Outcome, *, flaky: bool = False) -> Mark:
    """The history mark of a testcase's final outcome."""
    match outcome:
        case Outcome.PASSED:
            return Mark.FLAKY if flaky else Mark.PASS
        case Outcome.FAILED | Outcome.ERROR:
            return Mark.FAIL
        case Outcome.SKIPPED:
            return Mark.SKIP
        case _:
            assert_never(outcome)


def flips(history: Iterable[Mark]) -> int:
    """How often the marks change between failing and not failing (skips ignored)."""
    ran = [m is Mark.FAIL for m in history if m is not Mark.SKIP]
    return sum(a != b for a, b in pairwise(ran))


def alternating(history: Sequence[Mark]) -> bool:
    """Whether a history (oldest first) shows flakiness: a pass on retry, or repeated flips."""
    window = history[-HISTORY_RUNS:]
    return Mark.FLAKY in window or flips(window) >= FLIPS_FOR_FLAKY


def classify(before: Sequence[Mark], now: Mark) -> Change:
    """Classify *now* against the baseline's history *before* (oldest first, the baseline's own
    run last; empty when the baseline never saw the test or variant)."""
    if now is Mark.FLAKY:
        return Change.FLAKY
    if not before:
        return Change.NEW
    if now is Mark.SKIP:
        return Change.UNCHANGED
    ran = [m for m in before if m is not Mark.SKIP]
    failed_before = bool(ran) and ran[-1] is Mark.FAIL
    failing = now is Mark.FAIL
    if failing and failed_before:
        return Change.STILL_FAILING
    if failing == failed_before:
        return Change.UNCHANGED
    if alternating((*before, now)):
        return Change.FLAKY
    return Change.REGRESSION if failing else Change.FIXED


def extend(before: Sequence[Mark], now: Mark | None) -> tuple[Mark, ...]:
    """The history after this run: *before* plus *now*, cut to :data:`HISTORY_RUNS`."""
    marks = (*before, now) if now is not None else tuple(before)
    return tuple(marks[-HISTORY_RUNS:])


# --------------------------------------------------------------------------------------------
# What one run found


@dataclass(frozen=True)
class VariantRecord:
    """One variant of one run."""

    id: str
    status: Status
    flaky: bool = False
    attempts: int = 1
    ran_tests: bool = False
    experimental: bool = False
    reason: str = ""
    history: tuple[Mark, ...] = ()  # oldest first; this run's own mark last when it has one
    provenance: Provenance = field(default_factory=Provenance)  # what it ran


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """One test on one variant of one run."""

    variant: str
    test: str
    outcome: Outcome | None  # None: not run this time, the history is carried over
    flaky: bool = False  # failed in an earlier attempt, passed in the last
    message: str = ""
    history: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Every variant and test x variant of one run (or of a baseline)."""

    source: str
    variants: tuple[VariantRecord, ...]
    cases: tuple[CaseRecord, ...] = ()
    notes: tuple[str, ...] = ()

    @cached_property
    def _variant_index(self) -> Mapping[str, VariantRecord]:
        return {v.id: v for v in self.variants}

    @cached_property
    def _case_index(self) -> Mapping[tuple[str, str], CaseRecord]:
        return {(c.variant, c.test): c for c in self.cases}

    def variant(self, ident: str) -> VariantRecord | None:
        """The variant with id *ident*, if this run had it."""
        return self._variant_index.get(ident)

    def case(self, variant: str, test: str) -> CaseRecord | None:
        """The test *test* on *variant*, if this run had it."""
        return self._case_index.get((variant, test))


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


_new_record = slots_maker(CaseRecord)


def _variant_cases(v: VariantReport) -> list[CaseRecord]:
    worst: dict[str, CaseResult] = {}
    for case in v.cases:
        known = worst.setdefault(case.test_id, case)
        if known is not case and OUTCOME_SEVERITY[case.outcome] > OUTCOME_SEVERITY[known.outcome]:
            worst[case.test_id] = case
    flaky = set(v.flaky_tests)
    # A million testcases share a handful of one-mark histories and first lines.
    histories = {outcome: (outcome_mark(outcome),) for outcome in Outcome}
    flaky_history = (outcome_mark(Outcome.PASSED, flaky=True),)
    lines: dict[str, str] = {"": ""}
    variant = v.id
    passed = Outcome.PASSED
    make = _new_record
    records = []
    for test, case in worst.items():
        outcome = case.outcome
        is_flaky = outcome is passed and test in flaky
        text = case.message or case.text
        message = lines.get(text)
        if message is None:
            message = lines[text] = _first_line(text)
        history = flaky_history if is_flaky else histories[outcome]
        records.append(make(variant, test, outcome, is_flaky, message, history))
    return records


def snapshot_of(report: RunReport, source: str = "") -> Snapshot:
    """What the run of *report* found; each history holds just this run."""
    variants = []
    cases: list[CaseRecord] = []
    for v in report.variants:
        result = v.result
        mark = variant_mark(result.status, flaky=result.flaky)
        variants.append(
            VariantRecord(
                id=v.id,
                status=result.status,
                flaky=result.flaky,
                attempts=result.attempts,
                ran_tests=v.ran_tests,
                experimental=result.experimental,
                reason=_first_line(result.reason),
                history=(mark,) if mark is not None else (),
                provenance=result.provenance,
            )
        )
        cases.extend(_variant_cases(v))
    return Snapshot(source, tuple(variants), tuple(cases))


# --------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class VariantChange:
    """A variant now against the baseline."""

    id: str
    change: Change
    status: Status | None  # now; None when removed
    before: Status | None  # in the baseline; None when new
    attempts: int = 1
    experimental: bool = False
    reason: str = ""
    history: tuple[Mark, ...] = ()  # this run's mark last
    # What it ran differently from the baseline; compared only when both recorded what they
    # ran (``provenance_compared``), so an older baseline shows no change.
    provenance_changes: tuple[ProvenanceChange, ...] = ()
    provenance_compared: bool = False


@dataclass(frozen=True)
class CaseChange:
    """A test on one variant now against the baseline."""

    variant: str
    test: str
    change: Change
    outcome: Outcome | None  # now; None when removed or not run
    before: Mark | None  # the last the baseline knew; None when new
    flaky: bool = False  # passed on a retry now
    message: str = ""
    history: tuple[Mark, ...] = ()
    # The baseline's own outcome, when it had the test: keeps an error apart from a failure.
    before_outcome: Outcome | None = None


@dataclass(frozen=True)
class Comparison:
    """Every variant and test x variant of a run, classified against a baseline."""

    baseline: str
    variants: tuple[VariantChange, ...]
    cases: tuple[CaseChange, ...]

    def of(self, change: Change) -> tuple[list[VariantChange], list[CaseChange]]:
        """The variants and the tests in the class *change*, in report order."""
        return (
            [v for v in self.variants if v.change is change],
            [c for c in self.cases if c.change is change],
        )

    def count(self, change: Change) -> int:
        """How many variants and tests are in the class *change*."""
        found = self.of(change)
        return len(found[0]) + len(found[1])

    @property
    def changed(self) -> bool:
        """Whether anything regressed, was fixed, flaked, appeared or disappeared."""
        return any(
            self.count(c) for c in Change if c not in (Change.UNCHANGED, Change.STILL_FAILING)
        )


def _compare_variant(now: VariantRecord, base: VariantRecord | None) -> VariantChange:
    before = base.history if base is not None else ()
    mark = variant_mark(now.status, flaky=now.flaky)
    change = Change.NOT_RUN if mark is None else classify(before, mark)
    return VariantChange(
        id=now.id,
        change=change,
        status=now.status,
        before=base.status if base is not None else None,
        attempts=now.attempts,
        experimental=now.experimental,
        reason=now.reason,
        history=extend(before, mark),
        provenance_changes=provenance_changes(base.provenance, now.provenance) if base else (),
        provenance_compared=base is not None
        and provenance_comparable(base.provenance, now.provenance),
    )


def _history_before(case: CaseRecord, baseline: Snapshot) -> tuple[Mark, ...]:
    known = baseline.case(case.variant, case.test)
    if known is not None:
        return known.history
    base_variant = baseline.variant(case.variant)
    # A test the baseline lacks on a variant that passed there did not fail there.
    if base_variant is not None and base_variant.status is Status.PASSED:
        return (Mark.PASS,)
    return ()


def _compare_case(now: CaseRecord, baseline: Snapshot) -> CaseChange:
    assert now.outcome is not None  # noqa: S101 - a current run's tests always have one
    before = _history_before(now, baseline)
    mark = outcome_mark(now.outcome, flaky=now.flaky)
    known = baseline.case(now.variant, now.test)
    return CaseChange(
        variant=now.variant,
        test=now.test,
        change=classify(before, mark),
        outcome=now.outcome,
        before=before[-1] if before else None,
        flaky=now.flaky,
        message=now.message,
        history=extend(before, mark),
        before_outcome=known.outcome if known is not None else None,
    )


def _gone(old: CaseRecord, change: Change) -> CaseChange:
    return CaseChange(
        variant=old.variant,
        test=old.test,
        change=change,
        outcome=None,
        before=old.history[-1] if old.history else None,
        message=old.message,
        history=old.history,
        before_outcome=old.outcome,
    )


def rewrite_tests(snapshot: Snapshot, rewrite: Callable[[str], str]) -> Snapshot:
    """*snapshot* with every test id rewritten (the current run's ``report.test_ids``), so a
    baseline compares in the current run's terms; ids that become one keep the worst outcome."""
    merged: dict[tuple[str, str], CaseRecord] = {}
    for original in snapshot.cases:
        case = replace(original, test=rewrite(original.test))
        key = (case.variant, case.test)
        known = merged.get(key)
        if known is None or _rank(case) > _rank(known):
            merged[key] = case
    return replace(snapshot, cases=tuple(merged.values()))


def _rank(case: CaseRecord) -> int:
    return -1 if case.outcome is None else OUTCOME_SEVERITY[case.outcome]


def compare(current: Snapshot, baseline: Snapshot) -> Comparison:
    """Classify every variant and test x variant of *current* against *baseline*.

    Tests of a variant that ran no tests now are ``not-run`` and keep their history; tests
    missing from a variant that did run are ``removed``; a variant missing now is ``removed``
    (its tests are not listed one by one).
    """
    variants = [_compare_variant(v, baseline.variant(v.id)) for v in current.variants]
    variants += [
        VariantChange(
            id=old.id,
            change=Change.REMOVED,
            status=None,
            before=old.status,
            experimental=old.experimental,
            history=old.history,
        )
        for old in baseline.variants
        if current.variant(old.id) is None
    ]
    now_by_variant: dict[str, list[CaseRecord]] = {}
    for case in current.cases:
        now_by_variant.setdefault(case.variant, []).append(case)
    old_by_variant: dict[str, list[CaseRecord]] = {}
    for case in baseline.cases:
        old_by_variant.setdefault(case.variant, []).append(case)
    cases: list[CaseChange] = []
    for v in current.variants:
        cases += [_compare_case(c, baseline) for c in now_by_variant.get(v.id, [])]
        gone = Change.REMOVED if v.ran_tests else Change.NOT_RUN
        cases += [
            _gone(old, gone)
            for old in old_by_variant.get(v.id, [])
            if current.case(v.id, old.test) is None
        ]
    return Comparison(baseline.source, tuple(variants), tuple(cases))
