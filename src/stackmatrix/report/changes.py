"""How a comparison with a baseline reads: one line per changed variant or test, for summary.md
and report.html alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackmatrix.junit.read import Outcome
from stackmatrix.report.baseline import CaseChange, Change, Comparison, Mark, VariantChange
from stackmatrix.report.groups import first_line
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


def changes_markdown(comparison: Comparison, *, limit: int) -> list[str]:
    """The "Compared with" section of summary.md: the tally, then one list per class."""
    lines = [f"### Compared with {md_code(comparison.baseline)}", "", tally(comparison)]
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
    return lines
