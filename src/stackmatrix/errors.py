"""One error hierarchy; each class carries the exit code the CLI returns for it."""

from __future__ import annotations


class StackmatrixError(Exception):
    """Base of every error stackmatrix reports to a user without a traceback."""

    exit_code = 3


class SpecError(StackmatrixError):
    """The matrix file is wrong: syntax, schema or semantics.

    ``problems`` holds one line per problem, each starting with ``FILE:LINE:COL``.
    """

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(StackmatrixError):
    """A command-line argument is wrong (unknown variant, bad shard, ...)."""

    exit_code = 2


class EngineError(StackmatrixError):
    """The Docker engine or Compose is missing, unreachable or failed."""

    exit_code = 3


class ReportError(StackmatrixError):
    """A report could not be built from its inputs."""

    exit_code = 3


class Interrupted(StackmatrixError):
    """The run was interrupted by SIGINT or SIGTERM."""

    exit_code = 130
