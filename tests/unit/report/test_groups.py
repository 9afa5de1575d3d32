"""Failures grouped by test and message, naming the variants in few words."""

from __future__ import annotations

from pathlib import Path

from stackmatrix.junit.read import Outcome
from stackmatrix.report.groups import Kind, failure_groups
from stackmatrix.report.model import load_runs
from stackmatrix.results.journal import Status
from tests.unit.report.handmade import Case, Plan, grid_variants, write_run

LOCALE = 'could not create locale "C.utf8"'


def _locale_run(run_dir: Path) -> None:
    """PostgreSQL 13 x 2 drivers fail test_collation with one message; 15 and 17 pass; one
    test fails everywhere; one variant never ran its tests."""
    plans = []
    for ident, values in grid_variants(["13", "15", "17"], ["psycopg2", "psycopg"]):
        if ident == "postgres-17_driver-psycopg":
            plans.append(
                Plan(ident, values, Status.ERROR, cases=None, reason="db did not become healthy")
            )
            continue
        on_13 = values["postgres"] == "13"
        cases = [
            Case("tests.test_dialect.CollationTest", "test_collation",
                 "error" if on_13 else "pass", LOCALE if on_13 else ""),
            Case("tests.test_dialect.CollationTest", "test_other"),
            Case("tests.test_broken", "test_always", "fail", "assert 1 == 2"),
        ]  # fmt: skip
        plans.append(Plan(ident, values, Status.FAILED, cases))
    write_run(run_dir, plans)


def test_one_failure_on_many_variants_is_one_group_naming_their_axis_value(
    tmp_path: Path,
) -> None:
    _locale_run(tmp_path)
    groups = failure_groups(load_runs([tmp_path]))
    collation = [g for g in groups if g.test_id.endswith("test_collation")]
    assert len(collation) == 1
    group = collation[0]
    assert group.variants == ("postgres-13_driver-psycopg2", "postgres-13_driver-psycopg")
    assert group.variants_text == "postgres=13 (2 variants)"
    assert group.outcome is Outcome.ERROR
    assert group.headline == f"errors on postgres=13 (2 variants): {LOCALE}"
    assert not group.everywhere


def test_groups_come_most_useful_first(tmp_path: Path) -> None:
    _locale_run(tmp_path)
    groups = failure_groups(load_runs([tmp_path]))
    assert [(g.kind, g.test_id) for g in groups] == [
        (Kind.VARIANT, ""),
        (Kind.TEST, "tests.test_dialect.CollationTest::test_collation"),
        (Kind.TEST, "tests.test_broken::test_always"),
    ]
    assert groups[0].variants == ("postgres-17_driver-psycopg",)
    assert groups[0].message == "db did not become healthy"
    # A test failing on every variant that ran it is "everywhere"; five of six variants ran
    # tests, so it names the axis values whose variants all failed it.
    always = groups[2]
    assert always.everywhere
    assert always.variants_text == ("driver=psycopg2, postgres=13, postgres=15 (5 variants)")


def test_every_variant_single_variant_and_listed_ids(tmp_path: Path) -> None:
    plans = []
    for ident, values in grid_variants(["13", "15", "17"], ["a"]):
        cases = [Case("t", "test_all", "fail", "boom")]
        if values["postgres"] != "17":
            cases.append(Case("t", "test_two", "fail", "old server"))
        else:
            cases.append(Case("t", "test_two"))
            cases.append(Case("t", "test_one", "fail", "only here"))
        plans.append(Plan(ident, values, Status.FAILED, cases))
    write_run(tmp_path, plans)
    by_test = {g.test_id: g for g in failure_groups(load_runs([tmp_path]))}
    assert by_test["t::test_all"].variants_text == "every variant (3)"
    assert by_test["t::test_one"].variants_text == "postgres-17_driver-a"
    # No axis value has exactly these two variants: they are listed.
    assert by_test["t::test_two"].variants_text == (
        "postgres-13_driver-a, postgres-15_driver-a (2 variants)"
    )


def test_different_messages_of_one_test_are_different_groups(tmp_path: Path) -> None:
    plans = [
        Plan(
            ident,
            values,
            Status.FAILED,
            [Case("t", "test_x", "fail", f"boom {values['postgres']}")],
        )
        for ident, values in grid_variants(["13", "15"], ["a", "b"])
    ]
    write_run(tmp_path, plans)
    groups = failure_groups(load_runs([tmp_path]))
    assert [(g.message, g.variants_text) for g in groups] == [
        ("boom 13", "postgres=13 (2 variants)"),
        ("boom 15", "postgres=15 (2 variants)"),
    ]
    assert all(g.everywhere for g in groups)


def test_a_variant_that_errored_is_a_failure_of_its_own_beside_its_failed_test(
    tmp_path: Path,
) -> None:
    # The tests timed out after one had failed: the timeout is what the reader must see.
    (ident, values), (other, other_values) = grid_variants(["13", "15"], ["a"])
    write_run(
        tmp_path,
        [
            Plan(ident, values, Status.ERROR, [Case("t", "test_x", "fail", "boom")],
                 reason="tests timed out after 10m"),
            Plan(other, other_values, Status.CANCELLED, [Case("t", "test_x", "fail", "boom")],
                 reason="cancelled: fail-fast"),
        ],
    )  # fmt: skip
    groups = failure_groups(load_runs([tmp_path]))
    assert [(g.kind, g.message, g.variants) for g in groups] == [
        (Kind.VARIANT, "tests timed out after 10m", (ident,)),
        (Kind.VARIANT, "cancelled: fail-fast", (other,)),
        (Kind.TEST, "boom", (ident, other)),
    ]


def test_a_shard_s_own_report_names_variants_not_axis_values(tmp_path: Path) -> None:
    # Shard 1/2 of a six-variant matrix holds three; "postgres=13" or "every variant" would
    # claim the other shard's variants too.
    grid = grid_variants(["13", "15", "17"], ["a", "b"])
    shard = grid[0::2]
    plans = [Plan(i, v, Status.FAILED, [Case("t", "test_x", "fail", "boom")]) for i, v in shard]
    write_run(tmp_path / "shard", plans, shard="1/2", matrix_variants=tuple(i for i, _ in grid))
    (group,) = failure_groups(load_runs([tmp_path / "shard"]))
    assert group.variants_text == (
        "postgres-13_driver-a, postgres-15_driver-a, postgres-17_driver-a (3 variants)"
    )
    # The same failures with the whole matrix at hand compress.
    write_run(
        tmp_path / "whole",
        [Plan(i, v, Status.FAILED, [Case("t", "test_x", "fail", "boom")]) for i, v in grid],
        matrix_variants=tuple(i for i, _ in grid),
    )
    (group,) = failure_groups(load_runs([tmp_path / "whole"]))
    assert group.variants_text == "every variant (6)"
