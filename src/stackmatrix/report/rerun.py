"""What to run again after a run: the variants that did not pass, and in each the testcases
that failed, named the way the test runner takes them (pytest node ids)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackmatrix.errors import UsageError
from stackmatrix.junit.read import CaseResult, Outcome, iter_cases, parse_junit
from stackmatrix.junit.write import ERROR_CLASSNAME
from stackmatrix.matrix.expand import Variant
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal, Status

_FAILING = (Outcome.FAILED, Outcome.ERROR)


@dataclass(frozen=True)
class Rerun:
    """The part of an earlier run that did not pass."""

    run_dir: Path
    run_id: str
    variants: tuple[str, ...]  # ids, in the earlier run's order
    failed: dict[str, tuple[CaseResult, ...]]  # variant id -> its failed and errored testcases
    finished: bool = True  # False: it crashed or was killed, so unrecorded variants never ran
    profile: str | None = None  # the profile that run used
    recorded: tuple[str, ...] = ()  # every variant the journal has


def find_run_dir(given: Path) -> Path:
    """A run directory from what a person names: the run directory itself, or the output
    folder (``.stackmatrix``) or its ``runs/`` folder, meaning their ``latest`` run."""
    for candidate in (given, given / "latest", given / "runs" / "latest"):
        if (candidate / JOURNAL_NAME).is_file():
            return candidate.resolve()
    raise UsageError(f"{given}: no run here (no {JOURNAL_NAME}, nor runs/latest/{JOURNAL_NAME})")


def plan_rerun(given: Path) -> Rerun:
    """The variants of the run at *given* that did not pass, with their failed testcases."""
    run_dir = find_run_dir(given)
    journal = RunJournal.read(run_dir)
    variants = tuple(r.id for r in journal.variants if r.status is not Status.PASSED)
    failed: dict[str, tuple[CaseResult, ...]] = {}
    for result in journal.variants:
        if result.id not in variants or not result.junit:
            continue
        parsed = parse_junit(run_dir / result.junit)
        cases = tuple(c for c in iter_cases(parsed) if c.outcome in _FAILING)
        # The error report stackmatrix writes for a variant without one names no real test.
        failed[result.id] = tuple(c for c in cases if c.classname != ERROR_CLASSNAME)
    return Rerun(
        run_dir=run_dir,
        run_id=journal.run_id,
        variants=variants,
        failed=failed,
        finished=journal.finished_at is not None,
        profile=journal.profile,
        recorded=tuple(r.id for r in journal.variants),
    )


def pytest_node_ids(cases: Sequence[CaseResult], root: Path) -> list[str]:
    """pytest node ids of *cases*: ``tests/test_x.py::TestY::test_z[param]``.

    pytest writes the module and classes as a dotted ``classname``; the module is its longest
    dotted prefix that is a file under *root* (where the tests run), the rest are classes.
    """
    ids: list[str] = []
    found: dict[Path, Path | None] = {}
    for case in cases:
        if case.file and not case.classname:
            ids.append(f"{case.file}::{case.name}")
            continue
        if not case.classname:
            ids.append(case.name)  # no module to name: the runner finds it by name, or not
            continue
        parts = case.classname.split(".")
        for cut in range(len(parts), 0, -1):
            module = Path(*parts[:cut]).with_suffix(".py")
            if module not in found:
                found[module] = _find_module(root, module)
            where = found[module]
            if where is not None:
                ids.append("::".join([where.as_posix(), *parts[cut:], case.name]))
                break
        else:
            ids.append("::".join([Path(*parts).with_suffix(".py").as_posix(), case.name]))
    return list(dict.fromkeys(ids))


_SKIPPED_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "build", "dist"}
_SEARCH_DEPTH = 6


def _find_module(root: Path, module: Path) -> Path | None:
    """*module* under *root*, relative to it: directly, or below a folder (pytest names
    modules from its own rootdir, which may lie below where the tests are started)."""
    if (root / module).is_file():
        return module
    candidates = []
    for folder, dirs, _files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = [] if depth >= _SEARCH_DEPTH else sorted(
            d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS
        )  # fmt: skip
        if (Path(folder) / module).is_file():
            candidates.append((Path(folder) / module).relative_to(root))
    return min(candidates, key=lambda path: (len(path.parts), str(path)), default=None)


def variants_to_rerun(variants: Sequence[Variant], rerun: Rerun) -> list[Variant]:
    """The variants of today's matrix that the earlier run did not pass, in matrix order.

    A variant the matrix no longer has cannot run again: a UsageError names it.
    """
    known = {v.id for v in variants}
    gone = [ident for ident in rerun.variants if ident not in known]
    if gone:
        raise UsageError(
            f"run {rerun.run_id} has variants this matrix no longer has: {', '.join(gone)}"
        )
    # A run that never finished (killed, crashed) did not pass the variants it never recorded.
    return [
        v for v in variants
        if v.id in rerun.variants or (not rerun.finished and v.id not in rerun.recorded)
    ]  # fmt: skip
