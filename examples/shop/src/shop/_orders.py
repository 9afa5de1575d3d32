"""Carts, checkout and the life of an order."""

from __future__ import annotations

from shop._catalog import Catalog
from shop._db import Connection, returned
from shop._errors import (
    EmptyCartError,
    InvalidTransitionError,
    OutOfStockError,
    ProductUnavailableError,
    UnknownCartError,
    UnknownOrderError,
)
from shop._models import Cart, CartLine, Order, OrderLine, OrderStatus, check_quantity

_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class Orders:
    """Carts and orders of customers."""

    def __init__(self, conn: Connection, catalog: Catalog) -> None:
        self._conn = conn
        self._catalog = catalog

    def new_cart(self, customer: str) -> int:
        """Open an empty cart; returns its id."""
        if not customer.strip():
            raise ValueError("a cart needs a customer")
        row = self._conn.execute(
            "INSERT INTO cart (customer) VALUES (%s) RETURNING id", (customer.strip(),)
        ).fetchone()
        return int(returned(row)[0])

    def add_item(self, cart_id: int, sku: str, quantity: int = 1) -> Cart:
        """Put `quantity` more of a product for sale into the cart."""
        check_quantity(quantity)
        if not self._catalog.get(sku).active:
            raise ProductUnavailableError(sku)
        with self._conn.transaction():
            self._lock_cart(cart_id)
            self._conn.execute(
                "INSERT INTO cart_item AS c (cart_id, sku, quantity) VALUES (%s, %s, %s)"
                " ON CONFLICT (cart_id, sku) DO UPDATE"
                " SET quantity = c.quantity + excluded.quantity",
                (cart_id, sku, quantity),
            )
        return self.cart(cart_id)

    def remove_item(self, cart_id: int, sku: str) -> Cart:
        """Take a product out of the cart entirely."""
        with self._conn.transaction():
            self._lock_cart(cart_id)
            self._conn.execute(
                "DELETE FROM cart_item WHERE cart_id = %s AND sku = %s", (cart_id, sku)
            )
        return self.cart(cart_id)

    def cart(self, cart_id: int) -> Cart:
        """The cart with its lines at today's prices."""
        row = self._conn.execute("SELECT customer FROM cart WHERE id = %s", (cart_id,)).fetchone()
        if row is None:
            raise UnknownCartError(cart_id)
        lines = self._conn.execute(
            "SELECT c.sku, p.name, c.quantity, p.price_cents"
            " FROM cart_item AS c JOIN product AS p USING (sku)"
            " WHERE c.cart_id = %s ORDER BY c.sku",
            (cart_id,),
        ).fetchall()
        return Cart(
            id=cart_id,
            customer=str(row[0]),
            lines=tuple(CartLine(sku, name, qty, price) for sku, name, qty, price in lines),
        )

    def checkout(self, cart_id: int) -> Order:
        """Turn the cart into an order: all or nothing, reserving stock; the cart is closed."""
        with self._conn.transaction():
            customer = self._lock_cart(cart_id)
            items = self._conn.execute(
                "SELECT c.sku, c.quantity, p.price_cents, p.active"
                " FROM cart_item AS c JOIN product AS p USING (sku)"
                " WHERE c.cart_id = %s ORDER BY c.sku",
                (cart_id,),
            ).fetchall()
            if not items:
                raise EmptyCartError(cart_id)
            skus = [sku for sku, _, _, _ in items]
            # Rows are locked in SKU order so that concurrent checkouts cannot deadlock.
            stock: dict[str, int] = dict(
                self._conn.execute(
                    "SELECT sku, on_hand FROM stock WHERE sku = ANY(%s) ORDER BY sku FOR UPDATE",
                    (skus,),
                ).fetchall()
            )
            for sku, quantity, _, active in items:
                if not active:
                    raise ProductUnavailableError(sku)
                if stock.get(sku, 0) < quantity:
                    raise OutOfStockError(sku, quantity, stock.get(sku, 0))
            quantities = [quantity for _, quantity, _, _ in items]
            self._conn.execute(
                "UPDATE stock AS s SET on_hand = s.on_hand - f.quantity, updated_at = now()"
                " FROM unnest(%s::text[], %s::integer[]) AS f (sku, quantity)"
                " WHERE s.sku = f.sku",
                (skus, quantities),
            )
            total = sum(quantity * price for _, quantity, price, _ in items)
            row = self._conn.execute(
                "INSERT INTO orders (customer, total_cents) VALUES (%s, %s) RETURNING id",
                (customer, total),
            ).fetchone()
            order_id = int(returned(row)[0])
            self._conn.execute(
                "INSERT INTO order_line (order_id, sku, quantity, unit_price_cents)"
                " SELECT %s, f.sku, f.quantity, f.price"
                " FROM unnest(%s::text[], %s::integer[], %s::integer[])"
                " AS f (sku, quantity, price)",
                (order_id, skus, quantities, [price for _, _, price, _ in items]),
            )
            self._conn.execute("DELETE FROM cart WHERE id = %s", (cart_id,))
        return self.get(order_id)

    def get(self, order_id: int) -> Order:
        """The order with its lines."""
        row = self._conn.execute(
            "SELECT customer, status, total_cents FROM orders WHERE id = %s", (order_id,)
        ).fetchone()
        if row is None:
            raise UnknownOrderError(order_id)
        lines = self._conn.execute(
            "SELECT sku, quantity, unit_price_cents FROM order_line"
            " WHERE order_id = %s ORDER BY sku",
            (order_id,),
        ).fetchall()
        return Order(
            id=order_id,
            customer=str(row[0]),
            status=OrderStatus(row[1]),
            total_cents=int(row[2]),
            lines=tuple(OrderLine(sku, qty, price) for sku, qty, price in lines),
        )

    def of_customer(self, customer: str) -> list[Order]:
        """The customer's orders, oldest first."""
        rows = self._conn.execute(
            "SELECT id FROM orders WHERE customer = %s ORDER BY id", (customer,)
        ).fetchall()
        return [self.get(int(order_id)) for (order_id,) in rows]

    def pay(self, order_id: int) -> Order:
        """Record the payment of a placed order."""
        return self._move(order_id, OrderStatus.PAID)

    def ship(self, order_id: int) -> Order:
        """Record that a paid order left the warehouse."""
        return self._move(order_id, OrderStatus.SHIPPED)

    def cancel(self, order_id: int) -> Order:
        """Cancel an order that has not shipped; its items go back into stock."""
        return self._move(order_id, OrderStatus.CANCELLED)

    def best_sellers(self, limit: int = 10) -> list[tuple[str, int]]:
        """(SKU, items sold) over orders not cancelled, most sold first."""
        rows = self._conn.execute(
            "SELECT l.sku, sum(l.quantity) AS sold"
            " FROM order_line AS l JOIN orders AS o ON o.id = l.order_id"
            " WHERE o.status <> 'cancelled'"
            " GROUP BY l.sku ORDER BY sold DESC, l.sku LIMIT %s",
            (limit,),
        ).fetchall()
        return [(str(sku), int(sold)) for sku, sold in rows]

    def _lock_cart(self, cart_id: int) -> str:
        row = self._conn.execute(
            "SELECT customer FROM cart WHERE id = %s FOR UPDATE", (cart_id,)
        ).fetchone()
        if row is None:
            raise UnknownCartError(cart_id)
        return str(row[0])

    def _move(self, order_id: int, target: OrderStatus) -> Order:
        with self._conn.transaction():
            row = self._conn.execute(
                "SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,)
            ).fetchone()
            if row is None:
                raise UnknownOrderError(order_id)
            current = OrderStatus(row[0])
            if target not in _NEXT[current]:
                raise InvalidTransitionError(order_id, current.value, target.value)
            self._conn.execute(
                "UPDATE orders SET status = %s WHERE id = %s", (target.value, order_id)
            )
            if target is OrderStatus.CANCELLED:
                self._conn.execute(
                    "INSERT INTO stock AS s (sku, on_hand)"
                    " SELECT sku, quantity FROM order_line WHERE order_id = %s"
                    " ON CONFLICT (sku) DO UPDATE"
                    " SET on_hand = s.on_hand + excluded.on_hand, updated_at = now()",
                    (order_id,),
                )
        return self.get(order_id)
