"""Failures grouped by test and message: one failure seen on twelve variants is one entry that
names the twelve, compressed to the axis values they share (``postgres=13``).

:func:`failure_groups` is the one place that decides what a failure is and how failures group;
summary.md, report.html, the terminal and the CI annotations all list what it returns.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from stackmatrix.junit.read import CaseResult, Outcome
from stackmatrix.report.model import RunReport, VariantReport
from stackmatrix.report.symbols import STATUS
from stackmatrix.results.journal import Status
from stackmatrix.spec.values import scalar_text

MAX_MESSAGE_CHARS = 300
_FAILING = (Outcome.FAILED, Outcome.ERROR)
_TEST_ID = attrgetter("test_id")


def first_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The first non-empty line of *text*, cut to *limit* characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def case_message(case: CaseResult) -> str:
    """The short message of a failed testcase: its message attribute, else its text."""
    return first_line(case_message_source(case))


def case_message_source(case: CaseResult) -> str:
    """What :func:`case_message` takes the first line of: the message, else the text, else
    the outcome."""
    return case.message or case.text or case.outcome.value


_WHOLE = (Status.ERROR, Status.INTERRUPTED, Status.CANCELLED)


def variant_failed_as_a_whole(v: VariantReport) -> bool:
    """Whether the variant itself failed (stack, timeout, interrupt, ...): always when its
    status says so, even with failed tests beside it; a FAILED variant only when it has no
    failing test to show for it."""
    if v.result.status in _WHOLE:
        return True
    if v.problems or (v.result.status.ok and not v.synthetic):
        return False
    return v.result.status is not Status.PASSED or bool(v.synthetic)


def variant_reason(v: VariantReport) -> str:
    """Why a variant failed as a whole, in one line."""
    reason = v.result.reason or next((case_message(c) for c in v.synthetic), "")
    return first_line(reason or STATUS[v.result.status].label)


class Kind(enum.StrEnum):
    """What failed."""

    VARIANT = "variant"  # the variant as a whole: its stack, its test command, a timeout
    JUNIT = "junit"  # the variant's JUnit report could not be read
    TEST = "test"  # a testcase failed or errored


@dataclass(frozen=True)
class FailureGroup:
    """One failure (a test, or a variant as a whole) with one message, and where it happened.

    ``test_id`` is empty unless ``kind`` is :attr:`Kind.TEST`; ``variants`` are ids in the
    report's order; ``variants_text`` says them briefly (``postgres=13 (2 variants)``).
    """

    test_id: str
    message: str
    outcome: Outcome  # FAILED or ERROR: the worst seen among the variants
    variants: tuple[str, ...]
    variants_text: str
    kind: Kind = Kind.TEST
    experimental: bool = False  # every variant it happened on is experimental
    everywhere: bool = False  # a test failing on every variant where it ran
    detail: str = ""  # the full text (traceback, health output) from the first variant
    cases: Mapping[str, CaseResult] = field(default_factory=dict)  # variant -> its testcase

    @property
    def verb(self) -> str:
        """``fails``, ``errors``: what the test or the variant did."""
        return "errors" if self.outcome is Outcome.ERROR else "fails"

    @property
    def what(self) -> str:
        """The test id, or ``(variant)`` / ``(JUnit report)`` for a variant's own problem."""
        match self.kind:
            case Kind.TEST:
                return self.test_id
            case Kind.VARIANT:
                return "(variant)"
            case Kind.JUNIT:
                return "(JUnit report)"

    @property
    def headline(self) -> str:
        """``fails on postgres=13 (2 variants): could not create locale ...``."""
        return f"{self.verb} on {self.variants_text}: {self.message}"


def variants_text(
    chosen: Sequence[str], universe: Sequence[VariantReport], *, whole: bool = True
) -> str:
    """*chosen* variant ids, said briefly against every variant of the report (*universe*):
    ``every variant (6)``, an axis value whose variants are all among them (``postgres=13``),
    and the ids left over; with the count when there is more than one. Not *whole* (the
    report holds part of the matrix, as a shard's own run does): the ids, since an axis value
    or "every variant" would say more than the report knows."""
    wanted = list(dict.fromkeys(chosen))
    if not wanted:
        return "no variant"
    if len(wanted) == 1:
        return wanted[0]
    if not whole:
        return f"{', '.join(wanted)} ({len(wanted)} variants)"
    known = [v for v in universe if v.id in wanted]
    if len(known) == len(universe) == len(wanted):
        return f"every variant ({len(wanted)})"
    candidates: list[tuple[str, set[str]]] = []
    for key in dict.fromkeys(k for v in universe for k in v.result.values):
        for value in dict.fromkeys(
            scalar_text(v.result.values[key]) for v in universe if key in v.result.values
        ):
            members = {
                v.id
                for v in universe
                if key in v.result.values and scalar_text(v.result.values[key]) == value
            }
            if len(members) > 1 and members <= set(wanted):
                candidates.append((f"{key}={value}", members))
    uncovered = set(wanted)
    terms: list[str] = []
    while uncovered:
        best = max(candidates, key=lambda c: len(c[1] & uncovered), default=None)
        if best is None or not best[1] & uncovered:
            break
        terms.append(best[0])
        uncovered -= best[1]
    terms += [ident for ident in wanted if ident in uncovered]
    return f"{', '.join(terms)} ({len(wanted)} variants)"


