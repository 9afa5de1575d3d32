"""The shop as one object."""

from __future__ import annotations

from shop._cache import ProductCache
from shop._catalog import Catalog
from shop._db import Connection, server_version
from shop._inventory import Inventory
from shop._orders import Orders


class Shop:
    """Catalog, inventory and orders over one connection, with an optional product cache."""

    def __init__(self, conn: Connection, cache: ProductCache | None = None) -> None:
        self.catalog = Catalog(conn, cache)
        self.inventory = Inventory(conn)
        self.orders = Orders(conn, self.catalog)
        self._conn = conn

    @property
    def server_version(self) -> int:
        """Major version of the PostgreSQL server, e.g. 15."""
        return server_version(self._conn)
