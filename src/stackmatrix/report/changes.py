"""How a comparison with a baseline reads: one line per changed variant or test, for summary.md
and report.html alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackmatrix.junit.read import Outcome
from stackmatrix.report.baseline import CaseChange, Change, Comparison, Mark, VariantChange
from stackmatrix.report.groups import covers_matrix, first_line, variants_text
from stackmatrix.report.model import RunReport
from stackmatrix.report.provenance import (
    SERVICE_ASPECTS,
    VERSION_ASPECTS,
    Aspect,
    ProvenanceChange,
    changes_text,
)
from stackmatrix.report.symbols import ABSENT, CHANGE, MARK, OUTCOME
from stackmatrix.report.text import md_code, md_escape, status_label
from stackmatrix.results.journal import Status

LISTED = (Change.REGRESSION, Change.FIXED, Change.FLAKY, Change.STILL_FAILING, Change.NEW)
"""The classes shown one line per variant or test, in this order; the rest are counted."""

_FAILING = (Outcome.FAILED, Outcome.ERROR)


def change_icon(change: Change) -> str:
    """An emoji for a class, for Markdown."""
    return CHANGE[change].icon


def change_title(change: Change) -> str:
    """The heading of a class's list."""
    return CHANGE[change].label


def mark_symbol(mark: Mark, *, emoji: bool) -> str:
    """One run of a history."""
    return MARK[mark].icon if emoji else MARK[mark].word


def mark_label(mark: Mark | None) -> str:
    """What a history mark says, as a word."""
    return (ABSENT if mark is None else MARK[mark]).label


def history_text(marks: Sequence[Mark], *, emoji: bool) -> str:
    """A history, oldest first: ``✅✅❌✅❌`` or ``pass pass FAIL pass FAIL``."""
    return ("" if emoji else " ").join(mark_symbol(m, emoji=emoji) for m in marks)


@dataclass(frozen=True)
class ChangeLine:
    """One changed variant or test, as the reports list it."""

    change: Change
    variant: str
    test: str | None  # None: the variant as a whole
    transition: str  # "passed → failed"
    detail: str  # why: the failure message, the attempts, the history


def _variant_transition(v: VariantChange) -> str:
    now = status_label(v.status) if v.status is not None else "gone"
    if v.before is None:
        return f"new: {now}"
    return f"{status_label(v.before)} → {now}"


def _variant_line(v: VariantChange, *, emoji: bool) -> ChangeLine:
    if v.change is Change.FLAKY and v.status is Status.PASSED and v.attempts > 1:
        detail = f"passed on attempt {v.attempts} of {v.attempts}"
    elif v.change is Change.FLAKY:
        detail = "alternating, last runs: " + history_text(v.history, emoji=emoji)
    elif v.change is Change.FIXED:
        detail = ""
    else:
        detail = first_line(v.reason)
    return ChangeLine(v.change, v.id, None, _variant_transition(v), detail)


def _case_line(c: CaseChange, *, emoji: bool) -> ChangeLine:
    now = OUTCOME[c.outcome].label if c.outcome is not None else "gone"
    # The baseline's own outcome where it had one: an error stays an error, not "failed".
    before = OUTCOME[c.before_outcome].label if c.before_outcome else mark_label(c.before)
    transition = f"{before} → {now}" if c.before is not None else f"new: {now}"
    if c.change is Change.FLAKY and c.flaky:
        detail = "failed in an earlier attempt, passed on retry"
    elif c.change is Change.FLAKY:
        detail = f"{now} now; last runs: {history_text(c.history, emoji=emoji)}"
    elif c.outcome in _FAILING:
        detail = first_line(c.message)
    else:
        detail = ""
    return ChangeLine(c.change, c.variant, c.test, transition, detail)


def change_lines(comparison: Comparison, change: Change, *, emoji: bool) -> list[ChangeLine]:
    """The variants, then the tests, of one class; of new tests only the failing ones."""
    variants, cases = comparison.of(change)
    if change is Change.NEW:
        cases = [c for c in cases if c.outcome in _FAILING]
    return [_variant_line(v, emoji=emoji) for v in variants] + [
        _case_line(c, emoji=emoji) for c in cases
    ]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _tested(lines: Sequence[ChangeLine]) -> str:
    """``1 variant, 3 tests on 2 variants``: whole variants and tests counted apart."""
    variants = sum(1 for line in lines if line.test is None)
    tests = {line.test for line in lines if line.test is not None}
    on = {line.variant for line in lines if line.test is not None}
    parts = []
    if variants:
        parts.append(_plural(variants, "variant", "variants"))
    if tests:
        parts.append(
            _plural(len(tests), "test", "tests") + " on " + _plural(len(on), "variant", "variants")
        )
    return ", ".join(parts)


