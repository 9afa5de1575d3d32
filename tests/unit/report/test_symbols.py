"""Every member of every enum that people read has its words and icon, and no row is stale."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import pytest

from stackmatrix.junit.read import Outcome
from stackmatrix.report import symbols
from stackmatrix.report.baseline import Change, Mark
from stackmatrix.report.model import Verdict
from stackmatrix.results.journal import Status

TABLES: list[tuple[type[enum.Enum], Mapping[Any, object]]] = [
    (Status, symbols.STATUS),
    (Outcome, symbols.OUTCOME),
    (Change, symbols.CHANGE),
    (Mark, symbols.MARK),
    (Verdict, symbols.VERDICT),
]


@pytest.mark.parametrize(("kind", "table"), TABLES, ids=lambda x: getattr(x, "__name__", ""))
def test_every_member_has_exactly_one_row(
    kind: type[enum.Enum], table: Mapping[Any, object]
) -> None:
    assert set(table) == set(kind)


@pytest.mark.parametrize(("kind", "table"), TABLES, ids=lambda x: getattr(x, "__name__", ""))
def test_no_word_or_icon_is_empty(kind: type[enum.Enum], table: Mapping[Any, object]) -> None:
    for member in kind:
        look = table[member]
        assert all(str(part).strip() for part in vars(look).values()), (member, look)


def test_statuses_and_outcomes_read_apart() -> None:
    # Two statuses with the same label would make a table ambiguous.
    labels = [look.label for look in symbols.STATUS.values()]
    assert len(set(labels)) == len(labels)
    words = [look.word for look in symbols.OUTCOME.values()]
    assert len(set(words)) == len(words)
