"""The product catalog."""

from __future__ import annotations

from typing import Any

import psycopg

from shop._cache import ProductCache
from shop._db import Connection, returned
from shop._errors import DuplicateProductError, UnknownProductError
from shop._models import Product, check_sku


def _product(row: tuple[Any, ...]) -> Product:
    sku, name, price_cents, active = row
    return Product(sku=sku, name=name, price_cents=price_cents, active=active)


def _check_price(price_cents: int) -> int:
    if isinstance(price_cents, bool) or not isinstance(price_cents, int) or price_cents < 0:
        raise ValueError(f"price must be a non-negative number of cents, not {price_cents!r}")
    return price_cents


class Catalog:
    """Products by SKU; reads go through the cache when there is one."""

    def __init__(self, conn: Connection, cache: ProductCache | None = None) -> None:
        self._conn = conn
        self.cache = cache

    def add(self, sku: str, name: str, price_cents: int) -> Product:
        """Add a product that is for sale at once."""
        check_sku(sku)
        _check_price(price_cents)
        if not name.strip():
            raise ValueError("a product needs a name")
        try:
            row = self._conn.execute(
                "INSERT INTO product (sku, name, price_cents) VALUES (%s, %s, %s)"
                " RETURNING sku, name, price_cents, active",
                (sku, name.strip(), price_cents),
            ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise DuplicateProductError(sku) from None
        return _product(returned(row))

    def get(self, sku: str) -> Product:
        """The product with this SKU, sold or not."""
        if self.cache is not None:
            cached = self.cache.get(sku)
            if cached is not None:
                return cached
        row = self._conn.execute(
            "SELECT sku, name, price_cents, active FROM product WHERE sku = %s", (sku,)
        ).fetchone()
        if row is None:
            raise UnknownProductError(sku)
        product = _product(row)
        if self.cache is not None:
            self.cache.put(product)
        return product

    def products(self, *, include_inactive: bool = False) -> list[Product]:
        """All products for sale (or all products), ordered by SKU."""
        rows = self._conn.execute(
            "SELECT sku, name, price_cents, active FROM product WHERE active OR %s ORDER BY sku",
            (include_inactive,),
        ).fetchall()
        return [_product(row) for row in rows]

    def search(self, text: str) -> list[Product]:
        """Products for sale whose name contains `text`, ignoring case, ordered by SKU."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._conn.execute(
            "SELECT sku, name, price_cents, active FROM product"
            " WHERE active AND name ILIKE %s ORDER BY sku",
            (pattern,),
        ).fetchall()
        return [_product(row) for row in rows]

    def set_price(self, sku: str, price_cents: int) -> Product:
        """Change the price; open carts see the new price, placed orders keep theirs."""
        _check_price(price_cents)
        row = self._conn.execute(
            "UPDATE product SET price_cents = %s WHERE sku = %s"
            " RETURNING sku, name, price_cents, active",
            (price_cents, sku),
        ).fetchone()
        return self._changed(sku, row)

    def withdraw(self, sku: str) -> Product:
        """Stop selling the product; it stays in past orders."""
        row = self._conn.execute(
            "UPDATE product SET active = false WHERE sku = %s"
            " RETURNING sku, name, price_cents, active",
            (sku,),
        ).fetchone()
        return self._changed(sku, row)

    def _changed(self, sku: str, row: tuple[Any, ...] | None) -> Product:
        if self.cache is not None:
            self.cache.invalidate(sku)
        if row is None:
            raise UnknownProductError(sku)
        return _product(row)
