"""The committed JSON Schema is current, and the project's matrix files validate against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from stackmatrix.spec.load import load_spec
from stackmatrix.spec.schema import SCHEMA_PATH, _main, json_schema, schema_text

ROOT = Path(__file__).parents[3]
EXAMPLES = sorted((ROOT / "examples" / "specs").glob("*/matrix.yaml"))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(document: Any) -> list[str]:
    return [error.message for error in _validator().iter_errors(document)]


def test_committed_schema_equals_a_fresh_generation() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "src/stackmatrix/matrix.schema.json is stale: run `nox -s schema`"
    )
    assert json.loads(schema_text()) == json_schema()


def test_check_schema_command(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    assert _main(["--check-schema", str(target)]) == 1
    assert _main(["--write-schema", str(target)]) == 0
    assert _main(["--check-schema", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == schema_text()


def test_there_are_example_specs() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_example_specs_validate_and_load(path: Path) -> None:
    assert _errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []
    load_spec(path)


def test_the_repository_matrix_validates() -> None:
    path = ROOT / "matrix.yaml"
    if not path.exists():
        pytest.skip("matrix.yaml is not in the repository yet")
    assert _errors(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    "document",
    [
        {"tests": {"command": "x"}, "exclud": []},
        {"tests": {"command": "x"}, "path": "elsewhere"},
        {"tests": {"command": "x"}, "ready": {"db": {"postgress": 5432}}},
        {"tests": {"command": "x"}, "ready": {"db": {"tcp": 5432, "http": 80}}},
        {"tests": {"command": "x"}, "run": {"up_timeout": "2 minutes"}},
        {"tests": {"command": "x"}, "name": "Not Valid"},
        {"tests": {"command": "x"}, "axes": {"v": [None]}},
        {"axes": {"v": ["a"]}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(document: dict[str, Any]) -> None:
    assert _errors(document)


@pytest.mark.parametrize(
    "document",
    [
        {"tests": {"command": ["pytest", "-n", 4]}, "compose": "compose.yaml"},
        {"tests": {"command": "x"}, "ready": {"db": [{"http": {"port": 80, "path": "/h"}}]}},
        {"tests": {"command": "x"}, "ready": {"db": {"command": "pg_isready"}}},
        {"tests": {"command": "x", "timeout": "1m30s"}, "run": {"up_timeout": 90}},
        {"tests": {"command": "x"}, "x-anchors": {"a": 1}, "overlays": [{"compose": {}}]},
        {"tests": {"command": "x"}, "profiles": {"n": {"extend": {"include": [{"a": 1}]}}}},
    ],
)
def test_schema_accepts_the_shorthands(document: dict[str, Any]) -> None:
    assert _errors(document) == []
