"""The one interface to where a run happens: a CI provider, or a plain terminal.

A provider says how a finished variant's output is grouped in the log, where a Markdown step
summary goes (and how much of it the CI takes), and which annotations point at failures.
:func:`detect` picks the provider from the environment: GitHub Actions, GitLab CI, or a plain
terminal; another CI is one new module with one class, added to ``PROVIDERS``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from stackmatrix.ci.github import GitHubActions
from stackmatrix.ci.gitlab import GitLabCI

if TYPE_CHECKING:
    from stackmatrix.report.model import RunReport


class Provider(Protocol):
    """What stackmatrix needs to know of the place it runs in."""

    @property
    def name(self) -> str:
        """``github``, ``plain``, ..."""

    @property
    def folds_blocks(self) -> bool:
        """Whether a block folds in the log (then progress lines between blocks are noise)."""

    def block(self, head: str, lines: Sequence[str]) -> str:
        """A finished variant's output as one block of the log."""

    def step_summary(self) -> Path | None:
        """The file the Markdown summary is appended to, if this CI shows one."""

    def publish_summary(self, markdown: str, *, report: Path) -> Path | None:
        """Append *markdown* (summary.md of the report in the folder *report*) to the step
        summary, cut to what this CI takes; the file written, or None."""

    def annotations(self, report: RunReport) -> list[str]:
        """Lines that mark failures in the CI's interface, printed to stderr."""


@dataclass(frozen=True)
class Plain:
    """A terminal or a CI that stackmatrix knows nothing special about."""

    name: str = "plain"
    folds_blocks: bool = False

    def block(self, head: str, lines: Sequence[str]) -> str:
        """The head line, then the lines."""
        return head + "\n" + "".join(f"{line}\n" for line in lines)

    def step_summary(self) -> Path | None:
        """None: nowhere to put one."""
        return None

    def publish_summary(self, markdown: str, *, report: Path) -> Path | None:
        """None: nowhere to put one."""
        return None

    def annotations(self, report: RunReport) -> list[str]:
        """None: nothing to mark."""
        return []


# Checked in order; the first that recognises the environment is the provider.
PROVIDERS: tuple[type[GitHubActions] | type[GitLabCI], ...] = (GitHubActions, GitLabCI)


def detect(environ: Mapping[str, str] | None = None) -> Provider:
    """The provider of this process's environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    for provider in PROVIDERS:
        if provider.detected(env):
            return provider(env)
    return Plain()


def publish_annotations(provider: Provider, report: RunReport, out: TextIO | None = None) -> None:
    """Print the provider's annotations for *report* (to stderr by default)."""
    stream = sys.stderr if out is None else out
    for line in provider.annotations(report):
        print(line, file=stream)
