"""The ``versions`` key (how to ask a service its version) and ``tests.versions`` (a command
that prints the versions of the packages under test): what loads, and what is refused where."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from stackmatrix.errors import SpecError
from stackmatrix.spec.load import VersionQuery, load_spec
from stackmatrix.spec.models import Spec

HEAD = """\
axes: {v: [a]}
overlays: [{compose: {services: {db: {image: x}, search: {image: y}, web: {image: z}}}}]
"""
TESTS = "tests: {command: 'true'}\n"


def _load(tmp_path: Path, body: str, tests: str = TESTS) -> Spec:
    path = tmp_path / "matrix.yaml"
    path.write_text(HEAD + textwrap.dedent(body) + tests, encoding="utf-8")
    return load_spec(path)


def _problems(tmp_path: Path, body: str, tests: str = TESTS) -> list[str]:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, body, tests)
    assert caught.value.exit_code == 2
    return [p.replace(str(tmp_path / "matrix.yaml"), "matrix.yaml") for p in caught.value.problems]


def test_a_command_a_log_pattern_and_a_match_load_as_written(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        r"""
        versions:
          search: {command: [cat, /etc/search-version]}
          web: {log: 'started, version (\S+)'}
          db: {command: "db --version", match: 'v(\d+\.\d+)'}
        """,
        tests="tests: {command: 'true', versions: [python, -m, pip, list, --format=freeze]}\n",
    )
    assert spec.versions == {
        "search": VersionQuery(command=("cat", "/etc/search-version")),
        "web": VersionQuery(log=r"started, version (\S+)"),
        "db": VersionQuery(command=("db", "--version"), match=r"v(\d+\.\d+)"),
    }
    assert spec.tests.versions == ("python", "-m", "pip", "list", "--format=freeze")


def test_without_the_keys_nothing_is_asked(tmp_path: Path) -> None:
    spec = _load(tmp_path, "")
    assert spec.versions == {}
    assert spec.tests.versions is None


def test_a_versions_entry_for_a_service_no_variant_has_is_named_where_it_is(
    tmp_path: Path,
) -> None:
    problems = _problems(tmp_path, "versions:\n  serch: {command: [cat, /v]}\n")
    assert problems == [
        "matrix.yaml:4:3: versions.serch: unknown service 'serch' — did you mean 'search'?"
    ]


def test_a_service_far_from_any_name_lists_the_services(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "versions:\n  queue: {log: x}\n")
    assert problems == [
        "matrix.yaml:4:3: versions.queue: unknown service 'queue' — services are: db, search, web"
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{comand: [x]}",
         "4:9: versions.web.comand: unknown key 'comand' — did you mean 'command'?"),
        ("{command: [x], log: y}",
         "4:8: versions.web: expected one of 'command' or 'log', found both"),
        ("{}", "4:8: versions.web: expected one of 'command' or 'log', found neither"),
        ("{log: x, match: y}", "4:8: versions.web: 'match' reads the output of a 'command'; a 'log'"
                               " pattern is its own match"),
        ("{log: 'v(\\d+'}", "4:14: versions.web.log: invalid regular expression: missing ),"
                            " unterminated subpattern at position 1"),
        ("{command: [x], match: '('}", "4:30: versions.web.match: invalid regular expression:"
                                       " missing ), unterminated subpattern at position 0"),
        ("{command: []}", "4:18: versions.web.command: the command is empty"),
        ("{command: \"x 'y\"}", "4:18: versions.web.command: cannot split the command:"
                                " No closing quotation"),
        ("'cat /v'", "4:8: versions.web: expected a mapping, found a string 'cat /v'"),
    ],
    ids=["misspelt-key", "both", "neither", "match-with-log", "bad-log-regex", "bad-match",
         "empty-command", "unsplittable", "not-a-mapping"],
)  # fmt: skip
def test_a_wrong_versions_entry_is_named_at_its_place(
    tmp_path: Path, entry: str, message: str
) -> None:
    assert _problems(tmp_path, f"versions:\n  web: {entry}\n") == [f"matrix.yaml:{message}"]


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ("{command: 'true', versoins: [pip, list]}",
         "3:26: tests.versoins: unknown key 'versoins' — did you mean 'versions'?"),
        ("{command: 'true', versions: \"pip 'list\"}",
         "3:36: tests.versions: cannot split the command: No closing quotation"),
        ("{command: 'true', versions: [pip, {a: 1}]}",
         "3:36: tests.versions: expected a string as item 1 of the command, found a mapping"),
    ],
    ids=["misspelt", "unsplittable", "not-words"],
)  # fmt: skip
def test_a_wrong_tests_versions_is_named_at_its_place(
    tmp_path: Path, tests: str, message: str
) -> None:
    assert _problems(tmp_path, "", tests=f"tests: {tests}\n") == [f"matrix.yaml:{message}"]


def test_the_json_schema_knows_both_keys() -> None:
    schema = json.loads(
        (Path(__file__).parents[3] / "src" / "stackmatrix" / "matrix.schema.json").read_text()
    )
    assert "versions" in schema["properties"]
    tests = schema["$defs"]["TestsSpec"]["properties"]
    assert "versions" in tests
    query = schema["$defs"]["VersionQuery"]
    assert set(query["properties"]) == {"command", "match", "log"}
    assert query["additionalProperties"] is False
