"""Stock levels."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from shop._db import Connection, returned
from shop._errors import UnknownProductError
from shop._models import check_quantity

# The supplier's stock feed is applied with one MERGE: insert, update and delete in a
# single statement and a single pass over the feed. MERGE exists since PostgreSQL 15.
_APPLY_FEED = """
MERGE INTO stock AS s
USING (SELECT * FROM unnest(%(skus)s::text[], %(counts)s::integer[]) AS f (sku, on_hand)) AS f
ON s.sku = f.sku
WHEN MATCHED AND f.on_hand = 0 THEN
    DELETE
WHEN MATCHED AND s.on_hand <> f.on_hand THEN
    UPDATE SET on_hand = f.on_hand, updated_at = now()
WHEN NOT MATCHED AND f.on_hand > 0 THEN
    INSERT (sku, on_hand) VALUES (f.sku, f.on_hand)
"""

MERGE_SINCE = 15
"""The first PostgreSQL major version that has MERGE, which `Inventory.apply_feed` needs."""


class Inventory:
    """How many items of each product are on hand."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def on_hand(self, sku: str) -> int:
        """Items of the product in stock (0 for a product never stocked)."""
        row = self._conn.execute("SELECT on_hand FROM stock WHERE sku = %s", (sku,)).fetchone()
        return 0 if row is None else int(row[0])

    def receive(self, sku: str, quantity: int) -> int:
        """Add a delivery to the stock; returns the new count."""
        check_quantity(quantity)
        try:
            row = self._conn.execute(
                "INSERT INTO stock AS s (sku, on_hand) VALUES (%s, %s)"
                " ON CONFLICT (sku) DO UPDATE"
                " SET on_hand = s.on_hand + excluded.on_hand, updated_at = now()"
                " RETURNING on_hand",
                (sku, quantity),
            ).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise UnknownProductError(sku) from None
        return int(returned(row)[0])

    def apply_feed(self, feed: Mapping[str, int]) -> int:
        """Make the stock match a supplier's count per SKU; returns the rows changed.

        A count of 0 removes the product's stock row; SKUs not in the feed are left alone.
        Needs PostgreSQL 15 or later (MERGE).
        """
        for count in feed.values():
            check_quantity(count, allow_zero=True)
        skus = list(feed)
        with self._conn.transaction():
            unknown = self._conn.execute(
                "SELECT f.sku FROM unnest(%s::text[]) AS f (sku)"
                " WHERE NOT EXISTS (SELECT 1 FROM product AS p WHERE p.sku = f.sku)"
                " ORDER BY f.sku LIMIT 1",
                (skus,),
            ).fetchone()
            if unknown is not None:
                raise UnknownProductError(str(unknown[0]))
            cursor = self._conn.execute(
                _APPLY_FEED, {"skus": skus, "counts": [feed[sku] for sku in skus]}
            )
            return cursor.rowcount

    def low_stock(self, threshold: int) -> list[tuple[str, int]]:
        """(SKU, count) of products for sale with fewer than `threshold` items, fewest first."""
        rows = self._conn.execute(
            "SELECT p.sku, coalesce(s.on_hand, 0) AS on_hand"
            " FROM product AS p LEFT JOIN stock AS s USING (sku)"
            " WHERE p.active AND coalesce(s.on_hand, 0) < %s"
            " ORDER BY on_hand, p.sku",
            (threshold,),
        ).fetchall()
        return [(str(sku), int(count)) for sku, count in rows]
