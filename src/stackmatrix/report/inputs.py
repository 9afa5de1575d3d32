"""What ``stackmatrix report`` reads: run directories, or a folder of them (``--out``'s
``runs/``), meaning the newest run together with the runs that complete it.

A folder of runs holds every run made with one ``--out`` (``.stackmatrix/runs``), or the run
directories that the jobs of a sharded CI run uploaded. The ``latest`` link there (and any
other link) is never read, so no run counts twice. Of the runs there, the report takes the
newest (by start time) and, going back from it, every older run of the same matrix (same
name, matrix file digest, profile and variant list) until one that repeats a variant already
taken: the other shards of a sharded run, the jobs of a nox matrix each in its own run
directory, and the run that a ``run --failed`` re-ran. An older run of other variants is taken
too; runs of an edited matrix file are not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackmatrix.errors import UsageError
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal

RUNS_FOLDER = "runs"  # under --out


@dataclass(frozen=True)
class Inputs:
    """The run directories to report on, oldest first, and what was decided to get them."""

    run_dirs: tuple[Path, ...]
    notes: tuple[str, ...] = ()


def _is_run_dir(path: Path) -> bool:
    return (path / JOURNAL_NAME).is_file()


def _runs_in(folder: Path) -> list[tuple[RunJournal, Path]]:
    """Readable runs directly under *folder*; links (``latest``) and hidden entries skipped."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink() or entry.name.startswith(".") or not entry.is_dir():
            continue
        if not _is_run_dir(entry):
            continue
        try:
            found.append((RunJournal.read(entry), entry))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # load_runs says what is wrong with a run it is given; here: not a run
    return found


def _matrix_key(journal: RunJournal) -> tuple[object, ...]:
    return (journal.name, journal.spec_digest, journal.profile, tuple(journal.matrix_variants))


def _has_start(journal: RunJournal) -> bool:
    started = journal.started_at
    return isinstance(started, int | float) and not isinstance(started, bool)


def latest_runs(folder: Path) -> Inputs:
    """The newest run under *folder* and the runs that complete it (see the module's doc).
    A run whose ``run.json`` has no start time (not a number) cannot be placed: it is left
    out, with a note saying so."""
    found = _runs_in(folder)
    undated = [
        f"{path}: left out: its {JOURNAL_NAME} has no start time"
        f" (started_at is {json.dumps(journal.started_at)}, not a number)"
        for journal, path in found
        if not _has_start(journal)
    ]
    runs = sorted(
        ((j, p) for j, p in found if _has_start(j)),
        key=lambda r: (float(r[0].started_at or 0.0), r[0].run_id),
        reverse=True,
    )
    if not runs and undated:
        raise UsageError("; ".join(undated))
    if not runs:
        raise UsageError(
            f"{folder}: no run here (no {JOURNAL_NAME}, and no run directory under it)"
        )
    newest, _ = runs[0]
    chosen = [runs[0]]
    taken = {v.id for v in newest.variants}
    for journal, path in runs[1:]:
        if _matrix_key(journal) != _matrix_key(newest):
            break  # an earlier version of the matrix file, or another matrix
        originals = {j.rerun_of for j, _ in chosen if j.rerun_of}
        ids = {v.id for v in journal.variants}
        if journal.run_id not in originals and ids & taken:
            break  # an earlier attempt at variants already taken
        chosen.append((journal, path))
        taken |= ids
    dirs = tuple(path for _, path in reversed(chosen))
    names = ", ".join(p.name for p in dirs)
    skipped = len(runs) - len(chosen)
    note = f"{folder}: the newest run" + (
        f" and the {len(dirs) - 1} that complete it" if len(dirs) > 1 else ""
    )
    note += f" ({names})" + (f"; {skipped} older runs left out" if skipped else "")
    return Inputs(dirs, (*undated, note))


def resolve_inputs(given: Sequence[Path]) -> Inputs:
    """Run directories from what a person names: run directories, ``--out`` folders or their
    ``runs/`` folders (see :func:`latest_runs`); one directory named twice (``runs/latest``
    and the run it points at) counts once. Raises UsageError for anything else."""
    dirs: list[Path] = []
    notes: list[str] = []
    for path in given:
        if _is_run_dir(path):
            dirs.append(path)
        elif (
            path.is_dir() and (path / RUNS_FOLDER).is_dir() and not _is_run_dir(path / RUNS_FOLDER)
        ):
            found = latest_runs(path / RUNS_FOLDER)
            dirs += found.run_dirs
            notes += found.notes
        elif path.is_dir():
            found = latest_runs(path)
            dirs += found.run_dirs
            notes += found.notes
        else:
            raise UsageError(f"{path}: no such run directory")
    unique: dict[Path, Path] = {}
    for path in dirs:
        key = path.resolve()
        if key in unique:
            notes.append(f"{path}: the same run as {unique[key]}; read once")
            continue
        unique[key] = path
    return Inputs(tuple(unique.values()), tuple(notes))
