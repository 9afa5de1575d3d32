"""Peak resources compared across variants: one chart of peak CPU and memory per variant and
service, with the same numbers as a table (the only view when the chart cannot be drawn)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from html import escape

from stackmatrix.format import format_bytes
from stackmatrix.report.model import VariantReport
from stackmatrix.report.plots import (
    SeriesStyle,
    VariantPeaks,
    comparison_chart,
    image,
    ordered_services,
    service_styles,
    variant_peaks,
)

LOG = logging.getLogger(__name__)
SECTION_ID = "resource-peaks"
_NUM = 'class="num"'


def format_percent(value: float | None) -> str:
    """``37.5%``; ``-`` when unknown."""
    return "-" if value is None else f"{value:.1f}%"


def _swatch(style: SeriesStyle) -> str:
    hatch = (
        "background-image:repeating-linear-gradient(45deg,#fff 0 2px,transparent 2px 5px);"
        if style.dashed
        else ""
    )
    return (
        '<span aria-hidden="true" style="display:inline-block;width:10px;height:10px;'
        f'margin-right:4px;vertical-align:-1px;background-color:{style.colour};{hatch}"></span>'
    )


def exact_number(value: float) -> str:
    """*value* in full, as a machine reads it: ``250085376``, ``81.25``."""
    if isinstance(value, int) or value.is_integer():  # an int is a float to the type checker
        return str(int(value))
    return repr(value)


def _cell(text: str, value: float | None) -> str:
    exact = "" if value is None else f' data-value="{exact_number(value)}"'
    return f"<td {_NUM}{exact}>{escape(text)}</td>"


def peaks_table(rows: Sequence[VariantPeaks], styles: Mapping[str, SeriesStyle]) -> str:
    """An HTML table: a row per variant, peak CPU and memory of each service."""
    services = ordered_services(s for row in rows for s in row.peaks)
    head = "".join(f'<th colspan="2">{_swatch(styles[s])}{escape(s)}</th>' for s in services)
    units = "<th>CPU</th><th>memory</th>" * len(services)
    body = []
    for row in rows:
        if row.problem:
            cells = f'<td colspan="{2 * len(services)}" class="note">{escape(row.problem)}</td>'
        else:
            cells = "".join(
                _cell(format_percent(p.cpu_percent), p.cpu_percent)
                + _cell(format_bytes(p.memory_bytes), p.memory_bytes)
                if (p := row.peaks.get(s)) is not None
                else '<td class="num note">-</td><td class="num note">-</td>'
                for s in services
            )
        body.append(f'<tr><td style="white-space:nowrap">{escape(row.variant)}</td>{cells}</tr>')
    # Many services make a wide table: it scrolls by itself, not the page.
    return (
        '<div style="overflow-x:auto"><table class="peaks"><thead>'
        f'<tr><th rowspan="2">variant</th>{head}</tr><tr>{units}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def comparison_section(variants: Sequence[VariantReport]) -> str:
    """The section of report.html comparing the variants' peak CPU and memory: the chart,
    and its numbers folded beneath it (unfolded, with the reason, when it cannot be drawn)."""
    rows = variant_peaks(variants)
    services = ordered_services(s for row in rows for s in row.peaks)
    title = "<h2>Peak resources per variant</h2>"
    if not services:
        note = '<p class="note">No variant recorded resource samples.</p>'
        return f'<section id="{SECTION_ID}">{title}{note}</section>'
    table = peaks_table(rows, service_styles(services))
    try:
        svg = comparison_chart(variants)
    except Exception as error:  # a defect in the drawing: the numbers are still shown
        LOG.warning("could not draw the comparison of resources: %s", error)
        note = f"the chart could not be drawn: {type(error).__name__}: {error}"
        body = f'<p class="note">{escape(note)}</p>{table}'
    else:
        label = "Peak CPU and memory per variant and service"
        # In a figure, as the plots of each variant are: the page's CSS fits it to the width.
        chart = f"<figure>{image(svg, label, 'plot peaks')}</figure>" if svg else ""
        body = f"{chart}<details><summary>numbers</summary>{table}</details>"
    return f'<section id="{SECTION_ID}">{title}{body}</section>'
