"""What the reports show, read from one or more run directories (the shards of a CI matrix)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stackmatrix.errors import ReportError
from stackmatrix.junit.write import (
    ERROR_CLASSNAME,
    CaseResult,
    Outcome,
    count_outcomes,
    iter_cases,
    parse_junit,
)
from stackmatrix.results.journal import JOURNAL_NAME, RunJournal, Status, TestCounts, VariantResult

# A testcase's outcome in one variant; None: the variant ran tests but not this one.
Cell = Outcome | None

_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}


@dataclass(frozen=True)
class Sample:
    """One reading of every container's resources, *t* seconds after sampling began."""

    t: float
    containers: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Stats:
    """Resource samples of one variant's stack (``stats.json``)."""

    interval: float
    samples: tuple[Sample, ...]
    peaks: Mapping[str, Mapping[str, float]]

    @property
    def services(self) -> list[str]:
        """Services seen in any sample, in first-seen order."""
        seen: dict[str, None] = {}
        for sample in self.samples:
            seen.update(dict.fromkeys(sample.containers))
        seen.update(dict.fromkeys(self.peaks))
        return list(seen)

    def series(self, service: str, key: str) -> tuple[list[float], list[float]]:
        """Times and values of one metric of one service, skipping samples without it."""
        times: list[float] = []
        values: list[float] = []
        for sample in self.samples:
            value = sample.containers.get(service, {}).get(key)
            if value is not None:
                times.append(sample.t)
                values.append(value)
        return times, values

    def peak_total_memory(self) -> int | None:
        """Highest memory of the whole stack at one sample."""
        totals = [
            sum(c.get("memory_bytes", 0.0) for c in s.containers.values()) for s in self.samples
        ]
        return int(max(totals)) if totals else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _metrics(raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): n for k, v in raw.items() if (n := _number(v)) is not None}


def read_stats(path: Path) -> tuple[Stats | None, str]:
    """Read ``stats.json``; a missing or malformed file gives None and the reason."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "no resource samples were recorded"
    except (OSError, ValueError) as exc:
        return None, f"cannot read {path.name}: {exc}"
    if not isinstance(raw, Mapping):
        return None, f"cannot read {path.name}: not a JSON object"
    samples = []
    for entry in raw.get("samples") or []:
        if not isinstance(entry, Mapping) or (t := _number(entry.get("t"))) is None:
            continue
        containers = entry.get("containers")
        if isinstance(containers, Mapping):
            samples.append(Sample(t, {str(k): _metrics(v) for k, v in containers.items()}))
    peaks_raw = raw.get("peaks")
    peaks = (
        {str(k): _metrics(v) for k, v in peaks_raw.items()}
        if isinstance(peaks_raw, Mapping)
        else {}
    )
    return Stats(_number(raw.get("interval")) or 0.0, tuple(samples), peaks), ""


@dataclass(frozen=True)
class VariantReport:
    """One variant's result with its testcases and resource samples."""

    result: VariantResult
    run_dir: Path
    run_id: str
    cases: tuple[CaseResult, ...] = ()  # as the tests reported them
    synthetic: tuple[CaseResult, ...] = ()  # written by stackmatrix when the tests could not run
    junit_problem: str = ""  # why the variant's JUnit file could not be read
    stats: Stats | None = None
    stats_problem: str = ""
    # Testcases of the earlier attempts under `run --retries`, oldest first.
    attempt_cases: tuple[tuple[CaseResult, ...], ...] = ()

    @property
    def id(self) -> str:
        """The variant id."""
        return self.result.id

    @property
    def counts(self) -> TestCounts:
        """Testcase totals, from the JUnit file when it was readable, else from the journal."""
        if self.cases or self.synthetic:
            return count_outcomes(c.outcome for c in (*self.cases, *self.synthetic))
        return self.result.tests

    @property
    def ran_tests(self) -> bool:
        """Whether the variant's tests produced a readable report with testcases."""
        return bool(self.cases)

    @property
    def peak_memory_bytes(self) -> int | None:
        """Peak memory of the stack: from the journal, else from the samples."""
        if self.result.peak_memory_bytes is not None:
            return self.result.peak_memory_bytes
        return self.stats.peak_total_memory() if self.stats else None

    def path(self, relative: str | None) -> Path | None:
        """A journal path (relative to the run directory) made absolute."""
        return self.run_dir / relative if relative else None

    @property
    def problems(self) -> list[CaseResult]:
        """Testcases that failed or errored."""
        return [c for c in self.cases if c.outcome in (Outcome.FAILED, Outcome.ERROR)]

    @property
    def flaky_tests(self) -> tuple[str, ...]:
        """Tests that failed or errored in an earlier attempt and passed in the last one."""
        failed_before = {
            case.test_id
            for attempt in self.attempt_cases
            for case in attempt
            if case.outcome in (Outcome.FAILED, Outcome.ERROR)
        }
        final: dict[str, bool] = {}
        for case in self.cases:
            final[case.test_id] = final.get(case.test_id, True) and case.outcome is Outcome.PASSED
        return tuple(t for t, passed in final.items() if passed and t in failed_before)


@dataclass(frozen=True)
class GridRow:
    """One test that did not pass on every variant, and its outcome on each."""

    test_id: str
    cells: Mapping[str, Cell]  # variant id -> outcome
    cases: Mapping[str, CaseResult] = field(default_factory=dict)  # worst case per variant


