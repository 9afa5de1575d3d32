"""--only by ids, patterns and axis values; --shard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.matrix.select import default_jobs, select_only
from stackmatrix.spec.load import load_spec

VARIANTS = [
    Variant(f"postgres-{pg}_redis-{redis}", {"postgres": pg, "redis": redis})
    for pg in ("13", "15", "17")
    for redis in ("off", "on")
] + [Variant("postgres-18_redis-on", {"postgres": "18", "redis": "on", "experimental": True})]


def ids(only: list[str]) -> list[str]:
    return [v.id for v in select_only(VARIANTS, only)]


def test_an_axis_value_selects_every_variant_with_it() -> None:
    assert ids(["postgres=13"]) == ["postgres-13_redis-off", "postgres-13_redis-on"]


def test_values_of_one_key_add_up_and_keys_narrow() -> None:
    assert ids(["postgres=13", "postgres=17", "redis=on"]) == [
        "postgres-13_redis-on",
        "postgres-17_redis-on",
    ]


def test_ids_and_patterns_then_axis_values() -> None:
    assert ids(["postgres-1[35]*", "redis=off"]) == [
        "postgres-13_redis-off",
        "postgres-15_redis-off",
    ]
    assert ids(["experimental=true"]) == ["postgres-18_redis-on"]


@pytest.mark.parametrize(("only", "message"), [
    (["postgre=13"], "--only postgre=...: no such matrix key — did you mean 'postgres'?"),
    (["postgres=14"], "--only postgres=14: no variant has it (values: 13, 15, 17, 18)"),
    (["postgres=18", "redis=off"], "--only postgres=18 redis=off: no variant matches all of it"),
    (["mysql-8"], "--only mysql-8: no such variant"),
])  # fmt: skip
def test_a_selection_that_finds_nothing_says_why(only: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        select_only(VARIANTS, only)
    assert str(caught.value).startswith(message)


def test_jobs_default_to_the_cores_this_process_may_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(
        "axes: {v: [a]}\noverlays: [{compose: {services: {db: {image: x}}}}]\n"
        "tests: {command: x}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    assert default_jobs(load_spec(path)) == 3
    path.write_text(path.read_text(encoding="utf-8") + "run: {jobs: 5}\n", encoding="utf-8")
    assert default_jobs(load_spec(path)) == 5
