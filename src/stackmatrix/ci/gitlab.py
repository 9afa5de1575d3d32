"""GitLab CI: where it is detected and how output folds (collapsible sections).

GitLab has no step summary and no annotations: its merge request widget reads the merged
JUnit report, which the report job of the child pipeline publishes
(:mod:`stackmatrix.ci.gitlab_pipeline`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackmatrix.report.model import RunReport


_SECTION_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_SECTION_NAME = 64
_ERASE = "\x1b[0K"  # GitLab's log hides the marker lines by this escape


@dataclass(frozen=True)
class GitLabCI:
    """A GitLab CI job, read from its environment variables."""

    environ: Mapping[str, str]
    name: str = "gitlab"
    folds_blocks: bool = True
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    @staticmethod
    def detected(environ: Mapping[str, str]) -> bool:
        """Whether this process runs in a GitLab CI job."""
        return environ.get("GITLAB_CI") == "true"

    def block(self, head: str, lines: Sequence[str]) -> str:
        """One collapsed section of the job's log (``section_start`` / ``section_end``)."""
        name = section_name(head)
        now = int(self.clock())
        start = f"{_ERASE}section_start:{now}:{name}[collapsed=true]\r{_ERASE}{head}\n"
        end = f"{_ERASE}section_end:{int(self.clock())}:{name}\r{_ERASE}\n"
        return start + "".join(f"{line}\n" for line in lines) + end

    def step_summary(self) -> Path | None:
        """None: GitLab shows no step summary."""
        return None

    def publish_summary(self, markdown: str, *, report: Path) -> Path | None:
        """None: GitLab shows no step summary (the report job keeps summary.md as an artifact)."""
        return None

    def annotations(self, report: RunReport) -> list[str]:
        """None: GitLab marks failures from the JUnit report, not from the log."""
        return []


def section_name(head: str) -> str:
    """A section name GitLab accepts (letters, digits, ``_``, ``.``, ``-``) made from *head*."""
    name = _SECTION_NAME.sub("_", head).strip("_")[:_MAX_SECTION_NAME]
    return name or "stackmatrix"
