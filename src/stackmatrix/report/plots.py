"""Resource plots: CPU and memory per service over time, and their peaks compared across
variants, written as SVG (:mod:`stackmatrix.report.svg`).

A variant draws its plot as soon as its ``stats.json`` exists, while its stack is being torn
down, and keeps it beside it as ``stats.svg`` (for a look during the run). The report reuses
that file when it was drawn from the same samples in the same colours (its first line names a
digest of both), and draws the plot itself otherwise.

A service has the same colour in every plot: its colour is a slot of a fixed palette chosen by
a stable hash (CRC-32) of its name, so a variant drawn alone during the run and the report
agree without knowing each other. Two services of one report whose names hash to the same slot
are told apart there: in sorted order, the later one takes the next free slot (see
:func:`service_styles`).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from stackmatrix.report import svg
from stackmatrix.report.model import Stats, VariantReport, read_stats
from stackmatrix.results.files import write_text_atomic
from stackmatrix.results.stats import HOST_SERVICE

PLOT_NAME = "stats.svg"
# The tab10 palette without its grey, which is the tests' host processes' own colour.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)
HOST_COLOUR = "#7f7f7f"
MAX_LABEL_CHARS = 48  # longer variant ids are shortened in the middle on the comparison chart
_STYLE = "4"  # change it when the drawing changes: plots kept from before are then redrawn
_MIB = 2**20
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class SeriesStyle:
    """How one service is drawn: its colour, and dashes once every colour is taken."""

    colour: str
    dashed: bool = False


HOST_STYLE = SeriesStyle(HOST_COLOUR)


def preferred_slot(service: str) -> int:
    """The palette slot a service's name hashes to (the same in every process and run)."""
    return zlib.crc32(service.encode("utf-8")) % len(PALETTE)


def ordered_services(services: Iterable[str]) -> list[str]:
    """Service names sorted, the tests' host processes last: the order of every legend."""
    unique = set(services)
    return sorted(unique - {HOST_SERVICE}) + ([HOST_SERVICE] if HOST_SERVICE in unique else [])


def service_styles(services: Iterable[str]) -> dict[str, SeriesStyle]:
    """The style of each of *services* (all those of a report, or of one variant drawn alone).

    Each service takes its preferred slot; in sorted order, one whose slot is taken takes the
    next free one, solid colours first, then dashed. Only such a collision makes the style
    depend on the other names; the report then redraws a kept plot whose colours differ.
    """
    names = ordered_services(services)
    styles: dict[str, SeriesStyle] = {}
    pool = [SeriesStyle(c, dashed) for dashed in (False, True) for c in PALETTE]
    taken: set[int] = set()
    for service in names:
        if service == HOST_SERVICE:
            styles[service] = HOST_STYLE
            continue
        first = preferred_slot(service)
        order = [(first + k) % len(PALETTE) for k in range(len(PALETTE))]
        probes = order + [len(PALETTE) + slot for slot in order]
        free = next((i for i in probes if i not in taken), first)  # past 18: colours repeat
        taken.add(free)
        styles[service] = pool[free]
    return styles


def report_styles(variants: Iterable[VariantReport]) -> dict[str, SeriesStyle]:
    """The styles of a report: of the sorted union of every variant's services."""
    return service_styles(s for v in variants if v.stats is not None for s in v.stats.services)


def _styles_for(stats: Stats, styles: Mapping[str, SeriesStyle] | None) -> dict[str, SeriesStyle]:
    """*styles* (the report's) for the services of *stats*; services it lacks get their own."""
    own = service_styles(stats.services)
    return {s: (styles or {}).get(s, own[s]) for s in ordered_services(stats.services)}


