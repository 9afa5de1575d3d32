"""The JSON Schema of a matrix file, generated from the spec models and committed as
``src/stackmatrix/matrix.schema.json`` for editors: ``python -m stackmatrix.spec.schema
--write-schema`` (``nox -s schema``) writes it, ``--check-schema`` fails when it is stale."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackmatrix.spec.models import Spec

SCHEMA_PATH = Path(__file__).parents[1] / "matrix.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a matrix file, for editors and for `jsonschema` validation."""
    schema = Spec.model_json_schema(mode="validation")
    schema["required"] = [key for key in schema.get("required", []) if key != "name"]
    schema["patternProperties"] = {"^x-": {"description": "free-form, e.g. for YAML anchors"}}
    # `tests.setup` takes one step (a mapping) as well as a list of them.
    setup = schema["$defs"]["TestsSpec"]["properties"]["setup"]
    step = setup.pop("items")
    setup.pop("type")
    setup["anyOf"] = [step, {"type": "array", "items": step}]
    setup["description"] = "commands run after readiness and before the tests, in order"
    schema["title"] = "stackmatrix matrix file"
    schema["description"] = "Which Docker Compose stack variants a project's tests must pass on."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """The committed form of `json_schema()`: stable JSON with a final newline."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stackmatrix.spec.schema", description="Write or check matrix.schema.json."
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write-schema", action="store_true", help="write the schema file")
    group.add_argument(
        "--check-schema", action="store_true", help="fail if the schema file is stale"
    )
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_PATH)
    args = parser.parse_args(argv)
    text = schema_text()
    if args.write_schema:
        args.path.write_text(text, encoding="utf-8")
        return 0
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
    if current != text:
        print(
            f"{args.path} is stale: run python -m stackmatrix.spec.schema --write-schema",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
