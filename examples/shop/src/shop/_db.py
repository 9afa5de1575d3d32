"""Connections and the database schema of the shop."""

from __future__ import annotations

import re
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import sql

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
Row = TypeVar("Row")

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# Tables in an order that TRUNCATE and DROP accept (children first).
TABLES = ("order_line", "orders", "cart_item", "cart", "stock", "product")

# Plain SQL that PostgreSQL 13 and later accept. Version-dependent SQL lives in the
# functions that need it, so an old server still gets the whole schema.
_DDL = """
CREATE TABLE product (
    sku          text PRIMARY KEY CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]{2,31}$'),
    name         text NOT NULL CHECK (name <> ''),
    price_cents  integer NOT NULL CHECK (price_cents >= 0),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE stock (
    sku          text PRIMARY KEY REFERENCES product (sku) ON DELETE CASCADE,
    on_hand      integer NOT NULL CHECK (on_hand >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cart (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cart_item (
    cart_id      bigint NOT NULL REFERENCES cart (id) ON DELETE CASCADE,
    sku          text NOT NULL REFERENCES product (sku),
    quantity     integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (cart_id, sku)
);
CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer     text NOT NULL,
    status       text NOT NULL DEFAULT 'placed'
                 CHECK (status IN ('placed', 'paid', 'shipped', 'cancelled')),
    total_cents  integer NOT NULL CHECK (total_cents >= 0),
    placed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE order_line (
    order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku              text NOT NULL REFERENCES product (sku),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX orders_customer ON orders (customer, id);
"""


def _check_schema_name(schema: str) -> str:
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema name {schema!r} must match {SCHEMA_NAME.pattern}")
    return schema


def connect(url: str, *, schema: str = "public") -> Connection:
    """Open an autocommit connection to `url` whose tables resolve in `schema`."""
    _check_schema_name(schema)
    return psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}")


def install_schema(conn: Connection, schema: str) -> None:
    """Create `schema` and the shop's tables in it; fails if the tables exist."""
    _check_schema_name(schema)
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(_DDL)


def drop_schema(conn: Connection, schema: str) -> None:
    """Drop `schema` and everything in it, if it exists."""
    _check_schema_name(schema)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def empty_tables(conn: Connection) -> None:
    """Delete every row of the shop's tables (in the connection's schema)."""
    names = sql.SQL(", ").join(sql.Identifier(name) for name in TABLES)
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(names))


def server_version(conn: Connection) -> int:
    """The server's major version, e.g. 15."""
    return conn.info.server_version // 10000


def returned(row: Row | None) -> Row:
    """The row a RETURNING clause produced; it always produces one when the statement ran."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row
