"""Find and remove what runs left behind, by the ``io.stackmatrix.run`` label.

A run is *alive* while its journal says it has not finished and one of its processes is still
there: the same pid with the same start time (``/proc/PID/stat``), as recorded in the run
directory when the run began, so a pid the system gave to another process since does not keep
a dead run alive. The run directory is found under ``--out``, or for a run started from
another folder, through the compose file path its containers carry. Nothing of an alive run
is removed unless forced.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from python_on_whales.exceptions import DockerException

from stackmatrix.compose import labels
from stackmatrix.engine.docker import (
    docker_client,
    docker_command,
    error_text,
    remove_by_label,
    run_engine,
)
from stackmatrix.errors import EngineError
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal
from stackmatrix.results.run_dir import is_marked, live_processes

CONFIG_FILES = "com.docker.compose.project.config_files"  # set by compose on its containers


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


def _run_is_alive(run_dir: Path) -> bool:
    journal_path = run_dir / JOURNAL_NAME
    if not journal_path.is_file():
        return False
    try:
        journal = RunJournal.read(journal_path)
    except (OSError, ValueError, KeyError, TypeError):
        return False  # a journal nobody can read says nothing about a live process
    if journal.finished_at is not None:
        return False
    if is_marked(run_dir):
        return bool(live_processes(run_dir))
    # Runs of older versions recorded only a pid.
    return journal.pid is not None and _alive(journal.pid)


def _is_active(run_id: str, out_dir: Path, elsewhere: set[Path] | None = None) -> bool:
    candidates = [out_dir / "runs" / run_id, *sorted(elsewhere or ())]
    return any(_run_is_alive(run_dir) for run_dir in candidates)


def _run_dir_of(config_files: str, run_id: str) -> Path | None:
    """The run directory a container's compose file sits in: ``RUN_DIR/<variant>/compose.yaml``."""
    for name in config_files.split(","):
        path = Path(name.strip())
        if path.is_absolute() and path.parent.parent.name == run_id:
            return path.parent.parent
    return None


def find_leftovers(out_dir: Path) -> list[Leftover]:
    """Every run with labelled containers, networks or volumes on the engine.

    One listing call per kind, reading the labels in the listing itself: nothing is inspected
    one by one, so objects another run removes meanwhile cannot make this fail.
    """
    docker = docker_command(docker_client())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    homes: dict[str, set[Path]] = defaultdict(set)
    run_label = f'{{{{.Label "{labels.RUN}"}}}}'
    listings = (
        ["container", "ls", "--all", "--format", f'{run_label}\t{{{{.Label "{CONFIG_FILES}"}}}}'],
        ["network", "ls", "--format", run_label],
        ["volume", "ls", "--format", run_label],
    )
    try:
        for column, listing in enumerate(listings):
            *head, fmt, spec = listing
            out = run_engine(
                [*docker, *head, "--filter", f"label={labels.RUN}", fmt, spec],
                what=f"`docker {head[0]} ls`",
            )
            for line in out.splitlines():
                run_id, _, config_files = line.strip().partition("\t")
                if not run_id.strip():
                    continue
                run_id = run_id.strip()
                counts[run_id][column] += 1
                home = _run_dir_of(config_files, run_id) if config_files else None
                if home is not None:
                    homes[run_id].add(home)
    except DockerException as error:
        raise EngineError(f"cannot list Docker objects: {error_text(error)}") from error
    return [
        Leftover(run_id, c, n, v, _is_active(run_id, out_dir, homes.get(run_id)))
        for run_id, (c, n, v) in sorted(counts.items())
    ]


def known_here(run_id: str, out_dir: Path) -> bool:
    """Whether *out_dir* holds the journal of *run_id*."""
    return (out_dir / "runs" / run_id / JOURNAL_NAME).is_file()


def collect(
    out_dir: Path,
    *,
    everything: bool = False,
    run_id: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> list[Leftover]:
    """Remove leftovers; returns what was removed (with *dry_run*: what would be).

    By default: runs recorded under *out_dir* whose process is gone. ``run_id``: that run.
    ``everything``: every labelled object on the engine, whoever made it. A run still alive
    is never removed, unless *force*.
    """
    removed = []
    for leftover in find_leftovers(out_dir):
        if run_id is not None and leftover.run_id != run_id:
            continue
        if leftover.active and not force:
            continue
        foreign = not known_here(leftover.run_id, out_dir)
        if run_id is None and not everything and foreign:
            continue
        if not dry_run:
            remove_by_label(f"{labels.RUN}={leftover.run_id}")
        removed.append(leftover)
    return removed