@dataclass(frozen=True)
class RunReport:
    """Every variant of one or more run directories, later directories winning on a clash."""

    name: str
    run_ids: tuple[str, ...]
    run_dirs: tuple[Path, ...]
    variants: tuple[VariantReport, ...]
    warnings: tuple[str, ...] = ()
    started_at: float | None = None
    finished_at: float | None = None
    # The runs' prepare stages: seconds in all, and the pull and build time within them.
    prepare: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every variant has a status that lets the run exit 0."""
        return all(v.result.status.ok for v in self.variants)

    def status_counts(self) -> dict[Status, int]:
        """How many variants ended in each status (only statuses that occur)."""
        counts: dict[Status, int] = {}
        for variant in self.variants:
            counts[variant.result.status] = counts.get(variant.result.status, 0) + 1
        return counts

    def grid(self) -> list[GridRow]:
        """Tests that did not pass on every variant that ran tests, in first-seen order."""
        ran = [v for v in self.variants if v.ran_tests]
        worst: dict[str, dict[str, CaseResult]] = {}
        for variant in ran:
            for case in variant.cases:
                row = worst.setdefault(case.test_id, {})
                known = row.get(variant.id)
                if known is None or _SEVERITY[case.outcome] > _SEVERITY[known.outcome]:
                    row[variant.id] = case
        rows = []
        for test_id, by_variant in worst.items():
            cells: dict[str, Cell] = {
                v.id: by_variant[v.id].outcome if v.id in by_variant else None for v in ran
            }
            if any(cell is not Outcome.PASSED for cell in cells.values()):
                rows.append(GridRow(test_id, cells, by_variant))
        return rows


def _variant_report(result: VariantResult, run_dir: Path, run_id: str) -> VariantReport:
    cases: list[CaseResult] = []
    synthetic: list[CaseResult] = []
    problem = ""
    if result.junit:
        parsed = parse_junit(run_dir / result.junit)
        for case in iter_cases(parsed):
            (synthetic if is_synthetic(case) else cases).append(case)
        problem = parsed.problem
    stats, stats_problem = (
        read_stats(run_dir / result.stats) if result.stats else (None, "no resource samples")
    )
    # An unreadable earlier attempt only loses flakiness detail; the variant's flag remains.
    attempts = tuple(
        tuple(c for c in iter_cases(parse_junit(run_dir / rel)) if not is_synthetic(c))
        for rel in result.attempt_junits
    )
    return VariantReport(
        result,
        run_dir,
        run_id,
        tuple(cases),
        tuple(synthetic),
        problem,
        stats,
        stats_problem,
        attempts,
    )


def _after_rerun(earlier: VariantReport, rerun: VariantReport) -> VariantReport:
    """A variant whose failed testcases ran again: each test's last outcome, in the order the
    first run reported them (tests only the re-run has come last)."""
    again = {case.test_id: case for case in rerun.cases}
    cases = [again.pop(case.test_id, case) for case in earlier.cases]
    return replace(rerun, cases=(*cases, *again.values()))


def is_synthetic(case: CaseResult) -> bool:
    """Whether a testcase is the stand-in :func:`write_error_junit` writes for a variant."""
    return case.classname == ERROR_CLASSNAME and case.name.startswith("variant ")


def report_of_journal(journal: RunJournal, run_dir: Path) -> RunReport:
    """The report of one journal whose relative paths start at *run_dir*."""
    return RunReport(
        name=journal.name,
        run_ids=(journal.run_id,),
        run_dirs=(run_dir,),
        variants=tuple(_variant_report(r, run_dir, journal.run_id) for r in journal.variants),
        started_at=journal.started_at,
        finished_at=journal.finished_at,
    )


def load_runs(run_dirs: Sequence[Path]) -> RunReport:
    """Read the journals of *run_dirs* and the files they name; raise ReportError when a
    directory has no readable journal."""
    if not run_dirs:
        raise ReportError("no run directory given")
    chosen: dict[str, VariantReport] = {}
    warnings: list[str] = []
    journals: list[RunJournal] = []
    for run_dir in run_dirs:
        journal_path = run_dir / JOURNAL_NAME
        try:
            journal = RunJournal.read(run_dir)
        except FileNotFoundError as exc:
            raise ReportError(f"{journal_path}: no run journal here") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{journal_path}: cannot read the run journal: {exc}") from exc
        journals.append(journal)
        for result in journal.variants:
            report = _variant_report(result, run_dir, journal.run_id)
            earlier = chosen.pop(result.id, None)
            if earlier is not None and journal.rerun_of is None:
                warnings.append(
                    f"variant {result.id} appears in {earlier.run_dir} and {run_dir};"
                    f" using {run_dir}"
                )
            if earlier is not None and journal.rerun_tests:
                report = _after_rerun(earlier, report)
            chosen[result.id] = report
    starts = [j.started_at for j in journals]
    ends = [j.finished_at for j in journals if j.finished_at is not None]
    return RunReport(
        name=journals[-1].name,
        run_ids=tuple(dict.fromkeys(j.run_id for j in journals)),
        run_dirs=tuple(run_dirs),
        variants=tuple(chosen.values()),
        warnings=tuple(warnings),
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if ends else None,
        prepare=_prepare_of(journals),
    )


def _prepare_of(journals: Sequence[RunJournal]) -> dict[str, float]:
    stages = [j.prepare for j in journals if j.prepare]
    keys = ("seconds", "pull_seconds", "build_seconds")
    return (
        {key: round(sum(float(s.get(key) or 0) for s in stages), 3) for key in keys}
        if stages
        else {}
    )
