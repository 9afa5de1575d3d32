"""Matrix values: what an axis value may be, and the one way it becomes text."""

from __future__ import annotations

import re

Scalar = str | int | float | bool


def scalar_text(value: Scalar | None) -> str:
    """A matrix value as text, everywhere it becomes text (templates, environment variables,
    ids, names, JUnit properties, tables): booleans lowercase as YAML and GitHub Actions write
    them, numbers and strings as they are, and a missing value (None) as the empty string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def env_name(*parts: str) -> str:
    """``STACKMATRIX_DB_5432`` style names: upper case, anything else becomes ``_``."""
    return "_".join(
        re.sub(r"[^A-Z0-9]+", "_", p.upper()).strip("_") for p in ("stackmatrix", *parts)
    )
