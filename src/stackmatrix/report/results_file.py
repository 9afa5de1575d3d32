"""``results.json`` (what a report found, with its history and classification), and reading a
baseline from whatever a previous run left: a run directory, a report directory, a ``run.json``,
a ``results.json`` or a merged ``junit.xml``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from stackmatrix.errors import ReportError
from stackmatrix.junit.read import Outcome, parse_junit
from stackmatrix.report.baseline import (
    CaseChange,
    CaseRecord,
    Comparison,
    Mark,
    Snapshot,
    VariantRecord,
    outcome_mark,
    snapshot_of,
    variant_mark,
)
from stackmatrix.report.merged_junit import MergedVariant, group_by_variant, merged_cases
from stackmatrix.report.model import RunReport, report_of_journal
from stackmatrix.report.provenance import provenance_dict, provenance_from
from stackmatrix.report.results_tests import encode_tests, results_rows
from stackmatrix.results.journal import JOURNAL_NAME, Provenance, RunJournal, Status

RESULTS_NAME = "results.json"
RESULTS_KIND = "stackmatrix-results"
RESULTS_FORMAT = 2
"""Format 2 lists each test once, with a cell per variant (:mod:`.results_tests`); format 1
(a row per test x variant) is still read."""
MERGED_JUNIT_NAME = "junit.xml"


# --------------------------------------------------------------------------------------------
# Writing results.json


def _history(marks: Sequence[Mark]) -> list[str]:
    return [m.value for m in marks]


MESSAGE_LIMIT = 2000


def _test_row(case: CaseChange | CaseRecord) -> dict[str, Any]:
    change = case.change if isinstance(case, CaseChange) else None
    before = case.before if isinstance(case, CaseChange) else None
    before_outcome = case.before_outcome if isinstance(case, CaseChange) else None
    row: dict[str, Any] = {
        "variant": case.variant,
        "test": case.test,
        "outcome": case.outcome.value if case.outcome else None,
        "flaky": case.flaky,
        "change": change.value if change else None,
        "before": before.value if before else None,
        "history": _history(case.history),
    }
    if before_outcome is not None:  # added in a later version; older readers ignore it
        row["before_outcome"] = before_outcome.value
    if case.message and case.outcome is not Outcome.PASSED:
        message = case.message
        if len(message) > MESSAGE_LIMIT:  # the full text stays in the variant's junit.xml
            message = message[:MESSAGE_LIMIT] + f"… ({len(case.message)} characters in all)"
        row["message"] = message
    return row


def results_document(
    report: RunReport, current: Snapshot, comparison: Comparison | None
) -> dict[str, Any]:
    """The content of ``results.json``: every variant (status, flaky, attempts) and every test x
    variant (outcome), with the history and, given a comparison, the classification."""
    changes = {v.id: v for v in comparison.variants} if comparison else {}
    variants: list[dict[str, Any]] = []
    for v in current.variants:
        vc = changes.get(v.id)
        row: dict[str, Any] = {
            "id": v.id,
            "status": v.status.value,
            "flaky": v.flaky,
            "attempts": v.attempts,
            "experimental": v.experimental,
            "ran_tests": v.ran_tests,
            "reason": v.reason,
            "change": vc.change.value if vc else None,
            "before": vc.before.value if vc and vc.before else None,
            "history": _history(vc.history if vc else v.history),
        }
        # Added in a later version (older readers ignore them): what the variant ran, and
        # what of it changed since the baseline.
        if v.provenance:
            row["provenance"] = provenance_dict(v.provenance)
        if vc is not None and vc.provenance_compared:
            row["provenance_changes"] = [c.to_dict() for c in vc.provenance_changes]
        variants.append(row)
    for vc in comparison.variants if comparison else ():
        if vc.status is None:
            variants.append(
                {
                    "id": vc.id,
                    "status": None,
                    "change": vc.change.value,
                    "before": vc.before.value if vc.before else None,
                    "history": _history(vc.history),
                }
            )
    rows = comparison.cases if comparison is not None else current.cases
    return {
        "kind": RESULTS_KIND,
        "format": RESULTS_FORMAT,
        "name": report.name,
        "run_ids": list(report.run_ids),
        "baseline": comparison.baseline if comparison else None,
        "variants": variants,
        **encode_tests(rows, _test_row),
    }


_LISTS = ("variants", "columns", "tests", "details")
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False)  # json.dumps makes one per call
_STRING = encode_basestring  # a string as that encoder writes it (ensure_ascii=False)


def _encode_row(row: Any) -> str:
    """*row* as ``_ROW_ENCODER`` writes it; a test's ``[id, cells]`` by a shorter path, as
    there are tens of thousands of them."""
    if type(row) is list and len(row) == 2 and type(row[0]) is str and type(row[1]) is str:
        return f"[{_STRING(row[0])}, {_STRING(row[1])}]"
    return _ROW_ENCODER.encode(row)


def dump_results(document: Mapping[str, Any]) -> str:
    """``results.json`` text: one variant or test a line, so it stays small and diffable."""
    head = {k: v for k, v in document.items() if k not in _LISTS}
    # One list of pieces joined once: the text of a million testcases is tens of megabytes.
    pieces = ["{\n"]
    pieces += [
        f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n" for k, v in head.items()
    ]
    keys = [k for k in _LISTS if k in document or k in ("variants", "tests")]
    for index, key in enumerate(keys):
        rows = document.get(key, [])
        tail = "\n" if index == len(keys) - 1 else ",\n"
        if rows:
            pieces.append(f'  "{key}": [\n    ')
            pieces.append(",\n    ".join([_encode_row(row) for row in rows]))
            pieces.append(f"\n  ]{tail}")
        else:
            pieces.append(f'  "{key}": []{tail}')
    pieces.append("}\n")
    return "".join(pieces)


# --------------------------------------------------------------------------------------------
# Reading results.json


class _Invalid(ValueError):
    """A source that cannot serve as a baseline, and why."""


def _field(entry: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Invalid(f"{where}: {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def _marks(entry: Mapping[str, Any], where: str) -> tuple[Mark, ...]:
    raw = entry.get("history", [])
    try:
        return tuple(Mark(m) for m in raw) if isinstance(raw, list) else ()
    except ValueError as exc:
        raise _Invalid(f"{where}: history: {exc}") from exc


def _provenance(entry: Mapping[str, Any], where: str) -> Provenance:
    try:
        return provenance_from(entry.get("provenance"), where)
    except ValueError as exc:
        raise _Invalid(str(exc)) from exc


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
        raise _Invalid(f"{key!r} must be a list of objects")
    return raw


def snapshot_from_results(data: Any, source: str) -> Snapshot:
    """The snapshot a ``results.json`` document describes; raises ValueError when it is not one."""
    if not isinstance(data, Mapping) or data.get("kind") != RESULTS_KIND:
        raise _Invalid(f'not a stackmatrix results file (no "kind": "{RESULTS_KIND}")')
    version = data.get("format")
    if not isinstance(version, int) or version > RESULTS_FORMAT:
        raise _Invalid(f"format {version!r} is not one this stackmatrix reads ({RESULTS_FORMAT})")
    variants = []
    for index, entry in enumerate(_entries(data, "variants")):
        where = f"variants[{index}]"
        if entry.get("status") is None:
            continue  # removed in that run: no longer part of the history
        try:
            status = Status(entry["status"])
        except ValueError as exc:
            raise _Invalid(f"{where}: {exc}") from exc
        variants.append(
            VariantRecord(
                id=_field(entry, "id", str, where),
                status=status,
                flaky=bool(entry.get("flaky", False)),
                attempts=int(entry.get("attempts", 1) or 1),
                ran_tests=bool(entry.get("ran_tests", False)),
                experimental=bool(entry.get("experimental", False)),
                reason=str(entry.get("reason", "")),
                history=_marks(entry, where),
                provenance=_provenance(entry, where),
            )
        )
    try:
        rows = results_rows(data)
    except ValueError as exc:
        raise _Invalid(str(exc)) from exc
    cases = []
    for index, entry in enumerate(rows):
        where = f"tests[{index}]"
        if entry.get("change") == "removed":
            continue
        raw = entry.get("outcome")
        try:
            outcome = Outcome(raw) if raw is not None else None
        except ValueError as exc:
            raise _Invalid(f"{where}: {exc}") from exc
        cases.append(
            CaseRecord(
                variant=_field(entry, "variant", str, where),
                test=_field(entry, "test", str, where),
                outcome=outcome,
                flaky=bool(entry.get("flaky", False)),
                message=str(entry.get("message", "")),
                history=_marks(entry, where),
            )
        )
    return Snapshot(source, tuple(variants), tuple(cases))


# --------------------------------------------------------------------------------------------
# Reading a merged junit.xml


def _variant_status(outcomes: Sequence[Outcome], stand_ins: Sequence[Outcome], exp: bool) -> Status:
    if Outcome.ERROR in stand_ins:
        return Status.EXPERIMENTAL_FAILED if exp else Status.ERROR
    if stand_ins and not outcomes:
        return Status.CANCELLED
    if any(o in (Outcome.FAILED, Outcome.ERROR) for o in outcomes):
        return Status.EXPERIMENTAL_FAILED if exp else Status.FAILED
    return Status.PASSED


def snapshot_from_merged_junit(path: Path) -> Snapshot:
    """The snapshot of a merged ``junit.xml`` (variants from ``stackmatrix.variant`` properties
    or ``[<variant>]`` classname prefixes); variant statuses are inferred from the testcases."""
    parsed = parse_junit(path)
    if parsed.root is None:
        raise _Invalid(parsed.problem)
    variants = group_by_variant(merged_cases(parsed.root, path.stem))
    if not variants:
        raise _Invalid("no testcase carries a variant: not a report merged by stackmatrix")
    return _snapshot_of_merged(variants, str(path))


def _snapshot_of_merged(variants: Mapping[str, MergedVariant], source: str) -> Snapshot:
    """The snapshot of the *variants* of a merged ``junit.xml``, one run's history each."""
    records, cases = [], []
    for variant, found in variants.items():
        status = _variant_status(
            [o for o, _ in found.tests.values()], found.stand_ins, found.experimental
        )
        mark = variant_mark(status)
        records.append(
            VariantRecord(
                id=variant,
                status=status,
                ran_tests=bool(found.tests),
                experimental=found.experimental,
                history=(mark,) if mark else (),
                provenance=found.provenance,
            )
        )
        cases += [
            CaseRecord(variant, test, outcome, message=msg, history=(outcome_mark(outcome),))
            for test, (outcome, msg) in found.tests.items()
        ]
    return Snapshot(source, tuple(records), tuple(cases))


