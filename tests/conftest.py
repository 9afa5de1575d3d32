"""Fixtures for every test: a test may not leave environment changes behind."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def _environ() -> dict[str, str]:
    # pytest itself maintains PYTEST_CURRENT_TEST while a test runs.
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


@pytest.fixture(autouse=True)
def _environment_unchanged() -> Iterator[None]:
    """Fail a test that changes os.environ without restoring it (use monkeypatch)."""
    before = _environ()
    yield
    after = _environ()
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        for key in after.keys() - before.keys():
            del os.environ[key]
        os.environ.update(before)
        pytest.fail(f"test changed environment variables and left them: {', '.join(changed)}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder, so `-m 'not integration'` works without decorators."""
    for item in items:
        parts = item.path.parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "browser" in parts:
            item.add_marker(pytest.mark.browser)
