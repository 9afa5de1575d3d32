"""Resource plots: CPU and memory per service over time, drawn by matplotlib as SVG.

Drawing one takes a few tenths of a second, so a variant draws its plot as soon as its
``stats.json`` exists, while its stack is being torn down, and keeps it beside it as
``stats.svg``. The report reuses that file when it was drawn from the same samples (its first
line names a digest of them), and draws the plot itself otherwise.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import threading
from html import escape
from pathlib import Path

from stackmatrix.report.model import Stats, read_stats
from stackmatrix.results.files import write_text_atomic

PLOT_NAME = "stats.svg"
# What the end of a run needs and a run may import in the background while its stacks run.
WARM_UP_MODULES = (
    "matplotlib.figure",
    "matplotlib.backends.backend_svg",
    "matplotlib.ticker",
    "stackmatrix.report.build",
)
_STYLE = "2"  # change it when the drawing changes: plots kept from before are then redrawn
_LOCK = threading.Lock()  # matplotlib's settings are process-wide: one drawing at a time


def _digest(stats: Stats, salt: str) -> str:
    payload = json.dumps([_STYLE, salt, dataclasses.asdict(stats)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _header(stats: Stats, salt: str) -> str:
    return f"<!-- stackmatrix plot {_digest(stats, salt)} -->\n"


def draw(stats: Stats, salt: str) -> str:
    """The SVG document of one variant's plot; *salt* makes its element ids unique."""
    import matplotlib as mpl  # noqa: PLC0415 - slow import, only needed when there are samples
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    with _LOCK, mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9}):
        figure = Figure(figsize=(10, 3))
        figure.subplots_adjust(left=0.07, right=0.88, bottom=0.16, top=0.88, wspace=0.22)
        cpu, memory = figure.subplots(1, 2)
        for service in stats.services:
            cpu.plot(*stats.series(service, "cpu_percent"), label=service, linewidth=1.4)
            times, values = stats.series(service, "memory_bytes")
            memory.plot(times, [b / 2**20 for b in values], label=service, linewidth=1.4)
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
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def kept_or_drawn(stats: Stats, salt: str, kept: Path | None) -> str:
    """The plot kept in *kept* when it shows these very samples, else a fresh drawing."""
    if kept is not None:
        try:
            text = kept.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        header = _header(stats, salt)
        if text.startswith(header):
            return text[len(header) :]
    return draw(stats, salt)


def keep_plot(stats_file: Path, salt: str) -> Path | None:
    """Draw the plot of *stats_file* into ``stats.svg`` beside it; None without samples."""
    stats, _problem = read_stats(stats_file)
    if stats is None or not stats.samples:
        return None
    target = stats_file.with_name(PLOT_NAME)
    return write_text_atomic(target, _header(stats, salt) + draw(stats, salt))


def image(svg: str, label: str) -> str:
    """An ``<img>`` element showing *svg*: as an image, nothing in it can run or load."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return f'<img class="plot" alt="{escape(label)}" src="data:image/svg+xml;base64,{data}">'