# --------------------------------------------------------------------------------------------
# Loading a baseline


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _Invalid(f"cannot read it: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise _Invalid(f"not valid JSON: {exc}") from exc


def _from_journal(path: Path, data: Any) -> Snapshot:
    if not isinstance(data, Mapping):
        raise _Invalid("not a run journal: not a JSON object")
    try:
        journal = RunJournal.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _Invalid(f"not a readable run journal: {exc!r}") from exc
    report = report_of_journal(journal, path.parent)
    snapshot = snapshot_of(report, str(path))
    missing = [v.id for v in report.variants if v.result.junit and not v.cases and v.junit_problem]
    if missing:
        note = (
            f"baseline {path}: the JUnit reports of {len(missing)} variants cannot be read next"
            " to it; those variants are compared by status only"
        )
        return replace(snapshot, notes=(note,))
    return snapshot


def _from_json_file(path: Path) -> Snapshot:
    data = _read_json(path)
    if isinstance(data, Mapping) and data.get("kind") == RESULTS_KIND:
        return snapshot_from_results(data, str(path))
    if isinstance(data, Mapping) and "run_id" in data and "variants" in data:
        return _from_journal(path, data)
    raise _Invalid(f"neither a run journal ({JOURNAL_NAME}) nor a {RESULTS_NAME}")


def _from_results_file(path: Path) -> Snapshot:
    return snapshot_from_results(_read_json(path), str(path))


def _from_journal_file(path: Path) -> Snapshot:
    return _from_journal(path, _read_json(path))


def _from_file(path: Path) -> Snapshot:
    if path.suffix.lower() == ".xml":
        return snapshot_from_merged_junit(path)
    return _from_json_file(path)


_IN_A_DIRECTORY: tuple[tuple[str, Callable[[Path], Snapshot]], ...] = (
    (RESULTS_NAME, _from_results_file),
    (JOURNAL_NAME, _from_journal_file),
    (MERGED_JUNIT_NAME, snapshot_from_merged_junit),
)


def _read(reader: Callable[[Path], Snapshot], path: Path) -> Snapshot:
    """Run *reader*; any sign of a malformed file becomes an _Invalid with its message."""
    try:
        return reader(path)
    except _Invalid:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Invalid(f"malformed: {exc!r}") from exc


def load_baseline(path: Path) -> Snapshot:
    """The snapshot of a previous run: a run or report directory (its ``results.json``, else
    ``run.json``, else merged ``junit.xml``), or one of those files. Raises ReportError naming
    the path and the problem."""
    where = f"baseline {path}"
    try:
        if not path.exists():
            raise ReportError(f"{where}: no such file or directory")
        if not path.is_dir():
            return _read(_from_file, path)
        problems: list[str] = []
        for name, read in _IN_A_DIRECTORY:
            if not (path / name).is_file():
                continue
            try:
                snapshot = _read(read, path / name)
            except _Invalid as exc:
                problems.append(f"{name}: {exc}")
                continue
            # An unusable file was passed over for the next one: say so.
            notes = tuple(f"{where}: ignored {p}" for p in problems)
            return replace(snapshot, source=str(path), notes=(*notes, *snapshot.notes))
    except _Invalid as exc:
        raise ReportError(f"{where}: {exc}") from exc
    except OSError as exc:
        raise ReportError(f"{where}: cannot read it: {exc.strerror or exc}") from exc
    if problems:
        raise ReportError(f"{where}: {'; '.join(problems)}")
    raise ReportError(
        f"{where}: not a run or report directory (it has no {RESULTS_NAME}, {JOURNAL_NAME} or"
        f" {MERGED_JUNIT_NAME})"
    )
