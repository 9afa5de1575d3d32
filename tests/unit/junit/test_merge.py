"""Variant-aware merge: every result keeps its variant; nothing is dropped or invented."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as StdET

import junitparser
import pytest
import xmlschema

from stackmatrix.errors import ReportError, UsageError
from stackmatrix.junit.merge import JunitInput, merge_junit, merge_paths
from stackmatrix.junit.serialise import serialise
from stackmatrix.junit.write import Outcome, iter_cases, parse_junit
from stackmatrix.results.journal import RunJournal, Status, VariantResult
from stackmatrix.results.journal import TestCounts as Counts

CORPUS = Path(__file__).parent / "junit_corpus"
# junitparser's recount, typed: it has no annotations of its own.
_update_statistics: Callable[[junitparser.JUnitXml], None] = junitparser.JUnitXml.update_statistics
SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "junit.xsd"))
READABLE = [
    "pytest.xml",
    "pytest_xunit1.xml",
    "surefire.xml",
    "jest_junit.xml",
    "gotestsum.xml",
    "nested.xml",
    "bare_testsuite_odd.xml",
    "loose_testcases.xml",
    "gigantic_attribute.xml",
    "invalid_utf8.xml",
]
BROKEN = [
    "missing.xml",
    "empty.xml",
    "truncated.xml",
    "not_junit.xml",
    "not_xml.txt",
    "external_entity.xml",
    "billion_laughs.xml",
]


def _variant(name: str) -> str:
    return "v-" + Path(name).stem.replace("_", "-")


def _merge_corpus(tmp_path: Path, names: list[str]) -> tuple[Path, Any]:
    out = tmp_path / "merged.xml"
    inputs = [JunitInput(CORPUS / n, _variant(n), {"runner": Path(n).stem}) for n in names]
    return out, merge_junit(inputs, out)


def _suite_properties(suite: junitparser.TestSuite) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in suite._elem.iter("property")}


@pytest.mark.parametrize("name", READABLE)
def test_merge_keeps_every_testcase_and_marks_its_variant(tmp_path: Path, name: str) -> None:
    out, summary = _merge_corpus(tmp_path, [name])
    before = list(iter_cases(parse_junit(CORPUS / name)))
    after = list(iter_cases(parse_junit(out)))
    assert summary.testcases_in == summary.testcases_out == len(before) == len(after)
    variant = _variant(name)
    assert Counter((f"[{variant}] {c.classname}".strip(), c.name, c.outcome) for c in before) == (
        Counter((c.classname, c.name, c.outcome) for c in after)
    )
    for suite in junitparser.JUnitXml.fromfile(str(out)):
        assert suite.name.startswith(f"{variant} :: ")
        props = _suite_properties(suite)
        assert props["stackmatrix.variant"] == variant
        assert props["stackmatrix.axis.runner"] == Path(name).stem
        assert props["stackmatrix.source"] == str(CORPUS / name)


@pytest.mark.parametrize("name", BROKEN)
def test_broken_input_becomes_an_error_testcase_naming_file_and_problem(
    tmp_path: Path, name: str
) -> None:
    out, summary = _merge_corpus(tmp_path, ["pytest.xml", name])
    (broken,) = summary.broken
    assert broken.path == CORPUS / name
    cases = list(iter_cases(parse_junit(out)))
    assert len(cases) == 7
    error = cases[-1]
    assert error.outcome is Outcome.ERROR
    assert error.classname == f"[{_variant(name)}] stackmatrix"
    assert str(CORPUS / name) in error.message
    assert broken.problem in error.message
    assert summary.counts.errors == 2


def test_same_test_on_two_variants_stays_two_tests_for_ci_viewers(tmp_path: Path) -> None:
    out = tmp_path / "merged.xml"
    merge_junit(
        [
            JunitInput(CORPUS / "pytest.xml", "postgres-13", {"postgres": "13"}),
            JunitInput(CORPUS / "pytest.xml", "postgres-15", {"postgres": "15"}),
        ],
        out,
    )
    keys = [(c.classname, c.name) for s in junitparser.JUnitXml.fromfile(str(out)) for c in s]
    assert len(keys) == len(set(keys)) == 12
    assert ("[postgres-13] tests.integration.test_orders", "test_create_order") in keys
    assert ("[postgres-15] tests.integration.test_orders", "test_create_order") in keys
    names = [s.name for s in junitparser.JUnitXml.fromfile(str(out))]
    assert names == ["postgres-13 :: pytest", "postgres-15 :: pytest"]


def test_merge_of_whole_corpus_validates_and_reads_back_with_same_totals(tmp_path: Path) -> None:
    out, summary = _merge_corpus(tmp_path, READABLE + BROKEN)
    SCHEMA.validate(str(out))
    xml = junitparser.JUnitXml.fromfile(str(out))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (
        summary.counts.total,
        summary.counts.failed,
        summary.counts.errors,
        summary.counts.skipped,
    )
    # junitparser recounts from the testcases; the stored totals must agree with it, except
    # where one testcase holds several results (it counts each, we count the testcase once).
    recount = junitparser.JUnitXml.fromfile(str(out))
    _update_statistics(recount)
    assert recount.tests == xml.tests
    assert summary.testcases_out == summary.testcases_in + len(BROKEN) == xml.tests


def test_nested_suites_are_flattened_with_their_path(tmp_path: Path) -> None:
    out, _ = _merge_corpus(tmp_path, ["nested.xml"])
    names = [s.name for s in junitparser.JUnitXml.fromfile(str(out))]
    assert names == [
        "v-nested :: Shop Test Suite / Shop\\Tests\\Unit\\PriceTest",
        "v-nested :: Shop Test Suite / Shop\\Tests\\Db\\OrderTest"
        " / Shop\\Tests\\Db\\OrderTest::testTotals",
    ]


def test_unknown_elements_are_kept_as_text(tmp_path: Path) -> None:
    out, _ = _merge_corpus(tmp_path, ["surefire.xml"])
    text = out.read_text(encoding="utf-8")
    assert '&lt;flakyFailure message="deadlock detected"' in text
    assert "xsi:" not in text
    assert "noNamespaceSchemaLocation" not in text
    SCHEMA.validate(str(out))


def test_gigantic_attribute_is_cut(tmp_path: Path) -> None:
    out, _ = _merge_corpus(tmp_path, ["gigantic_attribute.xml"])
    (case,) = iter_cases(parse_junit(out))
    assert len(case.message) < 70_000
    assert case.message.endswith("more characters cut by stackmatrix]")
    assert out.stat().st_size < 80_000


def test_merged_counts_disregard_wrong_attributes(tmp_path: Path) -> None:
    out, summary = _merge_corpus(tmp_path, ["bare_testsuite_odd.xml"])
    assert summary.counts == Counts(total=4, passed=2, errors=1, skipped=1)
    (suite,) = junitparser.JUnitXml.fromfile(str(out))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 0, 1, 1)
    assert suite.time == 1234.5


def _run_dir(
    root: Path,
    name: str,
    variants: Mapping[str, tuple[str | None, Status]],
) -> Path:
    run_dir = root / name
    results = []
    for vid, (corpus_file, status) in variants.items():
        junit = None
        if corpus_file is not None:
            (run_dir / vid).mkdir(parents=True)
            shutil.copy(CORPUS / corpus_file, run_dir / vid / "junit.xml")
            junit = f"{vid}/junit.xml"
        results.append(
            VariantResult(
                id=vid,
                values={"postgres": vid.split("-")[1]},
                status=status,
                junit=junit,
                reason="fail-fast" if status is Status.CANCELLED else "",
            )
        )
    RunJournal(
        run_id=name,
        name="shop",
        spec_file="matrix.yaml",
        spec_digest="0",
        started_at=0.0,
        variants=tuple(results),
    ).write(run_dir)
    return run_dir


def test_merge_paths_reads_run_dirs_and_plain_files(tmp_path: Path) -> None:
    shard1 = _run_dir(
        tmp_path,
        "shard1",
        {"postgres-13": ("pytest.xml", Status.FAILED), "postgres-15": (None, Status.CANCELLED)},
    )
    shard2 = _run_dir(tmp_path, "shard2", {"postgres-15": ("pytest_xunit1.xml", Status.FAILED)})
    out = tmp_path / "merged.xml"
    summary = merge_paths([shard1, shard2, CORPUS / "gotestsum.xml"], out)
    suites = list(junitparser.JUnitXml.fromfile(str(out)))
    assert [s.name for s in suites] == [
        "postgres-13 :: pytest",
        "postgres-15 :: pytest",
        "example.com/shop/internal/store",
        "example.com/shop/cmd/shop",
        "example.com/shop/internal/money",
    ]
    # The later shard's postgres-15 replaced the cancelled one, and that is said.
    assert summary.warnings == (
        f"variant postgres-15 appears in {shard1} and {shard2}; using {shard2}",
    )
    assert summary.counts.total == 6 + 3 + 5
    # A plain file keeps its own classnames.
    assert _suite_properties(suites[2])["stackmatrix.source"] == str(CORPUS / "gotestsum.xml")
    assert "stackmatrix.variant" not in _suite_properties(suites[2])
    assert next(iter(suites[2])).classname == "example.com/shop/internal/store"
    SCHEMA.validate(str(out))


def test_variant_without_junit_is_reported_not_dropped(tmp_path: Path) -> None:
    run = _run_dir(
        tmp_path,
        "run",
        {"postgres-13": (None, Status.CANCELLED), "postgres-15": (None, Status.ERROR)},
    )
    summary = merge_paths([run], tmp_path / "merged.xml")
    cases = list(iter_cases(parse_junit(tmp_path / "merged.xml")))
    assert [(c.classname, c.name, c.outcome) for c in cases] == [
        ("[postgres-13] stackmatrix", "variant postgres-13", Outcome.SKIPPED),
        ("[postgres-15] stackmatrix", "variant postgres-15", Outcome.ERROR),
    ]
    assert cases[0].message == "no JUnit report: variant cancelled: fail-fast"
    assert summary.counts == Counts(total=2, errors=1, skipped=1)


def test_merge_paths_rejects_a_directory_without_journal(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"must contain run\.json"):
        merge_paths([tmp_path], tmp_path / "out.xml")


def test_merge_paths_reports_an_unreadable_journal(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"run\.json: cannot read the run journal"):
        merge_paths([tmp_path], tmp_path / "out.xml")


@pytest.mark.parametrize(
    "xml",
    [
        '<s n="a&amp;b"><t c="x" t="0.1"/>\n<t c="&quot;q&quot; &lt;&gt;&#10;&#13;&#9;"/></s>',
        '<s><t>text &amp; &lt;more&gt;<f m="x">tb</f>tail &amp;</t>  <u/>\n</s>',
        '<s xmlns:n="urn:x" n:k="1"><t/></s>',
        '<s k="{braces}"><n:t xmlns:n="urn:y"/></s>',
        "<s><t/><!-- a comment is not kept by the parser --></s>",
    ],
)
def test_the_merged_files_serialiser_writes_what_elementtree_writes(xml: str) -> None:
    suite = StdET.fromstring(xml)  # noqa: S314 - the test's own literal documents
    suite.tail = "\n"
    assert serialise(suite) == StdET.tostring(suite, encoding="unicode")
