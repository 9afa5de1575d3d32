"""The GitHub Actions matrix: variants (or shards of them) as JSON for ``fromJSON``.

One entry per variant::

    {"id": "postgres-15_redis-on", "name": "postgres 15, redis on",
     "experimental": false, "values": {"postgres": "15", "redis": "on"}}

or, with shards, one entry per shard::

    {"shard": "1/4", "name": "shard 1/4 (3 variants)",
     "variants": ["postgres-13_redis-off", ...], "experimental": false}

The axis values stay nested under ``values`` so that an axis named ``id``, ``name`` or
``shard`` cannot collide with the keys a workflow reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from stackmatrix.ci.shards import suggested_shards
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.matrix.select import select_shard
from stackmatrix.spec.values import Scalar, scalar_text

MAX_JOBS = 256
"""GitHub Actions refuses a matrix that generates more jobs than this per workflow run."""

_MAX_NAME = 80


def gha_matrix(variants: Sequence[Variant], *, shards: int | None = None) -> dict[str, Any]:
    """The value for ``strategy.matrix``: ``{"include": [...]}``, one entry per variant, or
    with ``shards`` at most that many entries, each naming a non-empty shard ``I/N``.

    Raises UsageError for an empty matrix, ``shards`` below 1, or more than 256 jobs.
    """
    if shards is not None and shards < 1:
        raise UsageError(f"--shards {shards}: expected a number of shards of at least 1")
    if not variants:
        raise UsageError("the matrix has no variants: GitHub Actions cannot run an empty matrix")
    if shards is None:
        if len(variants) > MAX_JOBS:
            raise UsageError(
                f"the matrix has {len(variants)} variants, more than the {MAX_JOBS} jobs GitHub "
                f"Actions allows in one matrix; group them into jobs with --shards N "
                f"(N up to {MAX_JOBS}, e.g. --shards {suggested_shards(len(variants), MAX_JOBS)})"
            )
        return {"include": [_variant_entry(variant) for variant in variants]}
    # Never more shards than variants: an empty shard would be a job with nothing to run.
    count = min(shards, len(variants))
    if count > MAX_JOBS:
        raise UsageError(
            f"--shards {shards}: GitHub Actions allows at most {MAX_JOBS} jobs in one matrix; "
            f"use --shards {MAX_JOBS} or fewer"
        )
    return {"include": [_shard_entry(variants, index, count) for index in range(1, count + 1)]}


def gha_matrix_json(variants: Sequence[Variant], *, shards: int | None = None) -> str:
    """``gha_matrix`` as compact one-line JSON, ready for ``matrix=...`` in ``$GITHUB_OUTPUT``."""
    matrix = gha_matrix(variants, shards=shards)
    try:
        return json.dumps(matrix, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise UsageError(
            "the matrix has a value that JSON cannot express (NaN or infinity); quote it"
        ) from None


def variant_name(variant: Variant) -> str:
    """A short job title for a variant: ``postgres 15, redis on``, marked when experimental."""
    shown: Mapping[str, Scalar] = {k: v for k, v in variant.values.items() if k != "experimental"}
    name = ", ".join(f"{key} {scalar_text(value)}" for key, value in shown.items()) or variant.id
    if len(name) > _MAX_NAME:
        name = variant.id
    return f"{name} (experimental)" if variant.experimental else name


def _variant_entry(variant: Variant) -> dict[str, Any]:
    return {
        "id": variant.id,
        "name": variant_name(variant),
        "experimental": variant.experimental,
        "values": dict(variant.values),
    }


def _shard_entry(variants: Sequence[Variant], index: int, count: int) -> dict[str, Any]:
    shard = f"{index}/{count}"
    members = select_shard(variants, shard)
    experimental = all(variant.experimental for variant in members)
    plural = "variant" if len(members) == 1 else "variants"
    name = f"shard {shard} ({len(members)} {plural}{', experimental' if experimental else ''})"
    return {
        "shard": shard,
        "name": name,
        "variants": [variant.id for variant in members],
        "experimental": experimental,
    }
