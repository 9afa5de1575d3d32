"""history.html in a real headless Chromium: the flaky rates and the counts they come from.

Seven nights built as run directories (see tests/unit/report/test_history.py; the real runs are
tests/integration/test_history.py), then `stackmatrix report --history` over them.
Needs Debian's ``chromium``. Skipped when it is missing, except under CI=true where it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from stackmatrix.cli.main import main
from tests.browser.headless import run_chromium
from tests.unit.report.test_history import seven_nights

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 1200
FAIL_BACKGROUND = (0xFF, 0xEB, 0xE9)  # history_html._CSS --fail-bg
PASS_BACKGROUND = (0xDA, 0xFB, 0xE1)  # --pass-bg


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nights")
    dirs = seven_nights(root / "runs")
    out = root / "report"
    saved = {k: os.environ.pop(k) for k in ("GITHUB_ACTIONS", "GITLAB_CI") if k in os.environ}
    try:
        code = main(["report", str(dirs[-1]), "--out", str(out), "--history", *map(str, dirs[:-1])])
    finally:
        os.environ.update(saved)
    assert code == 0
    return out / "history.html"


def _row(dom: str, test: str) -> str:
    return dom.split(f'<td class="test">{test}', 1)[1].split("</tr>", 1)[0]


def test_browser_shows_flaky_rates_and_counts(chromium: str, page: Path, tmp_path: Path) -> None:
    dom = run_chromium(chromium, tmp_path / "profile", ["--dump-dom", page.as_uri()]).stdout
    assert "<title>stackmatrix · history · shop</title>" in dom
    assert "7 nights, 2026-03-14 to 2026-03-20" in dom
    flaky = _row(dom, "t::test_flaky")
    assert '<td class="num rate">43%</td>' in flaky
    assert "failed 3 of 7 nights, 4 flips" in flaky
    assert flaky.count('class="cell fail"') == 3
    assert flaky.count('class="cell pass"') == 4
    broken = _row(dom, "t::test_broken")
    assert '<td class="num rate">29%</td>' in broken
    assert "failed 2 of 7 nights, 1 flip" in broken
    assert '<td class="since">2026-03-19 20260319-092000-0000000000000005</td>' in broken
    assert "postgres-17: db postgres 17.1 → 17.2" in dom
    assert "New failures since" in dom


def test_screenshot_shows_the_failing_nights_in_red(
    chromium: str, page: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "history.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        [f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()],
    )
    with Image.open(shot) as image:
        pixels = image.convert("RGB")
        mixed = [
            y
            for y in range(HEIGHT)
            if {FAIL_BACKGROUND, PASS_BACKGROUND}
            <= {pixels.getpixel((x, y)) for x in range(0, WIDTH, 2)}
        ]
    # Two rows of night cells, red beside green on each: tens of pixel lines.
    assert len(mixed) >= 20, "no row of red and green night cells on screen"
