"""GitHub Actions: where it is detected, how output is grouped, the step summary (kept under
GitHub's 1 MiB) and the ``::error`` / ``::warning`` workflow commands (annotations) of a run's
failures (at most 10 of each a step, as GitHub shows).

The matrix JSON for ``strategy.matrix`` is :mod:`stackmatrix.ci.github_matrix`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stackmatrix.format import format_bytes

if TYPE_CHECKING:
    from stackmatrix.report.model import RunReport


@dataclass(frozen=True)
class GitHubActions:
    """The GitHub Actions runner, read from its environment variables."""

    environ: Mapping[str, str]
    name: str = "github"
    folds_blocks: bool = True

    @staticmethod
    def detected(environ: Mapping[str, str]) -> bool:
        """Whether this process runs in a GitHub Actions job."""
        return environ.get("GITHUB_ACTIONS") == "true"

    def block(self, head: str, lines: Sequence[str]) -> str:
        """One folded ``::group::`` in the job's log."""
        return f"::group::{head}\n" + "".join(f"{line}\n" for line in lines) + "::endgroup::\n"

    def step_summary(self) -> Path | None:
        """The job's step summary file (``$GITHUB_STEP_SUMMARY``)."""
        path = self.environ.get("GITHUB_STEP_SUMMARY")
        return Path(path) if path else None

    def publish_summary(self, markdown: str, *, report: Path) -> Path | None:
        """Append *markdown* to the step summary, cut to what GitHub takes (1 MiB a step, less
        what the step wrote there before) with a line naming *report* (the full report's folder),
        the artifact it is uploaded as and this run's page. Returns the file written, if any."""
        path = self.step_summary()
        if path is None:
            return None
        try:
            used = path.stat().st_size
        except OSError:
            used = 0
        budget = STEP_SUMMARY_LIMIT - used
        if budget <= _MIN_SUMMARY:
            return None
        text = fit_step_summary(markdown, budget=budget, where=self.full_report_place(report))
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def full_report_place(self, report: Path) -> str:
        """Where a reader finds the full report: the artifact (``$STACKMATRIX_REPORT_ARTIFACT``,
        set by the reusable workflow) of this run, else the folder on the runner."""
        artifact = self.environ.get("STACKMATRIX_REPORT_ARTIFACT")
        server = self.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = self.environ.get("GITHUB_REPOSITORY")
        run_id = self.environ.get("GITHUB_RUN_ID")
        page = f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else ""
        if artifact:
            return f"in the artifact `{artifact}`" + (f" of {page}" if page else "")
        return f"in `{report}` on the runner" + (f" ({page})" if page else "")

    def annotations(self, report: RunReport) -> list[str]:
        """Workflow commands for the failures of *report*, paths relative to the workspace."""
        # The failure groups and their wording come with the report, at the end of a run:
        # not at its start, where every import delays the first stack.
        from stackmatrix.ci.github_annotations import workflow_commands  # noqa: PLC0415

        workspace = self.environ.get("GITHUB_WORKSPACE")
        return workflow_commands(report, workspace=Path(workspace) if workspace else None)


STEP_SUMMARY_LIMIT = 1024 * 1024
"""GitHub refuses a step summary above 1 MiB (and shows none of it)."""

_MIN_SUMMARY = 4096  # less room than this left in the step's summary: write none
_NOTE_ROOM = 400  # bytes kept free for each "left out here" line and the closing line
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
_MORE = re.compile(r"^- \.\.\. and \d+ more\b")  # a list's own count of what it left out


@dataclass
class _Section:
    """The lines from one heading to the next; ``entries`` (table rows, list items) may go."""

    heading: str
    lines: list[str]
    entries: list[int]
    primary: bool  # holds the variant table: kept before any other entry

    def kept_lines(self, keep: int) -> tuple[list[str], int]:
        """The lines with only the first *keep* entries, a note where the others were, and how
        many entries went."""
        gone = self.entries[keep:]
        if not gone:
            return self.lines, 0
        dropped = set(gone)
        out: list[str] = []
        after_note = False
        for index, line in enumerate(self.lines):
            if index == gone[0]:
                out += ["", f"_✂️ {len(gone)} more left out here (see the full report)._"]
                after_note = True
            if index in dropped:
                continue
            if after_note and line.strip():
                out.append("")  # the note is a paragraph of its own
            after_note = False
            out.append(line)
        return out, len(gone)


