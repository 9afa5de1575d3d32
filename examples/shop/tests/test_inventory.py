"""Stock levels: deliveries and the low-stock list (any PostgreSQL version)."""

from __future__ import annotations

import pytest

import shop


def test_deliveries_add_up(stocked: shop.Shop) -> None:
    assert stocked.inventory.receive("MUG-01", 5) == 15
    assert stocked.inventory.receive("KET-7", 2) == 2
    assert stocked.inventory.on_hand("MUG-01") == 15
    assert stocked.inventory.on_hand("KET-7") == 2


def test_product_never_stocked_has_none_on_hand(stocked: shop.Shop) -> None:
    assert stocked.inventory.on_hand("KET-7") == 0


def test_delivery_of_unknown_product_raises(store: shop.Shop) -> None:
    with pytest.raises(shop.UnknownProductError, match="NOPE-1"):
        store.inventory.receive("NOPE-1", 1)


@pytest.mark.parametrize("quantity", [0, -3])
def test_delivery_needs_a_positive_quantity(stocked: shop.Shop, quantity: int) -> None:
    with pytest.raises(ValueError, match="quantity"):
        stocked.inventory.receive("MUG-01", quantity)
    assert stocked.inventory.on_hand("MUG-01") == 10


def test_low_stock_lists_products_for_sale_fewest_first(stocked: shop.Shop) -> None:
    stocked.catalog.add("SPN-2", "Tea spoon", 300)
    stocked.inventory.receive("SPN-2", 3)
    stocked.catalog.withdraw("SPN-2")

    assert stocked.inventory.low_stock(5) == [("KET-7", 0), ("TEA-POT", 3)]
