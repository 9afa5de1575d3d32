"""report.html in a real headless Chromium: what a person opening the page sees.

Needs Debian's ``chromium``. Skipped when it is missing, except under CI=true where it fails.
Set STACKMATRIX_SCREENSHOT=PATH to keep the screenshot (docs/report.png is made that way).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from stackmatrix.report.build import build_reports
from tests.browser.headless import run_chromium
from tests.unit.report.sample_run import build_sample_run

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 2300
# Colours of report.html's grid cells (see _html._CSS).
FAIL_BACKGROUND = (0xFF, 0xEB, 0xE9)
PASS_BACKGROUND = (0xDA, 0xFB, 0xE1)
PLOT_LINE = (0x1F, 0x77, 0xB4)  # the palette's first colour: the resource plots


def _screenshot(chromium: str, page: Path, tmp_path: Path, height: int) -> Path:
    """A PNG of *page* in a WIDTH x *height* window."""
    shot = tmp_path / "page.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        [f"--screenshot={shot}", f"--window-size={WIDTH},{height}", page.as_uri()],
    )
    return shot


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "20260314-0926-a1b2"
    build_sample_run(run_dir)
    return build_reports([run_dir], run_dir).html


def test_browser_shows_grid_failures_and_plots(chromium: str, report: Path, tmp_path: Path) -> None:
    dom = run_chromium(chromium, tmp_path / "profile", ["--dump-dom", report.as_uri()]).stdout
    assert "<title>stackmatrix · shop</title>" in dom
    # The grid: the numeric test fails on postgres-13 only.
    row = dom.split("test_orders::test_order_total_uses_numeric</td>", 1)[1].split("</tr>", 1)[0]
    assert row.count('class="cell failed"') == 1
    assert row.count('class="cell passed"') == 3
    assert row.index("FAIL") < row.index("pass")
    # A failing test's message, readable in an unfolded <details>.
    assert "<details open=" in dom
    assert "AssertionError: assert Decimal('10.5') == 10.50" in dom
    assert "service db did not become healthy within 2m0s" in dom
    # Resource plots, one per variant with samples, as SVG images inside the page.
    assert dom.count('<img class="plot" alt="CPU and memory per service of ') == 4
    # ... and the chart comparing the variants' peaks.
    assert dom.count('src="data:image/svg+xml;base64,') == 5
    assert '<section id="resource-peaks">' in dom
    assert 'href="postgres-13_redis-off/logs/db.log"' in dom


def test_screenshot_shows_coloured_grid(chromium: str, report: Path, tmp_path: Path) -> None:
    shot = _screenshot(chromium, report, tmp_path, HEIGHT)
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        pixels = image.convert("RGB")
        # A grid row where a test failed on one variant and passed on others: red and green
        # cell backgrounds side by side on one line (badges elsewhere never share a line).
        mixed_rows = [
            y
            for y in range(HEIGHT)
            if {FAIL_BACKGROUND, PASS_BACKGROUND}
            <= {pixels.getpixel((x, y)) for x in range(0, WIDTH, 2)}
        ]
    assert len(mixed_rows) >= 30, "no grid row with a red cell beside green cells on screen"
    target = os.environ.get("STACKMATRIX_SCREENSHOT")
    if target:
        shutil.copy(shot, target)


def test_resource_plots_are_drawn_on_screen(chromium: str, report: Path, tmp_path: Path) -> None:
    height = 6000  # the whole page: the plots come last
    with Image.open(_screenshot(chromium, report, tmp_path, height)) as image:
        pixels = image.convert("RGB")
        plotted = [
            y
            for y in range(0, height, 2)
            if any(pixels.getpixel((x, y)) == PLOT_LINE for x in range(0, WIDTH, 2))
        ]
    # Four plots of about 300 px each: their lines and legends cover hundreds of pixel rows.
    assert len(plotted) >= 200, "the resource plots are not drawn"
