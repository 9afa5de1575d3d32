"""The one set of label names: what stackmatrix puts on every object it creates, and the
labels of Compose's own that it reads back."""

from __future__ import annotations

RUN = "io.stackmatrix.run"  # the run id: `gc` finds every leftover of a run by it
VARIANT = "io.stackmatrix.variant"  # the variant id
HELD = "io.stackmatrix.held"  # "true" on a stack `stackmatrix up` holds for a person

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"


def selector(label: str, value: str) -> str:
    """A ``--filter`` value of the docker CLI: ``label=NAME=VALUE``."""
    return f"label={label}={value}"
