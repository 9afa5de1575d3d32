"""Fixtures of the browser tests."""

from __future__ import annotations

import pytest

from tests.browser.headless import find_chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    """The chromium binary (see :func:`find_chromium`)."""
    return find_chromium()
