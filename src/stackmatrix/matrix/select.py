"""Which variants a run takes: ``--only`` ids or patterns, a ``--shard I/N``, how many at once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fnmatch import fnmatchcase

from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.spec.models import Spec


def default_jobs(spec: Spec) -> int:
    """The spec's ``run.jobs``, else one stack per core (at least 2)."""
    return spec.run.jobs or max(2, os.cpu_count() or 2)


def select_shard(variants: Sequence[Variant], shard: str) -> list[Variant]:
    """Variants of shard ``I/N`` (1-based): a deterministic round-robin split."""
    try:
        index_text, count_text = shard.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise UsageError(f"--shard {shard!r}: expected I/N, e.g. 1/3") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {shard!r}: I must be between 1 and N")
    return [v for position, v in enumerate(variants) if position % count == index - 1]


def select_only(variants: Sequence[Variant], only: Sequence[str]) -> list[Variant]:
    """The variants named by ``--only`` (ids or shell-style patterns), in matrix order."""
    unknown = [o for o in only if not any(fnmatchcase(v.id, o) for v in variants)]
    if unknown:
        known = ", ".join(v.id for v in variants)
        raise UsageError(f"--only {', '.join(unknown)}: no such variant (known: {known})")
    return [v for v in variants if any(fnmatchcase(v.id, o) for o in only)]
