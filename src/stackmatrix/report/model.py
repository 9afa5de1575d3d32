"""What the reports show, read from one or more run directories (the shards of a CI matrix)."""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

from stackmatrix.errors import ReportError
from stackmatrix.junit.write import (
    ERROR_CLASSNAME,
    CaseResult,
    Outcome,
    ParsedReport,
    count_outcomes,
    iter_cases,
    parse_junit,
)
from stackmatrix.report.provenance import masked
from stackmatrix.results.journal import (
    JOURNAL_NAME,
    RunJournal,
    Status,
    TestCounts,
    VariantResult,
    exit_code_of,
)


class NotApplicable(enum.Enum):
    """A grid cell of a test whose kind (its classname) ran no test at all on a variant."""

    NA = "n/a"


NA = NotApplicable.NA

# A testcase's outcome in one variant; None: the variant ran tests of its kind but not this
# one; NA: the variant ran no test of its kind (a class whose name embeds another variant).
Cell = Outcome | NotApplicable | None

_FAILING = (Outcome.FAILED, Outcome.ERROR)

_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}
_OUTCOME = attrgetter("outcome")
_TEST_ID = attrgetter("test_id")
_CLASSNAME = attrgetter("classname")


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

    @cached_property
    def counts(self) -> TestCounts:
        """Testcase totals, from the JUnit file when it was readable, else from the journal."""
        if self.cases or self.synthetic:
            return count_outcomes(map(_OUTCOME, chain(self.cases, self.synthetic)))
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
        return list(self._problems)

    @cached_property
    def _problems(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if c.outcome in _FAILING)

    @cached_property
    def flaky_tests(self) -> tuple[str, ...]:
        """Tests that failed or errored in an earlier attempt and passed in the last one."""
        if not self.attempt_cases:
            return ()
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


class Severity(enum.IntEnum):
    """How much a grid row matters, most first: the order of the test x variant grid."""

    FAILS_ON_SOME = 0  # fails or errors on some variants, not on others
    FAILS_EVERYWHERE = 1  # fails or errors on every variant where it applies
    DIFFERS = 2  # skipped or not run on some variants, passed on others
    SKIPPED_EVERYWHERE = 3  # skipped (or not run) on every variant where it applies


SEVERITY_TITLES = {
    Severity.FAILS_ON_SOME: "fails on some variants",
    Severity.FAILS_EVERYWHERE: "fails on every variant",
    Severity.DIFFERS: "skipped or not run on some variants",
    Severity.SKIPPED_EVERYWHERE: "skipped everywhere",
}


@dataclass(frozen=True)
class GridRow:
    """One test that did not pass on every variant, and its outcome on each."""

    test_id: str
    cells: Mapping[str, Cell]  # variant id -> outcome
    cases: Mapping[str, CaseResult] = field(default_factory=dict)  # worst case per variant

    @cached_property
    def severity(self) -> Severity:
        """Where the row stands in the grid's order."""
        applicable = [c for c in self.cells.values() if c is not NA]
        differs = len(set(applicable)) > 1
        if any(c in _FAILING for c in applicable):
            return Severity.FAILS_ON_SOME if differs else Severity.FAILS_EVERYWHERE
        return Severity.DIFFERS if Outcome.PASSED in applicable else Severity.SKIPPED_EVERYWHERE


@dataclass(frozen=True)
class RunInfo:
    """What one run directory's journal says about the run as a whole."""

    run_id: str
    run_dir: Path
    shard: str | None = None  # "I/N"
    finished: bool = True  # it recorded its end (finished_at and exit_code)
    exit_code: int | None = None
    interrupted: bool = False
    matrix_variants: tuple[str, ...] = ()
    recorded: tuple[str, ...] = ()  # variant ids with a result in this journal
    variants_exit_code: int = 0  # the exit code its variants make

    @property
    def aborted(self) -> bool:
        """It ended on an error its variants do not explain (a spec error after the stacks
        started, a closed pipe, an interrupt), or was interrupted."""
        if not self.finished:
            return False
        code = self.exit_code or 0
        spec_error = code == 2  # SpecError and UsageError; no variant's status makes it
        return self.interrupted or spec_error or (code != 0 and self.variants_exit_code == 0)

    @property
    def expected(self) -> tuple[str, ...]:
        """The variants this run was to run: its shard of the matrix, else the matrix, else
        (an older journal) what it recorded."""
        if not self.matrix_variants:
            return self.recorded
        if self.shard:
            return shard_of(self.matrix_variants, self.shard)
        return self.matrix_variants


