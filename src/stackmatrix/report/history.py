"""History over many nights: every test x variant's outcome night by night, when its failure
started, how often it failed and flipped, and the version changes on the same time line.

A night is one run (or the shards of one run), read from a run directory, a folder of a sharded
run's directories, or a report directory (its ``results.json``, with the runs' ``run.json``
under ``runs/`` when they were kept). :func:`build_history` is pure; :func:`read_night` and
:func:`night_of_runs` read the disk.

Flaky rate: of the nights a test x variant ran (passed, passed on a retry, or failed), the
share on which it failed (its final outcome failed or errored). Flips: how often it changed
between failing and not failing from one night it ran to the next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stackmatrix.errors import ReportError, UsageError
from stackmatrix.redact import redact_text
from stackmatrix.report.baseline import Mark, Snapshot, flips, outcome_mark, snapshot_of
from stackmatrix.report.inputs import resolve_inputs
from stackmatrix.report.model import RunReport, load_runs
from stackmatrix.report.provenance import provenance_changes, provenance_text
from stackmatrix.report.results_file import RESULTS_NAME, load_baseline
from stackmatrix.results.journal import Provenance, RunJournal, ServiceProvenance

DEFAULT_NIGHTS = 30
"""How many nights, the newest, a history page shows unless told otherwise."""

MAX_ROWS = 500
"""Test x variant rows a page shows; the rest are counted."""

MAX_CHANGES = 1_000
"""Version changes a page lists; the rest are counted."""

LISTED = 5
"""Tests or changes named in one of the lines that say what changed since the night before."""

MESSAGE_CHARS = 300

Key = tuple[str, str]  # (variant, test)


@dataclass(frozen=True)
class Night:
    """What one night's run found: each test x variant's mark and each variant's provenance."""

    source: str
    run_ids: tuple[str, ...]
    started_at: float | None
    marks: Mapping[Key, Mark] = field(default_factory=dict)
    messages: Mapping[Key, str] = field(default_factory=dict)  # first lines of failures
    provenance: Mapping[str, Provenance] = field(default_factory=dict)  # variant -> what ran

    @property
    def date(self) -> str:
        """The night's start date (UTC), or '?' when unknown."""
        if self.started_at is None:
            return "?"
        return datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d")

    @property
    def first_run(self) -> str:
        """The night's first run id (its source when it has none)."""
        return self.run_ids[0] if self.run_ids else self.source

    @property
    def label(self) -> str:
        """The start date and the first run id: how the page names the night."""
        return f"{self.date} {self.first_run}"

    @property
    def full_name(self) -> str:
        """The start date and every run id of the night."""
        return f"{self.date} {', '.join(self.run_ids or (self.source,))}"


def night_headings(nights: Sequence[Night]) -> tuple[str, ...]:
    """What each night's column says: its date; where nights share a date, with the time
    their run id carries (``09:20``, to the second when the minute is shared too), or the
    whole run id when it carries none."""

    def heading(night: Night, detail: int) -> str:
        started = _date_of_run_id(night.first_run)
        if detail == 0:
            return night.date
        if started is None or detail == 3:
            return night.label
        time = datetime.fromtimestamp(started, UTC).strftime("%H:%M:%S" if detail == 2 else "%H:%M")
        return f"{night.date} {time}"

    found: list[str | None] = [None] * len(nights)
    for detail in range(4):
        names = [heading(night, detail) for night in nights]
        for index, name in enumerate(names):
            if found[index] is None and (names.count(name) == 1 or detail == 3):
                found[index] = name
    return tuple(name or "" for name in found)


