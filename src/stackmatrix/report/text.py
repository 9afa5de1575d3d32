"""Plain-text and Markdown summaries of a run."""

from __future__ import annotations

import re
from collections.abc import Sequence

from stackmatrix.format import format_bytes, format_duration
from stackmatrix.report.groups import (
    FailureGroup,
    Kind,
    failure_groups,
)
from stackmatrix.report.model import NA, Cell, RunReport, VariantReport, Verdict
from stackmatrix.report.provenance import provenance_text
from stackmatrix.report.symbols import NOT_APPLICABLE, NOT_RUN, OUTCOME, STATUS, VERDICT
from stackmatrix.results.journal import Status

MAX_GRID_ROWS = 200
MAX_FAILURES_LISTED = 50
MAX_IDS_LISTED = 20

EXIT_MEANINGS = {
    1: "tests failed",
    2: "the spec or the command line is wrong",
    3: "a stack or the engine failed",
    130: "interrupted",
}


def status_label(status: Status) -> str:
    """A short word for a status, as people read it in a table."""
    return STATUS[status].label


def status_icon(status: Status) -> str:
    """An emoji for a status, for Markdown."""
    return STATUS[status].icon


def cell_symbol(cell: Cell, *, emoji: bool) -> str:
    """How one test's outcome on one variant is drawn in the grid."""
    if cell is None:
        look = NOT_RUN
    elif cell is NA:
        look = NOT_APPLICABLE
    else:
        look = OUTCOME[cell]
    return look.icon if emoji else look.word


def variant_tally(report: RunReport) -> str:
    """``5 variants — 2 passed, 1 failed, ...``."""
    parts = [f"{n} {status_label(s)}" for s, n in report.status_counts().items()]
    total = len(report.variants)
    noun = "variant" if total == 1 else "variants"
    return f"{total} {noun}" + (f" — {', '.join(parts)}" if parts else "")


def headline(report: RunReport) -> str:
    """One line: the run's name, how many variants passed, failed, errored, and whether the
    report is incomplete or a run ended on an error of its own."""
    extra = ""
    if report.verdict is Verdict.INCOMPLETE:
        extra = " — incomplete"
    elif any(r.aborted for r in report.runs):
        extra = " — a run ended on an error"
    return f"{report.name}: {variant_tally(report)}{extra}"


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_LISTED])
    more = len(ids) - MAX_IDS_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def completeness_lines(report: RunReport) -> list[str]:
    """Sentences on what the report misses: runs that did not record their end or ended on
    an error, variants that never finished, matrix variants and shards no directory holds."""
    done = report.completeness
    lines = []
    for run_id, code in done.aborted_runs:
        meaning = EXIT_MEANINGS.get(code or 0, "")
        lines.append(
            f"Run {run_id} ended with exit code {code}"
            + (f" ({meaning})" if meaning else "")
            + " after the results shown: it is not a passing run."
        )
    for run_id in done.unfinished_runs:
        lines.append(
            f"Run {run_id} did not record its end: it crashed, was killed, or is still running."
        )
    for run_id in done.empty_runs:
        lines.append(f"Run {run_id} ended without a result for any of its variants.")
    if done.not_finished:
        lines.append(
            f"Never finished ({len(done.not_finished)} variants): {_ids(done.not_finished)}."
        )
    if done.missing_shards:
        lines.append(f"Missing shards: {', '.join(done.missing_shards)}.")
    if done.missing:
        lines.append(
            f"Missing: {len(done.missing)} of {len(done.expected)} matrix variants are in none"
            f" of the run directories: {_ids(done.missing)}."
        )
    return lines


# --------------------------------------------------------------------------------------------
# Terminal


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def render_text(report: RunReport) -> str:
    """A plain-text table of variants and their failures, for the terminal."""
    header = ["VARIANT", "STATUS", "PASSED", "FAILED", "ERRORS", "SKIPPED", "TIME", "PEAK MEM"]
    rows = [header]
    for v in report.variants:
        c = v.counts
        rows.append(
            [
                v.id,
                status_label(v.result.status),
                str(c.passed),
                str(c.failed),
                str(c.errors),
                str(c.skipped),
                format_duration(v.result.duration),
                format_bytes(v.peak_memory_bytes),
            ]
        )
    lines = [headline(report), *completeness_lines(report), ""]
    lines += _table(rows, right={2, 3, 4, 5, 6, 7})
    flaky = flaky_lines(report, markdown=False)
    if flaky:
        lines += ["", "Flaky (passed on a retry):", *flaky]
    failures = _failure_lines(report, markdown=False)
    if failures:
        lines += ["", "Failures:", *failures]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def group_line(group: FailureGroup, *, markdown: bool) -> str:
    """One failure group: ``tests.x::test_y fails on postgres=13 (2 variants): message``."""
    where = group.variants_text
    if markdown:
        where = md_code(where) if len(group.variants) == 1 else md_escape(where)
    message = md_escape(group.message) if markdown else group.message
    note = " (experimental)" if group.experimental else ""
    if group.kind is Kind.TEST:
        what = md_code(group.test_id) if markdown else group.test_id
        text = f"{what} {group.verb} on {where}{note}: {message}"
    else:
        noun = "variant" if len(group.variants) == 1 else "variants"
        kind = " JUnit report" if group.kind is Kind.JUNIT else ""
        text = f"{noun} {where}{kind}{note}: {message}"
    return f"- {text}" if markdown else f"  {text}"


