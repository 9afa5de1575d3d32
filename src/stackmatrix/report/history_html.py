"""history.html: one self-contained page (inline CSS, no script, nothing fetched) of many
nights: test x variant x night, failing streaks, flaky rates and version changes."""

from __future__ import annotations

from html import escape

from stackmatrix import __version__
from stackmatrix.redact import redact_text
from stackmatrix.report.baseline import Mark
from stackmatrix.report.history import (
    History,
    Night,
    TestHistory,
    VersionChange,
    night_headings,
    since_previous,
)

HISTORY_NAME = "history.html"

_CSS = """
:root { --pass:#1a7f37; --pass-bg:#dafbe1; --fail:#cf222e; --fail-bg:#ffebe9;
  --skip:#9a6700; --skip-bg:#fff8c5; --none:#6e7781; --none-bg:#f6f8fa; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328;
  margin: 0 auto; padding: 24px; max-width: 1400px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta, .note { color: var(--none); margin: 4px 0; }
table { border-collapse: collapse; } th, td { border: 1px solid var(--line); padding: 4px 8px;
  text-align: left; vertical-align: top; } th { background: var(--none-bg); }
th.night { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
  font-weight: 500; font-size: 12px; }
td.cell { text-align: center; font-weight: 700; min-width: 26px; padding: 4px 2px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: var(--pass); background: var(--pass-bg); }
.fail { color: var(--fail); background: var(--fail-bg); }
.flaky, .skip { color: var(--skip); background: var(--skip-bg); }
.changed { color: #0969da; }
.absent { color: var(--none); background: #fff; font-weight: 400; }
.test { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;
  word-break: break-all; } .message { color: var(--fail); font-size: 12px; }
.since li { margin: 2px 0; }
"""

_CELLS = {
    Mark.PASS: ("pass", "✓", "passed"),
    Mark.FAIL: ("fail", "✗", "failed"),
    Mark.FLAKY: ("flaky", "↻", "passed on a retry"),
    Mark.SKIP: ("skip", "○", "skipped"),
}


def _text(value: str) -> str:
    """Untrusted text, masked and escaped."""
    return escape(redact_text(value))


def _cell(mark: Mark | None, night: Night) -> str:
    if mark is None:
        return f'<td class="cell absent" title="{_text(night.label)}: not run">·</td>'
    css, symbol, word = _CELLS[mark]
    return f'<td class="cell {css}" title="{_text(night.label)}: {word}">{symbol}</td>'


def _row(row: TestHistory, nights: tuple[Night, ...]) -> str:
    start = row.streak_start
    since = _text(nights[start].label) if start is not None else "not failing now"
    message = f'<div class="message">{_text(row.message)}</div>' if row.message else ""
    cells = "".join(_cell(m, n) for m, n in zip(row.marks, nights, strict=True))
    return (
        f'<tr><td class="test">{_text(row.test)}{message}</td><td>{_text(row.variant)}</td>'
        f"{cells}"
        f'<td class="num rate">{row.rate:.0%}</td>'
        f'<td class="counts">{escape(row.counts_text)}</td>'
        f'<td class="since">{since}</td></tr>'
    )


def _versions_row(history: History) -> str:
    """A row over the nights: ● where something ran differently from the night before."""
    by_night: dict[int, list[str]] = {}
    for change in history.changes:
        by_night.setdefault(change.night, []).append(change.text)
    if not by_night:
        return ""
    cells = "".join(
        f'<td class="cell changed" title="{_text("; ".join(by_night[i]))}">●</td>'
        if i in by_night
        else '<td class="cell"></td>'
        for i in range(len(history.nights))
    )
    return (
        '<tr class="versions-changed"><td colspan="2">versions changed (see below)</td>'
        f'{cells}<td colspan="3"></td></tr>'
    )


def _grid(history: History) -> str:
    nights = history.nights
    if not history.rows:
        return (
            f'<p class="note">No test failed on any variant in these {len(nights)} nights'
            f" ({history.tests_seen} test x variant pairs seen).</p>"
        )
    heads = "".join(
        f'<th class="night" title="{_text(night.full_name)}">{_text(heading)}</th>'
        for night, heading in zip(nights, night_headings(nights), strict=True)
    )
    rows = _versions_row(history) + "".join(_row(r, nights) for r in history.rows)
    cut = (
        f'<p class="note">{history.rows_cut} more test x variant rows that failed at least once'
        " are not shown (the page keeps to the rows failing now and failing most).</p>"
        if history.rows_cut
        else ""
    )
    return (
        '<table class="history"><thead><tr><th>test</th><th>variant</th>'
        f"{heads}<th>flaky rate</th><th>counts</th><th>failing since</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{cut}"
    )


def _changes(history: History) -> str:
    by_night: dict[int, list[VersionChange]] = {}
    for change in history.changes:
        by_night.setdefault(change.night, []).append(change)
    first = history.first_seen
    rows = []
    for index, night in enumerate(history.nights):
        found = by_night.get(index, [])
        if index == 0 and first:
            found = [c for c in first if c.night == 0]
            words = "first night: " + "; ".join(_text(c.text) for c in found)
        elif found:
            words = "; ".join(_text(c.text) for c in found)
        else:
            words = '<span class="note">no change</span>'
        rows.append(f"<tr><td>{_text(night.label)}</td><td>{words}</td></tr>")
    cut = (
        f'<p class="note">{history.changes_cut} more version changes are not listed.</p>'
        if history.changes_cut
        else ""
    )
    if not first and not history.changes:
        return '<p class="note">No run in these nights recorded what its services ran.</p>'
    return (
        '<table class="versions"><thead><tr><th>night</th><th>what ran differently from the'
        f" night before (service version, image id)</th></tr></thead><tbody>{''.join(rows)}"
        f"</tbody></table>{cut}"
    )


def render_history_html(history: History, name: str = "") -> str:
    """The whole page."""
    nights = history.nights
    title = f"stackmatrix · history{' · ' + name if name else ''}"
    span = f"{nights[0].date} to {nights[-1].date}" if nights else "no nights"
    notes = "".join(f'<p class="note">note: {_text(n)}</p>' for n in history.notes)
    if history.nights_cut:
        notes += (
            f'<p class="note">{history.nights_cut} older nights are left out of this window'
            f" of {len(nights)}.</p>"
        )
    lines = "".join(f"<li>{_text(line)}</li>" for line in since_previous(history))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{_text(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_text(title)}</h1>"
        f'<p class="meta">{len(nights)} nights, {span}; {len(history.rows) + history.rows_cut}'
        f" of {history.tests_seen} test x variant pairs failed at least once</p>{notes}</header>"
        f'<h2>Since the night before</h2><ul class="since">{lines}</ul>'
        "<h2>Test x variant x night</h2>"
        '<p class="note">Flaky rate: of the nights a test ran on a variant, the share on which'
        " it failed (failure or error). Flips: how often it changed between failing and not"
        " failing from one night it ran to the next. Failing since: the first night of its"
        " current failing streak. ✓ passed, ✗ failed, ↻ passed on a retry, ○ skipped,"
        " · not run.</p>"
        f"{_grid(history)}"
        f"<h2>Version changes</h2>{_changes(history)}"
        f'<footer><p class="meta">stackmatrix {escape(__version__)}</p></footer>'
        "</body></html>\n"
    )
