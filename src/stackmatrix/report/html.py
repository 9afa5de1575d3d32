"""report.html: one self-contained page (inline CSS and SVG, nothing fetched) of a run."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from html import escape
from pathlib import Path

from stackmatrix import __version__
from stackmatrix.format import format_bytes, format_duration
from stackmatrix.junit.write import Outcome
from stackmatrix.report.baseline import Comparison
from stackmatrix.report.changes import (
    LISTED,
    ChangeLine,
    change_lines,
    change_title,
    others,
    quiet_lines,
    ran_lines,
    tally_words,
)
from stackmatrix.report.comparison import comparison_section
from stackmatrix.report.groups import (
    FailureGroup,
    Kind,
    case_message_source,
    failure_groups,
    first_line,
)
from stackmatrix.report.model import NA, SEVERITY_TITLES, Cell, GridRow, RunReport, VariantReport
from stackmatrix.report.plots import PLOT_NAME, image, kept_or_drawn, report_styles
from stackmatrix.report.provenance import provenance_html
from stackmatrix.report.text import (
    MAX_GRID_ROWS,
    attempts_note,
    cell_symbol,
    completeness_lines,
    headline,
    status_label,
)
from stackmatrix.results.journal import Status
from stackmatrix.spec.values import scalar_text

MAX_DETAIL_CHARS = 20_000
MAX_FAILURE_GROUPS = 2_000  # failure groups listed before the rest fold in pages
FAILURE_PAGE_GROUPS = 1_000  # failure groups past MAX_FAILURE_GROUPS, folded this many a page
MAX_VARIANTS_NAMED = 200
OPEN_FAILURES_UP_TO = 10
GRID_PAGE_ROWS = 1_000  # grid rows past the first MAX_GRID_ROWS, folded this many at a time

_CSS = """
:root { --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#cf222e; --fail-bg:#ffebe9;
  --err:#8250df; --err-bg:#fbefff; --skip:#9a6700; --skip-bg:#fff8c5; --none:#6e7781;
  --none-bg:#f6f8fa; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328;
  margin: 0 auto; padding: 24px; max-width: 1280px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.headline { font-size: 16px; margin: 0; } .meta, .note { color: var(--none); margin: 4px 0; }
table { border-collapse: collapse; } th, td { border: 1px solid var(--line); padding: 4px 8px;
  text-align: left; vertical-align: top; } th { background: var(--none-bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  white-space: nowrap; }
.passed { color: var(--pass); background: var(--pass-bg); }
.failed { color: var(--fail); background: var(--fail-bg); }
.error { color: var(--err); background: var(--err-bg); }
.skipped, .experimental-failed { color: var(--skip); background: var(--skip-bg); }
.cancelled, .interrupted, .notrun { color: var(--none); background: var(--none-bg); }
.na { color: #afb8c1; background: #fff; font-weight: 400; }
.incomplete { color: var(--skip); background: var(--skip-bg); }
.gaps { border-left: 4px solid var(--skip); padding: 2px 10px; margin: 8px 0; }
.regression { color: var(--fail); background: var(--fail-bg); }
.fixed { color: var(--pass); background: var(--pass-bg); }
.flaky { color: var(--skip); background: var(--skip-bg); }
.still-failing { color: var(--err); background: var(--err-bg); }
.new { color: var(--none); background: var(--none-bg); }
.changes td.variant { white-space: nowrap; }
.axis { display: inline-block; font-size: 12px; background: var(--none-bg);
  border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; margin: 1px; }
.reason { color: var(--fail); font-size: 13px; }
.grid th.v { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
  font-weight: 500; }
.grid td.cell { text-align: center; font-weight: 700; min-width: 34px; }
.grid td.test, .case { font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 13px; word-break: break-all; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
summary { cursor: pointer; } .msg { color: var(--fail); white-space: pre-wrap; margin: 6px 0; }
pre { background: var(--none-bg); padding: 8px; overflow-x: auto; font-size: 12px;
  max-height: 420px; }
figure { margin: 12px 0 20px; } figcaption { font-weight: 600; margin-bottom: 4px; }
figure img.plot { max-width: 100%; height: auto; }
a { color: #0969da; }
.ran { font-size: 13px; } .ran details { border: 0; margin: 0; padding: 0; }
.ran table { margin: 4px 0; font-size: 12px; } .ran td { word-break: break-all; }
ul.ran-changes { margin: 8px 0; padding-left: 20px; }
"""


def _outcome_class(cell: Cell) -> str:
    if cell is None:
        return "notrun"
    return "na" if cell is NA else cell.value


def _link(target: Path | None, label: str, out_dir: Path) -> str:
    if target is None:
        return ""
    href = Path(os.path.relpath(target, out_dir)).as_posix()
    missing = "" if target.exists() else ' title="file not found"'
    return f'<a href="{escape(href)}"{missing}>{escape(label)}</a>'


def _files(v: VariantReport, out_dir: Path) -> str:
    links = [
        _link(v.path(v.result.compose_file), "compose.yaml", out_dir),
        _link(v.path(v.result.tests_log), "tests.log", out_dir),
        _link(v.path(v.result.junit), "junit.xml", out_dir),
    ]
    links += [_link(v.path(rel), f"{svc}.log", out_dir) for svc, rel in v.result.logs.items()]
    return " · ".join(link for link in links if link)


def _what_ran(v: VariantReport) -> str:
    return f'<td class="ran">{provenance_html(v.result.provenance) or "—"}</td>'


def _variant_rows(report: RunReport, out_dir: Path) -> str:
    rows = []
    what_ran = any(v.result.provenance for v in report.variants)
    for v in report.variants:
        c = v.counts
        status = v.result.status
        axes = "".join(
            f'<span class="axis">{escape(str(k))}={escape(scalar_text(val))}</span>'
            for k, val in v.result.values.items()
        )
        reason = (
            f'<div class="reason">{escape(first_line(v.result.reason))}</div>'
            if v.result.reason
            else ""
        )
        if v.junit_problem and v.result.junit:
            reason += f'<div class="reason">JUnit report: {escape(v.junit_problem)}</div>'
        if v.result.phases:
            spent = " · ".join(
                f"{escape(k)} {format_duration(t)}" for k, t in v.result.phases.items()
            )
            reason += f'<div class="note">phases: {spent}</div>'
        if v.result.attempts > 1:
            flaky = '<span class="badge flaky">flaky</span> ' if v.result.flaky else ""
            reason += f'<div class="note">{flaky}{escape(attempts_note(v))}</div>'
        rows.append(
            f'<tr id="variant-{escape(v.id)}"><td><b>{escape(v.id)}</b><br>{axes}</td>'
            f'<td><span class="badge {status.value}">{escape(status_label(status))}</span>'
            f"{reason}</td>"
            f'<td class="num">{c.passed}</td><td class="num">{c.failed}</td>'
            f'<td class="num">{c.errors}</td><td class="num">{c.skipped}</td>'
            f'<td class="num">{format_duration(v.result.duration)}</td>'
            f'<td class="num">{format_bytes(v.peak_memory_bytes)}</td>'
            f"{_what_ran(v) if what_ran else ''}"
            f"<td>{_files(v, out_dir)}</td></tr>"
        )
    return (
        '<table class="variants"><thead><tr><th>Variant</th><th>Status</th><th>Passed</th>'
        "<th>Failed</th><th>Errors</th><th>Skipped</th><th>Duration</th><th>Peak memory</th>"
        + ("<th>What ran</th>" if what_ran else "")
        + "<th>Files</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _grid_rows(rows: list[GridRow], ran: list[VariantReport]) -> str:
    body = []
    # (cell, the text its tip comes from) -> the cell's HTML: a grid of thousands of rows
    # holds a handful of distinct cells.
    made: dict[tuple[Cell, str], str] = {}
    passed = Outcome.PASSED
    for row in rows:
        cells = []
        for v in ran:
            cell = row.cells.get(v.id)
            case = row.cases.get(v.id)
            source = case_message_source(case) if case is not None and cell is not passed else ""
            html = made.get((cell, source))
            if html is None:
                tip = first_line(source) if source else ""
                title = f' title="{escape(tip)}"' if tip else ""
                html = made[cell, source] = (
                    f'<td class="cell {_outcome_class(cell)}"{title}>'
                    f"{escape(cell_symbol(cell, emoji=False))}</td>"
                )
            cells.append(html)
        body.append(
            f'<tr class="sev{int(row.severity)}"><td class="test">{escape(row.test_id)}</td>'
            f"{''.join(cells)}</tr>"
        )
    return "".join(body)


def _grid(report: RunReport) -> str:
    """Every row: the first MAX_GRID_ROWS open, the rest in folded pages (no script needed,
    so the page stays one offline file that opens fast with tens of thousands of rows)."""
    rows = report.grid()
    ran = [v for v in report.variants if v.ran_tests]
    if not ran:
        return '<p class="note">No variant produced a readable test report.</p>'
    if not rows:
        return f'<p class="note">Every test passed on all {len(ran)} variants that ran tests.</p>'
    head = (
        "<thead><tr><th>Test</th>"
        + "".join(f'<th class="v">{escape(v.id)}</th>' for v in ran)
        + "</tr></thead>"
    )
    counts = dict.fromkeys(SEVERITY_TITLES, 0)
    for row in rows:
        counts[row.severity] += 1
    order = " · ".join(f"{n} {escape(SEVERITY_TITLES[sev])}" for sev, n in counts.items() if n)
    parts = [
        f'<p class="note">{len(rows)} tests, most severe first: {order}. n/a: no test of its'
        " class ran on that variant.</p>",
        f'<table class="grid">{head}<tbody>{_grid_rows(rows[:MAX_GRID_ROWS], ran)}</tbody></table>',
    ]
    for start in range(MAX_GRID_ROWS, len(rows), GRID_PAGE_ROWS):
        page = rows[start : start + GRID_PAGE_ROWS]
        first, last = page[0].severity, page[-1].severity
        kinds = escape(SEVERITY_TITLES[first]) + (
            f" … {escape(SEVERITY_TITLES[last])}" if last is not first else ""
        )
        parts.append(
            f'<details class="page"><summary>tests {start + 1} to {start + len(page)} of'
            f" {len(rows)} ({kinds})</summary>"
            f'<table class="grid">{head}<tbody>{_grid_rows(page, ran)}</tbody></table></details>'
        )
    absent = [v.id for v in report.variants if not v.ran_tests]
    if absent:
        parts.append(f'<p class="note">Ran no tests: {escape(", ".join(absent))}.</p>')
    return "".join(parts)


def _change_rows(lines: list[ChangeLine]) -> str:
    rows = []
    for line in lines[:MAX_GRID_ROWS]:
        test = (
            f'<td class="case">{escape(line.test)}</td>'
            if line.test is not None
            else '<td class="note">whole variant</td>'
        )
        rows.append(
            f'<tr><td><span class="badge {line.change.value}">{escape(line.change.value)}'
            f'</span></td><td class="variant"><a href="#variant-{escape(line.variant)}">'
            f"{escape(line.variant)}"
            f"</a></td>{test}<td>{escape(line.transition)}</td>"
            f"<td>{escape(first_line(line.detail))}</td></tr>"
        )
    more = (
        f'<tr><td colspan="5" class="note">{len(lines) - MAX_GRID_ROWS} more in results.json'
        "</td></tr>"
        if len(lines) > MAX_GRID_ROWS
        else ""
    )
    return "".join(rows) + more


_CHANGES_HEAD = (
    '<table class="changes"><thead><tr><th>Change</th><th>Variant</th><th>Test</th>'
    "<th>Before → now</th><th>Detail</th></tr></thead><tbody>"
)


def _ran_changes(comparison: Comparison, report: RunReport) -> str:
    """The variants whose outcome changed with what they ran differently, before the table;
    the changes of what ran on the others, quietly, after it."""
    ran = "".join(
        f'<li><span class="badge {r.change.value}">{escape(r.lead)}</span> '
        f'<a href="#variant-{escape(r.variant)}">{escape(r.variant)}</a>{escape(r.tail)}</li>'
        for r in ran_lines(comparison)[:MAX_GRID_ROWS]
    )
    return f'<ul class="ran-changes">{ran}</ul>' if ran else ""


def _quiet(comparison: Comparison, report: RunReport) -> str:
    title, quiet = quiet_lines(comparison, report)
    if not quiet:
        return ""
    items = "".join(
        f"<li>{escape(q.text)} on {escape(q.where)}</li>" for q in quiet[:MAX_GRID_ROWS]
    )
    return f'<p class="note quiet">{escape(title)}:</p><ul class="note quiet">{items}</ul>'


def _comparison(comparison: Comparison, report: RunReport) -> str:
    groups = [change_lines(comparison, change, emoji=False) for change in LISTED]
    rows = "".join(
        f'<tr><th colspan="5">{escape(change_title(change))} ({len(lines)})</th></tr>'
        + _change_rows(lines)
        for change, lines in zip(LISTED, groups, strict=True)
        if lines
    )
    table = f"{_CHANGES_HEAD}{rows}</tbody></table>" if rows else ""
    rest = others(comparison)
    note = f'<p class="note">{escape(rest[0].upper() + rest[1:])}.</p>' if rest else ""
    badges = " ".join(
        f'<span class="badge {change.value}">{escape(words)}</span>'
        for change, words in tally_words(comparison)
    )
    return (
        f'<section id="comparison"><h2>Compared with <code>{escape(comparison.baseline)}</code>'
        f'</h2><p class="headline">{badges}</p>{_ran_changes(comparison, report)}{table}{note}'
        f"{_quiet(comparison, report)}</section>"
    )


def _flaky(report: RunReport) -> str:
    rows = []
    for v in report.variants:
        if v.result.flaky:
            rows.append(
                f'<tr><td class="variant"><b>{escape(v.id)}</b></td>'
                f'<td class="note">whole variant</td><td>{escape(attempts_note(v))}</td></tr>'
            )
        rows.extend(
            f'<tr><td class="variant"><b>{escape(v.id)}</b></td>'
            f'<td class="case">{escape(test)}</td>'
            "<td>failed in an earlier attempt, passed on retry</td></tr>"
            for test in v.flaky_tests
        )
    if not rows:
        return ""
    return (
        '<section id="flaky"><h2>Flaky: passed on a retry</h2><table class="changes"><thead>'
        "<tr><th>Variant</th><th>Test</th><th>Detail</th></tr></thead><tbody>"
        + "".join(rows[:MAX_GRID_ROWS])
        + "</tbody></table></section>"
    )


def _clip(text: str) -> str:
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return text[:MAX_DETAIL_CHARS] + f"\n… {len(text) - MAX_DETAIL_CHARS} more characters"


def _variant_list(group: FailureGroup) -> str:
    named = group.variants[:MAX_VARIANTS_NAMED]
    links = ", ".join(f'<a href="#variant-{escape(v)}">{escape(v)}</a>' for v in named)
    more = len(group.variants) - len(named)
    return f'<p class="note">on {links}{f" and {more} more" if more > 0 else ""}</p>'


def _failure(group: FailureGroup, statuses: Mapping[str, Status], *, is_open: bool) -> str:
    badge = group.outcome.value
    label = "error" if group.outcome is Outcome.ERROR else "failed"
    if group.kind is Kind.TEST:
        what = f'<span class="case">{escape(group.test_id)}</span> {group.verb} on'
    else:
        what = "JUnit report of" if group.kind is Kind.JUNIT else "variant"
    if group.kind is Kind.VARIANT and group.variants[0] in statuses:
        # The variant's own status: a cancelled or interrupted variant did not error.
        status = statuses[group.variants[0]]
        badge, label = status.value, status_label(status)
    note = " (experimental)" if group.experimental else ""
    detail = f"<pre>{escape(_clip(group.detail))}</pre>" if group.detail.strip() else ""
    return (
        f"<details{' open' if is_open else ''}><summary>"
        f'<span class="badge {badge}">{escape(label)}</span> {what}'
        f" <b>{escape(group.variants_text)}</b>{note}</summary>"
        f'<div class="msg">{escape(_clip(group.message))}</div>{_variant_list(group)}'
        f"{detail}</details>"
    )


def _failures(report: RunReport) -> str:
    groups = failure_groups(report)
    # A handful of failures are shown unfolded; a flood of them stays folded and scannable.
    is_open = len(groups) <= OPEN_FAILURES_UP_TO
    statuses = {v.id: v.result.status for v in report.variants}
    shown = [
        _failure(g, statuses, is_open=is_open or g.kind is not Kind.TEST)
        for g in groups[:MAX_FAILURE_GROUPS]
    ]
    parts = ["".join(shown)]
    # Every group is on the page (summary.md promises it): the rest fold in pages, as the
    # grid's rows do.
    for start in range(MAX_FAILURE_GROUPS, len(groups), FAILURE_PAGE_GROUPS):
        page = groups[start : start + FAILURE_PAGE_GROUPS]
        parts.append(
            f'<details class="page"><summary>failures {start + 1} to {start + len(page)} of'
            f" {len(groups)}</summary>"
            + "".join(_failure(g, statuses, is_open=False) for g in page)
            + "</details>"
        )
    return "".join(parts) or '<p class="note">No failures.</p>'


def _resources(report: RunReport) -> str:
    parts = []
    styles = report_styles(report.variants)  # one colour per service in every plot
    for v in report.variants:
        if v.stats is not None and v.stats.samples:
            stats_file = v.path(v.result.stats)
            kept = stats_file.with_name(PLOT_NAME) if stats_file else None
            svg = kept_or_drawn(v.stats, v.id, kept, styles)
            body = image(svg, f"CPU and memory per service of {v.id}")
        else:
            body = f'<p class="note">{escape(v.stats_problem or "no resource samples")}</p>'
        parts.append(
            f'<figure id="resources-{escape(v.id)}"><figcaption>{escape(v.id)}</figcaption>'
            f"{body}</figure>"
        )
    return "".join(parts)


def render_html(report: RunReport, out_dir: Path, *, comparison: Comparison | None = None) -> str:
    """The whole page; links to variant files are relative to *out_dir*. The comparison with a
    baseline comes first when there is one; else the flaky variants and tests, if any."""
    started = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.started_at))
        if report.started_at
        else "-"
    )
    duration = (
        format_duration(report.finished_at - report.started_at)
        if report.started_at and report.finished_at
        else "-"
    )
    warnings = "".join(f'<p class="note">warning: {escape(w)}</p>' for w in report.warnings)
    gaps = "".join(f'<p class="gaps">{escape(g)}</p>' for g in completeness_lines(report))
    verdict = report.verdict.value
    prepare = report.prepare
    if prepare:
        duration += (
            f" · images first: {format_duration(prepare['seconds'])} (pulls"
            f" {format_duration(prepare['pull_seconds'])}, builds"
            f" {format_duration(prepare['build_seconds'])})"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may be loaded from anywhere: the page must work offline and leak nothing.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>stackmatrix · {escape(report.name)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>stackmatrix · {escape(report.name)}</h1>"
        f'<p class="headline"><span class="badge {verdict}">{verdict}</span> '
        f"{escape(headline(report))}</p>"
        f'<p class="meta">run {escape(", ".join(report.run_ids))} · started {started}'
        f" · took {duration}</p>{gaps}{warnings}</header>"
        f"{_comparison(comparison, report) if comparison is not None else _flaky(report)}"
        f'<section id="variants"><h2>Variants</h2>{_variant_rows(report, out_dir)}</section>'
        f'<section id="grid"><h2>Tests that did not pass on every variant</h2>{_grid(report)}'
        "</section>"
        f'<section id="failures"><h2>Failures</h2>{_failures(report)}</section>'
        f"{comparison_section(report.variants)}"
        f'<section id="resources"><h2>Resources</h2>{_resources(report)}</section>'
        f'<footer class="note">stackmatrix {escape(__version__)}</footer>'
        "</body></html>\n"
    )
