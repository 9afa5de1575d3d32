"""Charts written as SVG text: panels with round-numbered axes, lines, bars and legends.

The report's charts are a few dozen shapes each, so they are written directly, in a
millisecond or two, rather than laid out by a plotting library (whose import alone costs a
second of CPU beside the stacks of a run). Lengths are in points; y grows downwards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, Arial, sans-serif"
GRID = "fill: none; stroke: #b0b0b0; stroke-opacity: 0.3; stroke-width: 0.8"
FRAME = "fill: none; stroke: #000000; stroke-width: 0.8"
TICK = 3.5  # the length of a tick mark
# White diagonal stripes, laid over a filled shape: ``fill: url(#hatch)``.
HATCH = (
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<path d="M 0 6 L 6 0 M -1.5 1.5 L 1.5 -1.5 M 4.5 7.5 L 7.5 4.5"'
    ' style="stroke: #ffffff; stroke-width: 1.2"/></pattern></defs>'
)
# What XML 1.0 cannot hold (control characters, lone surrogates): left out of a text.
_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
CHAR_WIDTH = 0.6  # of the font size: a fair average for DejaVu Sans, to size label columns


def nice_ticks(high: float, most: int) -> list[float]:
    """Round numbers from 0 up to the first one at or above *high*, at most *most* steps
    (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    high = high if high > 0 and math.isfinite(high) else 1.0
    magnitude = 10 ** math.floor(math.log10(high / most))
    step = next(f * magnitude for f in (1, 2, 2.5, 5, 10) if f * magnitude * most >= high)
    count = math.ceil(high / step - 1e-9)
    return [round(step * i, 12) for i in range(count + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """*value* with as many decimals as the step between *ticks* needs."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = len(f"{step:.6f}".rstrip("0").partition(".")[2])
    return f"{value:.{decimals}f}"


def text_width(text: str, size: float) -> float:
    """About how wide *text* is at font *size*."""
    return len(text) * size * CHAR_WIDTH


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Box:
    """A rectangle: left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


class Drawing:
    """An SVG document being written, shape by shape."""

    def __init__(self, width: float, height: float, *, font_size: float, gid: str = "") -> None:
        self.width, self.height, self.font_size = width, height, font_size
        self._parts: list[str] = []
        self._gid = gid

    def path(
        self, points: Sequence[tuple[float, float]], style: str, *, closed: bool = False
    ) -> None:
        """A line through *points* (a filled shape when *closed*)."""
        if not points:
            return
        steps = [f"M {_n(points[0][0])} {_n(points[0][1])}"]
        steps += [f"L {_n(x)} {_n(y)}" for x, y in points[1:]]
        end = " z" if closed else ""
        self._parts.append(f'<path d="{" ".join(steps)}{end}" style="{style}"/>')

    def rect(self, box: Box, style: str) -> None:
        corners = [
            (box.left, box.top),
            (box.right, box.top),
            (box.right, box.bottom),
            (box.left, box.bottom),
        ]
        self.path(corners, style, closed=True)

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        anchor: str = "start",
        size: float | None = None,
        style: str = "",
        rotate: float = 0.0,
    ) -> None:
        """*content* with its baseline at *y*; *anchor*: start, middle or end at *x*."""
        css = (
            f"font-size: {_n(size or self.font_size)}px; font-family: {FONT}; text-anchor: {anchor}"
        )
        turn = f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"' if rotate else ""
        self._parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" style="{css}{"; " + style if style else ""}"{turn}>'
            f"{escape(_PRINTABLE.sub('', content), quote=False)}</text>"
        )

    def group(self, gid: str) -> Drawing:
        """A group of shapes with id *gid*: drawn into the returned drawing, then put in
        place with :meth:`add` (an empty group adds nothing)."""
        return Drawing(self.width, self.height, font_size=self.font_size, gid=gid)

    def add(self, group: Drawing) -> None:
        if group._parts:
            self._parts.append(f'<g id="{escape(group._gid)}">\n{group._body()}\n</g>')

    def _body(self) -> str:
        return "\n".join(self._parts)

    def document(self) -> str:
        """The whole SVG file."""
        w, h = _n(self.width), _n(self.height)
        return (
            '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}pt" height="{h}pt"'
            f' viewBox="0 0 {w} {h}">\n'
            f"{HATCH}\n"
            f'<rect x="0" y="0" width="{w}" height="{h}" style="fill: #ffffff"/>\n'
            f"{self._body()}\n</svg>\n"
        )


@dataclass(frozen=True)
class Scale:
    """Data values 0..*high* onto the lengths *start*..*end*."""

    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (self.end - self.start) * (value / self.high if self.high else 0.0)


def x_axis(
    drawing: Drawing, box: Box, ticks: Sequence[float], scale: Scale, *, label: str = ""
) -> None:
    """Vertical grid lines, tick marks and numbers under *box*, and the axis' name."""
    for value in ticks:
        x = scale(value)
        drawing.path([(x, box.bottom), (x, box.top)], GRID)
        drawing.path([(x, box.bottom), (x, box.bottom + TICK)], FRAME)
        drawing.text(
            x, box.bottom + TICK + drawing.font_size + 1, tick_label(value, ticks), anchor="middle"
        )
    if label:
        drawing.text(
            box.left + box.width / 2,
            box.bottom + TICK + 2.4 * drawing.font_size + 3,
            label,
            anchor="middle",
        )


def y_axis(
    drawing: Drawing, box: Box, ticks: Sequence[float], scale: Scale, *, label: str = ""
) -> None:
    """Horizontal grid lines, tick marks and numbers left of *box*, and the axis' name."""
    widest = 0.0
    for value in ticks:
        y = scale(value)
        shown = tick_label(value, ticks)
        widest = max(widest, text_width(shown, drawing.font_size))
        drawing.path([(box.left, y), (box.right, y)], GRID)
        drawing.path([(box.left - TICK, y), (box.left, y)], FRAME)
        drawing.text(box.left - TICK - 2, y + drawing.font_size * 0.35, shown, anchor="end")
    if label:
        x = box.left - TICK - 6 - widest
        drawing.text(x, box.top + box.height / 2, label, anchor="middle", rotate=-90)


def title(drawing: Drawing, box: Box, content: str, *, gap: float = 6) -> None:
    """A bold title over the left end of *box*."""
    drawing.text(
        box.left, box.top - gap, content, size=drawing.font_size * 1.2, style="font-weight: bold"
    )


def split(box: Box, *, columns: int, gap: float) -> list[Box]:
    """*box* cut into *columns* side by side, *gap* (a fraction of a column's width) apart."""
    width = box.width / (columns + gap * (columns - 1))
    return [
        Box(
            box.left + i * width * (1 + gap),
            box.top,
            box.left + i * width * (1 + gap) + width,
            box.bottom,
        )
        for i in range(columns)
    ]