_TALLY_NAMES = {
    Change.REGRESSION: ("regressions", "0 regressions"),
    Change.FIXED: ("fixed", "0 fixed"),
    Change.FLAKY: ("flaky", "0 flaky"),
    Change.STILL_FAILING: ("still failing", "0 still failing"),
}


def tally_words(comparison: Comparison) -> list[tuple[Change, str]]:
    """``regressions: 1 variant, 3 tests on 2 variants``, ``0 fixed``, ... with their classes:
    whole variants and tests counted apart, tests once however many variants they are on."""
    words = []
    for change, (name, none) in _TALLY_NAMES.items():
        counted = _tested(change_lines(comparison, change, emoji=False))
        words.append((change, f"{name}: {counted}" if counted else none))
    return words


def tally(comparison: Comparison) -> str:
    """``🔴 2 regressions · 🟢 1 fixed · 🟡 0 flaky · 🟠 3 still failing``."""
    return " · ".join(f"{change_icon(c)} {w}" for c, w in tally_words(comparison))


def others(comparison: Comparison) -> str:
    """One sentence on what the lists leave out: new passing tests, removed and not-run ones."""
    new_cases = comparison.of(Change.NEW)[1]
    removed_variants, removed_cases = comparison.of(Change.REMOVED)
    parts = []
    passing = sum(c.outcome not in _FAILING for c in new_cases)
    if passing:
        parts.append(_plural(passing, "new test passed", "new tests passed"))
    if removed_variants:
        names = ", ".join(v.id for v in removed_variants)
        parts.append(_plural(len(removed_variants), "variant", "variants") + f" gone ({names})")
    if removed_cases:
        parts.append(_plural(len(removed_cases), "test", "tests") + " gone")
    not_run = comparison.count(Change.NOT_RUN)
    if not_run:
        parts.append(_plural(not_run, "variant or test", "variants and tests") + " not run now")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# What ran differently, next to what changed

OUTCOME_CHANGES = (Change.REGRESSION, Change.FIXED, Change.FLAKY)
"""The classes that are a change of outcome: a variant in one gets its provenance change on
its line; one in none with a provenance change is listed quietly."""


@dataclass(frozen=True)
class RanLine:
    """A variant whose outcome changed, with what it ran differently from the baseline:
    ``regression on postgres-17: 3 tests; db postgres 17.1 → 17.2 since the baseline``."""

    change: Change  # the first of its classes in OUTCOME_CHANGES
    variant: str
    tail: str  # what follows the variant id: ``: 3 tests; db postgres 17.1 → 17.2 since ...``

    @property
    def lead(self) -> str:
        """``regression on``."""
        return f"{CHANGE[self.change].word} on"


def _outcome_words(comparison: Comparison) -> dict[str, list[tuple[Change, str]]]:
    """Variant id -> what of it changed outcome, by class: ``(REGRESSION, "3 tests")``, or
    ``(FIXED, "the variant (failed → passed)")`` when no test of it is in that class."""
    tests: dict[tuple[str, Change], set[str]] = {}
    for case in comparison.cases:
        if case.change in OUTCOME_CHANGES:
            tests.setdefault((case.variant, case.change), set()).add(case.test)
    found: dict[str, list[tuple[Change, str]]] = {}
    for v in comparison.variants:
        for change in OUTCOME_CHANGES:
            if (v.id, change) in tests:
                words = _plural(len(tests[(v.id, change)]), "test", "tests")
            elif v.change is change:
                words = f"the variant ({_variant_transition(v)})"
            else:
                continue
            found.setdefault(v.id, []).append((change, words))
    return found


def ran_lines(comparison: Comparison) -> list[RanLine]:
    """A line for each variant whose outcome changed and whose provenance could be compared
    with the baseline's (both recorded it), naming what it ran differently, or that it ran the
    same images and versions."""
    outcomes = _outcome_words(comparison)
    lines = []
    for v in comparison.variants:
        words = outcomes.get(v.id)
        if not words or not v.provenance_compared:
            continue
        outcome = "; ".join(
            text if n == 0 else f"{CHANGE[change].word}: {text}"
            for n, (change, text) in enumerate(words)
        )
        ran = (
            f"{changes_text(v.provenance_changes)} since the baseline"
            if v.provenance_changes
            else "the same images and versions as the baseline"
        )
        lines.append(RanLine(words[0][0], v.id, f": {outcome}; {ran}"))
    return lines


