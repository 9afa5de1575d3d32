"""GitHub Actions: where it is detected, how output is grouped, where the step summary goes,
and the ``::error`` / ``::warning`` workflow commands (annotations) of a run's failures.

The matrix JSON for ``strategy.matrix`` is :mod:`stackmatrix.ci.github_matrix`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackmatrix.junit.read import CaseResult
from stackmatrix.report.model import RunReport
from stackmatrix.report.text import (
    case_message,
    status_label,
    variant_failed_as_a_whole,
    variant_reason,
)
from stackmatrix.results.journal import Status


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

    def annotations(self, report: RunReport) -> list[str]:
        """Workflow commands for the failures of *report*, paths relative to the workspace."""
        workspace = self.environ.get("GITHUB_WORKSPACE")
        return workflow_commands(report, workspace=Path(workspace) if workspace else None)


_LOCATIONS = (
    # pytest and go: a line starting with FILE:LINE: (e.g. the last frame of a traceback)
    re.compile(r"^\s*(?P<file>[\w./\\-]+\.\w+):(?P<line>\d+):", re.MULTILINE),
    # jest / node: "at Object.<anonymous> (/repo/src/cart.test.js:31:27)"
    re.compile(r"\((?P<file>[^()\s]+\.\w+):(?P<line>\d+)(?::\d+)?\)"),
    # python tracebacks: File "tests/test_x.py", line 12
    re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)'),
)


def location_of(case: CaseResult) -> tuple[str, int] | None:
    """Where a failure happened: the testcase's file/line attributes, else the last location
    found in its message or traceback."""
    if case.file and case.line is not None:
        return case.file, case.line
    text = f"{case.message}\n{case.text}"
    for pattern in _LOCATIONS:
        found = list(pattern.finditer(text))
        if found:
            return found[-1]["file"], int(found[-1]["line"])
    return None


def _relative_to_workspace(file: str, workspace: Path | None) -> str:
    path = Path(file)
    if workspace is not None and path.is_absolute():
        try:
            return path.relative_to(workspace).as_posix()
        except ValueError:
            return file
    return file


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(report: RunReport, *, workspace: Path | None = None) -> list[str]:
    """``::error`` workflow commands: one per failed or errored testcase (with ``file`` and
    ``line`` where known) and one per variant whose stack errored; ``::warning`` for
    experimental variants."""
    commands = []
    for v in report.variants:
        # An experimental variant may fail: say so without marking the run red.
        level = (
            "warning"
            if v.result.experimental or v.result.status is Status.EXPERIMENTAL_FAILED
            else "error"
        )
        if variant_failed_as_a_whole(v) and v.result.status is not Status.CANCELLED:
            title = _escape_property(f"{v.id}: {status_label(v.result.status)}")
            commands.append(f"::{level} title={title}::{_escape_data(variant_reason(v))}")
        for case in v.problems:
            props = []
            where = location_of(case)
            if where is not None:
                file = _relative_to_workspace(where[0], workspace)
                props += [f"file={_escape_property(file)}", f"line={where[1]}"]
            props.append(f"title={_escape_property(f'{v.id}: {case.test_id}')}")
            commands.append(f"::{level} {','.join(props)}::{_escape_data(case_message(case))}")
    return commands
