"""A small shop on PostgreSQL: catalog, stock, carts and orders, with an optional Redis cache."""

from shop._cache import ProductCache
from shop._catalog import Catalog
from shop._db import Connection, connect, drop_schema, empty_tables, install_schema, server_version
from shop._errors import (
    DuplicateProductError,
    EmptyCartError,
    InvalidTransitionError,
    OutOfStockError,
    ProductUnavailableError,
    ShopError,
    UnknownCartError,
    UnknownOrderError,
    UnknownProductError,
)
from shop._inventory import MERGE_SINCE, Inventory
from shop._models import Cart, CartLine, Order, OrderLine, OrderStatus, Product
from shop._orders import Orders
from shop._shop import Shop

__all__ = [
    "MERGE_SINCE",
    "Cart",
    "CartLine",
    "Catalog",
    "Connection",
    "DuplicateProductError",
    "EmptyCartError",
    "InvalidTransitionError",
    "Inventory",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Orders",
    "OutOfStockError",
    "Product",
    "ProductCache",
    "ProductUnavailableError",
    "Shop",
    "ShopError",
    "UnknownCartError",
    "UnknownOrderError",
    "UnknownProductError",
    "connect",
    "drop_schema",
    "empty_tables",
    "install_schema",
    "server_version",
]