def shard_of(variant_ids: Sequence[str], shard: str) -> tuple[str, ...]:
    """The ids of shard ``I/N``, split as ``run --shard`` splits (matrix.select.select_shard:
    round robin over the matrix order); an unreadable shard gives all of them."""
    index, count = parse_shard(shard) or (1, 1)
    return tuple(v for position, v in enumerate(variant_ids) if position % count == index - 1)


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """``(I, N)`` of ``"I/N"``; None when there is none or it is unreadable."""
    if not shard:
        return None
    index, _, count = shard.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        return None
    return int(index), int(count)


class Verdict(enum.StrEnum):
    """What a report says about the run as a whole."""

    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Completeness:
    """What is missing from a report, against what its runs were to run (and, for
    ``stackmatrix report``, against the whole matrix)."""

    expected: tuple[str, ...]  # variant ids, matrix order
    not_finished: tuple[str, ...]  # of a run that did not record its end; no result anywhere
    missing: tuple[str, ...]  # in the matrix, but in none of the run directories
    missing_shards: tuple[str, ...]  # "I/N" of shards no run directory holds
    unfinished_runs: tuple[str, ...]  # run ids without a recorded end
    empty_runs: tuple[str, ...]  # run ids that recorded their end and no variant's result
    # (run id, exit code) of runs that erred, less those whose variants later runs all redid
    aborted_runs: tuple[tuple[str, int | None], ...]
    mixed_matrices: bool = False  # the run directories are of different matrices

    @property
    def complete(self) -> bool:
        """Nothing expected is missing and every run recorded its end."""
        return not (self.not_finished or self.missing or self.missing_shards)


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
    runs: tuple[RunInfo, ...] = ()
    # Compare with the whole matrix (``stackmatrix report``), not only with what the runs
    # were to run: a shard or variant no directory holds is missing.
    against_matrix: bool = False
    # The test id rewrites its tests went through (the spec's ``report.test_ids``), for
    # comparing with a baseline in the same terms.
    test_ids: tuple[Mapping[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every variant has a status that lets the run exit 0, and no run ended on an
        error of its own (unless every variant it was to run is taken from a later run: a
        re-run stands in for it)."""
        return all(v.result.status.ok for v in self.variants) and not any(
            r.aborted and not self._superseded(n) for n, r in enumerate(self.runs)
        )

    def _superseded(self, position: int) -> bool:
        """Whether every variant the run at *position* of ``runs`` was to run is taken from a
        run given after it."""
        expected = self.runs[position].expected
        later = {r.run_id for r in self.runs[position + 1 :]}
        taken = {v.id: v.run_id for v in self.variants}
        return bool(expected) and all(taken.get(ident) in later for ident in expected)

    @cached_property
    def completeness(self) -> Completeness:
        """What is missing, and which runs did not finish or ended on an error."""
        matrices = {r.matrix_variants for r in self.runs if r.matrix_variants}
        matrix = tuple(dict.fromkeys(v for r in self.runs for v in r.matrix_variants))
        final = {v.id for v in self.variants if v.result.status not in _UNFINISHED}
        unfinished = [r for r in self.runs if not r.finished]
        # A run that ended without a single result ended before any variant did (no --only
        # selects nothing): its variants never finished either.
        empty = [r for r in self.runs if r.finished and not r.recorded and r.expected]
        not_finished = [
            v
            for v in dict.fromkeys(x for r in (*unfinished, *empty) for x in r.expected)
            if v not in final
        ]
        have = {v.id for v in self.variants}
        missing: list[str] = []
        missing_shards: list[str] = []
        if self.against_matrix:
            missing = [v for v in matrix if v not in have and v not in not_finished]
            counts = {p[1] for r in self.runs if (p := parse_shard(r.shard))}
            for count in sorted(counts):
                held = {p[0] for r in self.runs if (p := parse_shard(r.shard)) and p[1] == count}
                missing_shards += [f"{i}/{count}" for i in range(1, count + 1) if i not in held]
        expected = (
            matrix
            if self.against_matrix and matrix
            else tuple(dict.fromkeys(x for r in self.runs for x in r.expected))
        )
        return Completeness(
            expected=expected,
            not_finished=tuple(not_finished),
            missing=tuple(missing),
            missing_shards=tuple(missing_shards),
            unfinished_runs=tuple(r.run_id for r in unfinished),
            empty_runs=tuple(r.run_id for r in empty),
            aborted_runs=tuple(
                (r.run_id, r.exit_code)
                for n, r in enumerate(self.runs)
                if r.aborted and not self._superseded(n)
            ),
            mixed_matrices=len(matrices) > 1,
        )

    @property
    def verdict(self) -> Verdict:
        """Failed when a required variant failed or a run ended on an error; else incomplete
        when something is missing or never finished; else passed."""
        if not self.ok:
            return Verdict.FAILED
        if not self.completeness.complete:
            return Verdict.INCOMPLETE
        return Verdict.PASSED

    def status_counts(self) -> dict[Status, int]:
        """How many variants ended in each status (only statuses that occur)."""
        counts: dict[Status, int] = {}
        for variant in self.variants:
            counts[variant.result.status] = counts.get(variant.result.status, 0) + 1
        return counts

    def grid(self) -> list[GridRow]:
        """Tests that did not pass on every variant that ran tests, most severe first (see
        :class:`Severity`), in first-seen order within each. A test's cell is n/a on a variant
        that ran no test of its classname; a row of passes and n/a only is no row."""
        return list(self._grid)

    @cached_property
    def _grid(self) -> tuple[GridRow, ...]:
        # Most tests of a big run pass on every variant: those are found with set operations
        # (loops in C), and only the others are looked at one by one.
        ran = [v for v in self.variants if v.ran_tests]
        passed = Outcome.PASSED
        # Per variant, the worst testcase of each test (the first of its most severe outcome:
        # a test can be reported twice).
        worst: dict[str, dict[str, CaseResult]] = {}
        seen: dict[str, None] = {}  # every test, in first-seen order
        not_passed: set[str] = set()
        for v in ran:
            first = dict(zip(map(_TEST_ID, reversed(v.cases)), reversed(v.cases), strict=True))
            for case in [c for c in v.cases if c.outcome is not passed]:
                not_passed.add(case.test_id)
                if _SEVERITY[case.outcome] > _SEVERITY[first[case.test_id].outcome]:
                    first[case.test_id] = case
            worst[v.id] = first
            seen.update(dict.fromkeys(map(_TEST_ID, v.cases)))
        everywhere = set(seen).intersection(*worst.values()) - not_passed
        classnames = {v.id: set(map(_CLASSNAME, v.cases)) for v in ran}
        rows = []
        for test_id in seen:
            if test_id in everywhere:
                continue  # passed on every variant: no row
            by_variant = {ident: of[test_id] for ident, of in worst.items() if test_id in of}
            kind = next(iter(by_variant.values())).classname
            cells: dict[str, Cell] = {}
            for v in ran:
                if v.id in by_variant:
                    cells[v.id] = by_variant[v.id].outcome
                else:
                    cells[v.id] = None if kind in classnames[v.id] else NA
            if any(cell is not Outcome.PASSED and cell is not NA for cell in cells.values()):
                rows.append(GridRow(test_id, cells, by_variant))
        return tuple(sorted(rows, key=lambda row: row.severity))  # stable: first-seen within


_UNFINISHED = (Status.CANCELLED, Status.INTERRUPTED)


TestIdRewrite = Callable[[str], str]


def test_id_rewrite(rules: Sequence[Mapping[str, str]]) -> tuple[TestIdRewrite, list[str]]:
    """The function that applies the spec's ``report.test_ids`` *rules* (``re.sub`` of each
    ``pattern`` by its ``replace``, in order) to a test id, and the problems of rules that
    cannot be used (they are left out)."""
    compiled: list[tuple[re.Pattern[str], str]] = []
    problems: list[str] = []
    for index, rule in enumerate(rules):
        try:
            compiled.append((re.compile(str(rule["pattern"])), str(rule.get("replace", ""))))
        except (KeyError, TypeError, re.error) as exc:
            problems.append(f"test_ids[{index}] is left out: {exc}")
    if not compiled:
        return _no_rewrite, problems

    def rewrite(test_id: str) -> str:
        for pattern, replacement in compiled:
            try:
                test_id = pattern.sub(replacement, test_id)
            except (re.error, IndexError):  # a bad group reference: the id stays as it is
                continue
        return test_id

    return rewrite, problems


def _no_rewrite(test_id: str) -> str:
    return test_id


def rewritten(case: CaseResult, rewrite: TestIdRewrite) -> CaseResult:
    """*case* under its rewritten id ``CLASSNAME::NAME`` (split again at the first ``::``)."""
    new = rewrite(case.test_id)
    if new == case.test_id:
        return case
    classname, sep, name = new.partition("::")
    return (
        replace(case, classname=classname, name=name)
        if sep
        else replace(case, classname="", name=new)
    )


JunitReadings = dict[Path, tuple[tuple[CaseResult, ...], str]]
"""Testcases and problem of JUnit files already read (by the merge), by path."""


def junit_reading(parsed: ParsedReport) -> tuple[tuple[CaseResult, ...], str]:
    """What :func:`load_runs` takes of a JUnit file: its testcases and why it is unreadable."""
    return tuple(iter_cases(parsed)), parsed.problem


def _variant_report(
    result: VariantResult,
    run_dir: Path,
    run_id: str,
    rewrite: TestIdRewrite = _no_rewrite,
    readings: JunitReadings | None = None,
) -> VariantReport:
    cases: tuple[CaseResult, ...] = ()
    synthetic: list[CaseResult] = []
    problem = ""
    if result.provenance:  # what the journal holds, through the masking every report uses
        result = replace(result, provenance=masked(result.provenance))
    if result.junit:
        path = run_dir / result.junit
        known = readings.pop(path, None) if readings is not None else None
        read, problem = known if known is not None else junit_reading(parse_junit(path))
        # The stand-ins have stackmatrix's classname: looked for first, as most reports have none.
        if any(c.classname == ERROR_CLASSNAME for c in read):
            synthetic = [c for c in read if is_synthetic(c)]
            read = tuple(c for c in read if not is_synthetic(c))
        cases = read if rewrite is _no_rewrite else tuple(rewritten(c, rewrite) for c in read)
    stats, stats_problem = (
        read_stats(run_dir / result.stats) if result.stats else (None, "no resource samples")
    )
    # An unreadable earlier attempt only loses flakiness detail; the variant's flag remains.
    attempts = tuple(
        tuple(
            rewritten(c, rewrite)
            for c in iter_cases(parse_junit(run_dir / rel))
            if not is_synthetic(c)
        )
        for rel in result.attempt_junits
    )
    return VariantReport(
        result,
        run_dir,
        run_id,
        cases,
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


def _run_info(journal: RunJournal, run_dir: Path) -> RunInfo:
    return RunInfo(
        run_id=journal.run_id,
        run_dir=run_dir,
        shard=journal.shard,
        finished=journal.finished_at is not None and journal.exit_code is not None,
        exit_code=journal.exit_code,
        interrupted=journal.interrupted,
        matrix_variants=tuple(journal.matrix_variants),
        recorded=tuple(r.id for r in journal.variants),
        variants_exit_code=exit_code_of(journal.variants, interrupted=False),
    )


def report_of_journal(journal: RunJournal, run_dir: Path) -> RunReport:
    """The report of one journal whose relative paths start at *run_dir*."""
    rewrite, problems = test_id_rewrite(journal.test_ids)
    return RunReport(
        name=journal.name,
        run_ids=(journal.run_id,),
        run_dirs=(run_dir,),
        variants=tuple(
            _variant_report(r, run_dir, journal.run_id, rewrite) for r in journal.variants
        ),
        warnings=tuple(f"{run_dir / JOURNAL_NAME}: {p}" for p in problems),
        started_at=journal.started_at,
        finished_at=journal.finished_at,
        runs=(_run_info(journal, run_dir),),
        test_ids=tuple(journal.test_ids),
    )


def _read_journal(run_dir: Path) -> RunJournal:
    journal_path = run_dir / JOURNAL_NAME
    try:
        return RunJournal.read(run_dir)
    except FileNotFoundError as exc:
        raise ReportError(f"{journal_path}: no run journal here") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError(f"{journal_path}: cannot read the run journal: {exc}") from exc


def _in_matrix_order(
    variants: Mapping[str, VariantReport], journals: Sequence[RunJournal]
) -> tuple[VariantReport, ...]:
    """The variants in the order of the matrix (run.json's ``matrix_variants``); variants no
    matrix lists (older journals) after them, in the order they were read."""
    order = {
        v: n for n, v in enumerate(dict.fromkeys(x for j in journals for x in j.matrix_variants))
    }
    read = {v: n for n, v in enumerate(variants)}
    return tuple(
        sorted(variants.values(), key=lambda v: (v.id not in order, order.get(v.id, 0), read[v.id]))
    )


def load_runs(
    run_dirs: Sequence[Path],
    *,
    against_matrix: bool = False,
    readings: JunitReadings | None = None,
) -> RunReport:
    """Read the journals of *run_dirs* and the files they name; raise ReportError when a
    directory has no readable journal.

    Test ids are rewritten by each run's ``test_ids`` rules; variants come in matrix order.
    *against_matrix*: what the report misses is judged against the whole matrix (every
    variant and shard), not only against what the runs set out to run. *readings*: JUnit
    files already read, taken from there instead of being read again.
    """
    if not run_dirs:
        raise ReportError("no run directory given")
    chosen: dict[str, VariantReport] = {}
    warnings: list[str] = []
    journals: list[RunJournal] = []
    rules: tuple[Mapping[str, str], ...] = ()
    for run_dir in run_dirs:
        journal = _read_journal(run_dir)
        journals.append(journal)
        rewrite, problems = test_id_rewrite(journal.test_ids)
        warnings += [f"{run_dir / JOURNAL_NAME}: {p}" for p in problems]
        if journal.test_ids:
            if rules and tuple(journal.test_ids) != rules:
                warnings.append(
                    f"{run_dir}: its test id rewrites differ from the other runs'; each run's"
                    " own are applied to its tests"
                )
            rules = tuple(journal.test_ids)
        for result in journal.variants:
            report = _variant_report(result, run_dir, journal.run_id, rewrite, readings)
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
    combined = RunReport(
        name=journals[-1].name,
        run_ids=tuple(dict.fromkeys(j.run_id for j in journals)),
        run_dirs=tuple(run_dirs),
        variants=_in_matrix_order(chosen, journals),
        warnings=tuple(warnings),
        started_at=min(starts) if starts else None,
        finished_at=max(ends) if ends else None,
        prepare=_prepare_of(journals),
        runs=tuple(_run_info(j, d) for j, d in zip(journals, run_dirs, strict=True)),
        against_matrix=against_matrix,
        test_ids=rules,
    )
    if combined.completeness.mixed_matrices:
        combined = replace(
            combined,
            warnings=(
                *combined.warnings,
                "the run directories are of different matrices (their variant lists differ);"
                " what is missing is judged against all of them together",
            ),
        )
    return combined


def _prepare_of(journals: Sequence[RunJournal]) -> dict[str, float]:
    stages = [j.prepare for j in journals if j.prepare]
    keys = ("seconds", "pull_seconds", "build_seconds")
    return (
        {key: round(sum(float(s.get(key) or 0) for s in stages), 3) for key in keys}
        if stages
        else {}
    )
