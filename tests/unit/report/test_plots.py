"""Resource plots: one colour per service in every plot, whichever way it was drawn, and the
comparison chart of peaks per variant and service."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import count
from pathlib import Path
from xml.etree import ElementTree

import pytest

from stackmatrix.report.build import load_runs
from stackmatrix.report.model import VariantReport, read_stats
from stackmatrix.report.plots import (
    HOST_COLOUR,
    PALETTE,
    PLOT_NAME,
    ServicePeak,
    comparison_chart,
    keep_plot,
    kept_or_drawn,
    preferred_slot,
    report_styles,
    series_id,
    service_styles,
    short_label,
    variant_peaks,
)
from stackmatrix.results.journal import Status, VariantResult
from stackmatrix.results.stats import HOST_SERVICE
from tests.unit.report.sample_run import build_sample_run

MIB = 2**20


def _colliding_names() -> tuple[str, str]:
    """Two service names whose preferred palette slots are the same."""
    seen: dict[int, str] = {}
    for n in count():
        name = f"svc{n}"
        slot = preferred_slot(name)
        if slot in seen:
            return seen[slot], name
        seen[slot] = name
    raise AssertionError  # pragma: no cover - count() never ends


def _stats(peaks: Mapping[str, tuple[float, float]], seconds: int = 6) -> dict[str, object]:
    """A stats.json whose services rise to the given (CPU %, memory bytes) peaks."""
    samples = [
        {
            "t": float(t),
            "containers": {
                s: {"cpu_percent": cpu * (t + 1) / seconds, "memory_bytes": int(mem) - seconds + t}
                for s, (cpu, mem) in peaks.items()
            },
        }
        for t in range(seconds)
    ]
    recorded = {
        s: {"cpu_percent": cpu, "memory_bytes": int(mem) - 1} for s, (cpu, mem) in peaks.items()
    }
    return {"interval": 1.0, "samples": samples, "peaks": recorded}


def _variant(tmp_path: Path, variant: str, raw: Mapping[str, object] | None) -> VariantReport:
    """A variant whose stats.json holds *raw* (None: it recorded none)."""
    if raw is None:
        result = VariantResult(id=variant, values={}, status=Status.ERROR)
        return VariantReport(result, tmp_path, "run", stats_problem="no resource samples")
    stats_file = tmp_path / variant / "stats.json"
    stats_file.parent.mkdir(parents=True, exist_ok=True)
    stats_file.write_text(json.dumps(raw), encoding="utf-8")
    stats, problem = read_stats(stats_file)
    result = VariantResult(
        id=variant, values={}, status=Status.PASSED, stats=f"{variant}/stats.json"
    )
    return VariantReport(result, tmp_path, "run", stats=stats, stats_problem=problem)


def _line_colours(svg: str) -> dict[str, str]:
    """The stroke colour of each series in a plot, by element id."""
    found = re.findall(
        r'<g id="(series-[^"]+)">\s*<path [^>]*?style="[^"]*stroke: (#[0-9a-f]{6})', svg
    )
    return dict(found)


def _bar_lengths(svg: str, gid: str) -> list[float]:
    """The lengths of the bars in the SVG group *gid*, in the order drawn."""
    group = svg.split(f'<g id="{gid}">', 1)[1].split("</g>", 1)[0]
    lengths = []
    for path in re.findall(r'<path d="([^"]+)"', group):
        xs = [float(x) for x in re.findall(r"[ML] ([-\d.]+) [-\d.]+", path)]
        lengths.append(max(xs) - min(xs))
    return lengths


# --- the colour of a service ----------------------------------------------------------------


def test_a_service_keeps_its_preferred_colour_unless_another_took_it() -> None:
    first, second = _colliding_names()
    alone = service_styles([second])
    both = service_styles([second, first])  # the order given does not matter
    assert alone[second].colour == PALETTE[preferred_slot(second)]
    assert both[first].colour == PALETTE[preferred_slot(first)]  # first in sorted order
    assert both[second].colour == PALETTE[(preferred_slot(second) + 1) % len(PALETTE)]
    assert service_styles([first, second]) == both


def test_every_service_of_a_report_is_told_apart_up_to_eighteen() -> None:
    names = [f"service-{n}" for n in range(18)]
    styles = service_styles(names)
    assert len(set(styles.values())) == 18
    assert sum(style.dashed for style in styles.values()) == 18 - len(PALETTE)


def test_the_tests_host_processes_have_their_own_grey() -> None:
    names = ["db", "cache", HOST_SERVICE, *(f"svc{n}" for n in range(20))]
    styles = service_styles(names)
    assert styles[HOST_SERVICE].colour == HOST_COLOUR
    assert HOST_COLOUR not in PALETTE
    assert all(s.colour != HOST_COLOUR for name, s in styles.items() if name != HOST_SERVICE)
    assert list(styles)[-1] == HOST_SERVICE  # last in every legend


def test_a_variant_lacking_a_service_does_not_shift_the_others_colours(tmp_path: Path) -> None:
    first, second = _colliding_names()
    full = _variant(tmp_path, "full", _stats({first: (10, MIB), second: (20, 2 * MIB)}))
    lacking = _variant(tmp_path, "lacking", _stats({second: (30, 3 * MIB)}))
    styles = report_styles([full, lacking])
    assert styles[first] != styles[second]
    plots = {}
    for v in (full, lacking):
        assert v.stats is not None
        plots[v.id] = _line_colours(kept_or_drawn(v.stats, v.id, None, styles))
    assert plots["lacking"][series_id("cpu", second)] == styles[second].colour
    assert plots["lacking"][series_id("memory", second)] == styles[second].colour
    assert plots["full"][series_id("cpu", second)] == styles[second].colour
    assert plots["full"][series_id("cpu", first)] == styles[first].colour


def test_the_sample_run_plots_show_each_service_in_one_colour(tmp_path: Path) -> None:
    build_sample_run(tmp_path / "run")
    report = load_runs([tmp_path / "run"])
    styles = report_styles(report.variants)
    assert set(styles) == {"db", "cache"}
    seen: dict[str, set[str]] = {"db": set(), "cache": set()}
    for v in report.variants:
        if v.stats is None:
            continue
        colours = _line_colours(kept_or_drawn(v.stats, v.id, None, styles))
        for service in v.stats.services:
            seen[service] |= {colours[series_id("cpu", service)]}
            seen[service] |= {colours[series_id("memory", service)]}
    assert seen == {"db": {styles["db"].colour}, "cache": {styles["cache"].colour}}


def test_the_plot_kept_during_the_run_is_what_the_report_shows(tmp_path: Path) -> None:
    v = _variant(
        tmp_path, "v", _stats({"db": (10, MIB), "cache": (5, MIB), HOST_SERVICE: (1, MIB)})
    )
    assert v.stats is not None
    stats_file = tmp_path / "v" / "stats.json"
    kept = keep_plot(stats_file, v.id)  # the run's path: this variant alone
    assert kept == stats_file.with_name(PLOT_NAME)
    marked = kept.read_text(encoding="utf-8").replace(">Memory<", ">Kept memory<")
    kept.write_text(marked, encoding="utf-8")
    # The report's path, with the colours of a report whose other services collide with none.
    others = [
        n
        for n in (f"svc{k}" for k in range(200))
        if preferred_slot(n) not in {preferred_slot("db"), preferred_slot("cache")}
    ][:2]
    styles = service_styles(["db", "cache", HOST_SERVICE, *others])
    shown = kept_or_drawn(v.stats, v.id, kept, styles)
    assert ">Kept memory<" in shown
    colours = _line_colours(shown)
    assert colours[series_id("cpu", "db")] == styles["db"].colour
    assert colours[series_id("cpu", HOST_SERVICE)] == HOST_COLOUR


def test_a_kept_plot_in_other_colours_than_the_reports_is_drawn_again(tmp_path: Path) -> None:
    first, second = _colliding_names()
    v = _variant(tmp_path, "v", _stats({second: (10, MIB)}))
    assert v.stats is not None
    kept = keep_plot(tmp_path / "v" / "stats.json", v.id)
    assert kept is not None
    alone = _line_colours(kept.read_text(encoding="utf-8"))
    assert alone[series_id("cpu", second)] == PALETTE[preferred_slot(second)]
    styles = service_styles([first, second])  # another variant of the report has *first*
    shown = _line_colours(kept_or_drawn(v.stats, v.id, kept, styles))
    assert shown[series_id("cpu", second)] == styles[second].colour
    assert shown[series_id("cpu", second)] != alone[series_id("cpu", second)]


# --- the comparison chart -------------------------------------------------------------------


def _three_variants(tmp_path: Path) -> list[VariantReport]:
    return [
        _variant(tmp_path, "pg-13", _stats({"db": (80, 300 * MIB), "cache": (5, 20 * MIB)})),
        _variant(tmp_path, "pg-15", _stats({"db": (140, 420 * MIB), HOST_SERVICE: (60, 90 * MIB)})),
        _variant(tmp_path, "pg-17", None),
    ]


def test_the_peaks_are_those_stats_json_records(tmp_path: Path) -> None:
    variants = _three_variants(tmp_path)
    peaks = variant_peaks(variants)
    assert [p.variant for p in peaks] == ["pg-13", "pg-15", "pg-17"]
    for v, found in zip(variants[:2], peaks[:2], strict=True):
        raw = json.loads((tmp_path / v.id / "stats.json").read_text(encoding="utf-8"))["peaks"]
        assert found.peaks == {
            s: ServicePeak(raw[s]["cpu_percent"], raw[s]["memory_bytes"]) for s in raw
        }
    assert peaks[2].peaks == {}
    assert peaks[2].problem == "no resource samples"


def test_without_recorded_peaks_the_highest_sample_counts(tmp_path: Path) -> None:
    raw = _stats({"db": (40, 100 * MIB)})
    del raw["peaks"]
    (found,) = variant_peaks([_variant(tmp_path, "v", raw)])
    assert found.peaks == {"db": ServicePeak(40.0, 100 * MIB - 1)}


def test_the_chart_draws_every_peak_to_scale(tmp_path: Path) -> None:
    variants = _three_variants(tmp_path)
    svg = comparison_chart(variants)
    assert svg is not None
    assert svg.lstrip().startswith("<?xml")
    services = ["cache", "db", HOST_SERVICE]  # sorted, the host last: the legend's order
    peaks = variant_peaks(variants)
    for key, unit in (("cpu_percent", 1.0), ("memory_bytes", MIB)):
        drawn: list[float] = []
        expected: list[float] = []
        for j, service in enumerate(services):
            values = [getattr(p.peaks[service], key) / unit for p in peaks if service in p.peaks]
            lengths = _bar_lengths(svg, f"peak-{key}-{j}")
            assert len(lengths) == len(values), (key, service)
            drawn += lengths
            expected += values
        scale = drawn[0] / expected[0]
        assert drawn == pytest.approx([e * scale for e in expected], rel=1e-3)
    for text in ("pg-13", "pg-15", "pg-17", "no resource samples", *services[:2], "tests (host)"):
        assert f">{text}<" in svg or f"> {text}<" in svg, text


def test_the_chart_bars_are_in_the_services_colours(tmp_path: Path) -> None:
    variants = _three_variants(tmp_path)
    svg = comparison_chart(variants)
    assert svg is not None
    styles = report_styles(variants)
    for j, service in enumerate(["cache", "db", HOST_SERVICE]):
        group = svg.split(f'<g id="peak-cpu_percent-{j}">', 1)[1].split("</g>", 1)[0]
        assert set(re.findall(r"fill: (#[0-9a-f]{6})", group)) == {styles[service].colour}


def test_no_chart_without_samples(tmp_path: Path) -> None:
    assert comparison_chart([_variant(tmp_path, "v", None)]) is None
    assert comparison_chart([]) is None


def test_a_chart_of_fifty_variants_with_long_ids_names_each_readably(tmp_path: Path) -> None:
    long = "_".join(f"axis{n}-value{n}" for n in range(8))
    variants = [
        _variant(
            tmp_path, f"{long}_n{i}", _stats({f"s{j}": (10 + i, (50 + j) * MIB) for j in range(4)})
        )
        for i in range(50)
    ]
    svg = comparison_chart(variants)
    assert svg is not None
    labels = [short_label(v.id) for v in variants]
    assert len(set(labels)) == 50  # both ends kept: the last axes tell the variants apart
    assert all(len(label) <= 48 for label in labels)
    assert all(f">{label}<" in svg for label in labels)
    height = float(re.search(r'<svg [^>]*height="([\d.]+)pt"', svg).group(1))  # type: ignore[union-attr]
    assert 50 * 14 < height < 50 * 30  # a band of 4 bars per variant, a few points each


@pytest.mark.parametrize(
    ("variant", "shown"),
    [
        ("postgres-15_redis-on", "postgres-15_redis-on"),
        ("a" * 30 + "_" + "z" * 30, "a" * 23 + "…" + "z" * 24),
    ],
)
def test_long_variant_ids_are_shortened_in_the_middle(variant: str, shown: str) -> None:
    assert short_label(variant) == shown


def test_a_long_service_name_widens_the_plot_to_fit_the_legend(tmp_path: Path) -> None:
    long = "payments-ledger-replica-with-a-long-name"
    v = _variant(tmp_path, "v", _stats({"db": (10, MIB), long: (5, MIB)}))
    assert v.stats is not None
    plain = _variant(tmp_path, "w", _stats({"db": (10, MIB)}))
    assert plain.stats is not None

    def width(svg: str) -> float:
        return float(re.search(r'<svg [^>]*width="([\d.]+)pt"', svg).group(1))  # type: ignore[union-attr]

    svg = kept_or_drawn(v.stats, v.id, None)
    assert width(kept_or_drawn(plain.stats, plain.id, None)) == 720  # ten inches, as a rule
    legend_x = float(re.findall(rf'<text x="([\d.]+)"[^>]*>{long}<', svg)[0])
    assert width(svg) >= legend_x + len(long) * 9 * 0.6  # room for the whole name
    assert f">{long}<" in svg


def _xml(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg.encode())  # noqa: S314 - our own output


def test_a_flat_line_at_a_round_value_stays_inside_the_frame(tmp_path: Path) -> None:
    raw = {"interval": 1.0, "samples": [
        {"t": float(t), "containers": {"db": {"cpu_percent": 100.0, "memory_bytes": 10 * MIB}}}
        for t in range(5)
    ]}  # fmt: skip
    v = _variant(tmp_path, "v", raw)
    assert v.stats is not None
    svg = kept_or_drawn(v.stats, v.id, None)
    group = svg.split(f'<g id="{series_id("cpu", "db")}">', 1)[1].split("</g>", 1)[0]
    ys = {float(y) for y in re.findall(r"[ML] [-\d.]+ ([-\d.]+)", group)}
    assert len(ys) == 1
    assert ys.pop() > 25.92 + 3  # the frame's top edge: 100 % is drawn below it, not on it


def test_the_charts_legend_fits_its_width_with_many_long_names(tmp_path: Path) -> None:
    names = [f"service-{i}" for i in range(19)] + ["payments-ledger-replica-with-a-long-name"]
    variants = [_variant(tmp_path, "v", _stats(dict.fromkeys(names, (10, MIB))))]
    svg = comparison_chart(variants)
    assert svg is not None
    width = float(re.search(r'<svg [^>]*width="([\d.]+)pt"', svg).group(1))  # type: ignore[union-attr]
    for name in names:
        x = float(re.findall(rf'<text x="([\d.]+)"[^>]*>{name}<', svg)[0])
        assert x + len(name) * 8 * 0.6 <= width, name  # every entry inside the chart


def test_a_long_legend_makes_the_plot_taller(tmp_path: Path) -> None:
    v = _variant(tmp_path, "v", _stats({f"s{i:02}": (10, MIB) for i in range(24)}))
    assert v.stats is not None
    svg = kept_or_drawn(v.stats, v.id, None)
    height = float(_xml(svg).attrib["height"].removesuffix("pt"))
    last = max(float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>s\d\d<', svg))
    assert last < height


def test_control_characters_in_a_name_leave_the_svg_readable(tmp_path: Path) -> None:
    v = _variant(tmp_path, "v", _stats({"db\x01\x1b[31m": (10, MIB)}))
    assert v.stats is not None
    assert _xml(kept_or_drawn(v.stats, v.id, None)) is not None
    chart = comparison_chart([v])
    assert chart is not None
    assert ">db[31m<" in chart
