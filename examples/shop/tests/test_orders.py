"""Carts, checkout and the life of an order."""

from __future__ import annotations

import pytest

import shop


def test_cart_totals_follow_current_prices(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01", 2)
    cart = stocked.orders.add_item(cart_id, "TEA-POT")

    assert [(line.sku, line.quantity) for line in cart.lines] == [("MUG-01", 2), ("TEA-POT", 1)]
    assert cart.total_cents == 2 * 1250 + 4900

    stocked.catalog.set_price("TEA-POT", 4500)
    assert stocked.orders.cart(cart_id).total_cents == 2 * 1250 + 4500


def test_adding_a_product_twice_adds_the_quantities(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01", 2)
    cart = stocked.orders.add_item(cart_id, "MUG-01", 3)

    assert [(line.sku, line.quantity) for line in cart.lines] == [("MUG-01", 5)]


def test_removed_item_leaves_the_cart(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01")
    stocked.orders.add_item(cart_id, "TEA-POT")

    cart = stocked.orders.remove_item(cart_id, "MUG-01")

    assert [line.sku for line in cart.lines] == ["TEA-POT"]


def test_withdrawn_product_cannot_be_added(stocked: shop.Shop) -> None:
    stocked.catalog.withdraw("KET-7")
    cart_id = stocked.orders.new_cart("ada")

    with pytest.raises(shop.ProductUnavailableError, match="KET-7"):
        stocked.orders.add_item(cart_id, "KET-7")
    assert stocked.orders.cart(cart_id).lines == ()


def test_checkout_reserves_stock_and_snapshots_prices(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01", 4)
    stocked.orders.add_item(cart_id, "TEA-POT", 1)

    order = stocked.orders.checkout(cart_id)
    stocked.catalog.set_price("MUG-01", 9999)

    assert order.status is shop.OrderStatus.PLACED
    assert order.total_cents == 4 * 1250 + 4900
    assert stocked.orders.get(order.id).lines == (
        shop.OrderLine("MUG-01", 4, 1250),
        shop.OrderLine("TEA-POT", 1, 4900),
    )
    assert stocked.inventory.on_hand("MUG-01") == 6
    assert stocked.inventory.on_hand("TEA-POT") == 2
    with pytest.raises(shop.UnknownCartError):
        stocked.orders.cart(cart_id)


def test_checkout_is_all_or_nothing_when_stock_is_short(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01", 2)
    stocked.orders.add_item(cart_id, "TEA-POT", 5)

    with pytest.raises(shop.OutOfStockError) as raised:
        stocked.orders.checkout(cart_id)

    assert (raised.value.sku, raised.value.wanted, raised.value.available) == ("TEA-POT", 5, 3)
    assert stocked.inventory.on_hand("MUG-01") == 10
    assert stocked.orders.of_customer("ada") == []
    assert stocked.orders.cart(cart_id).total_cents == 2 * 1250 + 5 * 4900


def test_empty_cart_cannot_be_checked_out(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")

    with pytest.raises(shop.EmptyCartError):
        stocked.orders.checkout(cart_id)


def test_product_withdrawn_after_adding_blocks_checkout(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01")
    stocked.catalog.withdraw("MUG-01")

    with pytest.raises(shop.ProductUnavailableError, match="MUG-01"):
        stocked.orders.checkout(cart_id)
    assert stocked.inventory.on_hand("MUG-01") == 10


def test_order_moves_from_placed_to_paid_to_shipped(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01")
    order = stocked.orders.checkout(cart_id)

    assert stocked.orders.pay(order.id).status is shop.OrderStatus.PAID
    assert stocked.orders.ship(order.id).status is shop.OrderStatus.SHIPPED
    with pytest.raises(shop.InvalidTransitionError, match="is shipped"):
        stocked.orders.cancel(order.id)


def test_placed_order_cannot_ship_before_payment(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "MUG-01")
    order = stocked.orders.checkout(cart_id)

    with pytest.raises(shop.InvalidTransitionError, match="cannot become shipped"):
        stocked.orders.ship(order.id)
    assert stocked.orders.get(order.id).status is shop.OrderStatus.PLACED


def test_cancelled_order_returns_its_items_to_stock(stocked: shop.Shop) -> None:
    cart_id = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart_id, "TEA-POT", 3)
    order = stocked.orders.checkout(cart_id)
    assert stocked.inventory.on_hand("TEA-POT") == 0

    cancelled = stocked.orders.cancel(order.id)

    assert cancelled.status is shop.OrderStatus.CANCELLED
    assert stocked.inventory.on_hand("TEA-POT") == 3


def test_best_sellers_ignore_cancelled_orders(stocked: shop.Shop) -> None:
    for customer, sku, quantity in [
        ("ada", "MUG-01", 2),
        ("bob", "TEA-POT", 1),
        ("cy", "MUG-01", 3),
    ]:
        cart_id = stocked.orders.new_cart(customer)
        stocked.orders.add_item(cart_id, sku, quantity)
        stocked.orders.checkout(cart_id)
    cart_id = stocked.orders.new_cart("dee")
    stocked.orders.add_item(cart_id, "TEA-POT", 2)
    stocked.orders.cancel(stocked.orders.checkout(cart_id).id)

    assert stocked.orders.best_sellers() == [("MUG-01", 5), ("TEA-POT", 1)]
    assert [o.customer for o in stocked.orders.of_customer("cy")] == ["cy"]


def test_unknown_order_raises(store: shop.Shop) -> None:
    with pytest.raises(shop.UnknownOrderError):
        store.orders.get(424242)