@dataclass(frozen=True)
class TestHistory:
    """One test on one variant over the window, oldest night first."""

    __test__ = False  # not a pytest test class, despite the name

    variant: str
    test: str
    marks: tuple[Mark | None, ...]  # None: not run that night
    message: str = ""  # the newest failure's first line

    @property
    def ran(self) -> int:
        """Nights it ran (skipped and absent nights do not count)."""
        return sum(1 for m in self.marks if m is not None and m is not Mark.SKIP)

    @property
    def failed(self) -> int:
        """Nights its final outcome was a failure or an error."""
        return self.marks.count(Mark.FAIL)

    @property
    def retried(self) -> int:
        """Nights it passed only on a retry."""
        return self.marks.count(Mark.FLAKY)

    @property
    def flips(self) -> int:
        """Changes between failing and not failing, night it ran to night it ran."""
        return flips(m for m in self.marks if m is not None)

    @property
    def rate(self) -> float:
        """The flaky rate: failed nights over nights it ran."""
        return self.failed / self.ran if self.ran else 0.0

    @property
    def failing(self) -> bool:
        """Whether the newest night it ran, it failed."""
        ran = [m for m in self.marks if m is not None and m is not Mark.SKIP]
        return bool(ran) and ran[-1] is Mark.FAIL

    @property
    def streak_start(self) -> int | None:
        """The night (index) its current failing streak started; None when not failing."""
        if not self.failing:
            return None
        start = None
        for index in range(len(self.marks) - 1, -1, -1):
            mark = self.marks[index]
            if mark is None or mark is Mark.SKIP:
                continue
            if mark is not Mark.FAIL:
                break
            start = index
        return start

    @property
    def counts_text(self) -> str:
        """The counts the rate is computed from: ``failed 3 of 7 nights, 4 flips``."""
        nights = "night" if self.ran == 1 else "nights"
        flips = "flip" if self.flips == 1 else "flips"
        text = f"failed {self.failed} of {self.ran} {nights}, {self.flips} {flips}"
        if self.retried:
            text += f", passed on a retry {self.retried}"
        return text


@dataclass(frozen=True)
class VersionChange:
    """What a variant ran differently from the last night it recorded what it ran (or, on
    its first night, what it ran)."""

    night: int  # index into History.nights
    variant: str
    what: str  # ``db postgres 17.1 → 17.2`` (stackmatrix.report.provenance's words)

    @property
    def text(self) -> str:
        """``postgres-17: db postgres 17.1 → 17.2``."""
        return f"{self.variant}: {self.what}"


@dataclass(frozen=True)
class History:
    """The window of nights, oldest first, and what they show together."""

    nights: tuple[Night, ...]
    rows: tuple[TestHistory, ...]  # failed at least once; cut to the page's bound
    rows_cut: int = 0
    tests_seen: int = 0  # test x variant pairs seen in the window
    changes: tuple[VersionChange, ...] = ()  # the first nights' values are not changes
    changes_cut: int = 0
    first_seen: tuple[VersionChange, ...] = ()  # what each variant ran when first seen
    nights_cut: int = 0  # older nights left out of the window
    new_failures: tuple[Key, ...] = ()  # newest night against the one before
    fixed: tuple[Key, ...] = ()
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# The model


def _version_changes(nights: Sequence[Night]) -> tuple[list[VersionChange], list[VersionChange]]:
    """Each variant's changes from the last night it recorded what it ran; and its first."""
    last: dict[str, Provenance] = {}
    changes: list[VersionChange] = []
    first: list[VersionChange] = []
    for index, night in enumerate(nights):
        for variant, provenance in sorted(night.provenance.items()):
            before = last.get(variant)
            last[variant] = provenance
            if before is None:
                first.append(VersionChange(index, variant, provenance_text(provenance)))
                continue
            changes += [
                VersionChange(index, variant, change.text)
                for change in provenance_changes(before, provenance)
            ]
    return changes, first


def _row_order(row: TestHistory) -> tuple[int, int, int, str, str]:
    # Failing now first, then the most failures, the most flips; then by name.
    return (not row.failing, -row.failed, -row.flips, row.variant, row.test)


