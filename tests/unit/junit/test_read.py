"""Reading JUnit files: counts, broken inputs, synthesized error reports."""

from __future__ import annotations

import os
from pathlib import Path

import junitparser
import pytest

from stackmatrix.junit import read as _junit_read
from stackmatrix.junit.write import Outcome, iter_cases, parse_junit, read_counts, write_error_junit
from stackmatrix.results.journal import TestCounts as Counts

CORPUS = Path(__file__).parent / "junit_corpus"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pytest.xml", Counts(total=6, passed=2, failed=1, errors=1, skipped=2)),
        ("pytest_xunit1.xml", Counts(total=3, passed=2, failed=1)),
        ("surefire.xml", Counts(total=4, passed=2, failed=1, skipped=1)),
        ("jest_junit.xml", Counts(total=5, passed=3, failed=1, skipped=1)),
        ("gotestsum.xml", Counts(total=5, passed=3, failed=1, skipped=1)),
        ("nested.xml", Counts(total=4, passed=3, failed=1)),
        # The file claims tests="99" failures="-1": counts come from the testcases.
        ("bare_testsuite_odd.xml", Counts(total=4, passed=2, errors=1, skipped=1)),
        ("loose_testcases.xml", Counts(total=2, passed=1, failed=1)),
        ("gigantic_attribute.xml", Counts(total=1, failed=1)),
        ("invalid_utf8.xml", Counts(total=2, passed=1, failed=1)),
    ],
)
def test_read_counts_counts_testcases_of_every_shape(name: str, expected: Counts) -> None:
    assert read_counts(CORPUS / name) == expected


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("does-not-exist.xml", "file not found"),
        ("empty.xml", "file is empty"),
        ("truncated.xml", "not well-formed XML: unclosed token"),
        ("not_junit.xml", "not a JUnit report: root element is <coverage>"),
        ("not_xml.txt", "not well-formed XML"),
        ("external_entity.xml", "XML entities are not allowed"),
        ("billion_laughs.xml", "XML entities are not allowed"),
    ],
)
def test_broken_file_counts_as_one_error_and_names_the_problem(name: str, problem: str) -> None:
    parsed = parse_junit(CORPUS / name)
    assert parsed.root is None
    assert parsed.problem.startswith(problem)
    assert read_counts(CORPUS / name) == Counts(total=1, errors=1)


def test_directory_is_not_a_report(tmp_path: Path) -> None:
    assert parse_junit(tmp_path).problem == "is a directory, not a file"


def test_external_entity_is_never_resolved() -> None:
    parsed = parse_junit(CORPUS / "external_entity.xml")
    assert parsed.root is None
    assert "root:" not in parsed.problem  # /etc/passwd content


_SUITE = '<testsuite><testcase classname="c" name="{name}"/></testsuite>'


@pytest.mark.parametrize(
    ("doctype", "name"),
    [
        ('<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>', "&b;"),
        ('<!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "&x;"),
        ('<!DOCTYPE l [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd">%p;]>', "a"),
        ('<!DOCTYPE l [<!NOTATION n SYSTEM "x"><!ENTITY u SYSTEM "y" NDATA n>]>', "a"),
        # A declaration after an unread parameter entity is still refused, not skipped.
        ('<!DOCTYPE l [<!ENTITY % p SYSTEM "x.dtd">%p;<!ENTITY e "boom">]>', "&e;"),
    ],
    ids=["nested", "external", "parameter", "unparsed", "after-parameter"],
)
def test_every_entity_declaration_is_refused(tmp_path: Path, doctype: str, name: str) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(f'<?xml version="1.0"?>{doctype}{_SUITE.format(name=name)}', "utf-8")
    parsed = parse_junit(path)
    assert (parsed.root, parsed.problem) == (
        None,
        "XML entities are not allowed (EntitiesForbidden)",
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "iso-8859-1"])
def test_entities_are_refused_in_any_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "junit.xml"
    doctype = '<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    text = f'<?xml version="1.0" encoding="{encoding}"?>{doctype}{_SUITE.format(name="&b;")}'
    path.write_bytes(text.encode(encoding))
    assert parse_junit(path).problem == "XML entities are not allowed (EntitiesForbidden)"