def _digest(stats: Stats, salt: str, styles: Mapping[str, SeriesStyle]) -> str:
    drawn = [(s, st.colour, st.dashed) for s, st in styles.items()]
    samples = dataclasses.asdict(stats)
    payload = json.dumps([_STYLE, salt, drawn, samples], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _header(stats: Stats, salt: str, styles: Mapping[str, SeriesStyle]) -> str:
    return f"<!-- stackmatrix plot {_digest(stats, salt, styles)} -->\n"


def series_id(metric: str, service: str) -> str:
    """The element id of a service's line in a plot's SVG: ``series-cpu-db``."""
    return f"series-{metric}-{_NOT_IN_ID.sub('_', service)}"


def draw(stats: Stats, salt: str, styles: Mapping[str, SeriesStyle] | None = None) -> str:
    """The SVG document of one variant's plot: CPU and memory over time, a line per service;
    *salt* names the document (the variant); *styles* are the report's (by default: those of
    this variant's services alone)."""
    drawn = _styles_for(stats, styles)
    # Wider than 10 inches only when a service's name would not fit beside the panels.
    legend = 26 + max((svg.text_width(s, 9) for s in drawn), default=0) + 6
    height = max(216, 32 + LEGEND_ROW * len(drawn) + 6)  # taller only for a long legend
    drawing = svg.Drawing(max(720, 641.6 + legend), height, font_size=9)
    panels = svg.split(svg.Box(50.4, 25.92, 633.6, 181.44), columns=2, gap=0.22)
    for panel, key, name, unit in (
        (panels[0], "cpu_percent", "CPU", "%"),
        (panels[1], "memory_bytes", "Memory", "MiB"),
    ):
        lines = {
            service: list(zip(*_scaled(stats.series(service, key), key), strict=True))
            for service in drawn
        }
        last = max((t for points in lines.values() for t, _v in points), default=0.0)
        high = max((v for points in lines.values() for _t, v in points), default=0.0)
        # Some room above the highest value: a line at a round number stays off the frame.
        x_ticks, y_ticks = svg.nice_ticks(last, 6), svg.nice_ticks(high * 1.05, 5)
        x = svg.Scale(x_ticks[-1], panel.left, panel.right)
        y = svg.Scale(y_ticks[-1], panel.bottom, panel.top)
        svg.x_axis(drawing, panel, x_ticks, x, label="seconds")
        svg.y_axis(drawing, panel, y_ticks, y, label=unit)
        drawing.rect(panel, svg.FRAME)  # under the lines: a line along an edge still shows
        metric = "cpu" if key == "cpu_percent" else "memory"
        for service, points in lines.items():
            line = drawing.group(series_id(metric, service))
            shown = [(x(max(0.0, t)), y(max(0.0, v))) for t, v in points]
            if len(shown) == 1:  # one sample: a dash, not a point no one sees
                shown = [(shown[0][0] - 1.5, shown[0][1]), (shown[0][0] + 1.5, shown[0][1])]
            line.path(shown, _line_style(drawn[service]))
            drawing.add(line)
        svg.title(drawing, panel, name)
    _line_legend(drawing, panels[1].right + 8, panels[1].top + 6, drawn)
    return drawing.document()


def _scaled(series: tuple[list[float], list[float]], key: str) -> tuple[list[float], list[float]]:
    times, values = series
    return times, values if key == "cpu_percent" else [b / _MIB for b in values]


def _line_style(style: SeriesStyle) -> str:
    dashes = "; stroke-dasharray: 5.2 2.2" if style.dashed else ""
    return f"fill: none; stroke: {style.colour}; stroke-width: 1.4; stroke-linecap: square{dashes}"


LEGEND_ROW = 13  # points between the entries of a plot's legend


def _line_legend(
    drawing: svg.Drawing, left: float, top: float, styles: Mapping[str, SeriesStyle]
) -> None:
    """A line and a name per service, one under the other."""
    for i, (service, style) in enumerate(styles.items()):
        y = top + i * LEGEND_ROW
        drawing.path([(left, y), (left + 20, y)], _line_style(style))
        drawing.text(left + 26, y + 3.2, service)


def kept_or_drawn(
    stats: Stats, salt: str, kept: Path | None, styles: Mapping[str, SeriesStyle] | None = None
) -> str:
    """The plot kept in *kept* when it shows these very samples in these colours, else a
    fresh drawing (*styles* as for :func:`draw`)."""
    if kept is not None:
        try:
            text = kept.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        header = _header(stats, salt, _styles_for(stats, styles))
        if text.startswith(header):
            return text[len(header) :]
    return draw(stats, salt, styles)


def keep_plot(stats_file: Path, salt: str) -> Path | None:
    """Draw the plot of *stats_file* into ``stats.svg`` beside it; None without samples."""
    stats, _problem = read_stats(stats_file)
    if stats is None or not stats.samples:
        return None
    target = stats_file.with_name(PLOT_NAME)
    header = _header(stats, salt, _styles_for(stats, None))
    return write_text_atomic(target, header + draw(stats, salt))


def image(svg: str, label: str, classes: str = "plot") -> str:
    """An ``<img>`` element showing *svg*: as an image, nothing in it can run or load."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return (
        f'<img class="{escape(classes)}" alt="{escape(label)}"'
        f' src="data:image/svg+xml;base64,{data}">'
    )


@dataclass(frozen=True)
class ServicePeak:
    """The highest CPU (percent of one core) and memory (bytes) one service reached."""

    cpu_percent: float | None
    memory_bytes: float | None

    def of(self, key: str) -> float | None:
        """The peak of *key*: ``cpu_percent`` or ``memory_bytes``."""
        return self.cpu_percent if key == "cpu_percent" else self.memory_bytes


@dataclass(frozen=True)
class VariantPeaks:
    """The peaks of every service of one variant; *problem* says why there are none."""

    variant: str
    peaks: Mapping[str, ServicePeak]
    problem: str = ""


def _peak(stats: Stats, service: str, key: str) -> float | None:
    recorded = stats.peaks.get(service, {}).get(key)
    if recorded is not None:
        return recorded
    _times, values = stats.series(service, key)
    return max(values) if values else None


def variant_peaks(variants: Iterable[VariantReport]) -> list[VariantPeaks]:
    """The peaks of each variant, in the report's order: from ``stats.json``'s ``peaks``,
    else the highest sample."""
    found = []
    for v in variants:
        if v.stats is None or not v.stats.services:
            found.append(VariantPeaks(v.id, {}, v.stats_problem or "no resource samples"))
            continue
        peaks = {
            s: ServicePeak(_peak(v.stats, s, "cpu_percent"), _peak(v.stats, s, "memory_bytes"))
            for s in ordered_services(v.stats.services)
        }
        found.append(VariantPeaks(v.id, peaks))
    return found


def short_label(variant: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A variant id of at most *limit* characters, shortened in the middle (both ends tell
    variants apart: the first axes and the last)."""
    if len(variant) <= limit:
        return variant
    head = (limit - 1) // 2
    return f"{variant[:head]}…{variant[len(variant) - (limit - 1 - head) :]}"


def comparison_chart(variants: Sequence[VariantReport]) -> str | None:
    """The SVG document of one chart of peak CPU and peak memory per variant and service
    (a band of bars per variant, a bar per service in its colour); None when no variant has
    resource samples."""
    rows = variant_peaks(variants)
    services = ordered_services(s for row in rows for s in row.peaks)
    if not services:
        return None
    return _draw_comparison(rows, services, service_styles(services))


def _draw_comparison(
    rows: Sequence[VariantPeaks], services: Sequence[str], styles: Mapping[str, SeriesStyle]
) -> str:
    labels = [short_label(row.variant) for row in rows]
    size = 8.0
    bar = 0.8 / len(services)  # of a variant's band: a bar per service, then a gap
    band = 72 * max(0.24, 0.075 * len(services) + 0.07)
    label_width = 72 * (0.3 + 0.058 * max(len(label) for label in labels))
    width = label_width + 72 * 8.5
    column = _legend_column(services, size)
    columns = max(1, min(LEGEND_COLUMNS, int((width - label_width - 72 * 0.2) // column)))
    legend_rows = -(-len(services) // columns)
    top, bottom = 72 * (0.4 + 0.2 * legend_rows), 72 * 0.4
    height = top + bottom + band * len(rows)
    drawing = svg.Drawing(width, height, font_size=size)
    area = svg.Box(label_width, top, width - 72 * 0.2, height - bottom)
    cpu, memory = svg.split(area, columns=2, gap=0.06)
    for panel, key, unit, name in (
        (cpu, "cpu_percent", 1.0, "Peak CPU (% of one core)"),
        (memory, "memory_bytes", _MIB, "Peak memory (MiB)"),
    ):
        # Every other band shaded: the eye follows a row across both panels.
        for i in range(1, len(rows), 2):
            drawing.rect(
                svg.Box(panel.left, panel.top + i * band, panel.right, panel.top + (i + 1) * band),
                "fill: #eef1f4",
            )
        values = {
            service: [
                (i, value / unit)
                for i, row in enumerate(rows)
                if service in row.peaks and (value := row.peaks[service].of(key)) is not None
            ]
            for service in services
        }
        highest = max([0.0, *(v for drawn in values.values() for _i, v in drawn)])
        limit = highest * 1.04 or 1.0
        x = svg.Scale(limit, panel.left, panel.right)
        ticks = [t for t in svg.nice_ticks(limit, 5) if t <= limit]
        svg.x_axis(drawing, panel, ticks, x)
        hatched = drawing.group(f"peak-{key}-hatched")
        for j, service in enumerate(services):
            bars = drawing.group(f"peak-{key}-{j}")
            for i, value in values[service]:
                upper = panel.top + band * (i + 0.1 + bar * j + bar * 0.04)
                box = svg.Box(x(0), upper, x(max(0.0, value)), upper + band * bar * 0.92)
                bars.rect(box, f"fill: {styles[service].colour}")
                if styles[service].dashed:  # the second round of colours: hatched bars
                    hatched.rect(box, "fill: url(#hatch)")
            drawing.add(bars)
        drawing.add(hatched)
        drawing.rect(panel, svg.FRAME)
        svg.title(drawing, panel, name, gap=4)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        middle = cpu.top + band * (i + 0.5) + size * 0.35
        drawing.text(cpu.left - 0.01 * cpu.width, middle, label, anchor="end")
        if row.problem:
            drawing.text(
                cpu.left, middle, f" {row.problem}", style="fill: #6e7781; font-style: italic"
            )
    _bar_legend(drawing, label_width, 0.05 * 72, services, styles, column=column, columns=columns)
    return drawing.document()


LEGEND_COLUMNS = 6  # at most, as many as fit the chart's width


def _legend_column(services: Sequence[str], size: float) -> float:
    """The width of a legend column: a swatch, a gap and the longest name."""
    return 24 + max(svg.text_width(s, size) for s in services)


def _bar_legend(
    drawing: svg.Drawing,
    left: float,
    top: float,
    services: Sequence[str],
    styles: Mapping[str, SeriesStyle],
    *,
    column: float,
    columns: int,
) -> None:
    """A swatch and a name per service, *columns* of width *column* a row."""
    for k, service in enumerate(services):
        x = left + (k % columns) * column
        y = top + (k // columns) * 14.4 + 4
        swatch = svg.Box(x, y, x + 14, y + 7)
        drawing.rect(swatch, f"fill: {styles[service].colour}")
        if styles[service].dashed:
            drawing.rect(swatch, "fill: url(#hatch)")
        drawing.text(x + 18, y + 6.5, service)
