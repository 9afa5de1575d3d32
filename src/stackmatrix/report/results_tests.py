"""The tests of ``results.json`` (format 2): each test once, with one short cell per variant.

A million test x variant rows, one JSON object each (format 1), take ~190 bytes apiece; most
of them say "passed, as before". Format 2 keeps:

- ``columns``: the variant ids the cells stand for, in order;
- ``tests``: ``[test id, cells]`` per test, *cells* one token per column, space-separated:
  ``-`` (no row for that variant), ``#`` (the row is in ``details``), or the outcome letter
  (``p`` passed, ``f`` failed, ``e`` error, ``s`` skipped), ``*`` when flaky, ``=`` when the
  baseline's outcome was the same, then the history marks oldest first (``P`` pass, ``F``
  fail, ``K`` flaky, ``S`` skip);
- ``details``: the rows a token cannot say (a message, a change other than ``unchanged``, a
  baseline outcome that differs), in full, as format 1 writes them.

:func:`results_rows` turns the tests of either format back into format 1's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from stackmatrix.junit.read import Outcome
from stackmatrix.report.baseline import CaseChange, CaseRecord, Change, Mark

ABSENT = "-"
DETAILED = "#"
FLAKY = "*"
SAME_BEFORE = "="

_OUTCOME_LETTER = {
    Outcome.PASSED: "p",
    Outcome.FAILED: "f",
    Outcome.ERROR: "e",
    Outcome.SKIPPED: "s",
}
_MARK_LETTER = {Mark.PASS: "P", Mark.FAIL: "F", Mark.FLAKY: "K", Mark.SKIP: "S"}
_LETTER_OUTCOME = {letter: o.value for o, letter in _OUTCOME_LETTER.items()}
_LETTER_MARK = {letter: m.value for m, letter in _MARK_LETTER.items()}

Row = CaseChange | CaseRecord
_VARIANT = attrgetter("variant")
_UNKNOWN = "?"  # not a token (a token starts with an outcome letter)


def _token(row: Row) -> str | None:
    """The cell of *row*, or None when only a full row says it."""
    outcome = row.outcome
    if outcome is None or (row.message and outcome is not Outcome.PASSED):
        return None
    history = row.history
    same = ""
    if isinstance(row, CaseChange):
        if row.change is not Change.UNCHANGED or row.before is None:
            return None
        if len(history) < 2 or history[-2] is not row.before:
            return None
        if row.before_outcome is not None:
            if row.before_outcome is not outcome:
                return None
            same = SAME_BEFORE
    return (
        _OUTCOME_LETTER[outcome]
        + (FLAKY if row.flaky else "")
        + same
        + "".join([_MARK_LETTER[m] for m in history])
    )


def encode_tests(
    rows: Sequence[Row], full_row: Callable[[Row], dict[str, Any]]
) -> dict[str, list[Any]]:
    """``columns``, ``tests`` and ``details`` of *rows*; *full_row* writes a row in full."""
    columns = {variant: n for n, variant in enumerate(dict.fromkeys(map(_VARIANT, rows)))}
    empty = [ABSENT] * len(columns)
    tests: dict[str, list[str]] = {}
    details: list[dict[str, Any]] = []
    tokens: dict[tuple[Any, ...], str | None] = {}
    variant: str | None = None
    column = 0
    for row in rows:
        if row.variant is not variant:  # rows come variant by variant
            variant = row.variant
            column = columns[variant]
        cells = tests.get(row.test)
        if cells is None:
            cells = tests[row.test] = empty.copy()
        elif cells[column] != ABSENT:  # the same test twice on a variant: the second in full
            details.append(full_row(row))
            continue
        if isinstance(row, CaseChange):
            token = _token(row)
        else:  # a run's own records: few distinct ones
            key = (row.outcome, row.flaky, row.message, row.history)
            token = tokens.get(key, _UNKNOWN)
            if token is _UNKNOWN:
                token = tokens[key] = _token(row)
        if token is None:
            details.append(full_row(row))
            token = DETAILED
        cells[column] = token
    return {
        "columns": list(columns),
        "tests": [[test, " ".join(cells)] for test, cells in tests.items()],
        "details": details,
    }


def _row_of(variant: str, test: str, token: str, *, compared: bool) -> dict[str, Any]:
    outcome = _LETTER_OUTCOME[token[0]]
    rest = token[1:]
    flaky = rest.startswith(FLAKY)
    rest = rest[1:] if flaky else rest
    same = rest.startswith(SAME_BEFORE)
    rest = rest[1:] if same else rest
    history = [_LETTER_MARK[m] for m in rest]
    row: dict[str, Any] = {
        "variant": variant,
        "test": test,
        "outcome": outcome,
        "flaky": flaky,
        "change": Change.UNCHANGED.value if compared else None,
        "before": history[-2] if compared else None,
        "history": history,
    }
    if same:
        row["before_outcome"] = outcome
    return row


def _invalid(where: str, what: str) -> ValueError:
    return ValueError(f"{where}: {what}")


def _split(tests: Any, columns: list[str]) -> list[tuple[str, list[str]]]:
    """``[test, cells]`` entries as (test, one token per column)."""
    if not isinstance(tests, list):
        raise ValueError("'tests' must be a list of [test, cells]")
    split: list[tuple[str, list[str]]] = []
    for index, entry in enumerate(tests):
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
        ):
            raise _invalid(f"tests[{index}]", "must be [test, cells], two strings")
        cells = entry[1].split(" ")
        if len(cells) != len(columns):
            raise _invalid(f"tests[{index}]", f"{len(cells)} cells for {len(columns)} columns")
        split.append((entry[0], cells))
    return split


def _details(data: Mapping[str, Any]) -> dict[tuple[Any, Any], list[Mapping[str, Any]]]:
    """The rows in full, by (variant, test), in the order given."""
    details = data.get("details", [])
    if not isinstance(details, list) or not all(isinstance(e, Mapping) for e in details):
        raise ValueError("'details' must be a list of objects")
    by_key: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for entry in details:
        by_key.setdefault((entry.get("variant"), entry.get("test")), []).append(entry)
    return by_key


def results_rows(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The test x variant rows of a ``results.json`` document, as format 1 lists them (format
    2's variant by variant); raises ValueError on cells that cannot be read."""
    if data.get("format") == 1 or "columns" not in data:
        raw = data.get("tests", [])
        if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
            raise ValueError("'tests' must be a list of objects")
        return raw
    columns = data.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ValueError("'columns' must be a list of variant ids")
    split = _split(data.get("tests"), columns)
    by_key = _details(data)
    compared = data.get("baseline") is not None
    rows: list[Mapping[str, Any]] = []
    for column, variant in enumerate(columns):
        for index, (test, cells) in enumerate(split):
            token = cells[column]
            if token == ABSENT:
                continue
            if token == DETAILED:
                waiting = by_key.get((variant, test))
                if not waiting:
                    raise _invalid(f"tests[{index}]", f"no details for {variant}")
                rows.append(waiting.pop(0))
                continue
            try:
                rows.append(_row_of(variant, test, token, compared=compared))
            except (KeyError, IndexError) as exc:
                raise _invalid(f"tests[{index}]", f"unreadable cell {token!r}") from exc
    rows += [entry for waiting in by_key.values() for entry in waiting]
    return rows
