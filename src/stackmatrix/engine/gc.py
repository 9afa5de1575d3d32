"""Find and remove what runs left behind, by the ``io.stackmatrix.run`` label."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run as run_docker

from stackmatrix.compose import labels
from stackmatrix.engine.docker import docker_client, docker_command, error_text, remove_by_label
from stackmatrix.errors import EngineError
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal


@dataclass(frozen=True)
class Leftover:
    """Labelled objects of one run still on the engine."""

    run_id: str
    containers: int
    networks: int
    volumes: int
    active: bool  # the run's process is still alive on this host


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_active(run_id: str, out_dir: Path) -> bool:
    journal_path = out_dir / "runs" / run_id / JOURNAL_NAME
    if not journal_path.is_file():
        return False  # unknown here; only --all or --run touches it
    journal = RunJournal.read(journal_path)
    return journal.finished_at is None and journal.pid is not None and _alive(journal.pid)


def find_leftovers(out_dir: Path) -> list[Leftover]:
    """Every run with labelled containers, networks or volumes on the engine.

    One listing call per kind, reading the label in the listing itself: nothing is inspected
    one by one, so objects another run removes meanwhile cannot make this fail.
    """
    docker = docker_command(docker_client())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    listings = (
        ["container", "ls", "--all"],
        ["network", "ls"],
        ["volume", "ls"],
    )
    try:
        for column, listing in enumerate(listings):
            out = str(
                run_docker(
                    [*docker, *listing, "--filter", f"label={labels.RUN}",
                     "--format", f'{{{{.Label "{labels.RUN}"}}}}']
                )
            )  # fmt: skip
            for run_id in out.split():
                counts[run_id][column] += 1
    except DockerException as error:
        raise EngineError(f"cannot list Docker objects: {error_text(error)}") from error
    return [
        Leftover(run_id, c, n, v, _is_active(run_id, out_dir))
        for run_id, (c, n, v) in sorted(counts.items())
    ]


def known_here(run_id: str, out_dir: Path) -> bool:
    """Whether *out_dir* holds the journal of *run_id*."""
    return (out_dir / "runs" / run_id / JOURNAL_NAME).is_file()


def collect(
    out_dir: Path, *, everything: bool = False, run_id: str | None = None
) -> list[Leftover]:
    """Remove leftovers; returns what was removed.

    By default: runs recorded under *out_dir* whose process is gone. ``run_id``: that run.
    ``everything``: every labelled object on the engine, whoever made it.
    """
    removed = []
    for leftover in find_leftovers(out_dir):
        if run_id is not None and leftover.run_id != run_id:
            continue
        unsafe = leftover.active or not known_here(leftover.run_id, out_dir)
        if run_id is None and not everything and unsafe:
            continue
        remove_by_label(f"{labels.RUN}={leftover.run_id}")
        removed.append(leftover)
    return removed