def build_history(
    nights: Sequence[Night],
    *,
    window: int = DEFAULT_NIGHTS,
    max_rows: int = MAX_ROWS,
    max_changes: int = MAX_CHANGES,
    notes: Sequence[str] = (),
) -> History:
    """The history of the newest *window* nights (ordered by start time, then run id), its
    rows the test x variant pairs that failed (or passed only on a retry) at least once."""
    ordered = sorted(nights, key=lambda n: (n.started_at or 0.0, n.run_ids))
    kept = tuple(ordered[-window:]) if window > 0 else ()
    keys = sorted({key for night in kept for key in night.marks})
    rows = []
    for key in keys:
        marks = tuple(night.marks.get(key) for night in kept)
        if Mark.FAIL not in marks and Mark.FLAKY not in marks:
            continue
        message = next((n.messages[key] for n in reversed(kept) if key in n.messages), "")
        rows.append(TestHistory(key[0], key[1], marks, message[:MESSAGE_CHARS]))
    rows.sort(key=_row_order)
    changes, first = _version_changes(kept)
    new_failures: list[Key] = []
    fixed: list[Key] = []
    if len(kept) >= 2:
        before, now = kept[-2].marks, kept[-1].marks
        new_failures = [
            k for k in keys if now.get(k) is Mark.FAIL and before.get(k) is not Mark.FAIL
        ]
        fixed = [
            k for k in keys if before.get(k) is Mark.FAIL and now.get(k) in (Mark.PASS, Mark.FLAKY)
        ]
    return History(
        nights=kept,
        rows=tuple(rows[:max_rows]),
        rows_cut=max(0, len(rows) - max_rows),
        tests_seen=len(keys),
        changes=tuple(changes[:max_changes]),
        changes_cut=max(0, len(changes) - max_changes),
        first_seen=tuple(first[:max_changes]),
        nights_cut=len(ordered) - len(kept),
        new_failures=tuple(new_failures),
        fixed=tuple(fixed),
        notes=tuple(notes),
    )


def _named(keys: Sequence[Key]) -> str:
    shown = ", ".join(f"{test} on {variant}" for variant, test in keys[:LISTED])
    more = f" and {len(keys) - LISTED} more" if len(keys) > LISTED else ""
    return f" ({shown}{more})" if keys else ""


def since_previous(history: History) -> tuple[str, str, str]:
    """Three lines: new failures, fixed tests and version changes of the newest night against
    the night before it."""
    if len(history.nights) < 2:
        alone = "no previous night in the history"
        return (f"New failures: none ({alone})", f"Fixed: none ({alone})",
                f"Version changes: none ({alone})")  # fmt: skip
    previous = history.nights[-2].label
    newest = len(history.nights) - 1
    changed = [c for c in history.changes if c.night == newest]
    shown = "; ".join(c.text for c in changed[:LISTED])
    more = f" and {len(changed) - LISTED} more" if len(changed) > LISTED else ""
    versions = f" ({shown}{more})" if changed else ""
    lines = (
        f"New failures since {previous}: {len(history.new_failures)}{_named(history.new_failures)}",
        f"Fixed since {previous}: {len(history.fixed)}{_named(history.fixed)}",
        f"Version changes since {previous}: {len(changed)}{versions}",
    )
    new, fixed, versions = (redact_text(line) for line in lines)  # they go to summary.md
    return new, fixed, versions


# --------------------------------------------------------------------------------------------
# Reading nights


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def _marks_of(snapshot: Snapshot) -> tuple[dict[Key, Mark], dict[Key, str]]:
    marks: dict[Key, Mark] = {}
    messages: dict[Key, str] = {}
    for case in snapshot.cases:
        if case.outcome is None:
            continue  # not run that night
        key = (case.variant, case.test)
        marks[key] = outcome_mark(case.outcome, flaky=case.flaky)
        if marks[key] is Mark.FAIL and case.message:
            messages[key] = _first_line(case.message)
    return marks, messages


