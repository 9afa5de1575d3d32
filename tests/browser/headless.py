"""Headless Chromium for the browser tests: finding it, and running it on a page."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_chromium() -> str:
    """Debian's chromium; a skip when it is missing, except under CI=true where it fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message}; the browser test must run under CI=true")
        pytest.skip(message)
    return found


def run_chromium(
    chromium: str, profile: Path, args: Sequence[str]
) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, offline and with a profile of its own, on *args*."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--hide-scrollbars",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
