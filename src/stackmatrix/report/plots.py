"""Resource plots: CPU and memory per service over time, and their peaks compared across
variants, drawn by matplotlib as SVG.

Drawing one takes a few tenths of a second, so a variant draws its plot as soon as its
``stats.json`` exists, while its stack is being torn down, and keeps it beside it as
``stats.svg``. The report reuses that file when it was drawn from the same samples in the same
colours (its first line names a digest of both), and draws the plot itself otherwise.

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
import io
import json
import re
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from stackmatrix.report.model import Stats, VariantReport, read_stats
from stackmatrix.results.files import write_text_atomic
from stackmatrix.results.stats import HOST_SERVICE

PLOT_NAME = "stats.svg"
# matplotlib's tab10 without its grey, which is the tests' host processes' own colour.
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
_STYLE = "3"  # change it when the drawing changes: plots kept from before are then redrawn
_LOCK = threading.Lock()  # matplotlib's settings are process-wide: one drawing at a time
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


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def series_id(metric: str, service: str) -> str:
    """The element id of a service's line in a plot's SVG: ``series-cpu-db``."""
    return f"series-{metric}-{_NOT_IN_ID.sub('_', service)}"


def draw(stats: Stats, salt: str, styles: Mapping[str, SeriesStyle] | None = None) -> str:
    """The SVG document of one variant's plot; *salt* makes its element ids unique; *styles*
    are the report's (by default: those of this variant's services alone)."""
    import matplotlib as mpl  # noqa: PLC0415 - slow import, only needed when there are samples
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    drawn = _styles_for(stats, styles)
    with (
        _LOCK,
        mpl.rc_context(
            {"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9, "lines.linewidth": 1.4}
        ),
    ):
        figure = Figure(figsize=(10, 3))
        figure.subplots_adjust(left=0.07, right=0.88, bottom=0.16, top=0.88, wspace=0.22)
        cpu, memory = figure.subplots(1, 2)
        for service, style in drawn.items():
            line = {"color": style.colour, "linestyle": "--" if style.dashed else "-"}
            (cpu_line,) = cpu.plot(*stats.series(service, "cpu_percent"), label=service, **line)
            times, values = stats.series(service, "memory_bytes")
            (memory_line,) = memory.plot(times, [b / _MIB for b in values], label=service, **line)
            cpu_line.set_gid(series_id("cpu", service))
            memory_line.set_gid(series_id("memory", service))
        for axes, title, unit in ((cpu, "CPU", "%"), (memory, "Memory", "MiB")):
            axes.set_title(title, loc="left", fontweight="bold", y=1.0, pad=6)
            axes.set_xlabel("seconds")
            axes.set_ylabel(unit)
            axes.set_ylim(bottom=0)
            axes.grid(visible=True, alpha=0.3)
            # Fewer ticks read as well and draw much faster: every tick is a handful of artists.
            axes.xaxis.set_major_locator(MaxNLocator(6))
            axes.yaxis.set_major_locator(MaxNLocator(5))
        memory.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _svg(figure)


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
    resource samples. matplotlib's errors are the caller's to show."""
    rows = variant_peaks(variants)
    services = ordered_services(s for row in rows for s in row.peaks)
    if not services:
        return None
    return _draw_comparison(rows, services, service_styles(services))


def _draw_comparison(
    rows: Sequence[VariantPeaks], services: Sequence[str], styles: Mapping[str, SeriesStyle]
) -> str:
    import matplotlib as mpl  # noqa: PLC0415 - slow import, only needed when there are samples
    from matplotlib.collections import PolyCollection  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    labels = [short_label(row.variant) for row in rows]
    bar = 0.8 / len(services)  # a variant's band is 1 high: a bar per service, then a gap
    band_inches = max(0.24, 0.075 * len(services) + 0.07)
    label_inches = 0.3 + 0.058 * max(len(label) for label in labels)
    top_inches, bottom_inches = 0.4 + 0.2 * -(-len(services) // 6), 0.4
    width, height = label_inches + 8.5, top_inches + bottom_inches + band_inches * len(rows)
    with _LOCK, mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "peaks", "font.size": 8}):
        figure = Figure(figsize=(width, height))
        figure.subplots_adjust(
            left=label_inches / width,
            right=1 - 0.2 / width,
            top=1 - top_inches / height,
            bottom=bottom_inches / height,
            wspace=0.06,
        )
        cpu, memory = figure.subplots(1, 2)
        stripes = [_box(1.0, i - 0.5, 1.0) for i in range(1, len(rows), 2)]  # x: of the axes
        for axes, key, unit in ((cpu, "cpu_percent", 1.0), (memory, "memory_bytes", _MIB)):
            # Every other band shaded: the eye follows a row across both panels.
            axes.add_collection(
                PolyCollection(
                    stripes,
                    facecolors="#eef1f4",
                    linewidths=0,
                    zorder=0,
                    transform=axes.get_yaxis_transform(),
                ),
                autolim=False,
            )
            highest = 0.0
            # One collection per service: a few hundred bars draw as fast as a few.
            for j, service in enumerate(services):
                drawn = [
                    (i, value / unit)
                    for i, row in enumerate(rows)
                    if service in row.peaks and (value := row.peaks[service].of(key)) is not None
                ]
                boxes = [_box(v, i - 0.4 + bar * j + bar * 0.04, bar * 0.92) for i, v in drawn]
                bars = PolyCollection(boxes, linewidths=0, zorder=2, **_bar_style(styles[service]))
                bars.set_gid(f"peak-{key}-{j}")
                axes.add_collection(bars)
                highest = max([highest, *(v for _i, v in drawn)])
            axes.set_xlim(0, highest * 1.04 or 1.0)
            axes.set_ylim(len(rows) - 0.5, -0.5)  # the first variant on top, as in the report
            axes.set_yticks([])
            axes.grid(visible=True, axis="x", alpha=0.3)
            axes.set_axisbelow(True)
            axes.xaxis.set_major_locator(MaxNLocator(5))
        cpu.set_title("Peak CPU (% of one core)", loc="left", fontweight="bold", pad=4)
        memory.set_title("Peak memory (MiB)", loc="left", fontweight="bold", pad=4)
        # Labels as plain texts: y ticks cost a handful of artists each.
        left_edge = cpu.get_yaxis_transform()
        for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
            cpu.text(-0.01, i, label, transform=left_edge, ha="right", va="center")
            if row.problem:
                cpu.text(0, i, f" {row.problem}", va="center", color="#6e7781", style="italic")
        handles = [Patch(label=s, **_bar_style(styles[s])) for s in services]
        figure.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(label_inches / width, 1 - 0.05 / height),
            ncols=min(len(services), 6),
            frameon=False,
        )
        return _svg(figure)


def _box(x: float, y: float, thickness: float) -> list[tuple[float, float]]:
    """The corners of a horizontal bar from 0 to *x*, *thickness* high from *y* down."""
    return [(0.0, y), (x, y), (x, y + thickness), (0.0, y + thickness)]


def _bar_style(style: SeriesStyle) -> dict[str, Any]:
    if style.dashed:  # the second round of colours: hatched bars
        return {"facecolor": style.colour, "hatch": "////", "edgecolor": "white"}
    return {"facecolor": style.colour}
