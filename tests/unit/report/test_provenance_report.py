"""What a variant ran, in the reports: the "What ran" column of summary.md and report.html,
every value in report.html's detail, JUnit properties, results.json (and reading it back as a
baseline, older files included), and the baseline naming what changed next to outcomes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from stackmatrix.ci.github import STEP_SUMMARY_LIMIT, fit_step_summary
from stackmatrix.errors import ReportError
from stackmatrix.junit.write import parse_junit
from stackmatrix.report.build import build_reports
from stackmatrix.report.provenance import (
    MAX_TEXT_CHARS,
    PACKAGES_IN_HTML,
    Aspect,
    ProvenanceChange,
    changes_text,
    provenance_changes,
    provenance_text,
    service_text,
    short_id,
)
from stackmatrix.report.results_file import load_baseline
from stackmatrix.results.journal import Provenance, ServiceProvenance, Status
from tests.unit.report.handmade import Case, Plan, write_run

PG17 = "sha256:1a2b3c4d5e6f" + "7" * 52
PG17_REBUILT = "sha256:9f8e7d6c5b4a" + "3" * 52
REDIS = "sha256:" + "c" * 64
IDS = ("postgres-17_redis-7", "postgres-15_redis-7", "postgres-13_redis-7")


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


def what_ran(
    pg: str = "17.2",
    redis: str = "7.0.15",
    *,
    pg_id: str = PG17,
    python: str = "3.11.2",
    packages: Mapping[str, str] | None = None,
) -> Provenance:
    return Provenance(
        services={
            "db": ServiceProvenance(
                image="local/pg:17", image_id=pg_id, version=pg, version_source="postgres"
            ),
            "cache": ServiceProvenance(
                image="local/redis:7",
                image_id=REDIS,
                digest=f"local/redis@{REDIS}",
                version=redis,
                version_source="redis",
            ),
        },
        python=python,
        packages={"psycopg": "3.2.1"} if packages is None else packages,
    )


def write_night(
    run_dir: Path,
    provenances: Sequence[Provenance | None],
    *,
    failing: bool = False,
    run_id: str = "20260314-092600-00000000000000a1",
) -> None:
    """Three variants; the first fails its test ``t::b`` when *failing*."""
    plans = []
    for n, (ident, provenance) in enumerate(zip(IDS, provenances, strict=True)):
        fails = failing and n == 0
        cases = [Case("t", "a"), Case("t", "b", "fail" if fails else "pass", "boom")]
        plans.append(
            Plan(
                ident,
                {"postgres": ident.split("_")[0].split("-")[1], "redis": "7"},
                Status.FAILED if fails else Status.PASSED,
                cases,
                extra={"provenance": provenance} if provenance is not None else {},
            )
        )
    write_run(run_dir, plans, run_id=run_id, matrix_variants=IDS)


def nights(
    tmp_path: Path,
    before: Sequence[Provenance | None],
    after: Sequence[Provenance | None],
    *,
    failing_now: bool = True,
) -> tuple[Path, Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    write_night(one, before)
    write_night(two, after, failing=failing_now, run_id="20260315-092600-00000000000000a2")
    build_reports([one], one)
    build_reports([two], two, baseline=one)
    return one, two


def summary(run_dir: Path) -> str:
    return (run_dir / "summary.md").read_text(encoding="utf-8")


def page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def table_rows(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


# --------------------------------------------------------------------------------------------
# The short text


def test_service_text_names_the_version_first_and_the_short_image_id() -> None:
    db = what_ran().services["db"]
    assert service_text("db", db) == "db postgres 17.2 · sha256:1a2b3c4d5e6f"
    unknown = ServiceProvenance(image="local/app:1", image_id=PG17)
    assert service_text("app", unknown) == "app local/app:1 · sha256:1a2b3c4d5e6f"
    asked = ServiceProvenance(image="x:1", version="2.4.1", version_source="command")
    assert service_text("web", asked) == "web 2.4.1"
    assert service_text("web", ServiceProvenance()) == ""


def test_short_id_of_ids_and_repo_digests() -> None:
    assert short_id(PG17) == "sha256:1a2b3c4d5e6f"
    assert short_id(f"registry.local:5000/pg@{PG17}") == "sha256:1a2b3c4d5e6f"
    assert short_id("1a2b3c4d5e6f7a8b9c") == "1a2b3c4d5e6f"
    assert short_id("") == ""


def test_provenance_text_is_one_line_cut_to_its_limit() -> None:
    text = provenance_text(what_ran())
    assert text == (
        "db postgres 17.2 · sha256:1a2b3c4d5e6f; cache redis 7.0.15 · sha256:cccccccccccc;"
        " python 3.11.2; psycopg 3.2.1"
    )
    many = what_ran(packages={f"package-{n}": "1.0" for n in range(40)})
    assert provenance_text(many).endswith("; package-2 1.0; +37 packages")
    long = provenance_text(what_ran("17.2 " + "x" * 500))
    assert len(long) == MAX_TEXT_CHARS
    assert long.endswith("x…")
    assert provenance_text(Provenance()) == ""


# --------------------------------------------------------------------------------------------
# What changed between two runs


def test_changes_compare_versions_first_then_image_ids() -> None:
    changes = provenance_changes(what_ran("17.1"), what_ran("17.2", pg_id=PG17_REBUILT))
    assert [c.text for c in changes] == ["db postgres 17.1 → 17.2"]  # not also the image
    rebuilt = provenance_changes(what_ran(), what_ran(pg_id=PG17_REBUILT))
    assert [c.text for c in rebuilt] == ["db image sha256:1a2b3c4d5e6f → sha256:9f8e7d6c5b4a"]
    assert rebuilt[0].aspect is Aspect.IMAGE
    unknown = Provenance(services={"db": ServiceProvenance(image="pg:17", image_id=PG17)})
    moved = Provenance(services={"db": ServiceProvenance(image="pg:17", image_id=PG17_REBUILT)})
    assert [c.aspect for c in provenance_changes(unknown, moved)] == [Aspect.IMAGE]


def test_changes_of_python_packages_and_services() -> None:
    before = what_ran(packages={"psycopg": "3.2.1", "sqlalchemy": "2.0.35"})
    after = Provenance(
        services={"db": what_ran().services["db"], "web": ServiceProvenance(version="1.4")},
        python="3.12.1",
        packages={"psycopg": "3.2.3", "alembic": "1.14"},
    )
    assert [c.text for c in provenance_changes(before, after)] == [
        "web new: 1.4",
        "cache gone (was redis 7.0.15 · sha256:cccccccccccc)",
        "python 3.11.2 → 3.12.1",
        "package psycopg 3.2.1 → 3.2.3",
        "package alembic new: 1.14",
        "package sqlalchemy gone (was 2.0.35)",
    ]


def test_nothing_recorded_on_one_side_is_no_change() -> None:
    assert provenance_changes(Provenance(), what_ran()) == ()
    assert provenance_changes(what_ran(), Provenance()) == ()
    assert provenance_changes(what_ran(), what_ran()) == ()


def test_changes_text_counts_what_it_leaves_out() -> None:
    changes = [ProvenanceChange(f"p{n}", Aspect.PACKAGE, "1", "2") for n in range(6)]
    assert changes_text(changes, limit=2) == "package p0 1 → 2, package p1 1 → 2 and 4 more"


# --------------------------------------------------------------------------------------------
# The reports of one run


def test_summary_has_a_what_ran_column(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), what_ran("15.8"), None])
    build_reports([tmp_path], tmp_path)
    text = summary(tmp_path)
    assert "| Peak memory | What ran |" in text
    rows = table_rows(text)
    assert rows["postgres-17_redis-7"][-1] == (
        "db postgres 17.2 · sha256:1a2b3c4d5e6f; cache redis 7.0.15 · sha256:cccccccccccc;"
        " python 3.11.2; psycopg 3.2.1"
    )
    assert rows["postgres-15_redis-7"][-1].startswith("db postgres 15.8 · ")
    assert rows["postgres-13_redis-7"][-1] == "—"  # recorded nothing


def test_no_what_ran_column_when_no_variant_recorded_any(tmp_path: Path) -> None:
    write_night(tmp_path, [None, None, None])
    build_reports([tmp_path], tmp_path)
    assert "What ran" not in summary(tmp_path)
    assert "What ran" not in page(tmp_path)


def test_a_long_provenance_stays_one_bounded_cell(tmp_path: Path) -> None:
    huge = what_ran(
        "17.2 (Debian 17.2-1.pgdg120+1) " + "x" * 5000,
        packages={f"package-{n}": "1.0.0" for n in range(500)},
    )
    write_night(tmp_path, [huge, huge, huge])
    build_reports([tmp_path], tmp_path)
    for cells in table_rows(summary(tmp_path)).values():
        assert len(cells[-1]) <= 2 * MAX_TEXT_CHARS  # escaping may add a backslash a char
    assert "x" * 200 not in summary(tmp_path)


def test_report_html_shows_the_short_line_and_every_value(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), what_ran("15.8"), None])
    build_reports([tmp_path], tmp_path)
    html = page(tmp_path)
    assert "<th>What ran</th>" in html
    assert "<summary>db postgres 17.2 · sha256:1a2b3c4d5e6f; cache redis 7.0.15" in html
    detail = html.split('id="variant-postgres-17_redis-7"')[1].split("</tr></table>")[0]
    for shown in (
        "<th>db</th><td>image</td><td>local/pg:17</td>",
        f"<th>db</th><td>image id</td><td>{PG17}</td>",
        "<th>db</th><td>version</td><td>17.2 (asked: postgres)</td>",
        f"<th>cache</th><td>repo digest</td><td>local/redis@{REDIS}</td>",
        "<th>tests</th><td>python</td><td>3.11.2</td>",
        "<th>package</th><td>psycopg</td><td>3.2.1</td>",
    ):
        assert shown in detail


def test_report_html_lists_packages_up_to_its_bound(tmp_path: Path) -> None:
    many = what_ran(packages={f"package-{n}": "1.0" for n in range(PACKAGES_IN_HTML + 5)})
    write_night(tmp_path, [many, None, None])
    build_reports([tmp_path], tmp_path)
    html = page(tmp_path)
    assert f"<td>package-{PACKAGES_IN_HTML - 1}</td><td>1.0</td>" in html
    assert f"<td>package-{PACKAGES_IN_HTML}</td>" not in html
    assert "<th>package</th><td>and 5 more</td><td>in run.json</td>" in html


def test_a_hostile_value_is_inert_in_markdown_and_html(tmp_path: Path) -> None:
    hostile = what_ran("<script>x</script> | `y`")
    write_night(tmp_path, [hostile, hostile, hostile])
    build_reports([tmp_path], tmp_path)
    assert "<script>" not in page(tmp_path)
    assert "<script>" not in summary(tmp_path)
    assert all(len(cells) == 9 for cells in table_rows(summary(tmp_path)).values())


def test_a_hostile_version_makes_no_link_html_or_cell_in_summary_md(tmp_path: Path) -> None:
    values = ["1.0 | <script>alert(1)</script>", "[x](javascript:alert(1))", "*a* _b_ ~~c~~ `d`"]
    write_night(tmp_path, [what_ran(v) for v in values])
    build_reports([tmp_path], tmp_path)
    cells = [cells[-1] for cells in table_rows(summary(tmp_path)).values()]
    assert len(cells) == 3
    assert all(len(row) == 9 for row in table_rows(summary(tmp_path)).values())
    for cell in cells:
        assert "<" not in cell  # no HTML, no autolink
        assert ">" not in cell
        # A link, an emphasis, a code span or a cell border starts at an unescaped character.
        assert not re.search(r"(?<!\\)[\[\]|*_~`]", cell), cell


def test_a_password_in_a_value_is_masked_in_every_report(tmp_path: Path) -> None:
    leaky = what_ran(packages={"mylib": "1.0 @ git+https://bot:hunter2secret@git.example/lib"})
    write_night(tmp_path, [leaky, leaky, leaky])
    build_reports([tmp_path], tmp_path)
    for name in ("summary.md", "report.html", "results.json", "junit.xml"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "hunter2secret" not in text, name
    assert "https://bot:••••••@git.example/lib" in page(tmp_path)


# --------------------------------------------------------------------------------------------
# JUnit properties


def suite_properties(junit: Path) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    root = parse_junit(junit).root
    assert root is not None
    for suite in root.iter("testsuite"):
        props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
        found[props["stackmatrix.variant"]] = props
    return found


def test_merged_junit_suites_carry_the_provenance(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), what_ran("15.8"), None])
    build_reports([tmp_path], tmp_path)
    props = suite_properties(tmp_path / "junit.xml")
    first = props["postgres-17_redis-7"]
    assert first["stackmatrix.provenance.service.db.image"] == "local/pg:17"
    assert first["stackmatrix.provenance.service.db.image_id"] == PG17
    assert first["stackmatrix.provenance.service.db.version"] == "17.2"
    assert first["stackmatrix.provenance.service.db.version_source"] == "postgres"
    assert first["stackmatrix.provenance.service.cache.digest"] == f"local/redis@{REDIS}"
    assert first["stackmatrix.provenance.python"] == "3.11.2"
    assert first["stackmatrix.provenance.package.psycopg"] == "3.2.1"
    assert "stackmatrix.provenance.service.db.digest" not in first  # unknown values are left out
    assert props["postgres-15_redis-7"]["stackmatrix.provenance.service.db.version"] == "15.8"
    assert not any(k.startswith("stackmatrix.provenance.") for k in props["postgres-13_redis-7"])


def test_junit_package_properties_are_bounded(tmp_path: Path) -> None:
    many = what_ran(packages={f"package-{n}": "1.0" for n in range(250)})
    write_night(tmp_path, [many, None, None])
    build_reports([tmp_path], tmp_path)
    first = suite_properties(tmp_path / "junit.xml")["postgres-17_redis-7"]
    packages = [k for k in first if k.startswith("stackmatrix.provenance.package.")]
    assert len(packages) == 200  # as many as a variant keeps
    assert first["stackmatrix.provenance.packages_left_out"] == "50"


# --------------------------------------------------------------------------------------------
# results.json, and reading it back


def test_results_json_keeps_each_variants_provenance(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), what_ran("15.8"), None])
    build_reports([tmp_path], tmp_path)
    rows = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["variants"]
    assert rows[0]["provenance"]["services"]["db"] == {
        "image": "local/pg:17",
        "image_id": PG17,
        "digest": "",
        "version": "17.2",
        "version_source": "postgres",
    }
    assert rows[0]["provenance"]["python"] == "3.11.2"
    assert "provenance" not in rows[2]  # recorded nothing
    snapshot = load_baseline(tmp_path / "results.json")
    assert snapshot.variants[0].provenance == what_ran()
    assert snapshot.variants[1].provenance == what_ran("15.8")
    assert not snapshot.variants[2].provenance


def test_an_older_results_json_without_provenance_is_still_a_baseline(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write_night(one, [None, None, None])
    build_reports([one], one)
    document = json.loads((one / "results.json").read_text(encoding="utf-8"))
    assert all("provenance" not in row for row in document["variants"])
    (one / "run.json").unlink()  # only results.json is left to read
    write_night(two, [what_ran(), what_ran(), what_ran()], failing=True)
    paths = build_reports([two], two, baseline=one)
    assert paths.comparison is not None
    text = summary(two)
    assert "- `postgres-17_redis-7` · `t::b`: passed → failed · boom" in text
    assert "since the baseline" not in text  # nothing to compare with: no change claimed
    assert "no change of outcome" not in text


def test_a_malformed_provenance_in_results_json_names_where(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), None, None])
    build_reports([tmp_path], tmp_path)
    path = tmp_path / "results.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["variants"][0]["provenance"] = {"services": ["db"]}
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ReportError, match=r"variants\[0\]: provenance 'services' must map"):
        load_baseline(path)


def test_a_merged_junit_baseline_keeps_the_provenance(tmp_path: Path) -> None:
    write_night(tmp_path, [what_ran(), None, None])
    build_reports([tmp_path], tmp_path)
    snapshot = load_baseline(tmp_path / "junit.xml")
    assert snapshot.variants[0].provenance == what_ran()
    assert not snapshot.variants[1].provenance


# --------------------------------------------------------------------------------------------
# The baseline names what changed


def test_a_regression_names_the_version_change_on_its_line(tmp_path: Path) -> None:
    _, two = nights(
        tmp_path,
        [what_ran("17.1"), what_ran("15.8"), what_ran("13.16")],
        [what_ran("17.2"), what_ran("15.8"), what_ran("13.16")],
    )
    text = summary(two)
    assert (
        "- 🔴 regression on `postgres-17_redis-7`: 1 test; db postgres 17.1 → 17.2 since the"
        " baseline" in text
    )
    assert "no change of outcome" not in text
    html = page(two)
    assert (
        '<span class="badge regression">regression on</span> <a href="#variant-postgres-17_'
        'redis-7">postgres-17_redis-7</a>: 1 test; db postgres 17.1 → 17.2 since the baseline'
    ) in html


def test_a_regression_on_the_same_stack_says_so(tmp_path: Path) -> None:
    same = [what_ran(), what_ran("15.8"), what_ran("13.16")]
    _, two = nights(tmp_path, same, same)
    assert (
        "- 🔴 regression on `postgres-17_redis-7`: 1 test; the same images and versions as the"
        " baseline" in summary(two)
    )


def test_an_upgrade_that_broke_nothing_is_listed_quietly(tmp_path: Path) -> None:
    _, two = nights(
        tmp_path,
        [what_ran("17.2", "7.0.14"), what_ran("15.8", "7.0.14"), what_ran("13.16", "7.0.14")],
        [what_ran("17.2", "7.0.15"), what_ran("15.8", "7.0.15"), what_ran("13.16", "7.0.14")],
        failing_now=False,
    )
    text = summary(two)
    assert "Versions changed with no change of outcome:" in text
    assert re.search(
        r"^- cache redis 7\.0\.14 → 7\.0\.15 on postgres-17\\_redis-7, postgres-15\\_redis-7"
        r" \\\(2 variants\\\)$",
        text,
        re.MULTILINE,
    ), text
    html = page(two)
    assert "Versions changed with no change of outcome:</p>" in html
    assert "<li>cache redis 7.0.14 → 7.0.15 on postgres-17_redis-7, postgres-15_redis-7 (2" in html


def test_quiet_changes_name_an_axis_value_when_its_variants_all_changed(tmp_path: Path) -> None:
    before = [what_ran(pg, "7.0.14") for pg in ("17.2", "15.8", "13.16")]
    after = [what_ran(pg, "7.0.15") for pg in ("17.2", "15.8", "13.16")]
    _, two = nights(tmp_path, before, after, failing_now=False)
    assert "- cache redis 7.0.14 → 7.0.15 on every variant \\(3\\)" in summary(two)


def test_a_rebuilt_image_of_the_same_version_is_an_image_change(tmp_path: Path) -> None:
    _, two = nights(
        tmp_path,
        [what_ran(), what_ran("15.8"), what_ran("13.16")],
        [what_ran(pg_id=PG17_REBUILT), what_ran("15.8"), what_ran("13.16", python="3.12.1")],
    )
    text = summary(two)
    assert (
        "regression on `postgres-17_redis-7`: 1 test; db image sha256:1a2b3c4d5e6f →"
        " sha256:9f8e7d6c5b4a since the baseline" in text
    )
    assert "Versions changed with no change of outcome:" in text
    assert "- python 3.11.2 → 3.12.1 on `postgres-13_redis-7`" in text
    rows = json.loads((two / "results.json").read_text(encoding="utf-8"))["variants"]
    assert rows[0]["provenance_changes"] == [
        {
            "subject": "db",
            "aspect": "image",
            "before": PG17,
            "after": PG17_REBUILT,
            "text": "db image sha256:1a2b3c4d5e6f → sha256:9f8e7d6c5b4a",
        }
    ]
    assert rows[1]["provenance_changes"] == []


def test_a_baseline_without_provenance_claims_no_change(tmp_path: Path) -> None:
    _, two = nights(tmp_path, [None, None, None], [what_ran(), what_ran(), what_ran()])
    text = summary(two)
    assert "🔴 regressions: 1 variant, 1 test on 1 variant" in text
    assert "since the baseline" not in text
    assert "the same images and versions" not in text
    assert "no change of outcome" not in text
    rows = json.loads((two / "results.json").read_text(encoding="utf-8"))["variants"]
    assert all("provenance_changes" not in row for row in rows)


def test_results_json_of_the_baseline_serves_the_comparison(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write_night(one, [what_ran("17.1"), what_ran("15.8"), what_ran("13.16")])
    build_reports([one], one)
    (one / "run.json").unlink()
    write_night(two, [what_ran("17.2"), what_ran("15.8"), what_ran("13.16")], failing=True)
    build_reports([two], two, baseline=one / "results.json")
    assert "1 test; db postgres 17.1 → 17.2 since the baseline" in summary(two)


def test_the_what_ran_column_keeps_a_large_variant_table_in_the_step_summary(
    tmp_path: Path,
) -> None:
    huge = what_ran(
        "17.2 (Debian 17.2-1.pgdg120+1) " + "x" * 5000,
        packages={f"package-{n}": "1.0.0" for n in range(60)},
    )
    plans = [
        Plan(f"variant-{n}", {"n": str(n)}, cases=[Case("t", "a")], extra={"provenance": huge})
        for n in range(300)
    ]
    write_run(tmp_path, plans)
    build_reports([tmp_path], tmp_path)
    markdown = summary(tmp_path)
    # A tenth of GitHub's budget: uncut, these cells alone would take ten times that.
    fitted = fit_step_summary(markdown, budget=STEP_SUMMARY_LIMIT // 10, where="here")
    assert len(table_rows(fitted)) == 300  # every row of the variant table stays
    assert all(len(row[-1]) <= 2 * MAX_TEXT_CHARS for row in table_rows(fitted).values())
