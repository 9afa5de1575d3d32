"""Whatever a matrix file holds, loading it either succeeds or raises SpecError: never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackmatrix.errors import SpecError
from stackmatrix.matrix.expand import expand
from stackmatrix.spec.load import load_spec

KEYS = ["name", "compose", "axes", "exclude", "include", "overlays", "ready", "tests", "run",
        "profiles", "when", "command", "env", "where", "timeout", "shell", "workdir", "jobs",
        "fail_fast", "up_timeout", "postgres", "tcp", "http", "log", "port", "path", "extend",
        "experimental", "services", "db", "v", "x-a", "<<"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["${{ matrix.v }}", "${{ ports.db.5432 }}", "${{ nope }}", "10m", "[", "'"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5
        ),
    ),
    max_leaves=30,
)
VALID: dict[str, Any] = {
    "name": "fuzz",
    "axes": {"v": ["a", "b"], "w": [1, 2]},
    "exclude": [{"v": "a", "w": 1}],
    "include": [{"v": "c", "experimental": True}],
    "overlays": [{"when": {"v": "a"}, "compose": {"services": {"db": {"image": "x"}}}}],
    "ready": {"db": {"tcp": 5432}},
    "tests": {"command": "pytest ${{ ports.db.5432 }}", "timeout": "1m"},
    "run": {"jobs": 2},
    "profiles": {"p": {"axes": {"v": ["z"]}}},
}


@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "matrix.yaml"


def _load(path: Path, text: str | bytes, profile: str | None = None) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        spec = load_spec(path, profile=profile)
    except SpecError as error:
        problems = error.problems
    else:
        expand(spec)
        return
    assert problems
    assert all(line.startswith(str(path)) for line in problems)


_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(documents)
def test_arbitrary_documents(matrix_file: Path, document: Any) -> None:
    _load(matrix_file, yaml.safe_dump(document, allow_unicode=True))


@_FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text(matrix_file: Path, text: str) -> None:
    _load(matrix_file, text)


@_FUZZ
@given(st.binary(max_size=100))
def test_arbitrary_bytes(matrix_file: Path, data: bytes) -> None:
    _load(matrix_file, data)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    document = yaml.safe_load(yaml.safe_dump(VALID))
    path = draw(st.sampled_from(_paths(document)[1:]))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = draw(documents)
    return document


@_FUZZ
@given(mutated(), st.sampled_from([None, "p", "q"]))
def test_a_valid_file_with_one_part_replaced(
    matrix_file: Path, document: Any, profile: str | None
) -> None:
    _load(matrix_file, yaml.safe_dump(document, allow_unicode=True), profile)
