"""The section of report.html comparing peak resources across variants: the chart, and the
same numbers as a table, which stands alone when the chart cannot be drawn."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stackmatrix.format import format_bytes
from stackmatrix.report import plots
from stackmatrix.report.build import load_runs
from stackmatrix.report.comparison import (
    SECTION_ID,
    comparison_section,
    exact_number,
    format_percent,
)
from stackmatrix.report.model import VariantReport, read_stats
from stackmatrix.report.plots import HOST_COLOUR, report_styles
from stackmatrix.results.journal import Status, VariantResult
from stackmatrix.results.stats import HOST_SERVICE
from tests.unit.report.sample_run import build_sample_run

MIB = 2**20


def _variant(
    tmp_path: Path, variant: str, peaks: Mapping[str, tuple[float, int]] | None
) -> VariantReport:
    """A variant whose stats.json records these (CPU %, memory bytes) peaks; None: no samples."""
    if peaks is None:
        result = VariantResult(id=variant, values={}, status=Status.ERROR)
        return VariantReport(result, tmp_path, "run", stats_problem="the stack never came up")
    raw = {
        "interval": 1.0,
        "samples": [
            {
                "t": float(t),
                "containers": {
                    s: {"cpu_percent": c / (t + 1), "memory_bytes": m // (t + 1)}
                    for s, (c, m) in peaks.items()
                },
            }
            for t in range(3)
        ],
        "peaks": {s: {"cpu_percent": c, "memory_bytes": m} for s, (c, m) in peaks.items()},
    }
    stats_file = tmp_path / variant / "stats.json"
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    stats_file.write_text(json.dumps(raw), encoding="utf-8")
    stats, problem = read_stats(stats_file)
    result = VariantResult(
        id=variant, values={}, status=Status.PASSED, stats=f"{variant}/stats.json"
    )
    return VariantReport(result, tmp_path, "run", stats=stats, stats_problem=problem)


class _Table(HTMLParser):
    """The rows of the peaks table as a reader sees them: each cell's text and exact value."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[str, str | None]]] = []
        self._cell: list[str] | None = None
        self._value: str | None = None
        self._in_table = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "peaks") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th"):
            self._cell, self._value = [], dict(attrs).get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._value))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table(html: str) -> list[list[tuple[str, str | None]]]:
    parser = _Table()
    parser.feed(html)
    return parser.rows


def _variants(tmp_path: Path) -> list[VariantReport]:
    return [
        _variant(tmp_path, "pg-13", {"db": (81.25, 300 * MIB + 5), "cache": (4.5, 20 * MIB)}),
        _variant(tmp_path, "pg-15", {"db": (140.0, 3 * 2**30), HOST_SERVICE: (60.0, 90 * MIB)}),
        _variant(tmp_path, "pg-17", None),
    ]


def _charts(html: str) -> list[str]:
    return [
        base64.b64decode(d).decode()
        for d in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    ]


def test_the_section_shows_the_chart_and_folds_its_numbers(tmp_path: Path) -> None:
    html = comparison_section(_variants(tmp_path))
    assert html.startswith(f'<section id="{SECTION_ID}"><h2>Peak resources per variant</h2>')
    assert html.endswith("</section>")
    (chart,) = _charts(html)
    # Its own class: counting the plots of the variants (img.plot) does not count it.
    assert (
        '<figure><img class="plot peaks" alt="Peak CPU and memory per variant and service"' in html
    )
    assert '<img class="plot"' not in html
    assert "Peak CPU" in chart
    assert "Peak memory (MiB)" in chart
    assert (
        '<details><summary>numbers</summary><div style="overflow-x:auto"><table class="peaks">'
        in html
    )
    rows = _table(html)
    assert [text for text, _ in rows[0]] == ["variant", "cache", "db", HOST_SERVICE]
    assert [text for text, _ in rows[1]] == ["CPU", "memory"] * 3
    assert rows[2] == [
        ("pg-13", None),
        ("4.5%", "4.5"),
        (format_bytes(20 * MIB), str(20 * MIB)),
        ("81.2%", "81.25"),
        (format_bytes(300 * MIB + 5), str(300 * MIB + 5)),
        ("-", None),
        ("-", None),
    ]
    assert rows[3] == [
        ("pg-15", None),
        ("-", None),
        ("-", None),
        ("140.0%", "140"),
        ("3.0 GiB", str(3 * 2**30)),
        ("60.0%", "60"),
        ("90 MiB", str(90 * MIB)),
    ]
    assert rows[4] == [("pg-17", None), ("the stack never came up", None)]


def test_the_table_numbers_are_the_stats_json_peaks_of_the_sample_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    build_sample_run(run)
    report = load_runs([run])
    rows = _table(comparison_section(report.variants))[2:]
    assert [row[0][0] for row in rows] == [v.id for v in report.variants]
    services = ["cache", "db"]
    for v, row in zip(report.variants, rows, strict=True):
        if v.result.stats is None:
            assert row[1][0] == v.stats_problem
            continue
        peaks = json.loads((run / v.result.stats).read_text(encoding="utf-8"))["peaks"]
        for k, service in enumerate(services):
            cpu, memory = row[1 + 2 * k], row[2 + 2 * k]
            if service not in peaks:
                assert cpu == memory == ("-", None)
                continue
            assert cpu == (
                format_percent(peaks[service]["cpu_percent"]),
                exact_number(float(peaks[service]["cpu_percent"])),
            )
            assert memory == (
                format_bytes(peaks[service]["memory_bytes"]),
                exact_number(float(peaks[service]["memory_bytes"])),
            )


def test_when_the_chart_cannot_be_drawn_the_numbers_stand_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = _variants(tmp_path)
    drawn = comparison_section(variants)

    def broken(*_args: object) -> str:
        raise ValueError("no room for the bars")

    monkeypatch.setattr(plots, "_draw_comparison", broken)
    html = comparison_section(variants)
    assert _charts(html) == []
    assert '<p class="note">the chart could not be drawn: ValueError: no room for the bars' in html
    assert "<details>" not in html
    assert _table(html) == _table(drawn)


def test_without_samples_in_any_variant_the_section_says_so(tmp_path: Path) -> None:
    html = comparison_section([_variant(tmp_path, "pg-17", None)])
    assert html == (
        f'<section id="{SECTION_ID}"><h2>Peak resources per variant</h2>'
        '<p class="note">No variant recorded resource samples.</p></section>'
    )


def test_the_table_names_each_service_in_its_chart_colour(tmp_path: Path) -> None:
    variants = _variants(tmp_path)
    html = comparison_section(variants)
    styles = report_styles(variants)
    head = html.split("<thead>", 1)[1].split("</tr>", 1)[0]
    swatches = re.findall(r"background-color:(#[0-9a-f]{6});[^>]*></span>([^<]+)</th>", head)
    assert swatches == [(styles[s].colour, s) for s in ("cache", "db", HOST_SERVICE)]
    assert swatches[-1][0] == HOST_COLOUR


def test_names_from_the_run_are_escaped(tmp_path: Path) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    variants = [_variant(tmp_path, "pg-13", {hostile: (1.0, MIB)})]
    broken = VariantResult(id="v<script>", values={}, status=Status.ERROR)
    variants.append(VariantReport(broken, tmp_path, "run", stats_problem="<b>gone</b>"))
    html = comparison_section(variants)
    assert "<img src=x" not in html
    assert "<script>" not in html
    assert "<b>gone</b>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert [row[0][0] for row in _table(html)[2:]] == ["pg-13", "v<script>"]
