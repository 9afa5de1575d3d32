"""One way a matrix value becomes text, and every place that shows a value agrees with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackmatrix.ci.github_matrix import variant_name
from stackmatrix.cli.matrix import format_table
from stackmatrix.matrix.expand import expand
from stackmatrix.nox import variant_tags
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.values import Scalar, scalar_text


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (1, "1"), (1.5, "1.5"), ("on", "on"), (None, ""),
])  # fmt: skip
def test_scalar_text(value: Scalar | None, text: str) -> None:
    assert scalar_text(value) == text


def test_every_place_writes_a_boolean_the_same_way(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        "name: vals\naxes: {tls: [true], ratio: [1.5]}\ntests: {command: [echo]}\n"
        "overlays: [{when: {}, compose: {services: {app: {image: 'busybox'}}}}]\n",
        encoding="utf-8",
    )
    (variant,) = expand(load_spec(matrix))

    assert variant.id == "tls-true_ratio-1-5"
    assert variant_name(variant) == "tls true, ratio 1.5"
    assert format_table([variant]).splitlines()[1].split() == [variant.id, "true", "1.5"]
    assert {"tls-true", "ratio-1.5"} <= set(variant_tags(variant, "vals"))
