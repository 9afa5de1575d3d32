"""The SVG charts' axes: round-numbered ticks that cover the data, labelled to their step."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackmatrix.report.svg import Box, Drawing, nice_ticks, split, tick_label


@pytest.mark.parametrize(
    ("high", "most", "ticks"),
    [
        (5.1, 6, [0, 1, 2, 3, 4, 5, 6]),
        (14.6, 5, [0, 5, 10, 15]),
        (0.37, 5, [0, 0.1, 0.2, 0.3, 0.4]),
        (180.0, 5, [0, 50, 100, 150, 200]),
        (9.0, 4, [0, 2.5, 5, 7.5, 10]),
        (0.0, 5, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # nothing yet: an axis of 0 to 1
    ],
)
def test_ticks_are_round_numbers_from_zero_past_the_highest_value(
    high: float, most: int, ticks: list[float]
) -> None:
    assert nice_ticks(high, most) == pytest.approx(ticks)


@given(st.floats(min_value=1e-6, max_value=1e12), st.integers(min_value=2, max_value=8))
def test_ticks_cover_the_data_in_at_most_the_steps_asked(high: float, most: int) -> None:
    ticks = nice_ticks(high, most)
    assert ticks[0] == 0
    assert ticks[-1] >= high * (1 - 1e-9)
    assert len(ticks) - 1 <= most
    digits = 9 - math.floor(math.log10(high))
    steps = {round(b - a, digits) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced


def test_labels_have_the_decimals_of_their_step() -> None:
    assert [tick_label(t, [0, 2.5, 5]) for t in (0, 2.5, 5)] == ["0.0", "2.5", "5.0"]
    assert [tick_label(t, [0, 50, 100]) for t in (0, 50)] == ["0", "50"]
    assert tick_label(0.2, [0, 0.1, 0.2]) == "0.2"


def test_panels_split_a_box_with_a_gap_between_them() -> None:
    left, right = split(Box(0, 10, 210, 110), columns=2, gap=0.1)
    assert (left.left, left.right, right.left, right.right) == pytest.approx((0, 100, 110, 210))
    assert left.top == right.top == 10
    assert left.bottom == right.bottom == 110


def test_text_is_escaped_and_empty_groups_are_left_out() -> None:
    drawing = Drawing(100, 50, font_size=8)
    drawing.text(1, 2, "<db> & 'cache'")
    drawing.add(drawing.group("empty"))
    svg = drawing.document()
    assert "&lt;db&gt; &amp; 'cache'" in svg
    assert 'id="empty"' not in svg
    assert svg.startswith("<?xml")
    assert 'width="100pt" height="50pt"' in svg
