"""What a person sees while a run goes: a live board on a terminal, plain lines in CI.

Under a CI provider each finished variant prints as one block of its kind (a ``::group::``
under GitHub Actions); elsewhere a
finished variant prints as one block too, never interleaved with another variant's lines.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from stackmatrix.ci.provider import Provider, detect
from stackmatrix.format import format_duration
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import RunJournal, VariantResult

DETAIL_LINES = 40


class Console:
    """Thread-safe progress output for a run."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        provider: Provider | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.provider = detect() if provider is None else provider
        is_tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        in_ci = self.provider.name != "plain" or os.environ.get("CI") is not None
        self.live = (is_tty and not in_ci) if live is None else live
        self.colour = self.live and "NO_COLOR" not in os.environ
        self._lock = threading.RLock()
        self._order: list[str] = []
        self._phase: dict[str, str] = {}
        self._since: dict[str, float] = {}
        self._result: dict[str, VariantResult] = {}
        self._board_lines = 0
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- events ---------------------------------------------------------------------------

    def start(self, variants: Sequence[Variant], *, run_dir: Path, jobs: int) -> None:
        """A run begins."""
        with self._lock:
            self._order = [v.id for v in variants]
            self._write(f"stackmatrix: {len(variants)} variant(s), {jobs} at a time -> {run_dir}\n")
            if self.live:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()

    def phase(self, variant_id: str, phase: str) -> None:
        """A variant enters a phase."""
        with self._lock:
            self._since.setdefault(variant_id, time.monotonic())
            self._phase[variant_id] = phase
            if not self.live and not self.provider.folds_blocks:
                self._write(f"  {variant_id}: {phase}\n")
            self._redraw()

    def finished(self, result: VariantResult) -> None:
        """A variant is done: print its block."""
        with self._lock:
            self._result[result.id] = result
            self._clear_board()
            self._write(self._block(result))
            self._redraw()

    def note(self, text: str) -> None:
        """A one-line message (signals, fail-fast)."""
        with self._lock:
            self._clear_board()
            self._write(f"stackmatrix: {text}\n")
            self._redraw()

    def done(self, journal: RunJournal, run_dir: Path) -> None:
        """The run is over: the final table and where the reports are."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear_board()
            self._write("\n" + self._summary(journal, run_dir) + "\n")
            for name in ("summary.md", "report.html", "junit.xml"):
                if (run_dir / name).exists():
                    self._write(f"{name:<12} {run_dir / name}\n")
            self._write(f"{'run.json':<12} {run_dir / 'run.json'}\n")
            self._write(f"exit code {journal.exit_code}\n")

    # -- rendering ------------------------------------------------------------------------

    @staticmethod
    def _summary(journal: RunJournal, run_dir: Path) -> str:
        """The reports' plain-text summary (table and failures), else a bare table."""
        from stackmatrix.report.build import summary_text  # noqa: PLC0415 - loaded during the run

        try:
            return summary_text([run_dir]).rstrip()
        except Exception:
            return results_table(journal.variants)

    def _block(self, result: VariantResult) -> str:
        # With the report's other words (their enums come with the report modules, loaded
        # during the run): not before the first stack.
        from stackmatrix.report.symbols import STATUS  # noqa: PLC0415

        counts = result.tests
        mark = f"{STATUS[result.status].mark:<8}"
        if self.colour:
            mark = f"\x1b[{STATUS[result.status].colour}m{mark}\x1b[0m"
        head = (
            f"{mark} {result.id}  "
            f"{counts.passed} passed, {counts.failed} failed, {counts.errors} errors, "
            f"{counts.skipped} skipped  in {format_duration(result.duration)}"
        )
        lines = []
        if result.attempt_statuses:
            earlier = ", ".join(result.attempt_statuses)
            flaky = " - flaky" if result.flaky else ""
            lines.append(f"  attempts: {result.attempts} (earlier: {earlier}){flaky}")
        if result.reason:
            lines.append(f"  reason: {result.reason}")
        if result.detail:
            detail = result.detail.splitlines()[-DETAIL_LINES:]
            lines.extend("  | " + line for line in detail)
        if result.phases:
            lines.append(
                "  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.phases.items())
            )
        return self.provider.block(head, lines)

    def _board(self) -> list[str]:
        now = time.monotonic()
        rows = []
        for vid in self._order:
            if vid in self._result:
                continue
            phase = self._phase.get(vid)
            if phase is None:
                rows.append(f"  {'queued':<8} {vid}")
            else:
                rows.append(f"  {phase:<8} {vid}  {format_duration(now - self._since[vid])}")
        return rows

    def _redraw(self) -> None:
        if not self.live:
            return
        self._clear_board()
        rows = self._board()
        self._write("".join(f"{row}\n" for row in rows))
        self._board_lines = len(rows)

    def _clear_board(self) -> None:
        if self.live and self._board_lines:
            self._write(f"\x1b[{self._board_lines}F\x1b[J")
            self._board_lines = 0

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._redraw()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def results_table(results: Sequence[VariantResult]) -> str:
    """A plain aligned table: variant, status, tests, duration."""
    header = ("variant", "status", "passed", "failed", "errors", "skipped", "time")
    rows = [
        (
            r.id,
            r.status.value,
            str(r.tests.passed),
            str(r.tests.failed),
            str(r.tests.errors),
            str(r.tests.skipped),
            format_duration(r.duration),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