def test_an_external_dtd_is_not_fetched_and_the_report_reads(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    doctype = '<!DOCTYPE l SYSTEM "http://127.0.0.1:9/x.dtd">'
    path.write_text(f'<?xml version="1.0"?>{doctype}{_SUITE.format(name="a")}', "utf-8")
    assert [c.name for c in iter_cases(parse_junit(path))] == ["a"]


def test_an_undefined_entity_is_not_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(_SUITE.format(name="&zz;"), "utf-8")
    assert parse_junit(path).problem == ("not well-formed XML: undefined entity: line 1, column 11")


def test_file_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_junit_read, "MAX_JUNIT_BYTES", 4096)
    report = tmp_path / "big.xml"
    cases = "".join(f'<testcase classname="c" name="t{i}"/>' for i in range(500))
    report.write_text(f'<testsuite name="s">{cases}</testsuite>')
    parsed = parse_junit(report)
    assert parsed.root is None
    assert "over the limit of 4096 bytes" in parsed.problem


def test_invalid_utf8_and_control_characters_are_repaired_not_dropped() -> None:
    parsed = parse_junit(CORPUS / "invalid_utf8.xml")
    assert parsed.problem == ""
    assert "invalid UTF-8 bytes replaced" in parsed.warnings[0]
    cases = {c.name: c for c in iter_cases(parsed)}
    assert cases["test_ansi"].outcome is Outcome.FAILED
    assert cases["test_ansi"].message == "\\x1b[31mred\\x1b[0m"


def test_iter_cases_reads_messages_files_and_lines() -> None:
    cases = {c.name: c for c in iter_cases(parse_junit(CORPUS / "pytest_xunit1.xml"))}
    failed = cases["test_search[postgres]"]
    assert failed.outcome is Outcome.FAILED
    assert failed.message == "assert 500 == 200"
    assert "E   assert 500 == 200" in failed.text
    assert (failed.file, failed.line, failed.time) == ("tests/test_api.py", 15, 0.12)
    assert failed.test_id == "tests.test_api::test_search[postgres]"


def test_iter_cases_names_nested_suites_by_their_path() -> None:
    suites = {c.suite for c in iter_cases(parse_junit(CORPUS / "nested.xml"))}
    assert suites == {
        "Shop Test Suite / Shop\\Tests\\Unit\\PriceTest",
        "Shop Test Suite / Shop\\Tests\\Db\\OrderTest / Shop\\Tests\\Db\\OrderTest::testTotals",
    }


def test_a_testcase_with_failure_and_error_counts_once_as_error() -> None:
    cases = {c.name: c for c in iter_cases(parse_junit(CORPUS / "bare_testsuite_odd.xml"))}
    assert cases["failure and error both"].outcome is Outcome.ERROR
    assert cases["failure and error both"].message == "second"


def test_write_error_junit_is_one_erroring_testcase(tmp_path: Path) -> None:
    path = tmp_path / "pg-13" / "junit.xml"
    write_error_junit(
        path,
        variant_id="pg-13",
        message="service db did not become healthy in 120s",
        detail="db  | FATAL: \x1b[31mdata directory has wrong ownership\x1b[0m",
    )
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == ["stackmatrix"]
    (case,) = list(suites[0])
    assert (case.classname, case.name) == ("stackmatrix", "variant pg-13")
    (error,) = case.result
    assert isinstance(error, junitparser.Error)
    assert error.message == "service db did not become healthy in 120s"
    assert "data directory has wrong ownership" in error.text
    assert (xml.tests, xml.errors, xml.failures) == (1, 1, 0)
    assert read_counts(path) == Counts(total=1, errors=1)


def test_write_error_junit_keeps_the_suite_name(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_error_junit(path, variant_id="a", message="m", suite="tests")
    (case,) = iter_cases(parse_junit(path))
    assert case.suite == "tests"
    assert case.message == "m"


def test_a_report_that_is_a_symbolic_link_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.xml"
    outside.write_text('<testsuite name="s"><testcase name="looks-real"/></testsuite>')
    link = tmp_path / "junit.xml"
    link.symlink_to(outside)

    parsed = parse_junit(link)

    assert parsed.root is None
    assert parsed.problem == (
        f"is a symbolic link to {outside}; links in a run directory are not followed"
    )
    assert read_counts(link) == Counts(total=1, errors=1)


def test_a_pipe_is_not_a_report_and_reading_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "junit.xml"
    os.mkfifo(fifo)
    assert parse_junit(fifo).problem == "is not a regular file"