def quiet_changes(comparison: Comparison) -> list[tuple[ProvenanceChange, tuple[str, ...]]]:
    """What variants whose outcome did not change ran differently from the baseline: each
    change once, with the variants it happened on (an upgrade that broke nothing)."""
    outcomes = _outcome_words(comparison)
    grouped: dict[str, tuple[ProvenanceChange, list[str]]] = {}
    for v in comparison.variants:
        if v.id in outcomes:
            continue
        for change in v.provenance_changes:
            grouped.setdefault(change.text, (change, []))[1].append(v.id)
    return [(change, tuple(ids)) for change, ids in grouped.values()]


@dataclass(frozen=True)
class QuietLine:
    """A change of what ran on variants whose outcome did not change, and where."""

    text: str  # ``cache redis 7.0.14 → 7.0.15``
    where: str  # ``redis=7 (2 variants)``
    count: int  # how many variants


def quiet_lines(comparison: Comparison, report: RunReport | None) -> tuple[str, list[QuietLine]]:
    """The title (``Versions changed with no change of outcome``; images, services added or
    removed, or some of them) and each
    quiet change with its variants, said briefly against *report*'s variants when given."""
    whole = report is not None and covers_matrix(report)
    universe = report.variants if report is not None else ()
    changes = quiet_changes(comparison)
    lines = []
    for change, ids in changes:
        where = (
            variants_text(ids, universe, whole=whole)
            if universe
            else (ids[0] if len(ids) == 1 else f"{', '.join(ids)} ({len(ids)} variants)")
        )
        lines.append(QuietLine(change.text, where, len(ids)))
    return _quiet_title({c.aspect for c, _ in changes}), lines


def _quiet_title(aspects: set[Aspect]) -> str:
    """``Versions changed``, ``Versions and images changed``, ``Services added or removed``,
    or some of them, ``with no change of outcome``."""
    kinds = [
        word
        for word, found in (
            ("versions", aspects & VERSION_ASPECTS),
            ("images", aspects - VERSION_ASPECTS - SERVICE_ASPECTS),
        )
        if found
    ]
    parts = [f"{' and '.join(kinds)} changed"] if kinds else []
    if aspects & SERVICE_ASPECTS:
        parts.append("services added or removed")
    title = ", ".join(parts) or "nothing changed"
    return f"{title[0].upper()}{title[1:]} with no change of outcome"


def changes_markdown(
    comparison: Comparison, *, limit: int, report: RunReport | None = None
) -> list[str]:
    """The "Compared with" section of summary.md: the tally, the variants whose outcome changed
    with what they ran differently, one list per class, and the changes of what ran on
    variants whose outcome did not change (*report*: the current run, to name variants
    briefly)."""
    lines = [f"### Compared with {md_code(comparison.baseline)}", "", tally(comparison)]
    ran = ran_lines(comparison)
    if ran:
        lines.append("")
        lines += [
            f"- {change_icon(r.change)} {r.lead} {md_code(r.variant)}{md_escape(r.tail)}"
            for r in ran[:limit]
        ]
        if len(ran) > limit:
            lines.append(f"- ... and {len(ran) - limit} more in results.json")
    for change in LISTED:
        entries = change_lines(comparison, change, emoji=True)
        if not entries:
            continue
        lines += ["", f"#### {change_icon(change)} {change_title(change)} ({len(entries)})", ""]
        for entry in entries[:limit]:
            what = md_code(entry.variant) + (
                f" · {md_code(entry.test)}" if entry.test is not None else " (variant)"
            )
            detail = f" · {md_escape(entry.detail)}" if entry.detail else ""
            lines.append(f"- {what}: {md_escape(entry.transition)}{detail}")
        if len(entries) > limit:
            lines.append(f"- ... and {len(entries) - limit} more in results.json")
    rest = others(comparison)
    if rest:
        lines += ["", md_escape(rest[0].upper() + rest[1:]) + "."]
    title, quiet = quiet_lines(comparison, report)
    if quiet:
        lines += ["", f"{title}:", ""]
        lines += [
            f"- {md_escape(q.text)} on {md_code(q.where) if q.count == 1 else md_escape(q.where)}"
            for q in quiet[:limit]
        ]
        if len(quiet) > limit:
            lines.append(f"- ... and {len(quiet) - limit} more in results.json")
    return lines
