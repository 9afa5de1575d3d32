"""Fixtures: one fresh schema per test session, empty tables for every test.

DATABASE_URL names the PostgreSQL server (required). REDIS_URL names the Redis server of
the product cache; without it the cache tests are skipped and the shop runs uncached.
Under stackmatrix, a stack without REDIS_URL but with a `cache` service on port 6379 is
found through STACKMATRIX_CACHE_6379.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import shop

if TYPE_CHECKING:
    import redis


def _schema_name() -> str:
    variant = os.environ.get("STACKMATRIX_VARIANT", "local")
    slug = re.sub(r"[^a-z0-9]+", "_", variant.lower()).strip("_")[:32] or "local"
    # The random part keeps two runs against one server apart.
    return f"shop_test_{slug}_{secrets.token_hex(4)}"


def _redis_url() -> str | None:
    if url := os.environ.get("REDIS_URL"):
        return url
    if address := os.environ.get("STACKMATRIX_CACHE_6379"):
        return f"redis://{address}/0"
    return None


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail(
            "DATABASE_URL is not set; point it to a PostgreSQL server, "
            "e.g. postgresql://postgres@127.0.0.1:5432/postgres",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def schema(database_url: str) -> Iterator[str]:
    name = _schema_name()
    with shop.connect(database_url) as admin:
        shop.install_schema(admin, name)
    try:
        yield name
    finally:
        with shop.connect(database_url) as admin:
            shop.drop_schema(admin, name)


@pytest.fixture
def conn(database_url: str, schema: str) -> Iterator[shop.Connection]:
    with shop.connect(database_url, schema=schema) as connection:
        shop.empty_tables(connection)
        yield connection


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    url = _redis_url()
    if url is None:
        pytest.skip("REDIS_URL is not set: no cache server in this stack")
    import redis  # noqa: PLC0415  # optional dependency, only for the cache tests

    client = redis.Redis.from_url(url, socket_timeout=5)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def cache(redis_client: redis.Redis, schema: str) -> Iterator[shop.ProductCache]:
    product_cache = shop.ProductCache(redis_client, namespace=schema, ttl_seconds=60)
    yield product_cache
    keys = list(redis_client.scan_iter(match=f"{schema}:*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def store(conn: shop.Connection, request: pytest.FixtureRequest) -> shop.Shop:
    """The shop; when a Redis server is configured, every test runs through the cache."""
    product_cache = request.getfixturevalue("cache") if _redis_url() is not None else None
    return shop.Shop(conn, product_cache)


@pytest.fixture
def stocked(store: shop.Shop) -> shop.Shop:
    """A shop with three products: 10 mugs, 3 teapots and no kettles."""
    store.catalog.add("MUG-01", "Enamel mug", 1250)
    store.catalog.add("TEA-POT", "Cast iron teapot", 4900)
    store.catalog.add("KET-7", "Stovetop kettle", 3500)
    store.inventory.receive("MUG-01", 10)
    store.inventory.receive("TEA-POT", 3)
    return store
