"""Values the shop hands out: products, carts and orders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

SKU_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{2,31}")


def check_sku(sku: str) -> str:
    """Return `sku` if it is a well-formed SKU, else raise ValueError."""
    if not SKU_PATTERN.fullmatch(sku):
        raise ValueError(f"malformed SKU {sku!r}: 3-32 of A-Z, 0-9 and '-'")
    return sku


def check_quantity(quantity: int, *, allow_zero: bool = False) -> int:
    """Return `quantity` if it is a sensible item count, else raise ValueError."""
    lowest = 0 if allow_zero else 1
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < lowest:
        raise ValueError(f"quantity must be an integer >= {lowest}, not {quantity!r}")
    return quantity


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Product:
    """A product of the catalog; prices are integer cents."""

    sku: str
    name: str
    price_cents: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class CartLine:
    """One product in a cart, at the product's current price."""

    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        """Price of the line."""
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Cart:
    """An open cart and its lines, ordered by SKU."""

    id: int
    customer: str
    lines: tuple[CartLine, ...]

    @property
    def total_cents(self) -> int:
        """Price of the whole cart."""
        return sum(line.total_cents for line in self.lines)


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One product of an order, at the price it had when the order was placed."""

    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class Order:
    """A placed order and its lines, ordered by SKU."""

    id: int
    customer: str
    status: OrderStatus
    total_cents: int
    lines: tuple[OrderLine, ...]
