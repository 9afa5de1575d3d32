"""The shard count suggested when a matrix has more variants than a CI takes jobs."""

from __future__ import annotations

import pytest

from stackmatrix.ci.shards import suggested_shards


@pytest.mark.parametrize(
    ("count", "cap", "expected"),
    [
        (300, 256, 4),  # two would do: at least 4
        (2_000, 199, 12),  # 11 needed, rounded up to a multiple of 4
        (5_000, 256, 20),
        (100_000, 199, 199),  # never more than the cap
    ],
)
def test_enough_shards_in_multiples_of_four_within_the_cap(
    count: int, cap: int, expected: int
) -> None:
    assert suggested_shards(count, cap) == expected
