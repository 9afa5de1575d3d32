"""The supplier's stock feed, applied with MERGE: needs PostgreSQL 15 or later."""

from __future__ import annotations

import pytest

import shop


def test_feed_sets_counts_and_creates_missing_rows(stocked: shop.Shop) -> None:
    changed = stocked.inventory.apply_feed({"MUG-01": 4, "KET-7": 12})

    assert changed == 2
    assert stocked.inventory.on_hand("MUG-01") == 4
    assert stocked.inventory.on_hand("KET-7") == 12
    assert stocked.inventory.on_hand("TEA-POT") == 3  # not in the feed: left alone


def test_feed_count_of_zero_removes_the_stock_row(stocked: shop.Shop) -> None:
    changed = stocked.inventory.apply_feed({"TEA-POT": 0, "KET-7": 0})

    assert changed == 1  # KET-7 had no row, so nothing to remove
    assert stocked.inventory.on_hand("TEA-POT") == 0
    assert stocked.inventory.low_stock(1) == [("KET-7", 0), ("TEA-POT", 0)]


def test_feed_counts_only_rows_it_changed(stocked: shop.Shop) -> None:
    assert stocked.inventory.apply_feed({"MUG-01": 10, "TEA-POT": 3}) == 0
    assert stocked.inventory.apply_feed({"MUG-01": 10, "TEA-POT": 8}) == 1


def test_orders_draw_on_stock_set_by_the_feed(stocked: shop.Shop) -> None:
    stocked.inventory.apply_feed({"KET-7": 2})
    cart = stocked.orders.new_cart("ada")
    stocked.orders.add_item(cart, "KET-7", 2)

    order = stocked.orders.checkout(cart)

    assert order.total_cents == 7000
    assert stocked.inventory.on_hand("KET-7") == 0


def test_feed_with_unknown_sku_changes_nothing(stocked: shop.Shop) -> None:
    with pytest.raises(shop.UnknownProductError, match="NOPE-1"):
        stocked.inventory.apply_feed({"MUG-01": 1, "NOPE-1": 5})
    assert stocked.inventory.on_hand("MUG-01") == 10


def test_feed_refuses_negative_counts(stocked: shop.Shop) -> None:
    with pytest.raises(ValueError, match="quantity"):
        stocked.inventory.apply_feed({"MUG-01": -1})
    assert stocked.inventory.on_hand("MUG-01") == 10
