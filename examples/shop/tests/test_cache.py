"""The Redis product cache (skipped when no Redis server is configured)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import shop

if TYPE_CHECKING:
    import redis


@pytest.fixture
def cached(conn: shop.Connection, cache: shop.ProductCache) -> shop.Shop:
    store = shop.Shop(conn, cache)
    store.catalog.add("MUG-01", "Enamel mug", 1250)
    return store


def test_second_read_is_served_from_the_cache(cached: shop.Shop, cache: shop.ProductCache) -> None:
    first = cached.catalog.get("MUG-01")
    second = cached.catalog.get("MUG-01")

    assert first == second
    assert (cache.misses, cache.hits) == (1, 1)


def test_cache_answers_without_the_database(
    cached: shop.Shop, cache: shop.ProductCache, conn: shop.Connection
) -> None:
    cached.catalog.get("MUG-01")
    conn.execute("UPDATE product SET name = 'Changed behind the cache' WHERE sku = 'MUG-01'")

    assert cached.catalog.get("MUG-01").name == "Enamel mug"
    assert cache.hits == 1


def test_price_change_invalidates_the_entry(cached: shop.Shop, cache: shop.ProductCache) -> None:
    cached.catalog.get("MUG-01")

    cached.catalog.set_price("MUG-01", 1400)

    assert cache.get("MUG-01") is None
    assert cached.catalog.get("MUG-01").price_cents == 1400


def test_withdrawal_invalidates_the_entry(cached: shop.Shop) -> None:
    cached.catalog.get("MUG-01")
    cached.catalog.withdraw("MUG-01")
    cart_id = cached.orders.new_cart("ada")

    with pytest.raises(shop.ProductUnavailableError):
        cached.orders.add_item(cart_id, "MUG-01")


def test_entries_expire(
    cached: shop.Shop, cache: shop.ProductCache, redis_client: redis.Redis
) -> None:
    cached.catalog.get("MUG-01")

    assert 0 < redis_client.ttl(cache.key("MUG-01")) <= cache.ttl_seconds


def test_missing_products_are_not_cached(
    cached: shop.Shop, cache: shop.ProductCache, redis_client: redis.Redis
) -> None:
    with pytest.raises(shop.UnknownProductError):
        cached.catalog.get("NOPE-1")

    assert redis_client.exists(cache.key("NOPE-1")) == 0


def test_namespaces_keep_caches_apart(
    cached: shop.Shop, cache: shop.ProductCache, redis_client: redis.Redis
) -> None:
    other = shop.ProductCache(redis_client, namespace=f"{cache.namespace}-other")
    cached.catalog.get("MUG-01")

    assert other.get("MUG-01") is None
    assert cache.get("MUG-01") == shop.Product("MUG-01", "Enamel mug", 1250)