@dataclass
class _Building:
    test_id: str
    message: str
    kind: Kind
    outcome: Outcome
    detail: str
    variants: list[str] = field(default_factory=list)
    cases: dict[str, CaseResult] = field(default_factory=dict)


def covers_matrix(report: RunReport) -> bool:
    """Whether *report* holds every variant of its runs' matrix (or does not know it)."""
    matrix = {ident for r in report.runs for ident in r.matrix_variants}
    return matrix <= {v.id for v in report.variants}


def _ran_on(test_id: str, tests_of: Mapping[str, set[str]]) -> list[str]:
    """The variants that ran *test_id*."""
    return [ident for ident, tests in tests_of.items() if test_id in tests]


def _variant_outcome(v: VariantReport) -> Outcome:
    return Outcome.FAILED if v.result.status is Status.FAILED else Outcome.ERROR


_LAST: list[tuple[RunReport, tuple[FailureGroup, ...]]] = []


def failure_groups(report: RunReport) -> list[FailureGroup]:
    """Every failure of *report*, one group per test (or variant problem) and message (see
    :func:`_failure_groups`); the groups of the last report asked about are kept, since
    summary.md and report.html both list them."""
    if _LAST and _LAST[0][0] is report:
        return list(_LAST[0][1])
    groups = _failure_groups(report)
    _LAST[:] = [(report, tuple(groups))]
    return groups


def _failure_groups(report: RunReport) -> list[FailureGroup]:
    """Every failure of *report*, one group per test (or variant problem) and message.

    Most useful first: variants that failed as a whole (nothing behind them was tested), then
    unreadable JUnit reports, then tests that fail on some variants and pass on others (the
    differences a matrix exists to find), then tests that fail on every variant where they ran;
    failures of only experimental variants after those of required ones; more variants first,
    then the order the tests were reported in.
    """
    building: dict[tuple[Kind, str, str], _Building] = {}
    tests_of: dict[str, set[str]] = {}  # variant id -> the tests it ran (any outcome)
    failed_on: dict[str, set[str]] = {}
    messages: dict[str, str] = {}  # a failure's text -> its message: most failures repeat one
    for v in report.variants:
        problems: list[tuple[Kind, str, str, Outcome, str, CaseResult | None]] = []
        if variant_failed_as_a_whole(v):
            detail = v.result.detail or next((c.text for c in v.synthetic if c.text), "")
            problems.append(
                (Kind.VARIANT, "", variant_reason(v), _variant_outcome(v), detail, None)
            )
        if v.junit_problem and v.result.junit:
            problems.append(
                (Kind.JUNIT, "", first_line(v.junit_problem), Outcome.ERROR, v.junit_problem, None)
            )
        tests_of[v.id] = set(map(_TEST_ID, v.cases))
        for case in v.problems:
            failed_on.setdefault(case.test_id, set()).add(v.id)
            text = case.text if case.text.strip() else case.message
            source = case_message_source(case)
            message = messages.get(source)
            if message is None:
                message = messages[source] = first_line(source)
            problems.append((Kind.TEST, case.test_id, message, case.outcome, text, case))
        for kind, test_id, message, outcome, detail, found in problems:
            group = building.setdefault(
                (kind, test_id, message), _Building(test_id, message, kind, outcome, detail)
            )
            if v.id in group.variants:
                continue  # the same test twice in one variant's report (parametrized alike)
            group.variants.append(v.id)
            if outcome is Outcome.ERROR:
                group.outcome = Outcome.ERROR
            if found is not None:
                group.cases[v.id] = found
    experimental = {v.id for v in report.variants if v.result.experimental}
    whole = covers_matrix(report)
    said: dict[tuple[str, ...], str] = {}  # variants -> variants_text: groups share a few
    for b in building.values():
        if tuple(b.variants) not in said:
            said[tuple(b.variants)] = variants_text(b.variants, report.variants, whole=whole)
    groups = [
        FailureGroup(
            test_id=b.test_id,
            message=b.message,
            outcome=b.outcome,
            variants=tuple(b.variants),
            variants_text=said[tuple(b.variants)],
            kind=b.kind,
            experimental=set(b.variants) <= experimental,
            everywhere=b.kind is Kind.TEST
            and all(ident in failed_on[b.test_id] for ident in _ran_on(b.test_id, tests_of)),
            detail=b.detail,
            cases=dict(b.cases),
        )
        for b in building.values()
    ]
    order = {Kind.VARIANT: 0, Kind.JUNIT: 1, Kind.TEST: 2}
    position = {id(g): n for n, g in enumerate(groups)}
    return sorted(
        groups,
        key=lambda g: (
            g.experimental,
            order[g.kind],
            g.everywhere,
            -len(g.variants),
            position[id(g)],
        ),
    )


__all__ = [
    "FailureGroup",
    "Kind",
    "case_message",
    "case_message_source",
    "covers_matrix",
    "failure_groups",
    "first_line",
    "variant_failed_as_a_whole",
    "variant_reason",
    "variants_text",
]
