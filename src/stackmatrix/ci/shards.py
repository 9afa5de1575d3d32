"""How many shards to suggest when a matrix has more variants than a CI takes jobs."""

from __future__ import annotations


def suggested_shards(count: int, cap: int) -> int:
    """Enough shards for *count* variants to stay within *cap* jobs, rounded up to a tidy
    multiple of 4 (at least 4, at most *cap*)."""
    needed = -(-count // cap)
    return min(cap, max(4, -(-needed // 4) * 4))