def _failure_lines(report: RunReport, *, markdown: bool) -> list[str]:
    groups = failure_groups(report)
    lines = [group_line(g, markdown=markdown) for g in groups[:MAX_FAILURES_LISTED]]
    if len(groups) > MAX_FAILURES_LISTED:
        more = len(groups) - MAX_FAILURES_LISTED
        lines.append(f"{'- ' if markdown else '  '}... and {more} more in report.html")
    return lines


def attempts_note(v: VariantReport) -> str:
    """``passed on attempt 2 of 2`` for a variant that ran more than once; else empty."""
    result = v.result
    if result.attempts == 1:
        return ""
    if result.flaky:
        return f"passed on attempt {result.attempts} of {result.attempts}"
    return f"{result.attempts} attempts"


def flaky_lines(report: RunReport, *, markdown: bool) -> list[str]:
    """Variants that passed on a retry, and tests that failed in an earlier attempt and passed
    in the last (of any variant)."""
    lines = []
    for v in report.variants:
        if v.result.flaky:
            lines.append(_failure_line(v, "(variant)", attempts_note(v), markdown=markdown))
        lines.extend(
            _failure_line(
                v, test, "failed in an earlier attempt, passed on retry", markdown=markdown
            )
            for test in v.flaky_tests
        )
    if len(lines) > MAX_FAILURES_LISTED:
        cut = len(lines) - MAX_FAILURES_LISTED
        lines = [*lines[:MAX_FAILURES_LISTED], f"... and {cut} more"]
    return lines


def _failure_line(v: VariantReport, what: str, message: str, *, markdown: bool) -> str:
    if markdown:
        return f"- {md_code(v.id)} · {md_code(what)}: {md_escape(message)}"
    return f"  {v.id}  {what}: {message}"


# --------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(text: str) -> str:
    """Make untrusted text inert in GitHub Markdown (no HTML, no links, no table breaks)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def md_code(text: str) -> str:
    """Untrusted text as an inline code span that cannot break a table or the span."""
    if "`" in text or "\n" in text:
        return md_escape(text)
    return "`" + text.replace("|", "\\|") + "`"


def render_markdown(report: RunReport, *, lead: Sequence[str] = ()) -> str:
    """summary.md: *lead* (the comparison with a baseline) first, then the variant table, the
    flaky variants and tests, the test x variant grid of tests that did not pass everywhere,
    and the failure messages."""
    verdict = report.verdict
    icon = VERDICT[verdict].icon
    extra = " · incomplete" if verdict is Verdict.INCOMPLETE else ""
    lines = [f"## {icon} stackmatrix {md_escape(report.name)}: {variant_tally(report)}{extra}", ""]
    gaps = completeness_lines(report)
    if gaps:
        lines += [*(f"> ⚠️ {md_escape(g)}" for g in gaps), ""]
    if lead:
        lines += [*lead, "", "### Variants", ""]
    # What each variant ran, when any recorded it (one line each, cut: see provenance_text).
    shown = {v.id: provenance_text(v.result.provenance) for v in report.variants}
    what_ran = any(shown.values())
    lines += [
        "| Variant | Status | Passed | Failed | Errors | Skipped | Duration | Peak memory |"
        + (" What ran |" if what_ran else ""),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + (" --- |" if what_ran else ""),
    ]
    for v in report.variants:
        c = v.counts
        status = v.result.status
        note = f" ({attempts_note(v)})" if v.result.attempts > 1 else ""
        lines.append(
            f"| {md_code(v.id)} | {status_icon(status)} {status_label(status)}{note} | {c.passed}"
            f" | {c.failed} | {c.errors} | {c.skipped} | {format_duration(v.result.duration)}"
            f" | {format_bytes(v.peak_memory_bytes)} |"
            + (f" {md_escape(shown[v.id]) or '—'} |" if what_ran else "")
        )
    flaky = flaky_lines(report, markdown=True)
    if flaky and not lead:
        lines += ["", "### 🟡 Flaky: passed on a retry", "", *flaky]
    rows = report.grid()
    if rows:
        ran = [v for v in report.variants if v.ran_tests]
        lines += ["", "### Tests that did not pass on every variant", ""]
        lines.append("| Test | " + " | ".join(md_code(v.id) for v in ran) + " |")
        lines.append("| --- |" + " :---: |" * len(ran))
        for row in rows[:MAX_GRID_ROWS]:
            cells = " | ".join(cell_symbol(row.cells.get(v.id), emoji=True) for v in ran)
            lines.append(f"| {md_code(row.test_id)} | {cells} |")
        if len(rows) > MAX_GRID_ROWS:
            lines.append(f"\n{len(rows) - MAX_GRID_ROWS} more tests are in report.html.")
        lines.append(
            "\n✅ passed · ❌ failed · 💥 error · ⏭️ skipped · — not run · n/a: no test of its"
            " class ran on that variant. Most severe first: failures that differ by variant,"
            " failures everywhere, then skips that differ."
        )
    failures = _failure_lines(report, markdown=True)
    if failures:
        lines += ["", "### Failures", "", *failures]
    if report.warnings:
        lines += ["", *(f"> {md_escape(w)}" for w in report.warnings)]
    return "\n".join(lines) + "\n"


__all__ = [
    "MAX_FAILURES_LISTED",
    "MAX_GRID_ROWS",
    "attempts_note",
    "cell_symbol",
    "completeness_lines",
    "flaky_lines",
    "group_line",
    "headline",
    "md_code",
    "md_escape",
    "render_markdown",
    "render_text",
    "status_icon",
    "status_label",
    "variant_tally",
]
