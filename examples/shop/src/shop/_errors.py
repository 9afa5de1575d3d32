"""Errors the shop raises for requests it cannot fulfil."""

from __future__ import annotations


class ShopError(Exception):
    """Base class of every error the shop raises on purpose."""


class UnknownProductError(ShopError):
    """No product has this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"no product with SKU {sku!r}")
        self.sku = sku


class DuplicateProductError(ShopError):
    """A product with this SKU exists already."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with SKU {sku!r} exists already")
        self.sku = sku


class ProductUnavailableError(ShopError):
    """The product exists but is no longer sold."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"product {sku!r} is no longer sold")
        self.sku = sku


class OutOfStockError(ShopError):
    """Fewer items are in stock than an order needs."""

    def __init__(self, sku: str, wanted: int, available: int) -> None:
        super().__init__(f"product {sku!r}: {wanted} wanted, {available} in stock")
        self.sku = sku
        self.wanted = wanted
        self.available = available


class UnknownCartError(ShopError):
    """No open cart has this id."""

    def __init__(self, cart_id: int) -> None:
        super().__init__(f"no open cart with id {cart_id}")
        self.cart_id = cart_id


class EmptyCartError(ShopError):
    """A cart without items cannot be checked out."""

    def __init__(self, cart_id: int) -> None:
        super().__init__(f"cart {cart_id} is empty")
        self.cart_id = cart_id


class UnknownOrderError(ShopError):
    """No order has this id."""

    def __init__(self, order_id: int) -> None:
        super().__init__(f"no order with id {order_id}")
        self.order_id = order_id


class InvalidTransitionError(ShopError):
    """An order cannot move from its current status to the requested one."""

    def __init__(self, order_id: int, current: str, requested: str) -> None:
        super().__init__(f"order {order_id} is {current}; it cannot become {requested}")
        self.order_id = order_id
        self.current = current
        self.requested = requested
