"""Matrix expansion: GitHub Actions' documented examples, ids, and properties."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stackmatrix.matrix.expand import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    Variant,
    combine,
    expand,
    variant_ids,
)
from stackmatrix.spec.checks import value_key
from stackmatrix.spec.load import load_spec
from stackmatrix.spec.values import Scalar

Combination = dict[str, Scalar]


def github(matrix_yaml: str) -> list[Combination]:
    """Expand a GitHub ``strategy.matrix`` block, given as YAML, with our rules."""
    matrix = yaml.safe_load(textwrap.dedent(matrix_yaml))
    include = matrix.pop("include", [])
    exclude = matrix.pop("exclude", [])
    return combine(matrix, exclude, include)


def test_order_follows_the_axes_first_axis_slowest() -> None:
    # As GitHub's documentation lists the jobs of this matrix.
    assert github("""
        version: [10, 12, 14]
        os: [ubuntu-latest, windows-latest]
    """) == [
        {"version": 10, "os": "ubuntu-latest"},
        {"version": 10, "os": "windows-latest"},
        {"version": 12, "os": "ubuntu-latest"},
        {"version": 12, "os": "windows-latest"},
        {"version": 14, "os": "ubuntu-latest"},
        {"version": 14, "os": "windows-latest"},
    ]


def test_include_expands_and_adds_like_the_fruit_example() -> None:
    combos = github("""
        fruit: [apple, pear]
        animal: [cat, dog]
        include:
          - color: green
          - color: pink
            animal: cat
          - fruit: apple
            shape: circle
          - fruit: banana
          - fruit: banana
            animal: cat
    """)
    assert combos == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    # Key order inside a combination is the order in which keys were first added.
    assert list(combos[0]) == ["fruit", "animal", "color", "shape"]


def test_include_adds_a_variable_to_one_combination() -> None:
    combos = github("""
        os: [windows-latest, ubuntu-latest]
        node: [12, 14, 16]
        include:
          - os: windows-latest
            node: 16
            npm: 6
    """)
    assert len(combos) == 6
    assert [c for c in combos if "npm" in c] == [{"os": "windows-latest", "node": 16, "npm": 6}]


def test_include_adds_a_new_combination() -> None:
    combos = github("""
        os: [macos-latest, windows-latest, ubuntu-latest]
        version: [12, 14, 16]
        include:
          - os: windows-latest
            version: 17
    """)
    assert len(combos) == 10
    assert combos[-1] == {"os": "windows-latest", "version": 17}


def test_include_only_matrix_runs_each_entry() -> None:
    assert github("""
        include:
          - site: "production"
            datacenter: "site-a"
          - site: "staging"
            datacenter: "site-b"
    """) == [
        {"site": "production", "datacenter": "site-a"},
        {"site": "staging", "datacenter": "site-b"},
    ]


def test_exclude_matches_partially() -> None:
    combos = github("""
        os: [macos-latest, windows-latest]
        version: [12, 14, 16]
        environment: [staging, production]
        exclude:
          - os: macos-latest
            version: 12
            environment: production
          - os: windows-latest
            version: 16
    """)
    assert len(combos) == 9
    assert {"os": "macos-latest", "version": 12, "environment": "production"} not in combos
    assert not [c for c in combos if c["os"] == "windows-latest" and c["version"] == 16]


def test_include_runs_after_exclude_and_can_add_back() -> None:
    combos = github("""
        os: [linux, windows]
        node: [18, 20]
        exclude:
          - {os: windows, node: 18}
        include:
          - {os: windows, node: 18, experimental: true}
    """)
    assert combos[-1] == {"os": "windows", "node": 18, "experimental": True}
    assert len(combos) == 4


def test_perl_example_tests_five_versions_and_two_on_macos() -> None:
    combos = github("""
        os: [ubuntu-latest]
        perl: ['5.16', '5.20', '5.26', '5.30', latest]
        include:
          - os: macos-latest
            perl: '5.26'
          - os: macos-latest
            perl: latest
    """)
    assert len(combos) == 7
    assert [c["perl"] for c in combos if c["os"] == "macos-latest"] == ["5.26", "latest"]


def test_experimental_axis_and_include_from_the_fail_fast_example() -> None:
    combos = github("""
        version: [6, 7, 8]
        experimental: [false]
        include:
          - version: 9
            experimental: true
    """)
    assert combos == [
        {"version": 6, "experimental": False},
        {"version": 7, "experimental": False},
        {"version": 8, "experimental": False},
        {"version": 9, "experimental": True},
    ]


def test_later_includes_never_extend_added_combinations() -> None:
    combos = github("""
        a: [1]
        include:
          - {a: 2}
          - {a: 2, b: x}
    """)
    assert combos == [{"a": 1}, {"a": 2}, {"a": 2, "b": "x"}]


def test_values_compare_like_json_not_like_python() -> None:
    # 1 == true in Python; in a matrix they are different values. 1 and 1.0 are the same number.
    assert github("a: [1, true]\nexclude: [{a: true}]") == [{"a": 1}]
    assert github("a: [1]\ninclude: [{a: 1.0, b: x}]") == [{"a": 1, "b": "x"}]
    assert github("a: ['1']\ninclude: [{a: 1}]") == [{"a": "1"}, {"a": 1}]


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(
        textwrap.dedent(body)
        + "overlays: [{compose: {services: {app: {image: x}}}}]\ntests: {command: 'true'}\n",
        encoding="utf-8",
    )
    return path


def test_expand_gives_readable_ids_and_experimental_flags(tmp_path: Path) -> None:
    spec = load_spec(
        _spec(
            tmp_path,
            """
            name: shop
            axes:
              postgres: ["13", "15", "17"]
              redis: ["off", "on"]
            exclude:
              - {postgres: "13", redis: "on"}
            include:
              - {postgres: "17", redis: "on", experimental: true}
              - {postgres: "18", redis: "on", experimental: true}
            """,
        )
    )
    variants = expand(spec)
    assert [(v.id, v.experimental) for v in variants] == [
        ("postgres-13_redis-off", False),
        ("postgres-15_redis-off", False),
        ("postgres-15_redis-on", False),
        ("postgres-17_redis-off", False),
        ("postgres-17_redis-on", True),
        ("postgres-18_redis-on", True),
    ]
    assert dict(variants[4].values) == {"postgres": "17", "redis": "on", "experimental": True}
    with pytest.raises(TypeError):
        variants[0].values["postgres"] = "16"  # type: ignore[index]


def test_slugs_that_collide_get_a_stable_hash() -> None:
    combos: list[Mapping[str, Scalar]] = [{"python": "3.1"}, {"python": "3-1"}, {"python": 3.1}]
    ids = variant_ids(combos, ["python"])
    assert len(set(ids)) == 3
    assert all(i.startswith("python-3-1-") for i in ids)
    assert ids == variant_ids(combos, ["python"])
    # The hash is of the variant's own values: a colliding id does not depend on its position.
    assert variant_ids(list(reversed(combos)), ["python"]) == list(reversed(ids))


def test_awkward_values_make_valid_ids() -> None:
    values: list[Scalar] = ["Ünïcode ☃", "a/b c;rm -rf /", "$(x)`y`", "", "日本", "x" * 100, True]
    ids = variant_ids([{"v": v} for v in values], ["v"])
    assert ids[:2] == ["v-unicode", "v-a-b-c-rm-rf"]
    assert ids[6] == "v-true"
    assert all(ID_PATTERN.match(i) and len(i) <= MAX_ID_LENGTH for i in ids)
    assert len(set(ids)) == len(ids)


def test_identical_include_entries_are_numbered() -> None:
    combos = combine({}, [], [{"a": "x"}, {"a": "x"}])
    ids = variant_ids(combos, [])
    assert ids[0] != ids[1]
    assert ids[1].startswith(ids[0])


# Properties -----------------------------------------------------------------------------------

_values = st.one_of(
    st.text(max_size=12),
    st.integers(-5, 30),
    st.booleans(),
    st.sampled_from([1.5, 3.1, 3.10, 0.5]),
)
_names = st.sampled_from(["os", "python", "db", "cache", "arch"])


@st.composite
def matrices(
    draw: st.DrawFn,
) -> tuple[dict[str, list[Scalar]], list[Combination], list[Combination]]:
    names = draw(st.lists(_names, min_size=1, max_size=3, unique=True))
    axes = {
        name: draw(st.lists(_values, min_size=1, max_size=4, unique_by=lambda v: (type(v), v)))
        for name in names
    }
    keys = [*names, "extra", "flag"]

    def entry(pool: Sequence[str]) -> st.SearchStrategy[Combination]:
        return st.dictionaries(
            st.sampled_from(list(pool)),
            st.one_of(st.sampled_from([v for vs in axes.values() for v in vs]), _values),
            min_size=1,
            max_size=3,
        )

    exclude = draw(st.lists(entry(names), max_size=3))
    include = draw(st.lists(entry(keys), max_size=4))
    return axes, exclude, include


def _same(a: Any, b: Any) -> bool:
    return bool(value_key(a) == value_key(b))


@settings(max_examples=300, deadline=None)
@given(matrices())
def test_expansion_properties(
    matrix: tuple[dict[str, list[Scalar]], list[Combination], list[Combination]],
) -> None:
    axes, exclude, include = matrix
    combos = combine(axes, exclude, include)
    assert combos == combine(axes, exclude, include)  # deterministic

    names = list(axes)
    product = [dict(zip(names, p, strict=True)) for p in itertools.product(*axes.values())]
    kept = [
        p for p in product if not any(all(_same(p[k], v) for k, v in e.items()) for e in exclude)
    ]
    originals, added = combos[: len(kept)], combos[len(kept) :]
    # Exclude never leaves a matching original, the originals keep the product's order, and
    # include never overwrites an original axis value.
    for combo, base in zip(originals, kept, strict=True):
        assert all(combo[k] is base[k] for k in names)
    # Every added combination is one include entry, as written.
    assert all(combo in include for combo in added)
    assert len(added) <= len(include)

    ids = variant_ids(combos, names)
    assert len(set(ids)) == len(ids)
    assert all(ID_PATTERN.match(i) and len(i) <= MAX_ID_LENGTH for i in ids)
    assert ids == variant_ids(combos, names)


def test_variant_equality_is_by_value() -> None:
    assert Variant("a", {"x": 1}) == Variant("a", {"x": 1})
    assert Variant("a", {"x": 1}) != Variant("a", {"x": 2})
    assert len({Variant("a", {"x": 1}), Variant("a", {"x": 1})}) == 1
