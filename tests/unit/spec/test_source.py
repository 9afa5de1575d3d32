"""YAML loading limits: the same message for a too-deep document whatever PyYAML's version."""

from __future__ import annotations

import re

import pytest
import yaml

from stackmatrix.errors import SpecError
from stackmatrix.spec.source import MAX_DEPTH, load_text

# libyaml 0.2.6+ (bundled with PyYAML 6.0.4 and newer) has a nesting limit of its own (1,000
# by default) that it checks while scanning, before stackmatrix counts; older ones have none.
DEPTHS = [MAX_DEPTH + 1, 1_500, 100_000]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize(("open_", "close"), [("[", "]"), ("{a: ", "}")])
def test_deep_flow_nesting_is_our_error_with_a_position(depth: int, open_: str, close: str) -> None:
    text = "name: deep\naxes: {v: " + open_ * depth + "x" + close * depth + "}\n"

    with pytest.raises(SpecError) as caught:
        load_text(text, "matrix.yaml")

    message = str(caught.value)
    assert re.fullmatch(rf"matrix\.yaml:2:\d+: \(yaml\): nesting deeper than {MAX_DEPTH} levels",
                        message), (yaml.__version__, message)  # fmt: skip
    assert len(message) < 100


def test_deep_block_nesting_points_at_the_first_level_too_deep() -> None:
    lines = ["name: deep", "axes:"] + ["  " * (i + 1) + "-" for i in range(MAX_DEPTH + 5)]

    with pytest.raises(SpecError) as caught:
        load_text("\n".join(lines) + "\n", "matrix.yaml")

    # The root mapping is level 1 and line N >= 3 opens level N - 1, indented 2 (N - 2).
    assert str(caught.value) == (
        f"matrix.yaml:{MAX_DEPTH + 2}:{2 * MAX_DEPTH + 1}: (yaml): nesting deeper than"
        f" {MAX_DEPTH} levels"
    )


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_DEPTH - 2  # the root mapping and `axes` take two levels
    document = load_text("axes: {v: " + "[" * depth + "x" + "]" * depth + "}\n", "m.yaml")

    value = document.data["axes"]["v"]
    for _ in range(depth):
        value = value[0]
    assert value == "x"
