"""The GitHub Actions matrix JSON: shapes, sharding, and GitHub's 256-job cap."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackmatrix.ci.github_matrix import MAX_JOBS, gha_matrix, gha_matrix_json, variant_name
from stackmatrix.errors import UsageError
from stackmatrix.matrix.expand import Variant
from stackmatrix.matrix.select import select_shard
from stackmatrix.spec.values import Scalar


def variant(ident: str, values: Mapping[str, Scalar]) -> Variant:
    return Variant(id=ident, values=MappingProxyType(dict(values)))


def many(count: int) -> list[Variant]:
    return [variant(f"n-{i}", {"n": i}) for i in range(count)]


PG15 = variant("postgres-15_redis-off", {"postgres": "15", "redis": "off"})
PG17 = variant("postgres-17_redis-on", {"postgres": "17", "redis": "on"})
PG18 = variant("postgres-18_redis-on", {"postgres": "18", "redis": "on", "experimental": True})


def test_one_entry_per_variant_in_matrix_order() -> None:
    assert gha_matrix([PG15, PG17, PG18]) == {
        "include": [
            {
                "id": "postgres-15_redis-off",
                "name": "postgres 15, redis off",
                "experimental": False,
                "values": {"postgres": "15", "redis": "off"},
            },
            {
                "id": "postgres-17_redis-on",
                "name": "postgres 17, redis on",
                "experimental": False,
                "values": {"postgres": "17", "redis": "on"},
            },
            {
                "id": "postgres-18_redis-on",
                "name": "postgres 18, redis on (experimental)",
                "experimental": True,
                "values": {"postgres": "18", "redis": "on", "experimental": True},
            },
        ]
    }


def test_axes_named_like_matrix_keys_do_not_collide() -> None:
    odd = variant("id-a_shard-b", {"id": "a", "shard": "b", "name": "c"})
    (entry,) = gha_matrix([odd])["include"]
    assert entry["id"] == "id-a_shard-b"
    assert "shard" not in entry
    assert entry["values"] == {"id": "a", "shard": "b", "name": "c"}


def test_names_show_booleans_and_numbers_as_yaml_would() -> None:
    assert variant_name(variant("v", {"tls": True, "pg": 15, "ratio": 0.5})) == (
        "tls true, pg 15, ratio 0.5"
    )


def test_an_overlong_name_falls_back_to_the_id() -> None:
    long = variant("long_abcdef12", {f"axis{i}": "a-rather-long-value" for i in range(8)})
    assert variant_name(long) == "long_abcdef12"


def test_json_is_one_compact_line_that_round_trips() -> None:
    text = gha_matrix_json([PG15, PG18])
    assert "\n" not in text
    assert json.loads(text) == gha_matrix([PG15, PG18])
    assert json.dumps(json.loads(text), separators=(",", ":")) == text
    assert text.startswith('{"include":[{"id":"postgres-15_redis-off",')


def test_same_variants_give_the_same_bytes() -> None:
    first = gha_matrix_json(many(40), shards=7)
    again = gha_matrix_json(list(many(40)), shards=7)
    assert first == again


def test_shards_name_their_variants_round_robin() -> None:
    result = gha_matrix(many(7), shards=3)
    assert result == {
        "include": [
            {
                "shard": "1/3",
                "name": "shard 1/3 (3 variants)",
                "variants": ["n-0", "n-3", "n-6"],
                "experimental": False,
            },
            {
                "shard": "2/3",
                "name": "shard 2/3 (2 variants)",
                "variants": ["n-1", "n-4"],
                "experimental": False,
            },
            {
                "shard": "3/3",
                "name": "shard 3/3 (2 variants)",
                "variants": ["n-2", "n-5"],
                "experimental": False,
            },
        ]
    }


def test_more_shards_than_variants_gives_no_empty_shard() -> None:
    entries = gha_matrix([PG15, PG17], shards=4)["include"]
    assert [e["shard"] for e in entries] == ["1/2", "2/2"]
    assert [e["variants"] for e in entries] == [[PG15.id], [PG17.id]]
    assert entries[0]["name"] == "shard 1/2 (1 variant)"


def test_a_shard_is_experimental_only_when_all_its_variants_are() -> None:
    experimental = variant("exp", {"experimental": True})
    entries = gha_matrix([PG15, experimental, PG18, experimental], shards=2)["include"]
    assert [e["variants"] for e in entries] == [[PG15.id, PG18.id], ["exp", "exp"]]
    assert [e["experimental"] for e in entries] == [False, True]
    assert entries[1]["name"] == "shard 2/2 (2 variants, experimental)"


def test_256_variants_fit_in_one_matrix() -> None:
    assert len(gha_matrix(many(MAX_JOBS))["include"]) == 256


def test_257_variants_are_refused_with_a_hint_to_shard() -> None:
    with pytest.raises(UsageError) as error:
        gha_matrix(many(257))
    message = str(error.value)
    assert "257 variants" in message
    assert "256 jobs" in message
    assert "--shards 4" in message
    assert error.value.exit_code == 2


def test_sharding_makes_1000_variants_fit() -> None:
    entries = gha_matrix(many(1000), shards=4)["include"]
    assert [len(e["variants"]) for e in entries] == [250, 250, 250, 250]


def test_the_hint_suggests_enough_shards() -> None:
    with pytest.raises(UsageError, match=r"--shards 8\)"):
        gha_matrix(many(MAX_JOBS * 7 + 1))


def test_more_than_256_shards_are_refused() -> None:
    with pytest.raises(UsageError, match="at most 256 jobs"):
        gha_matrix(many(300), shards=257)


def test_many_shards_over_few_variants_are_fine() -> None:
    assert len(gha_matrix(many(10), shards=1000)["include"]) == 10


@pytest.mark.parametrize("shards", [0, -1])
def test_fewer_than_one_shard_is_refused(shards: int) -> None:
    with pytest.raises(UsageError, match=rf"--shards {shards}: expected .* at least 1"):
        gha_matrix(many(3), shards=shards)


def test_an_empty_matrix_is_refused() -> None:
    with pytest.raises(UsageError, match="no variants"):
        gha_matrix([])


def test_values_json_cannot_express_are_refused() -> None:
    with pytest.raises(UsageError, match="NaN"):
        gha_matrix_json([variant("ratio-nan", {"ratio": float("nan")})])


@given(count=st.integers(min_value=1, max_value=80), shards=st.integers(min_value=1, max_value=90))
def test_shards_cover_every_variant_exactly_once(count: int, shards: int) -> None:
    variants = many(count)
    entries = gha_matrix(variants, shards=shards)["include"]
    assert len(entries) == min(count, shards)
    assert all(entry["variants"] for entry in entries)
    sizes = [len(entry["variants"]) for entry in entries]
    assert max(sizes) - min(sizes) <= 1
    seen = Counter(ident for entry in entries for ident in entry["variants"])
    assert seen == Counter(v.id for v in variants)
    # What `stackmatrix run --shard I/N` selects is exactly what the entry announces.
    for entry in entries:
        assert [v.id for v in select_shard(variants, entry["shard"])] == entry["variants"]
