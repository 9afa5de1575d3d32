"""The database server under test and the isolation of this test session."""

from __future__ import annotations

import os

import pytest

import shop


def test_server_is_the_version_the_matrix_asked_for(store: shop.Shop) -> None:
    wanted = os.environ.get("STACKMATRIX_AXIS_POSTGRES")
    if wanted is None:
        pytest.skip("not run by stackmatrix: no postgres axis to compare with")

    assert store.server_version == int(wanted)


def test_tables_live_in_the_session_schema_only(conn: shop.Connection, schema: str) -> None:
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'product'"
    ).fetchall()

    assert (schema,) in rows
    assert ("public",) not in rows
    assert conn.execute("SELECT current_schema()").fetchone() == (schema,)