def _sections(markdown: str) -> list[_Section]:
    sections: list[_Section] = []
    current = _Section("", [], [], primary=False)
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("#"):
            sections.append(current)
            current = _Section(line.lstrip("#").strip(), [], [], primary=False)
            in_table = False
        if line.startswith("|") and _SEPARATOR.match(line):
            in_table = True
            if current.lines and current.lines[-1].startswith("| Variant |"):
                current.primary = True
        elif (line.startswith("|") and in_table) or (
            line.startswith("- ") and not _MORE.match(line)
        ):
            current.entries.append(len(current.lines))
        elif not line.startswith("|"):
            in_table = False
        current.lines.append(line)
    sections.append(current)
    return [section for section in sections if section.lines]


def _size(line: str) -> int:
    return len(line.encode("utf-8")) + 1


def fit_step_summary(markdown: str, *, budget: int, where: str) -> str:
    """*markdown* as it is when it takes at most *budget* bytes (UTF-8); else cut section by
    section: the variant table kept whole while it fits, then the rows of the other tables (the
    grid) and the list entries (failures) taken in turn from each section until the budget is
    spent; each cut marked where it is, and a closing line saying how much was left out and
    where the full report is (*where*)."""
    if len(markdown.encode("utf-8")) <= budget:
        return markdown
    sections = _sections(markdown)
    fixed = sum(
        _size(line)
        for section in sections
        for index, line in enumerate(section.lines)
        if index not in set(section.entries)
    )
    room = budget - fixed - _NOTE_ROOM * (1 + sum(1 for s in sections if s.entries))
    if room < 0:
        return _cut_lines(markdown, budget, where)
    keep = [0] * len(sections)
    for order in (True, False):  # the variant table first, then every other section in turn
        active = [n for n, s in enumerate(sections) if s.primary is order and s.entries]
        while active:
            still = []
            for n in active:
                section = sections[n]
                cost = _size(section.lines[section.entries[keep[n]]])
                if cost <= room:
                    room -= cost
                    keep[n] += 1
                    if keep[n] < len(section.entries):
                        still.append(n)
            active = still
    lines: list[str] = []
    cuts: list[str] = []
    for n, section in enumerate(sections):
        kept, gone = section.kept_lines(keep[n])
        lines += kept
        if gone:
            noun = "rows" if section.lines[section.entries[0]].startswith("|") else "entries"
            cuts.append(f"{gone} {noun} of “{section.heading or 'the summary'}”")
    left_out = len(markdown.encode("utf-8")) - sum(_size(line) for line in lines)
    lines += ["", _closing_line(", ".join(cuts), left_out, where)]
    return "\n".join(lines) + "\n"


def _closing_line(what: str, left_out: int, where: str) -> str:
    return (
        f"> ✂️ This summary was cut to fit GitHub's 1 MiB step summary: {what} left out"
        f" ({format_bytes(max(left_out, 0))}). The full report (summary.md, report.html) is"
        f" {where}."
    )


def _cut_lines(markdown: str, budget: int, where: str) -> str:
    # Even without any table row or list entry the summary is too long: whole lines up to the
    # budget, then the note.
    lines: list[str] = []
    used = _NOTE_ROOM
    for line in markdown.splitlines():
        if used + _size(line) > budget:
            break
        lines.append(line)
        used += _size(line)
    left_out = len(markdown.encode("utf-8")) - (used - _NOTE_ROOM)
    lines += ["", _closing_line("the rest of it", left_out, where)]
    return "\n".join(lines) + "\n"
