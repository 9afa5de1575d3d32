"""How durations and sizes read everywhere: the terminal, summary.md and report.html."""

from __future__ import annotations


def format_duration(seconds: float | None) -> str:
    """``42.1s``, ``3m 05s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def format_bytes(count: float | None) -> str:
    """``312 MiB``; ``-`` when unknown."""
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
