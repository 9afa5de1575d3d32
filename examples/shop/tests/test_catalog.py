"""The product catalog."""

from __future__ import annotations

import pytest

import shop


def test_added_product_can_be_read_back(store: shop.Shop) -> None:
    added = store.catalog.add("MUG-01", "  Enamel mug ", 1250)

    assert added == shop.Product("MUG-01", "Enamel mug", 1250, active=True)
    assert store.catalog.get("MUG-01") == added


def test_duplicate_sku_is_refused(store: shop.Shop) -> None:
    store.catalog.add("MUG-01", "Enamel mug", 1250)

    with pytest.raises(shop.DuplicateProductError, match="MUG-01"):
        store.catalog.add("MUG-01", "Another mug", 999)
    assert store.catalog.get("MUG-01").name == "Enamel mug"


@pytest.mark.parametrize(
    ("sku", "name", "price", "message"),
    [
        ("mug", "Mug", 100, "malformed SKU"),
        ("M", "Mug", 100, "malformed SKU"),
        ("MUG-02", "Mug", -1, "non-negative"),
        ("MUG-02", "   ", 100, "needs a name"),
    ],
)
def test_invalid_products_are_refused(
    store: shop.Shop, sku: str, name: str, price: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.catalog.add(sku, name, price)
    assert store.catalog.products(include_inactive=True) == []


def test_unknown_sku_raises(store: shop.Shop) -> None:
    with pytest.raises(shop.UnknownProductError, match="NOPE-1"):
        store.catalog.get("NOPE-1")


def test_products_are_listed_by_sku_and_withdrawn_ones_hidden(stocked: shop.Shop) -> None:
    stocked.catalog.withdraw("KET-7")

    assert [p.sku for p in stocked.catalog.products()] == ["MUG-01", "TEA-POT"]
    assert [p.sku for p in stocked.catalog.products(include_inactive=True)] == [
        "KET-7",
        "MUG-01",
        "TEA-POT",
    ]
    assert stocked.catalog.get("KET-7").active is False


def test_search_ignores_case_and_treats_wildcards_literally(stocked: shop.Shop) -> None:
    stocked.catalog.add("PCT-100", "100% cotton towel", 1500)

    assert [p.sku for p in stocked.catalog.search("IRON")] == ["TEA-POT"]
    assert [p.sku for p in stocked.catalog.search("O")] == ["KET-7", "PCT-100", "TEA-POT"]
    assert [p.sku for p in stocked.catalog.search("0%")] == ["PCT-100"]
    assert stocked.catalog.search("_") == []


def test_price_change_is_visible_at_once(stocked: shop.Shop) -> None:
    assert stocked.catalog.get("MUG-01").price_cents == 1250

    changed = stocked.catalog.set_price("MUG-01", 1400)

    assert changed.price_cents == 1400
    assert stocked.catalog.get("MUG-01").price_cents == 1400


def test_price_change_of_unknown_product_raises(store: shop.Shop) -> None:
    with pytest.raises(shop.UnknownProductError):
        store.catalog.set_price("NOPE-1", 100)
