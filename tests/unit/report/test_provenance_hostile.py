"""Provenance values a service or the tests control (hostile package and service names),
baselines that hold only some of the packages, and the words that compare two runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from stackmatrix.engine.provenance import MAX_PACKAGES
from stackmatrix.junit.merged_suites import provenance_of_properties, provenance_properties
from stackmatrix.report.baseline import Change, Comparison, VariantChange
from stackmatrix.report.build import build_reports
from stackmatrix.report.changes import quiet_lines
from stackmatrix.report.provenance import (
    PACKAGES_CAP,
    Aspect,
    ProvenanceChange,
    masked,
    provenance_changes,
    provenance_comparable,
    provenance_dict,
    provenance_from,
)
from stackmatrix.report.results_file import load_baseline
from stackmatrix.results.journal import Provenance, ServiceProvenance, Status
from tests.unit.report.test_provenance_report import (
    IDS,
    PG17,
    nights,
    page,
    suite_properties,
    summary,
    table_rows,
    what_ran,
    write_night,
)

HOSTILE = '<img src=x onerror=alert(1)>"\n| `x` ]]></property><property name="y'


def test_hostile_package_and_service_names_are_inert_in_every_report(tmp_path: Path) -> None:
    found = what_ran(packages={HOSTILE: HOSTILE, "ok": "1.0"})
    found = dataclasses.replace(
        found, services={**found.services, HOSTILE: ServiceProvenance(image=HOSTILE)}
    )
    write_night(tmp_path, [found, found, found])
    build_reports([tmp_path], tmp_path)
    assert "<img" not in page(tmp_path)
    assert "<img" not in summary(tmp_path)
    assert all(len(cells) == 9 for cells in table_rows(summary(tmp_path)).values())
    props = suite_properties(tmp_path / "junit.xml")[IDS[0]]  # the XML still parses
    assert all(name.startswith("stackmatrix.") for name in props)  # no property smuggled in
    assert props["stackmatrix.provenance.package.ok"] == "1.0"
    json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))


def test_a_service_named_package_comes_back_as_a_service() -> None:
    ran = Provenance(
        services={"package": ServiceProvenance(image="local/package:1", version="1.2")},
        packages={"image": "9.9"},
    )
    back = provenance_of_properties(dict(provenance_properties(ran)))
    assert back == ran


def test_a_junit_baseline_with_many_packages_loses_none_of_them(tmp_path: Path) -> None:
    many = what_ran(packages={f"lib{n}": "1.0" for n in range(120)})
    write_night(tmp_path, [many, None, None])
    build_reports([tmp_path], tmp_path)
    assert load_baseline(tmp_path / "junit.xml").variants[0].provenance == many


def test_packages_only_cut_away_are_not_gone() -> None:
    full = {f"b{n}": "1" for n in range(PACKAGES_CAP)}
    shifted = {"a0": "1", **{f"b{n}": "1" for n in range(PACKAGES_CAP - 1)}}
    shifted["b5"] = "2"
    changes = provenance_changes(Provenance(packages=full), Provenance(packages=shifted))
    assert [c.text for c in changes] == ["package b5 1 → 2"]  # no "b199 gone", no "a0 new"
    assert PACKAGES_CAP == MAX_PACKAGES  # the engine keeps as many as a reader takes as cut


def test_the_same_image_from_a_mirror_is_no_digest_change() -> None:
    digest = "sha256:" + "d" * 64
    before = Provenance(services={"db": ServiceProvenance(digest=f"postgres@{digest}")})
    after = Provenance(services={"db": ServiceProvenance(digest=f"mirror.local/postgres@{digest}")})
    assert provenance_changes(before, after) == ()
    other = Provenance(services={"db": ServiceProvenance(digest="postgres@sha256:" + "e" * 64)})
    assert [c.aspect for c in provenance_changes(before, other)] == [Aspect.DIGEST]


def test_nothing_in_common_is_nothing_to_compare() -> None:
    images = Provenance(services={"db": ServiceProvenance(image="postgres:17")})
    versions = Provenance(services={"cache": ServiceProvenance(version="7.0")})
    assert not provenance_comparable(images, versions)
    assert provenance_comparable(what_ran(), what_ran("17.3"))
    assert not provenance_comparable(Provenance(), what_ran())


def test_a_regression_against_a_baseline_that_recorded_nothing_says_nothing_of_what_ran(
    tmp_path: Path,
) -> None:
    empty = Provenance(services={"db": ServiceProvenance(), "cache": ServiceProvenance()})
    _, two = nights(tmp_path, [empty, empty, None], [what_ran(), what_ran("15.8"), None])
    assert "the same images and versions" not in summary(two)
    assert "the same images and versions" not in page(two)


def _quiet_title(*changes: ProvenanceChange) -> str:
    variant = VariantChange(
        id="v", change=Change.UNCHANGED, status=Status.PASSED, before=Status.PASSED,
        provenance_changes=changes, provenance_compared=True,
    )  # fmt: skip
    return quiet_lines(Comparison("base", (variant,), ()), None)[0]


def test_the_quiet_list_says_which_kind_of_thing_changed() -> None:
    added = ProvenanceChange("cache", Aspect.ADDED, "", "redis 7")
    version = ProvenanceChange("db", Aspect.VERSION, "17.1", "17.2")
    image = ProvenanceChange("db", Aspect.IMAGE, PG17, "sha256:" + "0" * 64)
    assert _quiet_title(added) == "Services added or removed with no change of outcome"
    assert _quiet_title(version) == "Versions changed with no change of outcome"
    assert _quiet_title(version, image, added) == (
        "Versions and images changed, services added or removed with no change of outcome"
    )


def test_every_field_of_a_service_is_masked_and_written() -> None:
    every = ServiceProvenance(
        **{f.name: f"https://u:pw9secret@h/{f.name}" for f in dataclasses.fields(ServiceProvenance)}
    )
    shown = masked(Provenance(services={"db": every}))
    assert "pw9secret" not in repr(shown)
    services = provenance_dict(Provenance(services={"db": every}))["services"]
    assert isinstance(services, dict)
    assert set(services["db"]) == {f.name for f in dataclasses.fields(ServiceProvenance)}


def test_a_side_that_says_it_was_cut_calls_no_package_gone() -> None:
    cut = Provenance(packages={"a": "1", "b": "2"}, packages_cut=3)
    whole = Provenance(packages={"a": "1", "c": "1"})
    assert provenance_changes(whole, cut) == provenance_changes(cut, whole) == ()
    assert [c.text for c in provenance_changes(whole, dataclasses.replace(cut, packages_cut=0))]


def test_the_count_of_packages_left_out_survives_junit_and_results_json() -> None:
    cut = Provenance(packages={"a": "1"}, packages_cut=3)
    assert provenance_of_properties(dict(provenance_properties(cut))) == cut
    assert provenance_from(json.loads(json.dumps(provenance_dict(cut))), "here") == cut
