"""Which variants a run takes: ``--only`` ids or patterns, a ``--shard I/N``, how many at once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fnmatch import fnmatchcase

from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.spec.checks import did_you_mean
from stackmatrix.spec.models import Spec
from stackmatrix.spec.values import scalar_text


def default_jobs(spec: Spec) -> int:
    """The spec's ``run.jobs``, else one stack per core this process may use."""
    return spec.run.jobs or available_cores()


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container's cpuset limits
    it), at least 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


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
    """The variants named by ``--only``, in matrix order.

    A term is a variant id or a shell-style pattern of ids (``postgres-1*``), or ``KEY=VALUE``
    for an axis value (``postgres=13``). Ids and patterns add up; axis terms then narrow: any
    of the values given for one key, and every key given.
    """
    ids = [term for term in only if "=" not in term]
    axes: dict[str, set[str]] = {}
    for term in only:
        if "=" in term:
            key, _, value = term.partition("=")
            axes.setdefault(key.strip(), set()).add(value.strip())
    unknown = [o for o in ids if not any(fnmatchcase(v.id, o) for v in variants)]
    if unknown:
        known = ", ".join(v.id for v in variants)
        raise UsageError(f"--only {', '.join(unknown)}: no such variant (known: {known})")
    keys = {key for v in variants for key in v.values}
    for key, values in axes.items():
        if key not in keys:
            raise UsageError(f"--only {key}=...: no such matrix key{did_you_mean(key, keys)}")
        seen = {scalar_text(v.values[key]) for v in variants if key in v.values}
        missing = sorted(values - seen)
        if missing:
            raise UsageError(
                f"--only {key}={missing[0]}: no variant has it (values: {', '.join(sorted(seen))})"
            )
    chosen = [v for v in variants if not ids or any(fnmatchcase(v.id, o) for o in ids)]
    chosen = [
        v for v in chosen
        if all(key in v.values and scalar_text(v.values[key]) in allowed
               for key, allowed in axes.items())
    ]  # fmt: skip
    if not chosen:
        raise UsageError(f"--only {' '.join(only)}: no variant matches all of it")
    return chosen