def _date_of_run_id(run_id: str) -> float | None:
    """The start a run id (``20261122-180401-…``) carries, when it carries one."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _journals(run_dirs: Sequence[Path], where: str) -> list[RunJournal]:
    journals = []
    for run_dir in run_dirs:
        try:
            journals.append(RunJournal.read(run_dir))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{where}: {run_dir}: cannot read its run journal: {exc}") from exc
    return journals


def _started(journals: Sequence[RunJournal], run_ids: Sequence[str]) -> float | None:
    starts = [
        float(j.started_at)
        for j in journals
        if isinstance(j.started_at, int | float) and not isinstance(j.started_at, bool)
    ]
    if starts:
        return min(starts)
    dated = [d for d in map(_date_of_run_id, run_ids) if d is not None]
    return min(dated) if dated else None


def _provenance(snapshot: Snapshot, journals: Sequence[RunJournal]) -> dict[str, Provenance]:
    """Each variant's provenance as the night's report has it; for runs that recorded none,
    the image ids their prepare stage found."""
    found: dict[str, Provenance] = {}
    for journal in journals:  # later runs (a re-run) win, as in the reports
        for result in journal.variants:
            if result.images:
                found[result.id] = Provenance(services={
                    service: ServiceProvenance(image=str(image.get("image", "")),
                                               image_id=str(image.get("id", "")),
                                               digest=str(image.get("digest", "")))
                    for service, image in result.images.items()
                })  # fmt: skip
    found.update({v.id: v.provenance for v in snapshot.variants if v.provenance})
    return found


def night_of_runs(run_dirs: Sequence[Path], source: str) -> Night:
    """The night of run directories already resolved."""
    try:
        report = load_runs(run_dirs)
    except ReportError as exc:
        raise UsageError(f"{source}: {exc}") from exc
    return night_of_report(report, source)


def night_of_report(report: RunReport, source: str) -> Night:
    """The night of a report already read (the run being reported on)."""
    snapshot = snapshot_of(report, source)
    marks, messages = _marks_of(snapshot)
    journals = _journals(report.run_dirs, source)
    run_ids = tuple(report.run_ids)
    return Night(source, run_ids, _started(journals, run_ids), marks, messages,
                 _provenance(snapshot, journals))  # fmt: skip


def read_night(path: Path) -> Night:
    """One night from a run directory, a folder of a (sharded) run's directories, or a report
    directory; raises UsageError naming *path* when it holds no run."""
    where = f"--history {path}"
    if not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise UsageError(f"{where}: {what} (a run directory or a report directory)")
    results_path = path / RESULTS_NAME
    try:
        run_dirs = resolve_inputs([path]).run_dirs
    except UsageError as exc:
        if not results_path.is_file():
            raise UsageError(f"{where}: no run here ({exc})") from exc
        run_dirs = ()
    if not results_path.is_file():
        return night_of_runs(run_dirs, str(path))
    try:
        snapshot = load_baseline(path)
    except ReportError as exc:
        raise UsageError(str(exc).replace(f"baseline {path}", where)) from exc
    try:  # read again for what a snapshot does not keep: the run ids, the provenance
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{where}: {RESULTS_NAME}: {exc}") from exc
    if not isinstance(results, Mapping):
        raise UsageError(f"{where}: {RESULTS_NAME}: not a JSON object")
    journals = _journals(run_dirs, where)
    run_ids = tuple(j.run_id for j in journals) or tuple(
        str(r) for r in results.get("run_ids", ()) if isinstance(r, str)
    )
    marks, messages = _marks_of(snapshot)
    return Night(str(path), run_ids, _started(journals, run_ids), marks, messages,
                 _provenance(snapshot, journals))  # fmt: skip


def read_nights(
    paths: Sequence[Path], current: Night | None = None
) -> tuple[list[Night], list[str]]:
    """The nights of *paths* (and *current*); a night named twice (a ``latest`` link beside
    the run it points at) is read once, and a night with no start time is left out, each with
    a note."""
    nights: list[Night] = [current] if current is not None else []
    notes: list[str] = []
    seen = {frozenset(current.run_ids): current.source} if current is not None else {}
    for path in paths:
        night = read_night(path)
        key = frozenset(night.run_ids)
        if key and key in seen:
            notes.append(f"{path}: the same run as {seen[key]}; read once")
            continue
        if night.started_at is None:
            notes.append(f"{path}: left out: no start time to place it on the time line")
            continue
        seen[key] = night.source
        nights.append(night)
    return nights, notes
